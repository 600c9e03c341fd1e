//! The wall clock that stamps records, in milliseconds since the Unix epoch.
//!
//! Every append reads it, and `clock_gettime(CLOCK_REALTIME)` is a sizable
//! share of a one-record append (BENCHMARKS.md, append1). The coarse clock is
//! cheap but ticks only once per kernel tick, so a record could carry a time
//! older than one its sender read before sending. This clock reads the CPU's
//! counter through `quanta` (cheap where the TSC is invariant; elsewhere
//! quanta falls back to the monotonic clock) and adds the offset to the
//! system's wall clock that it last measured. The offset is measured again by
//! the first read after every [`RESYNC_NS`] (1 ms: one `clock_gettime` per
//! millisecond, not per append). Between two measurements the stamps drift
//! from the system clock by the counter's calibration error and the NTP slew,
//! which over 1 ms stays far below the stamps' millisecond resolution. A step
//! of the system clock (`date -s`, an NTP step) reaches the stamps within
//! [`RESYNC_NS`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long an offset measurement is used before the next read measures again.
pub(crate) const RESYNC_NS: u64 = 1_000_000;

struct WallClock {
    clock: quanta::Clock,
    /// The counter's raw value when the clock was made: reads are counted in
    /// nanoseconds from here.
    origin: u64,
    /// Wall-clock nanoseconds minus counter nanoseconds, as last measured.
    offset: AtomicI64,
    /// Counter nanoseconds at which the offset is measured again.
    resync_at: AtomicU64,
}

static WALL: OnceLock<WallClock> = OnceLock::new();

fn system_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl WallClock {
    fn new() -> WallClock {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        WallClock {
            clock,
            origin,
            offset: AtomicI64::new(0),
            // The first read measures.
            resync_at: AtomicU64::new(0),
        }
    }

    #[inline]
    fn now_ns(&self) -> i64 {
        // 0 when the counter reads below the origin (a CPU whose counter
        // lags another's): the resync below then measures at once.
        let ns = self.clock.delta_as_nanos(self.origin, self.clock.raw());
        if ns == 0 || ns >= self.resync_at.load(Ordering::Relaxed) {
            return self.resync(ns);
        }
        (ns as i64).saturating_add(self.offset.load(Ordering::Relaxed))
    }

    #[cold]
    fn resync(&self, ns: u64) -> i64 {
        let wall = system_ns();
        // Racing resyncs store measurements a few nanoseconds apart.
        self.offset.store(wall.saturating_sub(ns as i64), Ordering::Relaxed);
        self.resync_at.store(ns.saturating_add(RESYNC_NS), Ordering::Relaxed);
        wall
    }
}

/// Starts the clock (quanta calibrates the counter once per process):
/// called when a log opens, so the first append does not pay for it.
pub(crate) fn init() {
    WALL.get_or_init(WallClock::new);
}

/// The wall clock in milliseconds since the Unix epoch (0 before it).
#[inline]
pub(crate) fn now_ms() -> i64 {
    WALL.get_or_init(WallClock::new).now_ns().max(0) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_ms() -> i64 {
        system_ns() / 1_000_000
    }

    /// Reads between two reads of the system clock land between them (one
    /// millisecond of slack each way for the counter's extrapolation and the
    /// truncation to milliseconds), across several resync periods: the loop
    /// runs until our stamps span 300 of them, however fast the machine reads.
    #[test]
    fn stays_with_the_system_clock() {
        const SPAN_MS: i64 = 300 * RESYNC_NS as i64 / 1_000_000;
        let first = now_ms();
        let mut reads = 0u64;
        loop {
            let before = system_ms();
            let ours = now_ms();
            let after = system_ms();
            assert!(
                before - 1 <= ours && ours <= after + 1,
                "{before} <= {ours} <= {after} (read {reads})"
            );
            reads += 1;
            if ours - first >= SPAN_MS {
                return;
            }
        }
    }

    /// A stale offset (the system clock stepped since it was measured) is
    /// replaced at the next resync.
    #[test]
    fn a_wrong_offset_lasts_until_the_next_resync() {
        const HOUR: i64 = 3_600_000_000_000;
        let w = WallClock::new();
        w.now_ns();
        w.resync_at.store(u64::MAX, Ordering::Relaxed);
        w.offset.fetch_sub(HOUR, Ordering::Relaxed);
        assert!(
            w.now_ns() < system_ns() - HOUR / 2,
            "the stale offset is used until the resync"
        );
        w.resync_at.store(0, Ordering::Relaxed);
        let fixed = w.now_ns();
        assert!((fixed - system_ns()).abs() < 1_000_000_000, "resynced: {fixed}");
    }
}
