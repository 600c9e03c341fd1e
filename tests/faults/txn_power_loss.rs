//! Power loss under a transactional workload (issue 15), simulated from
//! fsync-point snapshots with the crash-state machinery of `seam.rs`.
//!
//! `Durability::Sync`. Two threads run transactions of 1 to 50 records
//! spread over the 4 partitions of `out` (one in four aborted: its values are
//! marked); a third runs consume -> transform -> produce: it reads `in`,
//! writes one `etl-<offset>` output per input in a transaction of 1 to 50,
//! and sends the group's next offset with it (one in five aborted, then
//! retried). Each committed transaction's records are recorded as
//! acknowledged once `commit` returns. Crash points are frozen while it runs
//! (between acknowledgements, and inside fsyncs); each becomes several crash
//! states (unsynced blocks lost, zeroed, torn or kept; unsynced directory
//! entries dropped). In every state, for a read-committed reader:
//!
//! * every transaction is all or nothing, and no aborted one is visible;
//! * every transaction acknowledged before the crash point is there;
//! * the group's committed offset `c` on `in` matches the outputs exactly:
//!   `etl-o` is visible if and only if `o < c`, once;
//! * every partition passes `verify`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logbus::testing::set_sync_observer;
use logbus::{Broker, BrokerConfig, ConsumerConfig, Durability, OffsetReset, Record, TopicConfig, TopicPartition};

use super::seam::{build_state, Recorder, Stats};
use crate::common::{self, Rng};

const OUT: &str = "out";
const IN: &str = "in";
const GROUP: &str = "etl";
const INPUTS: u64 = 700;
const TXNS_PER_THREAD: u64 = 24;
const ACKS_PER_CRASH_POINT: usize = 120;
const STATES_PER_CRASH_POINT: usize = 3;

fn broker_config() -> BrokerConfig {
    BrokerConfig::new().durability(Durability::Sync)
}

/// `t<thread>-x<seq>-<i>of<n>[-ABORT]`: the transaction key and its size.
fn txn_of(v: &str) -> Option<(&str, u64)> {
    let (head, rest) = v.split_once("-x")?;
    let (seq, rest) = rest.split_once('-')?;
    let n = rest.split_once("of")?.1.split('-').next()?.parse().ok()?;
    Some((&v[..head.len() + 2 + seq.len()], n))
}

fn check_state(dir: &Path, acked: &[(u32, u64, String)], label: &str) -> usize {
    let broker = Broker::open_with(dir, broker_config()).unwrap_or_else(|e| panic!("{label}: open failed: {e}"));
    let visible: Vec<String> = common::read_committed(&broker, OUT, label)
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    let mut seen = HashSet::new();
    let mut per_txn: HashMap<String, (u64, u64)> = HashMap::new();
    let mut etl = HashSet::new();
    for v in &visible {
        assert!(seen.insert(v.clone()), "{label}: {v} visible twice");
        assert!(
            !v.ends_with("-ABORT"),
            "{label}: {v} of an aborted transaction is visible"
        );
        if let Some(o) = v.strip_prefix("etl-") {
            etl.insert(o.split('-').next().unwrap().parse::<u64>().unwrap());
        } else {
            let (key, n) = txn_of(v).unwrap_or_else(|| panic!("{label}: unexpected value {v}"));
            per_txn.entry(key.to_string()).or_insert((0, n)).0 += 1;
        }
    }
    for (key, (got, n)) in &per_txn {
        assert_eq!(
            got, n,
            "{label}: transaction {key} is torn: {got} of {n} records visible"
        );
    }
    for (p, o, v) in acked {
        assert!(seen.contains(v), "{label}: acknowledged {v} ({p}/{o}) lost");
    }
    let probe = broker.consumer(ConsumerConfig::new().group(GROUP)).unwrap();
    let c = probe.committed(&TopicPartition::new(IN, 0)).unwrap().unwrap_or(0);
    let want: HashSet<u64> = (0..c).collect();
    assert_eq!(etl, want, "{label}: outputs do not match the committed offset {c}");
    drop(probe);
    for p in 0..4 {
        broker
            .topic(OUT)
            .unwrap()
            .partition(p)
            .unwrap()
            .verify()
            .unwrap_or_else(|e| panic!("{label}: verify {p}: {e}"));
    }
    broker.close().unwrap();
    visible.len()
}

fn producer_thread(broker: Broker, rec: Arc<Recorder>, thread: u32, seed: u64) {
    let producer = broker.producer();
    let mut rng = Rng::new(seed);
    for seq in 0..TXNS_PER_THREAD {
        let n = 1 + rng.below(50);
        let abort = rng.chance(4);
        let mut txn = producer.transaction().unwrap();
        let mut sent = Vec::new();
        for i in 0..n {
            let flag = if abort { "-ABORT" } else { "" };
            let v = format!("t{thread}-x{seq}-{i}of{n}{flag}");
            let md = txn
                .send(OUT, Record::new(v.clone()).with_partition(rng.below(4) as u32))
                .unwrap();
            sent.push((md.partition(), md.offset(), v));
        }
        if abort {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
            rec.acked.lock().unwrap().extend(sent);
        }
    }
}

fn etl_thread(broker: Broker, rec: Arc<Recorder>, seed: u64) {
    let producer = broker.producer();
    let input = TopicPartition::new(IN, 0);
    let mut consumer = broker
        .consumer(
            ConsumerConfig::new()
                .offset_reset(OffsetReset::Earliest)
                .max_poll_records(50),
        )
        .unwrap();
    consumer.assign(std::slice::from_ref(&input)).unwrap();
    let mut rng = Rng::new(seed);
    let mut pos = 0u64;
    let mut txns = 0;
    while pos < INPUTS && txns < 2 * TXNS_PER_THREAD {
        txns += 1;
        let want = 1 + rng.below(50);
        consumer.seek(&input, pos).unwrap();
        let mut got = Vec::new();
        while (got.len() as u64) < want && pos + (got.len() as u64) < INPUTS {
            got.extend(
                consumer
                    .poll(Duration::from_millis(5))
                    .unwrap()
                    .iter()
                    .map(|r| r.offset()),
            );
        }
        got.truncate(want as usize);
        let mut txn = producer.transaction().unwrap();
        let mut sent = Vec::new();
        for &o in &got {
            let v = format!("etl-{o}");
            let md = txn
                .send(OUT, Record::new(v.clone()).with_partition((o % 4) as u32))
                .unwrap();
            sent.push((md.partition(), md.offset(), v));
        }
        let next = got.last().map_or(pos, |o| o + 1);
        txn.send_offsets(GROUP, &[(input.clone(), next)]).unwrap();
        if rng.chance(5) {
            txn.abort().unwrap();
            continue;
        }
        txn.commit().unwrap();
        rec.acked.lock().unwrap().extend(sent);
        pos = next;
    }
}

#[test]
fn power_loss_states_keep_every_transaction_all_or_nothing() {
    let _faults = common::process_wide_faults();
    let seed = std::env::var("LOGBUS_TXN_SEAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Rng::from_time().next());
    println!("txn_power_loss: seed {seed} (rerun with LOGBUS_TXN_SEAM_SEED={seed})");
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("broker");
    std::fs::create_dir(&root).unwrap();
    let rec = Arc::new(Recorder::new(root.clone()));
    {
        let rec = Arc::clone(&rec);
        set_sync_observer(Some(Box::new(move |e| rec.observe(e))));
    }
    let broker = Broker::open_with(&root, broker_config()).unwrap();
    broker
        .create_topic(OUT, TopicConfig::new(4).segment_bytes(16 * 1024))
        .unwrap();
    broker
        .create_topic(IN, TopicConfig::new(1).segment_bytes(64 * 1024))
        .unwrap();
    broker
        .producer()
        .send_batch(IN, (0..INPUTS).map(|i| Record::new(format!("input {i}"))))
        .unwrap();
    rec.ready.store(true, Ordering::SeqCst);

    let done = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..3u32 {
        let (broker, rec, done) = (broker.clone(), Arc::clone(&rec), Arc::clone(&done));
        let seed = rng.next();
        threads.push(std::thread::spawn(move || {
            if t == 2 {
                etl_thread(broker, rec, seed);
            } else {
                producer_thread(broker, rec, t, seed);
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let mut next_point = ACKS_PER_CRASH_POINT;
    loop {
        let finished = done.load(Ordering::SeqCst) == 3;
        let n_acked = rec.acked.lock().unwrap().len();
        if n_acked < next_point && !finished {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        next_point = n_acked + ACKS_PER_CRASH_POINT;
        rec.freeze(None);
        if finished {
            break;
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    set_sync_observer(None);
    broker.close().unwrap();
    let acked = rec.acked.lock().unwrap().clone();
    let points = std::mem::take(&mut *rec.points.lock().unwrap());
    assert!(points.len() >= 8, "only {} crash points", points.len());

    let mut stats = Stats::default();
    let mut visible_total = 0;
    for (i, cp) in points.iter().enumerate() {
        for j in 0..STATES_PER_CRASH_POINT {
            let state = tempfile::tempdir().unwrap();
            build_state(&mut rng, cp, state.path(), &mut stats);
            let label = format!("seed {seed}, crash point {i} ({} acked records), state {j}", cp.acked);
            visible_total += check_state(state.path(), &acked[..cp.acked], &label);
            stats.states += 1;
        }
    }
    println!(
        "txn_power_loss: {} records in committed transactions acknowledged, {} crash points, {} crash states, \
         {visible_total} records checked visible; torn 0, lost 0; {:?}",
        acked.len(),
        points.len(),
        stats.states,
        stats
    );
    assert!(stats.blocks_not_current > 0, "no state lost an unsynced write");
}
