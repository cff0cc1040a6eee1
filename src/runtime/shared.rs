//! State the driver publishes for its handles and health checks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::health::{Health, HealthConfig, SuspicionLog};
use crate::event::{Event, Member};
use crate::id::NodeId;
use crate::runtime::seeds::{Resolve, SeedReport};
use crate::runtime::stall::StallHistogram;
use crate::stats::NodeStats;
use crate::time::Time;

/// Counters of the runtime itself (the socket), beside the core's [`NodeStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Datagrams not sent (the driver went on).
    pub send_errors: u64,
    /// Sends retried because the socket reported an ICMP error that arrived for an
    /// earlier datagram (Linux fails the next send with it); the retry sent the datagram.
    pub send_retries: u64,
    /// `recv_from` calls that failed (the driver went on), other than with an earlier
    /// datagram's ICMP error, which sends the driver to the error queue instead.
    pub recv_errors: u64,
    /// Refusals read from the socket's error queue (ICMP port unreachable, attributed to
    /// the destination) and handed to the core. Always 0 where unsupported.
    pub refusals: u64,
    /// Other entries of the error queue (host unreachable, message too long, ...).
    pub other_net_errors: u64,
    /// Wake-ups of the driver for the node's timers (each one's lateness measured).
    pub timers_fired: u64,
    /// Of those, the ones later than the core's `stall_threshold`: stalls of this
    /// process or of the driver's task.
    pub late_timers: u64,
    /// Every wake-up of the driver's loop, whatever woke it (a datagram, a timer, a
    /// command). The driver has no tick of its own: an idle node wakes about once per
    /// probe interval.
    pub wakeups: u64,
}

/// What the driver last published about its node.
#[derive(Clone, Debug)]
pub(crate) struct Status {
    pub joined: bool,
    /// Seeds were given and none has resolved to another node yet (no join started).
    pub join_pending: bool,
    /// Live members other than this node.
    pub live_peers: usize,
    pub synced: bool,
    pub leaving: bool,
    pub local_health: u32,
    /// Suspicions of this node, and whether a stall of its own explains them.
    pub suspicion: SuspicionLog,
    pub local: Member,
    pub stats: NodeStats,
    pub runtime: RuntimeStats,
}

/// Shared between the driver task and every [`Handle`](crate::Handle) and
/// [`Health`](crate::Health).
pub(crate) struct Shared {
    pub name: String,
    pub id: NodeId,
    pub local_addr: SocketAddr,
    pub advertise: SocketAddr,
    /// The driver's clock origin: `Time(n)` is `start + n` nanoseconds.
    pub start: Instant,
    pub health: HealthConfig,
    /// The service's health registry this node is plugged into
    /// (`RuntimeBuilder::health_registry`, or its own).
    pub registry: Health,
    /// `Time` (nanoseconds) at which the driver's loop last ran: the watchdog.
    pub heartbeat: AtomicU64,
    /// Readiness goes false at the start of `leave_and_drain`.
    pub draining: AtomicBool,
    pub status: Mutex<Status>,
    pub stalls: Mutex<StallHistogram>,
    /// Taken (dropped) when the driver stops, so event streams end.
    pub events: Mutex<Option<broadcast::Sender<Arc<Event>>>>,
    /// Subscribed before the driver started, for the first `Handle::events` call, so
    /// the join's events are not lost to the race between `start` and subscribing.
    pub first_events: Mutex<Option<broadcast::Receiver<Arc<Event>>>>,
    /// Drain, then leave (`RuntimeBuilder::cancel_token`).
    pub cancel: CancellationToken,
    /// Stops the driver at once, no Leave (`Handle::abort`).
    pub abort: CancellationToken,
    /// Set when the driver stopped after leaving (not aborted).
    pub left: AtomicBool,
    /// What each seed resolved to at the last attempt, for the health reasons.
    pub seed_reports: Mutex<Vec<SeedReport>>,
    /// Resolves seed names (the seed task, `Handle::join`).
    pub resolver: Arc<dyn Resolve>,
    /// Deadline of one resolution.
    pub resolve_timeout: Duration,
    /// Cancelled by the driver when it has stopped, for whatever reason.
    pub stopped: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The driver's clock now.
    pub fn now(&self) -> Time {
        Time::from_nanos(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a `Time`.
    pub fn instant(&self, t: Time) -> Instant {
        // Far-future times saturate: tokio panics on instants it cannot represent.
        let cap = Duration::from_secs(86_400 * 365);
        self.start + Duration::from_nanos(t.as_nanos()).min(cap)
    }

    /// The `Time` of a std instant (before the start: `Time::ZERO`).
    pub fn time_at(&self, at: Instant) -> Time {
        let since = at.saturating_duration_since(self.start);
        Time::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn beat(&self, now: Time) {
        self.heartbeat.store(now.as_nanos(), Ordering::Relaxed);
    }

    /// Time since the driver's loop last ran.
    pub fn since_heartbeat(&self) -> Duration {
        self.now()
            .saturating_since(Time::from_nanos(self.heartbeat.load(Ordering::Relaxed)))
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> MutexGuard<'_, Status> {
        lock(&self.status)
    }
}

/// Locks a mutex, ignoring poisoning: every value behind these locks is a plain
/// snapshot that is valid whatever a panicking writer left half done.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
