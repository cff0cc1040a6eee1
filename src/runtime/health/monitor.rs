//! Transitions: every 100 ms, the three probes are evaluated; a part that flips is
//! logged and counted, each part's status goes to a gauge, and a changed report is
//! published on the registry's watch channel.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tracing::{info, warn};

use super::registry::{Health, HealthReport, Probe, Registry};

/// How often the monitor looks: the driver's sampling tick, so a watchdog's expiry
/// or a check's new result is in the log and the metrics within it.
const TICK: Duration = Duration::from_millis(100);

pub(crate) async fn run(registry: Weak<Registry>) {
    // (probe, part) -> ok, in a stable order for the log.
    let mut seen: BTreeMap<(Probe, String), bool> = BTreeMap::new();
    let mut last: Option<Arc<HealthReport>> = None;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = registry.upgrade() else {
            return;
        };
        let health = Health::from_inner(inner);
        let report = HealthReport {
            liveness: health.liveness(),
            readiness: health.readiness(),
            startup: health.startup(),
        };
        let mut flipped = false;
        for probe in Probe::ALL {
            let check = report.get(probe);
            for p in &check.parts {
                let key = (probe, p.name.clone());
                let before = seen.insert(key, p.ok);
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
        let changed = match &last {
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
            last = Some(report);
        }
        drop(health);
    }
}
