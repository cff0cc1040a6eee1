//! `tune`'s input: pause models and measured pauses parsed and checked, their
//! quantiles, and the grid of `acceptable_pause` values searched.

use std::path::Path;
use std::time::Duration;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rumor::duration::fmt_dur;
use serde::Serialize;

use crate::faults;

use crate::scenario::PauseDist;

/// Parses a pause model written `KIND:key=value,...`:
/// `fixed:value=2s`, `exponential:mean=1s`, `pareto:scale=500ms,shape=1.5`,
/// `lognormal:median=1s,sigma=0.8`.
pub fn parse_pause_dist(s: &str) -> Result<PauseDist, String> {
    let (kind, params) = s.split_once(':').unwrap_or((s, ""));
    let mut kv = std::collections::BTreeMap::new();
    for part in params.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("--pause-dist {s:?}: expected key=value, got {part:?}"))?;
        kv.insert(k.trim().to_string(), v.trim().to_string());
    }
    let dur = |k: &str| -> Result<crate::scenario::Dur, String> {
        let v = kv
            .get(k)
            .ok_or_else(|| format!("--pause-dist {s:?}: {kind} needs {k}=DURATION"))?;
        rumor::duration::parse_duration(v)
            .map(crate::scenario::Dur)
            .ok_or_else(|| format!("--pause-dist {s:?}: {k}={v:?} is not a duration"))
    };
    let num = |k: &str| -> Result<f64, String> {
        let v = kv
            .get(k)
            .ok_or_else(|| format!("--pause-dist {s:?}: {kind} needs {k}=NUMBER"))?;
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| format!("--pause-dist {s:?}: {k}={v:?} is not a positive number"))
    };
    let (d, keys): (PauseDist, &[&str]) = match kind.trim() {
        "fixed" => (
            PauseDist::Fixed {
                value: dur("value")?,
            },
            &["value"],
        ),
        "exponential" => (PauseDist::Exponential { mean: dur("mean")? }, &["mean"]),
        "pareto" => (
            PauseDist::Pareto {
                scale: dur("scale")?,
                shape: num("shape")?,
            },
            &["scale", "shape"],
        ),
        "lognormal" => (
            PauseDist::Lognormal {
                median: dur("median")?,
                sigma: num("sigma")?,
            },
            &["median", "sigma"],
        ),
        other => {
            return Err(format!(
                "--pause-dist {s:?}: unknown distribution {other:?}; use fixed:value=2s, \
                 exponential:mean=1s, pareto:scale=500ms,shape=1.5 or lognormal:median=1s,sigma=0.8"
            ));
        }
    };
    if let Some(extra) = kv.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(format!(
            "--pause-dist {s:?}: unknown parameter {extra:?} (expected {})",
            keys.join(", ")
        ));
    }
    Ok(d)
}

/// Parses a pauses file: one pause in milliseconds per line (decimals allowed); blank
/// lines and `#` comments are ignored.
pub fn parse_pauses(text: &str) -> Result<Vec<Duration>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let ms: f64 = line
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("line {}: {line:?} is not a pause in milliseconds", i + 1))?;
        out.push(Duration::from_secs_f64(ms / 1e3));
    }
    if out.is_empty() {
        return Err("no pauses in the file".into());
    }
    Ok(out)
}

/// Reads a pauses file (see [`parse_pauses`]).
pub fn read_pauses(path: &Path) -> Result<Vec<Duration>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_pauses(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Describes a pause model in the syntax `--pause-dist` reads.
pub fn describe(d: &PauseDist) -> String {
    match d {
        PauseDist::Fixed { value } => format!("fixed:value={}", fmt_dur(value.0)),
        PauseDist::Exponential { mean } => format!("exponential:mean={}", fmt_dur(mean.0)),
        PauseDist::Pareto { scale, shape } => {
            format!("pareto:scale={},shape={shape}", fmt_dur(scale.0))
        }
        PauseDist::Lognormal { median, sigma } => {
            format!("lognormal:median={},sigma={sigma}", fmt_dur(median.0))
        }
        PauseDist::Samples { values } => format!("{} measured pauses", values.len()),
    }
}

/// The model as a TOML inline table for a scenario file (`None` for measured samples,
/// which a scenario file cannot hold).
pub(super) fn dist_toml(d: &PauseDist) -> Option<String> {
    Some(match d {
        PauseDist::Fixed { value } => {
            format!("{{ dist = \"fixed\", value = \"{}\" }}", fmt_dur(value.0))
        }
        PauseDist::Exponential { mean } => {
            format!(
                "{{ dist = \"exponential\", mean = \"{}\" }}",
                fmt_dur(mean.0)
            )
        }
        PauseDist::Pareto { scale, shape } => format!(
            "{{ dist = \"pareto\", scale = \"{}\", shape = {shape:?} }}",
            fmt_dur(scale.0)
        ),
        PauseDist::Lognormal { median, sigma } => format!(
            "{{ dist = \"lognormal\", median = \"{}\", sigma = {sigma:?} }}",
            fmt_dur(median.0)
        ),
        PauseDist::Samples { .. } => return None,
    })
}

/// Quantiles of a pause model, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PauseQuantiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The quantile `1 − 1/pauses`: the expected longest of `pauses` draws.
    pub expected_max: f64,
    /// The number of pauses `expected_max` is computed for.
    pub pauses: f64,
}

/// Quantiles of `d` (exact for measured samples, else from 200,000 seeded draws), with
/// `expected_max` the expected longest of `pauses` draws.
pub fn quantiles(d: &PauseDist, pauses: f64) -> PauseQuantiles {
    let mut v: Vec<f64> = match d {
        PauseDist::Samples { values } => values.iter().map(Duration::as_secs_f64).collect(),
        _ => {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x7475_6e65);
            (0..200_000)
                .map(|_| faults::sample_pause(d, &mut rng).as_secs_f64())
                .collect()
        }
    };
    if v.is_empty() {
        v.push(0.0);
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    let tail = if matches!(d, PauseDist::Samples { .. }) {
        // Draws come from the measured values: the longest is the file's maximum.
        v[v.len() - 1]
    } else {
        q(1.0 - 1.0 / pauses.max(1.0))
    };
    PauseQuantiles {
        p50: q(0.5),
        p99: q(0.99),
        p999: q(0.999),
        expected_max: tail,
        pauses,
    }
}

/// `steps` values from `lo` to `hi`, spaced geometrically and rounded to two
/// significant digits in milliseconds, ascending and distinct, within 10 ms ..= 600 s.
pub fn pause_grid(lo: Duration, hi: Duration, steps: usize) -> Vec<Duration> {
    let lo_ms = (lo.as_secs_f64() * 1e3).clamp(10.0, 600_000.0);
    let hi_ms = (hi.as_secs_f64() * 1e3).clamp(lo_ms, 600_000.0);
    let steps = steps.max(2);
    let ratio = (hi_ms / lo_ms).powf(1.0 / (steps - 1) as f64);
    let mut out: Vec<Duration> = Vec::new();
    for i in 0..steps {
        let x = lo_ms * ratio.powi(i as i32);
        let mag = 10f64.powi(x.log10().floor() as i32 - 1).max(1.0);
        let ms = ((x / mag).round() * mag).clamp(10.0, 600_000.0);
        let d = Duration::from_millis(ms as u64);
        if out.last().is_none_or(|l| *l < d) {
            out.push(d);
        }
    }
    out
}

/// Rounds up to two significant digits in milliseconds (at least 10 ms, at most 600 s).
pub fn ceil_2_digits(d: Duration) -> Duration {
    let ms = (d.as_secs_f64() * 1e3).max(10.0);
    let mag = 10f64.powi(ms.log10().floor() as i32 - 1).max(1.0);
    Duration::from_millis(((ms / mag).ceil() * mag).min(600_000.0) as u64)
}
