//! Group membership of an async consumer (rust-rdkafka #256): a member
//! waiting in `recv` is inside a poll and is never evicted; a member that
//! awaits something else is subject to `max_poll_interval` as a blocking
//! consumer that stops polling is, and its next `recv` rejoins.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logbus::{
    Broker, Consumer, ConsumerConfig, OffsetReset, RebalanceContext, RebalanceListener, Record, TopicConfig,
    TopicPartition,
};

use crate::common::PATIENCE;
use crate::RUNTIMES;

fn config(interval: Duration) -> ConsumerConfig {
    ConsumerConfig::new()
        .group("g")
        .offset_reset(OffsetReset::Earliest)
        .max_poll_interval(interval)
}

/// Partitions reported lost to the listener.
#[derive(Clone, Default)]
struct Lost(Arc<Mutex<Vec<TopicPartition>>>);

impl RebalanceListener for Lost {
    fn on_partitions_lost(&mut self, _ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.0.lock().unwrap().extend_from_slice(partitions);
    }
}

/// The `max_poll_interval` of the tests' members.
const INTERVAL: Duration = Duration::from_millis(200);

/// A broker in `dir` with a 2-partition topic "t", and a member of group
/// "g" (`max_poll_interval` [`INTERVAL`]) that was assigned both partitions,
/// with a listener that records lost partitions.
fn sole_member(dir: &std::path::Path) -> (Broker, Consumer, Lost) {
    let broker = Broker::open(dir).unwrap();
    broker.create_topic("t", TopicConfig::new(2)).unwrap();
    let lost = Lost::default();
    let mut consumer = broker.consumer(config(INTERVAL)).unwrap();
    consumer.subscribe_with_listener(&["t"], lost.clone()).unwrap();
    assert_eq!(consumer.wait_for_assignment(PATIENCE).unwrap().len(), 2);
    (broker, consumer, lost)
}

fn generation(broker: &Broker) -> u64 {
    broker.describe_group("g").unwrap().generation
}

#[test]
fn a_member_waiting_in_recv_longer_than_max_poll_interval_stays_in_the_group() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let (broker, mut consumer, lost) = sole_member(dir.path());
        let g = generation(&broker);
        let records = rt.block_on(async {
            let waiting = rt.spawn(async move { consumer.recv().await.map(|r| r.len()) });
            // Several eviction checks run while the recv waits (the broker's
            // background thread checks at least every 100 ms).
            rt.sleep(INTERVAL * 5).await;
            assert_eq!(
                generation(&broker),
                g,
                "{rt:?}: a member waiting in recv is not evicted"
            );
            assert_eq!(broker.describe_group("g").unwrap().members.len(), 1);
            broker.producer().send("t", Record::new("x").with_partition(1)).unwrap();
            rt.within("the waiting recv", waiting).await
        });
        assert_eq!(records.unwrap(), 1, "{rt:?}");
        assert!(lost.0.lock().unwrap().is_empty(), "{rt:?}: nothing was lost");
    }
}

#[test]
fn a_member_that_awaits_something_else_past_max_poll_interval_is_evicted_and_its_next_recv_rejoins() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let (broker, mut slow, lost) = sole_member(dir.path());

        // `live` polls all along from a thread of its own.
        let live_owns = Arc::new(Mutex::new(0usize));
        let stop = Arc::new(AtomicBool::new(false));
        let live = {
            let (broker, live_owns, stop) = (broker.clone(), Arc::clone(&live_owns), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut c = broker.consumer(config(Duration::from_secs(300))).unwrap();
                c.subscribe(&["t"]).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    c.poll(Duration::from_millis(10)).unwrap();
                    *live_owns.lock().unwrap() = c.assignment().len();
                }
            })
        };
        rt.block_on(async {
            // The application awaits something else: `slow` does not hand its
            // partitions over, so `live` gets them only by its eviction.
            rt.within("slow's eviction (live owns both)", async {
                while *live_owns.lock().unwrap() < 2 {
                    rt.sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            assert_eq!(broker.describe_group("g").unwrap().members.len(), 1, "{rt:?}");
            assert!(lost.0.lock().unwrap().is_empty(), "told at its next recv, not before");

            // Its next receives report the loss, rejoin, and take a share again.
            rt.within("slow to rejoin (1 + 1)", async {
                while slow.assignment().len() != 1 || *live_owns.lock().unwrap() != 1 {
                    let _ = rt.timeout(Duration::from_millis(10), slow.recv()).await;
                }
            })
            .await;
        });
        let mut reported = lost.0.lock().unwrap().clone();
        reported.sort();
        assert_eq!(
            reported,
            vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)],
            "{rt:?}"
        );
        assert_eq!(broker.describe_group("g").unwrap().members.len(), 2);
        stop.store(true, Ordering::Relaxed);
        live.join().unwrap();
    }
}

#[test]
fn a_pending_recv_hands_partitions_over_when_a_member_joins() {
    for rt in RUNTIMES {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create_topic("t", TopicConfig::new(2)).unwrap();
        let mut first = broker.consumer(config(Duration::from_secs(300))).unwrap();
        first.subscribe(&["t"]).unwrap();
        assert_eq!(first.wait_for_assignment(PATIENCE).unwrap().len(), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let first: Consumer = rt.block_on(async {
            let waiting = {
                let stop = Arc::clone(&stop);
                rt.spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        first.recv().await.unwrap();
                    }
                    first
                })
            };
            // Most likely `first` is parked in recv by then; only its waker
            // can make it give a partition up to the newcomer.
            rt.sleep(Duration::from_millis(50)).await;
            let mut second = broker.consumer(config(Duration::from_secs(300))).unwrap();
            second.subscribe(&["t"]).unwrap();
            let owned = second.wait_for_assignment(PATIENCE).unwrap();
            assert_eq!(owned.len(), 1, "{rt:?}: the waiting member handed a partition over");
            stop.store(true, Ordering::SeqCst);
            for p in 0..2 {
                broker
                    .producer()
                    .send("t", Record::new("end").with_partition(p))
                    .unwrap();
            }
            let first = rt.within("the waiting member to return", waiting).await;
            drop(second);
            first
        });
        assert_eq!(first.assignment().len(), 1, "{rt:?}");
    }
}
