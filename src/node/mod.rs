//! The sans-IO state machine: one member of a cluster.

mod inbound;
mod outbound;
mod probe;
mod reconnect;
mod refusal;
mod stall;
mod sync;
mod verdicts;

use stall::StallGuard;
use sync::Joining;

pub use probe::DetectorView;

use inbound::Inbound;
pub(crate) use outbound::member_len;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tracing::{debug, trace};

use crate::budget::{Budgets, Work};
use crate::config::{Config, Strategy};
use crate::detector::{PhiParams, y_for_phi};
use crate::dissemination::{Queue, SeenBroadcasts, UpdateKey};
use crate::error::{CommandError, ConfigError};
use crate::event::{Event, Member, MemberState};
use crate::hashing::{self, KeyedMap};
use crate::id::{Identity, MAX_NAME_LEN, NodeId};
use crate::keyring::{self, Keyring, PAYLOAD_OFFSET, SEAL_OVERHEAD, Sealer};
use crate::local_health::LocalHealth;
use crate::members::{Entry, Local, Members};
use crate::probe_tokens::ProbeTokens;
use crate::stats::NodeStats;
use crate::suspicion::Suspicion;
use crate::time::Time;
use crate::timers::{Due, OneShot, Periodic, Timers};
use crate::wire::{self, DecodeLimits, Envelope, PacketWriter};
use probe::RoundTrip;
use probe::{Monitoring, ProbeKind, Probes};
use reconnect::ReconnectCandidates;
use refusal::Refusal;

/// A datagram produced by [`Node::poll_transmit`]: send `buf[..len]` to `destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the caller's buffer hold the datagram.
    pub len: usize,
}

/// What a datagram carries besides piggybacked updates.
#[derive(Clone, Debug)]
pub(crate) enum Primary {
    Ping {
        seq: u32,
        target: NodeId,
    },
    Ack {
        seq: u32,
    },
    PingReq {
        seq: u32,
        target: NodeId,
        addr: Bytes,
    },
    Nack {
        seq: u32,
        refused: bool,
    },
    /// Piggybacked updates only.
    Gossip,
    /// Our Alive and a digest naming only ourselves: the seed answers with everything.
    Join,
    Digest(wire::SyncDigest),
    Want(wire::SyncWant),
    /// Full entries for these members, packed over as many datagrams as needed.
    Entries(VecDeque<Delta>),
}

/// One state-sync delta to send.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delta {
    pub id: NodeId,
    pub peer: PeerKnows,
}

/// What the peer receiving a delta knows of the member. A suspect it may not know goes
/// with its descriptor (Alive at the same incarnation, then Suspect), since a bare
/// Suspect about a stranger is dropped; a tombstone it surely lacks is not worth sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeerKnows {
    /// An older state of the member.
    Older,
    /// Nothing.
    Nothing,
    /// Maybe nothing (it asked for the member).
    Unsure,
}

#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub to: SocketAddr,
    /// The member at `to`, when known: a suspected destination hears of its suspicion.
    pub to_id: Option<NodeId>,
    pub primary: Primary,
}

/// The highest incarnation accepted from the wire. One below the digest's limit
/// (2^62 − 1), so a member can always refute the highest claim about itself.
pub(crate) const MAX_INCARNATION: u64 = (1 << 62) - 2;

/// Ids of user broadcasts already delivered are remembered, to deliver each once, up to
/// this many per `max_pending_broadcasts`; the oldest are forgotten first. A broadcast
/// still circulating after that many newer ones would be delivered again: at the
/// default 1024 that takes 4096 newer broadcasts within its gossip lifetime (seconds).
const SEEN_BROADCASTS_PER_PENDING: usize = 4;

/// Push-pull rounds a new member runs in its first seconds, each with a random member:
/// the seed's answer was a snapshot, and members that joined concurrently through other
/// paths (or whose news was lost) are filled in by these rather than a full interval
/// later. A 30-member join storm at 2 % loss missed a member at 15 s in 1 seed of 20 with
/// one early round.
const EARLY_PUSH_PULLS: u8 = 3;

/// Events' capacity an emptied event queue keeps (see `poll_event`).
const EVENTS_KEPT: usize = 8;

/// A member of a cluster, as a sans-IO state machine: it owns no socket, no clock, no
/// thread. The caller feeds it datagrams and time and drains what it wants sent.
///
/// # Methods
/// - **Inputs** (`handle_*`): [`handle_packet`](Node::handle_packet) (a datagram),
///   [`handle_timeout`](Node::handle_timeout) (time passed),
///   [`handle_unreachable`](Node::handle_unreachable) (the network refused a datagram
///   this node sent).
/// - **Outputs** (`poll_*`): [`poll_transmit`](Node::poll_transmit),
///   [`poll_event`](Node::poll_event), [`poll_timeout`](Node::poll_timeout).
/// - **Commands**: [`join`](Node::join), [`leave`](Node::leave),
///   [`set_metadata`](Node::set_metadata), [`broadcast`](Node::broadcast), the keyring's
///   [`keyring_add`](Node::keyring_add) / [`keyring_use`](Node::keyring_use) /
///   [`keyring_remove`](Node::keyring_remove), and the entropy a driver supplies:
///   [`set_nonce_prefix`](Node::set_nonce_prefix),
///   [`set_token_secret`](Node::set_token_secret).
/// - **Getters**: [`id`](Node::id), [`local_member`](Node::local_member),
///   [`members`](Node::members), [`member`](Node::member),
///   [`member_state`](Node::member_state), [`live_count`](Node::live_count),
///   [`stats`](Node::stats), [`monitored`](Node::monitored), [`is_joined`](Node::is_joined),
///   [`is_synced`](Node::is_synced), and the rest below.
///
/// # Run loop
/// After every input (`handle_packet`, `handle_timeout`, or a command), drain
/// [`poll_transmit`](Node::poll_transmit) until it returns `None` (sending each datagram),
/// then [`poll_event`](Node::poll_event), then ask [`poll_timeout`](Node::poll_timeout)
/// when to call [`handle_timeout`](Node::handle_timeout) next. Call `handle_timeout` at
/// (or soon after) that time: a call much later than due is how the node learns that its
/// own process was stalled.
///
/// What a driver owes the node:
/// - **Re-arm after every input, unconditionally.** Read `poll_timeout` after each
///   `handle_*` call and command and sleep until the value it returns, even if it is
///   the same value as before: a timer that fired may be replaced by one due at the
///   same instant, and a driver that re-arms only when the value changes can sleep
///   through every timer from then on (an earlier driver of that kind left observers in
///   Suspect for good).
/// - **Be on time, or be honest about it.** A call more than `stall_threshold` after a
///   timer was due, with no input in between, is taken as this process having been
///   frozen: the node discards evidence gathered across the gap and convicts no one for
///   `stall_guard`. A driver that is always late by more than `stall_threshold` makes
///   the node look stalled again and again: after the first, such short stalls are
///   only counted (`stalls_repeated`), so it still decides, but later than configured.
/// - **One `now`, monotonic.** The same clock for every input; an earlier `now` than the
///   last is treated as the last.
///
/// # Now
/// Every input takes `now`, a [`Time`] on the caller's monotonic clock. The node never
/// reads a clock and never draws unseeded randomness, so the same config, seed and
/// inputs give the same outputs, bit for bit: the simulator drives thousands of nodes
/// faster than real time, and the runtime drives one on a real socket.
#[derive(Debug)]
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) rng: Xoshiro256PlusPlus,
    pub(crate) members: Members,
    pub(crate) queue: Queue,
    pub(crate) timers: Timers,
    pub(crate) local_health: LocalHealth,
    pub(crate) suspicions: KeyedMap<NodeId, Suspicion>,
    /// Members reported refused, under corroboration (see `refusal`).
    pub(crate) refusals: KeyedMap<NodeId, Refusal>,
    pub(crate) probes: Probes,
    /// Under phi monitors: the members this node monitors, with their detectors.
    pub(crate) monitoring: Monitoring,
    pub(crate) outbox: VecDeque<Outgoing>,
    events: VecDeque<Event>,
    pub(crate) stats: NodeStats,
    /// Seeds, and how far joining has got.
    pub(crate) joining: Joining,
    pub(crate) leaving: bool,
    /// The latest `now` seen (inputs never move time backwards).
    pub(crate) now: Time,
    /// The self-stall guard (see `stall`).
    pub(crate) stall: StallGuard,
    /// When a probe of ours was last answered (an ack, or a helper's nack): proof that
    /// what this node sends gets out.
    pub(crate) last_answer: Option<Time>,
    /// When this node last ran a gossip round: an urgent one (a verdict) waits at
    /// least `gossip_interval / 8` after it.
    pub(crate) last_gossip: Option<Time>,
    /// Gossip rounds left at the urgent pace (see `urgent_gossip`).
    pub(crate) urgent_rounds: u32,
    /// When the current (or last) urgent burst began.
    pub(crate) urgent_burst: Option<Time>,
    /// The ring changed: recompute whom this node monitors before the next output.
    pub(crate) ring_dirty: bool,
    broadcast_seq: u64,
    /// Members convicted by silence, with when: gossip still reaches them for a while
    /// and reconnect tries them (see `reconnect`).
    pub(crate) reconnect_candidates: ReconnectCandidates,
    /// User broadcasts already delivered.
    seen_broadcasts: SeenBroadcasts,
    cluster: Bytes,
    limits: DecodeLimits,
    /// Per-source budgets for relays and sync answers.
    pub(crate) budgets: Budgets,
    /// The keyring, the nonce state and the buffer packets are opened into.
    sealer: Sealer,
    /// Tokens for probes and the probes sent lately, to check refusals' quotes against.
    pub(crate) tokens: ProbeTokens,
    /// Buffers reused across calls so the steady state does not allocate.
    pub(crate) scratch: Scratch,
}

/// Buffers a node reuses across calls, so that the steady state does not allocate.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Updates sent in the datagram being packed (`poll_transmit`).
    pub sent: Vec<UpdateKey>,
    pub ids: Vec<NodeId>,
    pub helpers: Vec<NodeId>,
    pub targets: Vec<NodeId>,
}

impl Node {
    /// A node that is not yet part of any cluster: call [`Node::join`] next.
    ///
    /// `seed` seeds the node's random choices (probe order, helpers, gossip targets);
    /// give every node a different one. Fails if the config or the identity is invalid.
    pub fn new(
        identity: Identity,
        config: Config,
        seed: u64,
        now: Time,
    ) -> Result<Node, ConfigError> {
        config.validate()?;
        if identity.name.is_empty() || identity.name.len() > MAX_NAME_LEN {
            return Err(ConfigError::new(
                "identity.name",
                format!("{:?}", identity.name),
                format!("1 to {MAX_NAME_LEN} bytes"),
            ));
        }
        if identity.incarnation > MAX_INCARNATION {
            return Err(ConfigError::new(
                "identity.incarnation",
                identity.incarnation.to_string(),
                format!("at most {MAX_INCARNATION}"),
            ));
        }
        if identity.metadata.len() > config.max_metadata_size {
            return Err(ConfigError::new(
                "identity.metadata",
                format!("{} bytes", identity.metadata.len()),
                format!(
                    "at most max_metadata_size ({}) bytes",
                    config.max_metadata_size
                ),
            ));
        }
        let id = identity.id();
        let hasher = hashing::keyed(seed);
        let members = Members::new(
            Local {
                id,
                addr: identity.addr,
                name: identity.name.as_bytes(),
                metadata: &identity.metadata,
                incarnation: identity.incarnation,
                now,
            },
            hasher.clone(),
            config.monitors,
        );
        let phi_params = PhiParams {
            window: config.phi_window,
            min_std_dev: config.min_std_dev,
            acceptable_pause: config.acceptable_pause,
            first_interval: config.probe_interval,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let broadcast_seq = rand::RngCore::next_u64(&mut rng) >> 1;
        // Derived from the seed apart from `rng`, so keys do not change the protocol's
        // random choices (the simulator's runs stay comparable with and without them).
        let mut nonce_prefix = [0u8; 16];
        rand::RngCore::fill_bytes(
            &mut Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x6e6f_6e63_6521),
            &mut nonce_prefix,
        );
        let limits = DecodeLimits {
            max_packet_size: config.max_packet_size,
            max_messages: config.max_messages_per_packet,
            max_digest_entries: config.max_packet_size / 2,
        };
        let (y_suspect, y_convict) = (y_for_phi(config.phi_suspect), y_for_phi(config.phi_convict));
        let mut node = Node {
            local_health: LocalHealth::new(if config.strategy.lifeguard() {
                config.max_local_health
            } else {
                0
            }),
            cluster: Bytes::from(config.cluster_label.clone().into_bytes()),
            budgets: Budgets::default(),
            sealer: Sealer::new(config.keyring.clone(), nonce_prefix),
            tokens: ProbeTokens::new(ProbeTokens::secret_from_seed(seed), seed),
            cfg: config,
            rng,
            members,
            queue: Queue::new(hasher.clone()),
            timers: Timers::default(),
            suspicions: KeyedMap::with_hasher(hasher.clone()),
            refusals: KeyedMap::with_hasher(hasher.clone()),
            probes: Probes::new(hasher.clone()),
            monitoring: Monitoring {
                set: KeyedMap::with_hasher(hasher),
                params: phi_params,
                y_suspect,
                y_convict,
                rtt: RoundTrip::default(),
            },
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
            joining: Joining::default(),
            leaving: false,
            now,
            stall: StallGuard::default(),
            last_answer: None,
            last_gossip: None,
            urgent_rounds: 0,
            urgent_burst: None,
            ring_dirty: false,
            broadcast_seq,
            reconnect_candidates: ReconnectCandidates::default(),
            seen_broadcasts: SeenBroadcasts::default(),
            limits,
            scratch: Scratch::default(),
        };
        node.start_timers(now);
        Ok(node)
    }

    fn start_timers(&mut self, now: Time) {
        // Stagger the first period by a random fraction so nodes started together do not
        // probe in lockstep.
        let jitter =
            |rng: &mut Xoshiro256PlusPlus, d: Duration| d.mul_f64(rand::Rng::random::<f64>(rng));
        let p = jitter(&mut self.rng, self.cfg.probe_interval);
        self.timers.set(Periodic::Probe, now + p);
        let pp = self.push_pull_interval();
        let pp = jitter(&mut self.rng, pp) + pp / 2;
        self.timers.set(Periodic::PushPull, now + pp);
        self.timers.set(Periodic::Reap, now + self.reap_interval());
    }

    // ----- getters ---------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.members.local_id()
    }

    /// This node as its peers see it (incarnation, metadata, state).
    pub fn local_member(&self) -> Member {
        self.members.local().snapshot()
    }

    /// The current incarnation.
    pub fn incarnation(&self) -> u64 {
        self.members.local().incarnation
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// One member by id (self included), if known.
    pub fn member(&self, id: NodeId) -> Option<Member> {
        self.members.get(id).map(Entry::snapshot)
    }

    /// The state this node holds for member `id` (this node included), without copying
    /// its name and metadata as [`Node::member`] does: for callers that read many
    /// views, such as a simulator's oracle.
    pub fn member_state(&self, id: NodeId) -> Option<MemberState> {
        self.members.get(id).map(|e| e.state)
    }

    /// Every known member other than this node, dead and departed ones (kept for
    /// `dead_retention`) included, in a deterministic order.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        let me = self.id();
        self.members
            .iter()
            .filter(move |e| e.id != me)
            .map(Entry::snapshot)
    }

    /// Live members (alive or suspect), this node included.
    pub fn live_count(&self) -> usize {
        self.members.live_count()
    }

    /// The live member (alive or suspect) other than this node whose address is `addr`,
    /// if any: the latest to come alive there.
    pub fn live_member_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.members.live_at(addr)
    }

    /// Counters since creation.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Lifeguard's local health score (0 = healthy; up to `max_local_health`).
    pub fn local_health(&self) -> u32 {
        self.local_health.score()
    }

    /// A seed answered (or there were none): this node is part of a cluster.
    /// Join retries continue until [`is_synced`](Node::is_synced).
    pub fn is_joined(&self) -> bool {
        self.joining.joined
    }

    /// A seed's answer to the join ended (its closing `SyncWant` arrived); with no
    /// seeds, at once. Some of the answer's datagrams may have been lost or still be in
    /// flight: join retries continue while no other member is known, and push-pull
    /// fills remaining gaps later.
    pub fn is_synced(&self) -> bool {
        self.joining.synced
    }

    /// [`Node::leave`] was called.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// Updates still queued for dissemination (0 once gossip has settled; a leaving
    /// node can stop once its Leave has gone out).
    pub fn pending_updates(&self) -> usize {
        self.queue.len()
    }

    /// The members this node monitors (its ring predecessors) under
    /// [`Strategy::PhiMonitors`], with what its detector says of each right now.
    pub fn monitored(&self) -> impl Iterator<Item = (NodeId, crate::DetectorView)> + '_ {
        self.monitoring
            .set
            .iter()
            .map(|(id, m)| (*id, self.detector_view(m)))
    }

    pub(crate) fn is_seed(&self, addr: SocketAddr) -> bool {
        self.joining.seeds.contains(&addr)
    }

    pub(crate) fn mark_synced(&mut self) {
        if !self.joining.synced {
            self.joining.synced = true;
            self.events.push_back(Event::Synced);
            // The seed's view was a snapshot: members that joined concurrently through
            // other seeds, or whose news the seed had not heard yet, are missing. One
            // early push-pull with a random member closes that gap in seconds instead of
            // a full push-pull interval.
            let soon = self.now + self.jittered(self.cfg.join_retry_interval);
            self.joining.early_push_pulls = EARLY_PUSH_PULLS - 1;
            if self.timers.get(Periodic::PushPull).is_none_or(|t| t > soon) {
                self.timers.set(Periodic::PushPull, soon);
            }
        }
    }

    // ----- commands --------------------------------------------------------------------

    /// Joins the cluster through `seeds` (addresses of any members). With no seeds
    /// (or only this node's own address) the node forms a cluster of one. Retried every
    /// `join_retry_interval` until a seed answers.
    pub fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        self.observe_time(now);
        let own = self.members.local().addr;
        self.joining.seeds = seeds.iter().copied().filter(|a| *a != own).collect();
        if self.joining.seeds.is_empty() {
            if !self.joining.joined {
                self.joining.joined = true;
                self.joining.synced = true;
                self.events.push_back(Event::JoinedCluster);
                self.events.push_back(Event::Synced);
            }
            return;
        }
        self.send_join();
        self.timers
            .set(Periodic::JoinRetry, self.now + self.cfg.join_retry_interval);
        self.after_input();
    }

    fn send_join(&mut self) {
        for i in 0..self.joining.seeds.len() {
            let to = self.joining.seeds[i];
            self.outbox.push_back(Outgoing {
                to,
                to_id: None,
                primary: Primary::Join,
            });
        }
    }

    /// Leaves gracefully: gossips Left (peers never see this node as dead), stops
    /// probing and convicting. Keep driving the node until
    /// [`pending_updates`](Node::pending_updates) is 0 or a drain delay passes, then
    /// drop it.
    pub fn leave(&mut self, now: Time) {
        self.observe_time(now);
        if self.leaving {
            return;
        }
        self.leaving = true;
        let inc = self.incarnation();
        self.members.update_local(inc, MemberState::Left, self.now);
        self.queue.push(UpdateKey::Member(self.id()), None);
        self.gossip_now();
        self.timers.clear(Periodic::JoinRetry);
        self.after_input();
    }

    /// Replaces this node's metadata and gossips it (at a new incarnation).
    pub fn set_metadata(&mut self, now: Time, metadata: Bytes) -> Result<(), CommandError> {
        self.observe_time(now);
        if self.leaving {
            return Err(CommandError::Left);
        }
        if metadata.len() > self.cfg.max_metadata_size {
            return Err(CommandError::MetadataTooLarge {
                len: metadata.len(),
                max: self.cfg.max_metadata_size,
            });
        }
        let inc = (self.incarnation() + 1).min(MAX_INCARNATION + 1);
        self.members.set_local_metadata(&metadata);
        self.members.update_local(inc, MemberState::Alive, self.now);
        self.queue.push(UpdateKey::Member(self.id()), None);
        self.after_input();
        Ok(())
    }

    /// The keys this node seals and opens packets with.
    pub fn keyring(&self) -> &Keyring {
        &self.sealer.keyring
    }

    /// Adds `key` to the keyring: it opens packets at once, and seals nothing until
    /// [`Node::keyring_use`]. Step 1 of a rotation, done on every member first.
    pub fn keyring_add(&mut self, key: keyring::Key) -> Result<(), CommandError> {
        self.sealer.keyring.add(key)
    }

    /// Makes `key` (already added) the key that seals outgoing packets. Step 2, once
    /// every member has the key.
    pub fn keyring_use(&mut self, key: &keyring::Key) -> Result<(), CommandError> {
        self.sealer.keyring.use_key(key)
    }

    /// Removes `key` (not the primary). Step 3, once every member seals with the new
    /// key.
    pub fn keyring_remove(&mut self, key: &keyring::Key) -> Result<(), CommandError> {
        self.sealer.keyring.remove(key)
    }

    /// Sets the per-process prefix of the encryption nonces. The runtime calls it with
    /// fresh OS randomness at start: the node's own randomness comes from its seed, and
    /// a process restarted with the same seed must not reuse nonces under the same key.
    pub fn set_nonce_prefix(&mut self, prefix: [u8; 16]) {
        self.sealer.set_nonce_prefix(prefix);
    }

    /// Sets the secret that this node's probe tokens are drawn from (see
    /// [`handle_unreachable`](Node::handle_unreachable)). The runtime calls it with fresh
    /// OS randomness at start. Without it the secret is derived from the seed, which
    /// suits a simulation; in production a forger who could guess the seed could guess
    /// the tokens, so a driver of its own should call this with 32 random bytes.
    pub fn set_token_secret(&mut self, secret: [u8; 32]) {
        self.tokens.rekey(secret);
    }

    /// Spends one unit of `work` from `from`'s budget for this probe interval.
    pub(crate) fn spend(&mut self, from: SocketAddr, work: Work, limit: u32) -> bool {
        self.budgets
            .spend(self.now, self.cfg.probe_interval, from, work, limit)
    }

    /// Whether outgoing packets are sealed.
    fn sealing(&self) -> bool {
        !self.sealer.keyring.is_empty() && !self.cfg.send_plaintext
    }

    /// The largest user broadcast payload this config carries (one packet holds it
    /// beside the envelope and message framing).
    pub fn max_broadcast_size(&self) -> usize {
        // Room for a sealed frame's overhead is always kept, so the limit does not change
        // when keys are added.
        self.cfg
            .max_packet_size
            .saturating_sub(self.cluster.len() + 64 + SEAL_OVERHEAD)
    }

    /// Sends `payload` to every other member, once each, by gossip. Best effort: under
    /// heavy loss or a long partition a member may miss it.
    pub fn broadcast(&mut self, now: Time, payload: Bytes) -> Result<(), CommandError> {
        self.observe_time(now);
        if self.leaving {
            return Err(CommandError::Left);
        }
        let max = self.max_broadcast_size();
        if payload.len() > max {
            return Err(CommandError::BroadcastTooLarge {
                len: payload.len(),
                max,
            });
        }
        self.broadcast_seq = self.broadcast_seq.wrapping_add(1);
        let key = (self.id(), self.broadcast_seq);
        self.remember_broadcast(key);
        self.queue_broadcast(key, payload);
        self.after_input();
        Ok(())
    }

    fn queue_broadcast(&mut self, (origin, seq): (NodeId, u64), payload: Bytes) {
        self.queue
            .push(UpdateKey::Broadcast(origin, seq), Some(payload));
        while self.queue.broadcasts() > self.cfg.max_pending_broadcasts {
            if !self.queue.drop_oldest_broadcast() {
                break;
            }
            self.stats.broadcasts_dropped += 1;
        }
    }

    /// Records a broadcast as delivered; false if it already was.
    fn remember_broadcast(&mut self, key: (NodeId, u64)) -> bool {
        let cap = self
            .cfg
            .max_pending_broadcasts
            .saturating_mul(SEEN_BROADCASTS_PER_PENDING);
        self.seen_broadcasts.remember(key, cap)
    }

    // ----- inputs ----------------------------------------------------------------------

    /// A datagram arrived from `from`. Anything malformed, oversized, from another
    /// cluster or another protocol version is dropped and counted in [`NodeStats`];
    /// nothing a peer sends makes this panic.
    pub fn handle_packet(&mut self, now: Time, from: SocketAddr, data: &[u8]) {
        self.observe_time(now);
        self.stats.packets_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let mut opened = std::mem::take(&mut self.sealer.opened);
        let data = if keyring::is_sealed(data) {
            if !self.sealer.open(&self.cluster, data, &mut opened) {
                self.sealer.opened = opened;
                self.stats.auth_failures += 1;
                debug!(%from, "dropped packet that failed authentication");
                return;
            }
            &opened[..]
        } else if !self.sealer.keyring.is_empty() && !self.cfg.accept_plaintext {
            self.sealer.opened = opened;
            self.stats.plaintext_refused += 1;
            debug!(%from, "dropped plaintext packet");
            return;
        } else {
            data
        };
        let packet = match wire::read_packet(data, &self.limits) {
            Ok(p) => p,
            Err(e) => {
                self.sealer.opened = opened;
                self.stats.decode_errors[e.kind().index()] += 1;
                debug!(%from, error = %e, "dropped undecodable packet");
                return;
            }
        };
        let sender = NodeId(packet.sender);
        let foreign = packet.cluster != &self.cluster[..];
        if foreign {
            self.stats.cluster_mismatch += 1;
            debug!(%from, "dropped packet from another cluster");
        }
        if foreign || sender == self.id() {
            self.sealer.opened = opened;
            return;
        }
        trace!(%from, %sender, messages = packet.messages, "packet");
        self.members.heard_from(sender, from, self.now);
        if self.refusals.contains_key(&sender) && self.is_member_at(sender, from) {
            self.withdraw_refusal(sender);
        }
        self.stats.messages_in += packet.messages as u64;
        let sync_entries = packet.sync_entries as usize;
        let mut inb = Inbound {
            from,
            sender,
            acked: false,
            relayed: false,
            synced: false,
            wanted: false,
            corrected: false,
        };
        // The messages borrow the datagram (or `opened`, a local until here), never the
        // node, so handling them can change anything.
        for (i, body) in packet.bodies().enumerate() {
            self.handle_message(&mut inb, body, i < sync_entries);
        }
        self.sealer.opened = opened;
        if !self.joining.joined && self.joining.seeds.contains(&from) {
            self.joining.joined = true;
            self.events.push_back(Event::JoinedCluster);
        }
        self.after_input();
    }

    /// Timers due at or before `now` fire. Call it at [`poll_timeout`](Node::poll_timeout).
    pub fn handle_timeout(&mut self, now: Time) {
        self.observe_time(now);
        let now = self.now;
        // Each pass pops one due timer; periodic ones re-arm in the future, so this ends.
        while let Some((at, due)) = self.timers.pop_due(now) {
            match due {
                Due::Periodic(p) => self.on_periodic(p, at),
                Due::OneShot(t) => self.on_oneshot(t),
            }
        }
        self.after_input();
    }

    // ----- outputs ---------------------------------------------------------------------

    /// The next datagram to send, written into `buf` (at most `max_packet_size` bytes
    /// are used; give a buffer at least that large). `None` when nothing is queued.
    pub fn poll_transmit(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        self.observe_time(now);
        let out = self.outbox.pop_front()?;
        let sealing = self.sealing();
        let budget = buf.len().min(self.cfg.max_packet_size);
        // A sealed frame wraps the packet: encode it after the frame's header, in a
        // budget that leaves room for the header and the tag.
        let (start, budget) = if sealing {
            (PAYLOAD_OFFSET, budget.saturating_sub(SEAL_OVERHEAD))
        } else {
            (0, budget)
        };
        let envelope = Envelope {
            version: wire::PROTOCOL_VERSION,
            cluster: &self.cluster,
            sender: self.id().0,
            incarnation: self.incarnation(),
            token: 0,
        };
        let destination = out.to;
        let to_id = out.to_id;
        // A probe carries a token, so that a refusal of it can prove itself.
        let probe = match out.primary {
            Primary::Ping { seq, .. } => Some(seq),
            _ => None,
        };
        let envelope = Envelope {
            token: if probe.is_some() {
                self.tokens.token()
            } else {
                0
            },
            ..envelope
        };
        // Under phi monitors, pings and acks travel between fixed ring neighbours, so
        // updates piggybacked on them ride along for free but do not count toward an
        // update's retransmissions: only sends to random members (gossip rounds, syncs)
        // spread news infection-style, and the limit must count those.
        let counts = !(self.cfg.strategy == Strategy::PhiMonitors
            && matches!(out.primary, Primary::Ping { .. } | Primary::Ack { .. }));
        // Sync answers carry no gossip: their receiver (often a joiner) gets the same
        // news as sync entries, which it does not re-gossip, so piggybacked copies there
        // would spend the updates' retransmissions where they spread nothing.
        let gossip = !matches!(out.primary, Primary::Entries(_) | Primary::Want(_));
        let max_messages = self.cfg.max_messages_per_packet;
        // Packing never exceeds the budget, so this fails only for a caller buffer too
        // small for the envelope itself (below ~40 bytes, against the documented
        // `max_packet_size`): the datagram is then lost like any other, a batch of sync
        // entries included (push-pull asks again next round).
        let mut w = buf
            .get_mut(start..start + budget)
            .and_then(|b| PacketWriter::new(b, &envelope, max_messages))?;
        self.write_primary(out, &mut w);
        if gossip {
            self.piggyback(&mut w, counts, to_id);
        }
        self.stats.messages_out += w.messages() as u64;
        let mut len = w.finish();
        if sealing {
            len = self.sealer.seal(&self.cluster, buf, len)?;
        }
        if let Some(seq) = probe {
            let relayed = self
                .probes
                .get(seq)
                .is_some_and(|p| matches!(p.kind, ProbeKind::Relay { .. }));
            self.tokens.record(
                destination,
                buf.get(..len).unwrap_or_default(),
                self.now,
                seq,
                relayed,
            );
        }
        self.stats.packets_out += 1;
        self.stats.bytes_out += len as u64;
        Some(Transmit { destination, len })
    }

    /// When to call [`handle_timeout`](Node::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        // A join delivers one event per member learned; once the caller has drained
        // them, give back the queue they grew (hundreds of bytes per member otherwise
        // held for the node's lifetime).
        if event.is_none() && self.events.capacity() > EVENTS_KEPT {
            self.events.shrink_to(EVENTS_KEPT);
        }
        event
    }
}

// ----- internals ----------------------------------------------------------------------

impl Node {
    /// Work that follows every input and command: monitors follow ring changes, and
    /// gossip rounds run while (and only while) updates are queued.
    pub(crate) fn after_input(&mut self) {
        if self.ring_dirty {
            self.ring_dirty = false;
            self.refresh_monitors();
        }
        // News is gossiped at once (the timer fires at the next `handle_timeout`, right
        // after this input), then at most every `gossip_interval` while more is queued:
        // waiting a full interval per hop would add it to every hop of dissemination.
        if !self.queue.is_empty() && self.timers.get(Periodic::Gossip).is_none() {
            self.timers.set(Periodic::Gossip, self.now);
        }
    }

    /// A verdict is news every member acts on (routes, locks, replicas): gossip it now
    /// rather than at this node's next round, which, while other news is being
    /// retransmitted, is up to `gossip_interval` away at every hop (200 ms per hop on
    /// LAN: most of a refused crash's detection time before this), and spend its
    /// retransmissions at `gossip_interval / 8` per round rather than one interval
    /// each, since push gossip reaches its last members only through later rounds.
    /// The verdict needs no more rounds than at the normal pace (as many as its
    /// retransmission limit needs), only sooner; updates that arrive meanwhile share
    /// fewer rounds, so a stream of verdicts costs more datagrams. Bounded: a burst
    /// lasts at most the time its rounds would take at the normal pace, and another
    /// starts only as long after it ended, so a flapping member or a partition's churn
    /// keeps the gossip rate at most at half the urgent pace on average.
    pub(crate) fn urgent_gossip(&mut self) {
        let now = self.now;
        let gap = self.cfg.gossip_interval / 8;
        let limit = self.cfg.retransmit_limit(self.members.live_count());
        let fanout = self.cfg.gossip_fanout.max(1) as u32;
        let rounds = limit.div_ceil(fanout);
        let span = self.cfg.gossip_interval * rounds;
        match self.urgent_burst {
            Some(start) if now < start + span => {}
            Some(start) if now < start + span * 2 => return,
            _ => self.urgent_burst = Some(now),
        }
        self.urgent_rounds = rounds;
        let soonest = self
            .last_gossip
            .map_or(self.now, |t| (t + gap).max(self.now));
        if self
            .timers
            .get(Periodic::Gossip)
            .is_some_and(|at| at > soonest)
        {
            self.timers.set(Periodic::Gossip, soonest);
        }
    }

    fn on_periodic(&mut self, p: Periodic, at: Time) {
        let now = self.now;
        // A periodic timer re-arms from when it was due; if that is already past (we ran
        // late), from now, so a late node does not fire a burst of catch-up rounds.
        let rearm = |interval: Duration| {
            let next = at + interval;
            if next <= now { now + interval } else { next }
        };
        match p {
            Periodic::Probe => {
                // Under phi monitors the period stays fixed: a monitor's acks are its
                // targets' heartbeats, and stretching the period would read as their
                // silence. Local health lengthens the conviction deadline instead.
                let interval = match self.cfg.strategy {
                    Strategy::PhiMonitors => self.cfg.probe_interval,
                    Strategy::Swim | Strategy::Lifeguard => {
                        self.local_health.scale(self.cfg.probe_interval)
                    }
                };
                self.timers.set(Periodic::Probe, rearm(interval));
                if !self.leaving {
                    self.probe_round();
                }
            }
            Periodic::Gossip => {
                if !self.queue.is_empty() {
                    self.last_gossip = Some(now);
                    self.gossip_now();
                    let interval = if self.urgent_rounds > 0 {
                        self.urgent_rounds -= 1;
                        self.cfg.gossip_interval / 8
                    } else {
                        self.cfg.gossip_interval
                    };
                    self.timers.set(Periodic::Gossip, rearm(interval));
                } else {
                    self.urgent_rounds = 0;
                }
                // Otherwise the timer stays off until `after_input` sees news queued.
            }
            Periodic::PushPull => {
                // Every round is re-armed at a random ±50 % of its interval, from now:
                // nodes that joined together would otherwise push-pull together for
                // ever (a whole member table each way, from every node in the same
                // instant), and their early rounds would land in steps.
                let next = if self.joining.early_push_pulls > 0 {
                    // Members that joined at the same time as us reach us through these
                    // rounds within seconds, not a whole interval later.
                    self.joining.early_push_pulls -= 1;
                    now + self.jittered(self.cfg.join_retry_interval * 4)
                } else {
                    now + self.jittered(self.push_pull_interval())
                };
                self.timers.set(Periodic::PushPull, next);
                if !self.leaving {
                    self.start_push_pull();
                }
            }
            Periodic::JoinRetry => {
                // Until a seed's full answer arrived, not merely its first datagram: a
                // joiner that knows nobody has no one to push-pull with.
                if (!self.joining.synced || self.members.live_count() == 1) && !self.leaving {
                    self.send_join();
                    self.timers
                        .set(Periodic::JoinRetry, rearm(self.cfg.join_retry_interval));
                }
            }
            Periodic::Reconnect => {
                let next = rearm(self.reconnect_interval_jittered());
                self.on_reconnect(next);
            }
            Periodic::Reap => {
                self.timers.set(Periodic::Reap, rearm(self.reap_interval()));
                let mut reaped = std::mem::take(&mut self.scratch.ids);
                reaped.clear();
                self.members.reap(now, self.cfg.dead_retention, &mut reaped);
                for id in &reaped {
                    self.queue.remove(UpdateKey::Member(*id));
                    self.suspicions.swap_remove(id);
                    self.timers.cancel(OneShot::Suspicion(*id));
                }
                self.stats.members_reaped += reaped.len() as u64;
                self.scratch.ids = reaped;
            }
        }
    }

    fn on_oneshot(&mut self, t: OneShot) {
        match t {
            OneShot::ProbeTimeout(seq) => self.on_probe_timeout(seq),
            OneShot::IndirectEnd(seq) => self.on_indirect_end(seq),
            OneShot::RelayNack(seq) => self.on_relay_nack(seq),
            OneShot::Suspicion(id) => self.on_suspicion_timeout(id),
            OneShot::Convict(id) => self.on_convict_deadline(id),
            OneShot::RefusalEnd(id) => self.on_refusal_end(id),
            OneShot::Recheck => self.on_recheck(),
        }
    }

    /// `d` scaled by a uniform random factor in [0.5, 1.5): the same mean, a random phase.
    fn jittered(&mut self, d: Duration) -> Duration {
        d.mul_f64(0.5 + rand::Rng::random::<f64>(&mut self.rng))
    }

    pub(crate) fn push_pull_interval(&self) -> Duration {
        // memberlist's scaling: beyond 32 members, the interval grows with log2(n / 32)
        // so the cluster-wide sync traffic stays flat.
        let n = self.members.live_count();
        if n <= 32 {
            return self.cfg.push_pull_interval;
        }
        let mult = (libm::log2(n as f64) - 5.0).ceil() + 1.0;
        self.cfg.push_pull_interval.mul_f64(mult)
    }

    fn reap_interval(&self) -> Duration {
        (self.cfg.dead_retention / 8).max(Duration::from_secs(1))
    }

    // ----- packing ---------------------------------------------------------------------
}
