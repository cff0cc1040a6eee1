//! The tokio runtime (feature `tokio`, on by default): one driver task per node over a
//! UDP socket, and a [`Handle`] for the application. The design is documented on
//! [`RuntimeBuilder`], the public entry point.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::Instrument;

use crate::config::Config;
use crate::error::ConfigError;
use crate::id::{Identity, NodeId};
use crate::node::{MAX_INCARNATION, Node};
use crate::time::Time;

#[cfg(feature = "axum")]
mod axum;
mod driver;
mod error_queue;
mod handle;
mod health;
pub(crate) mod metrics;
mod seeds;
pub(crate) mod shared;
mod socket;
mod stall;
mod stall_clock;

pub use handle::{EventStream, Handle, HandleError, Lagged};
pub use health::{
    Check, CheckOptions, CheckPart, Health, HealthConfig, HealthReport, Probe, StartupGate,
    Watchdog,
};
pub use seeds::{Resolve, ResolveFuture, Seed, SeedError, SystemResolver};
pub use shared::RuntimeStats;
pub use stall::{
    MAX_PAUSE_SAMPLES, PAUSE_SAMPLE_MIN, STALL_BUCKETS, STALL_BUCKETS_SECONDS, StallHistogram,
};
/// The token type of [`RuntimeBuilder::cancel_token`], re-exported so an application
/// needs no `tokio-util` dependency of its own to wire its shutdown to rumor's.
pub use tokio_util::sync::CancellationToken;

use driver::{Driver, DriverPlan};
use shared::{Shared, Status};

/// The longest seed retry or refresh interval the builder keeps (an hour).
const MAX_SEED_INTERVAL: Duration = Duration::from_secs(3600);

/// The default port, memberlist's.
pub const DEFAULT_PORT: u16 = 7946;

/// The default of [`RuntimeBuilder::resolve_timeout`]: one `resolv.conf` timeout, the
/// worst a seed lookup costs when the DNS server does not answer. Public for tools
/// that budget a start (`rumor-node doctor`'s startup probe rule).
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why [`RuntimeBuilder::start`] failed. Nothing was left running.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The config or the identity (name, metadata) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The UDP socket could not be created, configured or bound.
    #[error("cannot bind a UDP socket at {addr}: {source}")]
    Bind {
        /// The bind address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// Peers cannot send to an unspecified address (`0.0.0.0`, `::`): bind there if
    /// you like, but advertise an address they can reach.
    #[error(
        "the advertise address {0} is unspecified: set RuntimeBuilder::advertise to an address peers can reach"
    )]
    UnspecifiedAdvertise(SocketAddr),
    /// A seed is neither `IP:PORT` nor `HOST:PORT`.
    #[error("seed {seed:?}: {error}")]
    Seed {
        /// The seed as given.
        seed: String,
        /// What is wrong with it.
        error: SeedError,
    },
    /// The registry given to [`RuntimeBuilder::health_registry`] has a running node
    /// plugged in already: rumor's parts (`watchdog`, `joined`, …) would collide.
    #[error("the health registry already has a running rumor node plugged in")]
    HealthRegistryInUse,
}

/// Configures and starts a node on the tokio runtime (feature `tokio`). Only the name
/// is required; everything else has a default.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use rumor::{Config, RuntimeBuilder};
///
/// let handle = RuntimeBuilder::new("node-1")
///     .bind("0.0.0.0:7946".parse()?)
///     .advertise("10.0.0.1:7946".parse()?)
///     .seeds(["10.0.0.2:7946"]) // or a name: "rumor.ns.svc.cluster.local:7946"
///     .config(Config::lan())
///     .start()
///     .await?;
/// let mut events = handle.events();
/// while let Some(event) = events.next().await {
///     println!("{event:?}");
/// }
/// # Ok(()) }
/// ```
///
/// # The driver
/// [`RuntimeBuilder::start`] binds a socket2-configured UDP socket (a configurable
/// receive buffer, IPv4 or IPv6; no `SO_REUSEADDR`, so a taken port is an error), hands it to tokio and spawns **one**
/// task that owns the [`Node`](crate::Node). Its loop is a `biased` `select!` over, in
/// order: cancellation, commands from handles, the socket, and a sleep until the node's
/// next timeout. After every input it fires the node's timers if they are due (so a
/// flood of datagrams cannot starve them), sends every datagram `poll_transmit` yields
/// (a failed send is counted in [`RuntimeStats`] and the loop goes on: UDP is lossy
/// anyway), delivers every event, and publishes the member list, status and counters
/// for the handles. Handles never lock the node: they read published snapshots, and
/// commands travel over a channel and are answered.
///
/// # Time
/// The node's [`Time`](crate::Time) is nanoseconds since the driver's start, read from
/// `tokio::time::Instant`, so tests may pause and advance tokio's clock. The wall
/// clock is read only at start, for two defaults:
/// - the **incarnation** is the wall clock in seconds, so a restarted process starts
///   above every incarnation its previous life used (at most one metadata change per
///   second on average keeps that true; if it is not, the core still recovers by
///   refuting its old self);
/// - the **RNG seed** mixes the wall clock's nanoseconds, the process id and the
///   node's name, so nodes started together still make different random choices. The
///   core never draws unseeded randomness; give [`RuntimeBuilder::rng_seed`] to make a
///   run reproducible.
///
/// # State sync travels as datagrams, not TCP
/// Push-pull anti-entropy and the join's full-state transfer go over the same UDP
/// socket: the core splits a digest into id-range chunks and answers each with the
/// entries it lacks, every message within `max_packet_size`, so no transfer needs a
/// stream. That keeps one socket, one port to open in firewalls and network
/// policies, one code path for the simulator and the runtime (which drive the same
/// `Node`), and no connection state for a peer to exhaust. A lost datagram costs part of
/// one sync round, which the next round repairs; a join retries until a seed's answer
/// ends, and the extra push-pull that follows a join fills the rest.
///
/// # Self-stall measurement
/// The driver records how late each timer fired in a [`StallHistogram`] (also the
/// metric `rumor_timer_lateness_seconds`). [`Handle::write_pauses`](crate::Handle::write_pauses)
/// writes its samples as the pauses file `rumor-sim tune --pauses FILE` reads, which
/// finds the `acceptable_pause` and thresholds that survive the stalls this very
/// process has.
///
/// # Shutdown
/// The library installs no signal handlers. Cancelling the [`CancellationToken`]
/// (yours, given to [`RuntimeBuilder::cancel_token`], or [`Handle::cancel_token`](crate::Handle::cancel_token))
/// leaves gracefully: readiness false at once, [`RuntimeBuilder::drain`], Leave
/// gossiped until sent (at most [`RuntimeBuilder::leave_timeout`]), then the driver
/// stops; peers see Left. [`Handle::leave_and_drain`](crate::Handle::leave_and_drain)
/// does the same with a drain of its own and returns when the driver has stopped, so
/// the usual wiring (cancel the service's token on SIGTERM, then await the handle) is
/// right whichever comes first. [`Handle::abort`](crate::Handle::abort) stops at once
/// without a Leave (peers find the node failed). Await
/// [`Handle::stopped`](crate::Handle::stopped) before the tokio runtime shuts down:
/// a dropped runtime drops the driver mid-leave.
///
/// # Metrics and tracing
/// Through the `metrics` facade only; the library never installs a recorder. Install
/// yours before `start` to see everything; one installed later sees every metric
/// within 5 s (the driver registers them again every 5 s): counters with their totals
/// since start (exported as absolute values), gauges from their next change, timer
/// lateness from then on.
///
/// | name | kind | labels |
/// |---|---|---|
/// | `rumor_members` | gauge | `state` = alive, suspect, dead, left |
/// | `rumor_probes_total` | counter | |
/// | `rumor_indirect_probes_total` | counter | |
/// | `rumor_suspicions_total` | counter | |
/// | `rumor_convictions_total` | counter | |
/// | `rumor_refutations_total` | counter | |
/// | `rumor_stalls_total`, `rumor_stalls_repeated_total` | counter | |
/// | `rumor_packets_in_total`, `rumor_packets_out_total` | counter | |
/// | `rumor_received_bytes_total`, `rumor_sent_bytes_total` | counter | |
/// | `rumor_decode_errors_total` | counter | `kind` = [`DecodeErrorKind::as_str`](crate::DecodeErrorKind::as_str) |
/// | `rumor_send_errors_total`, `rumor_send_retries_total`, `rumor_recv_errors_total` | counter | |
/// | `rumor_refusals_total`, `rumor_refusals_unverified_total`, `rumor_refusal_convictions_total` | counter | |
/// | `rumor_probes_rechecked_total` | counter (monitor pings sent again, unanswered within the usual round trip) | |
/// | `rumor_reconnects_total` | counter | |
/// | `rumor_timer_lateness_seconds` | histogram (give the exporter [`STALL_BUCKETS_SECONDS`] as its buckets) | |
/// | `rumor_observed_seconds_total` | counter (seconds the driver has run: the window of the lateness histogram) | |
/// | `rumor_local_health` | gauge | |
/// | `rumor_health_check` | gauge (1 passing, 0 failing; at most once a second, and on a change of the node's state): the whole registry's readiness and startup, the service's dependency checks and gates included | `check` = readiness, startup (no liveness: a wedged driver could not lower it) |
/// | `rumor_health_part` | gauge (1 passing, 0 failing; on a change it is told of, else once a second), one per part of the [`Health`] registry; set by the registry, without the node's labels | `probe` = liveness, readiness, startup; `part` = the part's name |
/// | `rumor_health_transitions_total` | counter: a part flipped (each flip is also logged: `warn` to failing, `info` back) | `probe`, `part` |
/// | `rumor_health_check_seconds` | histogram: how long each run of a readiness dependency check took (a timed-out run counts its timeout) | `check` = the check's name |
/// | `rumor_health_check_runs_total` | counter: runs of a readiness dependency check | `check`; `outcome` = ok, failed, timeout, panic |
///
/// Every name carries its unit where it has one (`_bytes_total`, `_seconds`), so the
/// Prometheus exporter's recommended naming leaves the names unchanged. Counters are
/// exported from [`NodeStats`](crate::NodeStats) deltas after each input
/// batch. Every metric also carries the labels given to
/// [`metrics_label`](RuntimeBuilder::metrics_label) (for several nodes in one process,
/// add a `node` label). Every log line of the driver is inside the span
/// `rumor{node=NAME}`; membership changes are logged at `debug`, packets at `trace`.
pub struct RuntimeBuilder {
    name: String,
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    seeds: Vec<Seed>,
    resolver: Arc<dyn Resolve>,
    resolve_timeout: Duration,
    seed_retry: Duration,
    seed_refresh: Duration,
    bootstrap: bool,
    drain: Duration,
    config: Config,
    rng_seed: Option<u64>,
    incarnation: Option<u64>,
    metadata: Bytes,
    recv_buffer: Option<usize>,
    refusals: bool,
    cancel: Option<CancellationToken>,
    event_capacity: usize,
    health: Option<HealthConfig>,
    registry: Option<Health>,
    leave_timeout: Option<Duration>,
    metrics_labels: Vec<(String, String)>,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("name", &self.name)
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("seeds", &self.seeds)
            .field("bootstrap", &self.bootstrap)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// A builder for the node named `name` (unique in the cluster; at most
    /// [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) bytes).
    pub fn new(name: impl Into<String>) -> RuntimeBuilder {
        RuntimeBuilder {
            name: name.into(),
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)),
            advertise: None,
            seeds: Vec::new(),
            resolver: Arc::new(SystemResolver),
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            seed_retry: Duration::from_secs(2),
            seed_refresh: Duration::from_secs(60),
            bootstrap: false,
            drain: Duration::ZERO,
            config: Config::default(),
            rng_seed: None,
            incarnation: None,
            metadata: Bytes::new(),
            recv_buffer: Some(4 << 20),
            refusals: true,
            cancel: None,
            event_capacity: 1024,
            health: None,
            registry: None,
            leave_timeout: None,
            metrics_labels: Vec::new(),
        }
    }

    /// The address to bind the UDP socket to. Default `0.0.0.0:7946`. Port 0 picks a
    /// free port ([`Handle::local_addr`] tells which).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The address peers send to. Default: the bound address, which must then not be
    /// unspecified. A port of 0 here means the bound port.
    pub fn advertise(mut self, addr: SocketAddr) -> Self {
        self.advertise = Some(addr);
        self
    }

    /// Where to find existing members: addresses, or host names with a port that DNS
    /// resolves (`"rumor-headless.ns.svc.cluster.local:7946"`; anything that converts
    /// into a [`Seed`]). None (the default): this node is the first member, a cluster of
    /// one that others join.
    ///
    /// With seeds, the node joins through whatever they resolve to other than itself.
    /// Names are resolved off the driver, again every
    /// [`seed_retry`](RuntimeBuilder::seed_retry) (backing off to 8 times that) while
    /// this node knows no live peer, and every [`seed_refresh`](RuntimeBuilder::seed_refresh)
    /// after: an address that no live member holds is synced with, so a cluster that
    /// formed apart merges. Until a seed (or a peer that joined through this node)
    /// answers, the node is not joined: [`Health::startup`](crate::Health::startup)
    /// and readiness fail with what each seed resolved to. A node that may form the
    /// cluster alone although seeds were given (its seeds resolve to itself only) needs
    /// [`bootstrap`](RuntimeBuilder::bootstrap).
    pub fn seeds<S: Into<Seed>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// Whether this node may form a cluster alone although seeds were given: it is
    /// joined at once, as a node without seeds is, and merges with whatever its seeds
    /// resolve to later. Default false. For exactly one node of a new cluster (a
    /// StatefulSet's ordinal 0): two bootstrap nodes that start together form two
    /// clusters until a seed refresh merges them.
    pub fn bootstrap(mut self, bootstrap: bool) -> Self {
        self.bootstrap = bootstrap;
        self
    }

    /// Resolves seed names. Default [`SystemResolver`] (the system's `getaddrinfo`,
    /// as every other program in the container).
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// The deadline of one seed name's resolution. Default
    /// [`DEFAULT_RESOLVE_TIMEOUT`] (5 s, one `resolv.conf` timeout); range: above 0. A lookup past it counts as failed and is retried.
    pub fn resolve_timeout(mut self, timeout: Duration) -> Self {
        self.resolve_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How soon seeds are resolved again while this node knows no live peer, doubling
    /// up to 8 times this while it stays alone. Default 2 s; at least 100 ms. Lower
    /// joins sooner after DNS starts answering, at one lookup per seed name each time.
    /// At most an hour.
    pub fn seed_retry(mut self, interval: Duration) -> Self {
        self.seed_retry = interval.clamp(Duration::from_millis(100), MAX_SEED_INTERVAL);
        self
    }

    /// How often seeds are resolved once this node has live peers, to merge with any
    /// seed address that no live member holds. Default 60 s (chitchat's); at least
    /// the seed retry. Lower merges clusters that formed apart sooner; each refresh
    /// costs a lookup per name and, only for unknown addresses, a state sync. At most
    /// an hour.
    pub fn seed_refresh(mut self, interval: Duration) -> Self {
        self.seed_refresh = interval.min(MAX_SEED_INTERVAL);
        self
    }

    /// How long a cancelled node keeps serving with readiness false before it gossips
    /// Leave (see [`cancel_token`](RuntimeBuilder::cancel_token)). Default 0. On
    /// Kubernetes: the readiness probe's `periodSeconds × failureThreshold`, so
    /// endpoints drop the pod before it leaves.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// The protocol configuration. Default [`Config::lan`].
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Seeds the node's random choices. Default: derived from the wall clock, the
    /// process id and the name (see [Time](RuntimeBuilder#time)).
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = Some(seed);
        self
    }

    /// The incarnation to start at. Default: the wall clock in seconds, so a restarted
    /// process starts above its previous life.
    pub fn incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = Some(incarnation);
        self
    }

    /// Initial metadata (at most `Config::max_metadata_size` bytes). Default empty.
    pub fn metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// The socket's receive buffer (`SO_RCVBUF`) in bytes, or `None` for the system
    /// default. Default 4 MiB: datagrams queue there while the process is stalled. The
    /// kernel caps it (Linux: `net.core.rmem_max`); a failure to set it is logged, not
    /// fatal.
    pub fn recv_buffer_size(mut self, bytes: Option<usize>) -> Self {
        self.recv_buffer = bytes;
        self
    }

    /// Whether to learn from the network which members' ports are closed (ICMP port
    /// unreachable), so a crashed process is convicted in `Config::refusal_window`
    /// rather than after `acceptable_pause`. Default true. Linux only (`IP_RECVERR`);
    /// elsewhere refusals cannot be attributed to an address and detection uses silence
    /// alone, whatever this says.
    pub fn refusals(mut self, enabled: bool) -> Self {
        self.refusals = enabled;
        self
    }

    /// The token that makes the node leave gracefully when cancelled: readiness false
    /// at once, [`drain`](RuntimeBuilder::drain), Leave gossiped until sent (bounded by
    /// [`leave_timeout`](RuntimeBuilder::leave_timeout)), then the driver stops and
    /// peers see the node Left. So a service may hand rumor its own shutdown token (or
    /// a child of it) and cancel it on SIGTERM; calling
    /// [`Handle::leave_and_drain`] as well is fine. [`Handle::abort`] stops at once,
    /// without a Leave. Default: a fresh token, available from
    /// [`Handle::cancel_token`].
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Events buffered per [`EventStream`] before the oldest are dropped and the
    /// stream reports [`Lagged`]. Default 1024; at least 1.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Health check thresholds. Default [`HealthConfig::for_config`] of the config.
    pub fn health(mut self, health: HealthConfig) -> Self {
        self.health = Some(health);
        self
    }

    /// Plugs the node into the service's health registry, so that one `/livez`,
    /// `/readyz` and `/startupz` answer for the whole service: the driver's watchdog
    /// joins liveness, its membership conditions readiness, joined-and-synced
    /// startup (see [`Health`] for the parts). Default: a registry of the node's own,
    /// from [`Handle::health`]. One running node per registry
    /// ([`StartError::HealthRegistryInUse`] otherwise). If the registry's routes are
    /// served before `start()`, call [`Health::expect_node`] first, so that a probe in
    /// between cannot pass startup on the application's parts alone.
    pub fn health_registry(mut self, registry: Health) -> Self {
        self.registry = Some(registry);
        self
    }

    /// How long [`Handle::leave_and_drain`] keeps the node running after gossiping
    /// Leave, at most, waiting for the Leave to have been sent its full number of
    /// times. Default: [`RuntimeBuilder::default_leave_timeout`] of the config.
    pub fn leave_timeout(mut self, timeout: Duration) -> Self {
        self.leave_timeout = Some(timeout);
        self
    }

    /// The default [`leave_timeout`](RuntimeBuilder::leave_timeout) for a node
    /// running `config`: the larger of 2 s and 10 gossip intervals. Public for tools
    /// that budget a stop (`rumor-node doctor`'s grace period rule).
    pub fn default_leave_timeout(config: &Config) -> Duration {
        Duration::from_secs(2).max(config.gossip_interval * 10)
    }

    /// Adds a label to every metric this node records (e.g. `node` = its name, when a
    /// process runs several nodes).
    pub fn metrics_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metrics_labels.push((key.into(), value.into()));
        self
    }

    /// Binds the socket, creates the node and spawns its driver on the current tokio
    /// runtime. The node starts joining at once; watch
    /// [`Health::startup`](crate::Health::startup) or the events to know when it has.
    pub async fn start(self) -> Result<Handle, StartError> {
        self.config.validate()?;
        if let Some((seed, error)) = self.seeds.iter().find_map(Seed::invalid) {
            return Err(StartError::Seed {
                seed: seed.to_string(),
                error: error.clone(),
            });
        }
        let bind_err = |source| StartError::Bind {
            addr: self.bind,
            source,
        };
        let socket = socket::bind(self.bind, self.recv_buffer).map_err(bind_err)?;
        let local_addr = socket.local_addr().map_err(bind_err)?;
        let refusals_on = self.refusals
            && error_queue::SUPPORTED
            && match error_queue::enable(&socket) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "could not enable refusal reports; detection by silence only");
                    false
                }
            };
        let mut advertise = self.advertise.unwrap_or(local_addr);
        if advertise.port() == 0 {
            advertise.set_port(local_addr.port());
        }
        if advertise.ip().is_unspecified() {
            return Err(StartError::UnspecifiedAdvertise(advertise));
        }
        let name = self.name;
        let incarnation = self
            .incarnation
            .unwrap_or_else(|| wall_clock().as_secs())
            .min(MAX_INCARNATION);
        let rng_seed = self.rng_seed.unwrap_or_else(|| derive_seed(&name));
        let identity = Identity {
            name: name.clone(),
            addr: advertise,
            incarnation,
            metadata: self.metadata,
        };
        let id: NodeId = identity.id();
        let start = tokio::time::Instant::now();
        let mut node = Node::new(identity, self.config.clone(), rng_seed, Time::ZERO)?;
        node.set_nonce_prefix(nonce_prefix());
        node.set_token_secret(token_secret());
        let health = self
            .health
            .unwrap_or_else(|| HealthConfig::for_config(&self.config));
        let leave_timeout = self
            .leave_timeout
            .unwrap_or_else(|| RuntimeBuilder::default_leave_timeout(&self.config));
        let (events_tx, first_events) = broadcast::channel(self.event_capacity);
        let (members_tx, members_rx) = watch::channel(Arc::new(Vec::new()));
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            name: name.clone(),
            id,
            local_addr,
            advertise,
            start,
            health,
            registry: self.registry.unwrap_or_default(),
            heartbeat: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            status: Mutex::new(Status {
                joined: false,
                join_pending: false,
                live_peers: 0,
                synced: false,
                leaving: false,
                local_health: 0,
                suspicion: health::SuspicionLog::default(),
                local: node.local_member(),
                stats: node.stats(),
                runtime: RuntimeStats::default(),
            }),
            stalls: Mutex::new(StallHistogram::default()),
            events: Mutex::new(Some(events_tx.clone())),
            first_events: Mutex::new(Some(first_events)),
            cancel: self.cancel.unwrap_or_default(),
            abort: CancellationToken::new(),
            left: AtomicBool::new(false),
            seed_reports: Mutex::new(Vec::new()),
            resolver: self.resolver,
            resolve_timeout: self.resolve_timeout,
            stopped: CancellationToken::new(),
        });
        if shared.registry.attach(&shared).is_err() {
            return Err(StartError::HealthRegistryInUse);
        }
        let labels: Vec<::metrics::Label> = self
            .metrics_labels
            .into_iter()
            .map(|(k, v)| ::metrics::Label::new(k, v))
            .collect();
        let driver = Driver::new(
            node,
            socket,
            shared.clone(),
            cmd_rx,
            events_tx,
            members_tx,
            metrics::Metrics::new(&labels),
            leave_timeout,
            DriverPlan {
                literal_seeds: self.seeds.iter().filter_map(Seed::addr).collect(),
                seeds_given: !self.seeds.is_empty(),
                bootstrap: self.bootstrap,
                drain: self.drain,
            },
            refusals_on,
        );
        let span = tracing::info_span!("rumor", node = %name);
        if !self.seeds.is_empty() {
            let schedule = seeds::Schedule {
                retry: self.seed_retry,
                refresh: self.seed_refresh.max(self.seed_retry),
            };
            let task = seeds::run(shared.clone(), cmd_tx.clone(), self.seeds, schedule);
            tokio::spawn(task.instrument(span.clone()));
        }
        tokio::spawn(driver.run().instrument(span));
        Ok(Handle {
            shared,
            cmds: cmd_tx,
            members: members_rx,
        })
    }
}

/// Time since the Unix epoch, read once per start for the default incarnation and RNG
/// seed (never inside the driver, whose clock is `tokio::time::Instant`).
fn wall_clock() -> Duration {
    // The wall clock is exactly what is wanted here: a restarted process must pick an
    // incarnation above its previous life's, and nodes started together different seeds.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// A per-process, per-node RNG seed: splitmix64 over the wall clock's nanoseconds, the
/// process id and the name's id.
fn derive_seed(name: &str) -> u64 {
    let nanos = wall_clock().as_nanos() as u64;
    let mut z = nanos ^ (u64::from(std::process::id()) << 32) ^ NodeId::from_name(name).0;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fresh randomness for the encryption nonces' per-process prefix: the node's seed may
/// repeat across restarts, a nonce under the same key must not. Should the OS refuse,
/// the wall clock in nanoseconds and the process id still differ from any earlier start.
fn nonce_prefix() -> [u8; 16] {
    let mut p = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut p) {
        tracing::warn!(error = %e, "no OS randomness for nonces; using clock and pid");
        let t = wall_clock().as_nanos();
        p.copy_from_slice(&(t ^ (u128::from(std::process::id()) << 96)).to_le_bytes());
    }
    p
}

/// The secret the node's probe tokens come from (see `Node::set_token_secret`): OS
/// randomness, so that no one can predict them from the node's seed. Should the OS
/// refuse, two nonce-style draws (clock and pid) are the fallback: weaker, but no
/// worse than the seed.
fn token_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut s) {
        tracing::warn!(error = %e, "no OS randomness for probe tokens; using clock and pid");
        s[..16].copy_from_slice(&nonce_prefix());
        s[16..].copy_from_slice(&derive_seed("token").to_le_bytes().repeat(2));
    }
    s
}
