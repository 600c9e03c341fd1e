//! `mirror`: copy local topics to a Kafka cluster beside the directory's
//! owner ([`crate::kafka::Mirror`] in sidecar mode), until SIGINT or SIGTERM.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::{signals, CliResult};
use crate::kafka::{Mirror, OnGap};

pub(super) const HELP: &str =
    "Example:\n  logbus --dir ./data mirror --bootstrap-server localhost:9092 --topic orders --topic payments\n\n\
Runs beside the process that owns the directory (it takes no lock and reads the\n\
files read-only). Each record goes to the Kafka topic of the same name, same\n\
partition number, with key, value, headers and timestamp, plus the headers\n\
logbus.source, logbus.partition and logbus.offset (decimal) for dropping\n\
duplicates. A missing Kafka topic is created with the local partition count.\n\
Progress is kept in DATA/@mirror/GROUP.offsets and committed only up to the\n\
first record Kafka has not acknowledged: a restart resumes there, so nothing is\n\
lost and only records sent since the last commit (at most 50 000) are sent\n\
twice (counted as resent on the progress line). SIGINT/SIGTERM:\n\
wait for acknowledgements, commit, exit 0. A progress line goes to stderr\n\
every second; an unreachable cluster is reported there within\n\
--connect-timeout-ms and retried. Exit code 1 when the mirror stops on an error (records deleted by\n\
retention before they were shipped, a record Kafka refuses for its size, fewer\n\
Kafka partitions than local ones, a directory that lost records after they were\n\
shipped: the progress file says offsets past a partition's end were sent).";

/// `mirror`
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// The Kafka cluster (HOST:PORT[,HOST:PORT...]).
    #[arg(long, value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// A local topic to mirror (repeatable).
    #[arg(long, value_name = "T", required = true)]
    pub topic: Vec<String>,
    /// The mirror's name; its progress is kept in DATA/@mirror/G.offsets.
    #[arg(long, value_name = "G", default_value = "logbus-mirror")]
    pub group: String,
    /// Value of the logbus.source header (default: HOSTNAME:ABSOLUTE-DATA-DIR).
    #[arg(long, value_name = "ID")]
    pub source_id: Option<String>,
    /// When retention deleted records not yet shipped: stop with an error, or
    /// skip to the first stored offset and count what was skipped.
    #[arg(long, value_enum, default_value_t = GapPolicy::Stop)]
    pub on_gap: GapPolicy,
    /// Skip (log and count) records larger than Kafka accepts instead of stopping at them.
    #[arg(long)]
    pub skip_oversized: bool,
    /// A librdkafka setting for the producer (security.protocol=SSL, linger.ms=20...); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// How long one attempt to reach the cluster may take before the error is reported and retried.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
    /// How long a record is retried before it is sent again from scratch (message.timeout.ms).
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub delivery_timeout_ms: u64,
    /// How often a progress line is printed to stderr (0: never).
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    pub progress_interval_ms: u64,
}

/// `--on-gap`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GapPolicy {
    /// Stop with an error naming topic, partition and the offsets lost.
    Stop,
    /// Continue from the first stored offset and count the skipped offsets.
    Skip,
}

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "logbus mirror: {msg}");
}

pub(super) fn run(dir: &Path, a: MirrorArgs) -> CliResult<u8> {
    let stop = signals::stop_flag()?;
    let mut b = Mirror::builder(a.bootstrap_server)
        .topics(a.topic)
        .group(a.group)
        .on_gap(match a.on_gap {
            GapPolicy::Stop => OnGap::Stop,
            GapPolicy::Skip => OnGap::Skip,
        })
        .skip_oversized(a.skip_oversized)
        .connect_timeout(Duration::from_millis(a.connect_timeout_ms))
        .delivery_timeout(Duration::from_millis(a.delivery_timeout_ms));
    if let Some(id) = a.source_id {
        b = b.source_id(id);
    }
    for (k, v) in signals::settings(&a.settings)? {
        b = b.set(k, v);
    }
    let mirror = b.start_sidecar(dir)?;
    let interval = Duration::from_millis(a.progress_interval_ms);
    let mut last_line = Instant::now();
    let mut shown_error: Option<String> = None;
    while !stop.load(Ordering::SeqCst) && mirror.is_running() {
        std::thread::sleep(Duration::from_millis(50));
        let st = mirror.status();
        if st.last_error != shown_error {
            if let Some(e) = &st.last_error {
                say(e);
            }
            shown_error = st.last_error.clone();
        }
        if !interval.is_zero() && last_line.elapsed() >= interval {
            say(&st.to_string());
            last_line = Instant::now();
        }
    }
    let stopping = stop.load(Ordering::SeqCst);
    let status = mirror.stop()?;
    say(&format!("{}: {}", if stopping { "stopped" } else { "ended" }, status));
    for p in &status.partitions {
        say(&format!(
            "  {}/{} mirrored up to offset {} of {}",
            p.topic, p.partition, p.mirrored, p.end_offset
        ));
    }
    Ok(0)
}
