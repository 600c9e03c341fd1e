//! `topics create | list | describe | alter | delete`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{AlterArgs, BootstrapArg, CreateArgs, TopicsArgs, TopicsCommand};
use super::{data_dir, existing_dir, open_broker, CliError, CliResult};
use crate::inspect::Inspector;
use crate::TopicConfig;

pub(super) fn run(dir: Option<PathBuf>, a: TopicsArgs) -> CliResult<u8> {
    bootstrap_note(&a.bootstrap);
    match a.command {
        TopicsCommand::Create(a) => create(&data_dir(dir)?, a),
        TopicsCommand::List => list(&existing_dir(dir)?),
        TopicsCommand::Describe(t) => {
            let dir = existing_dir(dir)?;
            match t.name.or(t.topic) {
                Some(name) => describe(&dir, &name),
                None => describe_all(&dir),
            }
        }
        TopicsCommand::Alter(a) => alter(&existing_dir(dir)?, a),
        TopicsCommand::Delete(t) => delete(&existing_dir(dir)?, t.name()),
    }
}

/// Kafka's `--bootstrap-server` is accepted so Kafka commands run as typed; say it does nothing.
pub(super) fn bootstrap_note(b: &BootstrapArg) {
    if let Some(server) = &b.bootstrap_server {
        let _ = writeln!(
            std::io::stderr(),
            "note: --bootstrap-server {server} ignored: logbus works on the directory given by --dir or LOGBUS_DIR"
        );
    }
}

fn create(dir: &Path, a: CreateArgs) -> CliResult<u8> {
    let name = a.name.or(a.topic).unwrap_or_default();
    if name.starts_with('-') {
        return Err(CliError::new(format!(
            "refusing to create topic '{name}': the command line does not create names starting with '-' (a mistyped flag?); give the name as `logbus topics create NAME` or `--topic NAME`"
        )));
    }
    // Check the name before Broker::open creates a directory for a typo.
    crate::validate_topic_name(&name)?;
    if let Some(rf) = a.replication_factor.filter(|&rf| rf != 1) {
        return Err(CliError::new(format!(
            "--replication-factor {rf}: logbus keeps one copy of each partition, so only 1 is accepted"
        )));
    }
    let mut config = TopicConfig::default();
    if let Some(n) = a.partitions {
        config = config.partitions(n);
    }
    if let Some(ms) = a.retention_ms {
        config = config.retention_ms(Some(ms));
    }
    if let Some(b) = a.retention_bytes {
        config = config.retention_bytes(Some(b));
    }
    if let Some(b) = a.segment_bytes {
        config = config.segment_bytes(b);
    }
    if let Some(b) = a.max_record_bytes {
        config = config.max_record_bytes(b);
    }
    if let Some(p) = a.cleanup_policy {
        config = config.cleanup_policy(p);
    }
    if let Some(ms) = a.delete_retention_ms {
        config = config.delete_retention_ms(ms);
    }
    if let Some(ms) = a.min_compaction_lag_ms {
        config = config.min_compaction_lag_ms(ms);
    }
    if let Some(r) = a.min_cleanable_dirty_ratio {
        config = config.min_cleanable_dirty_ratio(r);
    }
    let config = config.with_properties(&key_values("--config", &a.configs)?)?;
    let broker = match &a.broker_config {
        None => open_broker(dir)?,
        Some(file) => {
            let props = crate::properties::read_properties(file)?;
            let pairs: Vec<(&str, &str)> = props.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            crate::Broker::open_with(dir, crate::BrokerConfig::from_properties(&pairs)?)?
        }
    };
    if a.if_not_exists && broker.topics().contains(&name) {
        broker.close()?;
        writeln!(
            std::io::stderr(),
            "note: topic {name} exists; nothing changed (--if-not-exists)"
        )?;
        return Ok(0);
    }
    let partitions = broker.create_topic(&name, config)?.partition_count();
    broker.close()?;
    writeln!(
        std::io::stdout(),
        "Created topic {name} with {partitions} partition(s)."
    )?;
    Ok(0)
}

/// `KEY=VALUE` arguments as pairs; a missing `=` is an error naming the argument.
fn key_values<'a>(flag: &str, args: &'a [String]) -> CliResult<Vec<(&'a str, &'a str)>> {
    args.iter()
        .map(|a| {
            a.split_once('=').ok_or_else(|| {
                CliError::new(format!(
                    "{flag} {a}: expected KEY=VALUE, e.g. {flag} retention.ms=604800000"
                ))
            })
        })
        .collect()
}

fn alter(dir: &Path, a: AlterArgs) -> CliResult<u8> {
    let name = a.topic.name();
    let set: Vec<String> = a
        .add_config
        .iter()
        .flat_map(|c| c.split(','))
        .map(str::to_string)
        .collect();
    let set = key_values("--add-config", &set)?;
    let delete: Vec<&str> = a.delete_config.iter().flat_map(|c| c.split(',')).collect();
    let broker = open_broker(dir)?;
    let current = broker.topic(name)?.partition_count();
    if let Some(n) = a.partitions.filter(|&n| n <= current) {
        return Err(CliError::new(format!(
            "topic '{name}' has {current} partition(s); --partitions {n} would not add any, and partitions cannot be removed (as in Kafka)"
        )));
    }
    // The settings first: a bad one changes nothing, partitions included.
    let mut out = std::io::stdout().lock();
    if !set.is_empty() || !delete.is_empty() {
        let config = broker.alter_topic_config(name, &set, &delete)?;
        let now: Vec<String> = config
            .to_properties()
            .into_iter()
            .filter(|(k, _)| crate::properties::ALTERABLE_KEYS.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(out, "Topic {name} configs now: {}.", now.join(","))?;
    }
    if let Some(n) = a.partitions {
        broker.add_partitions(name, n)?;
        writeln!(out, "Topic {name} now has {n} partition(s) (was {current}).")?;
    }
    broker.close()?;
    Ok(0)
}

fn list(dir: &Path) -> CliResult<u8> {
    let names = Inspector::open(dir)?.topics()?;
    let mut out = std::io::stdout().lock();
    for n in names {
        writeln!(out, "{n}")?;
    }
    Ok(0)
}

fn describe_all(dir: &Path) -> CliResult<u8> {
    let inspector = Inspector::open(dir)?;
    for (i, name) in inspector.topics()?.iter().enumerate() {
        if i > 0 {
            writeln!(std::io::stdout())?;
        }
        describe_one(&inspector, name)?;
    }
    Ok(0)
}

fn describe(dir: &Path, name: &str) -> CliResult<u8> {
    describe_one(&Inspector::open(dir)?, name)?;
    Ok(0)
}

fn describe_one(inspector: &Inspector, name: &str) -> CliResult {
    let info = inspector.describe_topic(name)?;
    let m = &info.meta;
    let mut out = std::io::stdout().lock();
    let config = crate::topic::from_meta(m);
    let compacted = config.policy().compacts();
    let configs: Vec<String> = config
        .to_properties()
        .into_iter()
        .filter(|(k, _)| *k != "partitions")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    writeln!(
        out,
        "Topic: {}\tPartitionCount: {}\tReplicationFactor: 1\tPartitioner: {}\tConfigs: {}",
        info.name,
        m.partitions,
        if m.partitioner == 1 { "murmur2" } else { "xxh64" },
        configs.join(","),
    )?;
    // RECORDS counts offsets: on a compacted topic some hold no record any more.
    write!(
        out,
        "{:>9}  {:>12}  {:>12}  {:>10}  {:>14}  {:>8}",
        "PARTITION", "START", "END", "RECORDS", "SIZE_BYTES", "SEGMENTS"
    )?;
    if compacted {
        write!(out, "  {:>12}  {:>11}", "CLEANED_UPTO", "DIRTY_RATIO")?;
    }
    writeln!(out)?;
    let mut notes = Vec::new();
    for p in &info.partitions {
        write!(
            out,
            "{:>9}  {:>12}  {:>12}  {:>10}  {:>14}  {:>8}",
            p.partition,
            p.start_offset,
            p.end_offset,
            p.end_offset.saturating_sub(p.start_offset),
            p.size_bytes,
            p.segment_count
        )?;
        if compacted {
            write!(out, "  {:>12}  {:>11.3}", p.cleaned_offset, p.dirty_ratio())?;
        }
        writeln!(out)?;
        if let Some(d) = &p.tail_damage {
            notes.push(format!(
                "note: partition {} ends before an incomplete or damaged batch ({d})",
                p.partition
            ));
        }
    }
    let mut err = std::io::stderr().lock();
    for n in notes {
        writeln!(err, "{n}")?;
    }
    Ok(())
}

fn delete(dir: &Path, name: &str) -> CliResult<u8> {
    let broker = open_broker(dir)?;
    broker.delete_topic(name)?;
    broker.close()?;
    writeln!(std::io::stdout(), "Deleted topic {name}.")?;
    Ok(0)
}
