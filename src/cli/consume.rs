//! `consume`: read-only through `inspect`, or as a group member through a `Broker`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::args::{topic_of, ConsumeArgs};
use super::output::Printer;
use super::{note, open_broker, CliError, CliResult};
use crate::inspect::{Inspector, PartitionReader, TxnMark};
use crate::{ConsumerConfig, OffsetReset, TopicPartition};

/// How often `--follow` looks at the files again when there is nothing new.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Records read per partition per round.
const ROUND: usize = 500;

/// How often `--follow` reads the topic's partition count again.
const PARTITION_RECHECK: Duration = Duration::from_secs(1);

pub(super) fn run(dir: &Path, mut a: ConsumeArgs) -> CliResult<u8> {
    a.topic = Some(topic_of(&a.topic, &a.topic_flag));
    if a.bootstrap_server.is_some() {
        note("note: --bootstrap-server is ignored; logbus reads the directory given by --dir");
    }
    apply_properties(&mut a)?;
    if a.max_messages == Some(0) {
        return Ok(0);
    }
    match a.group.clone() {
        Some(g) => with_group(dir, &a, &g),
        None => read_only(dir, &a),
    }
}

/// Kafka's `--property print.key=true` and friends, as logbus's `--print-*` options.
fn apply_properties(a: &mut ConsumeArgs) -> CliResult {
    for p in std::mem::take(&mut a.properties) {
        let (name, value) = p.split_once('=').unwrap_or((p.as_str(), ""));
        if name == "key.separator" && !value.is_empty() {
            a.field_separator = Some(value.to_string());
            continue;
        }
        let on = match value.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        let flag = match name {
            "print.key" => Some(&mut a.print_key),
            "print.timestamp" => Some(&mut a.print_timestamp),
            // logbus prints partition and offset together, as partition:offset.
            "print.offset" | "print.partition" => Some(&mut a.print_offset),
            "print.headers" => Some(&mut a.print_headers),
            _ => None,
        };
        match (flag, on) {
            (Some(f), Some(on)) => *f |= on,
            _ => {
                return Err(CliError::new(format!(
                    "unsupported --property {p:?}; consume supports print.key, print.timestamp, print.offset, print.partition and print.headers (each =true or =false, the same as --print-key, --print-timestamp, --print-offset, --print-headers) and key.separator=SEP (between printed fields; a tab by default)"
                )))
            }
        }
    }
    Ok(())
}

/// Where to start on one partition.
fn start_offset(a: &ConsumeArgs, start: u64, end: u64, topic: &str, partition: u32) -> CliResult<u64> {
    let offset = match a.offset.as_deref() {
        None if a.from_beginning => start,
        None | Some("latest") => end,
        Some("earliest") => start,
        Some(o) => o
            .parse::<u64>()
            .map_err(|_| CliError::new(format!("--offset {o:?} is not a number, `earliest` or `latest`")))?,
    };
    if offset < start || offset > end {
        return Err(crate::Error::OffsetOutOfRange {
            topic: topic.to_string(),
            partition,
            offset,
            start,
            end,
        }
        .into());
    }
    Ok(offset)
}

/// The topic to read (`run` has resolved `--topic` into the positional argument).
fn topic_name(a: &ConsumeArgs) -> &str {
    a.topic.as_deref().unwrap_or_default()
}

/// A read error in the follower's terms: a topic deleted under it says so.
fn read_error(inspector: &Inspector, topic: &str, e: crate::Error) -> CliError {
    match inspector.topic_meta(topic) {
        Err(crate::Error::UnknownTopic { .. }) => deleted(topic),
        _ => e.into(),
    }
}

fn deleted(topic: &str) -> CliError {
    CliError::new(format!("topic '{topic}' was deleted"))
}

fn read_only(dir: &Path, a: &ConsumeArgs) -> CliResult<u8> {
    let topic = topic_name(a);
    let inspector = Inspector::open(dir)?;
    let meta = inspector.topic_meta(topic)?;
    let partitions: Vec<u32> = match a.partition {
        Some(p) => vec![p],
        None => (0..meta.partitions).collect(),
    };
    let mut known = meta.partitions;
    let mut readers: Vec<PartitionReader> = Vec::with_capacity(partitions.len());
    for p in partitions {
        let info = inspector.partition_info(topic, p)?;
        let offset = start_offset(a, info.start_offset, info.end_offset, topic, p)?;
        readers.push(inspector.reader(topic, p, offset)?);
    }
    let mut printer = Printer::new(a);
    let mut printed = 0u64;
    let limit = a.max_messages.unwrap_or(u64::MAX);
    let mut checked = Instant::now();
    let mut txns = inspector.transactions()?;
    loop {
        let mut progressed = false;
        for r in &mut readers {
            let want = usize::try_from(limit - printed).unwrap_or(ROUND).min(ROUND);
            let before = r.position();
            let records = r.poll_marked(want).map_err(|e| read_error(&inspector, topic, e))?;
            progressed |= !records.is_empty() || r.position() != before;
            if records
                .iter()
                .any(|(_, m)| matches!(m, Some(TxnMark::Record { id }) if !txns.is_committed(*id)))
            {
                // A live owner may have committed it since the last look.
                txns = inspector.transactions()?;
            }
            for (rec, mark) in &records {
                printer.print_marked(rec, *mark, &txns)?;
                if !matches!(mark, Some(TxnMark::Marker { .. })) {
                    printed += 1;
                }
            }
            if printed >= limit {
                printer.flush()?;
                return Ok(0);
            }
        }
        if !progressed {
            printer.flush()?;
            if !a.follow {
                for r in &readers {
                    if let Some(d) = r.tail_damage() {
                        note(&format!("warning: partition {} stops at {d}", r.partition()));
                    }
                }
                if printed == 0 && !a.from_beginning && a.offset.is_none() {
                    note("note: no records printed: consume starts at the end of each partition (as Kafka's console consumer does) and, without --follow, stops there; pass --from-beginning to read the stored records, or --follow to wait for new ones");
                }
                return Ok(0);
            }
            if checked.elapsed() >= PARTITION_RECHECK {
                checked = Instant::now();
                // Another process may have added partitions, or deleted the topic.
                let now = match inspector.topic_meta(topic) {
                    Ok(m) => m.partitions,
                    Err(crate::Error::UnknownTopic { .. }) => return Err(deleted(topic)),
                    Err(e) => return Err(e.into()),
                };
                if a.partition.is_none() && now > known {
                    for p in known..now {
                        // A new partition is read from its start: all of it is new.
                        let info = inspector.partition_info(topic, p)?;
                        readers.push(inspector.reader(topic, p, info.start_offset)?);
                    }
                    known = now;
                }
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

fn with_group(dir: &Path, a: &ConsumeArgs, group: &str) -> CliResult<u8> {
    let broker = open_broker(dir)?;
    let topic = broker.topic(topic_name(a))?;
    let reset = if a.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let mut consumer = broker.consumer(ConsumerConfig::new().group(group).offset_reset(reset))?;
    consumer.subscribe(&[topic_name(a)])?;
    let mut printer = Printer::new(a);
    let mut printed = 0u64;
    let limit = a.max_messages.unwrap_or(u64::MAX);
    let mut unassigned_polls = 0u32;
    // First offset fetched but not printed (past --max-messages), per partition.
    let mut unprinted: BTreeMap<TopicPartition, u64> = BTreeMap::new();
    let mut printed_next: BTreeMap<TopicPartition, u64> = BTreeMap::new();
    loop {
        let records = consumer.poll(FOLLOW_POLL)?;
        let mut next: BTreeMap<TopicPartition, u64> = BTreeMap::new();
        for rec in &records {
            if printed >= limit {
                unprinted
                    .entry(TopicPartition::new(rec.topic(), rec.partition()))
                    .or_insert(rec.offset());
                continue;
            }
            printer.print(rec)?;
            printed += 1;
            next.insert(TopicPartition::new(rec.topic(), rec.partition()), rec.offset() + 1);
        }
        printer.flush()?;
        if !next.is_empty() {
            printed_next.extend(next.iter().map(|(tp, o)| (tp.clone(), *o)));
            let offsets: Vec<(TopicPartition, u64)> = next.into_iter().collect();
            consumer.commit_offsets(&offsets)?;
        }
        if printed >= limit {
            break;
        }
        if records.is_empty() && !a.follow {
            // Done when every assigned partition is read to its end.
            // (Nothing assigned for 2 s: the group has other members holding every partition.)
            unassigned_polls += u32::from(consumer.assignment().is_empty());
            let mut caught_up = unassigned_polls >= 20 || !consumer.assignment().is_empty();
            for tp in consumer.assignment() {
                caught_up &= consumer.position(&tp)? >= topic.partition(tp.partition)?.end_offset();
            }
            if caught_up {
                break;
            }
        }
    }
    // Like Kafka's consumer on close: commit the position of every assigned
    // partition, so the group's lag counts the partitions nothing was printed from.
    let mut offsets = Vec::new();
    for tp in consumer.assignment() {
        let at = match printed_next.get(&tp).or(unprinted.get(&tp)) {
            Some(&o) => o,
            None => consumer.position(&tp)?,
        };
        offsets.push((tp, at));
    }
    if !offsets.is_empty() {
        consumer.commit_offsets(&offsets)?;
    }
    consumer.close()?;
    broker.close()?;
    Ok(0)
}
