//! No read path ever hands out a record of a damaged batch, and each one
//! reports `Corruption` naming the file and a position inside the damaged
//! batch: `Partition::read`, `read_with`, `Consumer::poll`, `poll_with`, the
//! read-only `inspect` reader, and the CLI's `consume` and `dump`. Bytes of a
//! sealed segment are flipped one at a time: every byte of one batch, then
//! random bytes anywhere in the segment.
#![cfg(feature = "cli")]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{batches, segment_paths, Rng};
use logbus::inspect::Inspector;
use logbus::{Broker, ConsumerConfig, Error, OffsetReset, Record, TopicConfig, TopicPartition};

const BIN: &str = env!("CARGO_BIN_EXE_logbus");
const RECORDS: u64 = 200;
const PER_BATCH: u64 = 4;

fn value(offset: u64) -> String {
    format!("value-{offset:05}-abcdefghijklmnopqrstuvwxyz")
}

/// A topic of one partition whose first segment is sealed, and that
/// segment's batches as (byte range, offset range).
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    segment: PathBuf,
    original: Vec<u8>,
    batches: Vec<(Range<u64>, Range<u64>)>,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let broker = Broker::open(&dir).unwrap();
        broker
            .create_topic("t", TopicConfig::new(1).segment_bytes(4096))
            .unwrap();
        let producer = broker.producer();
        for first in (0..RECORDS).step_by(PER_BATCH as usize) {
            let batch = (first..first + PER_BATCH).map(|o| Record::new(value(o)).with_key(format!("k{o}")));
            producer.send_batch("t", batch).unwrap();
        }
        broker.close().unwrap();
        let segs = segment_paths(&dir.join("t").join("0"));
        assert!(segs.len() > 1, "the first segment must be sealed");
        let segment = segs[0].1.clone();
        let original = std::fs::read(&segment).unwrap();
        let batches: Vec<_> = batches(&original)
            .into_iter()
            .map(|(pos, h)| {
                let bytes = pos as u64..pos as u64 + u64::from(h.len);
                (bytes, h.base_offset..h.next_offset())
            })
            .collect();
        assert_eq!(
            batches.last().unwrap().0.end,
            original.len() as u64,
            "a sealed segment holds whole batches"
        );
        assert!(batches.len() > 3);
        Fixture {
            _tmp: tmp,
            dir,
            segment,
            original,
            batches,
        }
    }

    /// Flips `mask` into the byte at `at` of the sealed segment, checks every
    /// read path, and restores the byte.
    fn check_flip(&self, at: u64, mask: u8, cli: bool) {
        let (bytes, offsets) = self.batches.iter().find(|(b, _)| b.contains(&at)).cloned().unwrap();
        let mut damaged = self.original.clone();
        damaged[at as usize] ^= mask;
        std::fs::write(&self.segment, &damaged).unwrap();
        let what = format!("byte {at} ^ {mask:#04x} (batch at bytes {bytes:?}, offsets {offsets:?})");
        let seen = Seen {
            what: &what,
            segment: &self.segment,
            bytes: &bytes,
            offsets: &offsets,
        };
        self.check_library(&seen);
        if cli {
            self.check_cli(&seen);
        }
        std::fs::write(&self.segment, &self.original).unwrap();
    }

    fn check_library(&self, seen: &Seen<'_>) {
        let broker = Broker::open(&self.dir).unwrap();
        let partition = broker.topic("t").unwrap().partition(0).unwrap();

        let err = partition.read(0, RECORDS as usize).unwrap_err();
        seen.corruption("Partition::read", &err);

        let mut lent = Vec::new();
        let err = partition
            .read_with(0, RECORDS as usize, |r| lent.push((r.offset(), r.value().to_vec())))
            .unwrap_err();
        seen.records("Partition::read_with", &lent);
        seen.corruption("Partition::read_with", &err);

        let tp = TopicPartition::new("t", 0);
        let config = || ConsumerConfig::new().offset_reset(OffsetReset::Earliest);
        let mut consumer = broker.consumer(config()).unwrap();
        consumer.assign(std::slice::from_ref(&tp)).unwrap();
        let (polled, err) = drain(|| {
            consumer
                .poll(Duration::from_millis(10))
                .map(|rs| rs.iter().map(|r| (r.offset(), r.value().to_vec())).collect())
        });
        seen.records("Consumer::poll", &polled);
        seen.corruption("Consumer::poll", &err);

        let mut consumer = broker.consumer(config()).unwrap();
        consumer.assign(std::slice::from_ref(&tp)).unwrap();
        let (lent, err) = drain(|| {
            let mut out = Vec::new();
            consumer
                .poll_with(Duration::from_millis(10), |r| {
                    out.push((r.offset(), r.value().to_vec()))
                })
                .map(|_| out)
        });
        seen.records("Consumer::poll_with", &lent);
        seen.corruption("Consumer::poll_with", &err);
        broker.close().unwrap();

        let mut reader = Inspector::open(&self.dir).unwrap().reader("t", 0, 0).unwrap();
        let (read, err) = drain(|| {
            reader
                .poll(RECORDS as usize)
                .map(|rs| rs.iter().map(|r| (r.offset(), r.value().to_vec())).collect())
        });
        seen.records("inspect reader", &read);
        seen.corruption("inspect reader", &err);
    }

    fn check_cli(&self, seen: &Seen<'_>) {
        let out = Command::new(BIN)
            .env_remove("LOGBUS_DIR")
            .arg("--dir")
            .arg(&self.dir)
            .args(["consume", "t", "--from-beginning"])
            .output()
            .unwrap();
        let printed: Vec<(u64, Vec<u8>)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let offset = line
                    .get(6..11)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{}: consume printed {line:?}", seen.what));
                (offset, line.as_bytes().to_vec())
            })
            .collect();
        seen.records("logbus consume", &printed);
        assert!(!out.status.success(), "{}: consume exited 0", seen.what);
        let stderr = String::from_utf8_lossy(&out.stderr);
        seen.message("logbus consume", &stderr);

        let out = Command::new(BIN).arg("dump").arg(&self.segment).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}: dump's exit code", seen.what);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut dumped = Vec::new();
        for line in stdout.lines().filter(|l| l.starts_with("  offset ")) {
            let offset: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            let shown = value(offset);
            assert!(line.contains(&shown), "{}: dump shows {line:?}", seen.what);
            dumped.push((offset, shown.into_bytes()));
        }
        // dump shows the batches after a bad one too (each checked on its own).
        seen.intact("logbus dump", &dumped);
        assert!(
            stdout.contains("BAD: ") || stdout.contains("DAMAGE at byte"),
            "{}: dump reports nothing:\n{stdout}",
            seen.what
        );
    }
}

/// Calls `poll` until it fails or comes back empty; returns what it
/// returned and the error (a missing error fails the test).
fn drain(mut poll: impl FnMut() -> logbus::Result<Vec<(u64, Vec<u8>)>>) -> (Vec<(u64, Vec<u8>)>, Error) {
    let mut all = Vec::new();
    for _ in 0..RECORDS {
        match poll() {
            Ok(rs) if rs.is_empty() => break,
            Ok(rs) => all.extend(rs),
            Err(e) => return (all, e),
        }
    }
    panic!(
        "reached the end of the partition without an error ({} records)",
        all.len()
    );
}

/// What one flip must look like from every read path.
struct Seen<'a> {
    what: &'a str,
    segment: &'a Path,
    bytes: &'a Range<u64>,
    offsets: &'a Range<u64>,
}

impl Seen<'_> {
    /// Records come in order, from before the damaged batch only, each as written.
    fn records(&self, path: &str, records: &[(u64, Vec<u8>)]) {
        for (i, (offset, _)) in records.iter().enumerate() {
            assert_eq!(*offset, i as u64, "{}: {path} skipped or repeated a record", self.what);
        }
        self.intact(path, records);
    }

    /// No record of the damaged batch, and every record as written.
    fn intact(&self, path: &str, records: &[(u64, Vec<u8>)]) {
        for (offset, bytes) in records {
            assert!(
                !self.offsets.contains(offset),
                "{}: {path} returned offset {offset} of the damaged batch",
                self.what
            );
            assert_eq!(
                bytes.as_slice(),
                value(*offset).as_bytes(),
                "{}: {path} changed a record",
                self.what
            );
        }
    }

    fn corruption(&self, path: &str, err: &Error) {
        match err {
            Error::Corruption {
                path: file, position, ..
            } => {
                assert_eq!(file, self.segment, "{}: {path} names another file: {err}", self.what);
                assert!(
                    self.bytes.contains(position),
                    "{}: {path} reports byte {position}: {err}",
                    self.what
                );
            }
            other => panic!("{}: {path} returned {other:?}, not Corruption", self.what),
        }
    }

    /// A message (the CLI's) naming the file and a byte of the damaged batch.
    fn message(&self, path: &str, text: &str) {
        let file = self.segment.file_name().unwrap().to_str().unwrap();
        assert!(
            text.contains("corruption") && text.contains(file),
            "{}: {path} said {text:?}",
            self.what
        );
        let position: u64 = text
            .split("at byte ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: {path} names no byte: {text:?}", self.what));
        assert!(
            self.bytes.contains(&position),
            "{}: {path} reports byte {position}: {text}",
            self.what
        );
    }
}

/// The reproduction: one byte inside a record's value in a sealed
/// segment (`abcdef` becomes `abXdef`); `consume --from-beginning` printed
/// the changed record, then reported the CRC mismatch.
#[test]
fn a_changed_value_byte_in_a_sealed_segment_is_never_printed() {
    let fx = Fixture::new();
    let needle = value(10);
    let at = fx
        .original
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap()
        + "value-00010-ab".len();
    assert_eq!(fx.original[at], b'c');
    fx.check_flip(at as u64, b'c' ^ b'X', true);
}

#[test]
fn every_byte_of_a_batch_flipped_is_caught_by_every_read_path() {
    let fx = Fixture::new();
    let (bytes, _) = fx.batches[2].clone();
    for at in bytes {
        for mask in [0x01, 0x80] {
            fx.check_flip(at, mask, mask == 0x01);
        }
    }
}

#[test]
fn random_bytes_of_a_sealed_segment_flipped_are_caught_by_every_read_path() {
    let fx = Fixture::new();
    let mut rng = Rng::new(0x5eed_1234);
    for _ in 0..60 {
        let at = rng.below(fx.original.len() as u64);
        let mask = 1u8 << rng.below(8);
        fx.check_flip(at, mask, true);
    }
}
