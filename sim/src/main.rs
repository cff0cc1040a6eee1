//! The `rumor-sim` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rumor_sim::scenario::{Scenario, parse_set};

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
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario file (TOML).
    #[arg(long, default_value = "sim/scenarios/steady.toml")]
    scenario: PathBuf,
    /// Master seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Cluster size (overrides the scenario).
    #[arg(long)]
    nodes: Option<usize>,
    /// Simulated duration, e.g. 10m (overrides the scenario).
    #[arg(long)]
    duration: Option<String>,
    /// Override any config or scenario field: path=value (repeatable).
    #[arg(long = "set", value_parser = parse_set)]
    sets: Vec<(String, String)>,
    /// Print the JSON report (exactly one object on stdout).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (header and one row).
    #[arg(long)]
    csv: bool,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Run(a) => run(a),
    };
    std::process::exit(code);
}

fn run(a: RunArgs) -> i32 {
    let mut sets = a.sets.clone();
    if let Some(n) = a.nodes {
        sets.push(("nodes".into(), n.to_string()));
    }
    if let Some(d) = &a.duration {
        sets.push(("duration".into(), d.clone()));
    }
    let sc = match Scenario::load(&a.scenario, &sets) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let seed = a.seed.unwrap_or(sc.seed);
    let mut command = format!(
        "rumor-sim run --scenario {} --seed {seed}",
        a.scenario.display()
    );
    for (k, v) in &sets {
        command.push_str(&format!(" --set {k}={v}"));
    }
    eprintln!("# {command}");
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let report = match rumor_sim::run(&sc, seed, &command, |f| {
        bar.set_position((f * 1000.0) as u64)
    }) {
        Ok(r) => r,
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
        println!("{}", rumor_sim::report::Report::csv_header());
        println!("{}", report.csv_row());
    } else {
        println!("{}", report.table());
    }
    0
}
