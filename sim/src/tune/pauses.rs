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

/// Fewer measured pauses than this and `tune` refuses: there is nothing to choose from.
pub const MIN_PAUSES: usize = 3;

/// Fewer than this and `tune` warns: the search never tries a pause longer than the
/// largest measured, and a few samples say little about the tail.
pub const FEW_PAUSES: usize = 100;

/// The longest value a pauses file may hold: anything longer is not a pause (a wrong
/// unit, or a node that was stopped).
const MAX_PAUSE_MS: f64 = 3_600_000.0;

/// The unit of a pauses file's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PauseUnit {
    /// Milliseconds (what the runtime writes).
    Ms,
    /// Seconds.
    S,
}

impl PauseUnit {
    fn parse(s: &str) -> Option<PauseUnit> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ms" => Some(PauseUnit::Ms),
            "s" => Some(PauseUnit::S),
            _ => None,
        }
    }
}

/// A pauses file, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredPauses {
    /// The pauses listed.
    pub values: Vec<Duration>,
    /// `# observed_seconds:`: how long the nodes were watched.
    pub observed_seconds: Option<f64>,
    /// `# nodes:`: how many nodes the file covers (default 1).
    pub nodes: Option<u32>,
    /// `# pauses_in_window:`: every pause of the window, the listed ones being the
    /// latest of them (the runtime keeps at most 10,000).
    pub pauses_in_window: Option<u64>,
}

impl MeasuredPauses {
    /// Pauses per minute per node over the observation window, when the file states
    /// one.
    pub fn rate_per_min(&self) -> Option<f64> {
        let seconds = self.observed_seconds.filter(|s| *s > 0.0)?;
        let nodes = f64::from(self.nodes.unwrap_or(1).max(1));
        let count = self.pauses_in_window.unwrap_or(self.values.len() as u64) as f64;
        Some(count / (seconds / 60.0 * nodes))
    }

    /// Node-hours the file covers, when it states its window.
    pub fn node_hours(&self) -> Option<f64> {
        let seconds = self.observed_seconds?;
        Some(seconds / 3600.0 * f64::from(self.nodes.unwrap_or(1).max(1)))
    }

    /// What `tune` should say about this input before it searches.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let largest = self.values.iter().max().copied().unwrap_or_default();
        if self.values.len() < super::tail::MIN_SAMPLES {
            w.push(format!(
                "only {} pauses: too few to fit their tail (at least {}); the search tries no \
                 pause longer than the largest measured ({:.2}s); record for longer",
                self.values.len(),
                super::tail::MIN_SAMPLES,
                largest.as_secs_f64()
            ));
        } else if self.values.len() < FEW_PAUSES {
            w.push(format!(
                "only {} pauses: their tail is fitted from a handful of the largest, so it (and \
                 the risk) is uncertain; the runs draw pauses longer than the largest measured \
                 ({:.2}s) from the fit, up to --pause-max; record for longer",
                self.values.len(),
                largest.as_secs_f64()
            ));
        }
        if self.observed_seconds.is_none() {
            w.push(
                "the file states no observation window (# observed_seconds:): the pause \
                 rate is --pause-rate's or the scenario's, not measured"
                    .to_string(),
            );
        }
        w
    }
}

/// Parses a pauses file: a header of `# key: value` lines (`unit: ms|s`,
/// `observed_seconds`, `nodes`, `pauses_in_window`; other comments are ignored), then
/// one pause per line (decimals allowed). The unit is the header's, else `unit` (the
/// command line's), else milliseconds; both given must agree. Refused: values that
/// are not numbers, negative or longer than an hour; fewer than [`MIN_PAUSES`]; and,
/// with no unit stated, values that look like seconds (all below 1 with decimals:
/// [`rumor::detector::pauses_look_like_seconds`], the rule `rumor-node doctor` applies
/// too).
pub fn parse_pauses(text: &str, unit: Option<PauseUnit>) -> Result<MeasuredPauses, String> {
    let mut header_unit = None;
    let mut m = MeasuredPauses {
        values: Vec::new(),
        observed_seconds: None,
        nodes: None,
        pauses_in_window: None,
    };
    let mut raw = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let (data, comment) = match line.split_once('#') {
            Some((d, c)) => (d.trim(), Some(c.trim())),
            None => (line.trim(), None),
        };
        if data.is_empty() {
            if let Some((k, v)) = comment.and_then(|c| c.split_once(':')) {
                let (k, v) = (k.trim(), v.trim());
                let bad = |what: &str| format!("line {n}: {k}: {v:?} is not {what}");
                match k {
                    "unit" => {
                        header_unit = Some(PauseUnit::parse(v).ok_or_else(|| bad("ms or s"))?);
                    }
                    "observed_seconds" => {
                        let x: f64 = v.parse().map_err(|_| bad("a number of seconds"))?;
                        if !(x.is_finite() && x > 0.0) {
                            return Err(bad("a positive number of seconds"));
                        }
                        m.observed_seconds = Some(x);
                    }
                    "nodes" => {
                        let x: u32 = v.parse().map_err(|_| bad("a node count"))?;
                        if x == 0 {
                            return Err(bad("a node count above 0"));
                        }
                        m.nodes = Some(x);
                    }
                    "pauses_in_window" => {
                        m.pauses_in_window = Some(v.parse().map_err(|_| bad("a count of pauses"))?);
                    }
                    _ => {}
                }
            }
            continue;
        }
        let x: f64 = data
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("line {n}: {data:?} is not a pause (a number)"))?;
        raw.push((n, x, data));
    }
    let unit = match (header_unit, unit) {
        (Some(h), Some(c)) if h != c => {
            return Err(format!(
                "the file says its unit is {h:?} and --pauses-unit says {c:?}"
            ));
        }
        (h, c) => h.or(c),
    };
    if unit.is_none() && rumor::detector::pauses_look_like_seconds(raw.iter().map(|r| r.2)) {
        let largest = raw.iter().map(|r| r.1).fold(0.0, f64::max);
        return Err(format!(
            "the values look like seconds (the largest is {largest}), and a pauses file \
             is in milliseconds unless it says otherwise: add `# unit: s` to the file or \
             pass --pauses-unit s"
        ));
    }
    let scale = match unit {
        Some(PauseUnit::S) => 1e3,
        _ => 1.0,
    };
    for (n, x, _) in raw {
        let ms = x * scale;
        if ms > MAX_PAUSE_MS {
            return Err(format!(
                "line {n}: {x} is over an hour: not a pause (is the unit right?)"
            ));
        }
        m.values.push(Duration::from_secs_f64(ms / 1e3));
    }
    if m.values.len() < MIN_PAUSES {
        return Err(format!(
            "{} pause(s): too few to choose a setting from (at least {MIN_PAUSES}); record for longer",
            m.values.len()
        ));
    }
    Ok(m)
}

/// The most samples a Prometheus scrape is expanded to: beyond it every bucket's
/// count is scaled down alike (the shape is kept; the rate keeps the true count).
const MAX_SCRAPE_SAMPLES: u64 = 100_000;

/// Reads a Prometheus scrape (text exposition, e.g. `curl POD:8080/metrics` from each
/// pod, concatenated) as measured pauses: every `rumor_timer_lateness_seconds_bucket`
/// series' bucket counts above 5 ms (what a pauses file holds), each pause taken at
/// its bucket's upper bound (conservative: a pause in (1 s, 2 s] counts as 2 s; above
/// 60 s as 60 s, said in a warning), and the window from
/// `rumor_observed_seconds_total` summed over its series (one per node).
pub fn parse_prometheus(text: &str) -> Result<(MeasuredPauses, Vec<String>), String> {
    use std::collections::BTreeMap;
    const BUCKET: &str = "rumor_timer_lateness_seconds_bucket";
    const OBSERVED: &str = "rumor_observed_seconds_total";
    // Series (its labels but `le`) -> (le, cumulative count).
    let mut series: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let (mut observed, mut nodes) = (0.0f64, 0u32);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: {line:?} is not a sample line", i + 1);
        let (name_labels, rest) = match line.find('}') {
            Some(end) => line.split_at(end + 1),
            None => line.split_once(' ').ok_or_else(bad)?,
        };
        let value: f64 = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        let (name, labels) = match name_labels.split_once('{') {
            Some((n, l)) => (n.trim(), l.trim_end_matches('}')),
            None => (name_labels.trim(), ""),
        };
        if name == OBSERVED {
            observed += value.max(0.0);
            nodes += 1;
        } else if name == BUCKET {
            let mut le = None;
            let mut key = Vec::new();
            for kv in labels.split(',').filter(|kv| !kv.trim().is_empty()) {
                let (k, v) = kv.split_once('=').ok_or_else(bad)?;
                let v = v.trim().trim_matches('"');
                if k.trim() == "le" {
                    le = Some(if v == "+Inf" {
                        f64::INFINITY
                    } else {
                        v.parse::<f64>().map_err(|_| bad())?
                    });
                } else {
                    key.push(format!("{}={v}", k.trim()));
                }
            }
            let le = le.ok_or_else(|| format!("line {}: a bucket without `le`", i + 1))?;
            if !(value.is_finite() && value >= 0.0) {
                return Err(bad());
            }
            series
                .entry(key.join(","))
                .or_default()
                .push((le, value as u64));
        }
    }
    if series.is_empty() {
        return Err(format!(
            "no {BUCKET} lines: export rumor_timer_lateness_seconds as a histogram with \
             rumor::STALL_BUCKETS_SECONDS as its buckets (rumor-node does)"
        ));
    }
    // Pauses per bucket upper bound, summed over the series.
    let min = PAUSE_SAMPLE_MIN_SECS;
    let mut per_bound: BTreeMap<u64, u64> = BTreeMap::new(); // bound in µs -> count
    let mut over_60 = 0u64;
    for buckets in series.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut prev = 0u64;
        let mut prev_le = 0.0f64;
        for &(le, cum) in buckets.iter() {
            let n = cum.saturating_sub(prev);
            if prev_le >= min && n > 0 {
                let bound = if le.is_finite() {
                    le
                } else {
                    over_60 += n;
                    prev_le
                };
                *per_bound.entry((bound * 1e6).round() as u64).or_default() += n;
            }
            prev = cum;
            prev_le = le;
        }
    }
    let total: u64 = per_bound.values().sum();
    let scale = if total > MAX_SCRAPE_SAMPLES {
        MAX_SCRAPE_SAMPLES as f64 / total as f64
    } else {
        1.0
    };
    let mut values = Vec::new();
    for (&bound_us, &n) in &per_bound {
        let kept = ((n as f64 * scale).round() as u64).max(1);
        for _ in 0..kept {
            values.push(Duration::from_micros(bound_us));
        }
    }
    let mut notes = Vec::new();
    if total > MAX_SCRAPE_SAMPLES {
        notes.push(format!(
            "{total} pauses in the scrape, sampled down to {} (same shape; the rate counts all)",
            values.len()
        ));
    }
    notes.push(format!(
        "from {} histogram series: each pause taken at its bucket's upper bound{}",
        series.len(),
        if over_60 > 0 {
            format!(" ({over_60} above 60 s taken as 60 s)")
        } else {
            String::new()
        }
    ));
    if values.len() < MIN_PAUSES {
        return Err(format!(
            "{} pause(s) above 5 ms in the scrape: too few to choose a setting from (at least {MIN_PAUSES})",
            values.len()
        ));
    }
    let m = MeasuredPauses {
        values,
        observed_seconds: (nodes > 0 && observed > 0.0).then_some(observed / f64::from(nodes)),
        nodes: (nodes > 0).then_some(nodes),
        pauses_in_window: Some(total),
    };
    Ok((m, notes))
}

/// `PAUSE_SAMPLE_MIN` (5 ms), the least a pauses file holds, in seconds.
pub(super) const PAUSE_SAMPLE_MIN_SECS: f64 = 0.005;

/// Reads a pauses file (see [`parse_pauses`]).
/// A Prometheus scrape (it holds `rumor_timer_lateness_seconds_bucket` lines, see
/// [`parse_prometheus`]) or a pauses file (see [`parse_pauses`]), with notes on how a
/// scrape was read.
pub fn read_pauses(
    path: &Path,
    unit: Option<PauseUnit>,
) -> Result<(MeasuredPauses, Vec<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |e: String| format!("{}: {e}", path.display());
    if text.contains("rumor_timer_lateness_seconds_bucket") {
        if unit.is_some() {
            return Err(at(
                "a Prometheus scrape states its unit (seconds): drop --pauses-unit".into(),
            ));
        }
        return parse_prometheus(&text).map_err(at);
    }
    parse_pauses(&text, unit)
        .map(|m| (m, Vec::new()))
        .map_err(at)
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
        PauseDist::Samples { values, tail } => format!(
            "{} measured pauses{}",
            values.len(),
            if tail.is_some() {
                " with a fitted tail"
            } else {
                ""
            }
        ),
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
        PauseDist::Samples { values, tail: None } => {
            values.iter().map(Duration::as_secs_f64).collect()
        }
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
    let tail = if matches!(d, PauseDist::Samples { tail: None, .. }) {
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
