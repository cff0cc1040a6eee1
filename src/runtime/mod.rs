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
use tokio_util::sync::CancellationToken;
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
pub(crate) mod shared;
mod socket;
mod stall;

pub use handle::{EventStream, Handle, HandleError, Lagged};
pub use health::{Check, CheckPart, Health, HealthConfig};
pub use shared::RuntimeStats;
pub use stall::{MAX_PAUSE_SAMPLES, PAUSE_SAMPLE_MIN, STALL_BUCKETS, StallHistogram};

use driver::Driver;
use shared::{Shared, Status};

/// The default port, memberlist's.
pub const DEFAULT_PORT: u16 = 7946;

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
///     .seeds(["10.0.0.2:7946".parse()?])
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
/// [`RuntimeBuilder::start`] binds a socket2-configured UDP socket (`SO_REUSEADDR`, a
/// configurable receive buffer, IPv4 or IPv6), hands it to tokio and spawns **one**
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
/// stops the driver at once: no Leave is sent, so peers will find the node failed. For
/// a graceful exit call [`Handle::leave_and_drain`](crate::Handle::leave_and_drain):
/// readiness false, a drain delay, Leave gossiped, then stop; peers see Left.
///
/// # Metrics and tracing
/// Through the `metrics` facade only; the library never installs a recorder: install
/// yours before `start` (the driver registers its metrics then).
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
/// | `rumor_bytes_in_total`, `rumor_bytes_out_total` | counter | |
/// | `rumor_decode_errors_total` | counter | `kind` = [`DecodeErrorKind::as_str`](crate::DecodeErrorKind::as_str) |
/// | `rumor_send_errors_total`, `rumor_send_retries_total`, `rumor_recv_errors_total` | counter | |
/// | `rumor_refusals_total`, `rumor_refusals_unverified_total`, `rumor_refusal_convictions_total` | counter | |
/// | `rumor_reconnects_total` | counter | |
/// | `rumor_timer_lateness_seconds` | histogram | |
///
/// Counters are exported from [`NodeStats`](crate::NodeStats) deltas after each input
/// batch. Every metric also carries the labels given to
/// [`metrics_label`](RuntimeBuilder::metrics_label) (for several nodes in one process,
/// add a `node` label). Every log line of the driver is inside the span
/// `rumor{node=NAME}`; membership changes are logged at `debug`, packets at `trace`.
#[derive(Debug)]
pub struct RuntimeBuilder {
    name: String,
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    seeds: Vec<SocketAddr>,
    config: Config,
    rng_seed: Option<u64>,
    incarnation: Option<u64>,
    metadata: Bytes,
    recv_buffer: Option<usize>,
    refusals: bool,
    cancel: Option<CancellationToken>,
    event_capacity: usize,
    health: Option<HealthConfig>,
    leave_timeout: Option<Duration>,
    metrics_labels: Vec<(String, String)>,
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
            config: Config::default(),
            rng_seed: None,
            incarnation: None,
            metadata: Bytes::new(),
            recv_buffer: Some(4 << 20),
            refusals: true,
            cancel: None,
            event_capacity: 1024,
            health: None,
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

    /// Addresses of existing members to join through. None (the default): this node
    /// starts a cluster of one that others join.
    pub fn seeds(mut self, seeds: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.seeds = seeds.into_iter().collect();
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

    /// Stops the driver at once when cancelled (no Leave). Default: a fresh token,
    /// available from [`Handle::cancel_token`].
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

    /// How long [`Handle::leave_and_drain`] keeps the node running after gossiping
    /// Leave, at most, waiting for the Leave to have been sent its full number of
    /// times. Default: the larger of 2 s and 10 gossip intervals.
    pub fn leave_timeout(mut self, timeout: Duration) -> Self {
        self.leave_timeout = Some(timeout);
        self
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
            .unwrap_or_else(|| Duration::from_secs(2).max(self.config.gossip_interval * 10));
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
            heartbeat: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            status: Mutex::new(Status {
                joined: false,
                synced: false,
                leaving: false,
                local_health: 0,
                self_suspected_at: None,
                local: node.local_member(),
                stats: node.stats(),
                runtime: RuntimeStats::default(),
            }),
            stalls: Mutex::new(StallHistogram::default()),
            events: Mutex::new(Some(events_tx.clone())),
            first_events: Mutex::new(Some(first_events)),
            cancel: self.cancel.unwrap_or_default(),
            stopped: CancellationToken::new(),
        });
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
            self.seeds,
            refusals_on,
        );
        let span = tracing::info_span!("rumor", node = %name);
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
