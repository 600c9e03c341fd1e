//! Where an ingested record came from: one reserved header stored with the
//! local record (or, in directories written by earlier builds, three), and
//! the backward scan that finds where an ingest stopped in a local
//! partition.

use crate::error::{Error, Result};
use crate::topic::Partition;
use crate::ConsumedRecord;

/// Header the ingest appends to every record: the Kafka topic, partition
/// and offset as `<topic>/<partition>/<offset>`, ASCII (e.g.
/// `orders/3/12345`). Topic names hold no `/`, so the value splits
/// unambiguously.
pub const ORIGIN_HEADER: &str = "kafka.origin";
/// Header holding the Kafka topic name (UTF-8), in the three-header form
/// that directories written by earlier builds hold; read, never written.
pub const TOPIC_HEADER: &str = "kafka.topic";
/// Header holding the Kafka partition number (ASCII decimal, e.g. `3`), in
/// the three-header form; read, never written.
pub const PARTITION_HEADER: &str = "kafka.partition";
/// Header holding the Kafka offset (ASCII decimal, e.g. `12345`), in the
/// three-header form; read, never written.
pub const OFFSET_HEADER: &str = "kafka.offset";

/// The Kafka topic, partition and offset an ingested local record was
/// copied from, read back from its reserved headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaOrigin {
    /// The Kafka topic.
    pub topic: String,
    /// The Kafka partition.
    pub partition: u32,
    /// The Kafka offset.
    pub offset: u64,
}

impl KafkaOrigin {
    /// The origin of a local record, `None` when it carries no valid origin
    /// (a record someone else appended): a valid [`ORIGIN_HEADER`], or all
    /// three of [`TOPIC_HEADER`], [`PARTITION_HEADER`], [`OFFSET_HEADER`]
    /// with valid values. When a name occurs more than once the last
    /// occurrence counts, and when both forms occur the one whose header
    /// comes last counts: the ingest appends its header after the record's
    /// own, which may carry an origin from an earlier hop.
    pub fn of(record: &ConsumedRecord) -> Option<KafkaOrigin> {
        KafkaOrigin::from_headers(record.headers())
    }

    /// The origin read from headers (see [`KafkaOrigin::of`]).
    pub fn from_headers<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Option<KafkaOrigin> {
        let (mut origin, mut topic, mut partition, mut offset) = (None, None, None, None);
        for (at, (name, value)) in headers.enumerate() {
            match name {
                ORIGIN_HEADER => origin = Some((at, value)),
                TOPIC_HEADER => topic = Some((at, value)),
                PARTITION_HEADER => partition = Some((at, value)),
                OFFSET_HEADER => offset = Some((at, value)),
                _ => {}
            }
        }
        let three = match (topic, partition, offset) {
            (Some(t), Some(p), Some(o)) => Some((t.0.max(p.0).max(o.0), (t.1, p.1, o.1))),
            _ => None,
        };
        let (topic, partition, offset) = match (origin, three) {
            (Some((a, value)), Some((b, _))) if a > b => split(value)?,
            (Some((_, value)), None) => split(value)?,
            (_, Some((_, parts))) => parts,
            (None, None) => return None,
        };
        Some(KafkaOrigin {
            topic: std::str::from_utf8(topic).ok()?.to_string(),
            partition: decimal(partition)?.try_into().ok()?,
            offset: decimal(offset)?,
        })
    }
}

/// Splits an [`ORIGIN_HEADER`] value into topic, partition and offset, from
/// the right.
fn split(value: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = value.rsplitn(3, |&b| b == b'/');
    let offset = parts.next()?;
    let partition = parts.next()?;
    let topic = parts.next().filter(|t| !t.is_empty())?;
    Some((topic, partition, offset))
}

/// Appends the [`ORIGIN_HEADER`] value to `buf`: `prefix` is
/// [`origin_prefix`] of the topic and partition.
pub(crate) fn push_origin(buf: &mut Vec<u8>, prefix: &[u8], offset: u64) {
    buf.extend_from_slice(prefix);
    push_decimal(buf, offset);
}

/// `<topic>/<partition>/`, the part of the [`ORIGIN_HEADER`] value shared
/// by every record of one partition.
pub(crate) fn origin_prefix(topic: &str, partition: u32) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(topic.len() + 12);
    prefix.extend_from_slice(topic.as_bytes());
    prefix.push(b'/');
    push_decimal(&mut prefix, u64::from(partition));
    prefix.push(b'/');
    prefix
}

/// Appends `n` in ASCII decimal.
fn push_decimal(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(crate::kafka::digits::decimal(n, &mut [0u8; 20]));
}

/// A strict ASCII decimal (no sign, no spaces, at least one digit).
fn decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Where to resume one Kafka partition from its local partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// The next Kafka offset to store (one past the last stored).
    At(u64),
    /// No record of this Kafka partition is stored locally (never ingested,
    /// or everything ingested was deleted by local retention).
    Fresh,
}

/// Records read per step of the backward scan.
const SCAN_CHUNK: u64 = 256;

/// Finds the last record of `local` that came from Kafka `topic`/`partition`,
/// reading backwards from the end. Records without (matching) origin headers
/// are skipped, at most `limit` of them: past that the resume point is
/// unknown and the answer is an error rather than a guess.
pub(crate) fn resume_point(local: &Partition, topic: &str, partition: u32, limit: u64) -> Result<Resume> {
    let start = local.start_offset();
    let mut hi = local.end_offset();
    let mut skipped = 0u64;
    while hi > start {
        let lo = hi.saturating_sub(SCAN_CHUNK).max(start);
        let chunk = read_range(local, lo, hi)?;
        for r in chunk.iter().rev() {
            match KafkaOrigin::of(r) {
                Some(o) if o.topic == topic && o.partition == partition => return Ok(Resume::At(o.offset + 1)),
                _ => skipped += 1,
            }
            if skipped >= limit {
                return Err(Error::InvalidConfig {
                    field: "resume_scan",
                    value: limit.to_string(),
                    reason: format!(
                        "the last {skipped} records of local topic '{topic}' partition {partition} (offsets up to {}) \
                         carry no Kafka-origin header ({ORIGIN_HEADER}), so the ingest cannot tell where it stopped; \
                         keep other writers off ingested topics or raise IngestBuilder::resume_scan",
                        local.end_offset().saturating_sub(1)
                    ),
                });
            }
        }
        hi = lo;
    }
    Ok(Resume::Fresh)
}

/// Every stored record with an offset in `lo..hi` (a read may stop early at
/// a segment's end, so read until `hi`).
fn read_range(local: &Partition, lo: u64, hi: u64) -> Result<Vec<ConsumedRecord>> {
    let mut out = Vec::new();
    let mut pos = lo;
    while pos < hi {
        let want = usize::try_from(hi - pos).unwrap_or(usize::MAX);
        let got = local.read(pos, want)?;
        let Some(last) = got.last().map(ConsumedRecord::offset) else {
            break;
        };
        out.extend(got.into_iter().filter(|r| r.offset() < hi));
        pos = last + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(topic: &str, partition: u32, offset: u64) -> Option<KafkaOrigin> {
        Some(KafkaOrigin {
            topic: topic.into(),
            partition,
            offset,
        })
    }

    #[test]
    fn the_origin_header_round_trips() {
        for (topic, partition, offset) in [("t", 0, 0), ("orders.eu-west_2", 7, 12_345), ("x", u32::MAX, u64::MAX)] {
            let mut value = Vec::new();
            push_origin(&mut value, &origin_prefix(topic, partition), offset);
            assert_eq!(value, format!("{topic}/{partition}/{offset}").into_bytes());
            let h: Vec<(&str, &[u8])> = vec![("own", b"v"), (ORIGIN_HEADER, &value)];
            assert_eq!(
                KafkaOrigin::from_headers(h.into_iter()),
                origin(topic, partition, offset)
            );
        }
    }

    #[test]
    fn the_three_header_form_is_read_and_last_occurrence_wins() {
        let h: Vec<(&str, &[u8])> = vec![
            ("kafka.offset", b"7"),
            (TOPIC_HEADER, b"t"),
            (PARTITION_HEADER, b"2"),
            (OFFSET_HEADER, b"41"),
        ];
        assert_eq!(KafkaOrigin::from_headers(h.into_iter()), origin("t", 2, 41));
        let h: Vec<(&str, &[u8])> = vec![(ORIGIN_HEADER, b"a/1/5"), (ORIGIN_HEADER, b"b/2/6")];
        assert_eq!(KafkaOrigin::from_headers(h.into_iter()), origin("b", 2, 6));
    }

    #[test]
    fn when_both_forms_occur_the_one_written_last_counts() {
        let h: Vec<(&str, &[u8])> = vec![
            (TOPIC_HEADER, b"a"),
            (PARTITION_HEADER, b"1"),
            (OFFSET_HEADER, b"5"),
            (ORIGIN_HEADER, b"b/2/6"),
        ];
        assert_eq!(KafkaOrigin::from_headers(h.into_iter()), origin("b", 2, 6));
        let h: Vec<(&str, &[u8])> = vec![
            (ORIGIN_HEADER, b"b/2/6"),
            (TOPIC_HEADER, b"a"),
            (PARTITION_HEADER, b"1"),
            (OFFSET_HEADER, b"5"),
        ];
        assert_eq!(KafkaOrigin::from_headers(h.into_iter()), origin("a", 1, 5));
    }

    #[test]
    fn records_without_a_complete_valid_origin_have_none() {
        let bad: [&[(&str, &[u8])]; 9] = [
            &[],
            &[("kafka.topic", b"t"), ("kafka.offset", b"1")],
            &[
                ("kafka.topic", b"t"),
                ("kafka.partition", b"0"),
                ("kafka.offset", b"-1"),
            ],
            &[("kafka.topic", b"t"), ("kafka.partition", b""), ("kafka.offset", b"1")],
            &[(ORIGIN_HEADER, b"t/0")],
            &[(ORIGIN_HEADER, b"/0/1")],
            &[(ORIGIN_HEADER, b"t/0/")],
            &[(ORIGIN_HEADER, b"t/4294967296/1")],
            &[(ORIGIN_HEADER, b"t/0/+1")],
        ];
        for h in bad {
            assert!(KafkaOrigin::from_headers(h.iter().copied()).is_none(), "{h:?}");
        }
    }
}
