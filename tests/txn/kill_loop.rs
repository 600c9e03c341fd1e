//! Consume -> transform -> produce, killed -9 over and over: 0 lost, 0
//! duplicated outputs.
//!
//! The child (this binary re-executed) runs a pipeline in `Durability::Sync`:
//! a group consumer reads `input` (2 partitions) a few records at a time and,
//! per poll, one transaction writes one output per input record to `output`
//! (3 partitions, keyed) and sends the consumer's next offsets with it. One
//! transaction in five is aborted instead (the consumer seeks back and
//! retries). It prints `@T <partition> <next> ...` after each commit returns.
//! The parent SIGKILLs it after a random delay, reopens the directory,
//! appends more input, and checks: the outputs a read-committed reader sees
//! are exactly one per input record below the group's committed offsets (no
//! loss, no duplicate, nothing else), and the committed offsets are at or past
//! every acknowledged commit.

use std::collections::{BTreeMap, HashMap};

use std::path::Path;

use std::time::Duration;

use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, OffsetReset, Record, TopicConfig, TopicPartition};

use crate::common::{self, Deadline, Rng};

const CHILD_ENV: &str = "LOGBUS_TXN_KILL_CHILD";
const TEST_NAME: &str = "consume_transform_produce_killed_9_times_loses_and_duplicates_nothing";
const INPUT: &str = "input";
const OUTPUT: &str = "output";
const GROUP: &str = "etl";
const KILLS: usize = 50;
const INPUT_PER_ROUND: u64 = 60;

fn broker_config() -> BrokerConfig {
    BrokerConfig::new().durability(Durability::Sync)
}

fn transform(input: &str) -> String {
    format!("out<{input}>")
}

fn child(dir: &Path) {
    let broker = Broker::open_with(dir, broker_config()).unwrap();
    let producer = broker.producer();
    let mut consumer = broker
        .consumer(
            ConsumerConfig::new()
                .group(GROUP)
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(7),
        )
        .unwrap();
    consumer.subscribe(&[INPUT]).unwrap();
    let deadline = Deadline::new(Duration::from_secs(20), "the child's run");
    let mut n = 0u64;
    while !deadline.passed() {
        let records = consumer.poll(Duration::from_millis(10)).unwrap();
        if records.is_empty() {
            continue;
        }
        n += 1;
        let mut first: BTreeMap<TopicPartition, u64> = BTreeMap::new();
        let mut next: BTreeMap<TopicPartition, u64> = BTreeMap::new();
        let mut txn = producer.transaction().unwrap();
        for r in records.iter() {
            let tp = TopicPartition::new(r.topic(), r.partition());
            first.entry(tp.clone()).or_insert(r.offset());
            next.insert(tp, r.offset() + 1);
            let v = transform(std::str::from_utf8(r.value()).unwrap());
            txn.send(OUTPUT, Record::new(v.clone()).with_key(v)).unwrap();
        }
        let offsets: Vec<(TopicPartition, u64)> = next.clone().into_iter().collect();
        txn.send_offsets(GROUP, &offsets).unwrap();
        if n.is_multiple_of(5) {
            txn.abort().unwrap();
            for (tp, o) in first {
                consumer.seek(&tp, o).unwrap();
            }
            continue;
        }
        txn.commit().unwrap();
        let mut line = "@T".to_string();
        for (tp, o) in next {
            line.push_str(&format!(" {} {o}", tp.partition));
        }
        line.push('\n');
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn consume_transform_produce_killed_9_times_loses_and_duplicates_nothing() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: HashMap<u32, Vec<String>> = HashMap::new();
    let add_input = |inputs: &mut HashMap<u32, Vec<String>>, broker: &Broker, round: usize| {
        // One batch (one fsync) per partition.
        let values: Vec<(u32, String)> = (0..INPUT_PER_ROUND)
            .map(|i| ((i % 2) as u32, format!("r{round}-i{i}")))
            .collect();
        let records = values
            .iter()
            .map(|(part, v)| Record::new(v.clone()).with_partition(*part));
        let mds = broker.producer().send_batch(INPUT, records).unwrap();
        for (md, (part, v)) in mds.iter().zip(values) {
            let list = inputs.entry(part).or_default();
            assert_eq!(md.offset(), list.len() as u64);
            list.push(v);
        }
    };
    {
        let broker = Broker::open_with(dir.path(), broker_config()).unwrap();
        broker
            .create_topic(INPUT, TopicConfig::new(2).segment_bytes(64 * 1024))
            .unwrap();
        broker
            .create_topic(OUTPUT, TopicConfig::new(3).segment_bytes(64 * 1024))
            .unwrap();
        add_input(&mut inputs, &broker, 0);
        broker.close().unwrap();
    }
    let mut rng = Rng::from_time();
    let mut acked: HashMap<u32, u64> = HashMap::new();
    let (mut commits_acked, mut outputs_checked) = (0u64, 0usize);
    for round in 1..=KILLS {
        let mut child = common::rerun_self(module_path!(), TEST_NAME);
        child.env(CHILD_ENV, dir.path());
        let lines = common::kill_after(child, Duration::from_millis(30 + rng.below(200)), round);
        for line in lines {
            let Some(at) = line.find("@T ") else { continue };
            let fields: Vec<u64> = line[at + 3..].split(' ').map(|f| f.parse().unwrap()).collect();
            for pair in fields.chunks(2) {
                let e = acked.entry(pair[0] as u32).or_insert(0);
                *e = (*e).max(pair[1]);
            }
            commits_acked += 1;
        }

        let broker = Broker::open_with(dir.path(), broker_config()).unwrap();
        let probe = broker.consumer(ConsumerConfig::new().group(GROUP)).unwrap();
        let mut expected: Vec<String> = Vec::new();
        for p in 0..2u32 {
            let c = probe.committed(&TopicPartition::new(INPUT, p)).unwrap().unwrap_or(0);
            let a = acked.get(&p).copied().unwrap_or(0);
            assert!(c >= a, "round {round}: input {p} committed {c} behind acknowledged {a}");
            expected.extend(inputs[&p][..c as usize].iter().map(|v| transform(v)));
        }
        drop(probe);
        let mut got: Vec<String> = common::read_committed(&broker, OUTPUT, "kill loop")
            .into_iter()
            .map(|(_, _, v)| v)
            .collect();
        let total = got.len();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), total, "round {round}: an output appears twice");
        expected.sort();
        assert_eq!(got, expected, "round {round}: outputs differ from the committed inputs");
        outputs_checked += total;
        for p in 0..3 {
            let part = broker.topic(OUTPUT).unwrap().partition(p).unwrap();
            part.verify()
                .unwrap_or_else(|e| panic!("round {round}: verify output {p}: {e}"));
        }
        add_input(&mut inputs, &broker, round);
        broker.close().unwrap();
    }
    println!(
        "txn_kill_loop: kills {KILLS}, commits acknowledged {commits_acked}, outputs checked {outputs_checked}, lost 0, duplicated 0"
    );
    assert!(commits_acked > 0, "the children committed nothing");
}
