//! The mirror's promise under crashes: `logbus mirror` killed with SIGKILL
//! 20 times mid-stream while the owner keeps producing, and the broker
//! frozen a few times, loses nothing, and every duplicate at Kafka is
//! recognisable by its source headers.

use std::time::{Duration, Instant};

use logbus::TopicConfig;

use super::{local, read_all, shipped, stored_records, wait_until, OwnerWriter, Sidecar};
use crate::broker::Tansu;
use crate::common::Rng;

const PARTITIONS: u32 = 4;
const KILLS: usize = 20;

#[test]
fn reliability_mirror_kill_9_twenty_times_and_broker_pauses_lose_nothing() {
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng::new(seed);
    let kafka = Tansu::start();
    // Small segments: the sidecar follows many segment rolls.
    let (dir, broker) = local("stream", TopicConfig::new(PARTITIONS).segment_bytes(256 * 1024));

    // The owner keeps writing while mirrors come and go.
    let writer = OwnerWriter::start(&broker, "stream");

    let args = ["--progress-interval-ms", "0", "--delivery-timeout-ms", "20000"];
    let mut pauses = 0;
    for round in 0..KILLS {
        let mut side = Sidecar::spawn(dir.path(), &kafka.bootstrap(), &["stream"], &args);
        if round % 7 == 3 {
            // Freeze the broker with records in flight, thaw it, then kill.
            std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
            kafka.pause();
            std::thread::sleep(Duration::from_millis(5000 + rng.below(2000)));
            kafka.resume();
            pauses += 1;
            std::thread::sleep(Duration::from_millis(rng.below(1500)));
        } else {
            std::thread::sleep(Duration::from_millis(200 + rng.below(1300)));
        }
        assert!(side.running(), "the mirror exited by itself: {:#?}", side.stderr());
        side.kill9();
    }
    let written = writer.stop();

    // A last mirror catches up and stops cleanly.
    let mut side = Sidecar::spawn(
        dir.path(),
        &kafka.bootstrap(),
        &["stream"],
        &["--progress-interval-ms", "200"],
    );
    wait_until(Duration::from_secs(60), "the last mirror catches up", || {
        let lines = side.stderr();
        let done = lines
            .iter()
            .any(|l| l.contains(" behind 0 ") && !l.contains("not connected"));
        (done, lines.last().cloned())
    });
    assert_eq!(side.terminate().code(), Some(0), "{:#?}", side.stderr());

    // Local truth: every stored record, by (partition, offset).
    let topic = broker.topic("stream").unwrap();
    let stored = stored_records(&topic, PARTITIONS);
    assert_eq!(stored.len() as u64, written);

    let got = read_all(&kafka, "stream", PARTITIONS, stored.len(), Duration::from_secs(2));
    let found = shipped(&got, &stored, None);
    let (lost, duplicates) = (found.lost, found.duplicates);
    let kept_after_dedup = found.copies.len();
    let left = found.left_after_dedup(stored.len());
    println!(
        "reliability_mirror: stored {} at_kafka {} lost {lost} duplicates {duplicates} duplicates_after_dedup {left} \
         kills {KILLS} broker_pauses {pauses} seed {seed} secs {:.0}",
        stored.len(),
        got.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(lost, 0, "records stored locally and missing at Kafka");
    assert_eq!(left, 0, "duplicates left after dropping by source headers");
    assert_eq!(kept_after_dedup, stored.len());
}
