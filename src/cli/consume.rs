//! `consume`: read-only through `inspect`, or as a group member through a `Broker`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::args::ConsumeArgs;
use super::output::Printer;
use super::{open_broker, CliError, CliResult};
use crate::inspect::{Inspector, PartitionReader};
use crate::{ConsumerConfig, OffsetReset, TopicPartition};

/// How often `--follow` looks at the files again when there is nothing new.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Records read per partition per round.
const ROUND: usize = 500;

pub(super) fn run(dir: &Path, a: ConsumeArgs) -> CliResult<u8> {
    if a.max_messages == Some(0) {
        return Ok(0);
    }
    match a.group.clone() {
        Some(g) => with_group(dir, &a, &g),
        None => read_only(dir, &a),
    }
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

fn read_only(dir: &Path, a: &ConsumeArgs) -> CliResult<u8> {
    let inspector = Inspector::open(dir)?;
    let meta = inspector.topic_meta(&a.topic)?;
    let partitions: Vec<u32> = match a.partition {
        Some(p) => vec![p],
        None => (0..meta.partitions).collect(),
    };
    let mut readers: Vec<PartitionReader> = Vec::with_capacity(partitions.len());
    for p in partitions {
        let info = inspector.partition_info(&a.topic, p)?;
        let offset = start_offset(a, info.start_offset, info.end_offset, &a.topic, p)?;
        readers.push(inspector.reader(&a.topic, p, offset)?);
    }
    let mut printer = Printer::new(a);
    let mut printed = 0u64;
    let limit = a.max_messages.unwrap_or(u64::MAX);
    loop {
        let mut progressed = false;
        for r in &mut readers {
            let want = usize::try_from(limit - printed).unwrap_or(ROUND).min(ROUND);
            let records = r.poll(want)?;
            progressed |= !records.is_empty();
            for rec in &records {
                printer.print(rec)?;
                printed += 1;
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
                        eprintln_quiet(&format!("warning: partition {} stops at {d}", r.partition()));
                    }
                }
                return Ok(0);
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

fn eprintln_quiet(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn with_group(dir: &Path, a: &ConsumeArgs, group: &str) -> CliResult<u8> {
    let broker = open_broker(dir)?;
    let topic = broker.topic(&a.topic)?;
    let reset = if a.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let mut consumer = broker.consumer(ConsumerConfig::new().group(group).offset_reset(reset))?;
    consumer.subscribe(&[a.topic.as_str()])?;
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
