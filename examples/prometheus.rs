//! logbus's metrics for Prometheus: the crate records through the `metrics`
//! facade, `metrics-exporter-prometheus` keeps and renders them, and a small
//! HTTP server answers every request with the rendered text. A producer and a
//! consumer group keep the counters moving.
//!
//! `cargo run --example prometheus --features metrics [ADDR]` (default
//! `127.0.0.1:9000`), then `curl http://127.0.0.1:9000/metrics`.
//!
//! The recorder is installed before the broker opens: logbus takes each
//! partition's metric handles when the partition opens.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use logbus::{Broker, Consumer, ConsumerConfig, OffsetReset, Producer, Record, TopicConfig};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the Prometheus recorder as the process's `metrics` recorder.
/// Durations (the metrics named `*_seconds`) get histogram buckets from
/// 10 µs to 10 s.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let buckets = [1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .install_recorder()
}

/// Answers every request on `listener` with the metrics in Prometheus' text
/// format, on a thread of its own, until the listener fails.
pub fn serve(listener: TcpListener, handle: PrometheusHandle) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            // A client that goes away mid-request is its own problem.
            let _ = answer(stream, &handle);
        }
    })
}

/// Reads one request's head and writes the rendered metrics back.
fn answer(stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line != "\r\n" && line != "\n" {
        line.clear();
    }
    handle.run_upkeep();
    let body = handle.render();
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Traffic for the metrics: a topic, a producer and a consumer in a group.
pub struct Workload {
    producer: Producer,
    consumer: Consumer,
    // Last, so the handles above are dropped first.
    _broker: Broker,
}

impl Workload {
    /// Opens a broker in `dir` with a topic `events` of 3 partitions (small
    /// segments and a size limit, so rolls and retention show up too).
    pub fn open(dir: &Path) -> logbus::Result<Workload> {
        let broker = Broker::open(dir)?;
        if broker.topics().iter().all(|t| t != "events") {
            let config = TopicConfig::new(3)
                .segment_bytes(64 * 1024)
                .retention_bytes(Some(256 * 1024));
            broker.create_topic("events", config)?;
        }
        let producer = broker.producer();
        let mut consumer = broker.consumer(
            ConsumerConfig::new()
                .group("dashboard")
                .offset_reset(OffsetReset::Earliest),
        )?;
        consumer.subscribe(&["events"])?;
        Ok(Workload {
            producer,
            consumer,
            _broker: broker,
        })
    }

    /// Sends `n` keyed records, polls once and commits; returns how many records the poll got.
    pub fn round(&mut self, n: usize) -> logbus::Result<usize> {
        for i in 0..n {
            let value = format!("{{\"event\":{i},\"payload\":\"{}\"}}", "x".repeat(200));
            self.producer
                .send("events", Record::new(value).with_key(format!("user-{}", i % 17)))?;
        }
        let got = self.consumer.poll(Duration::from_millis(100))?.len();
        self.consumer.commit()?;
        Ok(got)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".to_string());
    let handle = install_recorder()?;
    let listener = TcpListener::bind(&addr)?;
    println!("metrics at http://{}/metrics", listener.local_addr()?);
    let _server = serve(listener, handle);

    let dir = std::env::temp_dir().join(format!("logbus-prometheus-{}", std::process::id()));
    let mut work = Workload::open(&dir)?;
    loop {
        work.round(100)?;
        std::thread::sleep(Duration::from_millis(200));
    }
}
