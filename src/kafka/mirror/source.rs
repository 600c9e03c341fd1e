//! Where the mirror reads local records and keeps its progress: a local
//! consumer in the mirror's group (in-process, [`LocalGroup`]) or read-only
//! readers beside the directory's owner with a progress file ([`Sidecar`]).
//! Both hand records and skipped retention gaps to the one forwarding core.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::progress::{self, Progress};
use super::OnGap;
use crate::broker::Broker;
use crate::config::{ConsumerConfig, OffsetReset};
use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::inspect::{Inspector, PartitionReader};
use crate::names::TopicPartition;
use crate::ConsumedRecord;

/// Offsets retention deleted before they were shipped, skipped under `OnGap::Skip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gap {
    pub(super) tp: TopicPartition,
    /// First offset lost.
    pub(super) from: u64,
    /// First offset still stored.
    pub(super) to: u64,
}

/// One read: records in offset order per partition, and gaps skipped.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) records: Vec<ConsumedRecord>,
    pub(super) gaps: Vec<Gap>,
}

/// Partitions opened, where each starts, and gaps skipped to get there.
pub(super) type Opened = (Vec<(TopicPartition, Progress)>, Vec<Gap>);

/// What the forwarding core needs from a local record source.
pub(super) trait Source: Send {
    /// The local partition count of a topic now.
    fn partition_count(&self, topic: &str) -> Result<u32>;
    /// Starts reading these partitions; returns where each starts (the
    /// stored progress, else the first stored offset), and the gaps skipped
    /// when the stored progress is below the first stored offset.
    fn open(&mut self, tps: &[TopicPartition]) -> Result<Opened>;
    /// Records from the current positions, waiting up to `wait` when there are none.
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Batch>;
    /// Moves a partition's read position (after a failed send, to re-send).
    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()>;
    /// Stores the progress of every opened partition.
    fn commit(&mut self, progress: &BTreeMap<TopicPartition, Progress>) -> Result<()>;
    /// The next local offset to be written.
    fn end_offset(&self, tp: &TopicPartition) -> Result<u64>;
    /// Fails with `Error::MirrorAhead` if the progress kept for a partition
    /// of these topics says offsets past its local end were sent (checked
    /// again by `open`; this runs before the mirror connects to Kafka).
    fn check_ahead(&self, topics: &[String]) -> Result<()>;
}

/// Turns an out-of-range position into a gap: an error under `OnGap::Stop`.
fn gap_or_error(on_gap: OnGap, tp: &TopicPartition, from: u64, to: u64) -> Result<Gap> {
    match on_gap {
        OnGap::Stop => Err(Error::MirrorGap {
            topic: tp.topic.clone(),
            partition: tp.partition,
            from,
            to,
        }),
        OnGap::Skip => Ok(Gap {
            tp: tp.clone(),
            from,
            to,
        }),
    }
}

/// Fails with `Error::MirrorAhead` when the mirror sent offsets at or past
/// the local end: the directory lost records after they were shipped.
fn check_not_ahead(tp: &TopicPartition, sent: u64, end: u64, path: &Path) -> Result<()> {
    if sent > end {
        return Err(Error::MirrorAhead {
            topic: tp.topic.clone(),
            partition: tp.partition,
            sent,
            end,
            progress: path.to_path_buf(),
        });
    }
    Ok(())
}

/// One past the highest offset sent to Kafka as far as the progress file
/// and the group's committed offset know.
fn sent_so_far(stored: &BTreeMap<TopicPartition, Progress>, tp: &TopicPartition, committed: Option<u64>) -> u64 {
    stored
        .get(tp)
        .map_or(0, |p| p.sent_upto.max(p.next))
        .max(committed.unwrap_or(0))
}

/// In-process: a local consumer of the mirror's group, committing there. The
/// group's committed offset is where a restart resumes; the progress file
/// `<dir>/@mirror/<group>.offsets` (the sidecar's layout) keeps, beside a
/// copy of it, one past the highest offset ever sent, for counting re-sends
/// and for noticing records lost locally after they were shipped.
pub(super) struct LocalGroup {
    broker: Broker,
    consumer: Consumer,
    on_gap: OnGap,
    path: PathBuf,
    /// Records polled and not handed out yet (a poll returns at most `max`).
    pending: VecDeque<ConsumedRecord>,
}

impl LocalGroup {
    pub(super) fn new(broker: &Broker, group: &str, on_gap: OnGap) -> Result<LocalGroup> {
        // Reset None: a position retention overtook is an error here, never a silent jump.
        let consumer = broker.consumer(
            ConsumerConfig::new()
                .group(group)
                .offset_reset(OffsetReset::None)
                .max_poll_records(2000),
        )?;
        Ok(LocalGroup {
            broker: broker.clone(),
            consumer,
            on_gap,
            path: progress::path(broker.dir(), group),
            pending: VecDeque::new(),
        })
    }
}

impl Source for LocalGroup {
    fn partition_count(&self, topic: &str) -> Result<u32> {
        Ok(self.broker.topic(topic)?.partition_count())
    }

    fn open(&mut self, tps: &[TopicPartition]) -> Result<Opened> {
        let mut gaps = Vec::new();
        let mut all = self.consumer.assignment();
        all.extend(tps.iter().cloned());
        all.sort();
        all.dedup();
        self.consumer.assign(&all)?;
        let stored = progress::load(&self.path)?;
        let mut out = Vec::with_capacity(tps.len());
        for tp in tps {
            let part = self.broker.topic(&tp.topic)?.partition(tp.partition)?;
            let (start, end) = (part.start_offset(), part.end_offset());
            let committed = self.consumer.committed(tp)?;
            // Broker::open clamps a committed offset past the end to the end:
            // the file, written at every commit, still knows what was sent.
            let sent = sent_so_far(&stored, tp, committed);
            check_not_ahead(tp, sent, end, &self.path)?;
            let next = match committed {
                Some(c) if c >= start => c,
                Some(c) => {
                    gaps.push(gap_or_error(self.on_gap, tp, c, start)?);
                    start
                }
                None => start,
            };
            out.push((
                tp.clone(),
                Progress {
                    next,
                    sent_upto: sent.max(next),
                },
            ));
        }
        // Seek only once every partition passed the checks.
        for (tp, p) in &out {
            self.consumer.seek(tp, p.next)?;
        }
        Ok((out, gaps))
    }

    fn poll(&mut self, max: usize, wait: Duration) -> Result<Batch> {
        if !self.pending.is_empty() {
            let n = max.min(self.pending.len());
            return Ok(Batch {
                records: self.pending.drain(..n).collect(),
                gaps: Vec::new(),
            });
        }
        match self.consumer.poll(wait) {
            Ok(records) => {
                let mut records: Vec<ConsumedRecord> = records.into_iter().collect();
                if records.len() > max {
                    self.pending.extend(records.drain(max..));
                }
                Ok(Batch {
                    records,
                    gaps: Vec::new(),
                })
            }
            Err(Error::OffsetOutOfRange {
                topic,
                partition,
                offset,
                start,
                ..
            }) => {
                let tp = TopicPartition::new(topic, partition);
                let gap = gap_or_error(self.on_gap, &tp, offset, start)?;
                self.consumer.seek(&tp, start)?;
                Ok(Batch {
                    records: Vec::new(),
                    gaps: vec![gap],
                })
            }
            Err(e) => Err(e),
        }
    }

    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.pending
            .retain(|r| r.partition() != tp.partition || r.topic() != tp.topic);
        self.consumer.seek(tp, offset)
    }

    fn commit(&mut self, progress: &BTreeMap<TopicPartition, Progress>) -> Result<()> {
        let offsets: Vec<(TopicPartition, u64)> = progress.iter().map(|(tp, p)| (tp.clone(), p.next)).collect();
        // The file first: it may say more was sent than the group says was
        // shipped, never less.
        progress::store(&self.path, progress)?;
        self.consumer.commit_offsets(&offsets)
    }

    fn end_offset(&self, tp: &TopicPartition) -> Result<u64> {
        Ok(self.broker.topic(&tp.topic)?.partition(tp.partition)?.end_offset())
    }

    fn check_ahead(&self, topics: &[String]) -> Result<()> {
        let stored = progress::load(&self.path)?;
        for t in topics {
            let topic = self.broker.topic(t)?;
            for p in 0..topic.partition_count() {
                let tp = TopicPartition::new(t.as_str(), p);
                let committed = self.consumer.committed(&tp)?;
                let end = topic.partition(p)?.end_offset();
                check_not_ahead(&tp, sent_so_far(&stored, &tp, committed), end, &self.path)?;
            }
        }
        Ok(())
    }
}

/// Beside the owner: read-only readers, progress in `<dir>/@mirror/<group>.offsets`.
pub(super) struct Sidecar {
    inspector: Inspector,
    path: PathBuf,
    readers: BTreeMap<TopicPartition, PartitionReader>,
    on_gap: OnGap,
    /// Partition polled first next time, so none starves the others.
    rotate: usize,
}

impl Sidecar {
    pub(super) fn new(dir: &Path, group: &str, on_gap: OnGap) -> Result<Sidecar> {
        Ok(Sidecar {
            inspector: Inspector::open(dir)?,
            path: progress::path(dir, group),
            readers: BTreeMap::new(),
            on_gap,
            rotate: 0,
        })
    }

    /// Polls one reader; a retention gap becomes a `Gap` (or the error).
    fn poll_one(
        &self,
        tp: &TopicPartition,
        r: &mut PartitionReader,
        max: usize,
        gaps: &mut Vec<Gap>,
    ) -> Result<Vec<ConsumedRecord>> {
        let before = r.position();
        let records = match r.poll(max) {
            Ok(records) => records,
            Err(Error::OffsetOutOfRange { offset, start, .. }) => {
                gaps.push(gap_or_error(self.on_gap, tp, offset, start)?);
                *r = self.inspector.reader(&tp.topic, tp.partition, start)?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        // The reader steps over segments retention deleted under it: a jump
        // past the first stored offset is such a gap (a jump inside the
        // stored range is compaction or a transaction marker).
        if let Some(first) = records.first().map(ConsumedRecord::offset).filter(|&o| o > before) {
            let start = self.inspector.partition_info(&tp.topic, tp.partition)?.start_offset;
            if start > before {
                let gap = match gap_or_error(self.on_gap, tp, before, start.min(first)) {
                    Ok(g) => g,
                    Err(e) => {
                        *r = self.inspector.reader(&tp.topic, tp.partition, before)?;
                        return Err(e);
                    }
                };
                gaps.push(gap);
            }
        }
        Ok(records)
    }
}

impl Source for Sidecar {
    fn partition_count(&self, topic: &str) -> Result<u32> {
        Ok(self.inspector.topic_meta(topic)?.partitions)
    }

    fn open(&mut self, tps: &[TopicPartition]) -> Result<Opened> {
        let mut gaps = Vec::new();
        let stored = progress::load(&self.path)?;
        let mut out = Vec::with_capacity(tps.len());
        for tp in tps {
            let start = self.inspector.partition_info(&tp.topic, tp.partition)?.start_offset;
            let p = stored.get(tp).copied().unwrap_or(Progress {
                next: start,
                sent_upto: start,
            });
            let end = self.inspector.partition_info(&tp.topic, tp.partition)?.end_offset;
            check_not_ahead(tp, sent_so_far(&stored, tp, None), end, &self.path)?;
            if p.next < start {
                gaps.push(gap_or_error(self.on_gap, tp, p.next, start)?);
            }
            let p = Progress {
                next: p.next.max(start),
                sent_upto: p.sent_upto,
            };
            self.readers
                .insert(tp.clone(), self.inspector.reader(&tp.topic, tp.partition, p.next)?);
            out.push((tp.clone(), p));
        }
        Ok((out, gaps))
    }

    fn poll(&mut self, max: usize, wait: Duration) -> Result<Batch> {
        let mut batch = Batch::default();
        let n = self.readers.len();
        if n == 0 {
            std::thread::sleep(wait);
            return Ok(batch);
        }
        let first = self.rotate % n;
        self.rotate = self.rotate.wrapping_add(1);
        let mut readers = std::mem::take(&mut self.readers);
        let mut result = Ok(());
        let keys: Vec<TopicPartition> = readers.keys().cloned().collect();
        for tp in keys.iter().cycle().skip(first).take(n) {
            let Some(r) = readers.get_mut(tp) else { continue };
            let room = max.saturating_sub(batch.records.len());
            if room == 0 {
                break;
            }
            match self.poll_one(tp, r, room, &mut batch.gaps) {
                Ok(records) => batch.records.extend(records),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.readers = readers;
        result?;
        if batch.records.is_empty() && batch.gaps.is_empty() {
            // Nothing new: the owner's appends show up in the files; look again shortly.
            std::thread::sleep(wait);
        }
        Ok(batch)
    }

    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        let r = self.inspector.reader(&tp.topic, tp.partition, offset)?;
        self.readers.insert(tp.clone(), r);
        Ok(())
    }

    fn commit(&mut self, progress: &BTreeMap<TopicPartition, Progress>) -> Result<()> {
        progress::store(&self.path, progress)
    }

    fn end_offset(&self, tp: &TopicPartition) -> Result<u64> {
        Ok(self.inspector.partition_info(&tp.topic, tp.partition)?.end_offset)
    }

    fn check_ahead(&self, topics: &[String]) -> Result<()> {
        let stored = progress::load(&self.path)?;
        for t in topics {
            for p in 0..self.partition_count(t)? {
                let tp = TopicPartition::new(t.as_str(), p);
                let end = self.end_offset(&tp)?;
                check_not_ahead(&tp, sent_so_far(&stored, &tp, None), end, &self.path)?;
            }
        }
        Ok(())
    }
}
