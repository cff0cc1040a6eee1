//! Self-stall measurement: how late the driver's timers fired (see [`StallHistogram`]).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::Duration;

/// Upper bounds of the histogram's buckets (1-2-5 steps from 1 ms to 60 s). A sample
/// falls in the first bucket whose bound is at or above it; samples above 60 s fall in
/// a last, unbounded bucket.
pub const STALL_BUCKETS: [Duration; 15] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
    Duration::from_secs(60),
];

/// [`STALL_BUCKETS`] in seconds: the buckets to give a Prometheus exporter for
/// `rumor_timer_lateness_seconds`, so that it exports a histogram with these fixed
/// bounds, which aggregate across pods (with none it exports a summary, whose
/// quantiles cannot be aggregated and hide a rare long stall). With
/// metrics-exporter-prometheus:
/// `PrometheusBuilder::new().set_buckets_for_metric(Matcher::Full("rumor_timer_lateness_seconds".into()), &rumor::STALL_BUCKETS_SECONDS)`.
pub const STALL_BUCKETS_SECONDS: [f64; 15] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0,
];

/// Samples above this are kept individually for the pauses file. A healthy process
/// measures a little lateness on every wake-up (the stall clock's thread sleep about
/// 0.1 ms; tokio's timers, on whole-millisecond ticks, 1–2 ms); 5 ms keeps that floor
/// out of the file, where it would drown the stalls that matter and evict them from
/// the bounded sample ring.
pub const PAUSE_SAMPLE_MIN: Duration = Duration::from_millis(5);

/// The most individual samples kept; the oldest are forgotten first.
pub const MAX_PAUSE_SAMPLES: usize = 10_000;

/// Timer lateness seen by one driver: a fixed-bucket histogram plus the most recent
/// samples above [`PAUSE_SAMPLE_MIN`]. Read it with
/// [`Handle::stall_histogram`](crate::Handle::stall_histogram).
///
/// A timer that fires late means the process did not run when it should have: a GC
/// pause, CPU throttling, VM steal, `SIGSTOP`, or an overloaded executor. One thread
/// per process wakes every 100 ms and measures how late it woke (one sample per
/// wake-up), so a stall of the process is measured within 100 ms of its length; each
/// node's driver records those samples when it next wakes for its own work. A stall
/// of the driver alone (an overloaded executor) is measured as its node's timers
/// firing late, within the gap between two of them (at most a probe interval). The
/// buckets are log-spaced from 1 ms to 60 s ([`STALL_BUCKETS`]); the samples can be
/// written as the pauses file `rumor-sim tune --pauses FILE` reads
/// ([`write_pauses`](StallHistogram::write_pauses)), to find the thresholds that
/// survive the stalls this very process has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StallHistogram {
    /// `counts[i]` for `STALL_BUCKETS[i]`, plus one overflow bucket at the end.
    counts: [u64; STALL_BUCKETS.len() + 1],
    count: u64,
    sum: Duration,
    max: Duration,
    samples: VecDeque<Duration>,
    /// Samples above `PAUSE_SAMPLE_MIN` ever recorded, those dropped from `samples`
    /// included: with `observed`, the pause rate.
    pauses_total: u64,
    /// How long the process was watched (the driver's age at its last record).
    observed: Duration,
}

impl StallHistogram {
    /// Records one timer's lateness.
    pub fn record(&mut self, late: Duration) {
        let i = STALL_BUCKETS
            .iter()
            .position(|b| late <= *b)
            .unwrap_or(STALL_BUCKETS.len());
        self.counts[i] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(late);
        self.max = self.max.max(late);
        if late > PAUSE_SAMPLE_MIN {
            self.pauses_total += 1;
            if self.samples.len() == MAX_PAUSE_SAMPLES {
                self.samples.pop_front();
            }
            self.samples.push_back(late);
        }
    }

    /// Notes that the process has been watched for `age` (the driver's age): the
    /// observation window the pauses file states, from which `tune` takes the rate.
    pub fn set_observed(&mut self, age: Duration) {
        self.observed = self.observed.max(age);
    }

    /// How long the process has been watched.
    pub fn observed(&self) -> Duration {
        self.observed
    }

    /// Samples above [`PAUSE_SAMPLE_MIN`] recorded so far, the ones no longer kept
    /// (beyond [`MAX_PAUSE_SAMPLES`]) included.
    pub fn pauses_total(&self) -> u64 {
        self.pauses_total
    }

    /// Timers recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Total lateness over all timers.
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// The latest any timer fired.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Mean lateness (zero with no samples).
    pub fn mean(&self) -> Duration {
        match u32::try_from(self.count) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.sum / n,
            Err(_) => Duration::from_secs_f64(self.sum.as_secs_f64() / self.count as f64),
        }
    }

    /// Each bucket as (upper bound, count); the last bucket's bound is `None` (above 60 s).
    pub fn buckets(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        self.counts.iter().enumerate().map(|(i, c)| {
            let bound = STALL_BUCKETS.get(i).copied();
            (bound, *c)
        })
    }

    /// The upper bound of the bucket holding quantile `q` (0 ..= 1), capped at the
    /// largest sample; `None` with no samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bound, c) in self.buckets() {
            seen += c;
            if seen >= rank {
                return Some(bound.map_or(self.max, |b| b.min(self.max)));
            }
        }
        Some(self.max)
    }

    /// The most recent samples above [`PAUSE_SAMPLE_MIN`], oldest first (at most
    /// [`MAX_PAUSE_SAMPLES`]).
    pub fn pauses(&self) -> impl Iterator<Item = Duration> + '_ {
        self.samples.iter().copied()
    }

    /// Writes the samples above [`PAUSE_SAMPLE_MIN`] as a pauses file, which
    /// `rumor-sim tune --pauses FILE` reads: a header of `# key: value` lines that
    /// states the unit, the observation window and the node count (from which `tune`
    /// takes the pause rate), then one pause in milliseconds per line, oldest first.
    /// Returns the number of pauses written.
    pub fn write_pauses<W: Write>(&self, mut w: W) -> io::Result<usize> {
        writeln!(
            w,
            "# rumor pauses: timer lateness above {} ms, oldest first ({} of {} timers; max {:.3} ms)",
            PAUSE_SAMPLE_MIN.as_millis(),
            self.samples.len(),
            self.count,
            self.max.as_secs_f64() * 1e3
        )?;
        writeln!(w, "# unit: ms")?;
        writeln!(w, "# observed_seconds: {:.3}", self.observed.as_secs_f64())?;
        writeln!(w, "# nodes: 1")?;
        // All pauses of the window; the lines below are the latest of them.
        writeln!(w, "# pauses_in_window: {}", self.pauses_total)?;
        for d in &self.samples {
            writeln!(w, "{:.3}", d.as_secs_f64() * 1e3)?;
        }
        w.flush()?;
        Ok(self.samples.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_quantiles_and_pauses_file() {
        let mut h = StallHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in [0, 1, 3, 6, 6, 150, 70_000] {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 7);
        assert_eq!(h.max(), Duration::from_secs(70));
        let counts: Vec<u64> = h.buckets().map(|(_, c)| c).collect();
        assert_eq!(counts[0], 2); // 0 and 1 ms
        assert_eq!(counts[2], 1); // 3 ms in (2, 5]
        assert_eq!(counts[3], 2); // 6 ms twice in (5, 10]
        assert_eq!(counts[7], 1); // 150 ms in (100, 200]
        assert_eq!(counts[STALL_BUCKETS.len()], 1); // overflow
        assert_eq!(h.quantile(0.5), Some(Duration::from_millis(10)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_secs(70)));
        h.set_observed(Duration::from_secs(90));
        assert_eq!(h.pauses_total(), 4);
        let mut out = Vec::new();
        assert_eq!(h.write_pauses(&mut out).unwrap(), 4);
        let text = String::from_utf8(out).unwrap();
        for header in [
            "# unit: ms",
            "# observed_seconds: 90.000",
            "# nodes: 1",
            "# pauses_in_window: 4",
        ] {
            assert!(text.contains(header), "{header}: {text}");
        }
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines, ["6.000", "6.000", "150.000", "70000.000"]);
    }

    #[test]
    fn bucket_seconds_match_the_buckets() {
        for (d, s) in STALL_BUCKETS.iter().zip(STALL_BUCKETS_SECONDS) {
            assert_eq!(d.as_secs_f64(), s);
        }
    }

    #[test]
    fn samples_are_bounded() {
        let mut h = StallHistogram::default();
        for i in 0..(MAX_PAUSE_SAMPLES + 10) {
            h.record(Duration::from_millis(6 + i as u64));
        }
        assert_eq!(h.pauses().count(), MAX_PAUSE_SAMPLES);
        assert_eq!(h.pauses_total(), MAX_PAUSE_SAMPLES as u64 + 10);
        assert_eq!(h.pauses().next(), Some(Duration::from_millis(16)));
    }
}
