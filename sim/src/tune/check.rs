//! How a pause becomes a false conviction under `phi-monitors`, as a model `tune`'s
//! risk figures use, and the check of that model against the simulator.
//!
//! # The model
//!
//! A member that stops at `s` for `p` seconds is convicted if some monitor `m` reaches
//! a verdict before the member resumes (its queued acks arrive right after):
//!
//! ```text
//! convicted  ⇔  p > E = min over monitors m of C_m − s
//! C_m = max(D_m, F)
//! D_m = last ack at m before s + silence_to_convict_m          (phi reaches phi_convict)
//! F   = first Suspect of any monitor + probe_interval + probe_timeout   (refutation window)
//! ```
//!
//! `E` is the *pause needed to convict* for a pause starting at `s`. It is shorter than
//! the steady silence to convict ([`super::phi_silence_to_convict`]) by the time since
//! each monitor's last ack, which is uniform over a probe interval and independent
//! between monitors (each has its own phase): with `k` monitors the luckiest is
//! `T·k/(k+1)` behind on average, 0.75 s at a 1 s period and 3 monitors. It is never
//! below the floor `F − s`: a monitor suspects at the timeout of its first ping whose
//! silence crosses `phi_suspect` (without the acceptable pause), plus one indirect round
//! (`probe_timeout`), and convicts no earlier than `probe_interval + probe_timeout`
//! after that, about `2T + 3·probe_timeout` after the last ack (3.5 s on `lan`). And
//! `silence_to_convict_m` is what the monitor's detector has learned: pauses shorter
//! than the conviction threshold still delay acks, and those late acks (and the burst of
//! queued ones at the end of a pause) widen the learned standard deviation above
//! `min_std_dev`, which lengthens the silence to convict.
//!
//! [`pause_to_convict`] samples `E` by driving the real [`PhiDetector`] of each of `k`
//! monitors with the acks of one member that pauses at Poisson arrivals with the
//! model's lengths (pauses that arrive during a pause are skipped: a pause is a whole
//! stall, as measured), then reading, at random instants when the member is running,
//! each monitor's deadline and the floor. The chance that a pause convicts is then
//! `E[P(pause > E)]` over those samples, with `P(pause > x)` from the fitted tail
//! ([`super::tail::risk`]). Every pause convicts at most once (a convicted member
//! refutes when it resumes), so false convictions per member-year are pauses per
//! member-year times that chance.
//!
//! What the model leaves out: the network (acks take no time, none are lost), the
//! monitors' own pauses (a monitor that is itself paused when its deadline comes
//! convicts only after it resumes and its stall guard passes, and its silence baseline
//! restarts), local health (which pushes deadlines later), and the Lifeguard fallback at
//! non-monitors (which starts later than the monitors' deadline by construction). Each
//! of these alone would make the model predict more convictions than the simulator
//! counts, yet against it the model comes out 1–9 % low for exponential pauses and
//! 7–10 % high for Pareto ones (sim/README.md, "The risk model");
//! `sim/tests/risk_vs_sim.rs` holds it inside the measured count's 99 % interval.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rumor::Config;
use rumor::Time;
use rumor::detector::{PhiDetector, PhiParams, y_for_phi};
use serde::Serialize;

use crate::faults::sample_pause;
use crate::scenario::PauseDist;

/// Samples of the pause needed to convict (see the module's documentation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PauseToConvict {
    /// The steady silence to convict ([`super::phi_silence_to_convict`]), seconds.
    pub steady_s: f64,
    /// Median of the pause needed to convict, seconds.
    pub p50_s: f64,
    /// Its 1st percentile: the shortest pause that convicts at an unlucky phase.
    pub p01_s: f64,
    /// The samples, ascending, seconds.
    #[serde(skip)]
    pub samples: Vec<f64>,
}

impl PauseToConvict {
    /// The chance that one pause convicts, given `exceed(x)` = P(pause > x seconds).
    pub fn convict_probability(&self, exceed: impl Fn(f64) -> f64) -> f64 {
        if self.samples.is_empty() {
            return exceed(self.steady_s);
        }
        self.samples.iter().map(|&e| exceed(e)).sum::<f64>() / self.samples.len() as f64
    }

    /// The model without the phase, the floor and the learned rhythm: every pause
    /// longer than the steady silence to convict convicts (what `tune` said before).
    pub fn naive(steady_s: f64) -> PauseToConvict {
        PauseToConvict {
            steady_s,
            p50_s: steady_s,
            p01_s: steady_s,
            samples: Vec::new(),
        }
    }
}

/// Instants sampled per model (one per probe interval, after the warm-up).
const SAMPLES: usize = 6_000;

/// The most pause arrivals [`pause_to_convict`] draws (a faster rate is held to this
/// many over its horizon): ten million, a fraction of a second. `tune` refuses rates
/// above [`super::MAX_PAUSE_RATE_PER_MIN`], which stay below it on the presets.
const MAX_ARRIVALS: usize = 10_000_000;

/// The first of the pings `first, first + t, first + 2t, ...` (`t > 0`) for which
/// `reached` holds, `reached` being monotone and true from about `at` on: `first`
/// itself when it does, else `first + n·t` with `n` from the gap to `at`, moved a step
/// or two where rounding put it off the least (the same pings a loop adding `t` would
/// try, without a step per period of the gap).
fn first_ping_reaching(first: f64, t: f64, at: f64, reached: impl Fn(f64) -> bool) -> f64 {
    if reached(first) {
        return first;
    }
    let mut n = ((at - first) / t).ceil().max(1.0);
    for _ in 0..3 {
        if n > 1.0 && reached(first + (n - 1.0) * t) {
            n -= 1.0;
        }
    }
    for _ in 0..3 {
        if !reached(first + n * t) {
            n += 1.0;
        }
    }
    first + n * t
}

/// Samples the pause needed to convict for `cfg` (phi-monitors) when members pause at
/// `rate_per_min` with lengths from `pause` (see the module's documentation).
/// Deterministic in `seed`.
pub fn pause_to_convict(
    cfg: &Config,
    pause: &PauseDist,
    rate_per_min: f64,
    seed: u64,
) -> PauseToConvict {
    pause_to_convict_capped(cfg, pause, rate_per_min, None, seed)
}

/// [`pause_to_convict`] with the drawn pause lengths clamped at `cap` (as `tune`'s
/// runs clamp them, `--pause-max`).
pub fn pause_to_convict_capped(
    cfg: &Config,
    pause: &PauseDist,
    rate_per_min: f64,
    cap: Option<Duration>,
    seed: u64,
) -> PauseToConvict {
    let steady_s = super::phi_silence_to_convict(cfg).as_secs_f64();
    let t = cfg.probe_interval.as_secs_f64().max(1e-3);
    let to = cfg.probe_timeout.as_secs_f64();
    let k = cfg.monitors.max(1);
    let y_convict = y_for_phi(cfg.phi_convict);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // Warm-up: long enough to fill the detectors' windows twice.
    let warm = 2.0 * cfg.phi_window.clamp(2, PhiDetector::MAX_WINDOW) as f64 * t;
    let horizon = warm + SAMPLES as f64 * t;
    // The member's pauses: Poisson arrivals, skipped while paused. The work is one
    // step an arrival: the rate is held to MAX_ARRIVALS over the horizon (far above
    // what tune's MAX_PAUSE_RATE_PER_MIN gives on the presets), and the loop to that
    // many steps.
    let mut pauses: Vec<(f64, f64)> = Vec::new();
    let rate = (rate_per_min.max(0.0) / 60.0).min(MAX_ARRIVALS as f64 / horizon);
    let mut at = 0.0;
    if rate > 0.0 {
        for _ in 0..MAX_ARRIVALS {
            at += -(1.0 - rng.random::<f64>()).ln() / rate;
            if at >= horizon {
                break;
            }
            if pauses.last().is_some_and(|&(_, end)| at < end) {
                continue;
            }
            let p = sample_pause(pause, &mut rng);
            let p = cap.map_or(p, |c| p.min(c)).as_secs_f64();
            pauses.push((at, at + p));
        }
    }
    // When an ack to a ping that reaches the member at `x` comes back: at once, or when
    // the pause it arrived in ends.
    let answered = |x: f64, from: &mut usize| -> f64 {
        while *from < pauses.len() && pauses[*from].1 <= x {
            *from += 1;
        }
        match pauses.get(*from) {
            Some(&(s, e)) if s <= x => e,
            _ => x,
        }
    };
    let params = PhiParams {
        window: cfg.phi_window,
        min_std_dev: cfg.min_std_dev,
        acceptable_pause: cfg.acceptable_pause,
        first_interval: cfg.probe_interval,
    };
    struct Monitor {
        phase: f64,
        detector: PhiDetector,
        /// Index of the next ping (sent at `phase + next · t`).
        next: u64,
        /// Pause cursor for `answered`.
        cursor: usize,
    }
    let mut monitors: Vec<Monitor> = (0..k)
        .map(|_| Monitor {
            phase: rng.random::<f64>() * t,
            detector: PhiDetector::new(&params),
            next: 0,
            cursor: 0,
        })
        .collect();
    let secs = |x: f64| Time::ZERO + Duration::from_secs_f64(x.max(0.0));
    let of = |tm: Time| tm.as_nanos() as f64 * 1e-9;
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut paused_cursor = 0usize;
    for i in 0..SAMPLES {
        let s = warm + (i as f64 + rng.random::<f64>()) * t;
        // Only instants at which the member runs can start a pause.
        while paused_cursor < pauses.len() && pauses[paused_cursor].1 <= s {
            paused_cursor += 1;
        }
        if pauses.get(paused_cursor).is_some_and(|&(ps, _)| ps <= s) {
            continue;
        }
        let mut first_suspect = f64::INFINITY;
        let mut deadlines = Vec::with_capacity(k);
        for m in &mut monitors {
            // Feed the acks of every ping sent before `s` whose ack is back by `s`; a
            // ping sent at or after `s` meets the new pause.
            loop {
                let sent = m.phase + m.next as f64 * t;
                if sent >= s {
                    break;
                }
                let back = answered(sent, &mut m.cursor);
                if back > s {
                    break;
                }
                m.detector.heartbeat(secs(back));
                m.next += 1;
            }
            let last = m.detector.last_arrival().map_or(s, of);
            let deadline = m.detector.deadline(y_convict, true).map_or(s, of);
            // Suspicion: at the timeout of the first unanswered ping whose silence
            // crosses phi_suspect, plus one indirect round.
            let to_suspect = m.detector.silence_for(cfg.phi_suspect, false).as_secs_f64();
            let ping = first_ping_reaching(
                m.phase + m.next as f64 * t,
                t,
                to_suspect - to + last,
                |ping| ping + to - last >= to_suspect,
            );
            first_suspect = first_suspect.min(ping + 2.0 * to);
            deadlines.push(deadline);
        }
        let floor = first_suspect + t + to;
        let verdict = deadlines
            .iter()
            .map(|&d| d.max(floor))
            .fold(f64::INFINITY, f64::min);
        samples.push((verdict - s).max(0.0));
    }
    samples.sort_by(f64::total_cmp);
    let q = |p: f64| {
        samples
            .get(((p * samples.len() as f64) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(steady_s)
    };
    PauseToConvict {
        steady_s,
        p50_s: q(0.5),
        p01_s: q(0.01),
        samples,
    }
}

/// One comparison of the predicted and the simulated false convictions.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// `acceptable_pause`.
    pub acceptable_pause_ms: u64,
    /// The steady silence to convict, seconds.
    pub steady_s: f64,
    /// Median pause needed to convict, seconds.
    pub pause_to_convict_p50_s: f64,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// Member-hours simulated (summed over the seeds).
    pub member_hours: f64,
    /// Pauses injected (summed).
    pub pauses: u64,
    /// Members falsely convicted, at most once per member and run (the oracle counts
    /// (member, life) pairs), summed over the seeds.
    pub measured: u64,
    /// The measured count's 99 % Poisson interval.
    pub interval: (f64, f64),
    /// What the model predicts for that count.
    pub predicted: f64,
    /// What the old rule (every pause longer than the steady silence to convict)
    /// predicts.
    pub predicted_naive: f64,
}

/// The expected number of members convicted at least once in a run of `nodes`
/// members that together took `pauses` pauses, each convicting with probability `q`:
/// a member's pauses are Poisson with mean `pauses / nodes`, so it escapes all of them
/// with probability `exp(−q · pauses / nodes)`.
pub fn members_convicted(nodes: usize, pauses: u64, q: f64) -> f64 {
    let n = nodes.max(1) as f64;
    n * (1.0 - (-q * pauses as f64 / n).exp())
}

fn ln_poisson_cdf(k: u64, lambda: f64) -> f64 {
    // log Σ_{i ≤ k} e^{−λ} λ^i / i!, summed in log space.
    let mut term = -lambda; // i = 0
    let mut acc = term;
    for i in 1..=k {
        term += lambda.ln() - (i as f64).ln();
        acc = acc.max(term) + (1.0 + (-(acc - term).abs()).exp()).ln();
    }
    acc
}

/// The exact (Garwood) two-sided interval of level `level` for the mean of a Poisson
/// count `k`.
pub fn poisson_interval(k: u64, level: f64) -> (f64, f64) {
    let a = (1.0 - level) / 2.0;
    let solve = |f: &dyn Fn(f64) -> bool| {
        // f is false below the root and true above.
        let (mut lo, mut hi) = (0.0f64, 10.0 * (k as f64 + 10.0));
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if f(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        0.5 * (lo + hi)
    };
    // Lower: P(N ≥ k; λ) = a, i.e. P(N ≤ k − 1; λ) = 1 − a.
    let lower = if k == 0 {
        0.0
    } else {
        solve(&|l| ln_poisson_cdf(k - 1, l) <= (1.0 - a).ln())
    };
    // Upper: P(N ≤ k; λ) = a.
    let upper = solve(&|l| ln_poisson_cdf(k, l) <= a.ln());
    (lower, upper)
}

/// Runs the scenario `text` (phi-monitors, pauses at `rate_per_min` on every member from `pause`,
/// `merge = false`) with `acceptable_pause` set to `ap` on every seed, and compares the
/// members falsely convicted with the prediction from `exceed` (P(pause > x)).
pub fn compare(
    text: &str,
    pause: &PauseDist,
    rate_per_min: f64,
    exceed: &(dyn Fn(f64) -> f64 + Sync),
    ap: Duration,
    seeds: &[u64],
) -> Result<Comparison, String> {
    let sets = vec![("acceptable_pause".to_string(), rumor::duration::fmt_dur(ap))];
    let sc = crate::scenario::Scenario::parse(text, &sets)?;
    let cfg = sc.node_config()?;
    let model = pause_to_convict(&cfg, pause, rate_per_min, 0x6368_6563);
    let q = model.convict_probability(exceed);
    let q_naive = PauseToConvict::naive(model.steady_s).convict_probability(exceed);
    let reports: Vec<Result<crate::report::Report, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = seeds
            .iter()
            .map(|&seed| {
                let sc = &sc;
                s.spawn(move || crate::run(sc, seed, "risk check", |_| {}))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a run panicked".into())))
            .collect()
    });
    let (mut measured, mut pauses, mut hours, mut predicted, mut naive) = (0, 0, 0.0, 0.0, 0.0);
    for r in reports {
        let r = r?;
        measured += r.false_convictions;
        pauses += r.pauses;
        hours += r.member_hours;
        predicted += members_convicted(sc.nodes, r.pauses, q);
        naive += members_convicted(sc.nodes, r.pauses, q_naive);
    }
    Ok(Comparison {
        acceptable_pause_ms: ap.as_millis() as u64,
        steady_s: model.steady_s,
        pause_to_convict_p50_s: model.p50_s,
        seeds: seeds.to_vec(),
        member_hours: hours,
        pauses,
        measured,
        interval: poisson_interval(measured, 0.99),
        predicted,
        predicted_naive: naive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rare_short_pauses() -> PauseDist {
        PauseDist::Fixed {
            value: crate::scenario::Dur(Duration::from_millis(50)),
        }
    }

    #[test]
    fn a_pause_needs_the_silence_less_the_monitors_phase() {
        // Quiet members: the detectors see a steady rhythm, so E = steady silence minus
        // the largest of 3 uniform phases over 1 s (mean 0.75 s), never below it by
        // more than a period.
        let cfg = Config::lan();
        let m = pause_to_convict(&cfg, &rare_short_pauses(), 0.01, 1);
        let mean = m.samples.iter().sum::<f64>() / m.samples.len() as f64;
        assert!(
            (m.steady_s - mean - 0.75).abs() < 0.05,
            "{} {mean}",
            m.steady_s
        );
        assert!(m.samples[0] >= m.steady_s - 1.0 - 1e-6, "{}", m.samples[0]);
        assert!(*m.samples.last().unwrap() <= m.steady_s + 1e-6);
    }

    #[test]
    fn no_pause_shorter_than_the_suspicion_floor_less_a_period_convicts() {
        // acceptable_pause 0: the steady silence (1.5 s) is below the floor, suspect at
        // the first ping's timeout plus an indirect round, then probe_interval +
        // probe_timeout: 2 × 1 s + 3 × 0.5 s = 3.5 s after the last ack.
        let mut cfg = Config::lan();
        cfg.acceptable_pause = Duration::ZERO;
        let m = pause_to_convict(&cfg, &rare_short_pauses(), 0.01, 2);
        assert!(m.steady_s < 2.0, "{}", m.steady_s);
        assert!(
            m.samples[0] >= 2.5 - 1e-6 && m.p50_s > 2.5,
            "{:?}",
            (m.samples[0], m.p50_s)
        );
        // Every pause longer than the silence convicts under the old rule; here the
        // chance is E[P(p > E)] < P(p > steady).
        let exceed = |x: f64| (-x).exp();
        assert!(m.convict_probability(exceed) < exceed(m.steady_s));
    }

    #[test]
    fn frequent_long_pauses_teach_the_detectors_a_wider_rhythm() {
        let cfg = Config::lan();
        let quiet = pause_to_convict(&cfg, &rare_short_pauses(), 0.01, 3);
        let exp = PauseDist::Exponential {
            mean: crate::scenario::Dur(Duration::from_secs(1)),
        };
        let busy = pause_to_convict(&cfg, &exp, 4.0, 3);
        assert!(
            busy.p50_s > quiet.p50_s + 0.2,
            "{} {}",
            busy.p50_s,
            quiet.p50_s
        );
    }

    #[test]
    fn the_work_is_bounded_whatever_the_rate() {
        // 1e9 pauses a minute over the lan horizon was ~1e11 arrivals to draw: this
        // test did not finish (an infinite rate never). Now each call is at most
        // MAX_ARRIVALS steps.
        for rate in [1e9, f64::MAX, f64::INFINITY] {
            let m = pause_to_convict(&Config::lan(), &rare_short_pauses(), rate, 4);
            assert!(m.steady_s > 0.0);
        }
        // A silence to suspect of days (an unvalidated min_std_dev): the first
        // suspecting ping is computed, not stepped to one probe interval at a time.
        let mut cfg = Config::lan();
        cfg.min_std_dev = Duration::from_secs(1_000_000);
        let m = pause_to_convict(&cfg, &rare_short_pauses(), 0.01, 5);
        assert!(m.p50_s > 0.0);
    }

    #[test]
    fn members_convicted_saturates() {
        assert!((members_convicted(100, 1000, 1e-4) - 0.1).abs() < 1e-3);
        assert!(members_convicted(100, 1_000_000, 0.5) <= 100.0);
    }
}
