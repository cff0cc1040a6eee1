//! The rules: each reads one container of one workload (and what the node would run
//! with) and says what is wrong, on which line, and what to write instead. The rule
//! ids are stable: scripts match on them (`--json`), and `docs/doctor.md` explains
//! each.

use std::time::Duration;

use rumor::detector::steady_silence_to_convict;
use rumor::duration::fmt_dur;
use rumor::{Config, RuntimeBuilder, Strategy};

use super::manifest::{Container, PortRef, Probe, Spanned, Workload};
use super::node_args::NodeSettings;
use super::pauses::Worst;
use super::report::{Finding, Severity};

/// Every rule id and what it checks, in the order `docs/doctor.md` lists them.
pub const RULES: [(&str, &str); 15] = [
    (
        "liveness-checks-dependencies",
        "liveness on /readyz, /startupz or a route that is not liveness-only",
    ),
    (
        "liveness-same-path",
        "liveness and readiness on the same path",
    ),
    (
        "startup-probe-missing",
        "seeds to wait for and no startup probe",
    ),
    (
        "startup-budget",
        "a startup probe that gives up before the seed retries with DNS misses are done",
    ),
    (
        "liveness-initial-delay",
        "initialDelaySeconds on liveness instead of a startup probe",
    ),
    (
        "probe-timeout",
        "a probe timeoutSeconds not above the handler's worst case",
    ),
    (
        "drain-short",
        "--drain shorter than readiness periodSeconds x failureThreshold",
    ),
    (
        "grace-short",
        "terminationGracePeriodSeconds shorter than preStop + drain + leave + exit",
    ),
    (
        "cpu-limit",
        "a CPU limit (CFS throttling stalls the process)",
    ),
    (
        "convict-below-pause",
        "the config's silence to convict below the worst measured pause plus a probe interval",
    ),
    (
        "health-auth",
        "probes that authenticate (headers, HTTPS, auth flags): health routes behind auth",
    ),
    (
        "probe-port",
        "probes that do not reach the node's --http server directly",
    ),
    (
        "node-args",
        "args rumor-node would refuse, or a command that is not rumor-node",
    ),
    (
        "node-config",
        "a config that does not load or validate, or one the doctor cannot read",
    ),
    (
        "config-overridden",
        "a --set flag or RUMOR_SET_ variable that replaces a field the --config file sets",
    ),
];

/// The resolver's timeout for one seed lookup (`RuntimeBuilder::resolve_timeout`'s
/// default, [`rumor::DEFAULT_RESOLVE_TIMEOUT`]; `rumor-node` has no flag for it): the
/// worst a DNS miss can cost when the server does not answer.
pub const RESOLVE_TIMEOUT: Duration = rumor::DEFAULT_RESOLVE_TIMEOUT;

/// DNS misses a startup probe must outlast. The seed task doubles its wait after each
/// miss up to 8 x `--seed-retry` (src/runtime/seeds.rs), reached at the fourth: a
/// budget for four misses covers the whole doubling phase. A new pod's record in a
/// headless Service (with publishNotReadyAddresses) appears within seconds, so more
/// misses than that are a DNS problem a restart may well fix.
pub const DNS_MISSES: u32 = 4;

/// Time for the process to exit once the driver has stopped, and for the kubelet's
/// own delays: the same 3 s as scripts/k8s/timing_rules.py, so that the two checkers
/// of examples/k8s agree. Exiting itself takes milliseconds (flush stdout, write
/// --pauses); the rest is slack for a loaded kubelet delivering SIGTERM late.
pub const EXIT_SLACK: Duration = Duration::from_secs(3);

/// What one check looks at.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The Deployment or StatefulSet.
    pub workload: &'a Workload,
    /// The rumor-node container.
    pub container: &'a Container,
    /// Its flags (command after `rumor-node`, then args), `$(VAR)` expanded.
    pub flags: &'a [Spanned<String>],
    /// Flags that look like health authentication, taken out before parsing.
    pub auth_flags: &'a [Spanned<String>],
    /// What the node runs with, when its flags parse.
    pub node: Option<&'a NodeSettings>,
    /// The pauses file's name and largest pause.
    pub pauses: Option<(&'a str, &'a Worst)>,
    /// `--handler-worst-case`.
    pub handler_worst_case: Duration,
}

/// Every finding for `t`, by line.
pub fn check(t: &Target<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    liveness_path(t, &mut out);
    startup(t, &mut out);
    liveness_initial_delay(t, &mut out);
    probe_timeouts(t, &mut out);
    if let Some(n) = t.node {
        drain(t, n, &mut out);
        grace(t, n, &mut out);
        if let Some((file, worst)) = t.pauses {
            convict(t, n, file, worst, &mut out);
        }
    }
    cpu_limit(t, &mut out);
    health_auth(t, &mut out);
    probe_port(t, &mut out);
    out.sort_by_key(|f| f.line);
    out
}

fn finding(
    rule: &'static str,
    severity: Severity,
    line: usize,
    message: String,
    fix: String,
) -> Finding {
    Finding {
        rule,
        severity,
        line,
        message,
        fix,
    }
}

/// The line of the last occurrence of `--name` (the value that wins).
fn flag_line(flags: &[Spanned<String>], name: &str) -> Option<usize> {
    let eq = format!("--{name}=");
    let bare = format!("--{name}");
    flags
        .iter()
        .rev()
        .find(|f| f.value == bare || f.value.starts_with(&eq))
        .map(|f| f.line)
}

fn args_line(t: &Target<'_>) -> usize {
    t.container.args_line.unwrap_or(t.container.line)
}

/// A path without its query or fragment, and without a trailing slash.
fn route(path: &str) -> &str {
    let p = path.split(['?', '#']).next().unwrap_or(path);
    let p = p.trim_end_matches('/');
    if p.is_empty() { "/" } else { p }
}

/// The last segments that name a liveness-only route on a server that is not
/// rumor-node's (`/livez`, `/health/live`, `/liveness`, `/alive`).
const LIVE_SEGMENTS: [&str; 4] = ["livez", "live", "liveness", "alive"];

fn probes(c: &Container) -> impl Iterator<Item = &Probe> {
    [&c.startup, &c.liveness, &c.readiness]
        .into_iter()
        .flatten()
}

fn port_number(c: &Container, p: &PortRef) -> Option<i64> {
    match p {
        PortRef::Number(n) => Some(*n),
        PortRef::Name(name) => c
            .ports
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name.as_str()))
            .map(|(_, p)| *p),
    }
}

/// How a probe should name the node's HTTP port: its containerPort's name, if any.
fn port_text(c: &Container, http_port: Option<u16>) -> String {
    let Some(hp) = http_port else {
        return "8080".to_string();
    };
    c.ports
        .iter()
        .find(|(_, p)| *p == i64::from(hp))
        .and_then(|(n, _)| n.clone())
        .unwrap_or_else(|| hp.to_string())
}

fn http_port(t: &Target<'_>) -> Option<u16> {
    t.node.and_then(|n| n.http).map(|a| a.port())
}

/// Seconds as an operator writes them, rounded up to 10 ms: `52s`, `4.53s`, `5.5s`
/// (the node's duration parser reads each back).
fn secs(d: Duration) -> String {
    let ms = round_up(d, Duration::from_millis(10)).as_millis();
    let text = format!("{}.{:02}", ms / 1000, ms % 1000 / 10);
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

fn round_up(d: Duration, step: Duration) -> Duration {
    let (n, s) = (d.as_nanos(), step.as_nanos().max(1));
    Duration::from_nanos(u64::try_from(n.div_ceil(s) * s).unwrap_or(u64::MAX))
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

// Rule 1: liveness-checks-dependencies, liveness-same-path.
fn liveness_path(t: &Target<'_>, out: &mut Vec<Finding>) {
    let c = t.container;
    let Some(h) = c.liveness.as_ref().and_then(Probe::http) else {
        return;
    };
    let path = route(h.path());
    let port = port_number(c, &h.port.value);
    let on_node = http_port(t).is_some_and(|hp| port == Some(i64::from(hp)));
    let ready = c.readiness.as_ref().and_then(Probe::http);
    let shared = ready.filter(|r| route(r.path()) == path && port_number(c, &r.port.value) == port);
    let also = if shared.is_some() {
        ", the readiness probe's path too"
    } else {
        ""
    };
    let why = match path {
        "/readyz" => Some(format!(
            "livenessProbe GETs /readyz{also}, which fails on membership (not joined, suspected \
             by peers lately, local health, leaving): a partition or a slow peer gets healthy \
             containers restarted, every pod at once"
        )),
        "/startupz" => Some(format!(
            "livenessProbe GETs /startupz{also}, which checks the join and the first sync, not \
             that the process runs: once started it never fails, and before that it restarts \
             a pod still looking for a seed"
        )),
        "/metrics" if on_node => Some(
            "livenessProbe GETs /metrics, which answers 200 whatever the state: a wedged \
             driver is never restarted"
                .to_string(),
        ),
        p if on_node && p != "/livez" => Some(format!(
            "livenessProbe GETs {p}, which rumor-node does not serve (it serves /livez, \
             /readyz, /startupz and /metrics): every probe gets 404 and the kubelet restarts \
             the container every failureThreshold periods"
        )),
        p if !LIVE_SEGMENTS.contains(&p.rsplit('/').next().unwrap_or_default()) => Some(format!(
            "livenessProbe GETs {p}{also}, not a liveness-only route: a route that checks \
             dependencies restarts the container when a dependency fails, which a restart \
             does not fix"
        )),
        _ => None,
    };
    if let Some(message) = why {
        out.push(finding(
            "liveness-checks-dependencies",
            Severity::Error,
            h.path_line(),
            message,
            "livenessProbe.httpGet.path: /livez (the driver's watchdog, in-process only); \
             readinessProbe keeps /readyz"
                .to_string(),
        ));
    } else if shared.is_some() {
        out.push(finding(
            "liveness-same-path",
            Severity::Error,
            h.path_line(),
            format!(
                "livenessProbe and readinessProbe both GET {path}: readiness then checks only \
                 that the process runs, so the pod takes traffic before it joined and while \
                 peers suspect it"
            ),
            "readinessProbe.httpGet.path: /readyz; livenessProbe keeps /livez".to_string(),
        ));
    }
}

/// How long the start may take to find a seed through [`DNS_MISSES`] misses, each a
/// lookup that times out then the seed task's wait, plus a join and the first sync
/// (two probe intervals: one join round trip and one push-pull).
pub fn seed_budget(n: &NodeSettings) -> Duration {
    let mut total = Duration::ZERO;
    for k in 0..DNS_MISSES {
        total = total
            .saturating_add(RESOLVE_TIMEOUT)
            .saturating_add(n.seed_retry.saturating_mul(1 << k.min(3)));
    }
    total.saturating_add(n.config.probe_interval.saturating_mul(2))
}

fn budget_text(n: &NodeSettings) -> String {
    format!(
        "{} through {DNS_MISSES} DNS misses: each a {} lookup timeout, then waits of \
         --seed-retry={} doubling to 8x, then a join and sync",
        secs(seed_budget(n)),
        fmt_dur(RESOLVE_TIMEOUT),
        fmt_dur(n.seed_retry)
    )
}

// Rule 2: startup-probe-missing, startup-budget.
fn startup(t: &Target<'_>, out: &mut Vec<Finding>) {
    let Some(n) = t.node else { return };
    if n.seeds == 0 {
        // Alone, the node starts at once: nothing slow to gate.
        return;
    }
    let c = t.container;
    let need = seed_budget(n);
    match &c.startup {
        None => {
            let ft = ceil_secs(need).div_ceil(5).max(1);
            out.push(finding(
                "startup-probe-missing",
                Severity::Error,
                c.line,
                format!(
                    "no startupProbe, and with --seeds the start waits for a seed's answer (up \
                     to {}): without a startup gate liveness runs from the first second (so it \
                     gets a guessed initialDelaySeconds), and a pod that never finds a peer is \
                     never restarted",
                    budget_text(n)
                ),
                format!(
                    "add startupProbe: {{httpGet: {{path: /startupz, port: {}}}, periodSeconds: \
                     5, timeoutSeconds: 2, failureThreshold: {ft}}}",
                    port_text(c, http_port(t))
                ),
            ));
        }
        Some(p) => {
            let budget = Duration::from_secs(
                p.initial_delay_s()
                    .saturating_add(p.failure_threshold().saturating_mul(p.period_s()))
                    .unsigned_abs(),
            );
            if budget < need {
                let period = p.period_s().max(1).unsigned_abs();
                let ft = ceil_secs(
                    need.saturating_sub(Duration::from_secs(p.initial_delay_s().unsigned_abs())),
                )
                .div_ceil(period)
                .max(1);
                out.push(finding(
                    "startup-budget",
                    Severity::Error,
                    p.failure.as_ref().map_or(p.line, |f| f.line),
                    format!(
                        "the startupProbe gives the start {} s (failureThreshold {} x \
                         periodSeconds {}{}), less than finding a seed may take ({}): a pod \
                         that meets a slow DNS is restarted before it joins, and restarted again",
                        budget.as_secs(),
                        p.failure_threshold(),
                        p.period_s(),
                        if p.initial_delay_s() > 0 {
                            format!(" + initialDelaySeconds {}", p.initial_delay_s())
                        } else {
                            String::new()
                        },
                        budget_text(n)
                    ),
                    format!("startupProbe.failureThreshold: {ft} ({ft} x {period} s covers it)"),
                ));
            }
        }
    }
}

// Rule 3: liveness-initial-delay.
fn liveness_initial_delay(t: &Target<'_>, out: &mut Vec<Finding>) {
    let Some(live) = &t.container.liveness else {
        return;
    };
    let Some(d) = live.initial_delay.as_ref().filter(|d| d.value > 0) else {
        return;
    };
    if t.container.startup.is_none() {
        out.push(finding(
            "liveness-initial-delay",
            Severity::Error,
            d.line,
            format!(
                "livenessProbe.initialDelaySeconds: {} guesses how long the start takes: a \
                 slower start is restarted in a loop, and every restart of the process goes \
                 {} s without a watchdog",
                d.value, d.value
            ),
            format!(
                "remove livenessProbe.initialDelaySeconds and add a startupProbe on /startupz \
                 (the kubelet holds liveness until it passes), port {}",
                port_text(t.container, http_port(t))
            ),
        ));
    } else {
        out.push(finding(
            "liveness-initial-delay",
            Severity::Warning,
            d.line,
            format!(
                "livenessProbe.initialDelaySeconds: {} beside a startupProbe: liveness already \
                 waits for startup to pass, so this only leaves the process without a \
                 watchdog {} s longer",
                d.value, d.value
            ),
            "remove livenessProbe.initialDelaySeconds".to_string(),
        ));
    }
}

// Rule 4: probe-timeout.
fn probe_timeouts(t: &Target<'_>, out: &mut Vec<Finding>) {
    let worst = t.handler_worst_case;
    for p in probes(t.container) {
        if p.http().is_none() {
            continue;
        }
        let timeout = Duration::from_secs(p.timeout_s().unsigned_abs());
        if timeout > worst {
            continue;
        }
        let unset = if p.timeout.is_none() {
            " (not set: the default)"
        } else {
            ""
        };
        out.push(finding(
            "probe-timeout",
            Severity::Error,
            p.timeout.as_ref().map_or(p.line, |s| s.line),
            format!(
                "{}.timeoutSeconds is {} s{unset}, not above the health handler's worst case \
                 of {} (--handler-worst-case): the kubelet's clock also counts the connect and \
                 the scheduling of a busy process, so an answer at the worst case fails the \
                 probe",
                p.kind.field(),
                p.timeout_s(),
                fmt_dur(worst)
            ),
            format!(
                "{}.timeoutSeconds: {}",
                p.kind.field(),
                worst.as_secs().saturating_add(1)
            ),
        ));
    }
}

// Rule 5: drain-short.
fn drain(t: &Target<'_>, n: &NodeSettings, out: &mut Vec<Finding>) {
    let Some(r) = &t.container.readiness else {
        return;
    };
    let need = Duration::from_secs(
        r.period_s()
            .saturating_mul(r.failure_threshold())
            .unsigned_abs(),
    );
    if n.drain >= need {
        return;
    }
    let (line, given) = match flag_line(t.flags, "drain") {
        Some(l) => (l, format!("--drain={}", fmt_dur(n.drain))),
        None => (
            args_line(t),
            format!("the default --drain of {}", fmt_dur(n.drain)),
        ),
    };
    out.push(finding(
        "drain-short",
        Severity::Error,
        line,
        format!(
            "{given} is shorter than the readiness probe's periodSeconds x failureThreshold = \
             {} x {} = {} s: the node gossips Leave and exits while the endpoints still send \
             it traffic (the kubelet needs failureThreshold failed probes to mark it unready)",
            r.period_s(),
            r.failure_threshold(),
            need.as_secs()
        ),
        format!(
            "--drain={}, or readinessProbe periodSeconds x failureThreshold at most {}",
            fmt_dur(need),
            fmt_dur(n.drain)
        ),
    ));
}

/// At most how long the node keeps gossiping Leave after the drain: the runtime's
/// `leave_timeout` default ([`RuntimeBuilder::default_leave_timeout`], the larger of
/// 2 s and 10 gossip intervals; rumor-node sets no other).
pub fn leave_bound(cfg: &Config) -> Duration {
    RuntimeBuilder::default_leave_timeout(cfg)
}

// Rule 6: grace-short.
fn grace(t: &Target<'_>, n: &NodeSettings, out: &mut Vec<Finding>) {
    let pod = &t.workload.pod;
    let grace = Duration::from_secs(pod.grace.as_ref().map_or(30, |g| g.value).unsigned_abs());
    let pre_stop = Duration::from_secs(
        t.container
            .pre_stop_sleep
            .as_ref()
            .map_or(0, |s| s.value)
            .unsigned_abs(),
    );
    let leave = leave_bound(&n.config);
    let need = pre_stop
        .saturating_add(n.drain)
        .saturating_add(leave)
        .saturating_add(EXIT_SLACK);
    if grace >= need {
        return;
    }
    let (line, given) = match &pod.grace {
        Some(g) => (
            g.line,
            format!("terminationGracePeriodSeconds is {}", g.value),
        ),
        None => (
            pod.line,
            "terminationGracePeriodSeconds is not set (30 s)".to_string(),
        ),
    };
    let pre = if pre_stop.is_zero() {
        String::new()
    } else {
        format!("the preStop sleep {} + ", fmt_dur(pre_stop))
    };
    out.push(finding(
        "grace-short",
        Severity::Error,
        line,
        format!(
            "{given}, less than the graceful stop: {pre}drain {} + Leave gossiped for up to {} \
             (the runtime's leave_timeout) + {} to exit = {}: the kubelet SIGKILLs the node \
             mid-leave and peers convict it as failed instead of seeing it leave",
            fmt_dur(n.drain),
            fmt_dur(leave),
            fmt_dur(EXIT_SLACK),
            secs(need)
        ),
        format!("terminationGracePeriodSeconds: {}", ceil_secs(need)),
    ));
}

/// Cores of a CPU quantity (`500m`, `2`, `0.5`), when it reads as one.
fn cores(q: &str) -> Option<f64> {
    let q = q.trim();
    let v = match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok()? / 1000.0,
        None => q.parse::<f64>().ok()?,
    };
    Some(v).filter(|v| v.is_finite() && *v > 0.0)
}

// Rule 7: cpu-limit.
fn cpu_limit(t: &Target<'_>, out: &mut Vec<Finding>) {
    let found = [
        (t.container.cpu_limit.as_ref(), "resources.limits.cpu"),
        (
            t.workload.pod.cpu_limit.as_ref(),
            "the pod's resources.limits.cpu",
        ),
    ];
    for (q, field) in found {
        let Some(q) = q else { continue };
        let quota = cores(&q.value).map_or_else(String::new, |c| {
            format!(" ({:.0} ms of CPU time per 100 ms period)", c * 100.0)
        });
        out.push(finding(
            "cpu-limit",
            Severity::Error,
            q.line,
            format!(
                "a CPU limit of {}{quota}: once the process has spent its quota, CFS \
                 throttling stops every thread until the period ends, so busy moments become \
                 stalls that peers see as pauses and that eat into acceptable_pause",
                q.value
            ),
            format!(
                "remove {field} (keep requests.cpu for scheduling; a memory limit stalls \
                 nothing)"
            ),
        ));
    }
}

/// Seconds of silence after which a member is convicted, and the rule in words, as
/// `rumor-sim tune` computes it (sim/src/tune/compare.rs): for phi monitors
/// [`steady_silence_to_convict`] (a detector that has seen a steady ack rhythm at
/// `probe_interval` asked `silence_for(phi_convict)` with the acceptable pause); for
/// swim and lifeguard the suspicion timeout's floor at `replicas` members.
pub fn silence_to_convict(cfg: &Config, members: usize) -> (Duration, String) {
    match cfg.strategy {
        Strategy::Swim | Strategy::Lifeguard => {
            let floor = cfg.suspicion_min_timeout(members);
            (
                floor,
                format!(
                    "{}: the suspicion timeout's floor, suspicion_mult {} x max(1, log10 {members}) \
                     x probe_interval {}",
                    cfg.strategy,
                    cfg.suspicion_mult,
                    fmt_dur(cfg.probe_interval)
                ),
            )
        }
        _ => (
            steady_silence_to_convict(cfg),
            format!(
                "phi monitors: phi_convict {} with acceptable_pause {}",
                cfg.phi_convict,
                fmt_dur(cfg.acceptable_pause)
            ),
        ),
    }
}

/// The smallest `acceptable_pause` (in 100 ms steps) whose silence to convict reaches
/// `need`, and that silence. Silence grows one for one with the acceptable pause
/// (docs/tuning.md), so the first guess is nearly always it; the loop is bounded.
fn acceptable_pause_for(cfg: &Config, need: Duration) -> Option<(Duration, Duration)> {
    let step = Duration::from_millis(100);
    let mut c = cfg.clone();
    let mut ap = round_up(
        cfg.acceptable_pause + need.saturating_sub(steady_silence_to_convict(cfg)),
        step,
    );
    for _ in 0..100 {
        c.acceptable_pause = ap;
        c.validate().ok()?;
        let s = steady_silence_to_convict(&c);
        if s >= need {
            return Some((ap, s));
        }
        ap += step;
    }
    None
}

// Rule 8: convict-below-pause.
fn convict(t: &Target<'_>, n: &NodeSettings, file: &str, worst: &Worst, out: &mut Vec<Finding>) {
    let cfg = &n.config;
    let members = usize::try_from(t.workload.replicas.max(1)).unwrap_or(1);
    let (silence, how) = silence_to_convict(cfg, members);
    // As tune's min_margin: a probe interval, the most a pause's phase relative to the
    // probes adds to the silence it causes.
    let margin = cfg.probe_interval;
    let need = worst.pause.saturating_add(margin);
    if silence >= need {
        return;
    }
    let line = t
        .flags
        .iter()
        .rev()
        .find(|f| {
            let v = f.value.as_str();
            v.starts_with("--config") || v.starts_with("--preset") || v.starts_with("--set")
        })
        .map_or_else(|| args_line(t), |f| f.line);
    let fix = match cfg.strategy {
        Strategy::Swim | Strategy::Lifeguard => format!(
            "raise suspicion_mult until suspicion_mult x max(1, log10 {members}) x probe_interval \
             >= {}, or use the phi-monitors strategy with an acceptable_pause that covers it \
             (rumor-sim tune --pauses {file})",
            secs(need)
        ),
        _ => match acceptable_pause_for(cfg, need) {
            Some((ap, s)) => format!(
                "--set=acceptable_pause={} (silence to convict {}), or the fastest setting \
                 that covers these pauses: rumor-sim tune --pauses {file}",
                secs(ap),
                secs(s)
            ),
            None => format!("rumor-sim tune --pauses {file}, then set what it prints"),
        },
    };
    out.push(finding(
        "convict-below-pause",
        Severity::Error,
        line,
        format!(
            "peers convict this pod after {} of silence ({how}), but {file} measured a pause of \
             {} (its line {}, the largest of {} samples): with a probe interval ({}) of margin \
             for the pause's phase, such a pause gets a live pod declared dead",
            secs(silence),
            secs(worst.pause),
            worst.line,
            worst.samples,
            fmt_dur(margin)
        ),
        fix,
    ));
}

/// Whether a header name carries a credential.
fn is_auth_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "auth", "token", "cookie", "api-key", "apikey", "secret", "password",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Whether a flag looks like one that puts the health routes behind authentication
/// (`--health-auth`, `--auth-token`, `--basic-auth`, ...).
pub fn is_auth_flag(arg: &str) -> bool {
    let Some(name) = arg.strip_prefix("--") else {
        return false;
    };
    let name = name
        .split('=')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    ["auth", "token", "password", "credential", "secret"]
        .iter()
        .any(|w| name.contains(w))
}

// Rule 9, part one: health-auth.
fn health_auth(t: &Target<'_>, out: &mut Vec<Finding>) {
    for p in probes(t.container) {
        let Some(h) = p.http() else { continue };
        for name in h.headers.iter().filter(|n| is_auth_header(&n.value)) {
            out.push(finding(
                "health-auth",
                Severity::Error,
                name.line,
                format!(
                    "{} sends the header {}: the health routes sit behind authentication, so the \
                     kubelet must hold a credential, and when it expires or rotates every probe \
                     fails at once (liveness restarts every pod)",
                    p.kind.field(),
                    name.value
                ),
                format!(
                    "remove the {} header and serve /livez, /readyz and /startupz without \
                     authentication (they answer with state, never secrets; rumor-node's never \
                     ask for any)",
                    name.value
                ),
            ));
        }
        if let Some(s) = h
            .scheme
            .as_ref()
            .filter(|s| s.value.eq_ignore_ascii_case("https"))
        {
            out.push(finding(
                "health-auth",
                Severity::Error,
                s.line,
                format!(
                    "{} uses scheme HTTPS, but rumor-node serves plain HTTP on --http: the probe \
                     fails its handshake, or reaches a TLS proxy in front of the node that may \
                     authenticate it",
                    p.kind.field()
                ),
                "remove scheme (HTTP is the default) and probe the --http port directly"
                    .to_string(),
            ));
        }
    }
    for f in t.auth_flags {
        out.push(finding(
            "health-auth",
            Severity::Error,
            f.line,
            format!(
                "{}: authentication for the health routes (rumor-node has no such flag and \
                 would refuse to start); a probe behind auth fails every pod at once when the \
                 credential changes",
                f.value
            ),
            format!(
                "remove {}: the health routes need no authentication",
                f.value.split('=').next().unwrap_or_default()
            ),
        ));
    }
}

// Rule 9, part two: probe-port.
fn probe_port(t: &Target<'_>, out: &mut Vec<Finding>) {
    let Some(n) = t.node else { return };
    let c = t.container;
    let Some(http) = n.http else {
        if let Some(p) = probes(c).find(|p| p.http().is_some()) {
            out.push(finding(
                "probe-port",
                Severity::Error,
                p.line,
                "the node serves no HTTP (no --http flag): every httpGet probe is refused"
                    .to_string(),
                "add --http=0.0.0.0:8080 to args (and a containerPort 8080 named http)".to_string(),
            ));
        }
        return;
    };
    if http.ip().is_loopback() && probes(c).any(|p| p.http().is_some()) {
        out.push(finding(
            "probe-port",
            Severity::Error,
            flag_line(t.flags, "http").unwrap_or_else(|| args_line(t)),
            format!(
                "--http={http} listens on loopback only: the kubelet connects to the pod IP, so \
                 every probe is refused"
            ),
            format!("--http=0.0.0.0:{}", http.port()),
        ));
    }
    let want = port_text(c, Some(http.port()));
    for p in probes(c) {
        let Some(h) = p.http() else { continue };
        match port_number(c, &h.port.value) {
            None => out.push(finding(
                "probe-port",
                Severity::Error,
                h.port.line,
                format!(
                    "{} port {:?} names no containerPort of this container: the probe cannot \
                     reach anything",
                    p.kind.field(),
                    match &h.port.value {
                        PortRef::Name(s) => s.clone(),
                        PortRef::Number(n) => n.to_string(),
                    }
                ),
                format!("{}.httpGet.port: {want}", p.kind.field()),
            )),
            Some(port) if port != i64::from(http.port()) => out.push(finding(
                "probe-port",
                Severity::Error,
                h.port.line,
                format!(
                    "{} targets port {port}, but the node serves its health routes on --http \
                     port {}: the probe reaches another server (a proxy that may authenticate, \
                     another process) or nothing",
                    p.kind.field(),
                    http.port()
                ),
                format!("{}.httpGet.port: {want}", p.kind.field()),
            )),
            Some(_) => {}
        }
        if let Some(host) = &h.host {
            out.push(finding(
                "probe-port",
                Severity::Error,
                host.line,
                format!(
                    "{} sets host {}: the probe goes there instead of to this pod",
                    p.kind.field(),
                    host.value
                ),
                format!(
                    "remove {}.httpGet.host (the pod IP is the default)",
                    p.kind.field()
                ),
            ));
        }
    }
}

/// `node-args`: flags the node's parser refuses.
pub fn args_refused(line: usize, why: &str) -> Finding {
    finding(
        "node-args",
        Severity::Error,
        line,
        format!(
            "rumor-node refuses these args ({why}): the container exits at start and restarts in a loop"
        ),
        "fix the flag (rumor-node --help lists them); config, drain and port rules were skipped"
            .to_string(),
    )
}

/// `node-args`: a command that is not rumor-node, whose flags the doctor cannot read.
pub fn not_rumor_node(line: usize, command: &str) -> Finding {
    finding(
        "node-args",
        Severity::Warning,
        line,
        format!(
            "the container runs {command:?}, not rumor-node: the doctor cannot read its flags, \
             so the config, drain, grace and port rules were skipped"
        ),
        "run rumor-node directly (command: [rumor-node] or the image's entrypoint), or pick \
         the rumor-node container with --container NAME"
            .to_string(),
    )
}

/// `node-config`: a config that does not load or validate.
pub fn config_invalid(line: usize, why: &str) -> Finding {
    finding(
        "node-config",
        Severity::Error,
        line,
        format!("the config these args give does not load: {why}: the node exits at start"),
        "fix the --set flag or the --config file (rumor-node --check-config shows the result)"
            .to_string(),
    )
}

/// `node-config`: a `--config` inside the container the doctor was not given.
pub fn config_unread(line: usize, path: &str) -> Finding {
    finding(
        "node-config",
        Severity::Warning,
        line,
        format!(
            "the args load --config {path}, which the doctor was not given: the rules used the \
             preset and --set flags without it"
        ),
        "pass the same file: rumor-node doctor --config FILE".to_string(),
    )
}

/// `config-overridden`: a `--set` flag or a `RUMOR_SET_*` variable (`what`, as the
/// manifest gives it, with the value it sets) replaces `field`, which the `--config`
/// file `file` sets to `file_value`.
pub fn config_overridden(
    line: usize,
    what: &str,
    value: &str,
    field: &str,
    file_value: &str,
    file: &str,
) -> Finding {
    finding(
        "config-overridden",
        Severity::Warning,
        line,
        format!(
            "{what} overrides the --config file's {field} = {file_value:?} ({file}): flags and \
             RUMOR_SET_ variables win over the file, so the node runs {field} = {value} and \
             the rules checked {value}, not the file's {file_value}"
        ),
        format!(
            "to deploy the file's value, drop {what} from the manifest; to keep the override, \
             drop {field} from the file so that the two do not disagree"
        ),
    )
}

/// `node-config`: a `RUMOR_*` variable the manifest sets from `valueFrom`.
pub fn env_unread(line: usize, name: &str) -> Finding {
    finding(
        "node-config",
        Severity::Warning,
        line,
        format!(
            "{name} comes from valueFrom (a ConfigMap, a Secret, a resource), whose value the \
             manifest does not hold: the rules used the setting without it"
        ),
        format!("give the value as a flag in args, or check it by hand ({name})"),
    )
}

/// `node-config`: a variable from a ConfigMap, a Secret or a resource, which the flags
/// or the `RUMOR_*` variables use through `$(VAR)`: the doctor read them with a
/// stand-in for it.
pub fn env_guessed(line: usize, name: &str, from: &str) -> Finding {
    finding(
        "node-config",
        Severity::Warning,
        line,
        format!(
            "$({name}) comes from {from} (valueFrom), whose value the manifest does not \
             hold: the doctor read the node's settings with a stand-in for it"
        ),
        format!("check by hand that the node's flags hold with the real {name}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lan_preset_convicts_after_about_four_and_a_half_seconds() {
        // docs/chaos.md: "the silence to convict on lan is ≈ 4.52 s after the last ack".
        let (s, how) = silence_to_convict(&Config::lan(), 3);
        assert!((s.as_secs_f64() - 4.52).abs() < 0.05, "{s:?}");
        assert!(how.contains("phi"), "{how}");
    }

    #[test]
    fn the_acceptable_pause_found_covers_the_need() {
        let cfg = Config::lan();
        let need = Duration::from_secs(9);
        let (ap, s) = acceptable_pause_for(&cfg, need).unwrap();
        assert!(s >= need && ap > cfg.acceptable_pause, "{ap:?} {s:?}");
        let mut smaller = cfg.clone();
        smaller.acceptable_pause = ap - Duration::from_millis(100);
        assert!(
            steady_silence_to_convict(&smaller) < need,
            "the smallest step"
        );
    }

    /// A manifest's numbers past what the parser allows (set on the parsed values, as
    /// a caller could) give findings, never an overflow.
    #[test]
    fn probe_products_saturate_instead_of_overflowing() {
        use super::super::manifest::workloads;
        use super::super::node_args::node_settings;
        use super::super::yaml::load;
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/doctor/good.yaml"
        ))
        .unwrap();
        let mut w = workloads(&load(&text).unwrap()).unwrap().remove(0);
        let big = |line| {
            Some(Spanned {
                value: i64::MAX,
                line,
            })
        };
        let c = &mut w.pod.containers[0];
        for p in [&mut c.startup, &mut c.liveness, &mut c.readiness]
            .into_iter()
            .flatten()
        {
            (p.period, p.failure, p.initial_delay) = (big(p.line), big(p.line), big(p.line));
        }
        c.pre_stop_sleep = big(c.line);
        w.pod.grace = big(w.pod.line);
        let c = &w.pod.containers[0];
        let flags: Vec<Spanned<String>> = ["--seeds=a:1", "--drain=1s", "--http=0.0.0.0:8080"]
            .into_iter()
            .map(|f| Spanned {
                value: f.to_string(),
                line: 1,
            })
            .collect();
        let texts: Vec<String> = flags.iter().map(|f| f.value.clone()).collect();
        let node = node_settings(&texts, &[], None).unwrap();
        let found = check(&Target {
            workload: &w,
            container: c,
            flags: &flags,
            auth_flags: &[],
            node: Some(&node),
            pauses: None,
            handler_worst_case: Duration::from_secs(1),
        });
        // A readiness probe that needs forever to fail: a drain of 1 s is short.
        assert!(found.iter().any(|f| f.rule == "drain-short"), "{found:#?}");
    }

    #[test]
    fn helpers() {
        assert_eq!(route("/livez?verbose"), "/livez");
        assert_eq!(route("/"), "/");
        assert_eq!(route("/health/live/"), "/health/live");
        assert_eq!(cores("500m"), Some(0.5));
        assert_eq!(cores("2"), Some(2.0));
        assert_eq!(cores("lots"), None);
        assert!(is_auth_flag("--health-auth=basic"));
        assert!(is_auth_flag("--auth-token"));
        assert!(!is_auth_flag("--http=0.0.0.0:8080"));
        assert!(is_auth_header("Authorization") && is_auth_header("X-Api-Key"));
        assert!(!is_auth_header("Accept"));
        assert_eq!(leave_bound(&Config::lan()), Duration::from_secs(2));
        assert_eq!(ceil_secs(Duration::from_millis(52_001)), 53);
        assert_eq!(secs(Duration::from_millis(4_521)), "4.53s");
        assert_eq!(secs(Duration::from_millis(5_500)), "5.5s");
        assert_eq!(secs(Duration::from_secs(52)), "52s");
    }
}
