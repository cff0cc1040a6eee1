//! Phi-accrual failure detector (Hayashibara et al., "The φ Accrual Failure Detector",
//! 2004), in the form Akka uses: inter-arrival times are modelled as a normal
//! distribution whose mean and standard deviation come from a sliding window of recent
//! samples, and the normal CDF is replaced by a logistic approximation so that `phi` has a
//! closed form and a cheap inverse.
//!
//! With `Δ` the silence since the last arrival, `μ'` the mean inter-arrival time (plus the
//! acceptable pause, when asked for) and `σ'` the standard deviation (floored at
//! `min_std_dev`):
//!
//! ```text
//! y      = (Δ − μ') / σ'
//! t(y)   = y · (1.5976 + 0.070566 · y²)        // logistic fit of the normal CDF
//! P_later = 1 / (1 + e^t)                      // chance a live member is still silent
//! phi    = −log10(P_later) = log10(1 + e^t)
//! ```
//!
//! Everything is computed in `f64` nanoseconds from exact integer sums, so there is no
//! drift to correct and no input (zero, huge, or out-of-order times) produces NaN,
//! infinity or a panic.

use std::f64::consts::LN_10;
use std::time::Duration;

use crate::time::Time;

/// Linear coefficient of the logistic approximation of the normal CDF (Bowling et al.,
/// "A logistic approximation to the cumulative normal distribution", 2009).
const LOGISTIC_A: f64 = 1.5976;
/// Cubic coefficient of the same approximation.
const LOGISTIC_B: f64 = 0.070566;

/// `y` range over which [`y_for_phi`] searches. `phi_from_y(-40)` underflows to exactly 0
/// and `phi_from_y(40)` is about 1989, which covers every threshold anyone would configure
/// (Akka's default is 8, Cassandra's 8, "paranoid" settings rarely exceed 16).
const Y_SEARCH_MAX: f64 = 40.0;

/// Largest `|y|` [`phi_from_y`] evaluates; beyond it `y³` could overflow to infinity.
/// The detector itself never gets near it (`Δ ≤ u64::MAX` ns over `σ' ≥ 1` ns is
/// about 1.8e19).
const Y_EVAL_MAX: f64 = 1e30;

/// Iteration cap for the bisection in [`y_for_phi`]: 80 / 2^100 is far below `f64`
/// resolution, so the cap only bounds work, it never costs accuracy.
const BISECTION_STEPS: u32 = 100;

/// Configuration of a [`PhiDetector`].
///
/// The [`Default`] is Akka's cluster defaults for a 1 s heartbeat: a 100-sample window,
/// 100 ms minimum standard deviation, 3 s acceptable pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhiParams {
    /// How many inter-arrival samples the detector remembers (e.g. 100). Clamped to
    /// `2..=`[`PhiDetector::MAX_WINDOW`]: at least two so the bootstrap fits, at most the
    /// bound that keeps the exact integer variance from overflowing.
    pub window: usize,
    /// Floor under the measured standard deviation (e.g. 100 ms). A perfectly regular
    /// peer has a standard deviation near zero, which would make phi jump from 0 to
    /// enormous values within microseconds of the mean; the floor keeps the curve smooth
    /// enough that ordinary scheduling jitter is not evidence of death.
    pub min_std_dev: Duration,
    /// Extra silence tolerated before phi rises (e.g. 3 s), added to the mean when a
    /// caller asks for phi "with pause". Covers GC pauses and transient network stalls
    /// that the sample window has never seen.
    pub acceptable_pause: Duration,
    /// Estimate of the mean inter-arrival time before any sample exists, normally the
    /// probe interval. Clamped to [`PhiDetector::MAX_SAMPLE`].
    pub first_interval: Duration,
}

impl Default for PhiParams {
    fn default() -> Self {
        PhiParams {
            window: 100,
            min_std_dev: Duration::from_millis(100),
            acceptable_pause: Duration::from_secs(3),
            first_interval: Duration::from_secs(1),
        }
    }
}

/// A phi-accrual failure detector for one remote member.
///
/// Feed it every arrival of the member's rhythm signal (for rumor: an ack to our probe)
/// with [`heartbeat`](Self::heartbeat), ideally once per rhythm event rather than once
/// per message, since several messages processed in the same instant would record
/// zero-length intervals. Ask [`phi`](Self::phi) for the current suspicion level, or
/// [`deadline`](Self::deadline) for the instant a threshold will be crossed if nothing
/// else arrives.
///
/// Memory is one ring of `window` `u64`s allocated in [`new`](Self::new); no method
/// allocates afterwards. Mean and variance are kept as exact integer running sums, so
/// each arrival costs O(1) and nothing drifts.
#[derive(Clone, Debug)]
pub struct PhiDetector {
    /// Inter-arrival samples in nanoseconds, each at most `MAX_SAMPLE`. Grows by `push`
    /// up to `window` entries, then is overwritten in place at `head`.
    ring: Vec<u64>,
    /// The ring's fixed size (the clamped `PhiParams::window`).
    window: usize,
    /// Index of the oldest entry once the ring is full (the next one to overwrite).
    head: usize,
    /// How many of the oldest ring entries are still the two synthetic bootstrap samples.
    bootstrap_left: usize,
    /// Sum of the ring entries. At most `MAX_WINDOW · MAX_SAMPLE` = 2^63.
    sum: u128,
    /// Sum of squares of the ring entries. At most 2^14 · 2^98 = 2^112, so that
    /// `window · sum_sq` and `sum²` (both ≤ 2^126) fit in a `u128` exactly.
    sum_sq: u128,
    /// Last arrival seen (or the instant silence was restarted from).
    last: Option<Time>,
    /// Set by `restart_silence`: the next arrival starts a new baseline, not a sample.
    skip_next: bool,
    /// The previous interval was dropped as suspiciously long; a second consecutive one
    /// is recorded so the detector can follow a genuinely slower rhythm.
    skipped_long: bool,
    /// `PhiParams::min_std_dev` in nanoseconds, never below 1 ns.
    min_std_nanos: f64,
    /// `PhiParams::acceptable_pause` in nanoseconds.
    pause_nanos: f64,
}

impl PhiDetector {
    /// Largest ring size. Together with [`MAX_SAMPLE`](Self::MAX_SAMPLE) it bounds the
    /// running sums so the variance is computed exactly in `u128` (2^14 · 2^14 · 2^98 =
    /// 2^126); larger windows add nothing a detector needs.
    pub const MAX_WINDOW: usize = 1 << 14;

    /// Longest inter-arrival sample stored, in nanoseconds (2^49 ns, about 6.5 days).
    /// Longer intervals are stored as this value; they only occur after outages, which
    /// the skip rule usually drops anyway.
    pub const MAX_SAMPLE: u64 = 1 << 49;

    /// An interval whose arrival finds phi (computed *without* the acceptable pause) at or
    /// above this level is not recorded as a sample. Such a gap is an outage or a pause
    /// (ours or the peer's), not a draw from the normal rhythm; recording it would inflate
    /// the mean and standard deviation for the next `window` samples and make the detector
    /// slow to notice the next real failure. Akka and Cassandra drop such gaps for the
    /// same reason. 3.0 means "a live peer is this late about once in a thousand
    /// intervals".
    ///
    /// One exception keeps the detector from locking onto a wrong rhythm: if the
    /// previous interval was dropped by this rule, a second consecutive long interval is
    /// recorded. A single outage is one long gap followed by normal beats, so it is
    /// still dropped; a rhythm that really became slower (or a `first_interval` that
    /// underestimated it) shows up as consecutive long gaps and is learned.
    pub const SKIP_PHI: f64 = 3.0;

    /// A detector with no arrivals yet, bootstrapped like Akka: the ring starts with the
    /// two synthetic samples `first_interval ∓ first_interval/4`, so the mean is
    /// `first_interval` and the (population) standard deviation `first_interval/4`.
    /// This gives a sensible, deliberately wide curve before the member has shown its
    /// real rhythm; the bootstrap samples are the oldest ring entries, so real samples
    /// push them out once the ring is full.
    pub fn new(params: &PhiParams) -> Self {
        let window = params.window.clamp(2, Self::MAX_WINDOW);
        let first = duration_to_nanos(params.first_interval).min(Self::MAX_SAMPLE);
        let quarter = first / 4;
        let mut detector = PhiDetector {
            ring: Vec::with_capacity(window),
            window,
            head: 0,
            bootstrap_left: 0,
            sum: 0,
            sum_sq: 0,
            last: None,
            skip_next: false,
            skipped_long: false,
            min_std_nanos: (params.min_std_dev.as_nanos() as f64).max(1.0),
            pause_nanos: params.acceptable_pause.as_nanos() as f64,
        };
        detector.push(first - quarter);
        detector.push(first + quarter);
        detector.bootstrap_left = 2;
        detector
    }

    /// Records an arrival from the member at `now`.
    ///
    /// The interval since the previous arrival becomes a sample unless
    /// - there was no previous arrival (nothing to measure against),
    /// - [`restart_silence`](Self::restart_silence) asked to skip this one,
    /// - it is suspiciously long (see [`SKIP_PHI`](Self::SKIP_PHI)), or
    /// - `now` is before the previous arrival: the caller's clock went backwards or
    ///   events were reordered; the sample is ignored and the later instant is kept so
    ///   the silence baseline never moves back.
    pub fn heartbeat(&mut self, now: Time) {
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        if now < last {
            return;
        }
        if self.skip_next {
            self.skip_next = false;
            self.skipped_long = false;
        } else if self.phi(now, false) >= Self::SKIP_PHI && !self.skipped_long {
            self.skipped_long = true;
        } else {
            self.skipped_long = false;
            self.push(now.as_nanos() - last.as_nanos());
        }
        self.last = Some(now);
    }

    /// Tells the detector that the *observer* was stalled (a GC pause, a suspended VM, an
    /// overloaded event loop) until `now`.
    ///
    /// Silence accumulated while we were not running says nothing about the peer, so the
    /// silence baseline moves to `now` (unless a later arrival is already known, or from
    /// nothing if none is). The next heartbeat does not record an interval: replies that
    /// queued up during our stall are delivered in a burst right after it, and the
    /// interval from `now` to the first of them is an artefact of our stall, close to
    /// zero, not the peer's rhythm.
    pub fn restart_silence(&mut self, now: Time) {
        match self.last {
            Some(last) if last >= now => {}
            _ => self.last = Some(now),
        }
        self.skip_next = true;
    }

    /// The last arrival (or restarted silence baseline), if any.
    pub fn last_arrival(&self) -> Option<Time> {
        self.last
    }

    /// How many real inter-arrival samples the ring holds (at most `window`; the
    /// bootstrap samples are not counted).
    pub fn samples(&self) -> usize {
        self.ring.len().saturating_sub(self.bootstrap_left)
    }

    /// Mean of the samples in the ring (bootstrap samples included while they remain),
    /// rounded to the nanosecond.
    pub fn mean(&self) -> Duration {
        let n = self.ring.len() as u128;
        if n == 0 {
            return Duration::ZERO;
        }
        // Each sample is at most MAX_SAMPLE, so the rounded mean fits in a u64.
        let nanos = (self.sum + n / 2) / n;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Population standard deviation of the samples in the ring, rounded to the
    /// nanosecond, before the `min_std_dev` floor is applied.
    pub fn std_dev(&self) -> Duration {
        nanos_to_duration_round(self.std_nanos())
    }

    /// The suspicion level at `now`: `-log10` of the probability that a live member
    /// stays silent for as long as it has since its last arrival.
    ///
    /// `with_pause` adds the acceptable pause to the expected interval (use it for
    /// conviction; leave it off to judge whether an interval is "normal"). Zero when no
    /// arrival is known or `now` is not after it. Always finite, `>= 0`, and
    /// non-decreasing in `now`.
    pub fn phi(&self, now: Time, with_pause: bool) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        let elapsed = now.as_nanos().saturating_sub(last.as_nanos()) as f64;
        let (mu, sigma) = self.curve(with_pause);
        phi_from_y((elapsed - mu) / sigma)
    }

    /// How long after the last arrival phi reaches `phi_threshold`, given the current
    /// history: `μ' + y_for_phi(phi_threshold) · σ'`, rounded up to the nanosecond and
    /// at least zero.
    ///
    /// Solves the inverse curve, so hot paths should precompute
    /// `y_for_phi(threshold)` once and call [`deadline`](Self::deadline) instead.
    pub fn silence_for(&self, phi_threshold: f64, with_pause: bool) -> Duration {
        self.silence_for_y(y_for_phi(phi_threshold), with_pause)
    }

    /// The instant at which phi will reach the threshold whose
    /// [`y_for_phi`] is `phi_threshold_y`, if nothing arrives first: the last arrival
    /// plus `μ' + y · σ'` (saturating). `None` when no arrival is known.
    ///
    /// Takes `y` rather than the threshold so the per-arrival path is O(1) float
    /// arithmetic with no inverse to solve. A NaN `y` is treated as "never" and yields
    /// [`Time::MAX`], so a corrupted threshold cannot convict anyone.
    pub fn deadline(&self, phi_threshold_y: f64, with_pause: bool) -> Option<Time> {
        self.last
            .map(|last| last + self.silence_for_y(phi_threshold_y, with_pause))
    }

    /// Adds one sample (clamped to `MAX_SAMPLE`), evicting the oldest once the ring is
    /// full.
    fn push(&mut self, sample: u64) {
        let sample = sample.min(Self::MAX_SAMPLE);
        if self.ring.len() < self.window {
            // Below the capacity reserved in `new`, so this never reallocates.
            self.ring.push(sample);
        } else if let Some(slot) = self.ring.get_mut(self.head) {
            let old = std::mem::replace(slot, sample);
            self.sum = self.sum.saturating_sub(u128::from(old));
            self.sum_sq = self.sum_sq.saturating_sub(square(old));
            self.head = (self.head + 1) % self.window;
            self.bootstrap_left = self.bootstrap_left.saturating_sub(1);
        } else {
            debug_assert!(
                false,
                "ring head {} outside window {}",
                self.head, self.window
            );
            return;
        }
        self.sum = self.sum.saturating_add(u128::from(sample));
        self.sum_sq = self.sum_sq.saturating_add(square(sample));
    }

    /// Mean of the ring in nanoseconds, unrounded.
    fn mean_nanos(&self) -> f64 {
        let n = self.ring.len();
        if n == 0 {
            return 0.0;
        }
        self.sum as f64 / n as f64
    }

    /// Population standard deviation of the ring in nanoseconds, unrounded.
    ///
    /// Uses `sqrt(n·Σx² − (Σx)²) / n`, with the numerator computed exactly in integers:
    /// the usual `Σx²/n − mean²` in floats cancels catastrophically when the jitter is
    /// tiny compared to the interval (microseconds against seconds).
    fn std_nanos(&self) -> f64 {
        let n = self.ring.len() as u128;
        if n == 0 {
            return 0.0;
        }
        // Cauchy–Schwarz makes this non-negative; saturation is only a guard.
        let numerator = n
            .saturating_mul(self.sum_sq)
            .saturating_sub(self.sum.saturating_mul(self.sum));
        (numerator as f64).sqrt() / n as f64
    }

    /// `(μ', σ')` in nanoseconds: the mean plus the pause if asked for, and the standard
    /// deviation floored at `min_std_dev` (itself at least 1 ns, so `σ'` is never zero).
    fn curve(&self, with_pause: bool) -> (f64, f64) {
        let pause = if with_pause { self.pause_nanos } else { 0.0 };
        let mu = self.mean_nanos() + pause;
        let sigma = self.std_nanos().max(self.min_std_nanos);
        (mu, sigma)
    }

    /// `μ' + y · σ'` as a duration, rounded up so phi at that instant has reached the
    /// threshold rather than falling a fraction of a nanosecond short.
    fn silence_for_y(&self, y: f64, with_pause: bool) -> Duration {
        if y.is_nan() {
            return Duration::from_nanos(u64::MAX);
        }
        let (mu, sigma) = self.curve(with_pause);
        let nanos = mu + y * sigma;
        // `as` saturates: negative (and -inf) → 0, beyond u64::MAX (and +inf) → u64::MAX.
        Duration::from_nanos(nanos.ceil() as u64)
    }
}

/// `phi` as a function of the standardised silence `y = (Δ − μ') / σ'`:
/// `log10(1 + e^t)` with `t = y · (1.5976 + 0.070566 · y²)`.
///
/// Computed as `(t + ln(1 + e^−t)) / ln 10` for `t > 0` and `ln(1 + e^t) / ln 10`
/// otherwise, so neither branch ever exponentiates a large positive number: the result
/// is finite, `>= 0` and non-decreasing for every `y`. `|y|` is clamped to 1e30 to keep
/// `y³` finite; a NaN `y` yields 0 (no evidence of failure).
pub fn phi_from_y(y: f64) -> f64 {
    if y.is_nan() {
        return 0.0;
    }
    let y = y.clamp(-Y_EVAL_MAX, Y_EVAL_MAX);
    let t = y * (LOGISTIC_A + LOGISTIC_B * y * y);
    // libm, not std: std's exp/ln_1p call the platform's libm, which is not correctly
    // rounded and differs across systems; decisions (deadlines) must not.
    if t > 0.0 {
        (t + libm::log1p(libm::exp(-t))) / LN_10
    } else {
        libm::log1p(libm::exp(t)) / LN_10
    }
}

/// The inverse of [`phi_from_y`]: the smallest `y` (to `f64` resolution) with
/// `phi_from_y(y) >= phi`, found by bisection on `[-40, 40]` in at most 100 steps.
///
/// Non-decreasing in `phi`. Out-of-range thresholds clamp to the ends of the search
/// interval: `phi <= 0` (and `-inf`) gives `-40`, which puts the deadline at or before
/// the last arrival; `phi` above about 1989 (and `+inf`) gives `40`. NaN also gives `40`,
/// the conservative end: a corrupted threshold should delay conviction, not cause it.
pub fn y_for_phi(phi: f64) -> f64 {
    if phi.is_nan() {
        return Y_SEARCH_MAX;
    }
    let (mut lo, mut hi) = (-Y_SEARCH_MAX, Y_SEARCH_MAX);
    if phi_from_y(lo) >= phi {
        return lo;
    }
    if phi_from_y(hi) < phi {
        return hi;
    }
    for _ in 0..BISECTION_STEPS {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if phi_from_y(mid) < phi {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// A `Duration` in nanoseconds, saturating at `u64::MAX`.
fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds as a float to a `Duration`, rounded; NaN and negatives give zero, values
/// beyond `u64::MAX` saturate (`as` casts saturate).
fn nanos_to_duration_round(nanos: f64) -> Duration {
    Duration::from_nanos(nanos.round() as u64)
}

/// `x²` widened so it cannot overflow.
fn square(x: u64) -> u128 {
    u128::from(x) * u128::from(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn akka() -> PhiParams {
        PhiParams::default()
    }

    /// A detector that has seen `beats` arrivals at exactly `interval` apart, starting at
    /// `start`; returns it and the last arrival.
    fn steady(
        params: &PhiParams,
        start: Time,
        interval: Duration,
        beats: u32,
    ) -> (PhiDetector, Time) {
        let mut d = PhiDetector::new(params);
        let mut t = start;
        for _ in 0..beats {
            d.heartbeat(t);
            t += interval;
        }
        (d, t - interval)
    }

    /// The exact real root of `B y³ + A y − t = 0` (Cardano; one real root since the
    /// cubic is increasing), with `t = ln(10^phi − 1)`.
    fn true_y(phi: f64) -> f64 {
        let t = (10f64.powf(phi) - 1.0).ln();
        let p = LOGISTIC_A / LOGISTIC_B;
        let q = -t / LOGISTIC_B;
        let disc = (q / 2.0).powi(2) + (p / 3.0).powi(3);
        (-q / 2.0 + disc.sqrt()).cbrt() + (-q / 2.0 - disc.sqrt()).cbrt()
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn bootstrap_matches_akka() {
        let d = PhiDetector::new(&akka());
        assert_eq!(d.samples(), 0);
        assert_eq!(d.mean(), Duration::from_secs(1));
        assert_eq!(d.std_dev(), Duration::from_millis(250));
        assert_eq!(d.last_arrival(), None);
        assert_eq!(d.phi(Time::from_secs(100), true), 0.0);
        assert_eq!(d.deadline(5.0, true), None);
    }

    #[test]
    fn y_for_phi_matches_closed_form() {
        for phi in [0.01, 0.5, 1.0, 3.0, 8.0, 12.0, 16.0, 30.0, 100.0] {
            let y = y_for_phi(phi);
            let exact = true_y(phi);
            assert!((y - exact).abs() < 1e-9, "phi {phi}: {y} vs {exact}");
            assert!((phi_from_y(y) - phi).abs() < 1e-9 * phi.max(1.0));
        }
        let y8 = y_for_phi(8.0);
        assert!((y8 - true_y(8.0)).abs() < 0.05);
        assert!((y8 - 5.226).abs() < 0.01, "y(8) = {y8}");
    }

    #[test]
    fn y_for_phi_clamps_bad_thresholds() {
        assert_eq!(y_for_phi(0.0), -Y_SEARCH_MAX);
        assert_eq!(y_for_phi(-5.0), -Y_SEARCH_MAX);
        assert_eq!(y_for_phi(f64::NEG_INFINITY), -Y_SEARCH_MAX);
        assert_eq!(y_for_phi(f64::INFINITY), Y_SEARCH_MAX);
        assert_eq!(y_for_phi(1e6), Y_SEARCH_MAX);
        assert_eq!(y_for_phi(f64::NAN), Y_SEARCH_MAX);
        assert_eq!(phi_from_y(f64::NAN), 0.0);
        assert!(phi_from_y(f64::INFINITY).is_finite());
        assert_eq!(phi_from_y(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn steady_one_second_heartbeats_match_akka_reference() {
        let p = akka();
        let (d, last) = steady(&p, Time::from_secs(10), Duration::from_secs(1), 1000);
        assert_eq!(d.samples(), 100);
        assert_eq!(d.mean(), Duration::from_secs(1));
        assert_eq!(d.std_dev(), Duration::ZERO);

        // μ' = 1 s + 3 s, σ' = 100 ms, y(8) ≈ 5.226 → ≈ 4.52 s.
        let conviction = d.silence_for(8.0, true);
        assert!((secs(conviction) - 4.52).abs() < 0.05, "{conviction:?}");
        let at = last + conviction;
        assert!((d.phi(at, true) - 8.0).abs() < 1e-6, "{}", d.phi(at, true));
        assert_eq!(d.deadline(y_for_phi(8.0), true), Some(at));

        // μ = 1 s, σ' = 100 ms, y(1) = 1.2822 (logistic), not the normal 1.2816.
        let one = d.silence_for(1.0, false);
        let expected = 1.0 + true_y(1.0) * 0.1;
        assert!((secs(one) - expected).abs() < 1e-9, "{one:?} vs {expected}");
        assert!((secs(one) - 1.128).abs() < 0.001);
        assert!((d.phi(last + one, false) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn phi_is_zero_at_the_arrival_and_finite_forever() {
        let (d, last) = steady(&akka(), Time::ZERO, Duration::from_secs(1), 50);
        assert!(d.phi(last, true) < 1e-6);
        assert!(d.phi(last - Duration::from_secs(5), true) < 1e-6);
        let far = d.phi(Time::MAX, true);
        assert!(far.is_finite() && far > 1e20, "{far}");
        let far = d.phi(Time::MAX, false);
        assert!(far.is_finite());
    }

    #[test]
    fn degenerate_params_do_not_break_the_curve() {
        let p = PhiParams {
            window: 0,
            min_std_dev: Duration::ZERO,
            acceptable_pause: Duration::MAX,
            first_interval: Duration::ZERO,
        };
        let mut d = PhiDetector::new(&p);
        assert_eq!(d.window, 2);
        for i in 0..10 {
            d.heartbeat(Time::from_secs(i));
        }
        for now in [0, 1, 5, 100, u64::MAX] {
            for pause in [false, true] {
                let phi = d.phi(Time(now), pause);
                assert!(phi.is_finite() && phi >= 0.0);
            }
        }
        assert!(d.deadline(y_for_phi(8.0), true).is_some());

        let huge = PhiParams {
            window: usize::MAX,
            first_interval: Duration::MAX,
            ..akka()
        };
        let d = PhiDetector::new(&huge);
        assert_eq!(d.ring.capacity(), PhiDetector::MAX_WINDOW);
        assert!(d.mean() <= Duration::from_nanos(PhiDetector::MAX_SAMPLE + 1));
    }

    #[test]
    fn ring_never_grows() {
        let p = PhiParams {
            window: 37,
            ..akka()
        };
        let mut d = PhiDetector::new(&p);
        let cap = d.ring.capacity();
        assert!(cap >= 37);
        let mut t = Time::ZERO;
        for i in 0..370u64 {
            d.heartbeat(t);
            t += Duration::from_millis(900 + (i * 37) % 200);
            assert_eq!(d.ring.capacity(), cap);
            assert!(d.ring.len() <= 37);
        }
        assert_eq!(d.samples(), 37);
        assert_eq!(d.bootstrap_left, 0);
    }

    #[test]
    fn bootstrap_samples_are_displaced_first() {
        let p = PhiParams {
            window: 4,
            ..akka()
        };
        let (d, _) = steady(&p, Time::ZERO, Duration::from_secs(1), 3);
        // Ring: 0.75, 1.25, 1, 1.
        assert_eq!(d.samples(), 2);
        assert_eq!(d.mean(), Duration::from_secs(1));
        let (d, _) = steady(&p, Time::ZERO, Duration::from_secs(1), 5);
        assert_eq!(d.samples(), 4);
        assert_eq!(d.std_dev(), Duration::ZERO);
    }

    #[test]
    fn long_gap_is_not_recorded() {
        let p = akka();
        let (mut d, last) = steady(&p, Time::ZERO, Duration::from_secs(1), 200);
        let mean = d.mean();
        let std = d.std_dev();
        let samples = d.samples();
        let mut t = last + Duration::from_secs(30);
        d.heartbeat(t);
        assert_eq!(d.mean(), mean);
        assert_eq!(d.std_dev(), std);
        assert_eq!(d.last_arrival(), Some(t));
        for _ in 0..5 {
            t += Duration::from_secs(1);
            d.heartbeat(t);
        }
        assert_eq!(d.mean(), mean);
        assert_eq!(d.std_dev(), std);
        assert_eq!(d.samples(), samples);
    }

    #[test]
    fn slower_rhythm_is_learned_not_locked_out() {
        // first_interval underestimates the real rhythm tenfold.
        let p = akka();
        let (d, _) = steady(&p, Time::ZERO, Duration::from_secs(10), 300);
        assert!((secs(d.mean()) - 10.0).abs() < 0.01, "{:?}", d.mean());
    }

    #[test]
    fn out_of_order_arrival_is_ignored() {
        let (mut d, last) = steady(&akka(), Time::from_secs(100), Duration::from_secs(1), 20);
        let before = (d.mean(), d.std_dev(), d.samples());
        d.heartbeat(last - Duration::from_millis(500));
        assert_eq!(d.last_arrival(), Some(last));
        assert_eq!((d.mean(), d.std_dev(), d.samples()), before);
        d.heartbeat(last + Duration::from_secs(1));
        assert_eq!(d.samples(), before.2 + 1);
    }

    #[test]
    fn restart_silence_moves_baseline_and_skips_next_interval() {
        let (mut d, last) = steady(&akka(), Time::ZERO, Duration::from_secs(1), 200);
        let before = (d.mean(), d.std_dev(), d.samples());
        let resumed = last + Duration::from_secs(20);
        assert!(d.phi(resumed, true) > 8.0);
        d.restart_silence(resumed);
        assert_eq!(d.last_arrival(), Some(resumed));
        assert!(d.phi(resumed, true) < 1e-6);
        // The burst of queued acks right after the stall.
        d.heartbeat(resumed + Duration::from_millis(1));
        assert_eq!((d.mean(), d.std_dev(), d.samples()), before);
        d.heartbeat(resumed + Duration::from_millis(1001));
        assert_eq!(d.samples(), before.2);
        assert_eq!(d.mean(), Duration::from_secs(1));

        // An earlier restart does not move a later baseline back.
        let at = d.last_arrival();
        d.restart_silence(Time::ZERO);
        assert_eq!(d.last_arrival(), at);

        // With no arrival known, the restart becomes the baseline.
        let mut fresh = PhiDetector::new(&akka());
        fresh.restart_silence(Time::from_secs(7));
        assert_eq!(fresh.last_arrival(), Some(Time::from_secs(7)));
        fresh.heartbeat(Time::from_millis(7001));
        assert_eq!(fresh.samples(), 0);
        fresh.heartbeat(Time::from_millis(8001));
        assert_eq!(fresh.samples(), 1);
    }

    /// Mean and population standard deviation recomputed from the ring, two-pass.
    fn from_scratch(d: &PhiDetector) -> (f64, f64) {
        let n = d.ring.len() as f64;
        let mean = d.ring.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = d
            .ring
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
    }

    fn history() -> impl Strategy<Value = (PhiParams, Vec<u64>)> {
        (
            2usize..64,
            0u64..2_000,
            0u64..10_000,
            1u64..5_000,
            prop::collection::vec(0u64..3_600_000, 0..300),
        )
            .prop_map(|(window, min_std_ms, pause_ms, first_ms, gaps_ms)| {
                let p = PhiParams {
                    window,
                    min_std_dev: Duration::from_millis(min_std_ms),
                    acceptable_pause: Duration::from_millis(pause_ms),
                    first_interval: Duration::from_millis(first_ms),
                };
                (p, gaps_ms)
            })
    }

    fn replay(p: &PhiParams, gaps_ms: &[u64]) -> PhiDetector {
        let mut d = PhiDetector::new(p);
        let mut t = Time::from_secs(1);
        d.heartbeat(t);
        for &g in gaps_ms {
            t += Duration::from_millis(g);
            d.heartbeat(t);
        }
        d
    }

    proptest! {
        #[test]
        fn running_sums_are_exact(
            window in 2usize..200,
            gaps in prop::collection::vec(0u64..20_000_000_000, 0..2_000),
        ) {
            // No skipping here: every gap becomes a sample, whatever its size.
            let p = PhiParams { window, ..akka() };
            let mut d = PhiDetector::new(&p);
            for &g in &gaps {
                d.push(g);
            }
            let (mean, std) = from_scratch(&d);
            prop_assert!(close(d.mean_nanos(), mean, 1e-9), "{} vs {}", d.mean_nanos(), mean);
            prop_assert!(close(d.std_nanos(), std, 1e-9), "{} vs {}", d.std_nanos(), std);
            prop_assert!(d.ring.len() <= window);
        }

        #[test]
        fn phi_is_monotone_in_elapsed_time(
            (p, gaps) in history(),
            a in any::<u64>(),
            b in any::<u64>(),
            with_pause in any::<bool>(),
        ) {
            let d = replay(&p, &gaps);
            let (t1, t2) = (Time(a.min(b)), Time(a.max(b)));
            let (phi1, phi2) = (d.phi(t1, with_pause), d.phi(t2, with_pause));
            prop_assert!(phi1.is_finite() && phi2.is_finite());
            prop_assert!(phi1 >= 0.0 && phi2 >= 0.0);
            prop_assert!(phi1 <= phi2, "phi({t1:?}) = {phi1} > phi({t2:?}) = {phi2}");
        }

        #[test]
        fn phi_is_monotone_near_the_mean(
            (p, gaps) in history(),
            offset_ns in 0u64..20_000_000_000,
            step_ns in 0u64..1_000,
            with_pause in any::<bool>(),
        ) {
            // Dense steps where the curve bends, not just far-apart random instants.
            let d = replay(&p, &gaps);
            let Some(last) = d.last_arrival() else { return Ok(()); };
            let t1 = Time(last.as_nanos() + offset_ns);
            let t2 = Time(t1.as_nanos() + step_ns);
            prop_assert!(d.phi(t1, with_pause) <= d.phi(t2, with_pause));
        }

        #[test]
        fn silence_for_inverts_phi(
            (p, gaps) in history(),
            threshold in 0.1f64..=30.0,
            with_pause in any::<bool>(),
        ) {
            let d = replay(&p, &gaps);
            let last = d.last_arrival().unwrap_or(Time::ZERO);
            let silence = d.silence_for(threshold, with_pause);
            let at = last + silence;
            prop_assert_eq!(d.deadline(y_for_phi(threshold), with_pause), Some(at));
            let phi_at = d.phi(at, with_pause);
            if silence.is_zero() {
                // The threshold is already met at the arrival itself.
                prop_assert!(phi_at >= threshold - 1e-9);
            } else {
                // `at` is the first nanosecond at which phi reaches the threshold.
                let before = d.phi(at - Duration::from_nanos(1), with_pause);
                let slack = (phi_at - before) + 1e-9 * threshold;
                prop_assert!(phi_at >= threshold - slack, "{phi_at} < {threshold}");
                prop_assert!(before <= threshold + slack, "{before} > {threshold}");
                prop_assert!((phi_at - threshold).abs() <= slack + 1e-6);
            }
        }

        #[test]
        fn y_for_phi_is_monotone(a in -10.0f64..2_100.0, b in -10.0f64..2_100.0) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(y_for_phi(lo) <= y_for_phi(hi));
        }

        #[test]
        fn phi_from_y_is_monotone_and_finite(a in any::<f64>(), b in any::<f64>()) {
            prop_assume!(!a.is_nan() && !b.is_nan());
            let (lo, hi) = (a.min(b), a.max(b));
            let (p1, p2) = (phi_from_y(lo), phi_from_y(hi));
            prop_assert!(p1.is_finite() && p2.is_finite() && p1 >= 0.0);
            prop_assert!(p1 <= p2);
        }
    }
}
