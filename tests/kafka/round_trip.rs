//! A record keeps its key, value, headers, timestamp and partition through a Kafka broker.

use logbus::{Record, TopicPartition};

use crate::broker::Tansu;
use crate::support::{consumer, create_topic, poll_n, producer};

#[test]
fn key_value_headers_timestamp_and_partition_survive_the_round_trip() {
    let broker = Tansu::start();
    create_topic(&broker, "rt", 3);
    let p = producer(&broker);
    let sent = vec![
        Record::new("v0")
            .with_key("k0")
            .with_header("h", "1")
            .with_header("h", "2")
            .with_header("trace", "")
            .with_timestamp(1_700_000_000_123)
            .with_partition(2),
        Record::new("no key")
            .with_timestamp(1_700_000_000_456)
            .with_partition(2),
        Record::new(vec![0u8, 255, 7])
            .with_key(vec![1u8, 2])
            .with_timestamp(1_700_000_000_789)
            .with_partition(2),
    ];
    let mds = p.send_batch("rt", sent.clone()).unwrap();
    assert_eq!(mds.len(), 3);
    for (i, md) in mds.iter().enumerate() {
        assert_eq!((md.topic(), md.partition(), md.offset()), ("rt", 2, i as u64));
    }
    assert_eq!(mds[0].timestamp(), 1_700_000_000_123);

    let mut c = consumer(&broker).build().unwrap();
    c.assign(&[TopicPartition::new("rt", 2)]).unwrap();
    let got = poll_n(&mut c, 3);
    for (i, (r, s)) in got.iter().zip(&sent).enumerate() {
        assert_eq!((r.topic(), r.partition(), r.offset()), ("rt", 2, i as u64));
        assert_eq!(r.key(), s.key(), "key of record {i}");
        assert_eq!(r.value(), s.value(), "value of record {i}");
        assert_eq!(r.timestamp(), s.timestamp().unwrap(), "timestamp of record {i}");
        let h: Vec<_> = r.headers().collect();
        let want: Vec<_> = s.headers().collect();
        assert_eq!(h, want, "headers of record {i}");
        // The consumed record becomes the same record again (without its partition).
        assert_eq!(r.to_record(), s.clone().to_record_without_partition());
    }
}

/// `Record` has no public way to drop an explicit partition; rebuild it.
trait WithoutPartition {
    fn to_record_without_partition(self) -> Record;
}

impl WithoutPartition for Record {
    fn to_record_without_partition(self) -> Record {
        let mut r = Record::new(self.value());
        if let Some(k) = self.key() {
            r = r.with_key(k);
        }
        for (n, v) in self.headers() {
            r = r.with_header(n, v);
        }
        r.with_timestamp(self.timestamp().unwrap())
    }
}

#[test]
fn send_returns_after_the_ack_and_flush_returns_ok() {
    let broker = Tansu::start();
    create_topic(&broker, "acks", 1);
    let p = producer(&broker);
    let md = p.send("acks", Record::new("one")).unwrap();
    assert_eq!((md.partition(), md.offset()), (0, 0));
    let md = p.send("acks", Record::new("two")).unwrap();
    assert_eq!(md.offset(), 1);
    p.flush().unwrap();
}
