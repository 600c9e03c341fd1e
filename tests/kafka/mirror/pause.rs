//! The in-process mirror (`Mirror::start`) while the broker freezes: tansu
//! is stopped with SIGSTOP for 5 to 8 s three times while the application
//! keeps producing locally and the mirror keeps sending. The mirror must
//! keep running through every pause, and at the end every record stored
//! locally is at Kafka with its stored value; the duplicates (records sent
//! again after a delivery failed or timed out) all carry source headers
//! that name an already delivered record, so none is left after dropping
//! by them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus::kafka::Mirror;
use logbus::{Record, TopicConfig};

use super::{local, origin, read_all, wait_mirrored};
use crate::broker::Tansu;
use crate::common::Rng;

const PARTITIONS: u32 = 3;
const PAUSES: usize = 3;
const SOURCE_ID: &str = "in-process-pause";

#[test]
fn reliability_in_process_mirror_broker_paused_three_times_loses_nothing() {
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng::new(seed);
    let kafka = Tansu::start();
    let (_dir, broker) = local("frozen", TopicConfig::new(PARTITIONS));

    let mirror = Mirror::builder(kafka.bootstrap())
        .topic("frozen")
        .source_id(SOURCE_ID)
        .delivery_timeout(Duration::from_secs(20))
        .start(&broker)
        .unwrap();

    // The application keeps writing through the pauses.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let p = broker.producer();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Record> = (0..20)
                    .map(|i| {
                        let k = n + i;
                        Record::new(format!("{k:0>100}")).with_key(k.to_string())
                    })
                    .collect();
                p.send_batch("frozen", batch).unwrap();
                n += 20;
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        })
    };

    let mut behind_at_thaw = Vec::new();
    for _ in 0..PAUSES {
        std::thread::sleep(Duration::from_millis(500 + rng.below(1500)));
        kafka.pause();
        std::thread::sleep(Duration::from_millis(5000 + rng.below(3000)));
        // The owner wrote ~2 000 records/s meanwhile and nothing could be
        // acknowledged: the mirror must be behind, or the pause did not bite.
        let behind = mirror.status().behind();
        kafka.resume();
        assert!(behind > 0, "nothing was pending at the end of a broker pause");
        behind_at_thaw.push(behind);
        let st = mirror.status();
        assert!(st.running, "the mirror stopped during a broker pause: {st:?}");
    }
    std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();

    wait_mirrored(|| mirror.status(), written);
    let report = mirror.stop().unwrap();

    // Local truth: every stored record, by (partition, offset).
    let mut stored: HashMap<(u32, u64), Vec<u8>> = HashMap::new();
    let topic = broker.topic("frozen").unwrap();
    for p in 0..PARTITIONS {
        let part = topic.partition(p).unwrap();
        let mut at = part.start_offset();
        while at < part.end_offset() {
            for r in part.read(at, 5000).unwrap() {
                stored.insert((p, r.offset()), r.value().to_vec());
                at = r.offset() + 1;
            }
        }
    }
    assert_eq!(stored.len() as u64, written);

    let got = read_all(&kafka, "frozen", PARTITIONS, stored.len(), Duration::from_secs(2));
    let mut seen: HashMap<(String, u32, u64), usize> = HashMap::new();
    for r in &got {
        let (source, p, o) = origin(r);
        assert_eq!(source, SOURCE_ID);
        assert_eq!(p, r.partition());
        let want = stored
            .get(&(p, o))
            .unwrap_or_else(|| panic!("Kafka has a record never stored locally: {r:?}"));
        assert_eq!(r.value(), want.as_slice(), "content of {p}/{o}");
        *seen.entry((source, p, o)).or_insert(0) += 1;
    }
    let shipped: std::collections::HashSet<(u32, u64)> = seen.keys().map(|k| (k.1, k.2)).collect();
    let lost = stored.keys().filter(|k| !shipped.contains(k)).count();
    let duplicates = got.len() - seen.len();
    let left = seen.len().saturating_sub(stored.len());
    println!(
        "reliability_mirror_pause: stored {} at_kafka {} lost {lost} duplicates {duplicates} \
         duplicates_after_dedup {left} resent {} broker_pauses {PAUSES} behind_at_thaw {behind_at_thaw:?} \
         seed {seed} secs {:.0}",
        stored.len(),
        got.len(),
        report.resent,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0, "records stored locally and missing at Kafka");
    assert_eq!(left, 0, "duplicates left after dropping by source headers");
    assert_eq!(seen.len(), stored.len());
}
