//! A group member whose polls keep finding records skips the coordinator
//! while nothing changes; these tests pin that it is still never evicted and
//! still sees rebalances.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logbus::{Broker, ConsumerConfig, OffsetReset, Record, TopicConfig};

use crate::common::{wait_until, Deadline, PATIENCE};

fn busy_producer(broker: &Broker, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let p = broker.producer();
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            p.send("t", Record::new(n.to_le_bytes().to_vec())).unwrap();
            n += 1;
        }
        n
    })
}

#[test]
fn a_member_busy_with_records_is_not_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    // A backlog large enough that every poll for the whole test finds records
    // (so no poll takes the wait path, which always syncs with the coordinator).
    let p = broker.producer();
    for _ in 0..400 {
        p.send_batch("t", (0..1000u32).map(|i| Record::new(i.to_le_bytes().to_vec())))
            .unwrap();
    }
    let cfg = ConsumerConfig::new()
        .group("g")
        .offset_reset(OffsetReset::Earliest)
        .max_poll_records(2)
        .max_poll_interval(Duration::from_millis(200));
    let mut c = broker.consumer(cfg).unwrap();
    c.subscribe(&["t"]).unwrap();
    wait_until("both partitions assigned", PATIENCE, || {
        c.poll(Duration::from_millis(100)).unwrap();
        c.assignment().len() == 2
    });
    // The member id, not the generation: evicting the only member removes the
    // group, and the rejoin starts a new one at the same generation.
    let member_at_start = broker.describe_group("g").unwrap().members[0].member_id.clone();
    let busy = Deadline::new(Duration::from_millis(1500), "the end of the busy polls");
    let mut received = 0usize;
    while !busy.passed() {
        let got = c.poll(Duration::from_millis(50)).unwrap().len();
        assert!(got > 0, "the backlog ran out: the test no longer exercises busy polls");
        received += got;
    }
    // An eviction makes the consumer rejoin under a new member id.
    let members = broker.describe_group("g").unwrap().members;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].member_id, member_at_start, "evicted while busy");
    assert!(received > 0);
    assert_eq!(c.assignment().len(), 2);
}

#[test]
fn a_busy_member_still_sees_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = busy_producer(&broker, Arc::clone(&stop));
    let cfg = ConsumerConfig::new().group("g").offset_reset(OffsetReset::Earliest);
    let mut a = broker.consumer(cfg.clone()).unwrap();
    a.subscribe(&["t"]).unwrap();
    wait_until("both partitions assigned", PATIENCE, || {
        a.poll(Duration::from_millis(50)).unwrap();
        a.assignment().len() == 2
    });
    // B stays in the group until the main thread has seen the hand-over
    // (if B left at once, A could take the partition back within one poll).
    let b_done = Arc::new(AtomicBool::new(false));
    let (b_cfg, b_broker, b_stop) = (cfg.clone(), broker.clone(), Arc::clone(&b_done));
    let b = std::thread::spawn(move || {
        let mut b = b_broker.consumer(b_cfg).unwrap();
        b.subscribe(&["t"]).unwrap();
        let mut most = 0;
        while !b_stop.load(Ordering::Relaxed) {
            b.poll(Duration::from_millis(20)).unwrap();
            most = most.max(b.assignment().len());
        }
        most
    });
    wait_until(
        "the busy member to give a partition up",
        Duration::from_secs(10),
        || {
            let busy = a.assignment().len() == 2;
            if busy {
                assert!(a.poll(Duration::from_millis(20)).is_ok());
            }
            !busy
        },
    );
    assert_eq!(a.assignment().len(), 1, "the busy member gave a partition up");
    b_done.store(true, Ordering::Relaxed);
    let got_b = b.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    assert_eq!(got_b, 1, "the new member got the released partition");
}
