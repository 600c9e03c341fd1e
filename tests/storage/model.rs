//! Model-based test of the storage engine: random sequences of appends,
//! reads, reopens, truncations and torn-tail crashes against a `Vec` model.
//! The log is not compacted, so it must stay gap-free (offset `o` holds
//! `model[o]`); compacted logs, with gaps, are `compaction_model.rs`'s.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use logbus::format::batch::{self, Peek};
use logbus::format::checkpoint::{self, Checkpoint};
use logbus::log::Log;
use logbus::{Durability, Error, LogConfig, Record, TopicConfig};
use proptest::prelude::*;

use crate::common;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    ts: i64,
}

impl Spec {
    fn record(&self) -> Record {
        let mut r = Record::new(self.value.clone()).with_timestamp(self.ts);
        if let Some(k) = &self.key {
            r = r.with_key(k.clone());
        }
        for (n, v) in &self.headers {
            r = r.with_header(n.clone(), v.clone());
        }
        r
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Spec),
    AppendBatch(Vec<Spec>),
    Read {
        at: u16,
        max: u8,
    },
    Reopen,
    Truncate {
        at: u16,
    },
    /// Close, cut the active segment file at a random byte, mark the
    /// shutdown unclean, reopen.
    CrashReopen {
        cut: u16,
    },
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        proptest::collection::vec(any::<u8>(), 0..120),
        proptest::collection::vec(("[a-c]{0,3}", proptest::collection::vec(any::<u8>(), 0..8)), 0..3),
        // Non-monotonic, occasionally negative timestamps.
        -5_000i64..100_000,
    )
        .prop_map(|(key, value, headers, ts)| Spec {
            key,
            value,
            headers,
            ts: 1_600_000_000_000 + ts,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => spec().prop_map(Op::Append),
        4 => proptest::collection::vec(spec(), 1..12).prop_map(Op::AppendBatch),
        4 => (any::<u16>(), 1u8..40).prop_map(|(at, max)| Op::Read { at, max }),
        1 => Just(Op::Reopen),
        1 => any::<u16>().prop_map(|at| Op::Truncate { at }),
        1 => any::<u16>().prop_map(|cut| Op::CrashReopen { cut }),
    ]
}

struct Harness {
    dir: tempfile::TempDir,
    segment_bytes: u64,
    log: Log,
    model: Vec<Spec>,
}

impl Harness {
    fn config(&self) -> LogConfig {
        LogConfig::from_topic(
            &TopicConfig::new(1).segment_bytes(self.segment_bytes),
            Durability::PageCache,
        )
    }

    fn too_large(&self, s: &Spec) -> bool {
        let r = s.record();
        let max = TopicConfig::new(1)
            .segment_bytes(self.segment_bytes)
            .effective_max_record_bytes() as usize;
        r.size() > max || batch::HEADER_LEN + batch::record_len(&r, 0, 0, 0) > self.segment_bytes as usize
    }

    fn append(&mut self, specs: &[Spec]) {
        let records: Vec<Record> = specs.iter().map(Spec::record).collect();
        let result = self.log.append(&records);
        if specs.iter().any(|s| self.too_large(s)) {
            assert!(matches!(result, Err(Error::RecordTooLarge { .. })), "{result:?}");
        } else {
            let at = result.unwrap();
            assert_eq!(at.base_offset, self.model.len() as u64);
            assert_eq!(at.count, specs.len());
            self.model.extend_from_slice(specs);
        }
    }

    fn check_read(&self, offset: u64, max: usize) {
        let len = self.model.len() as u64;
        match self.log.read(offset, max) {
            Ok(got) => {
                assert!(offset <= len, "read({offset}) past the end {len} succeeded");
                assert_eq!(
                    got.len() as u64,
                    (max as u64).min(len - offset),
                    "read({offset}, {max})"
                );
                for (i, r) in got.iter().enumerate() {
                    let o = offset + i as u64;
                    let want = &self.model[o as usize];
                    assert_eq!(r.offset(), o);
                    assert_eq!(r.value(), &want.value[..], "value at {o}");
                    assert_eq!(r.key(), want.key.as_deref(), "key at {o}");
                    assert_eq!(r.timestamp(), want.ts, "timestamp at {o}");
                    let headers: Vec<(String, Vec<u8>)> =
                        r.headers().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
                    assert_eq!(headers, want.headers, "headers at {o}");
                }
            }
            Err(e) => {
                assert!(offset > len, "read({offset}, {max}) of {len} records failed: {e}");
                assert!(matches!(e, Error::OffsetOutOfRange { .. }), "{e:?}");
            }
        }
    }

    fn check_all(&self) {
        assert_eq!(self.log.start_offset(), 0);
        assert_eq!(self.log.end_offset(), self.model.len() as u64);
        self.check_read(0, usize::MAX);
    }

    fn reopen(&mut self) {
        self.log = Log::open(self.dir.path(), self.config()).unwrap();
    }

    fn active_segment(&self) -> (u64, PathBuf) {
        common::segment_paths(self.dir.path()).pop().unwrap()
    }

    fn crash_reopen(&mut self, cut: u16) {
        self.log.close().unwrap();
        let (base, path) = self.active_segment();
        let bytes = std::fs::read(&path).unwrap();
        let cut = cut as usize % (bytes.len() + 1);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        // Records of whole batches before the cut survive.
        let kept = &bytes[..cut];
        let (mut pos, mut next) = (0usize, base);
        while let Peek::Batch(h) = batch::peek(&kept[pos..]) {
            pos += h.len as usize;
            next = h.next_offset();
        }
        assert!(next <= self.model.len() as u64);
        self.model.truncate(next as usize);
        // The process "died": the checkpoint is not clean. A log that never
        // held a record has none (and nothing to scan).
        let ckpt = dir_ckpt(self.dir.path());
        let had_checkpoint = ckpt.exists();
        if had_checkpoint {
            let c = checkpoint::decode(&std::fs::read(&ckpt).unwrap()).unwrap();
            std::fs::write(&ckpt, checkpoint::encode(&Checkpoint { clean: false, ..c })).unwrap();
        }
        self.reopen();
        assert_eq!(self.log.recovery_report().clean, !had_checkpoint);
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Append(s) => self.append(std::slice::from_ref(s)),
            Op::AppendBatch(specs) => self.append(specs),
            Op::Read { at, max } => {
                let offset = u64::from(*at) % (self.model.len() as u64 + 2);
                self.check_read(offset, usize::from(*max));
            }
            Op::Reopen => {
                self.log.close().unwrap();
                self.reopen();
                assert!(self.log.recovery_report().clean);
            }
            Op::Truncate { at } => {
                let offset = u64::from(*at) % (self.model.len() as u64 + 1);
                self.log.truncate(offset).unwrap();
                self.model.truncate(offset as usize);
            }
            Op::CrashReopen { cut } => self.crash_reopen(*cut),
        }
        assert_eq!(self.log.end_offset(), self.model.len() as u64, "after {op:?}");
        assert_eq!(self.log.start_offset(), 0, "after {op:?}");
    }
}

fn dir_ckpt(dir: &Path) -> PathBuf {
    dir.join("recovery.ckpt")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_vec_model(segment_bytes in 256u64..4096, ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::from_topic(&TopicConfig::new(1).segment_bytes(segment_bytes), Durability::PageCache);
        let log = Log::open(dir.path(), config).unwrap();
        let mut h = Harness { dir, segment_bytes, log, model: Vec::new() };
        for op in &ops {
            h.run(op);
        }
        h.check_all();
        prop_assert_eq!(h.log.verify().unwrap(), h.model.len() as u64);
        // Timestamp lookups against brute force.
        let mut probes: Vec<i64> = h.model.iter().map(|s| s.ts).collect();
        probes.extend([i64::MIN, i64::MAX]);
        for ts in probes {
            let want = h.model.iter().position(|s| s.ts >= ts).map(|p| p as u64);
            prop_assert_eq!(h.log.offset_for_timestamp(ts).unwrap(), want, "offset_for_timestamp({})", ts);
        }
        // And once more after a clean reopen.
        h.log.close().unwrap();
        h.reopen();
        h.check_all();
        h.log.close().unwrap();
    }
}
