//! The process's stall clock: one thread per process that wakes every
//! [`SAMPLE_TICK`] and measures how late it woke.
//!
//! A GC-like pause, CPU throttling, VM steal or `SIGSTOP` stops the whole process,
//! not one node, so one clock measures them for every node the process runs. Each
//! driver reads the clock's new samples whenever it wakes for its own work (a
//! datagram, a protocol timer) and records them in its [`StallHistogram`]: a node
//! costs no wake-up of its own to have its stalls measured. Before, every driver
//! woke on its own 100 ms tick for this, which made 2,000 idle nodes in one process
//! 20,000 wake-ups a second.
//!
//! [`StallHistogram`]: crate::StallHistogram

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::runtime::shared::lock;

/// How often the clock wakes: a stall is measured within this much of its length.
pub(crate) const SAMPLE_TICK: Duration = Duration::from_millis(100);

/// Samples kept for drivers that have not read them yet: 400 s at one per tick, about
/// 160 KB once full. A driver wakes at least a few times per liveness timeout, so
/// none falls this far behind; one that did would miss the oldest.
const RING: usize = 4096;

/// One wake-up of the clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Numbered from 1, in order.
    pub seq: u64,
    /// When the clock woke (the end of the stall, if it was one).
    pub at: Instant,
    /// How late it woke.
    pub late: Duration,
}

/// The clock's state, shared by every driver of the process.
pub(crate) struct StallClock {
    origin: Instant,
    samples: Mutex<VecDeque<Sample>>,
    /// The last sample's number (0: none yet).
    last_seq: AtomicU64,
    /// When the clock is next due to wake, in nanoseconds since `origin`; stored after
    /// each sample is recorded.
    due: AtomicU64,
    /// The thread started; without it nothing is ever overdue.
    running: AtomicBool,
}

static CLOCK: OnceLock<StallClock> = OnceLock::new();

/// The process's clock, its thread started on first use. If the thread cannot be
/// started the clock stays empty and never overdue (and says so once): nodes run,
/// their histograms hold only what their drivers measure themselves.
pub(crate) fn clock() -> &'static StallClock {
    CLOCK.get_or_init(|| {
        let state = StallClock {
            origin: now(),
            samples: Mutex::new(VecDeque::with_capacity(64)),
            last_seq: AtomicU64::new(0),
            due: AtomicU64::new(nanos(SAMPLE_TICK)),
            running: AtomicBool::new(false),
        };
        // The thread waits in `clock()` until this initialisation returns.
        let spawned = std::thread::Builder::new()
            .name("rumor-stall-clock".into())
            .spawn(|| run(clock()));
        match spawned {
            Ok(_) => state.running.store(true, Ordering::Release),
            Err(e) => warn!(
                error = %e,
                "could not start the stall clock thread; stalls are measured by the drivers' own timers only"
            ),
        }
        state
    })
}

/// The real monotonic clock. std's, not tokio's: a test that pauses tokio's clock
/// must not see its virtual time run ahead of this thread's real sleeps as a stall.
/// This is the runtime's clock, not the core's (which takes `now` from its caller).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The clock's thread: sleep a tick, measure how late the wake-up was, record it.
fn run(clock: &'static StallClock) {
    let mut due = clock.origin + SAMPLE_TICK;
    loop {
        if let Some(wait) = due.checked_duration_since(now()) {
            std::thread::sleep(wait);
        }
        let woke = now();
        let late = woke.saturating_duration_since(due);
        clock.record(woke, late);
        due = woke + SAMPLE_TICK;
        clock
            .due
            .store(nanos(due.duration_since(clock.origin)), Ordering::Release);
    }
}

impl StallClock {
    fn record(&self, at: Instant, late: Duration) {
        let mut samples = lock(&self.samples);
        let seq = self.last_seq.load(Ordering::Relaxed) + 1;
        if samples.len() == RING {
            samples.pop_front();
        }
        samples.push_back(Sample { seq, at, late });
        self.last_seq.store(seq, Ordering::Release);
    }

    /// The last sample's number: a driver starting now reads only what follows it.
    pub fn cursor(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Whether samples after `cursor` exist: one atomic load.
    pub fn has_news(&self, cursor: u64) -> bool {
        self.last_seq.load(Ordering::Acquire) > cursor
    }

    /// Calls `f` on every sample after `*cursor`, oldest first, and moves the cursor
    /// past them. Finds the first new sample by its number, not by a scan: with 2,000
    /// drivers reading, a scan of the full ring on each read would be millions of
    /// steps a second under one lock.
    pub fn read_since(&self, cursor: &mut u64, mut f: impl FnMut(&Sample)) {
        if !self.has_news(*cursor) {
            return;
        }
        let samples = lock(&self.samples);
        let Some(first) = samples.front().map(|s| s.seq) else {
            return;
        };
        // Sequence numbers are consecutive, so sample `seq` sits at `seq - first`.
        let skip = usize::try_from(cursor.saturating_add(1).saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(samples.len());
        for s in samples.range(skip..) {
            f(s);
            *cursor = s.seq;
        }
    }

    /// How far past its due time the clock is at `now` without having woken: a stall
    /// of the process in progress, or one that just ended and is not recorded yet
    /// (a driver can resume and read its backlog before the clock's thread runs).
    /// Zero if the thread never started.
    pub fn overdue(&self, now: Instant) -> Duration {
        if !self.running.load(Ordering::Acquire) {
            return Duration::ZERO;
        }
        let due = self.origin + Duration::from_nanos(self.due.load(Ordering::Acquire));
        now.saturating_duration_since(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_ticks_and_a_reader_sees_each_sample_once() {
        let c = clock();
        let mut cursor = c.cursor();
        // Bounded: at most 3 s for a couple of 100 ms ticks.
        let deadline = now() + Duration::from_secs(3);
        let mut seen = Vec::new();
        while seen.len() < 2 && now() < deadline {
            std::thread::sleep(SAMPLE_TICK);
            c.read_since(&mut cursor, |s| seen.push(s.seq));
        }
        assert!(seen.len() >= 2, "the clock ticks: {seen:?}");
        assert!(
            seen.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, once each"
        );
        let before = seen.len();
        c.read_since(&mut cursor, |s| seen.push(s.seq));
        assert!(seen[before..].iter().all(|s| *s > seen[before - 1]));
    }

    fn detached() -> StallClock {
        StallClock {
            origin: now(),
            samples: Mutex::new(VecDeque::new()),
            last_seq: AtomicU64::new(0),
            due: AtomicU64::new(0),
            running: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_reader_finds_its_place_in_a_full_ring_and_misses_only_what_was_dropped() {
        let c = detached();
        let at = now();
        for i in 0..(RING as u64 + 100) {
            c.record(at, Duration::from_millis(i));
        }
        // A cursor in the middle reads exactly what follows it.
        let mut cursor = RING as u64;
        let mut seen = Vec::new();
        c.read_since(&mut cursor, |s| seen.push(s.seq));
        assert_eq!(
            seen,
            (RING as u64 + 1..=RING as u64 + 100).collect::<Vec<_>>()
        );
        assert_eq!(cursor, RING as u64 + 100);
        // A cursor older than the ring reads what is left, from the oldest kept.
        let mut old = 5;
        let mut n = 0;
        c.read_since(&mut old, |_| n += 1);
        assert_eq!(n, RING);
        // Nothing new: nothing read.
        c.read_since(&mut cursor, |_| panic!("no news"));
    }

    #[test]
    fn a_clock_without_its_thread_is_never_overdue() {
        let c = detached();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.overdue(now()), Duration::ZERO);
    }

    #[test]
    fn overdue_is_zero_while_the_clock_runs() {
        let c = clock();
        std::thread::sleep(SAMPLE_TICK * 2);
        // The clock woke within its last tick (a loaded machine may delay it a little).
        assert!(c.overdue(now()) < SAMPLE_TICK * 5);
    }
}
