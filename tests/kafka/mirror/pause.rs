//! The in-process mirror (`Mirror::start`) while the broker freezes: tansu
//! is stopped with SIGSTOP for 5 to 8 s three times while the application
//! keeps producing locally and the mirror keeps sending. The mirror must
//! keep running through every pause, and at the end every record stored
//! locally is at Kafka with its stored value; the duplicates (records sent
//! again after a delivery failed or timed out) all carry source headers
//! that name an already delivered record, so none is left after dropping
//! by them.

use std::time::{Duration, Instant};

use logbus::kafka::Mirror;
use logbus::TopicConfig;

use super::{local, read_all, shipped, stored_records, wait_mirrored, OwnerWriter, Shipped};
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
    let writer = OwnerWriter::start(&broker, "frozen");

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
    let written = writer.stop();

    wait_mirrored(|| mirror.status(), written);
    let report = mirror.stop().unwrap();

    // Local truth: every stored record, by (partition, offset).
    let topic = broker.topic("frozen").unwrap();
    let stored = stored_records(&topic, PARTITIONS);
    assert_eq!(stored.len() as u64, written);

    let got = read_all(&kafka, "frozen", PARTITIONS, stored.len(), Duration::from_secs(2));
    let Shipped {
        copies,
        lost,
        duplicates,
    } = shipped(&got, &stored, Some(SOURCE_ID));
    let left = copies.len().saturating_sub(stored.len());
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
    assert_eq!(copies.len(), stored.len());
}
