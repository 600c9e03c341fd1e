//! Typed batches, the typed lending read and cloned typed producers:
//! `TypedProducer::send_batch` / `send_batch_keyed` are all or nothing,
//! `TypedConsumer::poll_with` lends what `poll` returns and stops at an
//! undecodable value the same way, and a clone of a `TypedProducer` sends
//! from another thread.
#![cfg(feature = "serde")]

use std::time::Duration;

use logbus::{
    Broker, Codec, ConsumerConfig, Error, OffsetReset, Postcard, Record, TopicConfig, TopicPartition, TypedConsumer,
    TypedProducer,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    item: String,
}

fn order(id: u64) -> Order {
    Order {
        id,
        item: format!("item {id}"),
    }
}

fn setup(partitions: u32) -> (tempfile::TempDir, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("orders", TopicConfig::new(partitions)).unwrap();
    (dir, broker)
}

fn consumer(broker: &Broker, partitions: u32) -> TypedConsumer<Order, Postcard> {
    let mut c = broker
        .consumer(ConsumerConfig::new().offset_reset(OffsetReset::Earliest))
        .unwrap();
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new("orders", p)).collect();
    c.assign(&tps).unwrap();
    TypedConsumer::new(c, Postcard)
}

/// Everything `poll_with` lends until a poll comes back empty.
fn drain_with(c: &mut TypedConsumer<Order, Postcard>) -> Vec<(u32, u64, Option<Vec<u8>>, Order)> {
    let mut out = Vec::new();
    loop {
        let seen = c
            .poll_with(Duration::from_millis(50), |o, r| {
                out.push((r.partition(), r.offset(), r.key().map(<[u8]>::to_vec), o))
            })
            .unwrap();
        if seen == 0 {
            return out;
        }
    }
}

#[test]
fn send_batch_stores_every_value_in_order_and_poll_with_decodes_them() {
    let (_dir, broker) = setup(1);
    let producer = TypedProducer::new(broker.producer(), "orders", Postcard);
    let orders: Vec<Order> = (0..50).map(order).collect();
    let md = producer.send_batch(&orders).unwrap();
    assert_eq!(
        md.iter().map(|m| m.offset()).collect::<Vec<_>>(),
        (0..50).collect::<Vec<u64>>()
    );

    let got = drain_with(&mut consumer(&broker, 1));
    assert_eq!(got.len(), 50);
    for (i, (p, offset, key, o)) in got.into_iter().enumerate() {
        assert_eq!((p, offset, key, o), (0, i as u64, None, order(i as u64)));
    }
}

#[test]
fn send_batch_keyed_routes_by_key_like_send_keyed() {
    let (_dir, broker) = setup(4);
    let producer = TypedProducer::new(broker.producer(), "orders", Postcard);
    let orders: Vec<Order> = (0..40).map(order).collect();
    let md = producer
        .send_batch_keyed(orders.iter().map(|o| (format!("customer-{}", o.id % 5), o)))
        .unwrap();
    for (o, m) in orders.iter().zip(&md) {
        let single = producer.send_keyed(format!("customer-{}", o.id % 5), o).unwrap();
        assert_eq!(
            m.partition(),
            single.partition(),
            "same key, same partition as send_keyed"
        );
    }
    let got = drain_with(&mut consumer(&broker, 4));
    assert_eq!(got.len(), 80);
    for (_, _, key, o) in &got {
        assert_eq!(key.as_deref(), Some(format!("customer-{}", o.id % 5).as_bytes()));
    }
}

#[test]
fn a_typed_batch_with_a_record_too_large_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker
        .create_topic("orders", TopicConfig::new(1).max_record_bytes(64))
        .unwrap();
    let producer = TypedProducer::new(broker.producer(), "orders", Postcard);
    let mut orders: Vec<Order> = (0..5).map(order).collect();
    orders[3].item = "x".repeat(500);
    let err = producer.send_batch(&orders).unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err:?}");
    assert_eq!(
        broker.topic("orders").unwrap().partition(0).unwrap().end_offset(),
        0,
        "all or nothing"
    );
}

/// Postcard, except that it refuses to encode order 13.
#[derive(Debug, Clone)]
struct NoThirteen;

impl Codec<Order> for NoThirteen {
    fn encode(&self, value: &Order) -> Result<Vec<u8>, String> {
        if value.id == 13 {
            return Err("order 13 is unlucky".into());
        }
        Codec::<Order>::encode(&Postcard, value)
    }
    fn decode(&self, bytes: &[u8]) -> Result<Order, String> {
        Codec::<Order>::decode(&Postcard, bytes)
    }
}

#[test]
fn a_typed_batch_with_a_value_that_fails_to_encode_writes_nothing() {
    let (_dir, broker) = setup(1);
    let producer = TypedProducer::new(broker.producer(), "orders", NoThirteen);
    let orders: Vec<Order> = (10..20).map(order).collect();
    let err = producer.send_batch(&orders).unwrap_err();
    assert!(
        matches!(&err, Error::Encode { topic, reason } if topic == "orders" && reason.contains("unlucky")),
        "{err:?}"
    );
    assert_eq!(
        broker.topic("orders").unwrap().partition(0).unwrap().end_offset(),
        0,
        "all or nothing"
    );
    assert_eq!(
        producer.send_batch(&orders[4..]).unwrap().len(),
        6,
        "the batch without it goes through"
    );
}

#[test]
fn poll_with_lends_what_poll_returns() {
    let (_dir, broker) = setup(3);
    let producer = TypedProducer::new(broker.producer(), "orders", Postcard);
    let orders: Vec<Order> = (0..60).map(order).collect();
    producer
        .send_batch_keyed(orders.iter().map(|o| (format!("k{}", o.id), o)))
        .unwrap();

    let mut polled: Vec<(u32, u64, Option<Vec<u8>>, Order)> = Vec::new();
    let mut c = consumer(&broker, 3);
    loop {
        let got = c.poll(Duration::from_millis(50)).unwrap();
        if got.is_empty() {
            break;
        }
        polled.extend(got.into_iter().map(|t| {
            (
                t.record.partition(),
                t.record.offset(),
                t.record.key().map(<[u8]>::to_vec),
                t.value,
            )
        }));
    }
    let mut lent = drain_with(&mut consumer(&broker, 3));
    polled.sort_by_key(|t| (t.0, t.1));
    lent.sort_by_key(|t| (t.0, t.1));
    assert_eq!(lent.len(), 60);
    assert_eq!(lent, polled);
}

#[test]
fn poll_with_stops_at_an_undecodable_value_and_reports_it_next() {
    let (_dir, broker) = setup(1);
    let typed = TypedProducer::new(broker.producer(), "orders", Postcard);
    typed.send_batch(&[order(0), order(1)]).unwrap();
    broker.producer().send("orders", Record::new(vec![0xff; 3])).unwrap(); // offset 2: not an Order
    typed.send(&order(3)).unwrap();

    let mut c = consumer(&broker, 1);
    let mut ids = Vec::new();
    let seen = c.poll_with(Duration::from_secs(1), |o, _| ids.push(o.id)).unwrap();
    assert_eq!((seen, ids.clone()), (2, vec![0, 1]), "the records before the bad one");
    let tp = TopicPartition::new("orders", 0);
    assert_eq!(
        c.consumer().position(&tp).unwrap(),
        2,
        "the position stays on the bad record"
    );

    let err = c.poll_with(Duration::from_secs(1), |o, _| ids.push(o.id)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                partition: 0,
                offset: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(ids, vec![0, 1], "nothing lent by the failing poll");

    c.consumer().seek(&tp, 3).unwrap();
    let seen = c.poll_with(Duration::from_secs(1), |o, _| ids.push(o.id)).unwrap();
    assert_eq!((seen, ids), (1, vec![0, 1, 3]), "seek past it and go on");
}

#[test]
fn a_cloned_typed_producer_sends_from_another_thread() {
    let (_dir, broker) = setup(2);
    let producer = TypedProducer::new(broker.producer(), "orders", Postcard);
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let p = producer.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    p.send(&order(t * 100 + i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    producer.send(&order(999)).unwrap();
    let mut ids: Vec<u64> = drain_with(&mut consumer(&broker, 2))
        .into_iter()
        .map(|t| t.3.id)
        .collect();
    ids.sort_unstable();
    let mut want: Vec<u64> = (0..4u64).flat_map(|t| (0..25).map(move |i| t * 100 + i)).collect();
    want.push(999);
    assert_eq!(ids, want);
}
