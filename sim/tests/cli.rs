//! The command line: `run --json` honours the JSON contract (../shared/DESIGN.md),
//! `sweep` prints a table, JSON, CSV and draws an SVG, `tune` prints a config.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rumor-sim");

/// 20 nodes, 2 minutes, two crashes and some pauses: every percentile has samples.
const SCENARIO: &str = r#"
name = "cli"
nodes = 20
duration = "2m"
[network]
loss = 0.01
[[faults]]
kind = "crash"
targets = { nodes = [4] }
at = "50s"
[[faults]]
kind = "crash"
targets = { nodes = [13] }
at = "70s"
[[faults]]
kind = "pause"
targets = { all = true }
poisson = { rate_per_min = 1.0, from = "20s", to = "2m" }
pause = { dist = "exponential", mean = "300ms" }
"#;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rumor-sim-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn scenario_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("scenario.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "rumor-sim {args:?} failed: {stderr}\n{stdout}"
    );
    (stdout, stderr)
}

fn is_percentile_set(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        ["p50", "p99", "max"]
            .iter()
            .all(|k| o.get(*k).is_some_and(|x| x.is_null() || x.is_number()))
    })
}

/// Checks every field of the run contract, with its type.
fn check_contract(v: &Value) {
    let o = v.as_object().expect("one JSON object");
    let string = ["scenario", "trace_hash"];
    let uint = [
        "seed",
        "nodes",
        "false_convictions",
        "false_suspicions",
        "false_dead_verdicts",
        "crashes",
        "detected",
        "pauses",
        "max_packet_bytes",
        "events",
        "wall_ms",
        "unhealed_partitions",
    ];
    let number = [
        "sim_seconds",
        "msgs_per_node_per_sec",
        "bytes_per_node_per_sec",
    ];
    let percentiles = [
        "detection_ms",
        "first_suspicion_ms",
        "dissemination_ms",
        "heal_ms",
    ];
    for k in string {
        assert!(
            o.get(k).is_some_and(Value::is_string),
            "{k}: {:?}",
            o.get(k)
        );
    }
    for k in uint {
        assert!(o.get(k).is_some_and(Value::is_u64), "{k}: {:?}", o.get(k));
    }
    for k in number {
        assert!(
            o.get(k).is_some_and(Value::is_number),
            "{k}: {:?}",
            o.get(k)
        );
    }
    for k in percentiles {
        assert!(
            o.get(k).is_some_and(is_percentile_set),
            "{k}: {:?}",
            o.get(k)
        );
    }
    let hash = o["trace_hash"].as_str().unwrap();
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{hash}"
    );
}

#[test]
fn run_json_has_every_contract_field() {
    let dir = tmp_dir("run");
    let sc = scenario_file(&dir, SCENARIO);
    let sc = sc.to_str().unwrap();
    let (out, err) = run(&["run", "--scenario", sc, "--seed", "3", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("stdout is exactly one JSON object");
    check_contract(&v);
    assert_eq!(v["scenario"], "cli");
    assert_eq!(v["seed"], 3);
    assert_eq!(v["nodes"], 20);
    assert_eq!(v["crashes"], 2);
    assert!(v["detection_ms"]["p50"].is_number(), "{v}");
    assert!(v["pauses"].as_u64().unwrap() > 0);
    // No partition: no heal sample, null rather than 0.
    assert!(v["heal_ms"]["p50"].is_null(), "{v}");
    assert_eq!(v["unhealed_partitions"], 0);
    // The seed and the reproducing command are echoed on stderr.
    assert!(err.contains("--seed 3"), "{err}");

    // --nodes/--duration/--set apply; an empty percentile is null, never 0.
    let (out, _) = run(&[
        "run",
        "--scenario",
        sc,
        "--nodes",
        "10",
        "--duration",
        "40s",
        "--set",
        "acceptable_pause=2s",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    check_contract(&v);
    assert_eq!(v["nodes"], 10);
    assert_eq!(v["sim_seconds"], 40.0);
    assert_eq!(v["crashes"], 0);
    assert!(v["detection_ms"]["p50"].is_null(), "{v}");
    assert!(v["detection_ms"]["max"].is_null(), "{v}");

    // An unknown --set path fails and lists the valid ones.
    let out = Command::new(BIN)
        .args(["run", "--scenario", sc, "--set", "acceptable_pauze=1s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("acceptable_pause"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sweep_runs_the_grid_in_order_and_plots() {
    let dir = tmp_dir("sweep");
    let sc = scenario_file(&dir, SCENARIO);
    let sc = sc.to_str().unwrap();
    let svg = dir.join("plot.svg");
    let args = [
        "sweep",
        "--scenario",
        sc,
        "--grid",
        "acceptable_pause=1s,3s",
        "--grid",
        "phi_convict=8,12",
        "--seeds",
        "2",
        "--set",
        "duration=100s",
        "--jobs",
        "2",
    ];
    let mut json_args = args.to_vec();
    json_args.extend(["--json", "--plot", svg.to_str().unwrap()]);
    let (out, err) = run(&json_args);
    assert!(err.contains("rumor-sim sweep"), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let points = v["sweep"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    let settings: Vec<(String, String)> = points
        .iter()
        .map(|p| {
            (
                p["settings"]["acceptable_pause"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                p["settings"]["phi_convict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [("1s", "8"), ("1s", "12"), ("3s", "8"), ("3s", "12")];
    for (got, want) in settings.iter().zip(expect) {
        assert_eq!((got.0.as_str(), got.1.as_str()), want);
    }
    for p in points {
        let reports = p["reports"].as_array().unwrap();
        assert_eq!(reports.len(), 2);
        // Seeds 1 and 2 (the scenario's seed and the next), in order.
        assert_eq!(reports[0]["seed"], 1);
        assert_eq!(reports[1]["seed"], 2);
        for r in reports {
            check_contract(r);
        }
        let sum: u64 = reports
            .iter()
            .map(|r| r["false_convictions"].as_u64().unwrap())
            .sum();
        assert_eq!(p["false_convictions"].as_u64().unwrap(), sum);
        // The aggregate p99 is the worst run's.
        let worst = reports
            .iter()
            .filter_map(|r| r["detection_ms"]["p99"].as_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(p["detection_ms"]["p99"].as_f64().unwrap(), worst);
        assert!(is_percentile_set(&p["detection_ms"]));
    }
    // The same sweep on one thread gives the same numbers (wall time aside).
    let mut one = args.to_vec();
    one.push("--json");
    if let Some(j) = one.iter().position(|a| *a == "--jobs") {
        one[j + 1] = "1";
    }
    let (out1, _) = run(&one);
    let strip = |s: &str| {
        let mut v: Value = serde_json::from_str(s).unwrap();
        for p in v["sweep"].as_array_mut().unwrap() {
            for r in p["reports"].as_array_mut().unwrap() {
                r.as_object_mut().unwrap().remove("wall_ms");
            }
        }
        v["sweep"].clone()
    };
    assert_eq!(strip(&out), strip(&out1));

    // The SVG exists, is an SVG, and has the points and their labels.
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.len() > 2_000, "{} bytes", text.len());
    assert!(text.starts_with("<svg"));
    assert!(text.trim_end().ends_with("</svg>"));
    assert!(text.contains("acceptable_pause=3s phi_convict=12"));
    assert!(text.contains("detection latency p99 (s)"));
    assert!(text.matches("<circle").count() >= 4);

    // CSV: a header with the grid paths, then one row per run.
    let mut csv_args = args.to_vec();
    csv_args.push("--csv");
    let (csv, _) = run(&csv_args);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 8);
    assert!(lines[0].starts_with("acceptable_pause,phi_convict,scenario,seed,"));
    assert!(
        lines[0].contains(",heal_p50_ms,heal_p99_ms,heal_max_ms,unhealed_partitions,"),
        "{}",
        lines[0]
    );
    let cols = lines[0].split(',').count();
    assert!(lines[1..].iter().all(|l| l.split(',').count() == cols));
    assert!(lines[1].starts_with("1s,8,cli,1,"));

    // The table has one row per grid point.
    let (table, _) = run(&args);
    assert!(table.contains("acceptable_pause") && table.contains("det p99 ms"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tune_prints_a_config_that_survives_the_pauses() {
    let dir = tmp_dir("tune");
    let pauses = dir.join("pauses.txt");
    std::fs::write(
        &pauses,
        "# measured GC pauses, ms\n120\n340\n80\n\n900 # full GC\n450\n",
    )
    .unwrap();
    let (out, err) = run(&[
        "tune",
        "--pauses",
        pauses.to_str().unwrap(),
        "--nodes",
        "12",
        "--target-hours",
        "1",
        "--seeds",
        "1",
        "--steps",
        "4",
        "--budget-runs",
        "6",
        "--crashes",
        "2",
        "--json",
    ]);
    assert!(err.contains("rumor-sim tune --pauses"), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nodes"], 12);
    assert_eq!(v["pause_model"], "5 measured pauses");
    assert_eq!(v["pause_quantiles"]["expected_max"], 0.9);
    // 1 member-hour over the 10 nodes that do not crash.
    assert_eq!(v["sim_seconds"], 360.0);
    let chosen = v["chosen"].as_u64().expect("a setting passes") as usize;
    let c = &v["candidates"][chosen];
    assert_eq!(c["false_convictions"], 0);
    assert!(c["passed"].as_bool().unwrap());
    assert!(c["margin_s"].as_f64().unwrap() >= 0.0);
    // Overlapping pauses merge into one stall, so the longest may exceed 900 ms.
    assert!(c["longest_pause_ms"].as_f64().unwrap() >= 80.0);
    let toml = v["toml"].as_str().unwrap();
    assert!(
        toml.starts_with("[config]\nacceptable_pause = \""),
        "{toml}"
    );
    assert!(toml.contains("phi_convict = "), "{toml}");
    let rust = v["rust"].as_str().unwrap();
    assert!(
        rust.contains("let mut cfg = rumor::Config::lan();"),
        "{rust}"
    );
    assert!(
        rust.contains("cfg.acceptable_pause = Duration::from_millis("),
        "{rust}"
    );
    let strategies: Vec<&str> = v["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(strategies, ["swim", "lifeguard", "phi-monitors"]);
    for s in v["strategies"].as_array().unwrap() {
        assert!(s["silence_to_convict_s"][0].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["false_convictions"].is_u64());
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `cargo install` gives a binary without the repository: canned scenarios are
/// embedded, by name or by their repository path, from any directory.
#[test]
fn canned_scenarios_run_from_anywhere() {
    let dir = tmp_dir("canned");
    for scenario in ["crash", "sim/scenarios/crash.toml"] {
        let out = Command::new(BIN)
            .current_dir(&dir)
            .args([
                "run",
                "--scenario",
                scenario,
                "--nodes",
                "12",
                "--duration",
                "40s",
                "--json",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{scenario}: {stderr}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["command"].as_str().unwrap().contains("--scenario crash "),
            "{v}"
        );
    }
    let out = Command::new(BIN)
        .current_dir(&dir)
        .args(["run", "--scenario", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a canned scenario") && stderr.contains("steady"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// CSV through a real CSV writer: a scenario name with a comma and a quote stays one
/// field.
#[test]
fn csv_quotes_what_needs_quoting() {
    let dir = tmp_dir("csvq");
    let text = SCENARIO
        .replace("name = \"cli\"", "name = 'a, \"b\"'")
        .replace("duration = \"2m\"", "duration = \"30s\"");
    let path = scenario_file(&dir, &text);
    let (out, _) = run(&["run", "--scenario", path.to_str().unwrap(), "--csv"]);
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].len(), header.len());
    assert_eq!(&rows[0][0], "a, \"b\"");
    std::fs::remove_dir_all(&dir).ok();
}

/// `tune` refuses a file in seconds that does not say so, and warns on a tiny one
/// (a setting chosen from 4 samples used to come without a word).
#[test]
fn tune_checks_its_pauses_file() {
    let dir = tmp_dir("tune-input");
    let secs = dir.join("secs.txt");
    std::fs::write(&secs, "0.012\n0.340\n0.080\n0.900\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "tune",
            "--pauses",
            secs.to_str().unwrap(),
            "--budget-runs",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("look like seconds") && err.contains("--pauses-unit s"),
        "{err}"
    );
    let tiny = dir.join("tiny.txt");
    std::fs::write(&tiny, "# unit: ms\n120\n340\n80\n900\n").unwrap();
    // A short tune session (one seed, two steps, two runs) on the file at `p`.
    let quick_tune = |p: &Path| {
        run(&[
            "tune",
            "--pauses",
            p.to_str().unwrap(),
            "--nodes",
            "10",
            "--target-hours",
            "1",
            "--seeds",
            "1",
            "--steps",
            "2",
            "--budget-runs",
            "2",
            "--no-compare",
        ])
    };
    let (_, err) = quick_tune(&tiny);
    assert!(
        err.contains("# warning:") && err.contains("only 4 pauses"),
        "{err}"
    );
    // A Prometheus scrape of /metrics is read as pauses, with its window as the rate.
    let scrape = dir.join("metrics.txt");
    let mut text = String::from("# TYPE rumor_timer_lateness_seconds histogram\n");
    for (le, n) in [
        ("0.005", 900),
        ("0.01", 930),
        ("0.5", 960),
        ("1", 990),
        ("+Inf", 990),
    ] {
        text.push_str(&format!(
            "rumor_timer_lateness_seconds_bucket{{le=\"{le}\"}} {n}\n"
        ));
    }
    text.push_str("rumor_observed_seconds_total 3600\n");
    std::fs::write(&scrape, text).unwrap();
    let (_, err) = quick_tune(&scrape);
    assert!(err.contains("from 1 histogram series"), "{err}");
    // 90 pauses in an hour on one node.
    assert!(
        err.contains("1.500 pauses per node per minute over 1.00 node-hour(s)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// With a fitted tail, a setting that misses a crash does not pass, and when nothing
/// meets the target `tune` exits 3 naming the closest setting and its risk (it used to
/// exit 0 with a setting whose own risk line said thousands a cluster-year).
#[test]
fn tune_exits_3_when_no_setting_meets_the_target() {
    let dir = tmp_dir("tune-none");
    let p = dir.join("pauses.txt");
    // 40 pauses in 2 minutes: mostly short, a few of 0.2-1 s and 1.5-2.4 s.
    let mut text =
        String::from("# unit: ms\n# observed_seconds: 120\n# nodes: 1\n# pauses_in_window: 40\n");
    for i in 0..40u32 {
        let v = match i % 10 {
            3 if i < 30 => 200.0 + 25.0 * f64::from(i),
            7 => 1500.0 + 25.0 * f64::from(i),
            _ => 10.0 + 2.0 * f64::from(i),
        };
        text.push_str(&format!("{v}\n"));
    }
    std::fs::write(&p, text).unwrap();
    // Pauses up to 250 s: only a silence to convict above that meets the risk target,
    // and a crash in a 300 s run is then never detected.
    let out = Command::new(BIN)
        .args([
            "tune",
            "--pauses",
            p.to_str().unwrap(),
            "--pause-max",
            "250s",
            "--nodes",
            "10",
            "--target-hours",
            "0.5",
            "--seeds",
            "1",
            "--steps",
            "3",
            "--phi",
            "8",
            "--crashes",
            "1",
            "--budget-runs",
            "2",
            "--no-compare",
            "--json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("WARNING: the tail rests on only"), "{err}");
    assert!(
        err.contains("error: no setting met the target")
            && err.contains("closest: acceptable_pause"),
        "{err}"
    );
    let v: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(v["rule"], "risk");
    assert_eq!(v["max_risk"], 0.1);
    assert_eq!(v["pause_max_s"], 250.0);
    assert!(v["chosen"].is_null());
    let missed: Vec<&Value> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["detected"].as_u64() < c["crashes"].as_u64())
        .collect();
    assert!(!missed.is_empty(), "{v}");
    for c in missed {
        assert_eq!(c["false_convictions"], 0);
        assert_eq!(
            c["passed"], false,
            "a setting that missed a crash passed: {c}"
        );
        assert!(c["failed"].as_str().unwrap().contains("crashes missed"));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `--seed-list` is one value parsed into a list (clap once panicked at run time on
/// it, in both commands that take it).
#[test]
fn seed_lists_are_taken_as_given() {
    let dir = tmp_dir("seed-list");
    let sc = scenario_file(&dir, SCENARIO);
    let sc = sc.to_str().unwrap();
    let (out, _) = run(&[
        "sweep",
        "--scenario",
        sc,
        "--grid",
        "acceptable_pause=2s",
        "--seed-list",
        "3,5",
        "--set",
        "duration=20s",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sweep"][0]["seeds"], serde_json::json!([3, 5]), "{out}");
    let out = Command::new(BIN)
        .args(["tune", "--scenario", sc, "--seed-list", "4", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(BIN)
        .args([
            "tune",
            "--scenario",
            sc,
            "--seed-list",
            "4",
            "--nodes",
            "10",
            "--target-hours",
            "0.1",
            "--budget-runs",
            "1",
            "--no-compare",
            "--steps",
            "1",
            "--phi",
            "8",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("seeds [4]") || String::from_utf8_lossy(&out.stdout).contains("seeds [4]"),
        "{err}"
    );
}
