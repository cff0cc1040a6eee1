//! kinship-core's members on the shared loop: `handle_datagram`, `handle_stream`,
//! `handle_timeout`, `command`, `poll_transmit`, `poll_event` and `poll_timeout` on the
//! meter. kinship runs its joins and anti-entropy push-pulls over TCP: the loop carries
//! those streams in memory (each write arrives whole after the same delay as a datagram)
//! and counts their bytes beside the datagrams'.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use kinship_core::{
    Command, Config, Event, Identity, Instant, Key, Node, Security, StreamEvent, StreamId, Transmit,
};
use kinship_proto::FrameReader;

use crate::queue::Queue;
use crate::{Cluster, DELAY_NS, Meter, Nanos, addr, index_of, name};

/// The config every member runs: `Config::lan`, sealed with one key when `encrypted`,
/// otherwise kinship's plaintext mode.
pub fn config(encrypted: bool) -> Config {
    let security = if encrypted {
        Security::Keys(vec![Key::from_bytes([7; 32])])
    } else {
        Security::InsecurePlaintext
    };
    Config::lan(security)
}

fn member(i: usize, seed: u64, encrypted: bool) -> Node {
    let me = Identity::new(name(i), addr(i)).expect("valid name");
    let s = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
    let mut nonce_key = [0u8; 32];
    nonce_key[..8].copy_from_slice(&s.to_le_bytes());
    Node::new(config(encrypted), me, Instant::ZERO, s, &nonce_key).expect("valid config")
}

/// A member that knows no one yet.
pub fn fresh(encrypted: bool) -> Node {
    member(1, 1, encrypted)
}

enum Ev {
    Datagram {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    /// Bytes written on a connection, arriving at its other end (`to`, `conn`).
    Stream {
        to: usize,
        conn: StreamId,
        data: Vec<u8>,
    },
    /// The other end closed (`Closed`) or the connection failed (`Failed`).
    Ended {
        to: usize,
        conn: StreamId,
        failed: bool,
    },
    Wake {
        node: usize,
        at: Nanos,
    },
}

/// One end of a connection: who is at the other end and what it calls the connection,
/// and the frames arriving at this end.
struct End {
    peer: usize,
    peer_conn: StreamId,
    reader: FrameReader,
}

/// `n` kinship members.
pub struct KinshipCluster {
    nodes: Vec<Option<Node>>,
    wake: Vec<Option<Nanos>>,
    queue: Queue<Ev>,
    now: Nanos,
    meter: Meter,
    /// Open connections by (member, its name for the connection).
    ends: BTreeMap<(usize, StreamId), End>,
    /// Connections each member has accepted, for the next inbound id.
    accepted: Vec<u64>,
    max_frame: usize,
    victim: Option<String>,
    dead_at: Vec<Option<Nanos>>,
    cfg: Config,
}

impl KinshipCluster {
    /// `n` members, seeded from `seed`, not joined.
    pub fn new(n: usize, seed: u64, encrypted: bool) -> KinshipCluster {
        let cfg = config(encrypted);
        let mut c = KinshipCluster {
            nodes: (0..n).map(|i| Some(member(i, seed, encrypted))).collect(),
            wake: vec![None; n],
            queue: Queue::default(),
            now: 0,
            meter: Meter::default(),
            ends: BTreeMap::new(),
            accepted: vec![0; n],
            max_frame: cfg.limits.max_stream_frame,
            victim: None,
            dead_at: vec![None; n],
            cfg,
        };
        for i in 0..n {
            c.after(i);
        }
        c
    }

    fn at(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// Carries out what member `i` asks, drains its events and reschedules its wake-up.
    fn after(&mut self, i: usize) {
        let now = self.now;
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let mut transmits = Vec::new();
        while let Some(t) = self.meter.time(|| node.poll_transmit()) {
            transmits.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = self.meter.time(|| node.poll_event()) {
            events.push(e);
        }
        let next = self
            .meter
            .time(|| node.poll_timeout())
            .map(|t| t.as_nanos().max(now));
        for e in events {
            if let Event::MemberDead(m) = e
                && Some(&m.name) == self.victim.as_ref()
                && self.dead_at[i].is_none()
            {
                self.dead_at[i] = Some(now);
            }
        }
        for t in transmits {
            self.carry(i, t);
        }
        if next != self.wake[i] {
            self.wake[i] = next;
            if let Some(at) = next {
                self.queue.push(at, Ev::Wake { node: i, at });
            }
        }
    }

    fn carry(&mut self, i: usize, t: Transmit) {
        let at = self.now + DELAY_NS;
        match t {
            Transmit::Datagram { to, payload } => {
                self.meter.datagrams += 1;
                self.meter.datagram_bytes += payload.len() as u64;
                if let Some(j) = index_of(to).filter(|&j| j < self.nodes.len()) {
                    let from = addr(i);
                    self.queue.push(
                        at,
                        Ev::Datagram {
                            to: j,
                            from,
                            data: payload,
                        },
                    );
                }
            }
            Transmit::Connect { conn, to } => {
                match index_of(to).filter(|&j| j < self.nodes.len() && self.nodes[j].is_some()) {
                    Some(j) => {
                        let peer_conn = StreamId::inbound(self.accepted[j]);
                        self.accepted[j] += 1;
                        let reader = || FrameReader::new(self.max_frame);
                        self.ends.insert(
                            (i, conn),
                            End {
                                peer: j,
                                peer_conn,
                                reader: reader(),
                            },
                        );
                        self.ends.insert(
                            (j, peer_conn),
                            End {
                                peer: i,
                                peer_conn: conn,
                                reader: reader(),
                            },
                        );
                    }
                    // Nobody listens there: the connect fails after a round trip.
                    None => self.queue.push(
                        at + DELAY_NS,
                        Ev::Ended {
                            to: i,
                            conn,
                            failed: true,
                        },
                    ),
                }
            }
            Transmit::Stream { conn, frame } => {
                self.meter.stream_bytes += frame.len() as u64;
                if let Some(end) = self.ends.get(&(i, conn)) {
                    self.queue.push(
                        at,
                        Ev::Stream {
                            to: end.peer,
                            conn: end.peer_conn,
                            data: frame,
                        },
                    );
                }
            }
            Transmit::Close { conn } => {
                if let Some(end) = self.ends.remove(&(i, conn)) {
                    self.queue.push(
                        at,
                        Ev::Ended {
                            to: end.peer,
                            conn: end.peer_conn,
                            failed: false,
                        },
                    );
                }
            }
        }
    }
}

impl Cluster for KinshipCluster {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn join(&mut self, i: usize) {
        let now = self.at();
        if let Some(node) = self.nodes[i].as_mut() {
            let seeds = vec![addr(0)];
            self.meter
                .time(|| node.command(now, Command::Join { seeds }));
        }
        self.after(i);
    }

    fn run_until(&mut self, t: Nanos) {
        while let Some((at, ev)) = self.queue.pop_until(t) {
            self.now = at;
            let now = self.at();
            let i = match ev {
                Ev::Datagram { to, from, data } => {
                    let Some(node) = self.nodes[to].as_mut() else {
                        continue;
                    };
                    self.meter.time(|| node.handle_datagram(now, from, &data));
                    to
                }
                Ev::Stream { to, conn, data } => {
                    let (Some(node), Some(end)) =
                        (self.nodes[to].as_mut(), self.ends.get_mut(&(to, conn)))
                    else {
                        continue;
                    };
                    end.reader.push(&data);
                    while let Ok(Some(frame)) = end.reader.next_frame() {
                        self.meter
                            .time(|| node.handle_stream(now, conn, StreamEvent::Frame(&frame)));
                    }
                    to
                }
                Ev::Ended { to, conn, failed } => {
                    let Some(node) = self.nodes[to].as_mut() else {
                        continue;
                    };
                    let known = self.ends.remove(&(to, conn)).is_some();
                    if !(known || failed) {
                        continue;
                    }
                    let ev = if failed {
                        StreamEvent::Failed
                    } else {
                        StreamEvent::Closed
                    };
                    self.meter.time(|| node.handle_stream(now, conn, ev));
                    to
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
                    i
                }
            };
            self.after(i);
        }
        self.now = self.now.max(t);
    }

    fn now(&self) -> Nanos {
        self.now
    }

    fn known(&self, i: usize) -> usize {
        // `members` lists the member itself first.
        self.nodes[i]
            .as_ref()
            .map_or(0, |n| n.members().count().saturating_sub(1))
    }

    fn crash(&mut self, i: usize) {
        self.victim = Some(name(i));
        self.drop_member(i);
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
        // Its connections reset: the other ends fail.
        let mine: Vec<_> = self
            .ends
            .range((i, StreamId::from_raw(0))..=(i, StreamId::from_raw(u64::MAX)))
            .map(|(k, e)| (*k, e.peer, e.peer_conn))
            .collect();
        for (k, peer, peer_conn) in mine {
            self.ends.remove(&k);
            if self.ends.contains_key(&(peer, peer_conn)) {
                self.queue.push(
                    self.now + DELAY_NS,
                    Ev::Ended {
                        to: peer,
                        conn: peer_conn,
                        failed: true,
                    },
                );
            }
        }
    }

    fn meter(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn detection_config(&self) -> String {
        let c = &self.cfg;
        format!(
            "SWIM+Lifeguard: period {:?}, timeout {:?}, {} indirect, suspicion timeout {}x max(1, log10 n) periods (memberlist), starting at {}x that",
            c.probe_interval,
            c.probe_timeout,
            c.indirect_checks,
            c.suspicion_mult,
            c.suspicion_max_mult
        )
    }
}
