//! Health checks for orchestrators: liveness, readiness and startup (see [`Health`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::seeds::SeedReport;
use super::shared::{Shared, Status, lock};
use crate::config::Config;
use crate::time::Time;

/// Thresholds of the health checks. [`HealthConfig::for_config`] derives defaults from
/// the node's [`Config`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Liveness fails when the driver's loop has not run for this long. The loop runs
    /// at least every 100 ms even when idle, so anything well above that means the task
    /// is wedged or starved. Default: the larger of 10 s and 3 probe intervals.
    pub liveness_timeout: Duration,
    /// Readiness stays false this long after a peer suspected (or declared dead) this
    /// node, even though it refuted at once: peers could not reach it. Default: the
    /// larger of 5 s and 5 probe intervals.
    pub suspected_hold: Duration,
    /// Readiness fails while Lifeguard's local health score is above this (the node
    /// sees itself missing acks and nacks). Default: half of
    /// `Config::max_local_health`.
    pub max_local_health: u32,
}

impl HealthConfig {
    /// Defaults for a node running `config`.
    pub fn for_config(config: &Config) -> HealthConfig {
        HealthConfig {
            liveness_timeout: Duration::from_secs(10).max(config.probe_interval * 3),
            suspected_hold: Duration::from_secs(5).max(config.probe_interval * 5),
            max_local_health: config.max_local_health / 2,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig::for_config(&Config::default())
    }
}

/// One condition of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPart {
    /// Short stable name (`watchdog`, `joined`, `not_leaving`, …).
    pub name: &'static str,
    /// Whether it holds.
    pub ok: bool,
    /// What was seen, in words.
    pub detail: String,
}

/// The answer of one health check.
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
    fn from_parts(parts: Vec<CheckPart>) -> Check {
        let failed = parts.iter().find(|p| !p.ok);
        Check {
            ok: failed.is_none(),
            reason: failed
                .map_or_else(|| "ok".to_string(), |p| format!("{}: {}", p.name, p.detail)),
            parts,
        }
    }

    /// A multi-line report in the style of Kubernetes' `?verbose`: `[+]name ok` or
    /// `[-]name failed: detail` per part, then `NAME check passed` or `failed`.
    pub fn verbose(&self, name: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            if p.ok {
                out.push_str(&format!("[+]{} ok: {}\n", p.name, p.detail));
            } else {
                out.push_str(&format!("[-]{} failed: {}\n", p.name, p.detail));
            }
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

/// The health checks of one running node, each answered with a reason. Cheap to
/// clone; obtained from [`Handle::health`](crate::Handle::health). Every check reads
/// what the driver last published and never waits on it, so a wedged driver cannot
/// wedge a probe.
///
/// | check | question | answer |
/// |---|---|---|
/// | [`liveness`](Health::liveness) | is this process wedged? | the driver's loop ran within [`HealthConfig::liveness_timeout`]. No network, no peers: a partition must never get a healthy process restarted |
/// | [`readiness`](Health::readiness) | should I get traffic? | joined, not leaving, not suspected or declared dead by a peer within [`HealthConfig::suspected_hold`], local health ≤ [`HealthConfig::max_local_health`], driver running |
/// | [`startup`](Health::startup) | am I still booting? | joined (a seed, or a peer that joined through this node, answered; at once without seeds or with [`RuntimeBuilder::bootstrap`](crate::RuntimeBuilder::bootstrap)) and the first full state sync done; when not, the reason lists what each seed resolved to |
///
/// Only readiness depends on the cluster. During
/// [`Handle::leave_and_drain`](crate::Handle::leave_and_drain) readiness goes false
/// first, so load balancers stop sending traffic before the node leaves.
///
/// With the `axum` feature, `Health::router` serves the three checks over HTTP.
#[derive(Clone, Debug)]
pub struct Health {
    pub(crate) shared: Arc<Shared>,
}

fn part(name: &'static str, ok: bool, detail: impl Into<String>) -> CheckPart {
    CheckPart {
        name,
        ok,
        detail: detail.into(),
    }
}

/// Readiness and startup both ask whether a seed (or a peer that joined through this
/// node) has answered; when not, the reason says what each seed resolved to.
fn joined_part(st: &Status, seeds: &[SeedReport]) -> CheckPart {
    if st.joined {
        let detail = format!("joined the cluster ({} live peers)", st.live_peers);
        return part("joined", true, detail);
    }
    let tried = if seeds.is_empty() {
        "no seed resolved yet".to_string()
    } else {
        let list: Vec<String> = seeds.iter().map(SeedReport::describe).collect();
        list.join("; ")
    };
    let detail = if st.join_pending {
        format!("no seed resolved to another node yet: {tried}")
    } else {
        format!("no seed has answered yet: {tried}")
    };
    part("joined", false, detail)
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

impl Health {
    /// The thresholds in force.
    pub fn config(&self) -> &HealthConfig {
        &self.shared.health
    }

    /// Is this process wedged? Only the driver's watchdog: the loop ran within
    /// `liveness_timeout` and the driver has not stopped. Never depends on peers.
    pub fn liveness(&self) -> Check {
        Check::from_parts(vec![self.watchdog()])
    }

    fn watchdog(&self) -> CheckPart {
        let s = &self.shared;
        if s.stopped.is_cancelled() {
            return part("watchdog", false, "driver stopped");
        }
        let since = s.since_heartbeat();
        let limit = s.health.liveness_timeout;
        part(
            "watchdog",
            since < limit,
            format!("driver loop ran {} ago (limit {})", ms(since), ms(limit)),
        )
    }

    /// Should this node get traffic? Driver running, joined, not leaving, not
    /// suspected by a peer within `suspected_hold`, local health within bounds.
    pub fn readiness(&self) -> Check {
        let s = &self.shared;
        let cfg = &s.health;
        let now = s.now();
        let st = s.status();
        let leaving = st.leaving || s.is_draining();
        let suspected = st
            .self_suspected_at
            .map(|t| now.saturating_since(t))
            .filter(|ago| *ago < cfg.suspected_hold);
        let seeds = lock(&s.seed_reports).clone();
        let parts = vec![
            self.watchdog(),
            joined_part(&st, &seeds),
            part(
                "not_leaving",
                !leaving,
                if leaving {
                    "draining or leaving the cluster"
                } else {
                    "not leaving"
                },
            ),
            part(
                "not_suspected",
                suspected.is_none(),
                match suspected {
                    Some(ago) => format!(
                        "a peer suspected this node {} ago (hold {})",
                        ms(ago),
                        ms(cfg.suspected_hold)
                    ),
                    None => "no peer suspected this node recently".to_string(),
                },
            ),
            part(
                "local_health",
                st.local_health <= cfg.max_local_health,
                format!(
                    "local health score {} (max {})",
                    st.local_health, cfg.max_local_health
                ),
            ),
        ];
        drop(st);
        Check::from_parts(parts)
    }

    /// Is this node still booting? Joined, and the first full state sync with a seed
    /// ended. Once true it stays true for the life of the driver.
    pub fn startup(&self) -> Check {
        let seeds = lock(&self.shared.seed_reports).clone();
        let st = self.shared.status();
        let parts = vec![
            joined_part(&st, &seeds),
            part(
                "synced",
                st.synced,
                if st.synced {
                    "first state sync done"
                } else {
                    "waiting for the first state sync"
                },
            ),
        ];
        drop(st);
        Check::from_parts(parts)
    }

    /// When a peer last suspected this node, as time since the driver started.
    pub fn last_suspected(&self) -> Option<Duration> {
        self.shared
            .status()
            .self_suspected_at
            .map(|t| t.saturating_since(Time::ZERO))
    }
}
