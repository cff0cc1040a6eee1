//! Parameter sweeps: a grid of `--set` values × seeds, run in parallel, aggregated per
//! grid point.
//!
//! Every run is an independent, deterministic [`crate::run`]; runs are spread over
//! threads with [`std::thread::scope`] and their results put back in job order, so the
//! output does not depend on which thread finished first.
//!
//! Aggregation per grid point (see [`PointSummary`]): counts are summed over the seeds;
//! `detection_ms.p50` is the median of the per-run medians, `detection_ms.p99` the
//! largest per-run p99 and `detection_ms.max` the largest per-run maximum (a run has only
//! a handful of crashes, so its p99 is close to its maximum; taking the worst run keeps
//! the tail honest); rates are means over the runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::oracle::Percentiles;
use crate::report::Report;
use crate::scenario::Scenario;

/// One `--grid path=v1,v2,...` axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridAxis {
    /// The `--set` path (config field or scenario field).
    pub path: String,
    /// The values to try, in the order given.
    pub values: Vec<String>,
}

/// Parses `path=v1,v2,...` (values are trimmed; empty values are rejected).
pub fn parse_grid(s: &str) -> Result<GridAxis, String> {
    let (path, vals) = s
        .split_once('=')
        .ok_or_else(|| format!("--grid {s:?}: expected path=v1,v2,..."))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(format!("--grid {s:?}: empty path"));
    }
    let values: Vec<String> = vals.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(format!("--grid {s:?}: empty value"));
    }
    Ok(GridAxis {
        path: path.to_string(),
        values,
    })
}

/// Parses a comma-separated seed list such as `1,2,7`.
pub fn parse_seed_list(s: &str) -> Result<Vec<u64>, String> {
    let seeds: Result<Vec<u64>, String> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| format!("--seed-list {s:?}: {x:?} is not a seed"))
        })
        .collect();
    let seeds = seeds?;
    if seeds.is_empty() {
        return Err("--seed-list: no seeds".into());
    }
    Ok(seeds)
}

/// The cartesian product of the axes: one `--set` list per grid point. The first axis
/// varies slowest, so points come out in the order the values were given.
pub fn grid_points(axes: &[GridAxis]) -> Vec<Vec<(String, String)>> {
    let mut points: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in axes {
        let mut next = Vec::with_capacity(points.len() * axis.values.len());
        for p in &points {
            for v in &axis.values {
                let mut q = p.clone();
                q.push((axis.path.clone(), v.clone()));
                next.push(q);
            }
        }
        points = next;
    }
    points
}

/// One simulation to run: a fully resolved scenario, a seed and its reproducing command.
#[derive(Clone, Debug)]
pub struct Job {
    /// The scenario with every override applied.
    pub scenario: Scenario,
    /// Master seed.
    pub seed: u64,
    /// The `rumor-sim run ...` command that reproduces this run.
    pub command: String,
}

/// Runs `jobs` on up to `threads` threads. Results come back in job order whatever the
/// completion order; `on_done(i)` is called (from a worker thread) when job `i` ends.
pub fn run_parallel(
    jobs: &[Job],
    threads: usize,
    on_done: impl Fn(usize) + Sync,
) -> Vec<Result<Report, String>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Report, String>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let threads = threads.clamp(1, jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = crate::run(&job.scenario, job.seed, &job.command, |_| {});
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                    on_done(i);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("worker thread panicked".to_string()))
        })
        .collect()
}

/// The default number of worker threads: the machine's available parallelism.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The `rumor-sim run` command that reproduces one run.
pub fn run_command(scenario: &Path, seed: u64, sets: &[(String, String)]) -> String {
    let mut c = format!(
        "rumor-sim run --scenario {} --seed {seed}",
        scenario.display()
    );
    for (k, v) in sets {
        c.push_str(&format!(" --set {k}={v}"));
    }
    c
}

/// A whole sweep, ready to run.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The grid axes, in the order given.
    pub axes: Vec<GridAxis>,
    /// Seeds each grid point runs with.
    pub seeds: Vec<u64>,
    /// One entry per grid point: its `--set` values (after the base overrides).
    pub points: Vec<Vec<(String, String)>>,
    /// Every run: point-major, then seed.
    pub jobs: Vec<Job>,
}

impl Sweep {
    /// Resolves every grid point of the scenario text `text` (read from `path`, echoed
    /// in commands) with the base overrides `base` followed by the point's values.
    /// Fails before anything runs if any point does not parse or validate.
    pub fn new(
        path: &Path,
        text: &str,
        base: &[(String, String)],
        axes: Vec<GridAxis>,
        seeds: Vec<u64>,
    ) -> Result<Sweep, String> {
        if seeds.is_empty() {
            return Err("a sweep needs at least one seed".into());
        }
        let points = grid_points(&axes);
        let mut jobs = Vec::with_capacity(points.len() * seeds.len());
        for p in &points {
            let mut sets = base.to_vec();
            sets.extend(p.iter().cloned());
            let sc = Scenario::parse(text, &sets).map_err(|e| {
                let at: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} at grid point {}: {e}", path.display(), at.join(" "))
            })?;
            for &seed in &seeds {
                jobs.push(Job {
                    scenario: sc.clone(),
                    seed,
                    command: run_command(path, seed, &sets),
                });
            }
        }
        Ok(Sweep {
            axes,
            seeds,
            points,
            jobs,
        })
    }

    /// Runs every job on `threads` threads and aggregates per grid point.
    pub fn run(
        &self,
        threads: usize,
        on_done: impl Fn(usize) + Sync,
    ) -> Result<Vec<PointSummary>, String> {
        let results = run_parallel(&self.jobs, threads, on_done);
        let mut reports = Vec::with_capacity(results.len());
        for (job, r) in self.jobs.iter().zip(results) {
            reports.push(r.map_err(|e| format!("{}: {e}", job.command))?);
        }
        let per = self.seeds.len();
        Ok(self
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| summarize(p, reports[i * per..(i + 1) * per].to_vec()))
            .collect())
    }
}

/// One grid point's runs and their aggregate.
#[derive(Clone, Debug, Serialize)]
pub struct PointSummary {
    /// The grid values of this point, by path.
    pub settings: BTreeMap<String, String>,
    /// The same values in grid order (for tables and CSV).
    #[serde(skip)]
    pub ordered: Vec<(String, String)>,
    /// Seeds run, in order.
    pub seeds: Vec<u64>,
    /// Number of runs (one per seed).
    pub runs: usize,
    /// Member-hours simulated, summed over the runs.
    pub member_hours: f64,
    /// False convictions, summed over the runs.
    pub false_convictions: u64,
    /// Of those, members convicted while paused, summed.
    pub paused_convictions: u64,
    /// False suspicions, summed.
    pub false_suspicions: u64,
    /// Crashes injected, summed.
    pub crashes: u64,
    /// Crashes detected by every live member, summed.
    pub detected: u64,
    /// Pauses injected, summed.
    pub pauses: u64,
    /// Detection latency: `p50` is the median of the per-run p50s, `p99` the largest
    /// per-run p99, `max` the largest per-run max; `null` when no run detected a crash.
    pub detection_ms: Percentiles,
    /// First suspicion after a crash, aggregated like `detection_ms`.
    pub first_suspicion_ms: Percentiles,
    /// Mean over the runs of datagrams sent per node per second.
    pub msgs_per_node_per_sec: f64,
    /// Mean over the runs of bytes sent per node per second.
    pub bytes_per_node_per_sec: f64,
    /// The per-seed reports (the run JSON contract), in seed order.
    pub reports: Vec<Report>,
}

/// Aggregates the reports of one grid point (see the module docs for the rules).
pub fn summarize(settings: &[(String, String)], reports: Vec<Report>) -> PointSummary {
    let n = reports.len().max(1) as f64;
    let agg = |get: &dyn Fn(&Report) -> Percentiles| {
        let p50s: Vec<f64> = reports.iter().filter_map(|r| get(r).p50).collect();
        let worst = |f: &dyn Fn(&Percentiles) -> Option<f64>| {
            reports
                .iter()
                .filter_map(|r| f(&get(r)))
                .max_by(f64::total_cmp)
        };
        Percentiles {
            p50: Percentiles::of(&p50s).p50,
            p99: worst(&|p| p.p99),
            max: worst(&|p| p.max),
        }
    };
    PointSummary {
        settings: settings.iter().cloned().collect(),
        ordered: settings.to_vec(),
        seeds: reports.iter().map(|r| r.seed).collect(),
        runs: reports.len(),
        member_hours: reports.iter().map(|r| r.member_hours).sum(),
        false_convictions: reports.iter().map(|r| r.false_convictions).sum(),
        paused_convictions: reports.iter().map(|r| r.paused_convictions).sum(),
        false_suspicions: reports.iter().map(|r| r.false_suspicions).sum(),
        crashes: reports.iter().map(|r| r.crashes).sum(),
        detected: reports.iter().map(|r| r.detected).sum(),
        pauses: reports.iter().map(|r| r.pauses).sum(),
        detection_ms: agg(&|r| r.detection_ms),
        first_suspicion_ms: agg(&|r| r.first_suspicion_ms),
        msgs_per_node_per_sec: reports.iter().map(|r| r.msgs_per_node_per_sec).sum::<f64>() / n,
        bytes_per_node_per_sec: reports
            .iter()
            .map(|r| r.bytes_per_node_per_sec)
            .sum::<f64>()
            / n,
        reports,
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.0}"))
}

impl PointSummary {
    /// A short label such as `acceptable_pause=2s phi_convict=8`.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self
            .ordered
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if parts.is_empty() {
            "(base)".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// The human table: one row per grid point.
pub fn table(axes: &[GridAxis], points: &[PointSummary]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    let mut header: Vec<String> = axes.iter().map(|a| a.path.clone()).collect();
    header.extend(
        [
            "runs",
            "member-h",
            "false conv (paused)",
            "false susp",
            "detected",
            "det p50 ms",
            "det p99 ms",
            "1st susp p50 ms",
            "msgs/node/s",
        ]
        .map(String::from),
    );
    t.set_header(header);
    for p in points {
        let mut row: Vec<String> = p.ordered.iter().map(|(_, v)| v.clone()).collect();
        row.extend([
            p.runs.to_string(),
            format!("{:.1}", p.member_hours),
            format!("{} ({})", p.false_convictions, p.paused_convictions),
            p.false_suspicions.to_string(),
            format!("{}/{}", p.detected, p.crashes),
            fmt_ms(p.detection_ms.p50),
            fmt_ms(p.detection_ms.p99),
            fmt_ms(p.first_suspicion_ms.p50),
            format!("{:.2}", p.msgs_per_node_per_sec),
        ]);
        t.add_row(row);
    }
    t.to_string()
}

/// CSV through the `csv` crate: a header, then one record per run (the grid values,
/// then [`Report::csv_fields`]).
pub fn csv(axes: &[GridAxis], points: &[PointSummary]) -> Result<String, String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let err = |e: ::csv::Error| e.to_string();
    let header: Vec<&str> = axes
        .iter()
        .map(|a| a.path.as_str())
        .chain(Report::CSV_COLUMNS)
        .collect();
    w.write_record(&header).map_err(err)?;
    for p in points {
        for r in &p.reports {
            let fields: Vec<String> = p
                .ordered
                .iter()
                .map(|(_, v)| v.clone())
                .chain(r.csv_fields())
                .collect();
            w.write_record(&fields).map_err(err)?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The JSON document: `{"sweep": [points...], "command": "..."}`.
#[derive(Serialize)]
pub struct SweepJson<'a> {
    /// One entry per grid point, in grid order.
    pub sweep: &'a [PointSummary],
    /// The command that reproduces the whole sweep.
    pub command: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_a_cartesian_product_in_given_order() {
        let axes = vec![
            parse_grid("a=1,2").unwrap(),
            parse_grid("b = x, y ,z").unwrap(),
        ];
        let p = grid_points(&axes);
        assert_eq!(p.len(), 6);
        assert_eq!(
            p[0],
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert_eq!(
            p[5],
            vec![("a".into(), "2".into()), ("b".into(), "z".into())]
        );
        assert_eq!(grid_points(&[]), vec![Vec::<(String, String)>::new()]);
        assert!(parse_grid("a").is_err());
        assert!(parse_grid("a=1,,2").is_err());
        assert_eq!(parse_seed_list("3, 1,2").unwrap(), vec![3, 1, 2]);
        assert!(parse_seed_list("1,x").is_err());
    }
}
