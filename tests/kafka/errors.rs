//! Failures against a cluster are `Error::Kafka` values that say what
//! failed, where, and what to do, within a bounded time.

use std::time::{Duration, Instant};

use logbus::kafka::{Consumer, Producer};
use logbus::{Error, Record};

use crate::broker::Tansu;
use crate::support::{create_topic, producer};

/// A loopback port with nothing listening.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

fn assert_kafka_error(e: &Error, address: &str) {
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(address), "{msg}");
    assert!(msg.contains("reachable"), "the message should say what to check: {msg}");
}

#[test]
fn an_unreachable_bootstrap_server_fails_build_within_the_connect_timeout() {
    let address = dead_address();
    let t = Instant::now();
    let e = Producer::builder(&address)
        .connect_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap_err();
    assert_kafka_error(&e, &address);
    let e = Consumer::builder(&address)
        .connect_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap_err();
    assert_kafka_error(&e, &address);
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
}

#[test]
fn a_send_to_an_unreachable_cluster_fails_within_the_delivery_timeout() {
    let address = dead_address();
    let p = Producer::builder(&address)
        .connect_timeout(None)
        .delivery_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let t = Instant::now();
    let e = p.send("anything", Record::new("lost")).unwrap_err();
    assert_kafka_error(&e, &address);
    assert!(e.to_string().contains("topic 'anything'"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
}

#[test]
fn a_send_to_a_frozen_broker_times_out_and_works_again_after_it_thaws() {
    let broker = Tansu::start();
    create_topic(&broker, "frozen", 1);
    let p = Producer::builder(broker.bootstrap())
        .delivery_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    p.send("frozen", Record::new("before")).unwrap();
    broker.pause();
    let t = Instant::now();
    let e = p.send("frozen", Record::new("during")).unwrap_err();
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
    broker.resume();
    let md = producer(&broker).send("frozen", Record::new("after")).unwrap();
    assert_eq!(md.topic(), "frozen");
}

#[test]
fn a_send_to_a_partition_the_topic_lacks_names_topic_and_partition() {
    // tansu creates missing topics on first use (auto.create.topics.enable),
    // so a missing partition stands in for a missing topic here.
    let broker = Tansu::start();
    create_topic(&broker, "small", 1);
    let p = Producer::builder(broker.bootstrap())
        .delivery_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let t = Instant::now();
    let e = p.send("small", Record::new("x").with_partition(5)).unwrap_err();
    assert!(matches!(e, Error::Kafka { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("topic 'small'") && msg.contains("fewer partitions"),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
}

#[test]
fn a_consumer_rides_out_a_frozen_broker() {
    let broker = Tansu::start();
    create_topic(&broker, "thaw", 1);
    let tp = logbus::TopicPartition::new("thaw", 0);
    let p = producer(&broker);
    p.send("thaw", Record::new("before")).unwrap();
    let mut c = crate::support::consumer(&broker).build().unwrap();
    c.assign(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(crate::support::poll_n(&mut c, 1)[0].value(), b"before");

    broker.pause();
    // Nothing to read and nobody answering: polls return empty, not errors.
    let quiet = crate::support::poll_for(&mut c, Duration::from_secs(3));
    assert!(quiet.is_empty(), "{quiet:?}");
    broker.resume();

    p.send("thaw", Record::new("after")).unwrap();
    let got = crate::support::poll_n(&mut c, 1);
    assert_eq!((got[0].offset(), got[0].value()), (1, &b"after"[..]));
}
