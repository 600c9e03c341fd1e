//! The test broker itself: it starts, answers Kafka requests, freezes on
//! pause and answers again on resume.

use std::time::{Duration, Instant};

use crate::broker::{metadata, Tansu};

#[test]
fn tansu_answers_metadata_and_stops_answering_while_paused() {
    let broker = Tansu::start();
    metadata(&broker.bootstrap(), Duration::from_secs(10)).unwrap();

    broker.pause();
    let t = Instant::now();
    let frozen = metadata(&broker.bootstrap(), Duration::from_secs(2));
    assert!(frozen.is_err(), "a paused broker answered: {frozen:?}");
    assert!(t.elapsed() < Duration::from_secs(10));

    broker.resume();
    metadata(&broker.bootstrap(), Duration::from_secs(10)).unwrap();
}

#[test]
fn two_brokers_run_side_by_side_on_their_own_ports() {
    let a = Tansu::start();
    let b = Tansu::start();
    assert_ne!(a.bootstrap(), b.bootstrap());
    metadata(&a.bootstrap(), Duration::from_secs(10)).unwrap();
    metadata(&b.bootstrap(), Duration::from_secs(10)).unwrap();
    let pid = a.pid();
    drop(a);
    // Killed and reaped: no process (not even a zombie) left behind.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "tansu {pid} outlived its handle"
    );
    metadata(&b.bootstrap(), Duration::from_secs(10)).unwrap();
}
