//! rumor's sans-IO `Node`s on the shared loop: `handle_packet`, `handle_timeout`,
//! `poll_transmit`, `poll_event` and `poll_timeout`, each on the meter.

use std::net::SocketAddr;

use rumor::{Config, Event, Identity, Key, Keyring, Node, NodeId, Strategy, Time};

use crate::queue::Queue;
use crate::{Cluster, DELAY_NS, Meter, Nanos, addr, index_of, name};

/// The config every member runs: `Config::lan()` in `strategy`, sealed with one key when
/// `encrypted`.
pub fn config(encrypted: bool, strategy: Strategy) -> Config {
    let mut cfg = Config::lan();
    cfg.strategy = strategy;
    if encrypted {
        cfg.keyring = Keyring::new(Key::from_bytes([7; 32]));
    }
    cfg
}

/// A member that knows no one yet (what [`crate::Library::fresh_heap`] weighs).
pub fn fresh(encrypted: bool, strategy: Strategy) -> Node {
    Node::new(
        Identity::new(name(1), addr(1)),
        config(encrypted, strategy),
        1,
        Time::ZERO,
    )
    .expect("valid config")
}

enum Ev {
    Deliver {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Wake {
        node: usize,
        at: Nanos,
    },
}

/// `n` rumor members.
pub struct RumorCluster {
    nodes: Vec<Option<Node>>,
    /// When each member asked to be woken (the last `poll_timeout`), to skip stale wakes.
    wake: Vec<Option<Nanos>>,
    queue: Queue<Ev>,
    now: Nanos,
    meter: Meter,
    buf: Vec<u8>,
    victim: Option<NodeId>,
    dead_at: Vec<Option<Nanos>>,
    cfg: Config,
}

impl RumorCluster {
    /// `n` members, seeded from `seed`, not joined.
    pub fn new(n: usize, seed: u64, encrypted: bool, strategy: Strategy) -> RumorCluster {
        let cfg = config(encrypted, strategy);
        let nodes = (0..n)
            .map(|i| {
                let s = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                Node::new(Identity::new(name(i), addr(i)), cfg.clone(), s, Time::ZERO).ok()
            })
            .collect();
        let mut c = RumorCluster {
            nodes,
            wake: vec![None; n],
            queue: Queue::default(),
            now: 0,
            meter: Meter::default(),
            buf: vec![0; 65_536],
            victim: None,
            dead_at: vec![None; n],
            cfg,
        };
        for i in 0..n {
            c.after(i);
        }
        c
    }

    /// Drains what member `i` wants to send, its events, and its next wake-up.
    fn after(&mut self, i: usize) {
        let now = Time::from_nanos(self.now);
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let from = addr(i);
        loop {
            let buf = &mut self.buf;
            let Some(t) = self.meter.time(|| node.poll_transmit(now, buf)) else {
                break;
            };
            self.meter.datagrams += 1;
            self.meter.datagram_bytes += t.len as u64;
            if let Some(to) = index_of(t.destination).filter(|&j| j < self.wake.len()) {
                let data = self.buf[..t.len].to_vec();
                self.queue
                    .push(self.now + DELAY_NS, Ev::Deliver { to, from, data });
            }
        }
        while let Some(e) = self.meter.time(|| node.poll_event()) {
            if let Event::MemberDead { member, .. } = e
                && Some(member.id) == self.victim
                && self.dead_at[i].is_none()
            {
                self.dead_at[i] = Some(self.now);
            }
        }
        let next = self
            .meter
            .time(|| node.poll_timeout())
            .map(|t| t.as_nanos().max(self.now));
        if next != self.wake[i] {
            self.wake[i] = next;
            if let Some(at) = next {
                self.queue.push(at, Ev::Wake { node: i, at });
            }
        }
    }
}

impl Cluster for RumorCluster {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn join(&mut self, i: usize) {
        let now = Time::from_nanos(self.now);
        if let Some(node) = self.nodes[i].as_mut() {
            self.meter.time(|| node.join(now, &[addr(0)]));
        }
        self.after(i);
    }

    fn run_until(&mut self, t: Nanos) {
        while let Some((at, ev)) = self.queue.pop_until(t) {
            self.now = at;
            let now = Time::from_nanos(at);
            match ev {
                Ev::Deliver { to, from, data } => {
                    let Some(node) = self.nodes[to].as_mut() else {
                        continue;
                    };
                    self.meter.time(|| node.handle_packet(now, from, &data));
                    self.after(to);
                }
                Ev::Wake { node: i, at } => {
                    if self.wake[i] != Some(at) {
                        continue;
                    }
                    self.wake[i] = None;
                    let Some(node) = self.nodes[i].as_mut() else {
                        continue;
                    };
                    self.meter.time(|| node.handle_timeout(now));
                    self.after(i);
                }
            }
        }
        self.now = self.now.max(t);
    }

    fn now(&self) -> Nanos {
        self.now
    }

    fn known(&self, i: usize) -> usize {
        // `live_count` counts the member itself.
        self.nodes[i]
            .as_ref()
            .map_or(0, |n| n.live_count().saturating_sub(1))
    }

    fn crash(&mut self, i: usize) {
        self.victim = Some(NodeId::from_name(&name(i)));
        self.nodes[i] = None;
        self.wake[i] = None;
    }

    fn dead_at(&self, observer: usize) -> Option<Nanos> {
        self.dead_at[observer]
    }

    fn is_up(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    fn drop_member(&mut self, i: usize) {
        self.nodes[i] = None;
        self.wake[i] = None;
    }

    fn meter(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn detection_config(&self) -> String {
        let c = &self.cfg;
        match c.strategy {
            Strategy::Swim => format!(
                "SWIM: period {:?}, timeout {:?}, {} indirect, suspicion timeout {}x max(1, log10 n) periods, starting at {}x that and shrinking with confirmations",
                c.probe_interval,
                c.probe_timeout,
                c.indirect_checks,
                c.suspicion_mult,
                c.suspicion_max_mult
            ),
            _ => format!(
                "phi monitors: {} monitors, period {:?}, suspect at phi {}, convict at phi {}, acceptable pause {:?}",
                c.monitors, c.probe_interval, c.phi_suspect, c.phi_convict, c.acceptable_pause
            ),
        }
    }
}
