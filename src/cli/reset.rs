//! `groups reset-offsets`: a plan per partition, printed; written only with
//! `--execute`, as Kafka's `kafka-consumer-groups --reset-offsets`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::args::ResetArgs;
use super::{open_broker, CliError, CliResult};
use crate::inspect::Inspector;
use crate::TopicPartition;

/// Where each partition's new offset comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(u64),
    Shift(i64),
    /// The first record at or after this time (ms since the epoch).
    Time(i64),
}

impl Target {
    fn from_args(a: &ResetArgs) -> CliResult<Target> {
        if let Some(o) = a.to_offset {
            return Ok(Target::Offset(o));
        }
        if let Some(n) = a.shift_by {
            return Ok(Target::Shift(n));
        }
        if let Some(s) = &a.to_datetime {
            let ms = parse_datetime(s).map_err(|why| {
                CliError::new(format!(
                    "--to-datetime {s}: {why}; expected YYYY-MM-DDTHH:mm:SS.sss with an optional zone, e.g. 2024-05-01T12:00:00.000Z"
                ))
            })?;
            return Ok(Target::Time(ms));
        }
        if let Some(s) = &a.by_duration {
            let ms = parse_duration(s).map_err(|why| {
                CliError::new(format!(
                    "--by-duration {s}: {why}; expected an ISO-8601 duration such as PT1H, PT30M or P1DT12H"
                ))
            })?;
            return Ok(Target::Time(now_ms().saturating_sub(ms)));
        }
        Ok(if a.to_earliest {
            Target::Earliest
        } else {
            Target::Latest
        })
    }
}

pub(super) fn run(dir: &Path, a: ResetArgs) -> CliResult<u8> {
    let group = a.group.id().to_string();
    let target = Target::from_args(&a)?;
    // The lock is taken for a preview too: like Kafka, which plans only for a
    // group without live members, and the plan then matches what --execute writes.
    let broker = open_broker(dir)?;
    let committed = Inspector::open(dir)?
        .committed_offsets()?
        .groups
        .remove(&group)
        .unwrap_or_default();
    let mut plan: Vec<(TopicPartition, u64)> = Vec::new();
    let mut err = std::io::stderr().lock();
    for (name, only) in scope(&a, &group, &committed)? {
        let topic = broker.topic(&name)?;
        let ids: Vec<u32> = only.unwrap_or_else(|| (0..topic.partition_count()).collect());
        for p in ids {
            let part = topic.partition(p)?;
            let (start, end) = (part.start_offset(), part.end_offset());
            let tp = TopicPartition::new(name.as_str(), p);
            let wanted: i128 = match target {
                Target::Earliest => i128::from(start),
                Target::Latest => i128::from(end),
                Target::Offset(o) => i128::from(o),
                Target::Shift(n) => {
                    let Some(&current) = committed.get(&tp) else {
                        return Err(CliError::new(format!(
                            "cannot shift group '{group}' on {name} partition {p}: it has no committed offset there; use --to-earliest, --to-latest or --to-offset"
                        )));
                    };
                    i128::from(current) + i128::from(n)
                }
                Target::Time(ms) => i128::from(part.offset_for_timestamp(ms)?.unwrap_or(end)),
            };
            let new = wanted.clamp(i128::from(start), i128::from(end));
            let new = u64::try_from(new).unwrap_or(end);
            if i128::from(new) != wanted {
                writeln!(
                    err,
                    "warning: {name} partition {p}: offset {wanted} is outside {start}..={end} (first stored offset..=end); using {new}"
                )?;
            }
            plan.push((tp, new));
        }
    }
    let mut out = std::io::stdout().lock();
    let w = group.len().max(5);
    writeln!(
        out,
        "{:<w$}  {:<24}  {:>9}  {:>14}",
        "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
    )?;
    for (tp, o) in &plan {
        writeln!(out, "{group:<w$}  {:<24}  {:>9}  {:>14}", tp.topic, tp.partition, o)?;
    }
    out.flush()?;
    if a.execute {
        broker.set_group_offsets(&group, &plan)?;
        broker.close()?;
    } else {
        broker.close()?;
        writeln!(
            err,
            "note: preview only, nothing was written; add --execute to set these offsets"
        )?;
    }
    Ok(0)
}

/// The topics to reset, each with the partitions named (`None`: all of them).
fn scope(
    a: &ResetArgs,
    group: &str,
    committed: &BTreeMap<TopicPartition, u64>,
) -> CliResult<Vec<(String, Option<Vec<u32>>)>> {
    if a.all_topics {
        let mut topics: Vec<String> = committed.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        if topics.is_empty() {
            return Err(CliError::new(format!(
                "group '{group}' has no committed offsets, so --all-topics names no topic; name them with --topic T"
            )));
        }
        if a.partition.is_some() {
            return Err(CliError::new("--partition needs exactly one --topic, not --all-topics"));
        }
        return Ok(topics.into_iter().map(|t| (t, None)).collect());
    }
    let mut topics = Vec::with_capacity(a.topic.len());
    for spec in &a.topic {
        topics.push(parse_topic_spec(spec)?);
    }
    if let Some(p) = a.partition {
        match topics.as_mut_slice() {
            [(_, only @ None)] => *only = Some(vec![p]),
            _ => {
                return Err(CliError::new(
                    "--partition needs exactly one --topic without a :P,... list",
                ))
            }
        }
    }
    Ok(topics)
}

/// `T` or Kafka's `T:0,1,2`.
fn parse_topic_spec(spec: &str) -> CliResult<(String, Option<Vec<u32>>)> {
    let Some((topic, list)) = spec.split_once(':') else {
        return Ok((spec.to_string(), None));
    };
    let mut ids = Vec::new();
    for p in list.split(',') {
        ids.push(p.trim().parse::<u32>().map_err(|_| {
            CliError::new(format!(
                "--topic {spec}: '{p}' is not a partition number; expected TOPIC or TOPIC:P,P,..."
            ))
        })?);
    }
    Ok((topic.to_string(), Some(ids)))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(s: &str, what: &str, max: i64) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a valid {what}"));
    }
    match s.parse::<i64>() {
        Ok(v) if v <= max => Ok(v),
        _ => Err(format!("{what} {s} is out of range")),
    }
}

/// `YYYY-MM-DDTHH:mm[:SS[.sss]]` with an optional `Z`, `+HH:mm`, `+HHmm` or
/// `+HH` zone (no zone: UTC), to milliseconds since the epoch.
fn parse_datetime(s: &str) -> Result<i64, String> {
    let (date, time) = s.split_once('T').ok_or("no 'T' between date and time")?;
    let mut parts = date.split('-');
    let (Some(y), Some(mo), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("the date is not YYYY-MM-DD".into());
    };
    let (y, mo) = (number(y, "year", 9999)?, number(mo, "month", 12)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match mo {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let d = number(d, "day", month_days)?;
    if mo == 0 || d == 0 {
        return Err("month and day start at 1".into());
    }
    let (clock, offset_min) = match time.find(['Z', 'z', '+', '-']) {
        None => (time, 0),
        Some(i) => {
            let (clock, zone) = time.split_at(i);
            (clock, parse_zone(zone)?)
        }
    };
    let mut hms = clock.split(':');
    let (h, mi) = (
        hms.next().unwrap_or_default(),
        hms.next().ok_or("the time is not HH:mm[:SS.sss]")?,
    );
    let sec = hms.next().unwrap_or("0");
    if hms.next().is_some() {
        return Err("the time is not HH:mm[:SS.sss]".into());
    }
    let (sec, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let ms = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("00".chars()).take(3).collect();
        number(&digits, "fraction of a second", 999)?
    };
    let (h, mi, sec) = (
        number(h, "hour", 23)?,
        number(mi, "minute", 59)?,
        number(sec, "second", 59)?,
    );
    let days = days_from_civil(y, mo, d);
    Ok((((days * 24 + h) * 60 + mi - offset_min) * 60 + sec) * 1000 + ms)
}

/// `Z`, `+HH:mm`, `+HHmm` or `+HH` (and `-`), to minutes east of UTC.
fn parse_zone(zone: &str) -> Result<i64, String> {
    if zone.eq_ignore_ascii_case("z") {
        return Ok(0);
    }
    let (sign, rest) = match zone.strip_prefix('+') {
        Some(r) => (1, r),
        None => (-1, zone.strip_prefix('-').unwrap_or(zone)),
    };
    let (h, m) = match rest.split_once(':') {
        Some(hm) => hm,
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    Ok(sign * (number(h, "zone hour", 18)? * 60 + number(m, "zone minute", 59)?))
}

/// An ISO-8601 duration `P[nD][T[nH][nM][n[.n]S]]` (Kafka's `--by-duration`
/// format, Java's `Duration.parse`), to milliseconds.
fn parse_duration(s: &str) -> Result<i64, String> {
    let upper = s.to_ascii_uppercase();
    let body = upper.strip_prefix('P').ok_or("it does not start with P")?;
    let (days, time) = body.split_once('T').unwrap_or((body, ""));
    let mut total: f64 = 0.0;
    let mut any = false;
    for (part, units) in [
        (days, &[('D', 86_400_000.0)][..]),
        (time, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1000.0)][..]),
    ] {
        let mut rest = part;
        for &(unit, ms) in units {
            if let Some((n, after)) = rest.split_once(unit) {
                let v: f64 = n
                    .parse()
                    .map_err(|_| format!("'{n}{unit}' is not a number of {unit}"))?;
                if !v.is_finite() || v < 0.0 {
                    return Err(format!("'{n}{unit}' is not a non-negative number"));
                }
                total += v * ms;
                any = true;
                rest = after;
            }
        }
        if !rest.is_empty() {
            return Err(format!("'{rest}' is not understood"));
        }
    }
    if !any {
        return Err("it names no amount".into());
    }
    if total > 1e17 {
        return Err("it is too long".into());
    }
    // In range (checked above) and non-negative, so the cast cannot wrap.
    #[allow(clippy::cast_possible_truncation)]
    Ok(total.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_in_kafkas_format_with_and_without_a_zone() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert_eq!(parse_datetime("2024-02-29T12:30:00.000Z"), Ok(1_709_209_800_000));
        assert_eq!(parse_datetime("2024-02-29T14:30:00.000+02:00"), Ok(1_709_209_800_000));
        assert_eq!(parse_datetime("2024-02-29T07:30-0500"), Ok(1_709_209_800_000));
        assert!(parse_datetime("2023-02-29T00:00:00").is_err());
        assert!(parse_datetime("2024-01-01 00:00:00").is_err());
        assert!(parse_datetime("2024-01-01T25:00:00").is_err());
    }

    #[test]
    fn durations_in_iso_8601() {
        assert_eq!(parse_duration("PT1H"), Ok(3_600_000));
        assert_eq!(parse_duration("PT30M"), Ok(1_800_000));
        assert_eq!(parse_duration("P1DT12H"), Ok(129_600_000));
        assert_eq!(parse_duration("PT0.5S"), Ok(500));
        assert_eq!(parse_duration("p2d"), Ok(172_800_000));
        assert!(parse_duration("1H").is_err());
        assert!(parse_duration("P").is_err());
        assert!(parse_duration("PT1X").is_err());
        assert!(parse_duration("PT1M1H").is_err());
    }

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic_spec("t").ok(), Some(("t".to_string(), None)));
        assert_eq!(
            parse_topic_spec("t:0,2").ok(),
            Some(("t".to_string(), Some(vec![0, 2])))
        );
        assert!(parse_topic_spec("t:x").is_err());
    }
}
