//! The discrete-event world: real `rumor::Node`s on a virtual clock, an event heap keyed
//! by (time, sequence), the network model and the fault timeline.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rumor::{Config, Identity, MemberState, Node, NodeId, NodeStats, Time};

use crate::agenda::Agenda;
use crate::faults::{self, Action, KeyOp};
use crate::network::{ActivePartition, Fate, NetModel, mix};
use crate::oracle::{Oracle, Truth, event_member};
use crate::scenario::{CrashMode, FaultKind, Forger, RestartIncarnation, Scenario, Start};

/// The port every simulated node listens on.
const PORT: u16 = 7946;

/// Address of node `i`: 127.x.y.z, unique for up to 16 M nodes. The simulator never
/// opens a socket; addresses only name nodes.
pub fn addr_of(i: usize) -> SocketAddr {
    let n = (i + 1) as u32;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8)),
        PORT,
    )
}

fn index_of(a: SocketAddr) -> Option<usize> {
    match a.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let n = (u32::from(o[1]) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]);
            (o[0] == 127 && n > 0).then(|| n as usize - 1)
        }
        IpAddr::V6(_) => None,
    }
}

enum Kind {
    Timer(usize),
    Deliver {
        to: usize,
        from: usize,
        data: Vec<u8>,
        admitted: bool,
    },
    Resume(usize),
    /// The network's refusal of a datagram `to` sent to `about`'s closed port, quoting
    /// the datagram's start.
    Refusal {
        to: usize,
        about: usize,
        quote: Vec<u8>,
    },
    Fault(Action),
    Join(usize),
    /// `start = "converged"`: build the cluster now (see [`World::build`]).
    Build,
}

struct SimNode {
    name: String,
    node: Option<Node>,
    /// When the node's pending timer entry in the heap is due.
    timer_at: Option<Time>,
    paused_until: Option<Time>,
    /// When the current (merged) stall began.
    paused_since: Option<Time>,
    backlog: Vec<(usize, Vec<u8>)>,
    backlog_bytes: usize,
    /// CPU starvation: each event takes `.0` until `.1`.
    slow: Option<(Duration, Time)>,
    busy_until: Time,
    life: u64,
    joined: bool,
    /// Counters of previous lives, so totals survive restarts.
    retired: NodeStats,
    /// Crashed as a process on a live host: datagrams to it are refused.
    refuses: bool,
    /// Refusals that arrived while paused (the socket's error queue), read on resume:
    /// about whom, and the quote.
    refusal_backlog: Vec<(usize, Vec<u8>)>,
    /// The incarnation last reported to the oracle, for this life.
    reported_incarnation: Option<u64>,
    /// How far this node's monotonic clock runs ahead of the world's (`clock-jump`).
    clock: Duration,
    /// Bytes of datagrams waiting for a starved (`slow`) process to read them: bounded
    /// by the receive buffer, as a paused process's backlog is.
    starved_bytes: usize,
}

/// Bytes of a refused datagram an ICMP error quotes here. Linux quotes up to 548 bytes
/// of a UDP payload over IPv4; the node checks the first `rumor::QUOTE_PREFIX`, and the
/// quote is kept short so refusals stay cheap to simulate.
const QUOTE_LEN: usize = 64;

/// The first byte of a plaintext probe: `Packet.token`'s key, written first.
const PROBE_START: u8 = (9 << 3) | 5;
/// The first byte of a sealed frame.
const SEALED_START: u8 = 0;

/// `start = "converged"`: members each hub introduces. A hub hears a Join from each of
/// them within one probe interval of its clock (the build takes no simulated time), and
/// a node tracks at most 4,096 sources' sync budgets per interval; a hub's digest
/// (about 70 entries a datagram) must also stay within `max_syncs_per_source` (64)
/// datagrams when it syncs with hub 0.
const HUB_GROUP: usize = 2048;

/// Most refusals queued at a paused node (the kernel bounds the error queue by the
/// socket's receive buffer too).
const REFUSAL_BACKLOG: usize = 64;

/// Load and bookkeeping counters of a run.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Events popped from the heap.
    pub events: u64,
    /// Datagrams sent after the warm-up.
    pub msgs: u64,
    /// Bytes sent after the warm-up.
    pub bytes: u64,
    /// Largest datagram sent.
    pub max_packet: usize,
    /// Datagrams dropped because a paused node's buffer was full.
    pub recv_overflow: u64,
    /// Datagrams dropped by loss.
    pub lost: u64,
    /// Datagrams cut by partitions.
    pub partitioned: u64,
    /// Pauses injected.
    pub pauses: u64,
    /// Pauses not injected because the node was already paused (`merge = false`).
    pub pauses_skipped: u64,
    /// The longest stall any node went through (overlapping pauses merged).
    pub longest_pause: Duration,
    /// Node-seconds of running (up or paused) processes.
    pub node_seconds: f64,
}

/// A simulation in progress.
pub struct World {
    /// Virtual time.
    pub now: Time,
    end: Time,
    warmup: Time,
    agenda: Agenda<Kind>,
    nodes: Vec<SimNode>,
    ids: BTreeMap<NodeId, usize>,
    net: NetModel,
    rng: Xoshiro256PlusPlus,
    cfg: Config,
    seed: u64,
    pool: Vec<Vec<u8>>,
    buf: Vec<u8>,
    /// What every node said, checked against the truth.
    pub oracle: Oracle,
    /// Rolling hash of every processed event.
    pub trace_hash: u64,
    /// Run counters.
    pub counters: Counters,
    last_account: Time,
    recv_buffer: usize,
    /// ICMP rate limiter per (refusing host, destination): tokens and when last refilled.
    icmp_buckets: BTreeMap<(usize, usize), (f64, Time)>,
    icmp_per_second: f64,
    icmp_burst: f64,
    /// Heal windows to open and close, as (time, 0 = open / 1 = close, window index in
    /// the oracle), in order; `heal_next` is the first not yet done.
    heal_checks: Vec<(Time, u8, usize)>,
    heal_next: usize,
    /// For forgers: by destination, the start of the last probe each sender sent it
    /// (a datagram that starts with a token, or any sealed one: an on-path forger cannot
    /// tell sealed probes apart). Kept only when the scenario forges refusals.
    seen: Option<Vec<BTreeMap<usize, Vec<u8>>>>,
    /// Forged refusals delivered.
    pub forged: u64,
    /// Per fault, the seeds its restarts join through (`seeds`), if it names any.
    restart_seeds: Vec<Option<Vec<usize>>>,
    /// Per fault, whether its restarts bring a different member (`new_member`).
    restart_new: Vec<bool>,
    /// While [`World::build`] runs: datagrams sent and not yet handled, as (to, from,
    /// bytes), delivered in order, lossless and at once.
    building: Option<VecDeque<(usize, usize, Vec<u8>)>>,
    /// Members each hub introduces in [`World::build`] (`HUB_GROUP`; tests use fewer).
    hub_group: usize,
}

/// The heal windows of a run ending at `end`: for each partition that heals before
/// `end`, (heal, close), where the window closes at the first crash, leave, restart,
/// pause or partition start at or after the heal, or at `end`.
fn heal_windows(
    partitions: &[ActivePartition],
    timeline: &[(Time, Action)],
    end: Time,
) -> Vec<(Time, Time)> {
    partitions
        .iter()
        .enumerate()
        .filter(|(_, p)| p.end < end)
        .map(|(k, p)| {
            let starts = partitions
                .iter()
                .enumerate()
                .filter(|&(j, q)| j != k && q.start >= p.end)
                .map(|(_, q)| q.start);
            let faults = timeline
                .iter()
                .filter(|(t, a)| {
                    *t >= p.end
                        && match a {
                            Action::Crash(..) | Action::Leave(_) | Action::Restart(..) => true,
                            Action::Pause(_, d, _) => !d.is_zero(),
                            _ => false,
                        }
                })
                .map(|&(t, _)| t);
            let close = starts.chain(faults).min().map_or(end, |t| t.min(end));
            (p.end, close)
        })
        .collect()
}

impl World {
    /// Builds the world for `sc` with master seed `seed` (nodes not yet started).
    pub fn new(sc: &Scenario, seed: u64) -> Result<World, String> {
        let cfg = sc.node_config()?;
        let faults::Plan {
            partitions,
            timeline,
            rng,
        } = faults::plan(sc, seed);
        let end = Time::ZERO + sc.duration.0;
        let mut oracle = Oracle::new(sc.nodes);
        let mut heal_checks = Vec::new();
        for (at, close) in heal_windows(&partitions, &timeline, end) {
            let h = oracle.heal_window(at);
            heal_checks.push((at, 0, h));
            heal_checks.push((close, 1, h));
        }
        heal_checks.sort();
        let net = NetModel::new(
            sc.network.clone(),
            sc.nodes,
            mix(seed ^ 0x6e65_7477),
            partitions,
        )?;
        let mut w = World {
            now: Time::ZERO,
            end,
            warmup: Time::ZERO + sc.warmup.0,
            agenda: Agenda::default(),
            nodes: Vec::with_capacity(sc.nodes),
            ids: BTreeMap::new(),
            net,
            rng,
            cfg,
            seed,
            pool: Vec::new(),
            buf: vec![0; 65_536],
            oracle,
            trace_hash: 0xcbf2_9ce4_8422_2325,
            counters: Counters::default(),
            last_account: Time::ZERO,
            recv_buffer: sc.network.recv_buffer,
            icmp_buckets: BTreeMap::new(),
            icmp_per_second: sc.network.icmp_per_second,
            icmp_burst: sc.network.icmp_burst,
            heal_checks,
            heal_next: 0,
            seen: sc
                .faults
                .iter()
                .any(|f| f.kind == FaultKind::ForgedRefusal)
                .then(|| vec![BTreeMap::new(); sc.nodes]),
            forged: 0,
            restart_seeds: sc.faults.iter().map(|f| f.seeds.clone()).collect(),
            restart_new: sc.faults.iter().map(|f| f.new_member).collect(),
            building: None,
            hub_group: HUB_GROUP,
        };
        for i in 0..sc.nodes {
            let name = format!("node-{i}");
            w.ids.insert(NodeId::from_name(&name), i);
            w.nodes.push(SimNode {
                name,
                node: None,
                timer_at: None,
                paused_until: None,
                paused_since: None,
                backlog: Vec::new(),
                backlog_bytes: 0,
                slow: None,
                busy_until: Time::ZERO,
                life: 0,
                joined: false,
                retired: NodeStats::default(),
                refuses: false,
                refusal_backlog: Vec::new(),
                reported_incarnation: None,
                clock: Duration::ZERO,
                starved_bytes: 0,
            });
            if sc.start == Start::Join {
                let at = if i == 0 {
                    Time::ZERO
                } else {
                    Time::ZERO + sc.join_spread.0.mul_f64(w.rng.random::<f64>())
                };
                w.push(at, Kind::Join(i));
            }
        }
        if sc.start == Start::Converged {
            w.push(Time::ZERO, Kind::Build);
        }
        for (at, a) in timeline {
            w.push(at, Kind::Fault(a));
        }
        Ok(w)
    }

    fn push(&mut self, at: Time, kind: Kind) {
        self.agenda.push(at, kind);
    }

    fn hash(&mut self, words: &[u64]) {
        for w in words {
            self.trace_hash = (self.trace_hash ^ w)
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(17);
        }
    }

    /// The quote a forger puts in a refusal told to `observer` about `about`. On the
    /// path, a copy of the last probe it saw `observer` send there (none seen: nothing
    /// to forge with). Off the path, the strongest guess: that probe's bytes as if
    /// known, with the secret part (the token, or a sealed frame's nonce) guessed.
    fn forge_quote(&mut self, forger: Forger, observer: usize, about: usize) -> Option<Vec<u8>> {
        let seen = self
            .seen
            .as_ref()
            .and_then(|s| s[about].get(&observer))
            .cloned();
        match forger {
            Forger::OnPath => seen,
            Forger::OffPath => {
                let mut q = seen.unwrap_or_else(|| {
                    let mut q = vec![0u8; QUOTE_LEN];
                    self.rng.fill(&mut q[..]);
                    q[0] = PROBE_START;
                    q
                });
                let secret = if q.first() == Some(&SEALED_START) {
                    2..26
                } else {
                    1..5
                };
                if let Some(part) = q.get_mut(secret) {
                    self.rng.fill(part);
                }
                Some(q)
            }
        }
    }

    /// Node `i`'s own clock now: the world's time plus the jumps its clock made.
    fn local_time(&self, i: usize) -> Time {
        self.now + self.nodes[i].clock
    }

    fn hash_bytes(&mut self, data: &[u8]) {
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.hash(&[u64::from_le_bytes(w)]);
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.hash(&[u64::from_le_bytes(tail), data.len() as u64]);
    }

    /// Runs to the scenario's end; `progress` is called now and then with the fraction
    /// of simulated time done.
    pub fn run(&mut self, mut progress: impl FnMut(f64)) {
        self.advance_to(self.end, &mut progress);
        self.account(self.end);
        self.now = self.end;
        self.heal_checks(None);
        progress(1.0);
    }

    /// Processes every event due at or before `until` (and before the scenario's end),
    /// leaving later ones queued: a bench runs the join here, then times the steady
    /// state alone. Running to `until` and then on to the end processes exactly the
    /// events `run` would, in the same order.
    pub fn advance_to(&mut self, until: Time, mut progress: impl FnMut(f64)) {
        let until = until.min(self.end);
        let mut tick = 0u64;
        while self.agenda.next_at().is_some_and(|at| at <= until) {
            let Some((at, kind)) = self.agenda.pop() else {
                break;
            };
            self.heal_checks(Some(at));
            self.account(at);
            self.now = at;
            self.counters.events += 1;
            tick += 1;
            if tick.is_multiple_of(65_536) {
                progress(self.now.as_secs_f64() / self.end.as_secs_f64().max(1e-9));
            }
            self.dispatch(kind);
        }
    }

    /// Opens and closes the heal windows due before an event at `before` is processed
    /// (all that are left when `None`, at the end of the run). A window closing at the
    /// end of the run waits for the events at that very time, as `stale_views` does.
    /// Reads the nodes' views only: the trace is untouched.
    fn heal_checks(&mut self, before: Option<Time>) {
        while let Some(&(t, close, h)) = self.heal_checks.get(self.heal_next) {
            if before.is_some_and(|b| t > b || t >= self.end) {
                return;
            }
            self.heal_next += 1;
            let nodes = &self.nodes;
            let live = |o: usize, s: usize| holds_live(nodes, o, s);
            if close == 1 {
                self.oracle.heal_end(h, live);
            } else {
                self.oracle.heal_begin(h, live);
            }
        }
    }

    /// Adds running node-seconds between the last event and `t`.
    fn account(&mut self, t: Time) {
        // Counting costs O(n): do it at most once per simulated second.
        if t <= self.last_account
            || (t - self.last_account < Duration::from_secs(1) && t != self.end)
        {
            return;
        }
        let running = (0..self.nodes.len())
            .filter(|&i| matches!(self.oracle.truth(i), Truth::Up | Truth::Paused))
            .count();
        self.counters.node_seconds += running as f64 * (t - self.last_account).as_secs_f64();
        self.last_account = t;
    }

    fn dispatch(&mut self, kind: Kind) {
        let now = self.now;
        match kind {
            Kind::Timer(i) => {
                let s = &mut self.nodes[i];
                if s.timer_at != Some(now) || s.paused_until.is_some() {
                    return; // superseded, or frozen: the resume fires it
                }
                s.timer_at = None;
                if s.node.is_none() {
                    return;
                }
                if let Some((delay, until)) = s.slow
                    && now < until
                {
                    // Handling the timers takes the starved CPU's time too.
                    s.busy_until = s.busy_until.max(now) + delay;
                }
                self.hash(&[now.as_nanos(), 1, i as u64]);
                let t = self.local_time(i);
                if let Some(n) = self.nodes[i].node.as_mut() {
                    n.handle_timeout(t);
                }
                self.after_input(i);
            }
            Kind::Deliver {
                to,
                from,
                data,
                admitted,
            } => self.deliver(to, from, data, admitted),
            Kind::Resume(i) => {
                let s = &mut self.nodes[i];
                if s.paused_until != Some(now) {
                    return;
                }
                s.paused_until = None;
                s.timer_at = None;
                s.backlog_bytes = 0;
                if let Some(since) = s.paused_since.take() {
                    self.counters.longest_pause = self.counters.longest_pause.max(now - since);
                }
                let backlog = std::mem::take(&mut s.backlog);
                self.oracle.paused(i, false, now);
                self.hash(&[now.as_nanos(), 3, i as u64]);
                let t = self.local_time(i);
                for (from, data) in backlog {
                    if let Some(n) = self.nodes[i].node.as_mut() {
                        n.handle_packet(t, addr_of(from), &data);
                    }
                    self.pool.push(data);
                }
                let refusals = std::mem::take(&mut self.nodes[i].refusal_backlog);
                for (about, quote) in refusals {
                    if let Some(n) = self.nodes[i].node.as_mut() {
                        n.handle_unreachable(t, addr_of(about), &quote);
                    }
                    self.pool.push(quote);
                }
                if let Some(n) = self.nodes[i].node.as_mut() {
                    n.handle_timeout(t);
                }
                self.after_input(i);
            }
            Kind::Refusal { to, about, quote } => {
                if self.nodes[to].node.is_none() {
                    self.pool.push(quote);
                    return;
                }
                self.hash(&[now.as_nanos(), 5, to as u64, about as u64]);
                self.hash_bytes(&quote);
                let s = &mut self.nodes[to];
                if s.paused_until.is_some() {
                    if s.refusal_backlog.len() < REFUSAL_BACKLOG {
                        s.refusal_backlog.push((about, quote));
                    } else {
                        self.pool.push(quote);
                    }
                    return;
                }
                let t = now + s.clock;
                if let Some(n) = s.node.as_mut() {
                    n.handle_unreachable(t, addr_of(about), &quote);
                }
                self.pool.push(quote);
                self.after_input(to);
            }
            Kind::Fault(a) => self.fault(a),
            Kind::Join(i) => {
                self.start_node(i, 0, None);
            }
            Kind::Build => self.build(),
        }
    }

    /// `start = "converged"`: starts every node now and builds the cluster through the
    /// nodes' own join and state-sync code, on real datagrams delivered at once and
    /// without loss, before any node's timer runs (the build takes no simulated time).
    /// Each member reaches every other through a sync, which no node re-gossips: the
    /// joins' O(n² λ log n) gossip storm is left out, the O(n²) the protocol must
    /// spend (each member learns n − 1 others) stays. Nothing is put into a member
    /// table behind a node's back.
    ///
    /// Nodes `0..h` are hubs, `h = ⌈n / HUB_GROUP⌉`; node `i ≥ h` belongs to hub
    /// `i mod h`.
    /// 1. Hub 0 forms a cluster of one, the other hubs join through it, and each other
    ///    node joins through its hub (a Join: the hub learns it, it learns what the
    ///    hub knows so far).
    /// 2. Each hub `j > 0` starts a push-pull with hub 0, which so learns every member.
    /// 3. Each hub `j > 0` joins again through hub 0, and learns every member.
    /// 4. Each other node joins again through its hub, and learns every member.
    ///
    /// Each join runs to quiescence before the next starts, so at most one sync answer
    /// is in flight. A hub re-gossips only the members it learned from Joins and digest
    /// piggybacks, which everyone then already knows.
    fn build(&mut self) {
        let n = self.nodes.len();
        let hubs = n.div_ceil(self.hub_group.max(1)).max(1);
        self.building = Some(VecDeque::new());
        // Hub 0 alone, the other hubs through it: a hub must know hub 0 before their
        // push-pull, or it refuses the wants of each digest chunk whose answer brings
        // no entry (and so does not introduce hub 0).
        self.start_node(0, 0, Some(&[]));
        for j in 1..hubs.min(n) {
            self.start_node(j, 0, Some(&[0]));
            self.drain_build();
        }
        for i in hubs..n {
            self.start_node(i, 0, Some(&[i % hubs]));
            self.drain_build();
        }
        let t = self.now;
        for j in 1..hubs.min(n) {
            if let Some(node) = self.nodes[j].node.as_mut() {
                node.sync_with(t, addr_of(0));
            }
            self.after_input(j);
            self.drain_build();
        }
        let rejoin = (1..hubs.min(n))
            .map(|j| (j, 0))
            .chain((hubs..n).map(|i| (i, i % hubs)));
        for (i, seed) in rejoin {
            if let Some(node) = self.nodes[i].node.as_mut() {
                node.join(t, &[addr_of(seed)]);
            }
            self.after_input(i);
            self.drain_build();
        }
        self.building = None;
    }

    /// Delivers the build's datagrams, and what they make their receivers send, until
    /// none is left.
    fn drain_build(&mut self) {
        let now = self.now;
        while let Some((to, from, data)) = self.building.as_mut().and_then(VecDeque::pop_front) {
            self.hash(&[now.as_nanos(), 6, to as u64, from as u64]);
            self.hash_bytes(&data);
            let t = self.local_time(to);
            if let Some(node) = self.nodes[to].node.as_mut() {
                node.handle_packet(t, addr_of(from), &data);
            }
            self.pool.push(data);
            self.after_input(to);
        }
    }

    fn deliver(&mut self, to: usize, from: usize, data: Vec<u8>, admitted: bool) {
        let now = self.now;
        let s = &mut self.nodes[to];
        if s.node.is_none() {
            if s.refuses {
                self.refuse(to, from, &data);
            }
            self.pool.push(data);
            return;
        }
        if s.paused_until.is_some() {
            if s.backlog_bytes + data.len() <= self.recv_buffer {
                let s = &mut self.nodes[to];
                s.backlog_bytes += data.len();
                s.backlog.push((from, data));
            } else {
                self.counters.recv_overflow += 1;
                self.pool.push(data);
            }
            return;
        }
        if admitted {
            s.starved_bytes = s.starved_bytes.saturating_sub(data.len());
        }
        if !admitted && let Some((delay, until)) = s.slow {
            if now < until {
                let start = s.busy_until.max(now);
                if start > now && s.starved_bytes + data.len() > self.recv_buffer {
                    // The socket's receive buffer is full of what the starved process
                    // has not read yet: the kernel drops the datagram.
                    self.counters.recv_overflow += 1;
                    self.pool.push(data);
                    return;
                }
                s.busy_until = start + delay;
                if start > now {
                    s.starved_bytes += data.len();
                    self.push(
                        start,
                        Kind::Deliver {
                            to,
                            from,
                            data,
                            admitted: true,
                        },
                    );
                    return;
                }
            } else {
                s.slow = None;
            }
        }
        self.hash(&[now.as_nanos(), 2, to as u64, from as u64]);
        self.hash_bytes(&data);
        let t = self.local_time(to);
        if let Some(n) = self.nodes[to].node.as_mut() {
            n.handle_packet(t, addr_of(from), &data);
        }
        self.pool.push(data);
        self.after_input(to);
    }

    /// `host`'s kernel answers a datagram from `sender` to its closed port: an ICMP port
    /// unreachable quoting the datagram's start, if the rate limiter allows, crossing the
    /// network like any datagram.
    fn refuse(&mut self, host: usize, sender: usize, data: &[u8]) {
        let now = self.now;
        let (rate, burst) = (self.icmp_per_second, self.icmp_burst);
        let (tokens, last) = self
            .icmp_buckets
            .entry((host, sender))
            .or_insert((burst, now));
        *tokens = (*tokens + (now - *last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens < 1.0 {
            return;
        }
        *tokens -= 1.0;
        match self.net.fate(&mut self.rng, now, host, sender) {
            Fate::Delivered(d, _) => {
                let mut quote = self.pool.pop().unwrap_or_default();
                quote.clear();
                quote.extend_from_slice(&data[..data.len().min(QUOTE_LEN)]);
                self.push(
                    now + d,
                    Kind::Refusal {
                        to: sender,
                        about: host,
                        quote,
                    },
                );
            }
            Fate::Dropped => self.counters.lost += 1,
            Fate::Partitioned => self.counters.partitioned += 1,
        }
    }

    /// Starts a process for node `i` at `incarnation`, joining through `seeds` (node
    /// indices, whatever runs there) or one random running member.
    fn start_node(&mut self, i: usize, incarnation: u64, seeds: Option<&[usize]>) {
        let now = self.now;
        let s = &mut self.nodes[i];
        s.life += 1;
        s.refuses = false;
        s.reported_incarnation = None;
        let mut identity = Identity::new(s.name.clone(), addr_of(i));
        identity.incarnation = incarnation;
        let node_seed = mix(self.seed ^ mix((i as u64) << 20 ^ s.life));
        let node = match Node::new(identity, self.cfg.clone(), node_seed, now + s.clock) {
            Ok(n) => n,
            Err(e) => panic!("config validated at load: {e}"),
        };
        s.node = Some(node);
        s.timer_at = None;
        s.paused_until = None;
        s.joined = true;
        // Seeds: one random node that has already joined and is still running.
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| j != i && self.nodes[j].joined && self.nodes[j].node.is_some())
            .collect();
        let seeds: Vec<SocketAddr> = if let Some(seeds) = seeds {
            seeds.iter().map(|&j| addr_of(j)).collect()
        } else if candidates.is_empty() {
            Vec::new()
        } else {
            vec![addr_of(
                candidates[self.rng.random_range(0..candidates.len())],
            )]
        };
        if self.nodes[i].life == 1 {
            self.oracle.started(i);
        }
        let t = self.local_time(i);
        if let Some(n) = self.nodes[i].node.as_mut() {
            n.join(t, &seeds);
        }
        self.after_input(i);
    }

    fn fault(&mut self, a: Action) {
        let now = self.now;
        let i = a.node();
        self.hash(&[now.as_nanos(), 4, i as u64]);
        match a {
            Action::Crash(_, _) | Action::Exit(_) => {
                let s = &mut self.nodes[i];
                // An exit closes the port on a live host, as a process crash does.
                s.refuses = matches!(a, Action::Crash(_, CrashMode::Process) | Action::Exit(_));
                s.refusal_backlog.clear();
                if let Some(n) = s.node.take() {
                    add_stats(&mut s.retired, &n.stats());
                }
                s.paused_until = None;
                s.paused_since = None;
                s.backlog.clear();
                s.backlog_bytes = 0;
                s.starved_bytes = 0;
                if matches!(a, Action::Crash(_, _)) {
                    self.oracle.crashed(i, now);
                }
            }
            Action::Leave(_) => {
                let s = &mut self.nodes[i];
                let t = now + s.clock;
                if s.paused_until.is_none()
                    && let Some(n) = s.node.as_mut()
                {
                    n.leave(t);
                    self.oracle.left(i, now);
                    self.after_input(i);
                }
            }
            Action::Restart(_, from, fault) => {
                if self.nodes[i].node.is_none() {
                    // A fresh process picks its incarnation from the wall clock, as the
                    // runtime does: here, whole simulated seconds; or 0, a wall clock
                    // stepped back.
                    let incarnation = match from {
                        RestartIncarnation::Clock => now.as_nanos() / 1_000_000_000,
                        RestartIncarnation::Zero => 0,
                    };
                    self.oracle.restarted(i, now);
                    if self
                        .restart_new
                        .get(fault as usize)
                        .copied()
                        .unwrap_or(false)
                    {
                        // Another member takes the address over: verdicts about the old
                        // one are no longer about anything running at node `i`.
                        let s = &mut self.nodes[i];
                        self.ids.remove(&NodeId::from_name(&s.name));
                        s.name = format!("node-{i}-life-{}", s.life + 1);
                        self.ids.insert(NodeId::from_name(&s.name), i);
                    }
                    let seeds = self.restart_seeds.get(fault as usize).cloned().flatten();
                    self.start_node(i, incarnation, seeds.as_deref());
                }
            }
            Action::ClockJump(_, d) => {
                self.nodes[i].clock += d;
                if self.nodes[i].node.is_some() && self.nodes[i].paused_until.is_none() {
                    // Its timers are overdue now: let it notice at once.
                    let t = self.local_time(i);
                    if let Some(n) = self.nodes[i].node.as_mut() {
                        n.handle_timeout(t);
                    }
                    self.after_input(i);
                }
            }
            Action::Pause(_, d, merge) => {
                let s = &mut self.nodes[i];
                if s.node.is_none() || d.is_zero() {
                    return;
                }
                if !merge && s.paused_until.is_some() {
                    // Pauses that do not merge: one arriving mid-stall is not injected.
                    self.counters.pauses_skipped += 1;
                    return;
                }
                self.counters.pauses += 1;
                let until = (now + d).max(s.paused_until.unwrap_or(now));
                s.paused_until = Some(until);
                s.paused_since.get_or_insert(now);
                self.oracle.paused(i, true, now);
                self.push(until, Kind::Resume(i));
            }
            Action::Slow(_, delay, until) => {
                self.nodes[i].slow = Some((delay, until));
            }
            Action::Keyring(_, op, bytes) => {
                let key = rumor::Key::from_bytes(bytes);
                if let Some(n) = self.nodes[i].node.as_mut() {
                    // A step that does not apply (a restarted node lost its added key)
                    // is the operator's mistake to see in the report, not a crash.
                    let _ = match op {
                        KeyOp::Add => n.keyring_add(key),
                        KeyOp::Use => n.keyring_use(&key),
                        KeyOp::Remove => n.keyring_remove(&key),
                    };
                }
                self.after_input(i);
            }
            Action::ForgedRefusal(_, ppm, forger) => {
                for o in 0..self.nodes.len() {
                    let s = &self.nodes[o];
                    if o == i || s.node.is_none() || s.paused_until.is_some() {
                        continue;
                    }
                    if ppm < 1_000_000 && self.rng.random_range(0..1_000_000) >= ppm {
                        continue;
                    }
                    let Some(quote) = self.forge_quote(forger, o, i) else {
                        continue;
                    };
                    self.forged += 1;
                    let t = self.local_time(o);
                    if let Some(n) = self.nodes[o].node.as_mut() {
                        n.handle_unreachable(t, addr_of(i), &quote);
                    }
                    self.after_input(o);
                }
            }
        }
    }

    /// Sends what node `i` wants sent, records its events, re-arms its timer.
    fn after_input(&mut self, i: usize) {
        let now = self.now;
        let count_load = now >= self.warmup;
        let local = self.local_time(i);
        loop {
            let Some(n) = self.nodes[i].node.as_mut() else {
                return;
            };
            let Some(t) = n.poll_transmit(local, &mut self.buf) else {
                break;
            };
            if count_load {
                self.counters.msgs += 1;
                self.counters.bytes += t.len as u64;
            }
            self.counters.max_packet = self.counters.max_packet.max(t.len);
            let Some(to) = index_of(t.destination).filter(|&j| j < self.nodes.len()) else {
                continue;
            };
            if let Some(seen) = self.seen.as_mut()
                && matches!(self.buf.first(), Some(&PROBE_START | &SEALED_START))
            {
                // Reuse the pair's buffer: this runs for every probe of a forged run.
                let quote = seen[to].entry(i).or_default();
                quote.clear();
                quote.extend_from_slice(&self.buf[..t.len.min(QUOTE_LEN)]);
            }
            if let Some(queue) = self.building.as_mut() {
                let mut data = self.pool.pop().unwrap_or_default();
                data.clear();
                data.extend_from_slice(&self.buf[..t.len]);
                queue.push_back((to, i, data));
                continue;
            }
            match self.net.fate(&mut self.rng, now, i, to) {
                Fate::Dropped => self.counters.lost += 1,
                Fate::Partitioned => self.counters.partitioned += 1,
                Fate::Delivered(d1, d2) => {
                    for d in std::iter::once(d1).chain(d2) {
                        let mut data = self.pool.pop().unwrap_or_default();
                        data.clear();
                        data.extend_from_slice(&self.buf[..t.len]);
                        self.push(
                            now + d,
                            Kind::Deliver {
                                to,
                                from: i,
                                data,
                                admitted: false,
                            },
                        );
                    }
                }
            }
        }
        loop {
            let Some(n) = self.nodes[i].node.as_mut() else {
                return;
            };
            let Some(e) = n.poll_event() else { break };
            let subject = event_member(&e).and_then(|m| self.ids.get(&m.id).copied());
            self.oracle.observe(now, i, subject, &e);
        }
        let s = &mut self.nodes[i];
        let Some(n) = s.node.as_ref() else { return };
        let incarnation = n.incarnation();
        if s.reported_incarnation != Some(incarnation) {
            s.reported_incarnation = Some(incarnation);
            self.oracle.incarnation(i, incarnation);
        }
        let s = &mut self.nodes[i];
        let Some(n) = s.node.as_ref() else { return };
        // The node's deadline is on its own clock, `clock` ahead of the world's.
        let next = n.poll_timeout().map(|t| t.saturating_sub(s.clock));
        // A starved process runs its timers only when the CPU gets to them.
        let floor = match s.slow {
            Some((_, until)) if now < until => s.busy_until.max(now),
            _ => now,
        };
        if let Some(t) = next
            && s.timer_at != Some(t.max(floor))
        {
            let at = t.max(floor);
            s.timer_at = Some(at);
            self.push(at, Kind::Timer(i));
        }
    }

    /// Every node's counters, summed over all lives.
    pub fn total_stats(&self) -> NodeStats {
        let mut total = NodeStats::default();
        for s in &self.nodes {
            add_stats(&mut total, &s.retired);
            if let Some(n) = &s.node {
                add_stats(&mut total, &n.stats());
            }
        }
        total
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the world has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Pairs (observer, subject) of running observers whose view of the subject
    /// contradicts the truth at the end: a running subject held dead, departed or
    /// unknown, or a crashed or departed subject held alive. 0 means every view
    /// converged (what a healed partition or a join under loss must reach).
    pub fn stale_views(&self) -> u64 {
        let n = self.nodes.len();
        let mut stale = 0;
        for o in 0..n {
            if self.node(o).is_none() {
                continue;
            }
            for s in (0..n).filter(|&s| s != o) {
                let live_in_view = holds_live(&self.nodes, o, s);
                let running = matches!(self.oracle.truth(s), Truth::Up | Truth::Paused);
                if live_in_view != running {
                    stale += 1;
                }
            }
        }
        stale
    }

    /// The running node `i`, if any.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.nodes[i].node.as_ref()
    }
}

/// Whether running node `o` holds node `s` live (alive or suspect) in its view: what
/// `stale_views` and the heal windows both read.
fn holds_live(nodes: &[SimNode], o: usize, s: usize) -> bool {
    nodes[o]
        .node
        .as_ref()
        .and_then(|n| n.member_state(NodeId::from_name(&nodes[s].name)))
        .is_some_and(MemberState::is_live)
}

fn add_stats(total: &mut NodeStats, s: &NodeStats) {
    total.packets_in += s.packets_in;
    total.packets_out += s.packets_out;
    total.probes_sent += s.probes_sent;
    total.acks_received += s.acks_received;
    total.indirect_probes += s.indirect_probes;
    total.probes_failed += s.probes_failed;
    total.suspicions_raised += s.suspicions_raised;
    total.refutations += s.refutations;
    total.refusals += s.refusals;
    total.auth_failures += s.auth_failures;
    total.plaintext_refused += s.plaintext_refused;
    total.refusal_convictions += s.refusal_convictions;
    total.refusals_withdrawn += s.refusals_withdrawn;
    total.refusals_unverified += s.refusals_unverified;
    total.accusations_answered += s.accusations_answered;
    total.other_lives_answered += s.other_lives_answered;
    total.answers_refused += s.answers_refused;
    total.reconnects += s.reconnects;
    total.convictions += s.convictions;
    total.convictions_kept_local += s.convictions_kept_local;
    total.stalls_detected += s.stalls_detected;
    total.stalls_repeated += s.stalls_repeated;
    total.convictions_deferred += s.convictions_deferred;
    total.messages_rejected += s.messages_rejected;
    total.cluster_mismatch += s.cluster_mismatch;
    for (a, b) in total.decode_errors.iter_mut().zip(s.decode_errors.iter()) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converged(nodes: usize) -> World {
        let text =
            format!("name = \"t\"\nnodes = {nodes}\nduration = \"10s\"\nstart = \"converged\"\n");
        let sc = Scenario::parse(&text, &[]).expect("valid scenario");
        World::new(&sc, 7).expect("valid world")
    }

    /// The build, with several hubs, leaves every node knowing every other live, at
    /// time 0, having refused no sync for budget and rejected no message (the build
    /// must stay within the nodes' per-source limits, or some members would be missed).
    /// A hub's digest spans several datagrams here, as at full size: a hub that did
    /// not know hub 0 refused the wants of chunks whose answer did not introduce it.
    #[test]
    fn a_converged_start_knows_everyone_through_hubs() {
        let n = 450;
        let mut w = converged(n);
        w.hub_group = 150; // 3 hubs of about 150: 3 digest datagrams each
        w.advance_to(Time::ZERO, |_| {});
        assert_eq!(w.now, Time::ZERO, "the build takes no simulated time");
        assert_eq!(w.stale_views(), 0);
        for i in 0..n {
            let node = w.node(i).expect("every node runs");
            assert_eq!(node.live_count(), n, "node {i}");
            assert!(node.is_synced(), "node {i}");
            let st = node.stats();
            assert_eq!((st.syncs_refused, st.messages_rejected), (0, 0), "node {i}");
        }
        // And it stays converged once the timers run.
        w.advance_to(Time::from_secs(10), |_| {});
        assert_eq!(w.stale_views(), 0);
        assert_eq!(w.oracle.verdicts().false_suspicions, 0);
    }

    /// One hub (the default group at this size) gives the same.
    #[test]
    fn a_converged_start_with_one_hub() {
        let n = 40;
        let mut w = converged(n);
        w.advance_to(Time::ZERO, |_| {});
        assert_eq!(w.stale_views(), 0);
        assert!((0..n).all(|i| w.node(i).is_some_and(|x| x.live_count() == n)));
    }
}
