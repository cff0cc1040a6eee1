//! `rumor-node doctor`: reads a Kubernetes manifest (Deployments and StatefulSets,
//! several documents a file) and what the rumor-node container would run with, and
//! reports what is wrong with the line and the fix, like a compiler. `docs/doctor.md`
//! explains each rule.
//!
//! It lives in the binary operators already deploy, and reads the container's args
//! with the node's own parser and config loader ([`node_args`]), so what it checks is
//! exactly what the node would run.
//!
//! Exit status: 0 clean (warnings allowed), 1 at least one error-level finding, 2 a
//! usage or input error (unreadable or malformed files, nothing to check).

mod manifest;
mod node_args;
mod pauses;
mod report;
mod rules;
mod yaml;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rumor::duration::parse_duration;

use manifest::{Container, Spanned, Workload};
use node_args::{ContainerEnv, Guess, NodeArgsError, node_settings};
use report::{Checked, Report, Severity};
use rules::Target;

/// Exit status: a finding at error level.
const EXIT_FINDINGS: u8 = 1;
/// Exit status: bad usage or input.
const EXIT_INPUT: u8 = 2;

/// Checks a Kubernetes manifest that runs rumor-node: probe paths, startup, timeouts,
/// drain and grace period, CPU limits, auth in front of the health routes, and the
/// config's convict time against measured pauses. Prints `FILE:LINE: error[RULE]:
/// message` and a fix for each finding; exits 0 clean, 1 on errors, 2 on bad input.
#[derive(Debug, Parser)]
#[command(name = "rumor-node doctor", bin_name = "rumor-node doctor", version)]
struct DoctorArgs {
    /// The manifest: YAML, one or more documents; Deployments and StatefulSets are
    /// checked, other kinds skipped.
    #[arg(long, value_name = "FILE", required_unless_present = "list_rules")]
    manifest: Option<PathBuf>,

    /// The file the container's `--config` loads (the path in the manifest is inside
    /// the container): its `[config]` and `[node]` tables count as the node's would.
    /// Without it, a `--config` in the args is reported and the settings are read
    /// without the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Measured pauses, as `rumor-node --pauses FILE` writes them: the config's
    /// silence to convict must exceed the largest by a probe interval.
    #[arg(long, value_name = "FILE")]
    pauses: Option<PathBuf>,

    /// The container to check in each workload [default: the only one, else the one
    /// whose image or command is rumor-node].
    #[arg(long, value_name = "NAME")]
    container: Option<String>,

    /// The longest a health handler may take to answer; every probe's timeoutSeconds
    /// must exceed it. rumor's handlers wait for nothing (they read cached state), so
    /// the default is the stall of a busy process a probe must survive.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = duration)]
    handler_worst_case: Duration,

    /// One JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// Print every rule's id and what it checks, and exit.
    #[arg(long)]
    list_rules: bool,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?}: expected a duration like 500ms or 1s"))
}

/// Runs `rumor-node doctor`; `argv` starts with `doctor` (the program name of this
/// subcommand), then its flags.
pub fn run(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match DoctorArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            // --help and --version print to stdout and exit 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_INPUT));
        }
    };
    if args.list_rules {
        for (id, what) in rules::RULES {
            println!("{id:<30} {what}");
        }
        return ExitCode::SUCCESS;
    }
    match doctor(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.human());
            }
            if report.count(Severity::Error) > 0 {
                ExitCode::from(EXIT_FINDINGS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("rumor-node doctor: {e}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

/// Reads the inputs and runs every rule; `Err` is a usage or input error.
fn doctor(args: &DoctorArgs) -> Result<Report, String> {
    let path = args
        .manifest
        .as_ref()
        .ok_or("--manifest FILE is required")?;
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let leaking = node_args::own_environment();
    if !leaking.is_empty() {
        return Err(format!(
            "{} set in this shell: the node's parser would read it as the container's; \
             unset it (the doctor reads the container's env from the manifest)",
            leaking.join(", ")
        ));
    }
    if let Some(c) = &args.config {
        // Unreadable here is the doctor's input error; a config that does not load is
        // a finding about the manifest (the node would refuse it too).
        std::fs::metadata(c).map_err(|e| format!("--config {}: {e}", c.display()))?;
    }
    let pauses = match &args.pauses {
        Some(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| format!("--pauses {name}: {e}"))?;
            let worst = pauses::worst(&text)
                .map_err(|e| format!("--pauses {name}: {e}"))?
                .ok_or_else(|| format!("--pauses {name}: no pause in the file"))?;
            Some((name, worst))
        }
        None => None,
    };
    let docs =
        yaml::load(&text).map_err(|e| format!("{file}:{}: not YAML: {}", e.line, e.message))?;
    let workloads =
        manifest::workloads(&docs).map_err(|e| format!("{file}:{}: {}", e.line, e.message))?;
    if workloads.is_empty() {
        return Err(format!(
            "{file}: no Deployment or StatefulSet (the kinds the doctor checks)"
        ));
    }
    let mut report = Report {
        manifest: file.clone(),
        checked: Vec::new(),
        skipped: Vec::new(),
    };
    for w in &workloads {
        let who = format!("{}/{}", w.kind, w.name);
        match pick(w, args.container.as_deref()) {
            Ok(c) => report
                .checked
                .push(check_container(args, w, c, pauses.as_ref())),
            Err(Pick::NotHere) => report.skipped.push(format!(
                "{who}: no container {:?}",
                args.container.as_deref().unwrap_or("")
            )),
            Err(Pick::Ambiguous(names)) => {
                return Err(format!(
                    "{file}:{}: {who} runs containers {}: pick the rumor-node one with --container NAME",
                    w.line,
                    names.join(", ")
                ));
            }
        }
    }
    if report.checked.is_empty() {
        return Err(format!(
            "{file}: no workload has a container {:?}",
            args.container.as_deref().unwrap_or("")
        ));
    }
    Ok(report)
}

enum Pick {
    NotHere,
    Ambiguous(Vec<String>),
}

/// The container to check: the one named, the only one, or the only one that runs
/// rumor-node (by image or command).
fn pick<'w>(w: &'w Workload, name: Option<&str>) -> Result<&'w Container, Pick> {
    let cs = &w.pod.containers;
    if let Some(name) = name {
        return cs.iter().find(|c| c.name == name).ok_or(Pick::NotHere);
    }
    if let [only] = cs.as_slice() {
        return Ok(only);
    }
    let runs_node = |c: &&Container| {
        c.image.as_deref().is_some_and(|i| i.contains("rumor-node"))
            || c.command
                .as_ref()
                .and_then(|cmd| cmd.first())
                .is_some_and(|c0| c0.value.ends_with("rumor-node"))
    };
    let mut found = cs.iter().filter(runs_node);
    match (found.next(), found.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(Pick::Ambiguous(cs.iter().map(|c| c.name.clone()).collect())),
    }
}

/// The container's flags as rumor-node sees them: after the program in `command` (when
/// it is rumor-node), then `args`, `$(VAR)` expanded from `env`; with the variables
/// whose values a stand-in replaced. `Err` holds a command that is not rumor-node.
fn flags_of(
    c: &Container,
    env: &ContainerEnv,
) -> Result<(Vec<Spanned<String>>, Vec<Guess>), String> {
    let mut flags = Vec::new();
    if let Some(cmd) = &c.command {
        match cmd.split_first() {
            Some((prog, rest)) if prog.value.rsplit('/').next() == Some("rumor-node") => {
                flags.extend(rest.iter().cloned());
            }
            Some((prog, _)) => return Err(prog.value.clone()),
            // `command: []` leaves the image's entrypoint (rumor-node's image).
            None => {}
        }
    }
    flags.extend(c.args.iter().cloned());
    let mut guessed: Vec<Guess> = Vec::new();
    let flags = flags
        .into_iter()
        .map(|f| {
            let (value, g) = env.expand(&f.value);
            guessed.extend(g);
            Spanned {
                value,
                line: f.line,
            }
        })
        .collect();
    Ok((flags, guessed))
}

/// `config-overridden`: the `--set` flags and `RUMOR_SET_*` variables that replace a
/// field the `--config` file's `[config]` table sets (to another text).
fn overridden(
    flags: &[Spanned<String>],
    env: &ContainerEnv,
    file: &std::path::Path,
) -> Vec<report::Finding> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let Ok(root) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(table) = root.get("config").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    let shown = file.display().to_string();
    let in_file = |field: &str| {
        let key = field.trim().to_ascii_lowercase().replace('-', "_");
        table.get(&key).map(|v| match v {
            toml::Value::String(s) => (key.clone(), s.clone()),
            other => (key.clone(), other.to_string()),
        })
    };
    let mut out = Vec::new();
    for (name, value) in env.for_node() {
        let Some(field) = name.strip_prefix("RUMOR_SET_") else {
            continue;
        };
        let (Some((key, file_value)), Some(line)) = (in_file(field), env.line_of(&name)) else {
            continue;
        };
        let value = value.unwrap_or_else(|| "(a value from valueFrom)".to_string());
        if value.trim() != file_value {
            out.push(rules::config_overridden(
                line,
                &format!("env {name}={value}"),
                &value,
                &key,
                &file_value,
                &shown,
            ));
        }
    }
    let mut i = 0;
    while i < flags.len() {
        let f = &flags[i];
        let set = if let Some(kv) = f.value.strip_prefix("--set=") {
            Some(kv.to_string())
        } else if f.value == "--set" {
            i += 1;
            flags.get(i).map(|n| n.value.clone())
        } else {
            None
        };
        i += 1;
        let Some((field, value)) = set.as_deref().and_then(|kv| kv.split_once('=')) else {
            continue;
        };
        if let Some((key, file_value)) = in_file(field)
            && value.trim() != file_value
        {
            out.push(rules::config_overridden(
                f.line,
                &format!("--set={field}={value}"),
                value,
                &key,
                &file_value,
                &shown,
            ));
        }
    }
    out
}

fn check_container(
    args: &DoctorArgs,
    w: &Workload,
    c: &Container,
    pauses: Option<&(String, pauses::Worst)>,
) -> Checked {
    let mut findings = Vec::new();
    let mut skipped = Vec::new();
    let args_line = c.args_line.unwrap_or(c.line);
    let env = ContainerEnv::new(&c.env);
    let mut guessed = env.guessed_for_node();
    let (flags, auth_flags) = match flags_of(c, &env) {
        Ok((all, g)) => {
            guessed.extend(g);
            all.into_iter()
                .partition(|f| !rules::is_auth_flag(&f.value))
        }
        Err(prog) => {
            let line = c
                .command
                .as_ref()
                .and_then(|cmd| cmd.first())
                .map_or(c.line, |p| p.line);
            findings.push(rules::not_rumor_node(line, &prog));
            (Vec::new(), Vec::new())
        }
    };
    let texts: Vec<String> = flags.iter().map(|f| f.value.clone()).collect();
    let node = if findings.is_empty() {
        match node_settings(&texts, &env.for_node(), args.config.as_deref()) {
            Ok(n) => {
                guessed.sort_by_key(|g| g.line);
                guessed.dedup_by(|a, b| a.name == b.name);
                for g in &guessed {
                    findings.push(rules::env_guessed(g.line, &g.name, g.from));
                }
                for name in &n.env_unread {
                    findings.push(rules::env_unread(c.line, name));
                }
                if let Some(file) = &args.config {
                    findings.extend(overridden(&flags, &env, file));
                }
                if let Some(p) = &n.config_unread {
                    let line = flags
                        .iter()
                        .find(|f| f.value.starts_with("--config"))
                        .map_or(args_line, |f| f.line);
                    findings.push(rules::config_unread(line, &p.display().to_string()));
                }
                Some(n)
            }
            Err(NodeArgsError::Refused(why)) => {
                findings.push(rules::args_refused(args_line, &why));
                None
            }
            Err(NodeArgsError::Config(why)) => {
                let line = flags
                    .iter()
                    .rev()
                    .find(|f| f.value.starts_with("--set") || f.value.starts_with("--config"))
                    .map_or(args_line, |f| f.line);
                findings.push(rules::config_invalid(line, &why));
                None
            }
        }
    } else {
        None
    };
    if node.is_none() {
        skipped.push(
            "startup budget, drain, grace period, probe ports, convict time (the node's flags \
             were not read)"
                .to_string(),
        );
    } else if pauses.is_none() {
        skipped.push("convict-below-pause (no --pauses FILE)".to_string());
    }
    let target = Target {
        workload: w,
        container: c,
        flags: &flags,
        auth_flags: &auth_flags,
        node: node.as_ref(),
        pauses: pauses.map(|(n, w)| (n.as_str(), w)),
        handler_worst_case: args.handler_worst_case,
    };
    findings.extend(rules::check(&target));
    findings.sort_by_key(|f| f.line);
    Checked {
        workload: format!("{}/{}", w.kind, w.name),
        container: c.name.clone(),
        line: c.line,
        findings,
        skipped,
    }
}
