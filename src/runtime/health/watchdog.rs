//! Liveness watchdogs: in-process signals only, ticked by the loops they watch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::registry::{Health, Registry};
use super::{CheckPart, ms};

pub(crate) struct WatchdogState {
    pub name: String,
    pub timeout: Duration,
    epoch: Instant,
    /// Nanoseconds since `epoch` of the last tick: an atomic, so a tick is one store
    /// and a probe one load, whatever the loop and the probe are doing.
    last: AtomicU64,
}

impl WatchdogState {
    pub fn new(name: String, timeout: Duration, epoch: Instant) -> WatchdogState {
        let s = WatchdogState {
            name,
            timeout,
            epoch,
            last: AtomicU64::new(0),
        };
        s.tick();
        s
    }

    fn tick(&self) {
        let nanos = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos();
        self.last
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn since(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_nanos(self.last.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    pub fn part(&self, now: Instant) -> CheckPart {
        let since = self.since(now);
        CheckPart::new(
            self.name.clone(),
            since < self.timeout,
            format!("ticked {} ago (limit {})", ms(since), ms(self.timeout)),
        )
    }
}

/// A liveness watchdog, from [`Health::watchdog`]: liveness fails once its timeout
/// passes without a [`tick`](Watchdog::tick). Cheap to clone (clones tick the same
/// watchdog).
///
/// Dropping it does **not** remove it: a loop that ended by a panic drops its
/// watchdog, and that must fail liveness. A loop that ends on purpose calls
/// [`retire`](Watchdog::retire).
#[derive(Clone)]
pub struct Watchdog {
    pub(crate) state: Arc<WatchdogState>,
    pub(crate) registry: Weak<Registry>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("name", &self.state.name)
            .field("timeout", &self.state.timeout)
            .finish_non_exhaustive()
    }
}

impl Watchdog {
    /// The loop is making progress. One relaxed atomic store: call it every turn.
    pub fn tick(&self) {
        self.state.tick();
    }

    /// Its name (its part's name in `/livez?verbose`).
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// How long liveness tolerates no tick.
    pub fn timeout(&self) -> Duration {
        self.state.timeout
    }

    /// Time since the last tick.
    pub fn since_tick(&self) -> Duration {
        self.state.since(Instant::now())
    }

    /// The watched loop ended on purpose: remove the watchdog from liveness (its name
    /// may be registered again). The registry and its monitor forget it, so one
    /// watchdog per task costs nothing once the task is done; its
    /// `rumor_health_part` gauge keeps its last value, no longer updated (the
    /// `metrics` facade cannot remove a series; an exporter with an idle timeout
    /// drops it). Other clones of it tick nothing from then on.
    pub fn retire(self) {
        Health::retire(&self.registry, &self.state);
    }
}
