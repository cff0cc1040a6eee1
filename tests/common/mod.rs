//! An in-process harness: N real `Node`s on a manual clock, datagrams delivered with
//! configurable latency, jitter and loss, and the faults the protocol must survive
//! (crash, pause, restart, leave). Every loop is bounded in steps and in virtual time.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rumor::{Config, Event, Identity, MemberState, Node, NodeId, Time};

/// Hard cap on harness steps per `run_for`, so a livelock fails instead of hanging.
const MAX_STEPS: u64 = 50_000_000;

pub struct Slot {
    pub name: String,
    pub addr: SocketAddr,
    pub node: Option<Node>,
    pub paused_until: Option<Time>,
    pub backlog: Vec<(SocketAddr, Vec<u8>)>,
    pub events: Vec<(Time, Event)>,
    pub restarts: u64,
    /// Crashed as a process on a live host: its port is closed, so every datagram sent
    /// to it comes back to the sender as a refusal (ICMP port unreachable).
    pub refuses: bool,
}

impl Slot {
    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node is running")
    }
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Datagram {
    at: Time,
    seq: u64,
    to: usize,
    from: SocketAddr,
    data: Vec<u8>,
    /// Not a datagram but the network's refusal of one that `to` sent to `from`.
    refusal: bool,
}

pub struct Cluster {
    pub slots: Vec<Slot>,
    pub now: Time,
    pub cfg: Config,
    pub latency: Duration,
    pub jitter: Duration,
    pub loss: f64,
    /// Extra loss of datagrams arriving at one node (a degraded NIC or host).
    pub inbound_loss: BTreeMap<usize, f64>,
    seed: u64,
    rng: Xoshiro256PlusPlus,
    in_flight: BinaryHeap<Reverse<Datagram>>,
    by_addr: BTreeMap<SocketAddr, usize>,
    seq: u64,
    buf: Vec<u8>,
    pub delivered: u64,
    pub dropped: u64,
    /// The last probe (a datagram that starts with a token) each node sent to each
    /// address: what an on-path forger copies.
    last_probe: BTreeMap<(usize, SocketAddr), Vec<u8>>,
    /// Nodes whose driver calls `handle_timeout` this late after each timer is due.
    pub late: BTreeMap<usize, Duration>,
}

/// The first byte of a plaintext probe: `Packet.token`'s key, which the writer puts first.
pub const PROBE_START: u8 = (9 << 3) | 5;

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10_000 + i as u16)
}

impl Cluster {
    /// `n` nodes named `node-0`… on 127.0.0.1:10000…, not yet joined.
    pub fn new(n: usize, cfg: Config, seed: u64) -> Cluster {
        let mut c = Cluster {
            slots: Vec::new(),
            now: Time::ZERO,
            cfg,
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            loss: 0.0,
            inbound_loss: BTreeMap::new(),
            seed,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed),
            in_flight: BinaryHeap::new(),
            by_addr: BTreeMap::new(),
            seq: 0,
            buf: vec![0; 65_536],
            delivered: 0,
            dropped: 0,
            last_probe: BTreeMap::new(),
            late: BTreeMap::new(),
        };
        for i in 0..n {
            let name = format!("node-{i}");
            let node = c.make_node(&name, addr(i), 0, i as u64);
            c.by_addr.insert(addr(i), i);
            c.slots.push(Slot {
                name,
                addr: addr(i),
                node: Some(node),
                paused_until: None,
                backlog: Vec::new(),
                events: Vec::new(),
                restarts: 0,
                refuses: false,
            });
        }
        c
    }

    fn make_node(&self, name: &str, a: SocketAddr, incarnation: u64, salt: u64) -> Node {
        let mut id = Identity::new(name, a);
        id.incarnation = incarnation;
        Node::new(
            id,
            self.cfg.clone(),
            self.seed.wrapping_mul(1_000_003).wrapping_add(salt),
            self.now,
        )
        .expect("valid config")
    }

    pub fn id(&self, i: usize) -> NodeId {
        NodeId::from_name(&self.slots[i].name)
    }

    /// `n` nodes joined and converged (panics if not within 10 s of virtual time).
    pub fn settled(n: usize, cfg: Config, seed: u64) -> Cluster {
        let mut c = Cluster::new(n, cfg, seed);
        c.join_all();
        assert!(
            c.run_until_converged(Duration::from_secs(10)),
            "cluster did not converge"
        );
        c
    }

    /// Node 0 forms the cluster; every other node joins through it.
    pub fn join_all(&mut self) {
        self.join(0, &[]);
        for i in 1..self.slots.len() {
            self.join(i, &[addr(0)]);
        }
    }

    pub fn join(&mut self, i: usize, seeds: &[SocketAddr]) {
        let now = self.now;
        if let Some(n) = self.slots[i].node.as_mut() {
            n.join(now, seeds);
        }
        self.drain(i);
    }

    /// Runs until every running node knows every running node as alive, or `limit`
    /// passes; returns whether it converged.
    pub fn run_until_converged(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while self.now < end {
            self.run_for(Duration::from_millis(100));
            if self.converged() {
                return true;
            }
        }
        false
    }

    /// Every running node sees every other running node alive, and the others gone.
    pub fn converged(&self) -> bool {
        let up: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].is_up())
            .collect();
        up.iter().all(|&i| {
            let n = self.slots[i].node();
            n.live_count() == up.len()
                && up.iter().all(|&j| {
                    j == i
                        || n.member(self.id(j))
                            .is_some_and(|m| m.state == MemberState::Alive)
                })
        })
    }

    pub fn state_at(&self, observer: usize, subject: usize) -> Option<MemberState> {
        let node = self.slots[observer].node.as_ref()?;
        let id = self.id(subject);
        let state = node.member_state(id);
        // The light accessor and the full snapshot must never disagree.
        assert_eq!(
            state,
            node.member(id).map(|m| m.state),
            "member_state of {id:?}"
        );
        state
    }

    /// Crash: the node vanishes without a word; datagrams to it are lost (a host crash
    /// or a partition: silence).
    pub fn crash(&mut self, i: usize) {
        self.slots[i].node = None;
        self.slots[i].backlog.clear();
    }

    /// Process crash: the node vanishes but its host lives on, so each datagram sent to
    /// it is answered with a refusal one latency later (subject to loss).
    pub fn crash_process(&mut self, i: usize) {
        self.crash(i);
        self.slots[i].refuses = true;
    }

    /// A forged refusal from off the path: `observer` is told `subject`'s port is
    /// closed, quoting the last probe it sent there with the token guessed (the
    /// strongest forgery without seeing the traffic).
    pub fn forge_refusal(&mut self, observer: usize, subject: usize) {
        let a = self.slots[subject].addr;
        let mut quote = self
            .last_probe
            .get(&(observer, a))
            .cloned()
            .unwrap_or_else(|| vec![PROBE_START; 64]);
        let guess: u32 = self.rng.random();
        if let Some(token) = quote.get_mut(1..5) {
            token.copy_from_slice(&guess.to_le_bytes());
        }
        self.tell_refused(observer, subject, &quote);
    }

    /// A forged refusal from on the path: `observer` is told `subject`'s port is
    /// closed, quoting a copy of the last probe it sent there (nothing if it sent none).
    pub fn forge_refusal_on_path(&mut self, observer: usize, subject: usize) {
        let a = self.slots[subject].addr;
        if let Some(quote) = self.last_probe.get(&(observer, a)).cloned() {
            self.tell_refused(observer, subject, &quote);
        }
    }

    /// `observer` hears that its datagram to `subject`, starting with `quote`, was
    /// refused.
    pub fn tell_refused(&mut self, observer: usize, subject: usize, quote: &[u8]) {
        let now = self.now;
        let a = self.slots[subject].addr;
        if let Some(n) = self.slots[observer].node.as_mut() {
            n.handle_unreachable(now, a, quote);
        }
        self.drain(observer);
    }

    /// Pause: the node processes nothing for `d`; datagrams queue; timers fire late.
    pub fn pause(&mut self, i: usize, d: Duration) {
        self.slots[i].paused_until = Some(self.now + d);
    }

    /// Restart a crashed node under the same name and address.
    pub fn restart(&mut self, i: usize, incarnation: u64, seeds: &[SocketAddr]) {
        self.slots[i].restarts += 1;
        let salt = 1_000 + i as u64 * 100 + self.slots[i].restarts;
        let node = self.make_node(
            &self.slots[i].name.clone(),
            self.slots[i].addr,
            incarnation,
            salt,
        );
        self.slots[i].node = Some(node);
        self.slots[i].refuses = false;
        self.slots[i].paused_until = None;
        self.join(i, seeds);
    }

    pub fn leave(&mut self, i: usize) {
        let now = self.now;
        if let Some(n) = self.slots[i].node.as_mut() {
            n.leave(now);
        }
        self.drain(i);
    }

    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Time) -> R) -> R {
        let now = self.now;
        let r = f(self.slots[i].node.as_mut().expect("node is running"), now);
        self.drain(i);
        r
    }

    /// Runs the world for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < MAX_STEPS, "harness livelock at {}", self.now);
            let next = self.next_event_time();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.step();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn next_event_time(&self) -> Option<Time> {
        let mut best = self.in_flight.peek().map(|Reverse(d)| d.at);
        for (i, s) in self.slots.iter().enumerate() {
            let Some(n) = s.node.as_ref() else { continue };
            let late = self.late.get(&i).copied().unwrap_or_default();
            let t = match s.paused_until {
                Some(r) => Some(r),
                None => n.poll_timeout().map(|t| t + late),
            };
            if let Some(t) = t {
                best = Some(best.map_or(t, |b: Time| b.min(t)));
            }
        }
        best
    }

    fn step(&mut self) {
        let now = self.now;
        // Resumes first: a resumed node drains its backlog at the resume time, then its
        // overdue timers fire, as a real process does after SIGCONT.
        for i in 0..self.slots.len() {
            if self.slots[i].paused_until.is_some_and(|r| r <= now) {
                self.slots[i].paused_until = None;
                let backlog = std::mem::take(&mut self.slots[i].backlog);
                if let Some(n) = self.slots[i].node.as_mut() {
                    for (from, data) in &backlog {
                        n.handle_packet(now, *from, data);
                    }
                    n.handle_timeout(now);
                }
                self.drain(i);
            }
        }
        while let Some(Reverse(d)) = self.in_flight.peek() {
            if d.at > now {
                break;
            }
            let Reverse(d) = self.in_flight.pop().expect("peeked");
            if d.refusal {
                if let Some(n) = self.slots[d.to].node.as_mut() {
                    n.handle_unreachable(now, d.from, &d.data);
                    self.drain(d.to);
                }
                continue;
            }
            let slot = &mut self.slots[d.to];
            let Some(n) = slot.node.as_mut() else {
                if slot.refuses
                    && let Some(&sender) = self.by_addr.get(&d.from)
                    && !(self.loss > 0.0 && self.rng.random::<f64>() < self.loss)
                {
                    let to_addr = slot.addr;
                    self.seq += 1;
                    self.in_flight.push(Reverse(Datagram {
                        at: now + self.latency,
                        seq: self.seq,
                        to: sender,
                        from: to_addr,
                        // The ICMP error quotes the refused datagram.
                        data: d.data,
                        refusal: true,
                    }));
                }
                continue;
            };
            if slot.paused_until.is_some() {
                slot.backlog.push((d.from, d.data));
                continue;
            }
            self.delivered += 1;
            n.handle_packet(now, d.from, &d.data);
            self.drain(d.to);
        }
        for i in 0..self.slots.len() {
            let s = &mut self.slots[i];
            if s.paused_until.is_some() {
                continue;
            }
            let Some(n) = s.node.as_mut() else { continue };
            let late = self.late.get(&i).copied().unwrap_or_default();
            if n.poll_timeout().is_some_and(|t| t + late <= now) {
                n.handle_timeout(now);
                self.drain(i);
            }
        }
    }

    /// Sends everything node `i` wants sent and records its events.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        let from = self.slots[i].addr;
        let slot = &mut self.slots[i];
        let Some(n) = slot.node.as_mut() else { return };
        let mut out = Vec::new();
        while let Some(t) = n.poll_transmit(now, &mut self.buf) {
            assert!(t.len <= self.cfg.max_packet_size, "oversized datagram");
            out.push((t.destination, self.buf[..t.len].to_vec()));
        }
        while let Some(e) = n.poll_event() {
            slot.events.push((now, e));
        }
        for (to, data) in out {
            if data.first() == Some(&PROBE_START) {
                self.last_probe.insert((i, to), data.clone());
            }
            let Some(&j) = self.by_addr.get(&to) else {
                continue;
            };
            let loss = self.loss + self.inbound_loss.get(&j).copied().unwrap_or(0.0);
            if loss > 0.0 && self.rng.random::<f64>() < loss {
                self.dropped += 1;
                continue;
            }
            let jitter = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                self.jitter.mul_f64(self.rng.random::<f64>())
            };
            self.seq += 1;
            self.in_flight.push(Reverse(Datagram {
                at: now + self.latency + jitter,
                seq: self.seq,
                to: j,
                from,
                data,
                refusal: false,
            }));
        }
    }

    /// Events of node `i` matching `f`.
    pub fn events_where(&self, i: usize, f: impl Fn(&Event) -> bool) -> Vec<(Time, Event)> {
        self.slots[i]
            .events
            .iter()
            .filter(|(_, e)| f(e))
            .cloned()
            .collect()
    }

    /// Whether any running node other than `subject` ever declared `subject` dead.
    pub fn anyone_declared_dead(&self, subject: usize) -> bool {
        let id = self.id(subject);
        (0..self.slots.len()).filter(|&i| i != subject).any(|i| {
            self.slots[i]
                .events
                .iter()
                .any(|(_, e)| matches!(e, Event::MemberDead { member, .. } if member.id == id))
        })
    }

    /// When observer `i` first saw `subject` dead, if it did.
    pub fn dead_at(&self, i: usize, subject: usize) -> Option<Time> {
        let id = self.id(subject);
        self.slots[i]
            .events
            .iter()
            .find(|(_, e)| matches!(e, Event::MemberDead { member, .. } if member.id == id))
            .map(|(t, _)| *t)
    }
}
