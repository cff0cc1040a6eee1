//! Health for the whole service: one registry ([`Health`]) of liveness watchdogs,
//! readiness dependency checks and startup gates, which rumor's runtime plugs into.
//!
//! One file per job: `registry.rs` holds the registry and evaluates the three probes,
//! `watchdog.rs` the liveness watchdogs, `dependency.rs` the readiness checks with
//! their timeout, cache and panic guard, `gate.rs` the startup gates, `membership.rs`
//! rumor's own parts (and the rule that lets a forgiven stall not hold readiness), and
//! `monitor.rs` the transitions (log lines, metrics, the watch channel).

use std::fmt;
use std::time::Duration;

use crate::config::Config;

mod dependency;
mod gate;
mod membership;
mod monitor;
mod registry;
mod watchdog;

pub use dependency::CheckOptions;
pub use gate::StartupGate;
pub(crate) use membership::{StallSpan, SuspicionLog};
pub use registry::{Health, HealthReport, Probe};
pub use watchdog::Watchdog;

/// Thresholds of rumor's own health parts (the node's watchdog and membership
/// conditions). [`HealthConfig::for_config`] derives defaults from the node's
/// [`Config`]; give your own to
/// [`RuntimeBuilder::health`](crate::RuntimeBuilder::health).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Liveness fails when the driver's loop has not run for this long. The loop runs
    /// at least once per probe interval even when idle (the probe timer), so anything
    /// well above that means the task is wedged or starved.
    ///
    /// Unit: time. Default: the larger of 10 s and 3 probe intervals. Range: above
    /// 100 ms (the driver wakes at least 3 times per timeout to beat); keep it above the longest stall the process may survive (a stall under
    /// it is for the gossip layer to judge, not for a restart). Tune it together with
    /// the liveness probe: `periodSeconds × failureThreshold` adds to it.
    pub liveness_timeout: Duration,
    /// How long readiness stays false after a peer suspected (or declared dead) this
    /// node *without* a stall of this process to explain it: peers could not reach it
    /// although it was running, a network problem that may not be over when the
    /// refutation got through. A suspicion that a stall of this process explains
    /// (seen within the stall or within [`stall_grace`](HealthConfig::stall_grace)
    /// after it ends) holds readiness only until the node has refuted it: the cluster
    /// forgave the stall, and taking the pod out of its Service for seconds after it
    /// would punish what the gossip layer tolerates.
    ///
    /// Unit: time. Default: the larger of 5 s and 5 probe intervals. Range: 0 (no
    /// hold) and up; longer than the readiness probe's period, or the load balancer
    /// never sees it. Raise it where flapping links are common.
    pub suspected_hold: Duration,
    /// How long after a stall of this process a suspicion still counts as caused by
    /// it: peers suspected the node during the stall, and their word (buddy pings,
    /// piggybacked gossip, a probe round that ends just after the resume) reaches it
    /// shortly after it resumes.
    ///
    /// Unit: time. Default: the larger of 500 ms and 2 probe intervals (one probe
    /// round and the gossip that follows it). Range: 0 and up; at most
    /// `suspected_hold` is sensible. Too long, and a network problem that follows a
    /// stall is forgiven with it.
    pub stall_grace: Duration,
    /// Readiness fails while Lifeguard's local health score is above this (the node
    /// sees itself missing acks and nacks).
    ///
    /// Unit: score points. Default: half of `Config::max_local_health`. Range: 0 to
    /// `Config::max_local_health` (which disables the part).
    pub max_local_health: u32,
}

impl HealthConfig {
    /// Defaults for a node running `config`.
    pub fn for_config(config: &Config) -> HealthConfig {
        HealthConfig {
            liveness_timeout: Duration::from_secs(10).max(config.probe_interval * 3),
            suspected_hold: Duration::from_secs(5).max(config.probe_interval * 5),
            stall_grace: Duration::from_millis(500).max(config.probe_interval * 2),
            max_local_health: config.max_local_health / 2,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig::for_config(&Config::default())
    }
}

/// One condition of a check: a watchdog, a dependency check, a gate, or one of
/// rumor's membership conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPart {
    /// Short stable name, unique in the registry (`watchdog`, `joined`, `db`, …):
    /// what `?exclude=` names.
    pub name: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was seen, in words.
    pub detail: String,
}

impl CheckPart {
    /// A part named `name`.
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> CheckPart {
        CheckPart {
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }
}

/// The answer of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Whether every part holds.
    pub ok: bool,
    /// `"ok"`, or the first failing part's name and detail.
    pub reason: String,
    /// Every condition, in order.
    pub parts: Vec<CheckPart>,
}

impl Check {
    /// A check that passes when every part does; its reason is the first failing
    /// part's `name: detail`.
    pub fn from_parts(parts: Vec<CheckPart>) -> Check {
        let failed = parts.iter().find(|p| !p.ok);
        Check {
            ok: failed.is_none(),
            reason: failed
                .map_or_else(|| "ok".to_string(), |p| format!("{}: {}", p.name, p.detail)),
            parts,
        }
    }

    /// The part named `name`, if any.
    pub fn part(&self, name: &str) -> Option<&CheckPart> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// A multi-line report in the style of Kubernetes' `?verbose`: `[+]name ok: detail`
    /// or `[-]name failed: detail` per part, then `NAME check passed` or `failed`.
    pub fn verbose(&self, name: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            let (sign, word) = if p.ok { ('+', "ok") } else { ('-', "failed") };
            out.push_str(&format!("[{sign}]{} {word}: {}\n", p.name, p.detail));
        }
        let verdict = if self.ok { "passed" } else { "failed" };
        out.push_str(&format!("{name} check {verdict}\n"));
        out
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Milliseconds, for the reasons.
pub(crate) fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
