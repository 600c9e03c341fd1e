//! Model-based test: random interleavings of begin / send / send_batch / send_offsets /
//! commit / abort / drop / plain sends / crash / reopen against a simple
//! model of what read-committed and read-uncommitted readers must see, the
//! last stable offset of each partition, and the group's committed offset.
//!
//! A crash copies the directory's files as they are (what a kill -9 leaves:
//! everything written is in the page cache) and opens the copy; the open
//! transactions of the old process are lost with it.

use std::collections::HashMap;
use std::path::PathBuf;

use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, Record, TopicConfig, TopicPartition, Transaction};
use proptest::prelude::*;

const PARTITIONS: u32 = 3;
const GROUP: &str = "g";

#[derive(Debug, Clone)]
enum Op {
    Begin,
    Send { txn: usize, partition: u32 },
    SendBatch { txn: usize, n: u32 },
    SendOffsets { txn: usize },
    Commit { txn: usize },
    Abort { txn: usize },
    Drop { txn: usize },
    Plain { partition: u32 },
    Crash,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Begin),
        8 => (0..4usize, 0..PARTITIONS).prop_map(|(txn, partition)| Op::Send { txn, partition }),
        2 => (0..4usize, 1..6u32).prop_map(|(txn, n)| Op::SendBatch { txn, n }),
        1 => (0..4usize).prop_map(|txn| Op::SendOffsets { txn }),
        3 => (0..4usize).prop_map(|txn| Op::Commit { txn }),
        1 => (0..4usize).prop_map(|txn| Op::Abort { txn }),
        1 => (0..4usize).prop_map(|txn| Op::Drop { txn }),
        2 => (0..PARTITIONS).prop_map(|partition| Op::Plain { partition }),
        1 => Just(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    Open,
    Committed,
    Aborted,
}

#[derive(Default)]
struct Model {
    /// Per partition: (offset, value, transaction) of every data record.
    records: Vec<Vec<(u64, String, Option<usize>)>>,
    fates: Vec<Fate>,
    /// First offset of each open transaction per partition.
    first: HashMap<(usize, u32), u64>,
    /// Offset a transaction would commit for the group.
    pending_offset: HashMap<usize, u64>,
    committed_offset: Option<u64>,
    next_value: u64,
}

impl Model {
    fn lso(&self, p: u32, end: u64) -> u64 {
        self.first
            .iter()
            .filter(|((t, q), _)| *q == p && self.fates[*t] == Fate::Open)
            .map(|(_, &o)| o)
            .min()
            .unwrap_or(end)
    }

    fn finish(&mut self, t: usize, fate: Fate) {
        self.fates[t] = fate;
        self.first.retain(|(x, _), _| *x != t);
        let offset = self.pending_offset.remove(&t);
        if fate == Fate::Committed {
            if let Some(o) = offset {
                self.committed_offset = Some(o);
            }
        }
    }
}

fn config() -> BrokerConfig {
    BrokerConfig::new().durability(Durability::PageCache)
}

fn check(broker: &Broker, m: &Model, step: usize) {
    let topic = broker.topic("t").unwrap();
    let got = crate::common::read_committed(broker, "t", "model");
    let mut want = Vec::new();
    for p in 0..PARTITIONS {
        let part = topic.partition(p).unwrap();
        let lso = m.lso(p, part.end_offset());
        assert_eq!(
            part.log().last_stable_offset(),
            lso,
            "step {step}: partition {p} last stable offset"
        );
        for (o, v, t) in &m.records[p as usize] {
            if *o < lso && t.is_none_or(|t| m.fates[t] == Fate::Committed) {
                want.push((p, *o, v.clone()));
            }
        }
        // Read uncommitted: every data record, markers skipped.
        let all: Vec<(u64, String)> = part
            .read(0, 10_000)
            .unwrap()
            .iter()
            .map(|r| (r.offset(), String::from_utf8(r.value().to_vec()).unwrap()))
            .collect();
        let model_all: Vec<(u64, String)> = m.records[p as usize].iter().map(|(o, v, _)| (*o, v.clone())).collect();
        assert_eq!(all, model_all, "step {step}: partition {p} read uncommitted");
        part.verify().unwrap();
    }
    let mut got = got;
    got.sort();
    want.sort();
    assert_eq!(got, want, "step {step}: read committed");
    let probe = broker.consumer(ConsumerConfig::new().group(GROUP)).unwrap();
    assert_eq!(
        probe.committed(&TopicPartition::new("t", 0)).unwrap(),
        m.committed_offset,
        "step {step}: the group's committed offset"
    );
}

fn run(ops: Vec<Op>) {
    let root = tempfile::tempdir().unwrap();
    let mut generation = 0;
    let mut dir: PathBuf = root.path().join("0");
    let mut broker = Broker::open_with(&dir, config()).unwrap();
    broker
        .create_topic("t", TopicConfig::new(PARTITIONS).segment_bytes(64 * 1024))
        .unwrap();
    let mut m = Model {
        records: vec![Vec::new(); PARTITIONS as usize],
        ..Model::default()
    };
    let mut open: Vec<(usize, Transaction)> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        let pick = |open: &Vec<(usize, Transaction)>, i: usize| (!open.is_empty()).then(|| i % open.len());
        match op {
            Op::Begin => {
                let t = broker.producer().transaction().unwrap();
                m.fates.push(Fate::Open);
                open.push((m.fates.len() - 1, t));
            }
            Op::Send { txn, partition } => {
                let Some(i) = pick(&open, txn) else { continue };
                let (id, t) = &mut open[i];
                let v = format!("v{}", m.next_value);
                m.next_value += 1;
                let md = t.send("t", Record::new(v.clone()).with_partition(partition)).unwrap();
                m.first.entry((*id, partition)).or_insert(md.offset());
                m.records[partition as usize].push((md.offset(), v, Some(*id)));
            }
            Op::SendBatch { txn, n } => {
                let Some(i) = pick(&open, txn) else { continue };
                let (id, t) = &mut open[i];
                let values: Vec<(u32, String)> = (0..n)
                    .map(|k| {
                        m.next_value += 1;
                        (k % PARTITIONS, format!("v{}", m.next_value - 1))
                    })
                    .collect();
                let mds = t
                    .send_batch(
                        "t",
                        values.iter().map(|(p, v)| Record::new(v.clone()).with_partition(*p)),
                    )
                    .unwrap();
                for (md, (p, v)) in mds.iter().zip(values) {
                    m.first.entry((*id, p)).or_insert(md.offset());
                    m.records[p as usize].push((md.offset(), v, Some(*id)));
                }
            }
            Op::SendOffsets { txn } => {
                let Some(i) = pick(&open, txn) else { continue };
                let (id, t) = &mut open[i];
                let end = broker.topic("t").unwrap().partition(0).unwrap().end_offset();
                t.send_offsets(GROUP, &[(TopicPartition::new("t", 0), end)]).unwrap();
                m.pending_offset.insert(*id, end);
            }
            Op::Commit { txn } | Op::Abort { txn } | Op::Drop { txn } => {
                let Some(i) = pick(&open, txn) else { continue };
                let (id, t) = open.remove(i);
                let fate = match op {
                    Op::Commit { .. } => {
                        t.commit().unwrap();
                        Fate::Committed
                    }
                    Op::Abort { .. } => {
                        t.abort().unwrap();
                        Fate::Aborted
                    }
                    _ => {
                        drop(t);
                        Fate::Aborted
                    }
                };
                m.finish(id, fate);
                // A marker takes an offset in each partition the transaction wrote to.
            }
            Op::Plain { partition } => {
                let v = format!("v{}", m.next_value);
                m.next_value += 1;
                let md = broker
                    .producer()
                    .send("t", Record::new(v.clone()).with_partition(partition))
                    .unwrap();
                m.records[partition as usize].push((md.offset(), v, None));
            }
            Op::Crash => {
                generation += 1;
                let next = root.path().join(generation.to_string());
                crate::common::copy_dir(&dir, &next);
                // The old process's open transactions die with it.
                for (id, t) in open.drain(..) {
                    m.finish(id, Fate::Aborted);
                    drop(t);
                }
                drop(std::mem::replace(
                    &mut broker,
                    Broker::open_with(&next, config()).unwrap(),
                ));
                dir = next;
            }
            Op::Reopen => {
                for (id, t) in open.drain(..) {
                    m.finish(id, Fate::Aborted);
                    drop(t);
                }
                broker.close().unwrap();
                broker = Broker::open_with(&dir, config()).unwrap();
            }
        }
        check(&broker, &m, step);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn transactions_match_the_model_across_crashes_and_reopens(ops in proptest::collection::vec(op(), 1..32)) {
        run(ops);
    }
}
