//! The registry: what the service registered, and the three probes evaluated from it.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::dependency::{self, CheckOptions, DependencyState};
use super::gate::{GateState, StartupGate};
use super::membership;
use super::watchdog::{Watchdog, WatchdogState};
use super::{Check, CheckPart, HealthConfig, ms};
use crate::runtime::shared::{Shared, lock};

/// Part names rumor's runtime uses; the application cannot register them.
pub(crate) const RESERVED: [&str; 7] = [
    "watchdog",
    "joined",
    "not_leaving",
    "not_suspected",
    "local_health",
    "synced",
    "not_draining",
];

/// The longest part name: names travel in URLs (`?exclude=`) and metric labels.
const MAX_NAME_LEN: usize = 64;

/// Which of the three probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    /// Is this process wedged? (`/livez`)
    Liveness,
    /// Should it get traffic now? (`/readyz`)
    Readiness,
    /// Is it still booting? (`/startupz`)
    Startup,
}

impl Probe {
    /// All three, in the order of their paths.
    pub const ALL: [Probe; 3] = [Probe::Liveness, Probe::Readiness, Probe::Startup];

    /// `liveness`, `readiness` or `startup`: the `probe` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Probe::Liveness => "liveness",
            Probe::Readiness => "readiness",
            Probe::Startup => "startup",
        }
    }

    /// `livez`, `readyz` or `startupz`: the route, and the name in `?verbose` output.
    pub fn route_name(self) -> &'static str {
        match self {
            Probe::Liveness => "livez",
            Probe::Readiness => "readyz",
            Probe::Startup => "startupz",
        }
    }
}

/// The three probes at one moment, as [`Health::subscribe`] publishes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// `/livez`.
    pub liveness: Check,
    /// `/readyz`.
    pub readiness: Check,
    /// `/startupz`.
    pub startup: Check,
}

impl HealthReport {
    /// The check of `probe`.
    pub fn get(&self, probe: Probe) -> &Check {
        match probe {
            Probe::Liveness => &self.liveness,
            Probe::Readiness => &self.readiness,
            Probe::Startup => &self.startup,
        }
    }
}

/// [`Registry::started`]: startup has not passed yet.
const NOT_STARTED: u8 = 0;
/// Startup passed with no node plugged in: on the registry's own parts only. It
/// stands only while the registry is not meant to have a node ([`NO_NODE`]).
const STARTED_WITHOUT_NODE: u8 = 1;
/// Startup passed with a node plugged in (joined and synced): for good.
const STARTED_WITH_NODE: u8 = 2;

/// [`Registry::node_state`]: no node was ever plugged in or announced.
const NO_NODE: u8 = 0;
/// [`Health::expect_node`]: a node will be plugged in.
const NODE_EXPECTED: u8 = 1;
/// A node was plugged in (it may have gone since).
const NODE_ATTACHED: u8 = 2;

/// What the service registered.
#[derive(Default)]
struct Parts {
    /// Every name in use (and rumor's reserved ones): a name is unique across the
    /// three probes, so `?exclude=NAME` and the metrics' `part` label are unambiguous.
    names: BTreeSet<String>,
    watchdogs: Vec<Arc<WatchdogState>>,
    checks: Vec<Arc<DependencyState>>,
    gates: Vec<Arc<GateState>>,
}

pub(crate) struct Registry {
    /// Watchdog ticks are nanoseconds since this instant.
    pub epoch: Instant,
    parts: Mutex<Parts>,
    /// The rumor node plugged in, if any. Weak: the node's `Shared` holds this
    /// registry, and a strong pointer back would keep both alive forever.
    node: Mutex<Option<Weak<Shared>>>,
    /// `Health::set_draining`.
    draining: AtomicBool,
    /// Startup passed once: it stays passed (`STARTED_*`; a pass without a node does
    /// not count once the registry is meant to have one).
    started: AtomicU8,
    /// Whether the registry is meant to have a node (`NO_NODE`, `NODE_EXPECTED`,
    /// `NODE_ATTACHED`); only ever raised.
    node_state: AtomicU8,
    /// Background tasks (the monitor, each check's refresher) need a tokio runtime;
    /// false until every registered check has its refresher.
    tasks_running: AtomicBool,
    monitor_running: AtomicBool,
    pub report: watch::Sender<std::sync::Arc<HealthReport>>,
    /// Wakes the monitor at once on a change it is told of (the node's own state,
    /// `set_draining`); anything else it sees at its next idle look.
    pub changed: Arc<Notify>,
}

/// The health of a whole service: **one registry per service** that rumor's runtime
/// plugs into, answering Kubernetes' three probes with reasons. Cheap to clone (all
/// clones are the same registry).
///
/// The scope rules are the API's, not only its documentation's:
///
/// | probe | accepts | never |
/// |---|---|---|
/// | liveness ([`watchdog`](Health::watchdog)) | watchdogs the application ticks from each loop it wants watched, each with its own timeout; rumor's driver is one | anything async, any network or dependency: there is no method to register one, so a database outage can never get a healthy process restarted |
/// | readiness ([`readiness_check`](Health::readiness_check)) | async dependency checks, each with a hard timeout and a cached result refreshed in the background; rumor's membership conditions; the [draining](Health::set_draining) flag | a check run inside the probe handler |
/// | startup ([`startup_gate`](Health::startup_gate)) | named gates the application opens (`migrations`, `cache`); rumor's joined and first sync | — once passed, it stays passed (see *Startup's latch*) |
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use rumor::{CheckOptions, Health, RuntimeBuilder};
///
/// let health = Health::new();
/// let worker = health.watchdog("worker_loop", Duration::from_secs(10)); // liveness
/// health.readiness_check("db", CheckOptions::new(), || async {
///     Ok::<(), std::io::Error>(()) // ping the database here
/// });
/// let migrations = health.startup_gate("migrations");
/// let node = RuntimeBuilder::new("svc-1")
///     .bind("127.0.0.1:0".parse()?)
///     .health_registry(health.clone()) // rumor's parts join the same three probes
///     .start()
///     .await?;
/// migrations.open();
/// worker.tick(); // from the worker loop, each turn
/// assert!(health.liveness().ok);
/// # node.abort(); Ok(()) }
/// ```
///
/// Probes never wait: liveness and startup read atomics, readiness reads each
/// check's cached result, and rumor's parts read what its driver last published, so
/// a hung dependency or a wedged driver cannot wedge a probe (and a probe costs
/// microseconds; see `Health::router`, feature `axum`, for HTTP). A check that panics is
/// caught, logged and reported as failed.
///
/// Rumor's parts (with [`RuntimeBuilder::health_registry`](crate::RuntimeBuilder::health_registry),
/// or the registry every node gets by default, [`Handle::health`](crate::Handle::health)):
///
/// | probe | part | passes when |
/// |---|---|---|
/// | liveness | `watchdog` | the driver's loop ran within [`HealthConfig::liveness_timeout`] and has not stopped |
/// | readiness | `watchdog`, `joined`, `not_leaving`, `not_suspected`, `local_health` | the driver runs; joined; not draining or leaving; no peer suspected this node within [`HealthConfig::suspected_hold`] unless a stall of its own explains it and it refuted; local health ≤ [`HealthConfig::max_local_health`] |
/// | startup | `joined`, `synced` | joined (a seed, or a peer that joined through this node, answered; at once without seeds or with [`RuntimeBuilder::bootstrap`](crate::RuntimeBuilder::bootstrap)) and the first full state sync done; when not, the reason lists what each seed resolved to |
///
/// The registry itself adds `not_draining` to readiness. Those names are reserved.
///
/// Startup's latch: startup passes, and stays passed for the life of the registry,
/// once every gate is open and the node plugged in has joined and synced. A registry
/// without a node (used without rumor) latches on its gates alone; but a pass seen
/// before a node was plugged in does not count once one is, so a registry evaluated
/// early (by the monitor, a subscriber, or a probe served before
/// [`RuntimeBuilder::start`](crate::RuntimeBuilder::start)) does not skip the node's
/// join. Serving the probes before the node starts, call
/// [`expect_node`](Health::expect_node) first: the registry cannot otherwise know a
/// node is coming, and would answer `/startupz` on its own parts until then. Once a
/// node has been plugged in (or announced), readiness and startup fail with
/// `joined` while none is.
///
/// Transitions: a part that flips is logged through `tracing` (`info` when it
/// passes again, `warn` when it fails), counted in metrics, and the new
/// [`HealthReport`] is published on [`subscribe`](Health::subscribe)'s watch channel.
#[derive(Clone)]
pub struct Health {
    pub(crate) inner: Arc<Registry>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = lock(&self.inner.parts);
        f.debug_struct("Health")
            .field("watchdogs", &parts.watchdogs.len())
            .field("checks", &parts.checks.len())
            .field("gates", &parts.gates.len())
            .finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Health {
        Health::new()
    }
}

/// Why a name cannot be registered: a programming error, like a route that axum
/// rejects, so registration panics with it.
fn check_name(names: &BTreeSet<String>, name: &str) {
    assert!(
        !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')),
        "health part name {name:?}: use 1 to {MAX_NAME_LEN} of [A-Za-z0-9_.-]"
    );
    assert!(
        !RESERVED.contains(&name),
        "health part name {name:?} is reserved for rumor's own parts"
    );
    assert!(
        !names.contains(name),
        "health part name {name:?} is registered already"
    );
}

impl Health {
    /// An empty registry: liveness and readiness pass, startup passes, until parts
    /// are registered or a node is plugged in (or [expected](Health::expect_node)).
    pub fn new() -> Health {
        let empty = Check::from_parts(Vec::new());
        let (report, _) = watch::channel(Arc::new(HealthReport {
            liveness: empty.clone(),
            readiness: empty.clone(),
            startup: empty,
        }));
        Health {
            inner: Arc::new(Registry {
                epoch: Instant::now(),
                parts: Mutex::new(Parts::default()),
                node: Mutex::new(None),
                draining: AtomicBool::new(false),
                started: AtomicU8::new(NOT_STARTED),
                node_state: AtomicU8::new(NO_NODE),
                tasks_running: AtomicBool::new(true),
                monitor_running: AtomicBool::new(false),
                report,
                changed: Arc::new(Notify::new()),
            }),
        }
    }

    /// Registers a liveness watchdog: liveness fails once `timeout` passes without a
    /// [`Watchdog::tick`]. Tick it from the loop it watches, once per turn, so that a
    /// wedged or dead loop (a deadlock, an endless retry, a task that panicked and
    /// dropped its watchdog) fails liveness and Kubernetes restarts the process.
    /// Registration counts as the first tick.
    ///
    /// `timeout`: longer than the loop's longest legitimate turn plus the process's
    /// worst stall; at least 1 ms.
    ///
    /// # Panics
    /// If `name` is empty, longer than 64 bytes, not made of `[A-Za-z0-9_.-]`,
    /// reserved (rumor's parts) or registered already.
    pub fn watchdog(&self, name: impl Into<String>, timeout: Duration) -> Watchdog {
        let name = name.into();
        let state = Arc::new(WatchdogState::new(
            name.clone(),
            timeout.max(Duration::from_millis(1)),
            self.inner.epoch,
        ));
        {
            let mut parts = lock(&self.inner.parts);
            check_name(&parts.names, &name);
            parts.names.insert(name);
            parts.watchdogs.push(state.clone());
        }
        self.ensure_tasks();
        Watchdog {
            state,
            registry: Arc::downgrade(&self.inner),
        }
    }

    /// Registers a readiness dependency check: `check` runs in the background every
    /// [`CheckOptions::ttl`], cut at [`CheckOptions::timeout`], each run in a task of
    /// its own so that a panic is caught (reported as a failure with the panic's
    /// message, and logged). Probes read the last result and never wait for a run,
    /// so N probes cost one run per TTL whatever N is. Until the first run ends the
    /// part fails (`not checked yet`): a pod is not ready before its dependencies
    /// answered once.
    ///
    /// The check answers `Ok(())` or an error whose `Display` is the reason. It must
    /// be cancel-safe at every await (a timeout drops it there) and must not block
    /// its thread: a blocking call ties up a runtime worker that the timeout cannot
    /// free; use `tokio::task::spawn_blocking` inside it for blocking clients.
    ///
    /// Needs a tokio runtime to run checks: registered outside one, the check starts
    /// at the first probe evaluated inside one.
    ///
    /// # Panics
    /// On a bad or taken name, as [`watchdog`](Health::watchdog).
    pub fn readiness_check<F, Fut, E>(
        &self,
        name: impl Into<String>,
        options: CheckOptions,
        check: F,
    ) where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        let name = name.into();
        let state = Arc::new(DependencyState::new(name.clone(), options, check));
        {
            let mut parts = lock(&self.inner.parts);
            check_name(&parts.names, &name);
            parts.names.insert(name);
            parts.checks.push(state);
        }
        self.inner.tasks_running.store(false, Ordering::Release);
        self.ensure_tasks();
    }

    /// Registers a startup gate, closed until [`StartupGate::open`]: startup fails
    /// while any gate is closed (name one per boot phase: `migrations`, `cache`).
    /// Once every gate is open and rumor's node (if plugged in) has joined and
    /// synced, startup passes and stays passed for the life of the registry; a gate
    /// registered after that changes nothing. A pass before a node is plugged in is
    /// voided when it is (see [`Health`]'s *Startup's latch*).
    ///
    /// # Panics
    /// On a bad or taken name, as [`watchdog`](Health::watchdog).
    pub fn startup_gate(&self, name: impl Into<String>) -> StartupGate {
        let name = name.into();
        let state = Arc::new(GateState::new(name.clone()));
        {
            let mut parts = lock(&self.inner.parts);
            check_name(&parts.names, &name);
            parts.names.insert(name);
            parts.gates.push(state.clone());
        }
        self.ensure_tasks();
        StartupGate {
            state,
            epoch: self.inner.epoch,
        }
    }

    /// Takes the service out of readiness (`true`) or puts it back (`false`): the
    /// `not_draining` part. Set it first thing on SIGTERM, then keep serving for the
    /// readiness probe's `periodSeconds × failureThreshold` so the endpoints drop the
    /// pod before it stops. A rumor node's own drain (its cancel token, or
    /// [`Handle::leave_and_drain`](crate::Handle::leave_and_drain)) fails readiness by
    /// itself (`not_leaving`).
    pub fn set_draining(&self, draining: bool) {
        self.inner.draining.store(draining, Ordering::Relaxed);
        self.poke();
    }

    /// Tells the monitor that something changed, so the flip is logged, counted and
    /// published now rather than at its next idle look.
    pub(crate) fn poke(&self) {
        self.inner.changed.notify_one();
    }

    /// Whether [`set_draining`](Health::set_draining) took the service out.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Announces that a rumor node will be plugged in
    /// ([`RuntimeBuilder::health_registry`](crate::RuntimeBuilder::health_registry)):
    /// until it is, readiness and startup fail with `joined: no rumor node plugged in
    /// yet`. Call it right after [`Health::new`] when the probes are served (or
    /// [`subscribe`](Health::subscribe)d to) before the node starts: without it, the
    /// registry cannot tell a node is coming, and a startup probe in that window
    /// passes on the registry's own parts (the latch itself is voided when the node
    /// is plugged in, but a kubelet that saw startup pass stops asking). Idempotent.
    pub fn expect_node(&self) {
        self.inner
            .node_state
            .fetch_max(NODE_EXPECTED, Ordering::AcqRel);
    }

    /// Rumor's thresholds, if a node is plugged in.
    pub fn config(&self) -> Option<HealthConfig> {
        self.node().map(|s| s.health.clone())
    }

    /// Is this process wedged? Every watchdog (rumor's driver's among them) ticked
    /// within its timeout. Never depends on the network or a dependency.
    pub fn liveness(&self) -> Check {
        self.check(Probe::Liveness, &[])
    }

    /// Should this service get traffic? Rumor's membership conditions, not draining,
    /// and every dependency check's last result.
    pub fn readiness(&self) -> Check {
        self.check(Probe::Readiness, &[])
    }

    /// Is this service still booting? Every startup gate open and rumor's node
    /// joined and synced; once true it stays true (a pass before the node was plugged
    /// in does not count once it is: see [`Health`]'s *Startup's latch*).
    pub fn startup(&self) -> Check {
        self.check(Probe::Startup, &[])
    }

    /// One probe without the parts named in `exclude` (Kubernetes' `?exclude=`): an
    /// operator's way to keep a pod in service while one known-broken dependency is
    /// fixed. Names that match no part are ignored (the HTTP route reports them).
    pub fn check(&self, probe: Probe, exclude: &[&str]) -> Check {
        let (mut parts, with_node) = self.evaluate(probe);
        parts.retain(|p| !exclude.contains(&p.name.as_str()));
        let mut check = Check::from_parts(parts);
        if probe == Probe::Startup {
            if check.ok && exclude.is_empty() {
                let level = if with_node {
                    STARTED_WITH_NODE
                } else {
                    STARTED_WITHOUT_NODE
                };
                self.inner.started.fetch_max(level, Ordering::AcqRel);
            } else if self.started_latched() {
                // Passed once: stays passed, showing what changed since.
                for p in &mut check.parts {
                    if !p.ok {
                        p.ok = true;
                        p.detail = format!("startup passed earlier (now: {})", p.detail);
                    }
                }
                check = Check::from_parts(check.parts);
            }
        }
        check
    }

    /// The latest [`HealthReport`], republished whenever a part flips (checked by a
    /// background task, which also logs the flip and sets the metrics: at once when
    /// the rumor node's state changes or [`set_draining`](Health::set_draining) is
    /// called, within a second for anything else: a watchdog's expiry, a check's new
    /// result, a gate).
    ///
    /// A watch channel rather than a callback or a broadcast: a subscriber always
    /// sees the current state (what a load balancer hook or a gRPC health service
    /// wants to mirror), a slow subscriber never holds the registry up or loses the
    /// latest state to a full queue, and nothing of the application runs inside the
    /// registry's task. Every single flip is in the `tracing` log and the
    /// `rumor_health_transitions_total` counter.
    ///
    /// Needs a tokio runtime (the monitor task starts here if it has not yet).
    pub fn subscribe(&self) -> watch::Receiver<Arc<HealthReport>> {
        self.ensure_tasks();
        self.inner.report.subscribe()
    }

    /// When a peer last suspected this node, as time since its driver started; `None`
    /// without a node plugged in.
    pub fn last_suspected(&self) -> Option<Duration> {
        self.node().and_then(|s| membership::last_suspected(&s))
    }

    /// Whether startup passed for good: with a node plugged in, or on the registry's
    /// own parts while it is not meant to have a node. A pass before the node was
    /// plugged in says nothing about the node, so plugging one in (or
    /// [`expect_node`](Health::expect_node)) voids it. The node state is monotonic,
    /// so an evaluation racing with `attach` that latches without the node is voided
    /// by the next one.
    fn started_latched(&self) -> bool {
        match self.inner.started.load(Ordering::Acquire) {
            STARTED_WITH_NODE => true,
            STARTED_WITHOUT_NODE => self.inner.node_state.load(Ordering::Acquire) == NO_NODE,
            _ => false,
        }
    }

    /// Every part of `probe`, in order, nothing excluded (for the routes' `?exclude=`).
    #[cfg(feature = "axum")]
    pub(crate) fn parts(&self, probe: Probe) -> Vec<CheckPart> {
        self.evaluate(probe).0
    }

    /// Every part of `probe`, and whether a node was plugged in to answer for its
    /// parts.
    fn evaluate(&self, probe: Probe) -> (Vec<CheckPart>, bool) {
        self.ensure_tasks();
        // The state before the node: `attach` stores the node first, so a state of
        // `NODE_ATTACHED` with no node means the node is gone.
        let node_state = self.inner.node_state.load(Ordering::Acquire);
        let node = self.node();
        let node = node.as_deref();
        // Meant to have a node but none is plugged in: not joined.
        let missing = match (node, node_state) {
            (Some(_), _) | (None, NO_NODE) => None,
            (None, NODE_EXPECTED) => Some(CheckPart::new(
                "joined",
                false,
                "no rumor node plugged in yet",
            )),
            (None, _) => Some(CheckPart::new(
                "joined",
                false,
                "the rumor node plugged in has stopped and is gone",
            )),
        };
        let parts = lock(&self.inner.parts);
        let mut out = Vec::new();
        match probe {
            Probe::Liveness => {
                if let Some(s) = node {
                    out.push(membership::watchdog(s));
                }
                let now = Instant::now();
                out.extend(parts.watchdogs.iter().map(|w| w.part(now)));
            }
            Probe::Readiness => {
                if let Some(s) = node {
                    out.extend(membership::readiness(s));
                }
                out.extend(missing);
                let draining = self.is_draining();
                out.push(CheckPart::new(
                    "not_draining",
                    !draining,
                    if draining {
                        "the service is draining"
                    } else {
                        "not draining"
                    },
                ));
                let now = Instant::now();
                out.extend(parts.checks.iter().map(|c| c.part(now)));
            }
            Probe::Startup => {
                out.extend(parts.gates.iter().map(|g| g.part(self.inner.epoch)));
                if let Some(s) = node {
                    out.extend(membership::startup(s));
                }
                out.extend(missing);
            }
        }
        (out, node.is_some())
    }

    /// Plugs a node in. Fails if another node already is.
    pub(crate) fn attach(&self, shared: &Arc<Shared>) -> Result<(), ()> {
        let mut node = lock(&self.inner.node);
        let running = node
            .as_ref()
            .and_then(Weak::upgrade)
            .is_some_and(|s| !s.stopped.is_cancelled());
        if running {
            return Err(());
        }
        *node = Some(Arc::downgrade(shared));
        drop(node);
        // After the node: a reader that sees the state sees the node.
        self.inner
            .node_state
            .fetch_max(NODE_ATTACHED, Ordering::AcqRel);
        self.ensure_tasks();
        Ok(())
    }

    fn node(&self) -> Option<Arc<Shared>> {
        lock(&self.inner.node).as_ref().and_then(Weak::upgrade)
    }

    /// Starts the monitor and every check's refresher that is not running yet, if
    /// called inside a tokio runtime.
    fn ensure_tasks(&self) {
        let monitor = self.inner.monitor_running.load(Ordering::Acquire);
        let checks = self.inner.tasks_running.load(Ordering::Acquire);
        if monitor && checks {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.inner.monitor_running.swap(true, Ordering::AcqRel) {
            rt.spawn(super::monitor::run(
                Arc::downgrade(&self.inner),
                self.inner.changed.clone(),
            ));
        }
        if !self.inner.tasks_running.swap(true, Ordering::AcqRel) {
            let parts = lock(&self.inner.parts);
            for c in &parts.checks {
                if !c.spawned.swap(true, Ordering::AcqRel) {
                    rt.spawn(dependency::refresh(Arc::downgrade(c)));
                }
            }
        }
    }

    /// Removes a retired watchdog (and frees its name).
    pub(crate) fn retire(registry: &Weak<Registry>, state: &Arc<WatchdogState>) {
        if let Some(r) = registry.upgrade() {
            let mut parts = lock(&r.parts);
            parts.watchdogs.retain(|w| !Arc::ptr_eq(w, state));
            parts.names.remove(&state.name);
        }
    }

    /// The registry of a `Weak` the monitor holds.
    pub(crate) fn from_inner(inner: Arc<Registry>) -> Health {
        Health { inner }
    }
}

/// Time since `epoch`, for the reasons.
pub(crate) fn since(epoch: Instant, now: Instant) -> String {
    ms(now.saturating_duration_since(epoch))
}
