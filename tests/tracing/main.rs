//! Tracing (feature `tracing`): opening, recovery, rolls, retention,
//! rebalances and poisoning show up as spans and events with their fields,
//! seen by a subscriber that records them. The subscriber is the process's
//! global one (a thread's scoped subscriber would miss the events of threads
//! that registered a call site without one), so each test picks out its own
//! events by topic, group or directory. One test injects an fsync failure
//! (with `fault-injection`), which any log of the process could take: every
//! test holds [`common::process_wide_faults`].

#[path = "../common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use logbus::{Broker, ConsumerConfig, Record, TopicConfig};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Metadata, Subscriber};

/// What the subscriber saw: span names and `(message, fields)` of events.
#[derive(Default, Clone)]
struct Seen {
    spans: Vec<(String, String)>,
    events: Vec<(String, String)>,
}

impl Seen {
    /// The fields of the events whose message is `message` and whose fields contain `about`.
    fn events(&self, message: &str, about: &str) -> Vec<&str> {
        self.events
            .iter()
            .filter(|(m, f)| m == message && f.contains(about))
            .map(|(_, f)| f.as_str())
            .collect()
    }
}

/// Fields as `name=value` words, and the message apart.
#[derive(Default)]
struct Fields {
    message: String,
    text: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.text.push_str(&format!("{}={value:?} ", field.name()));
        }
    }
}

/// A subscriber that records every span and event at every level.
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    next_id: AtomicU64,
}

/// Everything seen since the recorder became the global subscriber (at the first call).
fn seen() -> Seen {
    static SEEN: OnceLock<Arc<Mutex<Seen>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let recorder = Recorder {
            seen: Arc::clone(&seen),
            next_id: AtomicU64::new(0),
        };
        tracing::subscriber::set_global_default(recorder).unwrap();
        seen
    });
    seen.lock().unwrap().clone()
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let name = span.metadata().name().to_string();
        self.seen.lock().unwrap().spans.push((name, fields.text));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &SpanRecord<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.seen.lock().unwrap().events.push((fields.message, fields.text));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn opening_rolling_retention_and_rebalances_are_traced() {
    let _faults = common::process_wide_faults();
    seen();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    let config = TopicConfig::new(1).segment_bytes(4096).retention_bytes(Some(8192));
    broker.create_topic("traced", config).unwrap();
    let p = broker.producer();
    for i in 0..200 {
        p.send("traced", Record::new(format!("{i:0>100}"))).unwrap();
    }
    let mut c = broker.consumer(ConsumerConfig::new().group("traced-group")).unwrap();
    c.subscribe(&["traced"]).unwrap();
    c.poll(Duration::from_millis(10)).unwrap();
    c.close().unwrap();

    let seen = seen();
    let dir_field = format!("dir={}", dir.path().display());
    assert!(
        seen.spans
            .iter()
            .any(|(n, f)| n == "logbus.broker.open" && f.contains(&dir_field)),
        "{:?}",
        seen.spans
    );
    assert!(
        seen.spans
            .iter()
            .any(|(n, f)| n == "logbus.log.open" && f.contains("topic=\"traced\"") && f.contains("partition=0")),
        "{:?}",
        seen.spans
    );
    let topic = "topic=\"traced\"";
    let opened = seen.events("partition opened", topic);
    assert!(
        opened
            .iter()
            .any(|f| f.contains("clean=") && f.contains("scanned_bytes=")),
        "{opened:?}"
    );
    let rolled = seen.events("segment rolled", topic);
    assert!(
        rolled.len() >= 4,
        "200 records of 100 bytes roll 4 KiB segments: {rolled:?}"
    );
    assert!(rolled
        .iter()
        .all(|f| f.contains("sealed_base=") && f.contains("next_base=")));
    let deleted = seen.events("retention deleted segments", topic);
    assert!(!deleted.is_empty(), "the 8 KiB limit deletes segments");
    assert!(deleted
        .iter()
        .all(|f| f.contains("segments=") && f.contains("start_offset=")));
    let rebalanced = seen.events("group rebalanced", "group=\"traced-group\"");
    assert!(rebalanced.iter().any(|f| f.contains("members=1")), "{rebalanced:?}");
    assert!(
        rebalanced.iter().any(|f| f.contains("members=0")),
        "leaving rebalances too: {rebalanced:?}"
    );
}

#[test]
fn a_repairing_recovery_is_an_event_with_what_it_cut() {
    let _faults = common::process_wide_faults();
    seen();
    let dir = tempfile::tempdir().unwrap();
    // A standalone log reports its directory's name as the topic.
    let log_dir = dir.path().join("repaired");
    let log = logbus::log::Log::open(&log_dir, logbus::LogConfig::default()).unwrap();
    log.append(&[Record::new("kept")]).unwrap();
    log.close().unwrap();
    // Everything is scanned, and garbage follows the last batch.
    std::fs::remove_file(log_dir.join("recovery.ckpt")).unwrap();
    let (_, segment) = common::segment_paths(&log_dir).pop().unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let (pos, last) = *common::batches(&bytes).last().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0xAB; 40], (pos + last.len as usize) as u64).unwrap();

    let log = logbus::log::Log::open(&log_dir, logbus::LogConfig::default()).unwrap();
    assert_eq!(log.end_offset(), 1);
    log.close().unwrap();
    let seen = seen();
    let opened = seen.events("partition opened", "topic=\"repaired\"");
    assert!(
        opened
            .iter()
            .any(|f| f.contains("damage=1") && !f.contains("truncated_bytes=0 ")),
        "{opened:?}"
    );
}

#[cfg(feature = "fault-injection")]
#[test]
fn poisoning_is_an_error_event_naming_the_cause() {
    seen();
    let _faults = common::process_wide_faults();
    let dir = tempfile::tempdir().unwrap();
    let config = logbus::BrokerConfig::new().durability(logbus::Durability::Sync);
    let broker = Broker::open_with(dir.path(), config).unwrap();
    broker.create_topic("poisoned", TopicConfig::new(1)).unwrap();
    logbus::testing::fail_next_fsyncs(1);
    assert!(broker.producer().send("poisoned", Record::new("x")).is_err());
    let seen = seen();
    let poisoned = seen.events(
        "partition poisoned: writes refused until reopened",
        "topic=\"poisoned\"",
    );
    assert!(poisoned.iter().any(|f| f.contains("injected fault")), "{poisoned:?}");
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_slow_fsync_round_is_a_warning() {
    let _faults = common::process_wide_faults();
    seen();
    let dir = tempfile::tempdir().unwrap();
    // Partition 0 of topic `slow`: its segment is fsynced by a log's sync round.
    let _slow = common::SlowFsyncOnce::under(&dir.path().join("slow").join("0"));
    let config = logbus::BrokerConfig::new().durability(logbus::Durability::Sync);
    let broker = Broker::open_with(dir.path(), config).unwrap();
    broker.create_topic("slow", TopicConfig::new(1)).unwrap();
    broker.producer().send("slow", Record::new("waits")).unwrap();
    let seen = seen();
    let slow = seen.events("slow fsync round", "topic=\"slow\"");
    assert!(
        slow.iter()
            .any(|f| f.contains("slow_ms=1000") && !f.contains("took_ms=0 ")),
        "{slow:?}"
    );
}
