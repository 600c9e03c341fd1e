//! `Consumer::stream`: records one at a time, in order, and a dropped
//! stream gives back what it read but did not yield.

use std::time::Duration;

use logbus::{Broker, Record, TopicConfig, TopicPartition};
use smol::stream::StreamExt;

use crate::{earliest, numbered, tail_a_sender, RUNTIMES};

#[test]
fn the_stream_yields_every_record_in_order_as_they_arrive() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let n = 300u32;
        let (_broker, mut consumer, sender) = tail_a_sender(dir.path(), n, 60);
        let got: Vec<(u64, Vec<u8>)> = rt.block_on(async {
            let stream = consumer.stream().take(n as usize).map(|r| {
                let r = r.unwrap();
                (r.offset(), r.value().to_vec())
            });
            rt.within("the stream's records", stream.collect()).await
        });
        sender.join().unwrap();
        let want = numbered(n);
        assert_eq!(got, want, "{rt:?}");
    }
}

#[test]
fn records_a_dropped_stream_read_but_did_not_yield_are_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let producer = broker.producer();
    for i in 0..20u8 {
        producer
            .send("t", Record::new(vec![i]).with_partition(u32::from(i % 2)))
            .unwrap();
    }
    let group = "g";
    let mut consumer = broker
        .consumer(earliest().group(group).auto_commit(true).max_poll_records(8))
        .unwrap();
    let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    consumer.assign(&[p0.clone(), p1.clone()]).unwrap();
    let first: Vec<(u32, u64)> = smol::block_on(async {
        let mut stream = std::pin::pin!(consumer.stream());
        let mut first = Vec::new();
        for _ in 0..5 {
            let r = stream.next().await.unwrap().unwrap();
            first.push((r.partition(), r.offset()));
        }
        first
    });
    assert_eq!(first.len(), 5);
    // Positions stop right after the yielded records, partition by partition.
    let next_of = |p: u32| {
        first
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| o + 1)
            .max()
            .unwrap_or(0)
    };
    assert_eq!(consumer.position(&p0).unwrap(), next_of(0));
    assert_eq!(consumer.position(&p1).unwrap(), next_of(1));
    // Auto commit (at the next receive) commits only what was yielded.
    let rest = smol::block_on(consumer.recv()).unwrap();
    assert_eq!(consumer.committed(&p0).unwrap(), Some(next_of(0)));
    assert_eq!(consumer.committed(&p1).unwrap(), Some(next_of(1)));
    // Every record is seen exactly once across the stream and what follows.
    let mut seen: Vec<(u32, u64)> = first.clone();
    seen.extend(rest.iter().map(|r| (r.partition(), r.offset())));
    loop {
        let more = consumer.poll(Duration::ZERO).unwrap();
        if more.is_empty() {
            break;
        }
        seen.extend(more.iter().map(|r| (r.partition(), r.offset())));
    }
    seen.sort_unstable();
    let want: Vec<(u32, u64)> = (0..2).flat_map(|p| (0..10).map(move |o| (p, o))).collect();
    assert_eq!(seen, want);
}
