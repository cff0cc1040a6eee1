//! Tails, not samples: a generalized Pareto fit of the measured pauses' largest values
//! (peaks over threshold), for the pause a long horizon will see and the risk a
//! setting runs.
//!
//! Why this model: by the Pickands–Balkema–de Haan theorem, the excesses of a wide
//! class of distributions over a high enough threshold are generalized Pareto, so the
//! tail can be extrapolated beyond the sample with a stated shape, which the empirical
//! distribution cannot do at all (its longest pause is the file's maximum, whatever
//! the horizon). The parameters are estimated by probability-weighted moments (Hosking
//! and Wallis, 1987): closed form, and better behaved than maximum likelihood on the few
//! dozen exceedances a pauses file gives (valid for shape below 1/2, which pause tails
//! meet unless they are wilder than a Pareto with a finite variance). The uncertainty
//! comes from a seeded bootstrap of the whole fit.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::check::PauseToConvict;
use crate::scenario::SampleTail;

/// Fewer samples than this: no fit (the tail of 30 values says nothing).
pub const MIN_SAMPLES: usize = 30;

/// A fit on fewer exceedances than this is *uncertain*: its shape moves by ±0.5
/// between two recordings of the same load, so `tune` warns, and its verdict uses the
/// upper end of the shape's 90 % interval (the heaviest tail the data do not rule
/// out) instead of the point estimate.
pub const FEW_EXCEEDANCES: usize = 30;

/// Bootstrap replicates for the intervals.
const BOOTSTRAP: usize = 200;

/// A generalized Pareto fit of the excesses over `threshold_s`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TailFit {
    /// The threshold, seconds: the sample value the `exceedances` largest are above.
    pub threshold_s: f64,
    /// The fraction of pauses above the threshold.
    pub exceed_fraction: f64,
    /// How many pauses are above it (those the fit uses).
    pub exceedances: usize,
    /// Shape ξ (0: exponential tail; above 0: heavier, polynomial; below 0: bounded).
    pub shape: f64,
    /// Scale σ, seconds.
    pub scale_s: f64,
    /// The shape's 90 % bootstrap interval.
    pub shape_interval: (f64, f64),
    /// The longest pause the model allows, seconds (`tune --pause-max`): a longer
    /// pause is clamped to it. `None`: unbounded.
    pub max_s: Option<f64>,
}

/// Probability-weighted moments estimate of (shape, scale) from excesses `y` (> 0).
fn pwm(y: &mut [f64]) -> Option<(f64, f64)> {
    let n = y.len();
    if n < 5 {
        return None;
    }
    y.sort_by(f64::total_cmp);
    let a0 = y.iter().sum::<f64>() / n as f64;
    // a1 = (1/n) Σ_j (n − j)/(n − 1) · y_(j), j = 1..n ascending (Hosking & Wallis).
    let a1 = y
        .iter()
        .enumerate()
        .map(|(i, v)| (n - 1 - i) as f64 / (n - 1) as f64 * v)
        .sum::<f64>()
        / n as f64;
    let d = a0 - 2.0 * a1;
    if d <= 0.0 || !d.is_finite() {
        return None;
    }
    let k = a0 / d - 2.0;
    let scale = 2.0 * a0 * a1 / d;
    (scale > 0.0 && k.is_finite()).then_some((-k, scale))
}

/// The threshold index and excesses for `sorted` (ascending): the largest 10 %, at
/// least 15 and at most half.
fn excesses(sorted: &[f64]) -> (f64, Vec<f64>) {
    let n = sorted.len();
    let k = (n / 10).max(15).min(n / 2);
    let u = sorted[n - k - 1];
    let y = sorted[n - k..]
        .iter()
        .map(|x| x - u)
        .filter(|y| *y > 0.0)
        .collect();
    (u, y)
}

/// Fits the tail of `samples`; `None` with fewer than [`MIN_SAMPLES`] or a degenerate
/// sample (ties at the top, no spread). `seed` seeds the bootstrap.
pub fn fit(samples: &[Duration], seed: u64) -> Option<TailFit> {
    let mut v: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    if v.len() < MIN_SAMPLES {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let (u, mut y) = excesses(&v);
    let exceedances = y.len();
    let (shape, scale) = pwm(&mut y)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut shapes = Vec::with_capacity(BOOTSTRAP);
    let mut resample = vec![0.0; v.len()];
    for _ in 0..BOOTSTRAP {
        for r in resample.iter_mut() {
            *r = v[rng.random_range(0..v.len())];
        }
        resample.sort_by(f64::total_cmp);
        let (_, mut y) = excesses(&resample);
        if let Some((s, _)) = pwm(&mut y) {
            shapes.push(s);
        }
    }
    shapes.sort_by(f64::total_cmp);
    let q = |p: f64| {
        shapes
            .get(((p * shapes.len() as f64) as usize).min(shapes.len().saturating_sub(1)))
            .copied()
            .unwrap_or(shape)
    };
    Some(TailFit {
        threshold_s: u,
        exceed_fraction: exceedances as f64 / v.len() as f64,
        exceedances,
        shape,
        scale_s: scale,
        shape_interval: (q(0.05), q(0.95)),
        max_s: None,
    })
}

impl TailFit {
    /// Fitted on fewer than [`FEW_EXCEEDANCES`] values: the tail, and so the risk,
    /// is uncertain.
    pub fn uncertain(&self) -> bool {
        self.exceedances < FEW_EXCEEDANCES
    }

    /// The shape the verdict uses: the point estimate, or with an
    /// [uncertain](Self::uncertain) fit the upper end of its 90 % interval.
    pub fn verdict_shape(&self) -> f64 {
        if self.uncertain() {
            self.shape.max(self.shape_interval.1)
        } else {
            self.shape
        }
    }

    /// P(excess over the threshold > `x − threshold`), untruncated.
    fn tail_survival(&self, x: f64) -> f64 {
        let z = ((x - self.threshold_s) / self.scale_s).max(0.0);
        if self.shape.abs() < 1e-9 {
            (-z).exp()
        } else {
            let base = 1.0 + self.shape * z;
            if base <= 0.0 {
                0.0 // beyond a bounded tail's end
            } else {
                base.powf(-1.0 / self.shape)
            }
        }
    }

    /// P(a pause lasts longer than `x` seconds), for `x` at or above the threshold
    /// (0 at or above `max_s`: a longer draw is clamped there, as the runs clamp it).
    pub fn exceedance(&self, x: f64) -> f64 {
        if x <= self.threshold_s {
            return self.exceed_fraction;
        }
        if self.max_s.is_some_and(|m| x >= m) {
            return 0.0;
        }
        self.exceed_fraction * self.tail_survival(x)
    }

    /// The pause length exceeded on average once in `pauses` pauses (seconds; at
    /// most `max_s`).
    pub fn return_level(&self, pauses: f64) -> f64 {
        let p = (1.0 / pauses.max(1.0)) / self.exceed_fraction;
        if p >= 1.0 {
            return self.threshold_s;
        }
        let excess = if self.shape.abs() < 1e-9 {
            -self.scale_s * p.ln()
        } else {
            self.scale_s / self.shape * (p.powf(-self.shape) - 1.0)
        };
        (self.threshold_s + excess).min(self.max_s.unwrap_or(f64::INFINITY))
    }

    /// The tail as the simulator draws it (uncapped: the pause fault's `pause_max`
    /// clamps the draws).
    pub fn sample_tail(&self) -> SampleTail {
        SampleTail {
            threshold_s: self.threshold_s,
            shape: self.shape,
            scale_s: self.scale_s,
        }
    }

    /// Draws one pause from the fitted tail (above the threshold), seconds.
    pub fn sample_excess<R: Rng>(&self, rng: &mut R) -> f64 {
        self.sample_tail().at(rng.random())
    }
}

/// The risk of one setting against the fitted tail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Risk {
    /// Steady silence to convict (after the last ack, steady rhythm), seconds.
    pub silence_to_convict_s: f64,
    /// The median pause needed to convict, seconds: shorter than the silence to
    /// convict, since a pause starts some time after each monitor's last ack (see
    /// [`super::check`]).
    pub pause_to_convict_s: f64,
    /// Its 1st percentile: the shortest pause that convicts at an unlucky phase.
    pub pause_to_convict_p01_s: f64,
    /// False convictions expected per member-year: pauses per member-year times the
    /// chance that a pause outlasts the pause needed to convict (at most one conviction
    /// per pause).
    pub per_member_year: f64,
    /// `per_member_year` at the ends of the shape's 90 % interval (the scale held):
    /// how much the extrapolation depends on the tail's shape.
    pub per_member_year_interval: (f64, f64),
    /// The same for the whole cluster per year.
    pub per_cluster_year: f64,
    /// `per_cluster_year` over the shape's interval.
    pub per_cluster_year_interval: (f64, f64),
    /// What `tune`'s verdict compares with `--max-risk`: false convictions per
    /// cluster-year at [`TailFit::verdict_shape`] (the point estimate, or the upper end
    /// of the shape's interval for an uncertain fit).
    pub verdict_per_cluster_year: f64,
    /// The shortest pause that convicts (`pause_to_convict_p01_s`) minus the pause
    /// exceeded once a cluster-year, seconds.
    pub margin_s: f64,
}

/// P(a pause lasts longer than `x` seconds): the fitted tail at or above its
/// threshold; below it, the fraction of `body` (the measured pauses, ascending) above
/// `x`, or the tail's exceedance fraction if `body` is empty.
pub fn exceedance(fit: &TailFit, body: &[f64], x: f64) -> f64 {
    if x >= fit.threshold_s || body.is_empty() {
        return fit.exceedance(x);
    }
    let above = body.len() - body.partition_point(|v| *v <= x);
    above as f64 / body.len() as f64
}

/// The risk of a setting whose pauses needed to convict are `needed`
/// ([`super::check::pause_to_convict`]), for `rate_per_min` pauses per node per minute
/// on `nodes` nodes; `body` holds the measured pauses (seconds, ascending), for what
/// lies below the tail's threshold.
pub fn risk(
    fit: &TailFit,
    body: &[f64],
    needed: &PauseToConvict,
    rate_per_min: f64,
    nodes: usize,
) -> Risk {
    let pauses_per_member_year = rate_per_min * 60.0 * 24.0 * 365.0;
    let at_shape = |shape: f64| {
        let f = TailFit {
            shape,
            ..fit.clone()
        };
        pauses_per_member_year * needed.convict_probability(|x| exceedance(&f, body, x))
    };
    let per_member_year = at_shape(fit.shape);
    let (a, b) = (
        at_shape(fit.shape_interval.0),
        at_shape(fit.shape_interval.1),
    );
    let n = nodes.max(1) as f64;
    let cluster_year = pauses_per_member_year * n;
    let verdict = if fit.verdict_shape() == fit.shape {
        per_member_year
    } else {
        at_shape(fit.verdict_shape())
    };
    Risk {
        silence_to_convict_s: needed.steady_s,
        pause_to_convict_s: needed.p50_s,
        pause_to_convict_p01_s: needed.p01_s,
        per_member_year,
        per_member_year_interval: (a.min(b), a.max(b)),
        per_cluster_year: per_member_year * n,
        per_cluster_year_interval: (a.min(b) * n, a.max(b) * n),
        verdict_per_cluster_year: verdict * n,
        margin_s: needed.p01_s - fit.return_level(cluster_year),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic pauses: a body below 0.1 s, then a generalized Pareto tail with a
    /// known shape and scale above it.
    fn synthetic(shape: f64, scale: f64, n: usize, seed: u64) -> Vec<Duration> {
        let fit = TailFit {
            threshold_s: 0.1,
            exceed_fraction: 1.0,
            exceedances: 0,
            shape,
            scale_s: scale,
            shape_interval: (shape, shape),
            max_s: None,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n)
            .map(|_| Duration::from_secs_f64(fit.sample_excess(&mut rng)))
            .collect()
    }

    #[test]
    fn the_fit_recovers_known_parameters() {
        for (shape, scale) in [(0.0, 0.3), (0.25, 0.2), (-0.2, 0.5)] {
            let samples = synthetic(shape, scale, 20_000, 7);
            let f = fit(&samples, 1).expect("a fit");
            // Above its own threshold a GPD is a GPD with the same shape.
            assert!(
                (f.shape - shape).abs() < 0.08,
                "shape {} vs {shape}",
                f.shape
            );
            assert!(f.shape_interval.0 <= f.shape && f.shape <= f.shape_interval.1);
            // The level exceeded once in 10,000 pauses, against the truth.
            let truth = 0.1
                + if shape == 0.0 {
                    -scale * (1e-4f64).ln()
                } else {
                    scale / shape * ((1e-4f64).powf(-shape) - 1.0)
                };
            let got = f.return_level(1e4);
            assert!(
                (got / truth - 1.0).abs() < 0.2,
                "return level {got} vs {truth}"
            );
        }
    }

    #[test]
    fn too_few_samples_give_no_fit() {
        assert!(fit(&synthetic(0.1, 0.2, MIN_SAMPLES - 1, 1), 1).is_none());
    }

    #[test]
    fn risk_falls_with_the_silence_to_convict() {
        let f = fit(&synthetic(0.1, 0.2, 5_000, 3), 1).unwrap();
        let short = risk(&f, &[], &PauseToConvict::naive(1.0), 2.0, 100);
        let long = risk(&f, &[], &PauseToConvict::naive(5.0), 2.0, 100);
        assert!(short.per_member_year > long.per_member_year);
        assert!(long.margin_s > short.margin_s);
        assert!((short.per_cluster_year - 100.0 * short.per_member_year).abs() < 1e-9);
        let (lo, hi) = short.per_member_year_interval;
        assert!(lo <= short.per_member_year * 1.000_001 && short.per_member_year <= hi * 1.000_001);
    }

    #[test]
    fn a_cap_bounds_the_tail_risk() {
        let mut f = fit(&synthetic(0.5, 0.3, 2_000, 4), 1).unwrap();
        assert!(f.return_level(1e9) > 100.0);
        f.max_s = Some(10.0);
        assert_eq!(f.return_level(1e9), 10.0);
        assert_eq!(f.exceedance(10.0), 0.0);
        assert!(f.exceedance(5.0) > 0.0 && f.exceedance(5.0) < f.exceedance(2.0));
        // A setting whose shortest convicting pause is above the cap runs no risk.
        let r = risk(&f, &[], &PauseToConvict::naive(11.0), 30.0, 100);
        assert_eq!(r.per_cluster_year, 0.0);
    }

    #[test]
    fn an_uncertain_fit_judges_by_the_heavy_end_of_its_interval() {
        let f = fit(&synthetic(0.3, 0.3, 100, 2), 1).unwrap();
        assert!(f.uncertain(), "{} exceedances", f.exceedances);
        assert!(f.verdict_shape() >= f.shape);
        let r = risk(&f, &[], &PauseToConvict::naive(2.0), 30.0, 100);
        assert!(r.verdict_per_cluster_year >= r.per_cluster_year);
        let g = fit(&synthetic(0.3, 0.3, 1_000, 2), 1).unwrap();
        assert!(!g.uncertain());
        assert_eq!(g.verdict_shape(), g.shape);
    }
}
