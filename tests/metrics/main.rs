//! Metrics (feature `metrics`): the Prometheus example's exporter, scraped
//! over loopback HTTP, shows logbus's counters moving. One recorder serves
//! the whole process, so these tests live in a binary of their own and share
//! the exporter that [`exporter`] starts. One of them injects an fsync
//! failure (with `fault-injection`), which any log of the process could
//! take: every test holds [`common::process_wide_faults`].

#[path = "../common/mod.rs"]
mod common;
// The example's recorder, server and workload (its `main` is not used here).
#[allow(dead_code)]
#[path = "../../examples/prometheus.rs"]
mod example;

mod fsync;
mod scrape;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;

/// The process's exporter: the example's recorder, installed once, and its
/// server on a free loopback port.
fn exporter() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let handle = example::install_recorder().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        example::serve(listener, handle);
        addr
    })
}

/// One scrape: `GET /metrics` over HTTP/1.1, the body of a 200 answer.
fn scrape(addr: SocketAddr) -> Scrape {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    Scrape(body.to_string())
}

/// A scrape's text, in Prometheus' exposition format.
struct Scrape(String);

impl Scrape {
    /// The sum of the samples of `name` whose labels include every pair of
    /// `labels`; `None` when there is no such sample.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (metric, tags) = series.split_once('{').unwrap_or((series, ""));
            if metric != name || !labels.iter().all(|(k, v)| tags.contains(&format!("{k}=\"{v}\""))) {
                continue;
            }
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
        found
    }

    /// [`value`](Self::value), 0 when absent (a counter not yet incremented).
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }
}
