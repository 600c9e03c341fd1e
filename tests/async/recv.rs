//! `Consumer::recv`: wakes on an append from another thread, and is
//! cancel-safe: a dropped recv future never loses a record.

use std::time::Duration;

use logbus::{Broker, Record, TopicConfig, TopicPartition};

use crate::{earliest, numbered, tail_a_sender, RUNTIMES};

#[test]
fn a_pending_recv_wakes_on_a_send_from_another_thread() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(3)).unwrap();
        let mut consumer = broker.consumer(earliest()).unwrap();
        let tps: Vec<_> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
        consumer.assign(&tps).unwrap();
        let producer = broker.producer();
        let sender = std::thread::spawn(move || {
            // Most likely after the recv below parked its task.
            std::thread::sleep(Duration::from_millis(50));
            producer.send("t", Record::new("wake").with_partition(2)).unwrap();
        });
        let records = rt.block_on(async { rt.within("recv to wake", consumer.recv()).await.unwrap() });
        let got: Vec<_> = records
            .iter()
            .map(|r| (r.partition(), r.offset(), r.value().to_vec()))
            .collect();
        assert_eq!(got, vec![(2, 0, b"wake".to_vec())], "{rt:?}");
        sender.join().unwrap();
    }
}

#[test]
fn recv_returns_what_is_there_at_once_up_to_max_poll_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let producer = broker.producer();
    for i in 0..10u8 {
        producer.send("t", Record::new(vec![i])).unwrap();
    }
    let mut consumer = broker.consumer(earliest().max_poll_records(4)).unwrap();
    consumer.assign(&[TopicPartition::new("t", 0)]).unwrap();
    for rt in RUNTIMES {
        let records = rt.block_on(consumer.recv()).unwrap();
        assert_eq!(records.len(), 4, "{rt:?}");
    }
    let rest = smol::block_on(consumer.recv()).unwrap();
    let values: Vec<u8> = rest.iter().map(|r| r.value()[0]).collect();
    assert_eq!(values, vec![8, 9]);
}

/// Receives with a timeout that often wins (the recv future is dropped
/// mid-wait), while another thread sends: every record arrives exactly once,
/// in order.
#[test]
fn recv_futures_dropped_by_a_timeout_lose_no_record() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let n = 500u32;
        let (_broker, mut consumer, sender) = tail_a_sender(dir.path(), n, 50);
        let (seen, timeouts) = rt.block_on(async {
            let mut seen = Vec::new();
            let mut timeouts = 0;
            let deadline = crate::common::Deadline::new(crate::common::PATIENCE, "all records");
            while seen.len() < n as usize {
                deadline.check();
                match rt.timeout(Duration::from_micros(200), consumer.recv()).await {
                    Some(records) => seen.extend(records.unwrap().iter().map(|r| (r.offset(), r.value().to_vec()))),
                    None => timeouts += 1,
                }
            }
            (seen, timeouts)
        });
        sender.join().unwrap();
        let want = numbered(n);
        assert_eq!(seen, want, "{rt:?} ({timeouts} receives were dropped by their timeout)");
    }
}

#[test]
fn a_recv_dropped_by_tokio_select_leaves_the_record_for_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut consumer = broker.consumer(earliest()).unwrap();
    consumer.assign(&[TopicPartition::new("t", 0)]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::select! {
            r = consumer.recv() => panic!("nothing was sent yet: {:?}", r.map(|r| r.len())),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        // The dropped recv left nothing registered that could take a record.
        broker.producer().send("t", Record::new("first")).unwrap();
        broker.producer().send("t", Record::new("second")).unwrap();
        let records = consumer.recv().await.unwrap();
        let values: Vec<_> = records.iter().map(|r| r.value().to_vec()).collect();
        assert_eq!(values, vec![b"first".to_vec(), b"second".to_vec()]);
    });
    // Blocking polls and async receives share one position.
    broker.producer().send("t", Record::new("third")).unwrap();
    let polled = consumer.poll(Duration::from_secs(5)).unwrap();
    assert_eq!(polled.iter().map(|r| r.offset()).collect::<Vec<_>>(), vec![2]);
}

#[test]
fn a_paused_partition_does_not_wake_recv_and_a_resumed_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let mut consumer = broker.consumer(earliest()).unwrap();
    let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    consumer.assign(&[p0.clone(), p1.clone()]).unwrap();
    consumer.pause(std::slice::from_ref(&p0)).unwrap();
    let producer = broker.producer();
    producer.send("t", Record::new("paused").with_partition(0)).unwrap();
    let got = smol::block_on(async {
        let pending = smol::future::poll_once(consumer.recv()).await;
        assert!(pending.is_none(), "only a paused partition has records");
        producer.send("t", Record::new("live").with_partition(1)).unwrap();
        consumer.recv().await.unwrap()
    });
    assert_eq!(
        got.iter().map(|r| r.value().to_vec()).collect::<Vec<_>>(),
        vec![b"live".to_vec()]
    );
    consumer.resume(&[p0]).unwrap();
    let got = smol::block_on(consumer.recv()).unwrap();
    assert_eq!(
        got.iter().map(|r| r.value().to_vec()).collect::<Vec<_>>(),
        vec![b"paused".to_vec()]
    );
}
