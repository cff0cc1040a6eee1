//! Startup gates: boot phases the application opens once done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::CheckPart;
use super::registry::since;

/// Not opened yet.
const CLOSED: u64 = u64::MAX;

pub(crate) struct GateState {
    pub name: String,
    /// Nanoseconds since the registry's epoch at which it was opened, or `CLOSED`.
    opened: AtomicU64,
}

impl GateState {
    pub fn new(name: String) -> GateState {
        GateState {
            name,
            opened: AtomicU64::new(CLOSED),
        }
    }

    pub fn part(&self, epoch: Instant) -> CheckPart {
        match self.opened.load(Ordering::Acquire) {
            CLOSED => CheckPart::new(self.name.clone(), false, "not opened yet"),
            at => CheckPart::new(
                self.name.clone(),
                true,
                format!(
                    "opened {} after start",
                    since(epoch, epoch + std::time::Duration::from_nanos(at))
                ),
            ),
        }
    }
}

/// A startup gate, from [`Health::startup_gate`](crate::Health::startup_gate): startup
/// fails until it is [opened](StartupGate::open). Cheap to clone.
#[derive(Clone)]
pub struct StartupGate {
    pub(crate) state: Arc<GateState>,
    pub(crate) epoch: Instant,
}

impl std::fmt::Debug for StartupGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartupGate")
            .field("name", &self.state.name)
            .field("open", &self.is_open())
            .finish()
    }
}

impl StartupGate {
    /// The boot phase is done. Idempotent; a gate never closes again.
    pub fn open(&self) {
        let at = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos();
        let at = u64::try_from(at).unwrap_or(CLOSED - 1).min(CLOSED - 1);
        let _ = self
            .state
            .opened
            .compare_exchange(CLOSED, at, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Whether it was opened.
    pub fn is_open(&self) -> bool {
        self.state.opened.load(Ordering::Acquire) != CLOSED
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.state.name
    }
}
