//! Transitions: the three probes are evaluated when the registry is told of a change
//! (the rumor node's own state, `set_draining`) and otherwise once a second; a part
//! that flips is logged and counted, each part's status goes to a gauge, and a
//! changed report is published on the registry's watch channel.
//!
//! Not every 100 ms, as it was: one look builds every part's reason string, and ten
//! of them a second per registry made the monitor most of an idle node's CPU.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};

use super::registry::{Health, HealthReport, Probe, Registry};

/// How often the monitor looks when nobody tells it of a change, so a watchdog's
/// expiry or a check's new result is in the log and the metrics within it.
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// `changed` is the registry's own notifier, held apart so that waiting on it does
/// not keep the registry alive: once it is dropped, the next look ends the task.
pub(crate) async fn run(registry: Weak<Registry>, changed: Arc<Notify>) {
    let mut monitor = Monitor::default();
    loop {
        let Some(inner) = registry.upgrade() else {
            return;
        };
        monitor.step(&Health::from_inner(inner));
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(IDLE_LOOK) => {}
        }
    }
}

/// What the monitor remembers between two looks.
#[derive(Default)]
struct Monitor {
    /// (probe, part) -> ok, of the parts the last look saw, in a stable order for
    /// the log. Only those: a part that went away (a retired watchdog) is forgotten,
    /// so a service that registers and retires one watchdog per task does not grow
    /// it without bound.
    seen: BTreeMap<(Probe, String), bool>,
    last: Option<Arc<HealthReport>>,
}

impl Monitor {
    /// One look: evaluates the three probes, logs and counts the flips, sets the
    /// gauges, publishes the report if it changed.
    ///
    /// A part that went away keeps the last value of its `rumor_health_part` gauge:
    /// the `metrics` facade cannot remove a series, so it is no longer updated
    /// (an exporter with an idle timeout, such as `metrics-exporter-prometheus`'s
    /// `idle_timeout`, drops it).
    fn step(&mut self, health: &Health) {
        let report = HealthReport {
            liveness: health.liveness(),
            readiness: health.readiness(),
            startup: health.startup(),
        };
        let mut seen = BTreeMap::new();
        let mut flipped = false;
        for probe in Probe::ALL {
            let check = report.get(probe);
            for p in &check.parts {
                let key = (probe, p.name.clone());
                let before = self.seen.get(&key).copied();
                seen.insert(key, p.ok);
                if before.is_some_and(|b| b != p.ok) {
                    flipped = true;
                    metrics::counter!(
                        "rumor_health_transitions_total",
                        "probe" => probe.as_str(),
                        "part" => p.name.clone()
                    )
                    .increment(1);
                    if p.ok {
                        info!(probe = probe.as_str(), part = %p.name, detail = %p.detail, "health part passes again");
                    } else {
                        warn!(probe = probe.as_str(), part = %p.name, detail = %p.detail, "health part failing");
                    }
                }
                metrics::gauge!(
                    "rumor_health_part",
                    "probe" => probe.as_str(),
                    "part" => p.name.clone()
                )
                .set(if p.ok { 1.0 } else { 0.0 });
            }
        }
        self.seen = seen;
        let changed = match &self.last {
            None => true,
            Some(prev) => {
                flipped
                    || Probe::ALL.into_iter().any(|probe| {
                        let (a, b) = (prev.get(probe), report.get(probe));
                        a.ok != b.ok || a.parts.len() != b.parts.len()
                    })
            }
        };
        if changed {
            let report = Arc::new(report);
            health.inner.report.send_replace(report.clone());
            self.last = Some(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Monitor, Probe};
    use crate::runtime::health::Health;

    #[test]
    fn retired_watchdogs_leave_the_monitors_memory() {
        let health = Health::new();
        let mut monitor = Monitor::default();
        let keep = health.watchdog("main_loop", Duration::from_secs(60));
        monitor.step(&health);
        let baseline = monitor.seen.len();
        // One watchdog per task, a thousand tasks, each seen by the monitor.
        for i in 0..1000 {
            let w = health.watchdog(format!("task-{i}"), Duration::from_secs(60));
            monitor.step(&health);
            assert!(
                monitor
                    .seen
                    .contains_key(&(Probe::Liveness, format!("task-{i}")))
            );
            w.retire();
        }
        monitor.step(&health);
        assert_eq!(monitor.seen.len(), baseline, "{:?}", monitor.seen.keys());
        assert!(
            monitor
                .seen
                .contains_key(&(Probe::Liveness, "main_loop".to_string()))
        );
        keep.retire();
        monitor.step(&health);
        assert!(!monitor.seen.keys().any(|(_, name)| name == "main_loop"));
    }
}
