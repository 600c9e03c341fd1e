//! Where an ingested record came from: three reserved headers stored with
//! the local record, and the backward scan that finds where an ingest
//! stopped in a local partition.

use crate::error::{Error, Result};
use crate::topic::Partition;
use crate::ConsumedRecord;

/// Header holding the Kafka topic name (UTF-8).
pub const TOPIC_HEADER: &str = "kafka.topic";
/// Header holding the Kafka partition number (ASCII decimal, e.g. `3`).
pub const PARTITION_HEADER: &str = "kafka.partition";
/// Header holding the Kafka offset (ASCII decimal, e.g. `12345`).
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
    /// The origin of a local record, `None` when it does not carry all three
    /// reserved headers with valid values (a record someone else appended).
    /// When a header name occurs more than once the last occurrence counts:
    /// the ingest appends its headers after the record's own.
    pub fn of(record: &ConsumedRecord) -> Option<KafkaOrigin> {
        KafkaOrigin::from_headers(record.headers())
    }

    /// The origin read from headers (see [`KafkaOrigin::of`]).
    pub fn from_headers<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Option<KafkaOrigin> {
        let (mut topic, mut partition, mut offset) = (None, None, None);
        for (name, value) in headers {
            match name {
                TOPIC_HEADER => topic = Some(value),
                PARTITION_HEADER => partition = Some(value),
                OFFSET_HEADER => offset = Some(value),
                _ => {}
            }
        }
        Some(KafkaOrigin {
            topic: std::str::from_utf8(topic?).ok()?.to_string(),
            partition: decimal(partition?)?.try_into().ok()?,
            offset: decimal(offset?)?,
        })
    }
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
                         carry no Kafka-origin headers ({OFFSET_HEADER}), so the ingest cannot tell where it stopped; \
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

    #[test]
    fn origin_headers_round_trip_and_last_occurrence_wins() {
        let h: Vec<(&str, &[u8])> = vec![
            ("kafka.offset", b"7"),
            (TOPIC_HEADER, b"t"),
            (PARTITION_HEADER, b"2"),
            (OFFSET_HEADER, b"41"),
        ];
        let o = KafkaOrigin::from_headers(h.into_iter()).unwrap();
        assert_eq!(
            o,
            KafkaOrigin {
                topic: "t".into(),
                partition: 2,
                offset: 41
            }
        );
    }

    #[test]
    fn records_without_all_headers_or_with_bad_numbers_have_no_origin() {
        let h: Vec<(&str, &[u8])> = vec![("kafka.topic", b"t"), ("kafka.offset", b"1")];
        assert!(KafkaOrigin::from_headers(h.into_iter()).is_none());
        let h: Vec<(&str, &[u8])> = vec![
            ("kafka.topic", b"t"),
            ("kafka.partition", b"0"),
            ("kafka.offset", b"-1"),
        ];
        assert!(KafkaOrigin::from_headers(h.into_iter()).is_none());
        let h: Vec<(&str, &[u8])> = vec![("kafka.topic", b"t"), ("kafka.partition", b""), ("kafka.offset", b"1")];
        assert!(KafkaOrigin::from_headers(h.into_iter()).is_none());
    }
}
