//! Errors resolve the futures; nothing hangs: closed brokers, deleted
//! topics, invalid sends, consumers with nothing to wait on.

use std::time::Duration;

use logbus::{Broker, ConsumerConfig, Error, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::{sync_broker, RUNTIMES};

#[test]
fn an_invalid_send_fails_from_the_future_and_writes_nothing() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker
            .create_topic("t", TopicConfig::new(1).max_record_bytes(100))
            .unwrap();
        let producer = broker.producer();
        rt.block_on(async {
            let err = producer.send_async("nope", Record::new("x")).await.unwrap_err();
            assert!(
                matches!(err, Error::UnknownTopic { ref topic } if topic == "nope"),
                "{err:?}"
            );
            let err = producer.send_async("t", Record::new(vec![0u8; 500])).await.unwrap_err();
            assert!(matches!(err, Error::RecordTooLarge { .. }), "{err:?}");
            let err = producer
                .send_async("t", Record::new("x").with_partition(3))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::UnknownPartition { .. }), "{err:?}");
        });
        assert_eq!(
            broker.topic("t").unwrap().partition(0).unwrap().end_offset(),
            0,
            "{rt:?}"
        );
    }
}

#[test]
fn sends_pending_when_their_topic_is_deleted_fail_with_unknown_topic() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let producer = broker.producer();
        // Appended, not yet durable: no future has been polled, so no round ran.
        let sends: Vec<_> = (0..100).map(|_| producer.send_async("t", Record::new("x"))).collect();
        broker.delete_topic("t").unwrap();
        rt.block_on(async {
            for send in sends {
                let err = rt.within("a send whose topic was deleted", send).await.unwrap_err();
                assert!(
                    matches!(err, Error::UnknownTopic { ref topic } if topic == "t"),
                    "{rt:?}: {err:?}"
                );
            }
            let err = producer.send_async("t", Record::new("x")).await.unwrap_err();
            assert!(matches!(err, Error::UnknownTopic { .. }), "{err:?}");
        });
    }
}

#[test]
fn sends_pending_at_close_resolve_because_close_made_them_durable_and_later_sends_fail() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = sync_broker(dir.path());
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let producer = broker.producer();
        let sends: Vec<_> = (0..100)
            .map(|i| producer.send_async("t", Record::new(format!("{i}"))))
            .collect();
        broker.clone().close().unwrap();
        rt.block_on(async {
            for (i, send) in sends.into_iter().enumerate() {
                let meta = rt.within("a send pending at close", send).await.unwrap();
                assert_eq!(meta.offset(), i as u64);
            }
            let err = producer.send_async("t", Record::new("x")).await.unwrap_err();
            assert!(matches!(err, Error::Closed), "{rt:?}: {err:?}");
        });
        let broker = sync_broker(dir.path());
        assert_eq!(broker.topic("t").unwrap().partition(0).unwrap().end_offset(), 100);
    }
}

#[test]
fn a_pending_recv_fails_with_closed_when_the_broker_closes() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(2)).unwrap();
        let mut consumer = broker.consumer(ConsumerConfig::new()).unwrap();
        consumer
            .assign(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
            .unwrap();
        let closer = {
            let broker = broker.clone();
            std::thread::spawn(move || {
                // Most likely while the recv below is pending; either way it must end.
                std::thread::sleep(Duration::from_millis(50));
                broker.close().unwrap();
            })
        };
        let err = rt.block_on(async { rt.within("recv to see the close", consumer.recv()).await.unwrap_err() });
        assert!(matches!(err, Error::Closed), "{rt:?}: {err:?}");
        closer.join().unwrap();
        let err = rt.block_on(consumer.recv()).unwrap_err();
        assert!(matches!(err, Error::Closed), "{err:?}");
    }
}

#[test]
fn a_pending_recv_on_partitions_of_a_deleted_topic_fails_with_unknown_topic() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        let mut consumer = broker.consumer(ConsumerConfig::new()).unwrap();
        consumer.assign(&[TopicPartition::new("t", 0)]).unwrap();
        let deleter = {
            let broker = broker.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                broker.delete_topic("t").unwrap();
            })
        };
        let err = rt.block_on(async {
            rt.within("recv to see the deletion", consumer.recv())
                .await
                .unwrap_err()
        });
        assert!(
            matches!(err, Error::UnknownTopic { ref topic } if topic == "t"),
            "{rt:?}: {err:?}"
        );
        deleter.join().unwrap();
    }
}

#[test]
fn recv_without_an_assignment_or_subscription_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut consumer = broker.consumer(ConsumerConfig::new()).unwrap();
    for rt in RUNTIMES {
        let err = rt.block_on(consumer.recv()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { field: "recv", .. }),
            "{rt:?}: {err:?}"
        );
        assert!(err.to_string().contains("assign"), "{err}");
    }
    consumer.assign(&[]).unwrap();
    let err = smol::block_on(consumer.recv()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}

#[test]
fn the_stream_yields_closed_once_then_ends() {
    use smol::stream::StreamExt;
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(1)).unwrap();
        broker.producer().send("t", Record::new("before")).unwrap();
        let mut consumer = broker
            .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
            .unwrap();
        consumer.assign(&[TopicPartition::new("t", 0)]).unwrap();
        rt.block_on(async {
            let mut stream = std::pin::pin!(consumer.stream());
            let first = rt.within("the first record", stream.next()).await.unwrap().unwrap();
            assert_eq!(first.value(), b"before");
            broker.clone().close().unwrap();
            let err = rt.within("the close", stream.next()).await.unwrap().unwrap_err();
            assert!(matches!(err, Error::Closed), "{rt:?}: {err:?}");
            assert!(stream.next().await.is_none(), "the stream ends after Closed");
        });
    }
}
