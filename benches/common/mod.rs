//! The harness shared by the benches and `tests/alloc_budget.rs`: one real [`Node`]
//! that already knows a converged cluster, and the peers around it emulated as cheaply
//! as possible, so what is measured is the node's own work.
//!
//! The peers are not `Node`s (that would measure them too): the harness writes their
//! datagrams with the few protobuf primitives below (no allocation, a few nanoseconds per
//! datagram) and reads the node's pings with a scanner that only finds the ping's `seq`.
//! Nothing here touches a socket: every datagram goes straight into
//! [`Node::handle_packet`] or out of [`Node::poll_transmit`].
//!
//! A steady protocol period, as the node lives it in a converged cluster of `n` members
//! under the default `phi-monitors` strategy (`monitors` = 3), is: the probe timer fires
//! and the node pings the 3 members it monitors; their acks come back; the 3 members
//! that monitor the node ping it and it acks each. Under SWIM the node pings one member.
//! Whatever other timers fall due in the period (the reap sweep every 37.5 s, a
//! push-pull every `push_pull_interval`) run too, as they would in production.

// Each bench target uses part of the harness.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rumor::{Config, Identity, Node, NodeId, Time};

/// Bytes a datagram may take (the default `max_packet_size`).
pub const MTU: usize = 1400;

/// Round-trip time between the node and a peer.
const RTT: Duration = Duration::from_micros(200);

/// Where the node under test lives (nothing is ever sent there).
pub fn node_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7946)
}

/// The name and address of peer `i` (1-based); loopback addresses, never used.
pub fn peer(i: usize) -> (String, SocketAddr) {
    let [_, _, hi, lo] = (i as u32).to_be_bytes();
    let ip = Ipv4Addr::new(127, 1, hi, lo);
    (format!("member-{i}"), SocketAddr::new(IpAddr::V4(ip), 7946))
}

/// The default LAN config with push-pull at its longest interval (1 h), so a probe-loop
/// measurement is not a push-pull measurement (a push-pull exchange needs peers that
/// answer digests, which the harness does not emulate). Everything else is `lan()`.
pub fn probe_config() -> Config {
    let mut cfg = Config::lan();
    cfg.push_pull_interval = Duration::from_secs(3600);
    cfg
}

/// [`probe_config`] under the SWIM strategy (one probe per period).
pub fn swim_config() -> Config {
    let mut cfg = probe_config();
    cfg.strategy = rumor::Strategy::Swim;
    cfg
}

// ----- protobuf, by hand --------------------------------------------------------------
// Field numbers follow proto/rumor/v1/rumor.proto. Only what the peers send is written.

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    put_varint(out, (field << 3) | wire_type);
}

fn put_fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
    put_key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// `Packet` fields 1–4 (version 1, cluster label, sender, incarnation 0 omitted).
fn put_envelope(out: &mut Vec<u8>, cluster: &[u8], sender: NodeId) {
    put_key(out, 1, 0);
    put_varint(out, 1);
    put_bytes(out, 2, cluster);
    put_fixed64(out, 3, sender.0);
}

/// `Packet.messages` (field 5) holding a `Message` whose oneof `body` is field `body`
/// (1 Ping, 2 Ack, 5 Alive) with `inner` as its encoded body.
fn put_message(out: &mut Vec<u8>, body: u64, inner: &[u8]) {
    let message_len = 1 + varint_len(inner.len() as u64) + inner.len();
    put_key(out, 5, 2);
    put_varint(out, message_len as u64);
    put_bytes(out, body, inner);
}

/// An `Ack { seq }` datagram from `sender`, written into `out` (cleared first).
pub fn write_ack(out: &mut Vec<u8>, cluster: &[u8], sender: NodeId, seq: u32) {
    out.clear();
    put_envelope(out, cluster, sender);
    // Message { ack: Ack { seq } }: 0x12 len 0x08 varint(seq).
    let seq_len = varint_len(u64::from(seq));
    put_key(out, 5, 2);
    put_varint(out, (3 + seq_len) as u64);
    put_key(out, 2, 2);
    put_varint(out, (1 + seq_len) as u64);
    put_key(out, 1, 0);
    put_varint(out, u64::from(seq));
}

/// A `Ping { seq, target }` datagram from `sender`.
pub fn ping_datagram(cluster: &[u8], sender: NodeId, seq: u32, target: NodeId) -> Vec<u8> {
    let mut body = Vec::new();
    put_key(&mut body, 1, 0);
    put_varint(&mut body, u64::from(seq));
    put_fixed64(&mut body, 2, target.0);
    let mut out = Vec::new();
    put_envelope(&mut out, cluster, sender);
    put_message(&mut out, 1, &body);
    out
}

/// `Alive` datagrams introducing peers `1..n`, each at most [`MTU`] bytes. With `sync`
/// they are marked as state-sync entries (`Packet.sync_entries`): the node learns the
/// members as a joiner learns them from its seed, with nothing queued for gossip. Without
/// it every member is news the node must disseminate.
pub fn alive_datagrams(cluster: &[u8], n: usize, sync: bool) -> Vec<Vec<u8>> {
    let sender = NodeId::from_name(&peer(1).0);
    let mut packets = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    let flush = |messages: &mut Vec<Vec<u8>>, packets: &mut Vec<Vec<u8>>| {
        let mut out = Vec::with_capacity(MTU);
        put_envelope(&mut out, cluster, sender);
        for m in messages.iter() {
            out.extend_from_slice(m);
        }
        if sync {
            put_key(&mut out, 8, 0);
            put_varint(&mut out, messages.len() as u64);
        }
        packets.push(out);
        messages.clear();
    };
    for i in 1..n {
        let (name, addr) = peer(i);
        let mut body = Vec::new();
        put_fixed64(&mut body, 1, NodeId::from_name(&name).0);
        put_bytes(&mut body, 3, name.as_bytes());
        let (IpAddr::V4(ip), port) = (addr.ip(), addr.port()) else {
            unreachable!("peers have IPv4 addresses")
        };
        let mut wire_addr = ip.octets().to_vec();
        wire_addr.extend_from_slice(&port.to_be_bytes());
        put_bytes(&mut body, 4, &wire_addr);
        let mut message = Vec::new();
        put_message(&mut message, 5, &body);
        // Envelope (≈ 20 bytes with the default label) + sync_entries (≤ 3).
        if size + message.len() + 40 > MTU || messages.len() >= 100 {
            flush(&mut messages, &mut packets);
            size = 0;
        }
        size += message.len();
        messages.push(message);
    }
    if !messages.is_empty() {
        flush(&mut messages, &mut packets);
    }
    packets
}

// ----- sealing, for a node with keys ---------------------------------------------------

/// The peers' side of a keyed cluster: seals their datagrams and opens the node's, in
/// the keyring's frame (`src/keyring.rs`: magic `00 01`, a 24-byte nonce, the
/// XChaCha20-Poly1305 ciphertext, its 16-byte tag; the magic and the cluster label, up
/// to 64 bytes, authenticated). Written here from the frame's description so the
/// harness stays outside the crate's private API, as its protobuf writing does.
pub struct Sealing {
    cipher: XChaCha20Poly1305,
    aad: Vec<u8>,
    counter: u64,
    opened: Vec<u8>,
}

const SEAL_MAGIC: [u8; 2] = [0x00, 0x01];
const SEAL_HEADER: usize = 2 + 24;
const SEAL_TAG: usize = 16;

impl Sealing {
    /// For a node configured with `cfg`: `None` unless it seals what it sends.
    pub fn for_config(cfg: &Config) -> Option<Sealing> {
        let key = cfg.keyring.primary()?;
        if cfg.send_plaintext {
            return None;
        }
        let mut aad = SEAL_MAGIC.to_vec();
        let label = cfg.cluster_label.as_bytes();
        aad.extend_from_slice(&label[..label.len().min(64)]);
        Some(Sealing {
            cipher: XChaCha20Poly1305::new((&key.to_bytes()).into()),
            aad,
            counter: 0,
            opened: Vec::with_capacity(MTU),
        })
    }

    /// Seals `datagram` in place (it grows by 42 bytes).
    pub fn seal(&mut self, datagram: &mut Vec<u8>) {
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(b"harness!");
        nonce[16..].copy_from_slice(&self.counter.to_le_bytes());
        self.counter += 1;
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &self.aad, datagram)
            .expect("a datagram fits the cipher's limits");
        datagram.splice(0..0, SEAL_MAGIC.iter().chain(nonce.iter()).copied());
        datagram.extend_from_slice(&tag);
    }

    /// The plaintext of a frame the node sealed; `None` if it does not open.
    pub fn open(&mut self, frame: &[u8]) -> Option<&[u8]> {
        if frame.len() < SEAL_HEADER + SEAL_TAG || frame[..2] != SEAL_MAGIC {
            return None;
        }
        let nonce = XNonce::from_slice(&frame[2..SEAL_HEADER]);
        let tag = Tag::from_slice(&frame[frame.len() - SEAL_TAG..]);
        self.opened.clear();
        self.opened
            .extend_from_slice(&frame[SEAL_HEADER..frame.len() - SEAL_TAG]);
        self.cipher
            .decrypt_in_place_detached(nonce, &self.aad, &mut self.opened, tag)
            .ok()?;
        Some(&self.opened)
    }
}

// ----- reading the node's datagrams ---------------------------------------------------

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Calls `f(field, bytes)` for every length-delimited field at the top level of `b`.
/// `None` if `b` is not well-formed protobuf.
fn each_len_field(mut b: &[u8], mut f: impl FnMut(u64, &[u8]) -> bool) -> Option<()> {
    while !b.is_empty() {
        let key = get_varint(&mut b)?;
        let skip = match key & 7 {
            0 => {
                get_varint(&mut b)?;
                0
            }
            1 => 8,
            2 => {
                let len = usize::try_from(get_varint(&mut b)?).ok()?;
                let field = b.get(..len)?;
                if f(key >> 3, field) {
                    return Some(());
                }
                len
            }
            5 => 4,
            _ => return None,
        };
        b = b.get(skip..)?;
    }
    Some(())
}

/// The `seq` of the first `Ping` in a datagram, if it carries one.
pub fn ping_seq(datagram: &[u8]) -> Option<u32> {
    let mut found = None;
    each_len_field(datagram, |field, message| {
        if field != 5 {
            return false;
        }
        each_len_field(message, |body, ping| {
            if body == 1 {
                let mut b = ping;
                // Ping.seq is field 1 (varint) and comes first; an absent seq is 0.
                found = Some(match b.first() {
                    Some(0x08) => {
                        b = &b[1..];
                        get_varint(&mut b).map_or(0, |v| v as u32)
                    }
                    _ => 0,
                });
            }
            true
        });
        found.is_some()
    });
    found
}

// ----- the node in a converged cluster ------------------------------------------------

/// The node's API calls a period is made of, for per-call accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `handle_timeout` (the probe tick, and whatever else falls due).
    HandleTimeout,
    /// `poll_transmit` (each datagram written, and the `None` that ends a drain).
    PollTransmit,
    /// `handle_packet` of an ack to one of the node's pings.
    HandleAck,
    /// `handle_packet` of a ping from one of the node's monitors.
    HandlePing,
    /// `poll_event` and `poll_timeout`.
    Poll,
}

/// Wraps each of the node's API calls; the benches use [`NoMeter`], the allocation test
/// counts allocations per [`Step`].
pub trait Meter {
    /// Runs `f`, the call of kind `step`.
    fn step<R>(&mut self, step: Step, f: impl FnOnce() -> R) -> R;
}

/// Measures nothing, costs nothing.
pub struct NoMeter;

impl Meter for NoMeter {
    #[inline(always)]
    fn step<R>(&mut self, _: Step, f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// Builds a node that knows `n - 1` peers (a cluster of `n`), all alive, at time zero.
/// `sync`: learned as state sync (converged, nothing to gossip) or as news (every
/// member queued for dissemination).
pub fn node_knowing(n: usize, cfg: Config, sync: bool) -> Node {
    let label = cfg.cluster_label.clone();
    let now = Time::ZERO;
    let mut node =
        Node::new(Identity::new("bench-node", node_addr()), cfg, 7, now).expect("valid config");
    node.join(now, &[]);
    let from = peer(1).1;
    let mut sealing = Sealing::for_config(node.config());
    for mut datagram in alive_datagrams(label.as_bytes(), n, sync) {
        if let Some(s) = sealing.as_mut() {
            s.seal(&mut datagram);
        }
        node.handle_packet(now, from, &datagram);
    }
    while node.poll_event().is_some() {}
    let mut buf = [0u8; MTU];
    while node.poll_transmit(now, &mut buf).is_some() {}
    assert_eq!(node.live_count(), n, "every peer was learned");
    node
}

/// A node of a converged cluster, driven one protocol period at a time.
pub struct Steady {
    pub node: Node,
    cluster: Vec<u8>,
    /// Start of the next period.
    t: Time,
    interval: Duration,
    /// Pings the node's own monitors send it each period, with their source addresses.
    inbound_pings: Vec<(SocketAddr, Vec<u8>)>,
    /// Acks owed to the node: (from, sender, seq).
    owed: Vec<(SocketAddr, NodeId, u32)>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// The peers' sealing, if the node has keys.
    sealing: Option<Sealing>,
    /// Datagrams the node sent: pings, and everything else (acks, gossip, sync).
    pub pings_out: u64,
    pub others_out: u64,
}

impl Steady {
    /// A node in a converged cluster of `n`, warmed up for `warmup` periods (its
    /// detectors have samples, its buffers their steady capacity).
    pub fn new(n: usize, cfg: Config, warmup: usize) -> Steady {
        let interval = cfg.probe_interval;
        let cluster = cfg.cluster_label.clone().into_bytes();
        let mut sealing = Sealing::for_config(&cfg);
        let node = node_knowing(n, cfg, true);
        // The members that ping this node are its ring successors; which ones does not
        // change what the node does (it acks any ping naming it), so take the members it
        // monitors, or for SWIM a few peers.
        let mut senders: Vec<NodeId> = node.monitored().map(|(id, _)| id).collect();
        if senders.is_empty() {
            senders = (1..n.min(2))
                .map(|i| NodeId::from_name(&peer(i).0))
                .collect();
        }
        let inbound_pings = senders
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let addr = node.member(id).expect("known").addr;
                let mut ping = ping_datagram(&cluster, id, 1000 + i as u32, node.id());
                if let Some(s) = sealing.as_mut() {
                    s.seal(&mut ping);
                }
                (addr, ping)
            })
            .collect();
        let mut s = Steady {
            node,
            cluster,
            t: Time::ZERO,
            interval,
            inbound_pings,
            owed: Vec::with_capacity(64),
            buf: vec![0u8; MTU],
            scratch: Vec::with_capacity(MTU),
            sealing,
            pings_out: 0,
            others_out: 0,
        };
        for _ in 0..warmup {
            s.period();
        }
        s
    }

    /// One protocol period: every timer due in `[t, t + interval)` fires, each ping the
    /// node sends is acked one RTT later, and the node's monitors' pings reach it (and
    /// are acked) right after its own probe tick.
    // Never inlined: scripts/callgrind.sh collects instructions inside this function only.
    #[inline(never)]
    pub fn period(&mut self) {
        self.period_metered(&mut NoMeter);
    }

    /// [`period`](Self::period), with every call to the node wrapped by `meter`.
    pub fn period_metered(&mut self, meter: &mut impl Meter) {
        let end = self.t + self.interval;
        let mut first = true;
        while let Some(at) = meter.step(Step::Poll, || self.node.poll_timeout()) {
            if at >= end {
                break;
            }
            meter.step(Step::HandleTimeout, || self.node.handle_timeout(at));
            self.drain(at, meter);
            let reply_at = at + RTT;
            for k in 0..self.owed.len() {
                let (from, sender, seq) = self.owed[k];
                write_ack(&mut self.scratch, &self.cluster, sender, seq);
                if let Some(s) = self.sealing.as_mut() {
                    s.seal(&mut self.scratch);
                }
                let node = &mut self.node;
                let ack = &self.scratch;
                meter.step(Step::HandleAck, || node.handle_packet(reply_at, from, ack));
            }
            self.owed.clear();
            self.drain(reply_at, meter);
            if first {
                first = false;
                for (from, ping) in &self.inbound_pings {
                    let node = &mut self.node;
                    meter.step(Step::HandlePing, || {
                        node.handle_packet(reply_at, *from, ping)
                    });
                }
                self.drain(reply_at, meter);
            }
        }
        self.t = end;
    }

    /// Sends what the node wants sent: pings are remembered to be acked, the rest
    /// dropped (the peers have nothing to say back). Events are drained too.
    fn drain(&mut self, now: Time, meter: &mut impl Meter) {
        loop {
            let (node, buf) = (&mut self.node, &mut self.buf);
            let Some(tx) = meter.step(Step::PollTransmit, || node.poll_transmit(now, buf)) else {
                break;
            };
            let datagram = &self.buf[..tx.len];
            let plain = match self.sealing.as_mut() {
                Some(s) => s
                    .open(datagram)
                    .expect("the node seals with the peers' key"),
                None => datagram,
            };
            match ping_seq(plain) {
                Some(seq) => {
                    self.pings_out += 1;
                    let target = self.target_at(tx.destination);
                    self.owed.push((tx.destination, target, seq));
                }
                None => self.others_out += 1,
            }
        }
        while meter.step(Step::Poll, || self.node.poll_event()).is_some() {}
    }

    /// A sender id for the ack from the peer at `addr`. The node matches acks by `seq`
    /// alone, so the peer's number (from its address) serves; hashing its name would be
    /// the emulated peer's cost, not the node's.
    fn target_at(&self, addr: SocketAddr) -> NodeId {
        match addr.ip() {
            IpAddr::V4(ip) => {
                let [_, _, hi, lo] = ip.octets();
                NodeId((u64::from(hi) << 8 | u64::from(lo)) + 1)
            }
            IpAddr::V6(_) => NodeId(1),
        }
    }
}
