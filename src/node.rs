//! The sans-IO state machine: one member of a cluster.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tracing::{debug, trace};

use crate::awareness::LocalHealth;
use crate::budget::{Budgets, MAX_ANSWERS_PER_SOURCE, Work};
use crate::config::{Config, Strategy};
use crate::detector::{PhiParams, y_for_phi};
use crate::dissemination::{Key, Queue};
use crate::error::{CommandError, ConfigError};
use crate::event::{Cause, Event, Member, MemberState};
use crate::hashing::{self, KeyedMap};
use crate::id::{Identity, MAX_NAME_LEN, NodeId};
use crate::keyring::{self, Keyring, PAYLOAD_OFFSET, SEAL_OVERHEAD};
use crate::members::{Applied, Descriptor, Entry, Members, NOT_A_PEER, Packed, Update};
use crate::probe::{Kind, MonitorState, Probes};
use crate::probe_tokens::ProbeTokens;
use crate::reconnect::Silenced;
use crate::refusal::Refusal;
use crate::stats::NodeStats;
use crate::suspicion::Suspicion;
use crate::time::Time;
use crate::timers::{Due, OneShot, Periodic, Timers};
use crate::wire::{self, AliveRef, Body, BodyRef, DecodeLimits, Envelope, Message, PacketWriter};

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

/// What handling one datagram has already done (each reply kind goes out once).
struct Inbound {
    from: SocketAddr,
    sender: NodeId,
    acked: bool,
    relayed: bool,
    synced: bool,
    wanted: bool,
    /// The sender was already told our current incarnation in reply to this datagram.
    corrected: bool,
}

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

/// Candidates examined when filling a packet with piggybacked updates.
const PIGGYBACK_SCAN: usize = 128;

/// Updates that did not fit before packing gives up on the packet.
const MAX_PIGGYBACK_MISSES: usize = 4;

/// Bytes below which no update fits (a Leave with small ids is about 12).
const MIN_UPDATE_LEN: usize = 12;

/// Events' capacity an emptied event queue keeps (see `poll_event`).
const EVENTS_KEPT: usize = 64;

/// What a suspicion only its first accuser raised does when its timer fires.
enum Private {
    /// It waits (its timer is set again).
    Waits,
    /// This node seems cut off: it convicts for itself, without telling anyone.
    Isolated,
    /// It is decided as any suspicion is.
    Decide,
}

/// A member of a cluster, as a sans-IO state machine: it owns no socket, no clock, no
/// thread. The caller feeds it datagrams and time and drains what it wants sent.
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
    pub(crate) health: LocalHealth,
    pub(crate) suspicions: KeyedMap<NodeId, Suspicion>,
    /// Members reported refused, under corroboration (see `refusal`).
    pub(crate) refusals: KeyedMap<NodeId, Refusal>,
    pub(crate) probes: Probes,
    pub(crate) monitors: KeyedMap<NodeId, MonitorState>,
    pub(crate) phi_params: PhiParams,
    /// `y` for `phi_suspect` and `phi_convict`, solved once.
    pub(crate) y_suspect: f64,
    pub(crate) y_convict: f64,
    pub(crate) outbox: VecDeque<Outgoing>,
    events: VecDeque<Event>,
    pub(crate) stats: NodeStats,
    seeds: Vec<SocketAddr>,
    joined: bool,
    synced: bool,
    pub(crate) leaving: bool,
    /// The latest `now` seen (inputs never move time backwards).
    pub(crate) now: Time,
    /// No conviction before this time: set after this node's own stall.
    pub(crate) guard_until: Time,
    /// When the last stall this node detected ended.
    stall_ended: Option<Time>,
    /// When a probe of ours was last answered (an ack, or a helper's nack): proof that
    /// what this node sends gets out.
    pub(crate) last_answer: Option<Time>,
    /// The ring changed: recompute whom this node monitors before the next output.
    pub(crate) ring_dirty: bool,
    broadcast_seq: u64,
    /// Members convicted by silence, with when: gossip still reaches them for a while
    /// and reconnect tries them (see `reconnect`).
    pub(crate) silenced: Silenced,
    /// Push-pull rounds still to run soon after joining (see `mark_synced`).
    early_push_pulls: u8,
    /// Delivered broadcast ids, and the same in delivery order for forgetting the oldest.
    seen_broadcasts: BTreeSet<(NodeId, u64)>,
    seen_order: VecDeque<(NodeId, u64)>,
    cluster: Bytes,
    limits: DecodeLimits,
    /// Per-source budgets for relays and sync answers.
    pub(crate) budgets: Budgets,
    /// Keys sealing and opening packets (from the config; rotated by commands).
    keyring: Keyring,
    /// Nonces are this per-process prefix and a counter (see `keyring`).
    nonce_prefix: [u8; 16],
    nonce_counter: u64,
    /// Tokens for probes and the probes sent lately, to check refusals' quotes against.
    pub(crate) tokens: ProbeTokens,
    /// Where an opened packet is decrypted, reused across datagrams.
    scratch_open: Vec<u8>,
    /// Reused across `poll_transmit` calls so the steady state does not allocate.
    scratch_sent: Vec<Key>,
    pub(crate) scratch_ids: Vec<NodeId>,
    pub(crate) scratch_helpers: Vec<NodeId>,
    pub(crate) scratch_targets: Vec<NodeId>,
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
        // Lengths were checked above: the name here, an address's wire form is at most
        // 18 bytes.
        let packed = Packed::new(
            &wire::encode_addr(identity.addr),
            identity.name.as_bytes(),
            &identity.metadata,
        )
        .unwrap_or_default();
        let local = Entry {
            id,
            addr: identity.addr,
            packed,
            incarnation: identity.incarnation,
            state: MemberState::Alive,
            cause: Cause::Silence,
            accuser: id,
            since: now,
            heard: None,
            peer_slot: NOT_A_PEER,
        };
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
        let hasher = hashing::keyed(seed);
        let mut node = Node {
            y_suspect: y_for_phi(config.phi_suspect),
            y_convict: y_for_phi(config.phi_convict),
            health: LocalHealth::new(if config.strategy.lifeguard() {
                config.max_local_health
            } else {
                0
            }),
            cluster: Bytes::from(config.cluster_label.clone().into_bytes()),
            budgets: Budgets::default(),
            keyring: config.keyring.clone(),
            nonce_prefix,
            nonce_counter: 0,
            tokens: ProbeTokens::new(ProbeTokens::secret_from_seed(seed), seed),
            scratch_open: Vec::new(),
            cfg: config,
            rng,
            members: Members::new(local, hasher.clone()),
            queue: Queue::new(hasher.clone()),
            timers: Timers::default(),
            suspicions: KeyedMap::with_hasher(hasher.clone()),
            refusals: KeyedMap::with_hasher(hasher.clone()),
            probes: Probes::new(hasher.clone()),
            monitors: KeyedMap::with_hasher(hasher),
            phi_params,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
            seeds: Vec::new(),
            joined: false,
            synced: false,
            leaving: false,
            now,
            guard_until: Time::ZERO,
            stall_ended: None,
            last_answer: None,
            ring_dirty: false,
            broadcast_seq,
            early_push_pulls: 0,
            silenced: Silenced::default(),
            seen_broadcasts: BTreeSet::new(),
            seen_order: VecDeque::new(),
            limits,
            scratch_sent: Vec::new(),
            scratch_ids: Vec::new(),
            scratch_helpers: Vec::new(),
            scratch_targets: Vec::new(),
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

    /// Counters since creation.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Lifeguard's local health score (0 = healthy; up to `max_local_health`).
    pub fn local_health(&self) -> u32 {
        self.health.score()
    }

    /// A seed answered (or there were none): this node is part of a cluster.
    /// Join retries continue until [`is_synced`](Node::is_synced).
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// A seed's answer to the join ended (its closing `SyncWant` arrived); with no
    /// seeds, at once. Some of the answer's datagrams may have been lost or still be in
    /// flight: join retries continue while no other member is known, and push-pull
    /// fills remaining gaps later.
    pub fn is_synced(&self) -> bool {
        self.synced
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
        self.monitors
            .iter()
            .map(|(id, m)| (*id, self.detector_view(m)))
    }

    pub(crate) fn is_seed(&self, addr: SocketAddr) -> bool {
        self.seeds.contains(&addr)
    }

    pub(crate) fn mark_synced(&mut self) {
        if !self.synced {
            self.synced = true;
            self.events.push_back(Event::Synced);
            // The seed's view was a snapshot: members that joined concurrently through
            // other seeds, or whose news the seed had not heard yet, are missing. One
            // early push-pull with a random member closes that gap in seconds instead of
            // a full push-pull interval.
            let soon = self.now + self.cfg.join_retry_interval;
            self.early_push_pulls = EARLY_PUSH_PULLS - 1;
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
        self.seeds = seeds.iter().copied().filter(|a| *a != own).collect();
        if self.seeds.is_empty() {
            if !self.joined {
                self.joined = true;
                self.synced = true;
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
        for i in 0..self.seeds.len() {
            let to = self.seeds[i];
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
        self.queue.push(Key::Member(self.id()), None);
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
        let local = self.members.get_mut_local();
        // Lengths: the address and the name are the ones packed already.
        if let Some(p) = Packed::new(local.packed.addr_wire(), local.packed.name(), &metadata) {
            local.packed = p;
        }
        self.members.update_local(inc, MemberState::Alive, self.now);
        self.queue.push(Key::Member(self.id()), None);
        self.after_input();
        Ok(())
    }

    /// The keys this node seals and opens packets with.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Adds `key` to the keyring: it opens packets at once, and seals nothing until
    /// [`Node::keyring_use`]. Step 1 of a rotation, done on every member first.
    pub fn keyring_add(&mut self, key: keyring::Key) -> Result<(), CommandError> {
        self.keyring.add(key)
    }

    /// Makes `key` (already added) the key that seals outgoing packets. Step 2, once
    /// every member has the key.
    pub fn keyring_use(&mut self, key: &keyring::Key) -> Result<(), CommandError> {
        self.keyring.use_key(key)
    }

    /// Removes `key` (not the primary). Step 3, once every member seals with the new
    /// key.
    pub fn keyring_remove(&mut self, key: &keyring::Key) -> Result<(), CommandError> {
        self.keyring.remove(key)
    }

    /// Sets the per-process prefix of the encryption nonces. The runtime calls it with
    /// fresh OS randomness at start: the node's own randomness comes from its seed, and
    /// a process restarted with the same seed must not reuse nonces under the same key.
    pub fn set_nonce_prefix(&mut self, prefix: [u8; 16]) {
        self.nonce_prefix = prefix;
        self.nonce_counter = 0;
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
        !self.keyring.is_empty() && !self.cfg.send_plaintext
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
        self.queue.push(Key::Broadcast(origin, seq), Some(payload));
        while self.queue.broadcasts() > self.cfg.max_pending_broadcasts {
            if !self.queue.drop_oldest_broadcast() {
                break;
            }
            self.stats.broadcasts_dropped += 1;
        }
    }

    /// Records a broadcast as delivered; false if it already was.
    fn remember_broadcast(&mut self, key: (NodeId, u64)) -> bool {
        if self.seen_broadcasts.contains(&key) {
            return false;
        }
        let cap = self
            .cfg
            .max_pending_broadcasts
            .saturating_mul(SEEN_BROADCASTS_PER_PENDING);
        while self.seen_order.len() >= cap {
            match self.seen_order.pop_front() {
                Some(old) => self.seen_broadcasts.remove(&old),
                None => break,
            };
        }
        self.seen_broadcasts.insert(key);
        self.seen_order.push_back(key);
        true
    }

    // ----- inputs ----------------------------------------------------------------------

    /// A datagram arrived from `from`. Anything malformed, oversized, from another
    /// cluster or another protocol version is dropped and counted in [`NodeStats`];
    /// nothing a peer sends makes this panic.
    pub fn handle_packet(&mut self, now: Time, from: SocketAddr, data: &[u8]) {
        self.observe_time(now);
        self.stats.packets_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let mut opened = std::mem::take(&mut self.scratch_open);
        let data = if keyring::is_sealed(data) {
            if !keyring::open(&self.keyring, &self.cluster, data, &mut opened) {
                self.scratch_open = opened;
                self.stats.auth_failures += 1;
                debug!(%from, "dropped packet that failed authentication");
                return;
            }
            &opened[..]
        } else if !self.keyring.is_empty() && !self.cfg.accept_plaintext {
            self.scratch_open = opened;
            self.stats.plaintext_refused += 1;
            debug!(%from, "dropped plaintext packet");
            return;
        } else {
            data
        };
        let packet = match wire::read_packet(data, &self.limits) {
            Ok(p) => p,
            Err(e) => {
                self.scratch_open = opened;
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
            self.scratch_open = opened;
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
        self.scratch_open = opened;
        if !self.joined && self.seeds.contains(&from) {
            self.joined = true;
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
            let key = self.keyring.primary()?;
            let mut nonce = [0u8; 24];
            nonce[..16].copy_from_slice(&self.nonce_prefix);
            nonce[16..].copy_from_slice(&self.nonce_counter.to_le_bytes());
            self.nonce_counter = self.nonce_counter.wrapping_add(1);
            len = keyring::seal(key, nonce, &self.cluster, buf, len)?;
        }
        if let Some(seq) = probe {
            let relayed = self
                .probes
                .get(seq)
                .is_some_and(|p| matches!(p.kind, Kind::Relay { .. }));
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
    /// Moves the node's clock to `now` (never backwards) and detects this node's own
    /// stall: a timer overdue by more than `stall_threshold` means the process did not
    /// run (GC pause, CPU throttling, SIGSTOP) while it should have.
    ///
    /// The stall is measured from the later of the overdue timer and the last input:
    /// a process that handled a datagram was running then, and the backlog read after a
    /// stall (every datagram at the same `now`) is one stall, not one per datagram. A
    /// node with no peers has no evidence to discard, so it detects none (a driver that
    /// calls `join` a while after `Node::new` is not stalled).
    pub(crate) fn observe_time(&mut self, now: Time) {
        let now = now.max(self.now);
        if let Some(due) = self.timers.next() {
            let since = due.max(self.now);
            if now > since + self.cfg.stall_threshold && self.members.live_count() > 1 {
                self.on_own_stall(now, now - since);
            }
        }
        self.now = now;
        self.timers.advance(now);
    }

    /// This node was frozen for `stalled`. Evidence gathered across the stall says more
    /// about us than about our peers: silence is measured afresh from now, probes in
    /// flight are forgotten (their acks are sitting in our receive queue), suspicion
    /// timers are moved later by the stall (each by at most its longest timeout over its
    /// life, so a node stalled again and again still decides), and nobody is convicted
    /// until `stall_guard` has passed, so the refutations that queued up are read first.
    ///
    /// A short stall (under `probe_interval`) that begins within `probe_interval` of the
    /// end of the previous one is the same trouble going on (a driver that always calls
    /// late, a process thrashing in GC): it is counted apart (`stalls_repeated`) and
    /// discards nothing again. Discarding on every one would forget every probe in
    /// flight at every late call and keep the guard armed for good, and such a node
    /// would never convict a crashed member; the backlog is read before the timers that
    /// follow, so the evidence it gathers between such stalls is sound. A long stall is
    /// always a stall, whatever came before it.
    fn on_own_stall(&mut self, now: Time, stalled: Duration) {
        let began = now - stalled;
        let repeated = stalled < self.cfg.probe_interval
            && self
                .stall_ended
                .is_some_and(|end| began.saturating_since(end) < self.cfg.probe_interval);
        self.stall_ended = Some(now);
        debug!(
            stalled_ms = stalled.as_millis() as u64,
            repeated, "own stall detected"
        );
        if repeated {
            self.stats.stalls_repeated += 1;
            return;
        }
        self.stats.stalls_detected += 1;
        self.guard_until = self.guard_until.max(now + self.cfg.stall_guard);
        self.probes.forget_in_flight();
        for m in self.monitors.values_mut() {
            m.detector.restart_silence(now);
            m.indirect = None;
        }
        let ids: Vec<NodeId> = self.monitors.keys().copied().collect();
        for id in ids {
            self.schedule_convict(id);
        }
        for (id, s) in self.suspicions.iter_mut() {
            s.postpone(stalled);
            self.timers.schedule(s.deadline, OneShot::Suspicion(*id));
        }
    }

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

    /// `sync`: the message is a state-sync delta, not gossip (see `process_update`).
    fn handle_message(&mut self, inb: &mut Inbound, body: BodyRef<'_>, sync: bool) {
        let (from, sender) = (inb.from, inb.sender);
        let update = |id: u64, incarnation: u64, state, cause, accuser: u64| Update {
            id: NodeId(id),
            incarnation,
            state,
            cause,
            accuser: NodeId(accuser),
            descriptor: None,
        };
        let body = match body {
            BodyRef::Alive(a) => {
                match self.alive_update(a) {
                    Some(u) => self.process_update(u, sync),
                    None => self.stats.messages_rejected += 1,
                }
                return;
            }
            BodyRef::Owned(body) => body,
        };
        match body {
            Body::Ping(p) => {
                // One ack per datagram however many pings it carries: a packet of pings
                // must not turn into a burst of datagrams.
                if p.target != self.id().0 || inb.acked {
                    // A ping for another id was meant for whoever lived at this address
                    // before us.
                    self.stats.messages_rejected += 1;
                    return;
                }
                inb.acked = true;
                self.outbox.push_back(Outgoing {
                    to: from,
                    to_id: Some(sender),
                    primary: Primary::Ack { seq: p.seq },
                });
            }
            Body::Ack(a) => self.on_ack(a.seq, from),
            Body::PingReq(r) => {
                if inb.relayed {
                    self.stats.messages_rejected += 1;
                    return;
                }
                inb.relayed = true;
                self.on_ping_req(from, sender, r);
            }
            Body::Nack(n) => self.on_nack(n.seq, n.refused),
            // The reader hands every Alive over borrowed (above), never as an owned body.
            Body::Alive(_) => self.stats.messages_rejected += 1,
            Body::Suspect(m) => {
                let cause = cause_from_wire(m.cause);
                self.checked_update(
                    update(m.member, m.incarnation, MemberState::Suspect, cause, m.from),
                    sync,
                );
                self.answer_accusation(inb, m.member, m.incarnation);
            }
            Body::Dead(m) => {
                let cause = cause_from_wire(m.cause);
                self.checked_update(
                    update(m.member, m.incarnation, MemberState::Dead, cause, m.from),
                    sync,
                );
                self.answer_accusation(inb, m.member, m.incarnation);
            }
            Body::Leave(m) => {
                self.checked_update(
                    update(
                        m.member,
                        m.incarnation,
                        MemberState::Left,
                        Cause::Left,
                        m.member,
                    ),
                    sync,
                );
            }
            Body::Broadcast(b) => self.on_broadcast(b),
            Body::SyncDigest(d) => {
                // Sync is answered only to a known member at its own address, and one
                // chunk per datagram: a small forged digest must not make us send our
                // whole table to an address of the forger's choosing.
                if inb.synced || !self.is_member_at(sender, from) {
                    self.stats.messages_rejected += 1;
                    return;
                }
                let limit = self.cfg.max_syncs_per_source as u32;
                if !self.spend(from, Work::Sync, limit) {
                    self.stats.syncs_refused += 1;
                    return;
                }
                inb.synced = true;
                self.on_sync_digest(from, sender, d);
            }
            Body::SyncWant(w) => {
                // A want also comes from a seed answering our join, maybe before the
                // entries that would introduce the seed.
                if inb.wanted || !(self.is_member_at(sender, from) || self.is_seed(from)) {
                    self.stats.messages_rejected += 1;
                    return;
                }
                inb.wanted = true;
                self.on_sync_want(from, sender, w);
            }
        }
    }

    /// Whether `id` is a member we know at `addr`, in any state: a restarted member we
    /// hold dead must still get answers, or it would never learn to refute.
    fn is_member_at(&self, id: NodeId, addr: SocketAddr) -> bool {
        self.members.get(id).is_some_and(|e| e.addr == addr)
    }

    /// Suspect/Dead/Leave from the wire: incarnations beyond what a member can ever
    /// refute are rejected, so a forged huge incarnation cannot pin a member dead.
    fn checked_update(&mut self, u: Update<'_>, sync: bool) {
        if u.incarnation > MAX_INCARNATION {
            self.stats.messages_rejected += 1;
            return;
        }
        self.process_update(u, sync);
    }

    fn alive_update<'a>(&self, a: AliveRef<'a>) -> Option<Update<'a>> {
        if a.name.is_empty()
            || a.name.len() > MAX_NAME_LEN
            || a.metadata.len() > self.cfg.max_metadata_size
            || a.incarnation > MAX_INCARNATION
        {
            return None;
        }
        // Validated once: a join storm decodes every member's Alive λ log n times per
        // node, and the validation was about 5 % of its instructions when done twice.
        let name = std::str::from_utf8(a.name).ok()?;
        if NodeId::from_name(name) != NodeId(a.member) {
            return None;
        }
        // The decoder already checked the address.
        let addr = wire::decode_addr(a.addr).ok()?;
        Some(Update {
            id: NodeId(a.member),
            incarnation: a.incarnation,
            state: MemberState::Alive,
            cause: Cause::Silence,
            accuser: NodeId(a.member),
            descriptor: Some(Descriptor {
                name: a.name,
                addr,
                addr_wire: a.addr,
                metadata: a.metadata,
            }),
        })
    }

    fn on_broadcast(&mut self, b: wire::UserBroadcast) {
        let key = (NodeId(b.origin), b.seq);
        if key.0 == self.id() || b.payload.len() > self.max_broadcast_size() {
            return;
        }
        if self.remember_broadcast(key) {
            // Own the payload: as decoded it is a slice of the whole datagram.
            let payload = Bytes::copy_from_slice(&b.payload);
            self.stats.broadcasts_delivered += 1;
            self.events.push_back(Event::Broadcast {
                origin: key.0,
                payload: payload.clone(),
            });
            self.queue_broadcast(key, payload);
        }
    }

    /// Applies news about a member under SWIM precedence, then does what the change
    /// implies: events, re-gossip, suspicion timers, ring changes.
    ///
    /// A state-sync delta (`via_sync`) about a member we did not know is not re-gossiped:
    /// it is old news to the cluster (a joiner learning everyone would otherwise start
    /// `n` broadcasts). One that changes what we knew is news — after a partition heals
    /// it is how one side's changes reach the other — and is re-gossiped.
    pub(crate) fn process_update(&mut self, mut u: Update<'_>, via_sync: bool) {
        if u.id == self.id() {
            self.news_about_self(&u);
            return;
        }
        if via_sync
            && u.state == MemberState::Dead
            && self.members.get(u.id).is_some_and(|e| e.state.is_live())
        {
            // memberlist's rule for state syncs: a peer's Dead about a member we hold
            // live is taken as a suspicion. After a partition heals, each side's syncs
            // carry its verdicts about the other; taken as verdicts they would convict
            // here members this node reached all along, which then refute. As a
            // suspicion the member refutes before anyone here acts on it.
            u.state = MemberState::Suspect;
        }
        let now = self.now;
        let applied = self.members.apply(&u, now, self.cfg.max_members);
        let previous = match applied {
            Applied::Changed { previous } => previous,
            Applied::Stale => {
                self.maybe_confirm(&u);
                return;
            }
            Applied::Unknown => return,
            Applied::Full => {
                self.stats.members_refused += 1;
                return;
            }
        };
        let Some(entry) = self.members.get(u.id) else {
            return;
        };
        let member = entry.snapshot();
        let was = previous.map(|(s, _)| s);
        // A join's state sync brings every member at once: gossiping each would be a
        // storm, and everyone knows them already. A member this node had convicted by
        // silence and since forgotten is news, though: the far side of a long partition.
        if !(via_sync && was.is_none()) || self.is_reconnect_candidate(u.id) {
            self.queue.push(Key::Member(u.id), None);
        }
        if let Some(m) = self.monitors.get_mut(&u.id) {
            m.addr = member.addr; // a member that restarted elsewhere
        }
        if was.is_none_or(|s| s.is_live()) != member.state.is_live() || was.is_none() {
            self.ring_dirty = true;
        }
        debug!(member = %member.name(), state = member.state.as_str(), incarnation = member.incarnation, "member state");
        if member.state != MemberState::Suspect && self.suspicions.swap_remove(&u.id).is_some() {
            self.timers.cancel(OneShot::Suspicion(u.id));
        }
        if was == Some(MemberState::Suspect) && member.state == MemberState::Alive {
            // A refutation is the member speaking: as a monitor, count its silence from
            // now rather than convicting on silence it has just disproved.
            if let Some(m) = self.monitors.get_mut(&u.id) {
                m.detector.restart_silence(now);
            }
        }
        match (was, member.state) {
            (None | Some(MemberState::Dead | MemberState::Left), MemberState::Alive) => {
                if was != Some(MemberState::Left) {
                    // Back from the dead, or back after `dead_retention` forgot it.
                    self.note_revival(u.id);
                }
                if self.cfg.strategy != Strategy::PhiMonitors {
                    self.probes
                        .member_joined(u.id, self.members.live_count(), &mut self.rng);
                }
                self.events.push_back(Event::MemberJoined(member));
            }
            (Some(MemberState::Alive), MemberState::Alive) => {
                self.events.push_back(Event::MemberUpdated(member));
            }
            (Some(MemberState::Suspect), MemberState::Alive) => {
                self.events.push_back(Event::MemberAlive(member));
            }
            (_, MemberState::Suspect) => {
                self.start_suspicion(u.id, u.incarnation, u.accuser);
                if was != Some(MemberState::Suspect) {
                    self.events.push_back(Event::MemberSuspected {
                        member,
                        cause: u.cause,
                    });
                }
            }
            (Some(w), MemberState::Dead) if w.is_live() => {
                // Silence can be a partition rather than a death (see `reconnect`).
                self.note_conviction(u.id, u.cause);
                self.events.push_back(Event::MemberDead {
                    member,
                    cause: u.cause,
                });
            }
            (Some(w), MemberState::Left) if w != MemberState::Left => {
                self.events.push_back(Event::MemberLeft(member));
            }
            _ => {}
        }
    }

    /// A repeat of a suspicion we already hold, from another accuser, is an independent
    /// confirmation (Lifeguard): the timeout shrinks and the news is re-gossiped.
    fn maybe_confirm(&mut self, u: &Update<'_>) {
        if u.state != MemberState::Suspect || !self.cfg.strategy.lifeguard() {
            return;
        }
        let Some(s) = self.suspicions.get_mut(&u.id) else {
            return;
        };
        if s.incarnation != u.incarnation || !s.confirm(u.accuser) {
            return;
        }
        let deadline = s.deadline;
        self.timers.schedule(deadline, OneShot::Suspicion(u.id));
        if let Some(accuser) = self.members.accuser_mut(u.id, u.incarnation) {
            // Re-gossip naming the newest confirmer, so that others count it too.
            *accuser = u.accuser;
            self.queue.push(Key::Member(u.id), None);
        }
    }

    /// A member that tells us we are suspect or dead, at an incarnation we have just
    /// refuted or had refuted before, holds an outdated view of us. Gossip carries only
    /// its current state, so it would keep repeating the accusation, and our refutation
    /// may not reach it before its suspicion timer runs out (push-pull comes only every
    /// minute or two). After a partition heals, the refutation would travel back only by
    /// gossip to the dead, by chance. We answer it directly with our Alive, once per
    /// datagram, only to a known member at its own address, so a forged accusation
    /// cannot aim our answers elsewhere, and at most `MAX_ANSWERS_PER_SOURCE` per
    /// source per probe interval, so a stream of spoofed ones cannot aim many at it.
    /// Called after the accusation was applied, so a current one has already been
    /// refuted.
    fn answer_accusation(&mut self, inb: &mut Inbound, member: u64, incarnation: u64) {
        if member != self.id().0
            || incarnation >= self.incarnation()
            || inb.corrected
            || self.leaving
            || !self.is_member_at(inb.sender, inb.from)
        {
            return;
        }
        inb.corrected = true;
        if !self.spend(inb.from, Work::Answer, MAX_ANSWERS_PER_SOURCE) {
            self.stats.answers_refused += 1;
            return;
        }
        self.stats.accusations_answered += 1;
        let me = self.id();
        self.outbox.push_back(Outgoing {
            to: inb.from,
            to_id: Some(inb.sender),
            primary: Primary::Entries(VecDeque::from([Delta {
                id: me,
                peer: PeerKnows::Older,
            }])),
        });
    }

    /// Someone says we are suspect, dead or gone, or speaks for an older or newer life
    /// of ours: move above their incarnation and gossip Alive. Only a member raises its
    /// own incarnation, so this is the one way out of a suspicion or a wrong conviction.
    fn news_about_self(&mut self, u: &Update<'_>) {
        if self.leaving {
            return;
        }
        let mine = self.incarnation();
        let refute = match u.state {
            MemberState::Alive => u.incarnation > mine,
            _ => u.incarnation >= mine,
        };
        if !refute {
            return;
        }
        if u.state != MemberState::Alive {
            self.events.push_back(Event::SelfSuspected {
                by: u.accuser,
                incarnation: u.incarnation,
            });
        }
        let inc = u.incarnation.saturating_add(1);
        self.members.update_local(inc, MemberState::Alive, self.now);
        self.queue.push(Key::Member(self.id()), None);
        self.stats.refutations += 1;
        self.health.apply(1);
        self.events
            .push_back(Event::SelfRefuted { incarnation: inc });
        debug!(incarnation = inc, "refuted");
    }

    /// Raises a suspicion of our own about `id` (at the incarnation we know). If it is
    /// already suspected, our failed probe is an independent confirmation (Lifeguard):
    /// the timeout shrinks and our own Suspect is gossiped.
    pub(crate) fn suspect(&mut self, id: NodeId, cause: Cause) {
        let Some(e) = self.members.get(id) else {
            return;
        };
        if self.leaving || !e.state.is_live() {
            return;
        }
        let already = e.state == MemberState::Suspect;
        let update = Update {
            id,
            incarnation: e.incarnation,
            state: MemberState::Suspect,
            cause,
            accuser: self.id(),
            descriptor: None,
        };
        if already {
            self.maybe_confirm(&update);
            return;
        }
        self.stats.suspicions_raised += 1;
        self.process_update(update, false);
    }

    /// Declares `id` dead, unless this node was just stalled (then the verdict waits for
    /// the guard to pass and is checked again).
    pub(crate) fn convict(&mut self, id: NodeId, cause: Cause) -> bool {
        let Some(e) = self.members.get(id) else {
            return false;
        };
        if !e.state.is_live() || self.leaving {
            return false;
        }
        if self.now < self.guard_until {
            self.stats.convictions_deferred += 1;
            return false;
        }
        self.stats.convictions += 1;
        let addr = e.addr;
        let update = Update {
            id,
            incarnation: e.incarnation,
            state: MemberState::Dead,
            cause,
            accuser: self.id(),
            descriptor: None,
        };
        self.process_update(update, false);
        // Tell the convicted member itself. It is silent to us, but a member cut off
        // one way (or paused) may still hear it, and then refutes at once instead of
        // living on unaware that the cluster holds it dead until its next push-pull.
        self.outbox.push_back(Outgoing {
            to: addr,
            to_id: Some(id),
            primary: Primary::Gossip,
        });
        true
    }

    fn start_suspicion(&mut self, id: NodeId, incarnation: u64, accuser: NodeId) {
        let n = self.members.live_count();
        let floor = self.cfg.suspicion_min_timeout(n);
        let (min, max, expected) = match self.cfg.strategy {
            Strategy::Swim => (floor, floor, 0),
            Strategy::Lifeguard => {
                let k = self.cfg.suspicion_mult.saturating_sub(2);
                let k = if n.saturating_sub(2) < k as usize {
                    0
                } else {
                    k
                };
                (floor, floor * self.cfg.suspicion_max_mult, k)
            }
            Strategy::PhiMonitors => {
                // A fallback behind the monitors: never earlier than a monitor could
                // convict by phi, so the fallback cannot undercut acceptable_pause.
                let min = floor.max(self.steady_convict_silence());
                let k = (self.cfg.monitors as u32).saturating_sub(1);
                let k = k.min(n.saturating_sub(2) as u32);
                (min, min * self.cfg.suspicion_max_mult, k)
            }
        };
        let s = Suspicion::new(incarnation, self.now, accuser, min, max, expected);
        self.timers.schedule(s.deadline, OneShot::Suspicion(id));
        self.suspicions.insert(id, s);
    }

    /// Silence a monitor needs to convict under a steady rhythm at `probe_interval`:
    /// `probe_interval + acceptable_pause + y(phi_convict) × min_std_dev`.
    pub(crate) fn steady_convict_silence(&self) -> Duration {
        let y = self.y_convict.max(0.0);
        self.cfg.probe_interval + self.cfg.acceptable_pause + self.cfg.min_std_dev.mul_f64(y)
    }

    fn on_suspicion_timeout(&mut self, id: NodeId) {
        let Some(s) = self.suspicions.get(&id) else {
            return;
        };
        if s.deadline > self.now {
            return; // rescheduled (confirmations or our own stall): a later timer holds
        }
        let inc = s.incarnation;
        let current = self.members.get(id).map(|e| (e.state, e.incarnation));
        if current != Some((MemberState::Suspect, inc)) {
            // Refuted or superseded: the timer must not act on old news.
            self.suspicions.swap_remove(&id);
            return;
        }
        if self.now < self.guard_until && !self.leaving {
            // Our own stall just ended: the refutations it queued are read first.
            let at = self.guard_until;
            if let Some(s) = self.suspicions.get_mut(&id) {
                s.hold_until(at);
            }
            self.stats.convictions_deferred += 1;
            self.timers.schedule(at, OneShot::Suspicion(id));
            return;
        }
        let cause = self.members.get(id).map_or(Cause::Silence, |e| e.cause);
        if !self.leaving {
            match self.private_suspicion(id) {
                Private::Waits => return,
                Private::Isolated => {
                    // Our own view, not the cluster's: nothing we sent got out while we
                    // suspected, so the member never heard the suspicion to refute it.
                    if self.convict(id, cause) {
                        self.queue.remove(Key::Member(id));
                        self.stats.convictions_kept_local += 1;
                    }
                    return;
                }
                Private::Decide => {}
            }
        }
        self.convict(id, cause);
    }

    /// A suspicion that no one but its first accuser raised (or whose member has spoken
    /// to us since it began) is about to convict: the accuser's view alone, or a view
    /// the member contradicted. Before it becomes the cluster's verdict, this node makes
    /// sure it is not the one cut off, and gives the member a last chance.
    ///
    /// - No probe of ours answered since the suspicion began (and there are members
    ///   other than the suspect to answer): what this node sends is not getting out (a
    ///   one-way cut, a flapping link), so its suspicion never reached the member to be
    ///   refuted. It waits a period at a time, within the suspicion's budget, pinging a
    ///   random other member each time to learn whether it gets through; past that it
    ///   decides for itself only ([`Private::Isolated`]: the verdict is not gossiped, so
    ///   a cut node's timer firing as the cut heals does not spread it as a verdict; a
    ///   state sync may carry it later, and a peer takes a synced Dead about a member it
    ///   holds live as a suspicion, which the member refutes).
    /// - Then one direct ping carrying the suspicion (the buddy system, under every
    ///   strategy here), so a live member refutes in its answer (or, having refuted
    ///   already, answers with its newer Alive); the verdict waits a probe timeout for
    ///   it. If the member has spoken to us while suspected, more of them, a probe
    ///   timeout apart, within the budget: under heavy loss one round trip often fails.
    ///
    /// memberlist convicts on a lone suspicion at its longest timeout, with no such
    /// check: a cut node's timer firing just after the heal makes a healthy member dead
    /// everywhere until it refutes (issue 20, finding 2).
    fn private_suspicion(&mut self, id: NodeId) -> Private {
        let now = self.now;
        let live_others = self.members.live_count() > 2;
        let heard = self.members.get(id).and_then(|e| e.heard);
        let Some(s) = self.suspicions.get_mut(&id) else {
            return Private::Decide;
        };
        // A member that spoke to us since the suspicion began is alive, whatever others
        // confirmed: it refuted and we missed the refutation (30 % loss made lifeguard
        // and swim convict such members, each by one observer), or it never heard the
        // suspicion. It gets the last chance too.
        let spoke_while_suspected = heard.is_some_and(|h| h >= s.started);
        if s.confirmations() > 0 && !spoke_while_suspected {
            return Private::Decide;
        }
        let answered = self.last_answer.is_some_and(|t| t >= s.started);
        if s.confirmations() == 0 && live_others && !answered {
            let at = now + self.cfg.probe_interval;
            if s.defer_to(at) {
                self.stats.convictions_deferred += 1;
                self.timers.schedule(at, OneShot::Suspicion(id));
                // Ask someone else whether we get through at all: a node whose own
                // probes all go to the suspect (one monitor, say) would otherwise have
                // no answer to go by. Its ack is the answer.
                let mut peer = std::mem::take(&mut self.scratch_helpers);
                self.random_peers(1, Some(id), &mut peer);
                if let Some(&p) = peer.first() {
                    self.send_ping(p, Kind::LastChance);
                }
                self.scratch_helpers = peer;
                return Private::Waits;
            }
            return Private::Isolated;
        }
        // Another last chance (out of the budget) if the member spoke since the last
        // one, or at all while suspected: its answer may simply have been lost.
        let spoke_since = match s.last_chance {
            None => true,
            Some(sent) => spoke_while_suspected || heard.is_some_and(|h| h >= sent),
        };
        if !spoke_since {
            return Private::Decide;
        }
        // The first last chance is given whatever the budget (one probe timeout): a cut
        // that used the budget up may have healed just now, and this is the one time
        // the member hears of the suspicion. Later ones come out of the budget.
        let at = now + self.health.scale(self.cfg.probe_timeout);
        if s.last_chance.is_none() {
            s.deadline = at;
        } else if !s.defer_to(at) {
            return Private::Decide;
        }
        s.last_chance = Some(now);
        self.timers.schedule(at, OneShot::Suspicion(id));
        self.send_ping(id, Kind::LastChance);
        Private::Waits
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
                        self.health.scale(self.cfg.probe_interval)
                    }
                };
                self.timers.set(Periodic::Probe, rearm(interval));
                if !self.leaving {
                    self.probe_round();
                }
            }
            Periodic::Gossip => {
                if !self.queue.is_empty() {
                    self.gossip_now();
                    self.timers
                        .set(Periodic::Gossip, rearm(self.cfg.gossip_interval));
                }
                // Otherwise the timer stays off until `after_input` sees news queued.
            }
            Periodic::PushPull => {
                let next = if self.early_push_pulls > 0 {
                    // Members that joined at the same time as us reach us through these
                    // rounds within seconds, not a whole interval later.
                    self.early_push_pulls -= 1;
                    now + self.cfg.join_retry_interval * 4
                } else {
                    rearm(self.push_pull_interval())
                };
                self.timers.set(Periodic::PushPull, next);
                if !self.leaving {
                    self.start_push_pull();
                }
            }
            Periodic::JoinRetry => {
                // Until a seed's full answer arrived, not merely its first datagram: a
                // joiner that knows nobody has no one to push-pull with.
                if (!self.synced || self.members.live_count() == 1) && !self.leaving {
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
                let mut reaped = std::mem::take(&mut self.scratch_ids);
                reaped.clear();
                self.members.reap(now, self.cfg.dead_retention, &mut reaped);
                for id in &reaped {
                    self.queue.remove(Key::Member(*id));
                    self.suspicions.swap_remove(id);
                    self.timers.cancel(OneShot::Suspicion(*id));
                }
                self.stats.members_reaped += reaped.len() as u64;
                self.scratch_ids = reaped;
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
        }
    }

    /// Gossips pending updates to `gossip_fanout` random live members now.
    fn gossip_now(&mut self) {
        let mut picks = std::mem::take(&mut self.scratch_ids);
        self.random_peers(self.cfg.gossip_fanout, None, &mut picks);
        if let Some(id) = self.recently_dead_pick() {
            picks.push(id);
        }
        for &id in &picks {
            if let Some(e) = self.members.get(id) {
                self.outbox.push_back(Outgoing {
                    to: e.addr,
                    to_id: Some(id),
                    primary: Primary::Gossip,
                });
            }
        }
        self.scratch_ids = picks;
    }

    /// Up to `k` distinct random live peers, never `exclude`.
    pub(crate) fn random_peers(
        &mut self,
        k: usize,
        exclude: Option<NodeId>,
        out: &mut Vec<NodeId>,
    ) {
        out.clear();
        let peers = self.members.live_peers();
        let n = peers.len();
        let available = n - usize::from(exclude.is_some_and(|x| self.members.is_live_peer(x)));
        let k = k.min(available);
        if k == 0 {
            return;
        }
        if k * 2 >= n {
            // Dense pick: a partial Fisher-Yates over indices would allocate; a scan
            // with a random start is cheap at these sizes and still uniform enough for
            // gossip, and every choice stays a function of the seed.
            let start = rand::Rng::random_range(&mut self.rng, 0..n);
            for i in 0..n {
                let id = peers[(start + i) % n];
                if Some(id) != exclude {
                    out.push(id);
                    if out.len() == k {
                        break;
                    }
                }
            }
            return;
        }
        // Sparse pick: rejection sampling, bounded in tries.
        for _ in 0..k * 8 {
            let id = peers[rand::Rng::random_range(&mut self.rng, 0..n)];
            if Some(id) != exclude && !out.contains(&id) {
                out.push(id);
                if out.len() == k {
                    break;
                }
            }
        }
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

    fn write_primary(&mut self, out: Outgoing, w: &mut PacketWriter<'_>) {
        // Peers drop a packet with more than `max_messages_per_packet` messages whole,
        // so the writer counts every message against it as well as the byte budget.
        let push = |w: &mut PacketWriter<'_>, body: Body| w.push(&Message { body: Some(body) });
        match out.primary {
            Primary::Ping { seq, target } => {
                push(
                    w,
                    Body::Ping(wire::Ping {
                        seq,
                        target: target.0,
                    }),
                );
            }
            Primary::Ack { seq } => {
                push(w, Body::Ack(wire::Ack { seq }));
            }
            Primary::PingReq { seq, target, addr } => {
                push(
                    w,
                    Body::PingReq(wire::PingReq {
                        seq,
                        target: target.0,
                        target_addr: addr,
                    }),
                );
            }
            Primary::Nack { seq, refused } => {
                push(w, Body::Nack(wire::Nack { seq, refused }));
            }
            Primary::Gossip => {}
            Primary::Join => {
                let me = self.members.local();
                let version = wire::pack_version(me.incarnation, me.state.rank());
                let digest = wire::SyncDigest {
                    lo: 0,
                    hi: u64::MAX,
                    members: vec![me.id.0],
                    versions: vec![version],
                    last: true,
                };
                push_member(w, me);
                push(w, Body::SyncDigest(digest));
            }
            Primary::Digest(d) => {
                // Our Alive first, so a peer that does not know us can place the digest.
                push_member(w, self.members.local());
                push(w, Body::SyncDigest(d));
            }
            Primary::Want(want) => {
                push(w, Body::SyncWant(want));
            }
            Primary::Entries(mut deltas) => {
                // Room for the `sync_entries` field itself (a key and a varint of at
                // most 2 bytes).
                w.reserve(3);
                let before = w.messages();
                let mut progressed = false;
                while let Some(d) = deltas.front().copied() {
                    let Some(e) = self.members.get(d.id) else {
                        deltas.pop_front();
                        continue;
                    };
                    let fits = match (d.peer, e.state) {
                        (PeerKnows::Nothing, MemberState::Dead | MemberState::Left) => true,
                        (PeerKnows::Nothing | PeerKnows::Unsure, MemberState::Suspect) => {
                            let alive = alive_ref(e);
                            let suspect = Message { body: verdict(e) };
                            let len = alive.len() + wire::message_len(&suspect);
                            w.fits(len, 2) && w.push_alive(&alive) && w.push(&suspect)
                        }
                        _ => push_member(w, e),
                    };
                    if !fits && progressed {
                        break;
                    }
                    // An entry that cannot fit even an empty packet (a tiny
                    // max_packet_size) is skipped rather than retried forever.
                    deltas.pop_front();
                    progressed = true;
                }
                w.set_sync_entries((w.messages() - before) as u32);
                if !deltas.is_empty() {
                    self.outbox.push_front(Outgoing {
                        to: out.to,
                        to_id: out.to_id,
                        primary: Primary::Entries(deltas),
                    });
                }
            }
        }
        // Buddy system (Lifeguard): a suspected member hears of it in every packet we
        // send it, so it can refute at once.
        // `suspicions` holds exactly the members we hold suspect, and is nearly always
        // empty: checking it first spares every datagram a member-table lookup.
        if let Some(id) = out.to_id
            && self
                .suspicions
                .get(&id)
                .is_some_and(|s| self.cfg.strategy.lifeguard() || s.last_chance.is_some())
            && let Some(e) = self.members.get(id)
            && e.state == MemberState::Suspect
        {
            push_member(w, e);
        }
    }

    /// Fills the rest of the packet with queued updates, least-sent first.
    /// `counts`: the sends count toward each update's retransmission limit.
    /// `to`: the destination member. Its own Alive or Leave is not sent to it (wasted on
    /// the one member that needs it least: a node whose view is still tiny would spend
    /// a joiner's whole retransmission budget gossiping the joiner to itself); news that
    /// it is suspected or dead is, so it can refute.
    fn piggyback(&mut self, w: &mut PacketWriter<'_>, counts: bool, to: Option<NodeId>) {
        if self.queue.is_empty() {
            return;
        }
        let limit = self.cfg.retransmit_limit(self.members.live_count());
        let mut sent = std::mem::take(&mut self.scratch_sent);
        sent.clear();
        let max_messages = self.cfg.max_messages_per_packet;
        let mut misses = 0;
        for (key, payload) in self.queue.candidates(PIGGYBACK_SCAN) {
            // Stop when the packet is all but full: the smallest update (a Leave) takes
            // about 12 bytes, and a few misses in a row mean little else will fit.
            if w.messages() >= max_messages
                || w.room() < MIN_UPDATE_LEN
                || misses >= MAX_PIGGYBACK_MISSES
            {
                break;
            }
            // With the message count checked above, a refusal means too few bytes left.
            let written = match key {
                Key::Member(id)
                    if Some(id) == to
                        && self.members.get(id).is_none_or(|e| {
                            matches!(e.state, MemberState::Alive | MemberState::Left)
                        }) =>
                {
                    continue;
                }
                Key::Member(id) => match self.members.get(id) {
                    Some(e) => push_member(w, e),
                    None => continue,
                },
                Key::Broadcast(origin, seq) => w.push(&Message {
                    body: Some(Body::Broadcast(wire::UserBroadcast {
                        origin: origin.0,
                        seq,
                        payload: payload.cloned().unwrap_or_default(),
                    })),
                }),
            };
            if written {
                sent.push(key);
            } else {
                misses += 1;
            }
        }
        for key in sent.iter().filter(|_| counts) {
            self.queue.sent(*key, limit);
        }
        self.scratch_sent = sent;
    }
}

/// A member's Alive as its entry holds it, borrowed: writing it touches no reference
/// count of the member's descriptor (see `wire::PacketWriter`).
fn alive_ref(e: &Entry) -> AliveRef<'_> {
    AliveRef {
        member: e.id.0,
        incarnation: e.incarnation,
        name: e.packed.name(),
        addr: e.packed.addr_wire(),
        metadata: e.packed.metadata(),
    }
}

/// Writes the message that states `e`'s current state; false if it does not fit.
fn push_member(w: &mut PacketWriter<'_>, e: &Entry) -> bool {
    match verdict(e) {
        None => w.push_alive(&alive_ref(e)),
        Some(body) => w.push(&Message { body: Some(body) }),
    }
}

/// What [`push_member`] adds to a packet.
pub(crate) fn member_len(e: &Entry) -> usize {
    match verdict(e) {
        None => alive_ref(e).len(),
        Some(body) => wire::message_len(&Message { body: Some(body) }),
    }
}

/// The message that states a suspect, dead or departed member's state; `None` for a
/// live one, whose Alive is written from its entry (`alive_ref`).
fn verdict(e: &Entry) -> Option<Body> {
    let (member, incarnation) = (e.id.0, e.incarnation);
    match e.state {
        MemberState::Alive => None,
        MemberState::Suspect => Some(Body::Suspect(wire::Suspect {
            member,
            incarnation,
            from: e.accuser.0,
            cause: cause_to_wire(e.cause),
        })),
        MemberState::Dead => Some(Body::Dead(wire::Dead {
            member,
            incarnation,
            from: e.accuser.0,
            cause: cause_to_wire(e.cause),
        })),
        MemberState::Left => Some(Body::Leave(wire::Leave {
            member,
            incarnation,
        })),
    }
}

fn cause_to_wire(c: Cause) -> i32 {
    let w = match c {
        Cause::Silence => wire::Cause::Silence,
        Cause::Refused => wire::Cause::Refused,
        Cause::Left => wire::Cause::Left,
    };
    w as i32
}

fn cause_from_wire(c: i32) -> Cause {
    match wire::Cause::try_from(c) {
        Ok(wire::Cause::Refused) => Cause::Refused,
        Ok(wire::Cause::Left) => Cause::Left,
        _ => Cause::Silence,
    }
}
