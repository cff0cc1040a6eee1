//! Rumor's own parts of the three probes, read from what the driver last published,
//! and the rule that decides whether a suspicion of this node holds readiness.

use std::time::Duration;

use super::{CheckPart, HealthConfig, ms};
use crate::event::MemberState;
use crate::runtime::seeds::SeedReport;
use crate::runtime::shared::{Shared, Status, lock};
use crate::runtime::stall_clock::SAMPLE_TICK;
use crate::time::Time;

/// A stall of this process, as the driver measured it: timers late by `len`, seen
/// at `end` (the resume).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StallSpan {
    pub end: Time,
    pub len: Duration,
}

impl StallSpan {
    /// Whether a suspicion seen at `seen` is this stall's doing: seen during it (the
    /// measured lateness is the stall's length to within the stall clock's tick)
    /// or within `grace` after its end, the time peers' word about it takes to
    /// arrive once the node reads its socket again.
    pub fn explains(&self, seen: Time, grace: Duration) -> bool {
        let start = self.end.saturating_sub(self.len + SAMPLE_TICK);
        seen >= start && seen <= self.end.saturating_add(grace)
    }
}

/// Suspicions of this node, sorted by whether a stall of its own explains them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SuspicionLog {
    /// When a peer last suspected (or declared dead) this node.
    pub last: Option<Time>,
    /// The last suspicion that no stall explains: holds readiness for
    /// `suspected_hold`.
    pub unexplained: Option<Time>,
    /// The last suspicion a stall explains, the incarnation it named and the stall:
    /// holds readiness only until the node has refuted it.
    pub explained: Option<(Time, u64, StallSpan)>,
}

impl SuspicionLog {
    /// A peer suspected this node at `incarnation`; seen at `now`, after `stall` (the
    /// last stall the driver measured, recorded before the events of the same input
    /// are read, so a backlog read at resume sees its own stall).
    pub fn record(
        &mut self,
        now: Time,
        incarnation: u64,
        stall: Option<StallSpan>,
        grace: Duration,
    ) -> bool {
        self.last = Some(now);
        match stall.filter(|s| s.explains(now, grace)) {
            Some(s) => {
                self.explained = Some((now, incarnation, s));
                true
            }
            None => {
                self.unexplained = Some(now);
                false
            }
        }
    }

    /// The `not_suspected` part: `(ok, detail)`.
    pub fn judge(
        &self,
        now: Time,
        local: (u64, MemberState),
        cfg: &HealthConfig,
    ) -> (bool, String) {
        if let Some(at) = self.unexplained {
            let ago = now.saturating_since(at);
            if ago < cfg.suspected_hold {
                return (
                    false,
                    format!(
                        "a peer suspected this node {} ago without a stall of its own to explain it (hold {})",
                        ms(ago),
                        ms(cfg.suspected_hold)
                    ),
                );
            }
        }
        if let Some((at, incarnation, stall)) = self.explained {
            let (current, state) = local;
            let refuted = current > incarnation && state == MemberState::Alive;
            let ago = now.saturating_since(at);
            if !refuted {
                return (
                    false,
                    format!(
                        "suspected {} ago after a {} stall of this process; refuting",
                        ms(ago),
                        ms(stall.len)
                    ),
                );
            }
            if ago < cfg.suspected_hold {
                return (
                    true,
                    format!(
                        "suspected {} ago after a {} stall of this process, refuted (incarnation {current}): not held",
                        ms(ago),
                        ms(stall.len)
                    ),
                );
            }
        }
        (true, "no peer suspected this node recently".to_string())
    }
}

/// The driver's watchdog: its loop ran within `liveness_timeout` and it has not
/// stopped. Liveness, and readiness too (a wedged node must not get traffic).
pub(crate) fn watchdog(s: &Shared) -> CheckPart {
    if s.stopped.is_cancelled() {
        return CheckPart::new("watchdog", false, "driver stopped");
    }
    let since = s.since_heartbeat();
    let limit = s.health.liveness_timeout;
    CheckPart::new(
        "watchdog",
        since < limit,
        format!("driver loop ran {} ago (limit {})", ms(since), ms(limit)),
    )
}

/// Readiness and startup both ask whether a seed (or a peer that joined through this
/// node) has answered; when not, the reason says what each seed resolved to.
fn joined(st: &Status, seeds: &[SeedReport]) -> CheckPart {
    if st.joined {
        let detail = format!("joined the cluster ({} live peers)", st.live_peers);
        return CheckPart::new("joined", true, detail);
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
    CheckPart::new("joined", false, detail)
}

/// Driver running, joined, not leaving, not suspected (see [`SuspicionLog::judge`]),
/// local health within bounds.
pub(crate) fn readiness(s: &Shared) -> Vec<CheckPart> {
    let cfg = &s.health;
    let now = s.now();
    let seeds = lock(&s.seed_reports).clone();
    let st = s.status();
    let leaving = st.leaving || s.is_draining();
    let (not_suspected, suspected_detail) =
        st.suspicion
            .judge(now, (st.local.incarnation, st.local.state), cfg);
    let parts = vec![
        watchdog(s),
        joined(&st, &seeds),
        CheckPart::new(
            "not_leaving",
            !leaving,
            if leaving {
                "draining or leaving the cluster"
            } else {
                "not leaving"
            },
        ),
        CheckPart::new("not_suspected", not_suspected, suspected_detail),
        CheckPart::new(
            "local_health",
            st.local_health <= cfg.max_local_health,
            format!(
                "local health score {} (max {})",
                st.local_health, cfg.max_local_health
            ),
        ),
    ];
    drop(st);
    parts
}

/// Joined, and the first full state sync with a seed ended.
pub(crate) fn startup(s: &Shared) -> Vec<CheckPart> {
    let seeds = lock(&s.seed_reports).clone();
    let st = s.status();
    let parts = vec![
        joined(&st, &seeds),
        CheckPart::new(
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
    parts
}

/// When a peer last suspected this node, as time since the driver started.
pub(crate) fn last_suspected(s: &Shared) -> Option<Duration> {
    s.status()
        .suspicion
        .last
        .map(|t| t.saturating_since(Time::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    fn cfg() -> HealthConfig {
        HealthConfig {
            liveness_timeout: Duration::from_secs(10),
            suspected_hold: Duration::from_secs(5),
            stall_grace: Duration::from_millis(500),
            max_local_health: 4,
        }
    }

    const STALL: StallSpan = StallSpan {
        end: Time::from_nanos(10_000_000_000),
        len: Duration::from_millis(3600),
    };

    #[test]
    fn a_stall_explains_what_is_seen_during_it_and_shortly_after() {
        let grace = Duration::from_millis(500);
        assert!(
            STALL.explains(t(10_000), grace),
            "the backlog read at resume"
        );
        assert!(STALL.explains(t(7_000), grace), "during the stall");
        assert!(
            STALL.explains(t(10_400), grace),
            "gossip right after the resume"
        );
        assert!(!STALL.explains(t(10_600), grace), "past the grace");
        assert!(!STALL.explains(t(6_000), grace), "before the stall began");
    }

    #[test]
    fn an_explained_and_refuted_suspicion_does_not_hold_readiness() {
        let mut log = SuspicionLog::default();
        assert!(log.record(t(10_000), 7, Some(STALL), cfg().stall_grace));
        let (ok, why) = log.judge(t(10_001), (7, MemberState::Suspect), &cfg());
        assert!(!ok, "not refuted yet: {why}");
        let (ok, why) = log.judge(t(10_050), (8, MemberState::Alive), &cfg());
        assert!(ok, "{why}");
        assert!(why.contains("not held"), "{why}");
    }

    #[test]
    fn a_suspicion_without_a_stall_holds_readiness() {
        let mut log = SuspicionLog::default();
        assert!(!log.record(t(20_000), 7, Some(STALL), cfg().stall_grace));
        let (ok, why) = log.judge(t(24_000), (8, MemberState::Alive), &cfg());
        assert!(!ok, "{why}");
        assert!(why.contains("without a stall"), "{why}");
        assert!(log.judge(t(25_001), (8, MemberState::Alive), &cfg()).0);
        // An earlier network suspicion is not forgiven by a later stall's.
        let mut log = SuspicionLog::default();
        log.record(t(8_000), 7, None, cfg().stall_grace);
        log.record(t(10_000), 8, Some(STALL), cfg().stall_grace);
        assert!(!log.judge(t(10_100), (9, MemberState::Alive), &cfg()).0);
    }
}
