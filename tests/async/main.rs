//! The `async` feature: `Producer::send_async`, `Consumer::recv` and
//! `Consumer::stream`, each run on two runtimes (tokio and smol) that the
//! library knows nothing about.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod group;
mod readme;
mod recv;
mod send;
#[cfg(feature = "fault-injection")]
mod send_durability;
mod stream;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use logbus::{
    Broker, BrokerConfig, Consumer, ConsumerConfig, Durability, OffsetReset, Record, TopicConfig, TopicPartition,
};

use crate::common::PATIENCE;

/// A `Sync` broker whose background thread writes no checkpoint during a
/// test: only the sends' own rounds make records durable.
pub fn sync_broker(dir: &std::path::Path) -> Broker {
    let config = BrokerConfig::default()
        .durability(Durability::Sync)
        .checkpoint_interval(Duration::from_secs(3600));
    Broker::open_with(dir, config).unwrap()
}

/// A consumer config that starts at the earliest offset.
pub fn earliest() -> ConsumerConfig {
    ConsumerConfig::new().offset_reset(OffsetReset::Earliest)
}

/// A broker in `dir` with a one-partition topic "t", a consumer assigned to
/// it from the earliest offset (7 records per poll at most), and a thread
/// sending `n` records whose values are their numbers (`u32`, little
/// endian), pausing 2 ms after every `pause_every`-th.
pub fn tail_a_sender(
    dir: &std::path::Path,
    n: u32,
    pause_every: u32,
) -> (Broker, Consumer, std::thread::JoinHandle<()>) {
    let broker = Broker::open(dir).unwrap();
    broker.create_topic("t", TopicConfig::new(1)).unwrap();
    let mut consumer = broker.consumer(earliest().max_poll_records(7)).unwrap();
    consumer.assign(&[TopicPartition::new("t", 0)]).unwrap();
    let producer = broker.producer();
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            producer.send("t", Record::new(i.to_le_bytes().to_vec())).unwrap();
            if i % pause_every == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    (broker, consumer, sender)
}

/// The (offset, value) of each record [`tail_a_sender`] sends.
pub fn numbered(n: u32) -> Vec<(u64, Vec<u8>)> {
    (0..n).map(|i| (u64::from(i), i.to_le_bytes().to_vec())).collect()
}

/// An executor to run a test body on.
#[derive(Debug, Clone, Copy)]
pub enum Rt {
    /// tokio's multi-threaded runtime, two workers.
    Tokio,
    /// smol: `block_on` on the test thread, `spawn` on its global executor.
    Smol,
}

/// Every runtime a test runs on.
pub const RUNTIMES: [Rt; 2] = [Rt::Tokio, Rt::Smol];

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Rt {
    /// Runs `f` to completion on this runtime.
    pub fn block_on<F: Future>(self, f: F) -> F::Output {
        match self {
            Rt::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(f),
            Rt::Smol => smol::block_on(f),
        }
    }

    /// Runs `f` as a task of its own; the returned future is its output.
    pub fn spawn<T: Send + 'static>(self, f: impl Future<Output = T> + Send + 'static) -> BoxFuture<T> {
        match self {
            Rt::Tokio => {
                let handle = tokio::spawn(f);
                Box::pin(async move { handle.await.unwrap() })
            }
            Rt::Smol => Box::pin(smol::spawn(f)),
        }
    }

    pub async fn sleep(self, d: Duration) {
        match self {
            Rt::Tokio => tokio::time::sleep(d).await,
            Rt::Smol => {
                smol::Timer::after(d).await;
            }
        }
    }

    /// `f`'s output, or a panic naming `what` if it takes longer than
    /// `PATIENCE` (a hang fails the test instead of stalling it).
    pub async fn within<T>(self, what: &str, f: impl Future<Output = T>) -> T {
        let timeout = async {
            self.sleep(PATIENCE).await;
            None
        };
        // The timer is polled first: once it has fired, `f` is not given
        // another chance (a wake-up that never came would go unnoticed).
        smol::future::or(timeout, async { Some(f.await) })
            .await
            .unwrap_or_else(|| panic!("timed out after {PATIENCE:?} waiting for {what}"))
    }

    /// `Some(f's output)` if it is ready before `d`, else `None` (and `f` is dropped).
    pub async fn timeout<T>(self, d: Duration, f: impl Future<Output = T>) -> Option<T> {
        let timer = async {
            self.sleep(d).await;
            None
        };
        smol::future::or(async { Some(f.await) }, timer).await
    }
}
