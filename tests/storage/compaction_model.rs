//! Model-based test of compaction: random puts, tombstones, compaction
//! passes, process crashes and reopens of a compacted log, against a model
//! of everything written (offset -> record) and a `BTreeMap` of each key's
//! latest offset. After every step: every key's latest value is readable,
//! every record read is the one written at its offset (offsets increase, with
//! gaps only where compaction removed records), and the end offset is the
//! number of records written.

use std::collections::BTreeMap;
use std::path::Path;

use logbus::log::Log;
use logbus::{CleanupPolicy, Durability, LogConfig, Record, TopicConfig};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    key: Option<u8>,
    /// `None`: a tombstone.
    value: Option<Vec<u8>>,
    header: Option<Vec<u8>>,
    ts: i64,
}

impl Spec {
    fn record(&self) -> Record {
        let key = self.key.map(|k| format!("key-{k}"));
        let mut r = match (&self.value, &key) {
            (None, Some(k)) => Record::tombstone(k.clone()),
            (value, key) => {
                let r = Record::new(value.clone().unwrap_or_default());
                match key {
                    Some(k) => r.with_key(k.clone()),
                    None => r,
                }
            }
        };
        r = r.with_timestamp(self.ts);
        if let Some(h) = &self.header {
            r = r.with_header("h", h.clone());
        }
        r
    }

    fn is_tombstone(&self) -> bool {
        self.value.is_none() && self.key.is_some()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<Spec>),
    Compact,
    /// Copy the files of the live log (what a kill -9 leaves) and open the copy.
    Crash,
    Reopen,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::option::weighted(0.9, 0u8..12),
        proptest::option::weighted(0.85, proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
        0i64..10_000,
    )
        .prop_map(|(key, value, header, ts)| Spec {
            key,
            value,
            header,
            ts: 1_600_000_000_000 + ts,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => proptest::collection::vec(spec(), 1..6).prop_map(Op::Put),
        3 => Just(Op::Compact),
        1 => Just(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

struct Harness {
    dir: tempfile::TempDir,
    config: LogConfig,
    log: Log,
    /// What was written at each offset.
    written: Vec<Spec>,
    /// Each key's latest offset.
    latest: BTreeMap<u8, u64>,
    /// Tombstones may be removed (delete_retention_ms = 0).
    tombstones_expire: bool,
}

impl Harness {
    fn put(&mut self, specs: &[Spec]) {
        let records: Vec<Record> = specs.iter().map(Spec::record).collect();
        let at = self.log.append(&records).unwrap();
        assert_eq!(at.base_offset, self.written.len() as u64);
        for s in specs {
            if let Some(k) = s.key {
                self.latest.insert(k, self.written.len() as u64);
            }
            self.written.push(s.clone());
        }
    }

    fn crash(&mut self) {
        let copy = tempfile::tempdir().unwrap();
        copy_files(self.dir.path(), copy.path());
        let old = std::mem::replace(&mut self.dir, copy);
        self.log = Log::open(self.dir.path(), self.config.clone()).unwrap();
        drop(old);
    }

    fn check(&self, after: &Op) {
        assert_eq!(self.log.end_offset(), self.written.len() as u64, "after {after:?}");
        let mut seen = BTreeMap::new();
        let mut at = self.log.start_offset();
        let mut last = None;
        while at < self.log.end_offset() {
            let next = self
                .log
                .read_with(at, 5, |r| {
                    let o = r.offset();
                    assert!(last.is_none_or(|l| l < o), "offset {o} after {last:?}");
                    last = Some(o);
                    let want = &self.written[o as usize];
                    assert_eq!(r.key(), want.record().key(), "key at {o} after {after:?}");
                    assert_eq!(r.value(), want.record().value(), "value at {o} after {after:?}");
                    assert_eq!(r.is_tombstone(), want.is_tombstone(), "tombstone flag at {o}");
                    assert_eq!(r.timestamp(), want.ts, "timestamp at {o}");
                    let headers: Vec<Vec<u8>> = r.headers().map(|(_, v)| v.to_vec()).collect();
                    assert_eq!(headers, want.header.clone().into_iter().collect::<Vec<_>>());
                    seen.insert(o, ());
                })
                .unwrap();
            assert!(next > at, "no progress at {at}");
            at = next;
        }
        for (k, &o) in &self.latest {
            let expired_tombstone = self.written[o as usize].is_tombstone() && self.tombstones_expire;
            assert!(
                seen.contains_key(&o) || expired_tombstone,
                "key {k}: its latest record at offset {o} is gone after {after:?}"
            );
        }
        // Keyless records are never removed.
        for (o, s) in self.written.iter().enumerate() {
            if s.key.is_none() {
                assert!(seen.contains_key(&(o as u64)), "keyless record {o} removed");
            }
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Put(specs) => self.put(specs),
            Op::Compact => {
                self.log.compact().unwrap();
            }
            Op::Crash => self.crash(),
            Op::Reopen => {
                self.log.close().unwrap();
                self.log = Log::open(self.dir.path(), self.config.clone()).unwrap();
            }
        }
        self.check(op);
    }
}

fn copy_files(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn compacted_log_keeps_every_latest_value(
        segment_bytes in 200u64..1500,
        tombstones_expire in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..50),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let topic = TopicConfig::new(1)
            .segment_bytes(segment_bytes)
            .cleanup_policy(CleanupPolicy::Compact)
            .delete_retention_ms(if tombstones_expire { 0 } else { 86_400_000 });
        let config = LogConfig::from_topic(&topic, Durability::PageCache);
        let log = Log::open(dir.path(), config.clone()).unwrap();
        let mut h = Harness {
            dir,
            config,
            log,
            written: Vec::new(),
            latest: BTreeMap::new(),
            tombstones_expire,
        };
        for op in &ops {
            h.run(op);
        }
        h.run(&Op::Compact);
        h.log.verify().unwrap();
        h.log.close().unwrap();
    }
}
