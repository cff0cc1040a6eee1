//! The `rumor-sim` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rumor_sim::scenario::{Scenario, parse_set};
use rumor_sim::sweep::{self, GridAxis, Sweep, parse_grid, parse_seed_list};
use rumor_sim::tune::{self, TuneOptions};

#[derive(Parser)]
#[command(
    name = "rumor-sim",
    version,
    about = "Deterministic simulator for rumor clusters"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and report.
    Run(RunArgs),
    /// Run a grid of settings × seeds in parallel and compare them.
    Sweep(SweepArgs),
    /// Find the fastest-detecting thresholds that survive a pause model.
    Tune(TuneArgs),
}

/// `--seed-list 1,2,7`: one value that the parser turns into a list. Named, because
/// clap's derive reads a literal `Option<Vec<T>>` as a repeated flag of `T` and then
/// panics at run time when the parser hands it a `Vec`.
type SeedList = Vec<u64>;

#[derive(clap::Args)]
struct SweepArgs {
    #[command(flatten)]
    sc: ScenarioArgs,
    /// A grid axis: path=v1,v2,... (repeatable; the product of all axes is run).
    #[arg(long = "grid", value_parser = parse_grid)]
    grids: Vec<GridAxis>,
    /// Run each grid point with this many seeds: the scenario's seed, seed+1, ...
    #[arg(long, default_value_t = 1, conflicts_with = "seed_list")]
    seeds: u64,
    /// Run each grid point with exactly these seeds, e.g. 1,2,7.
    #[arg(long, value_parser = parse_seed_list)]
    seed_list: Option<SeedList>,
    /// Print one JSON object: {"sweep": [...], "command": ...}.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV: one row per run (grid values, then the run columns).
    #[arg(long)]
    csv: bool,
    /// Also draw detection latency p99 against false convictions into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Worker threads (default: available parallelism).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(clap::Args)]
struct TuneArgs {
    /// Measured pauses: a file as `Handle::write_pauses` and `rumor-node --pauses`
    /// write it (a `# unit:` and observation-window header, then one pause per line;
    /// without a unit, milliseconds), or a Prometheus scrape of rumor-node's
    /// `/metrics` (one or several pods', concatenated). Its window sets the pause rate
    /// unless --pause-rate is given.
    #[arg(long, conflicts_with = "pause_dist")]
    pauses: Option<PathBuf>,
    /// Draw the measured pauses' tail against the fitted one into this SVG file (with
    /// 30 or more measured pauses).
    #[arg(long, value_name = "FILE.svg", requires = "pauses")]
    tail_plot: Option<PathBuf>,
    /// The unit of the --pauses file's values, if the file does not say.
    #[arg(long, value_enum, requires = "pauses")]
    pauses_unit: Option<tune::PauseUnit>,
    /// A pause distribution: fixed:value=2s, exponential:mean=1s,
    /// pareto:scale=500ms,shape=1.5 or lognormal:median=1s,sigma=0.8.
    #[arg(long, value_parser = tune::parse_pause_dist)]
    pause_dist: Option<rumor_sim::scenario::PauseDist>,
    /// Pauses per minute per node (Poisson arrivals) [default: the scenario's, else 2].
    #[arg(long)]
    pause_rate: Option<f64>,
    /// Uniform packet loss [default: the scenario's, else 0.01].
    #[arg(long)]
    loss: Option<f64>,
    /// Cluster size [default: the scenario's, else 100].
    #[arg(long)]
    nodes: Option<usize>,
    /// Member-hours each run must survive with zero false convictions.
    #[arg(long, default_value_t = 100.0)]
    target_hours: f64,
    /// Seeds per candidate: 1, 2, ... N.
    #[arg(long, default_value_t = 2, conflicts_with = "seed_list")]
    seeds: u64,
    /// Exactly these seeds, e.g. 1,2,7.
    #[arg(long, value_parser = parse_seed_list)]
    seed_list: Option<SeedList>,
    /// Base scenario (its pause and crash faults are replaced; other faults, partitions,
    /// network and config are kept).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Override any config or scenario field of the base: path=value (repeatable).
    #[arg(long = "set", value_parser = parse_set)]
    sets: Vec<(String, String)>,
    /// phi_convict values to try, e.g. 8,12.
    #[arg(long, default_value = "8,12", value_delimiter = ',')]
    phi: Vec<f64>,
    /// acceptable_pause grid steps (geometric, from the model's median to twice its
    /// expected longest pause).
    #[arg(long, default_value_t = 8)]
    steps: usize,
    /// Most simulation runs the search may use; the strategy comparison adds 2 × seeds.
    #[arg(long, default_value_t = 24)]
    budget_runs: usize,
    /// Longest run in node-seconds (nodes × simulated seconds); longer runs are capped.
    #[arg(long, default_value_t = 720_000.0)]
    max_node_seconds: f64,
    /// Crashes per run (distinct nodes, random times) to measure detection.
    #[arg(long, default_value_t = 3)]
    crashes: usize,
    /// Skip the swim / lifeguard / phi-monitors comparison.
    #[arg(long)]
    no_compare: bool,
    /// A setting passes only if its silence to convict exceeds the longest stall
    /// sampled by at least this much [default: one probe interval, the most a pause's
    /// phase relative to the probes adds to the silence it causes].
    #[arg(long, value_parser = parse_dur)]
    min_margin: Option<std::time::Duration>,
    /// Settings whose detection p99 is within this fraction of the fastest count as
    /// equally fast; among them the one with the most margin is chosen.
    #[arg(long, default_value_t = 0.1)]
    latency_tolerance: f64,
    /// With a fitted tail (30 or more measured pauses): the most predicted false
    /// convictions per cluster-year (for --nodes) a passing setting may have. The
    /// default, one in ten cluster-years, is a small fraction of the real host failures
    /// a cluster sees.
    #[arg(long, default_value_t = tune::DEFAULT_MAX_RISK)]
    max_risk: f64,
    /// With a fitted tail: the longest pause the runs draw and the risk model allows
    /// (the fitted tail is truncated there) [default: the larger of 4x the longest
    /// measured pause and 10s].
    #[arg(long, value_parser = parse_dur, requires = "pauses")]
    pause_max: Option<std::time::Duration>,
    /// Write the generated scenario (before the searched thresholds) to this file.
    #[arg(long)]
    write_scenario: Option<PathBuf>,
    /// Worker threads (default: available parallelism).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

/// The scenario and its overrides, shared by `run` and `sweep`.
#[derive(clap::Args)]
struct ScenarioArgs {
    /// Scenario: a TOML file, or the name of a canned one (embedded: crash,
    /// crash-process, gc-pauses, steady, ...; `sim/scenarios/NAME.toml` names it too).
    #[arg(long, default_value = "steady")]
    scenario: PathBuf,
    /// Cluster size (overrides the scenario).
    #[arg(long)]
    nodes: Option<usize>,
    /// Simulated duration, e.g. 10m (overrides the scenario).
    #[arg(long)]
    duration: Option<String>,
    /// Override any config or scenario field for every run: path=value (repeatable).
    #[arg(long = "set", value_parser = parse_set)]
    sets: Vec<(String, String)>,
}

impl ScenarioArgs {
    /// `--set` pairs with `--nodes` and `--duration` folded in.
    fn overrides(&self) -> Vec<(String, String)> {
        let mut sets = self.sets.clone();
        if let Some(n) = self.nodes {
            sets.push(("nodes".into(), n.to_string()));
        }
        if let Some(d) = &self.duration {
            sets.push(("duration".into(), d.clone()));
        }
        sets
    }
}

/// ` --set k=v` for each override, for the reproducing command.
fn set_flags(sets: &[(String, String)]) -> String {
    sets.iter()
        .map(|(k, v)| format!(" --set {k}={v}"))
        .collect()
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    sc: ScenarioArgs,
    /// Master seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the JSON report (exactly one object on stdout).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (header and one row).
    #[arg(long)]
    csv: bool,
    /// With --json: add `verdicts`, each false conviction named (member, life,
    /// observers, time, cause, how long it had been stalled).
    #[arg(long, requires = "json")]
    verdicts: bool,
}

fn main() {
    rumor_sim::hugepages::enable();
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Sweep(a) => sweep_cmd(a),
        Cmd::Tune(a) => tune_cmd(a),
    };
    std::process::exit(code);
}

fn run(a: RunArgs) -> i32 {
    let sets = a.sc.overrides();
    let source = match rumor_sim::canned::load(&a.sc.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let sc = match Scenario::parse(&source.text, &sets) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", source.name);
            return 2;
        }
    };
    let seed = a.seed.unwrap_or(sc.seed);
    let command = format!(
        "rumor-sim run --scenario {} --seed {seed}{}",
        source.name,
        set_flags(&sets)
    );
    eprintln!("# {command}");
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let report = match rumor_sim::run(&sc, seed, &command, |f| {
        bar.set_position((f * 1000.0) as u64)
    }) {
        Ok(mut r) => {
            if a.verdicts {
                r.verdicts = Some(r.wrong.clone());
            }
            r
        }
        Err(e) => {
            bar.finish_and_clear();
            eprintln!("error: {e}");
            return 2;
        }
    };
    bar.finish_and_clear();
    if a.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    } else if a.csv {
        match rumor_sim::report::csv(std::slice::from_ref(&report)) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    } else {
        println!("{}", report.table());
    }
    0
}

fn parse_dur(s: &str) -> Result<std::time::Duration, String> {
    rumor::duration::parse_duration(s)
        .ok_or_else(|| format!("{s:?}: expected a duration such as 500ms or 1s"))
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} runs, {elapsed} elapsed, eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn sweep_cmd(a: SweepArgs) -> i32 {
    let base = a.sc.overrides();
    let (name, text) = match rumor_sim::canned::load(&a.sc.scenario) {
        Ok(s) => (PathBuf::from(s.name), s.text),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let seeds = match &a.seed_list {
        Some(l) => l.clone(),
        None => match Scenario::parse(&text, &base) {
            Ok(sc) => (0..a.seeds.max(1))
                .map(|i| sc.seed.wrapping_add(i))
                .collect(),
            Err(e) => {
                eprintln!("error: {}: {e}", name.display());
                return 2;
            }
        },
    };
    let sw = match Sweep::new(&name, &text, &base, a.grids.clone(), seeds.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut command = format!("rumor-sim sweep --scenario {}", name.display());
    for g in &a.grids {
        command.push_str(&format!(" --grid {}={}", g.path, g.values.join(",")));
    }
    let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    command.push_str(&format!(" --seed-list {}", list.join(",")));
    command.push_str(&set_flags(&base));
    if let Some(p) = &a.plot {
        command.push_str(&format!(" --plot {}", p.display()));
    }
    if a.json {
        command.push_str(" --json");
    } else if a.csv {
        command.push_str(" --csv");
    }
    let jobs = a.jobs.unwrap_or_else(sweep::default_jobs).max(1);
    eprintln!("# {command}");
    eprintln!(
        "# {} grid point(s) × {} seed(s) = {} runs on {jobs} thread(s)",
        sw.points.len(),
        seeds.len(),
        sw.jobs.len()
    );
    let bar = progress_bar(sw.jobs.len() as u64);
    let result = sw.run(jobs, |_| bar.inc(1));
    bar.finish_and_clear();
    let points = match result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Some(path) = &a.plot {
        let title = format!(
            "{}: detection p99 vs false convictions ({} seed(s) per setting)",
            sw.jobs.first().map_or("", |j| j.scenario.name.as_str()),
            seeds.len()
        );
        match rumor_sim::plot::plot(path, &title, &rumor_sim::plot::points_of(&points)) {
            Ok(n) => eprintln!("# plot: {} ({n} point(s))", path.display()),
            Err(e) => {
                eprintln!("error: plot: {e}");
                return 1;
            }
        }
    }
    if a.json {
        let doc = sweep::SweepJson {
            sweep: &points,
            command: &command,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    } else if a.csv {
        match sweep::csv(&sw.axes, &points) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    } else {
        println!("{}", sweep::table(&sw.axes, &points));
    }
    0
}

fn tune_cmd(a: TuneArgs) -> i32 {
    let mut measured_rate = None;
    let pause = match (&a.pauses, &a.pause_dist) {
        (Some(p), _) => match tune::read_pauses(p, a.pauses_unit) {
            Ok((m, notes)) => {
                for n in notes {
                    eprintln!("# {}: {n}", p.display());
                }
                for w in m.warnings() {
                    eprintln!("# warning: {}: {w}", p.display());
                }
                if let (Some(rate), Some(hours)) = (m.rate_per_min(), m.node_hours()) {
                    eprintln!(
                        "# {}: {rate:.3} pauses per node per minute over {hours:.2} node-hour(s)",
                        p.display()
                    );
                    measured_rate = Some(rate);
                }
                Some(rumor_sim::scenario::PauseDist::Samples {
                    values: m.values,
                    tail: None,
                })
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        (None, d) => d.clone(),
    };
    let base = match &a.scenario {
        Some(p) => match rumor_sim::canned::load(p) {
            Ok(s) => Some((PathBuf::from(s.name), s.text)),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        None => None,
    };
    let seeds = a
        .seed_list
        .clone()
        .unwrap_or_else(|| (1..=a.seeds.max(1)).collect());
    let o = TuneOptions {
        base,
        pause,
        pause_rate_per_min: a.pause_rate.or(measured_rate),
        loss: a.loss,
        nodes: a.nodes,
        target_hours: a.target_hours,
        seeds: seeds.clone(),
        phis: a.phi.clone(),
        steps: a.steps,
        budget_runs: a.budget_runs,
        jobs: a.jobs.unwrap_or_else(sweep::default_jobs).max(1),
        max_node_seconds: a.max_node_seconds,
        crashes: a.crashes,
        no_compare: a.no_compare,
        min_margin: a.min_margin,
        latency_tolerance: a.latency_tolerance,
        sets: a.sets.clone(),
        max_risk: a.max_risk,
        pause_max: a.pause_max,
    };
    let mut command = "rumor-sim tune".to_string();
    if let Some((name, _)) = &o.base {
        command.push_str(&format!(" --scenario {}", name.display()));
    }
    if let Some(p) = &a.pauses {
        command.push_str(&format!(" --pauses {}", p.display()));
    }
    if let Some(u) = a.pauses_unit {
        command.push_str(match u {
            tune::PauseUnit::Ms => " --pauses-unit ms",
            tune::PauseUnit::S => " --pauses-unit s",
        });
    }
    if let Some(d) = &a.pause_dist {
        command.push_str(&format!(" --pause-dist {}", tune::describe(d)));
    }
    if let Some(r) = a.pause_rate {
        command.push_str(&format!(" --pause-rate {r}"));
    }
    if let Some(l) = a.loss {
        command.push_str(&format!(" --loss {l}"));
    }
    if let Some(n) = a.nodes {
        command.push_str(&format!(" --nodes {n}"));
    }
    let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let phis: Vec<String> = a.phi.iter().map(f64::to_string).collect();
    command.push_str(&format!(
        " --target-hours {} --seed-list {} --phi {} --steps {} --budget-runs {} --max-node-seconds {} --crashes {} --latency-tolerance {}",
        a.target_hours,
        list.join(","),
        phis.join(","),
        a.steps,
        a.budget_runs,
        a.max_node_seconds,
        a.crashes,
        a.latency_tolerance
    ));
    if let Some(m) = a.min_margin {
        command.push_str(&format!(" --min-margin {}", rumor::duration::fmt_dur(m)));
    }
    if a.pauses.is_some() {
        command.push_str(&format!(" --max-risk {}", a.max_risk));
    }
    if let Some(m) = a.pause_max {
        command.push_str(&format!(" --pause-max {}", rumor::duration::fmt_dur(m)));
    }
    for (k, v) in &a.sets {
        command.push_str(&format!(" --set {k}={v}"));
    }
    if a.no_compare {
        command.push_str(" --no-compare");
    }
    if a.json {
        command.push_str(" --json");
    }
    eprintln!("# {command}");
    if let Some(path) = &a.write_scenario {
        match tune::Plan::new(&o) {
            Ok(plan) => {
                if plan.samples.is_some() {
                    eprintln!(
                        "# note: measured pauses cannot be written to a scenario file; it holds a `samples` placeholder"
                    );
                }
                if let Err(e) = std::fs::write(path, &plan.text) {
                    eprintln!("error: {}: {e}", path.display());
                    return 2;
                }
                eprintln!("# scenario written to {}", path.display());
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    }
    let total = a.budget_runs + if a.no_compare { 0 } else { 2 * seeds.len() };
    // The budget bounds the search, which usually stops well before it: a bar with
    // an ETA against the budget would read "6/24, eta 87s" when the search is done.
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {pos} run(s) so far, at most {len} (the search stops once it has its answer), {elapsed}",
    ) {
        bar.set_style(style);
    }
    let log = |line: &str| bar.suspend(|| eprintln!("# {line}"));
    let result = tune::tune(&o, &command, &|| bar.inc(1), &log);
    bar.finish_and_clear();
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Some(path) = &a.tail_plot {
        match (&r.tail, &o.pause) {
            (Some(fit), Some(rumor_sim::scenario::PauseDist::Samples { values, .. })) => {
                let title = "measured pauses against the fitted tail";
                if let Err(e) = rumor_sim::plot::tail_plot(path, title, values, fit) {
                    eprintln!("error: {e}");
                    return 2;
                }
                eprintln!("# tail plot: {}", path.display());
            }
            _ => eprintln!("# no tail plot: fewer than 30 measured pauses, so no fit"),
        }
    }
    if a.json {
        match serde_json::to_string_pretty(&r) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", tune::render(&r));
    }
    match (r.chosen, &r.closest) {
        (Some(_), _) => 0,
        (None, closest) => {
            eprintln!(
                "error: no setting met the target{}{}",
                r.max_risk.map_or(String::new(), |m| format!(
                    " (at most {m} predicted false convictions per cluster-year, none in the runs, every crash detected)"
                )),
                closest
                    .as_ref()
                    .map_or(String::new(), |c| format!("; closest: {c}"))
            );
            NO_SETTING
        }
    }
}

/// `tune`'s exit status when no setting meets the target (2 is a usage or input error).
const NO_SETTING: i32 = 3;
