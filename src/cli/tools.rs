//! `dump` and `verify`.

use std::io::{BufWriter, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::args::DumpArgs;
use super::output::preview;
use super::{CliError, CliResult};
use crate::format::index;
use crate::inspect::{BatchStatus, Inspector, SegmentFile, WalkOptions, WalkStop};

pub(super) fn dump(a: DumpArgs) -> CliResult<u8> {
    let path = a.path.clone().or_else(|| a.files.clone()).unwrap_or_default();
    if !path.is_file() {
        return Err(CliError::new(format!(
            "{} is not a file; give the path of a segment's .log, .index or .timeindex file",
            path.display()
        )));
    }
    if let Some(kind) = index_kind(&path)? {
        return dump_index(&path, kind);
    }
    let a = DumpArgs { path: Some(path), ..a };
    let path = a.path.as_deref().unwrap_or(Path::new(""));
    let seg = SegmentFile::open(path)?;
    let len = seg.len()?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let base = seg
        .base()
        .map_or_else(|| "unknown (not a segment file name)".to_string(), |b| b.to_string());
    writeln!(
        out,
        "Segment {}: base offset {base}, {len} bytes on disk",
        path.display()
    )?;
    let mut io_err = None;
    let (mut batches, mut bad) = (0u64, 0u64);
    let opts = WalkOptions {
        past_bad_batches: true,
        check_zero_tail: true,
    };
    let no_topic: std::sync::Arc<str> = "".into();
    // A segment in a broker directory (<dir>/<topic>/<partition>/<base>.log):
    // which of its transactions committed.
    let txns = path
        .ancestors()
        .nth(3)
        .and_then(|dir| crate::inspect::Inspector::open(dir).ok()?.transactions().ok())
        .unwrap_or_default();
    let end = seg.walk(0, seg.base(), opts, &mut |b| {
        let h = &b.header;
        batches += 1;
        let txn = match (h.is_transactional(), h.is_control()) {
            (false, _) => String::new(),
            (true, true) => match crate::format::txn::control_of(b.bytes(), *h) {
                Ok(crate::format::txn::ControlKind::Commit) => {
                    format!(", COMMIT marker of transaction {}", h.producer_id)
                }
                Ok(crate::format::txn::ControlKind::Abort) => {
                    format!(", ABORT marker of transaction {}", h.producer_id)
                }
                Err(_) => format!(", control batch of transaction {}", h.producer_id),
            },
            (true, false) if txns.is_committed(h.producer_id) => {
                format!(", transaction {} (committed)", h.producer_id)
            }
            (true, false) => format!(", transaction {} (NOT committed: aborted or still open)", h.producer_id),
        };
        let status = match &b.status {
            BatchStatus::Ok => "ok".to_string(),
            BatchStatus::Bad(reason) => {
                bad += 1;
                format!("BAD: {reason}")
            }
        };
        let codec = match batch_codec(h.attributes) {
            Some(c) => format!(" ({c} compressed)"),
            None => String::new(),
        };
        let mut text = format!(
            "batch at byte {}: offsets {}..={} ({} records{txn}), {} bytes{codec}, timestamps {}..{}, crc {:#010x} {}\n",
            b.position,
            h.base_offset,
            h.next_offset().saturating_sub(1),
            h.count,
            h.len,
            h.base_timestamp,
            h.max_timestamp,
            h.crc,
            status
        );
        if !a.batches_only {
            // A bad batch's records are not shown: its bytes cannot be trusted.
            // Offsets a batch covers without a record were removed by compaction.
            let mut expect = h.base_offset;
            let gap = |text: &mut String, from: u64, to: u64| {
                if from < to {
                    text.push_str(&format!("  gap: offsets {from}..={} removed by compaction\n", to - 1));
                }
            };
            for r in b.records(&no_topic, 0) {
                gap(&mut text, expect, r.offset());
                expect = r.offset() + 1;
                let key = r.key().map_or_else(|| "none".to_string(), preview);
                let value = if r.is_tombstone() {
                    "null (tombstone)".to_string()
                } else {
                    preview(r.value())
                };
                text.push_str(&format!(
                    "  offset {} timestamp {} key {key} value {value} headers {}\n",
                    r.offset(),
                    r.timestamp(),
                    r.headers().count()
                ));
            }
            if matches!(b.status, BatchStatus::Ok) {
                gap(&mut text, expect, h.next_offset());
            }
        }
        match out.write_all(text.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                io_err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    match &end.stop {
        WalkStop::Damage(reason) => writeln!(
            out,
            "DAMAGE at byte {}: {reason}; nothing after it can be read",
            end.position
        )?,
        _ => writeln!(out, "End at byte {}: {batches} batches, {bad} bad", end.position)?,
    }
    out.flush()?;
    Ok(if bad > 0 || matches!(end.stop, WalkStop::Damage(_)) {
        1
    } else {
        0
    })
}

/// The codec named by a batch's attributes, if it is compressed.
fn batch_codec(attributes: u8) -> Option<&'static str> {
    crate::format::compress::Codec::from_attributes(attributes)
        .ok()
        .flatten()
        .map(crate::format::compress::Codec::name)
}

/// Which index `path` is, by its name or (for any other name) its magic.
fn index_kind(path: &Path) -> CliResult<Option<index::Kind>> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("index") => return Ok(Some(index::Kind::Offset)),
        Some("timeindex") => return Ok(Some(index::Kind::Time)),
        Some("log") => return Ok(None),
        _ => {}
    }
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| CliError::new(format!("reading {}: {e}", path.display())))?;
    if std::io::Read::read_exact(&mut f, &mut magic).is_err() {
        return Ok(None);
    }
    Ok(match magic {
        index::OFFSET_MAGIC => Some(index::Kind::Offset),
        index::TIME_MAGIC => Some(index::Kind::Time),
        _ => None,
    })
}

/// `dump` of an offset index or time index: its header and entries, or where it is damaged.
fn dump_index(path: &Path, kind: index::Kind) -> CliResult<u8> {
    let bytes = std::fs::read(path).map_err(|e| CliError::new(format!("reading {}: {e}", path.display())))?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let what = match kind {
        index::Kind::Offset => "Offset index",
        index::Kind::Time => "Time index",
    };
    let decoded = match kind {
        index::Kind::Offset => index::decode_offset(&bytes).map(|f| {
            let lines = f.entries.iter().map(|e| {
                format!(
                    "offset {} (relative {}) at byte {}",
                    f.base_offset + u64::from(e.rel_offset),
                    e.rel_offset,
                    e.position
                )
            });
            (f.base_offset, f.seal, lines.collect::<Vec<_>>())
        }),
        index::Kind::Time => index::decode_time(&bytes).map(|f| {
            let lines = f.entries.iter().map(|e| {
                format!(
                    "timestamp {} up to offset {} (relative {})",
                    e.timestamp,
                    f.base_offset + u64::from(e.rel_offset),
                    e.rel_offset
                )
            });
            (f.base_offset, f.seal, lines.collect::<Vec<_>>())
        }),
    };
    match decoded {
        Ok((base, seal, entries)) => {
            let state = match seal {
                Some(s) => format!(
                    "sealed: log {} bytes, next offset {}, max timestamp {}",
                    s.log_len, s.next_offset, s.max_ts
                ),
                None => "unsealed (the active segment's index)".to_string(),
            };
            writeln!(
                out,
                "{what} {}: base offset {base}, {} bytes, {state}, {} entries",
                path.display(),
                bytes.len(),
                entries.len()
            )?;
            for e in entries {
                writeln!(out, "  {e}")?;
            }
            out.flush()?;
            Ok(0)
        }
        Err(e) => {
            writeln!(out, "{what} {}: {} bytes", path.display(), bytes.len())?;
            writeln!(
                out,
                "DAMAGE at byte {}: {}; logbus does not use this index (it is a cache, rebuilt from the .log when needed)",
                e.at,
                e.message()
            )?;
            out.flush()?;
            Ok(1)
        }
    }
}

pub(super) fn verify(dir: &Path, topic: Option<&str>) -> CliResult<u8> {
    let inspector = Inspector::open(dir)?;
    let topics = match topic {
        Some(t) => {
            inspector.topic_meta(t)?;
            vec![t.to_string()]
        }
        None => inspector.topics()?,
    };
    let mut parts = Vec::new();
    let mut total = 0u64;
    for t in &topics {
        for p in 0..inspector.topic_meta(t)?.partitions {
            let pdir = inspector.partition_dir(t, p)?;
            total += crate::inspect::list_segments(&pdir)
                .unwrap_or_default()
                .iter()
                .filter_map(|&b| std::fs::metadata(pdir.join(format!("{b:020}.log"))).ok())
                .map(|m| m.len())
                .sum::<u64>();
            parts.push((t.clone(), p));
        }
    }
    // Drawn on stderr, and only when it is a terminal.
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{spinner} verifying {msg} [{bar:30}] {bytes}/{total_bytes}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut out = std::io::stdout().lock();
    let (mut damaged, mut records) = (0usize, 0u64);
    let mut reports = Vec::new();
    for (t, p) in &parts {
        bar.set_message(format!("{t}/{p}"));
        let check = inspector.verify_partition(t, *p, &mut |n| bar.inc(n))?;
        records += check.records();
        if check.is_ok() {
            reports.push(format!(
                "{t}/{p}: ok ({} segments, {} records, {} bytes)",
                check.segments.len(),
                check.records(),
                check.bytes()
            ));
        } else {
            damaged += 1;
            for s in check.segments.iter() {
                if let Some((pos, reason)) = &s.damage {
                    reports.push(format!(
                        "{t}/{p}: DAMAGED {} at byte {pos}: {reason} (records from offset {} on in this segment cannot be read)",
                        s.path.display(),
                        s.next_offset
                    ));
                }
            }
            for g in &check.gaps {
                reports.push(format!("{t}/{p}: GAP {g}"));
            }
        }
    }
    bar.finish_and_clear();
    for r in reports {
        writeln!(out, "{r}")?;
    }
    if damaged == 0 {
        writeln!(
            out,
            "verified {} partitions of {} topics, {records} records: all intact",
            parts.len(),
            topics.len()
        )?;
        Ok(0)
    } else {
        writeln!(
            out,
            "verified {} partitions of {} topics, {records} records: {damaged} partitions DAMAGED",
            parts.len(),
            topics.len()
        )?;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error: {damaged} damaged partition(s); see the report above");
        Ok(1)
    }
}
