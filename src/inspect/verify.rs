//! Full checksum scan of a partition's segments, read-only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::segfile::{self, SegmentFile, WalkEnd, WalkOptions, WalkStop};
use crate::error::{Error, Result};

/// How long to wait before reading a damaged newest segment again: a live
/// writer's batch in the middle of being written looks damaged for an instant.
const RECHECK_AFTER: Duration = Duration::from_millis(200);

/// The result of checking one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheck {
    /// The segment file.
    pub path: PathBuf,
    /// Its base offset.
    pub base: u64,
    /// Offset after its last good record.
    pub next_offset: u64,
    /// Good batches.
    pub batches: u64,
    /// Records in the good batches.
    pub records: u64,
    /// Bytes of good batches.
    pub bytes: u64,
    /// The first damage: byte position and what is wrong.
    pub damage: Option<(u64, String)>,
}

/// The result of checking one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCheck {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Every segment, oldest first.
    pub segments: Vec<SegmentCheck>,
    /// Offsets missing between consecutive segments.
    pub gaps: Vec<String>,
}

impl PartitionCheck {
    /// No damage and no gap.
    pub fn is_ok(&self) -> bool {
        self.gaps.is_empty() && self.segments.iter().all(|s| s.damage.is_none())
    }

    /// Records checked.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Bytes of good batches.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }
}

pub(super) fn verify_dir(
    topic: &str,
    partition: u32,
    dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<PartitionCheck> {
    let bases = segfile::list_segments(dir)?;
    let mut out = PartitionCheck {
        topic: topic.to_string(),
        partition,
        segments: Vec::with_capacity(bases.len()),
        gaps: Vec::new(),
    };
    for (i, &base) in bases.iter().enumerate() {
        let path = segfile::segment_path(dir, base);
        let seg = match SegmentFile::open(&path) {
            Ok(s) => s,
            // Retention deleted it since the listing: nothing left to check.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let newest = i + 1 == bases.len();
        let mut check = check_segment(&seg, base, progress)?;
        if newest && check.damage.is_some() {
            std::thread::sleep(RECHECK_AFTER);
            check = check_segment(&seg, base, &mut |_| {})?;
        }
        if let Some(prev) = out.segments.last() {
            if prev.damage.is_none() && prev.next_offset != base {
                out.gaps.push(format!(
                    "offsets {}..{base} are missing between {} and {}",
                    prev.next_offset,
                    prev.path.display(),
                    path.display()
                ));
            }
        }
        out.segments.push(check);
    }
    Ok(out)
}

fn check_segment(seg: &SegmentFile, base: u64, progress: &mut dyn FnMut(u64)) -> Result<SegmentCheck> {
    let (mut batches, mut records, mut bytes) = (0u64, 0u64, 0u64);
    let opts = WalkOptions {
        past_bad_batches: false,
        check_zero_tail: true,
    };
    let end: WalkEnd = seg.walk(0, Some(base), opts, &mut |b| {
        batches += 1;
        records += u64::from(b.header.count);
        bytes += u64::from(b.header.len);
        progress(u64::from(b.header.len));
        true
    })?;
    let damage = match end.stop {
        WalkStop::Damage(reason) => Some((end.position, reason)),
        WalkStop::Clean | WalkStop::Stopped => None,
    };
    Ok(SegmentCheck {
        path: seg.path().to_path_buf(),
        base,
        next_offset: end.next_offset.unwrap_or(base),
        batches,
        records,
        bytes,
        damage,
    })
}
