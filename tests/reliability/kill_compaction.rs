//! Kill -9 during compaction passes (issue 16): no latest value is lost.
//!
//! The child opens a broker (`Durability::Sync`) with a compacted topic of
//! small segments, runs a producer that sends keyed updates and tombstones
//! over 40 keys and prints each acknowledged one (`@A <offset> <key> <value>`,
//! `<value>` `-` for a tombstone), and a thread that runs `Topic::compact`
//! back to back, printing `@S` when a pass starts and `@P` when it returns
//! (the background compactor runs too). The parent SIGKILLs it after a
//! random delay, reopens the directory, and checks: offsets increase (gaps
//! are allowed: compaction removed records), every record read is the one
//! acknowledged at its offset and never changes across crashes, and every
//! key's latest acknowledged record is there, unless a later record of the
//! same key is. Then the next child continues on the same directory.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use std::time::Duration;

use logbus::{Broker, BrokerConfig, CleanupPolicy, Durability, Record, TopicConfig};

use crate::common::{self, Deadline, Rng};

const CHILD_ENV: &str = "LOGBUS_RELIABILITY_KILL_COMPACTION_CHILD";
const ROUND_ENV: &str = "LOGBUS_RELIABILITY_KILL_COMPACTION_ROUND";
const TEST_NAME: &str = "kill_9_during_compaction_loses_no_latest_value";
const TOPIC: &str = "table";
const KEYS: u64 = 40;
const KILLS: usize = 30;

fn broker_config() -> BrokerConfig {
    BrokerConfig::new().durability(Durability::Sync)
}

fn topic_config() -> TopicConfig {
    TopicConfig::new(1)
        .segment_bytes(4 * 1024)
        .cleanup_policy(CleanupPolicy::Compact)
        .min_cleanable_dirty_ratio(0.1)
}

fn child(dir: &Path, round: usize) {
    let broker = Broker::open_with(dir, broker_config()).unwrap();
    let topic = broker.topic(TOPIC).unwrap();
    let deadline = Deadline::new(Duration::from_secs(20), "the child's run");
    let compactor = {
        let deadline = deadline.clone();
        std::thread::spawn(move || {
            while !deadline.passed() {
                println!("@S");
                topic.compact().unwrap();
                println!("@P");
            }
        })
    };
    let producer = broker.producer();
    let mut seq = 0u64;
    while !deadline.passed() {
        let key = format!("k{}", (seq * 7 + round as u64) % KEYS);
        let (record, shown) = if seq % 11 == 5 {
            (Record::tombstone(key.clone()), "-".to_string())
        } else {
            let v = format!("r{round}-s{seq}-{}", "x".repeat((seq % 53) as usize));
            (Record::new(v.clone()).with_key(key.clone()), v)
        };
        let md = producer.send(TOPIC, record).unwrap();
        let mut out = std::io::stdout().lock();
        out.write_all(format!("@A {} {key} {shown}\n", md.offset()).as_bytes())
            .unwrap();
        out.flush().unwrap();
        seq += 1;
    }
    compactor.join().unwrap();
}

#[derive(Default)]
struct Model {
    /// Acknowledged records: offset -> (key, value or "-").
    acked: HashMap<u64, (String, String)>,
    /// Records read after earlier crashes: offset -> (key, value or "-").
    seen: HashMap<u64, (String, String)>,
    latest_checked: u64,
    removed_seen: u64,
}

fn absorb(model: &mut Model, line: &str, in_pass: &mut bool) {
    let Some(at) = line.find('@') else { return };
    let mut parts = line[at + 1..].splitn(4, ' ');
    match parts.next() {
        Some("A") => {
            let o: u64 = parts.next().unwrap().parse().unwrap();
            let k = parts.next().unwrap().to_string();
            let v = parts.next().unwrap().to_string();
            assert!(model.acked.insert(o, (k, v)).is_none(), "offset {o} acknowledged twice");
        }
        Some("S") => *in_pass = true,
        Some("P") => *in_pass = false,
        _ => {}
    }
}

fn check(dir: &Path, model: &mut Model, round: usize) {
    let broker = Broker::open_with(dir, broker_config()).unwrap();
    let part = broker.topic(TOPIC).unwrap().partition(0).unwrap();
    let (start, end) = (part.start_offset(), part.end_offset());
    let mut stored: HashMap<u64, (String, String)> = HashMap::new();
    let mut last = None;
    let mut at = start;
    while at < end {
        at = part
            .read_with(at, 500, |r| {
                let o = r.offset();
                assert!(last.is_none_or(|l| l < o), "round {round}: offset {o} after {last:?}");
                last = Some(o);
                let k = String::from_utf8(r.key().unwrap().to_vec()).unwrap();
                let v = if r.is_tombstone() {
                    "-".to_string()
                } else {
                    String::from_utf8(r.value().to_vec()).unwrap()
                };
                stored.insert(o, (k, v));
            })
            .unwrap();
    }
    part.verify().unwrap();
    for (o, kv) in &stored {
        if let Some(a) = model.acked.get(o) {
            assert_eq!(a, kv, "round {round}: record {o} is not the one acknowledged");
        }
        if let Some(s) = model.seen.get(o) {
            assert_eq!(s, kv, "round {round}: record {o} changed after a crash");
        }
    }
    // Every key's latest acknowledged record, or a later one of that key.
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for (o, (k, _)) in &model.acked {
        let e = latest.entry(k.as_str()).or_insert(*o);
        *e = (*e).max(*o);
    }
    for (k, o) in latest {
        assert!(o < end, "round {round}: acknowledged offset {o} past the end {end}");
        let kept = stored.contains_key(&o) || stored.iter().any(|(so, (sk, _))| *so > o && sk == k);
        assert!(kept, "round {round}: key {k} lost its latest acknowledged record {o}");
        model.latest_checked += 1;
    }
    model.removed_seen += model.seen.keys().filter(|o| !stored.contains_key(o)).count() as u64;
    // What compaction removed never comes back; what is stored must stay as it is.
    model.seen = stored;
    broker.close().unwrap();
}

#[test]
fn kill_9_during_compaction_loses_no_latest_value() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
        child(Path::new(&dir), round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open_with(dir.path(), broker_config()).unwrap();
        broker.create_topic(TOPIC, topic_config()).unwrap();
        broker.close().unwrap();
    }
    let mut rng = Rng::from_time();
    let mut model = Model::default();
    let (mut acks, mut kills_in_pass) = (0u64, 0usize);
    for round in 0..KILLS {
        let mut child = common::rerun_self(module_path!(), TEST_NAME);
        child.env(CHILD_ENV, dir.path()).env(ROUND_ENV, round.to_string());
        let lines = common::kill_after(child, Duration::from_millis(60 + rng.below(240)), round);
        let mut in_pass = false;
        for line in lines {
            acks += u64::from(line.contains("@A "));
            absorb(&mut model, &line, &mut in_pass);
        }
        kills_in_pass += usize::from(in_pass);
        check(dir.path(), &mut model, round);
    }
    println!(
        "kill_compaction: kills {KILLS}, during a pass {kills_in_pass}, acknowledged records {acks}, \
         latest values checked {}, records seen removed by compaction {}, lost 0",
        model.latest_checked, model.removed_seen
    );
    assert!(acks > 0, "the children acknowledged nothing");
    assert!(
        kills_in_pass > 0,
        "no kill struck during a compaction pass: the test is too weak"
    );
    assert!(
        model.removed_seen > 0,
        "compaction never removed a record: the test is too weak"
    );
}
