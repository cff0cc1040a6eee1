//! Sealed datagrams: the CPU of sealing and opening one frame, and what sealing adds to a
//! node's protocol period.
//!
//! `seal` and `open` are the functions `Node::poll_transmit` and `Node::handle_packet`
//! call (`src/keyring.rs`), on packets of 37 bytes (a ping with no piggyback), 150 bytes
//! (an ack carrying a few updates) and 1,400 bytes (a full datagram), with the default
//! 5-byte cluster label. `open` is measured with a 1-key ring and with a 3-key ring whose
//! last key sealed the frame: the middle of a key rotation, when some members already
//! seal with the new key and the others still hold the old one first.
//!
//! `period_*` is one protocol period of a node of a converged cluster (the loop of
//! `benches/probe_loop.rs`, default `phi-monitors` strategy) with and without a keyring:
//! 6 datagrams sealed and 6 opened by the node per period. The emulated peers must seal
//! what they send and open what the node sends too, so the sealed figures include the
//! harness's 3 seals (its acks) and 3 opens (the node's pings, to read their `seq`); its
//! inbound pings are sealed once, up front. The node's own share of the difference
//! between `period_sealed` and `period_plain` is therefore 12 of its 18 seals and opens.
//!
//! `cargo bench --features internals --bench seal`

mod common;

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rumor::internals::{PAYLOAD_OFFSET, Sealer, open, seal};
use rumor::{Config, Key, Keyring, Node, NodeId, SEAL_OVERHEAD, Time};

fn main() {
    divan::main();
}

const LABEL: &[u8] = b"rumor";
const SIZES: [usize; 3] = [37, 150, 1400];

fn key(b: u8) -> Key {
    Key::from_bytes([b; 32])
}

/// The rotation case: the reader's ring holds the old key first, then two newer ones; the
/// writer sealed with the newest.
fn rotating_ring() -> Keyring {
    let mut ring = Keyring::new(key(1));
    ring.add(key(2)).unwrap();
    ring.add(key(3)).unwrap();
    ring
}

/// A buffer holding a `len`-byte packet where sealing expects it.
fn packet_buf(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len + SEAL_OVERHEAD];
    for (i, b) in buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + len]
        .iter_mut()
        .enumerate()
    {
        *b = i as u8;
    }
    buf
}

/// A nonce as releases before key ids drew it: 16 random bytes, then a counter.
fn old_nonce(counter: u64) -> [u8; 24] {
    let mut n = [0x5a; 24];
    n[16..].copy_from_slice(&counter.to_le_bytes());
    n
}

/// A frame of a `len`-byte packet sealed as a node seals it, by the primary of `ring`.
fn frame(ring: &Keyring, len: usize) -> Vec<u8> {
    let mut buf = packet_buf(len);
    let n = Sealer::new(ring.clone(), [0x5a; 16])
        .seal(LABEL, &mut buf, len)
        .expect("room for the tag");
    buf.truncate(n);
    buf
}

/// A frame as releases before key ids sealed it (no key named in the nonce).
fn old_frame(ring: &Keyring, len: usize) -> Vec<u8> {
    let mut buf = packet_buf(len);
    let n = seal(ring, old_nonce(1), LABEL, &mut buf, len).expect("room for the tag");
    buf.truncate(n);
    buf
}

/// Seals a `len`-byte packet as a node does (the buffer is sealed in place again each
/// time: the cost does not depend on the bytes).
#[divan::bench(args = SIZES)]
fn seal_1_key(bencher: divan::Bencher<'_, '_>, len: usize) {
    let mut sealer = Sealer::new(Keyring::new(key(1)), [0x5a; 16]);
    let mut buf = packet_buf(len);
    bencher.bench_local(|| sealer.seal(LABEL, black_box(&mut buf), len));
}

/// The frames the open benches read: the reader's ring, and a frame of a `len`-byte
/// packet from a writer sealing with key 1 of a 1-key ring (`keys` = 1) or with the last
/// key of the reader's 3-key ring (`keys` = 3), as today's nodes seal it or (`with_id` =
/// false) as releases before key ids did.
fn reader_and_frame(keys: usize, with_id: bool, len: usize) -> (Keyring, Vec<u8>) {
    let ring = if keys == 1 {
        Keyring::new(key(1))
    } else {
        rotating_ring()
    };
    let mut writer = ring.clone();
    writer.use_key(&key(keys as u8)).unwrap();
    let f = if with_id {
        frame(&writer, len)
    } else {
        old_frame(&writer, len)
    };
    (ring, f)
}

/// Opens as a node does, a frame from a sender it has heard from (its subkey cached).
fn bench_open(bencher: divan::Bencher<'_, '_>, keys: usize, with_id: bool, len: usize) {
    let (ring, f) = reader_and_frame(keys, with_id, len);
    let mut sealer = Sealer::new(ring, [0x77; 16]);
    let mut out = Vec::with_capacity(common::MTU);
    assert!(sealer.open(LABEL, &f, &mut out));
    bencher.bench_local(|| assert!(sealer.open(LABEL, black_box(&f), &mut out)));
}

/// Opens without the cache: the first frame from a sender (HChaCha20 per key tried).
fn bench_open_first(bencher: divan::Bencher<'_, '_>, keys: usize, with_id: bool, len: usize) {
    let (ring, f) = reader_and_frame(keys, with_id, len);
    let mut out = Vec::with_capacity(common::MTU);
    bencher.bench_local(|| assert!(open(&ring, LABEL, black_box(&f), &mut out)));
}

/// A frame sealed with the only key of the ring.
#[divan::bench(args = SIZES)]
fn open_1_key(bencher: divan::Bencher<'_, '_>, len: usize) {
    bench_open(bencher, 1, true, len);
}

/// A frame sealed with the last key of a 3-key ring.
#[divan::bench(args = SIZES)]
fn open_3_keys_last(bencher: divan::Bencher<'_, '_>, len: usize) {
    bench_open(bencher, 3, true, len);
}

/// The same, from a writer of a release before key ids.
#[divan::bench(args = SIZES)]
fn open_3_keys_last_no_id(bencher: divan::Bencher<'_, '_>, len: usize) {
    bench_open(bencher, 3, false, len);
}

/// [`open_1_key`], a sender's first frame.
#[divan::bench(args = SIZES)]
fn open_first_1_key(bencher: divan::Bencher<'_, '_>, len: usize) {
    bench_open_first(bencher, 1, true, len);
}

/// [`open_3_keys_last`], a sender's first frame: its key is tried first.
#[divan::bench(args = SIZES)]
fn open_first_3_keys_last(bencher: divan::Bencher<'_, '_>, len: usize) {
    bench_open_first(bencher, 3, true, len);
}

/// [`open_3_keys_last_no_id`], a sender's first frame: every key is tried in turn (the
/// cost of every frame before this change).
#[divan::bench(args = SIZES)]
fn open_first_3_keys_last_no_id(bencher: divan::Bencher<'_, '_>, len: usize) {
    bench_open_first(bencher, 3, false, len);
}

// ----- through the node -----------------------------------------------------------------

const MEMBERS: [usize; 2] = [100, 1000];

/// Periods run before measuring (as `benches/probe_loop.rs`).
const WARMUP: usize = 50;

/// A plaintext node's period, driven by the same loop as the sealed ones.
#[divan::bench(args = MEMBERS, sample_count = 300, sample_size = 10)]
fn period_plain(bencher: divan::Bencher<'_, '_>, members: usize) {
    let mut s = SealedSteady::new(members, None);
    bencher.bench_local(|| s.period());
}

/// A node with a 1-key ring; its peers seal with that key.
#[divan::bench(args = MEMBERS, sample_count = 300, sample_size = 10)]
fn period_sealed(bencher: divan::Bencher<'_, '_>, members: usize) {
    let mut s = SealedSteady::new(members, Some((Keyring::new(key(1)), key(1))));
    bencher.bench_local(|| s.period());
}

/// A node whose ring holds 3 keys, the old one primary, while its peers already seal
/// with the newest (the middle of a rotation).
#[divan::bench(args = MEMBERS, sample_count = 300, sample_size = 10)]
fn period_sealed_rotating(bencher: divan::Bencher<'_, '_>, members: usize) {
    let mut s = SealedSteady::new(members, Some((rotating_ring(), key(3))));
    bencher.bench_local(|| s.period());
}

/// The steady probe loop of `common::Steady`, with the emulated peers sealing what they
/// send and opening what the node sends.
struct SealedSteady {
    node: Node,
    cluster: Vec<u8>,
    t: Time,
    interval: Duration,
    /// The peers' sealing (their primary seals), if they seal at all.
    peers: Option<Sealer>,
    /// Pings the node's monitors send it each period, sealed once.
    inbound_pings: Vec<(SocketAddr, Vec<u8>)>,
    owed: Vec<(SocketAddr, NodeId, u32)>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    sealed: Vec<u8>,
    opened: Vec<u8>,
}

impl SealedSteady {
    /// A node of a converged cluster of `n`; with `keys`, the node's ring and the key
    /// its peers seal with.
    fn new(n: usize, keys: Option<(Keyring, Key)>) -> SealedSteady {
        let cfg: Config = common::probe_config();
        let interval = cfg.probe_interval;
        let cluster = cfg.cluster_label.clone().into_bytes();
        // The cluster is learned in plaintext, then the keys go in (a node with keys
        // refuses plaintext).
        let mut node = common::node_knowing(n, cfg, true);
        let peers = keys.map(|(ring, peer_key)| {
            for k in ring.keys() {
                node.keyring_add(k.clone()).unwrap();
            }
            let mut peers = ring.clone();
            peers.add(peer_key.clone()).unwrap();
            peers.use_key(&peer_key).unwrap();
            Sealer::new(peers, [0xa5; 16])
        });
        let senders: Vec<NodeId> = node.monitored().map(|(id, _)| id).collect();
        let mut s = SealedSteady {
            node,
            cluster,
            t: Time::ZERO,
            interval,
            peers,
            inbound_pings: Vec::new(),
            owed: Vec::with_capacity(64),
            buf: vec![0u8; common::MTU],
            scratch: Vec::with_capacity(common::MTU),
            sealed: vec![0u8; common::MTU + SEAL_OVERHEAD],
            opened: Vec::with_capacity(common::MTU),
        };
        for (i, &id) in senders.iter().enumerate() {
            let addr = s.node.member(id).expect("known").addr;
            let ping = common::ping_datagram(&s.cluster, id, 1000 + i as u32, s.node.id());
            let datagram = s.peer_datagram(&ping).to_vec();
            s.inbound_pings.push((addr, datagram));
        }
        for _ in 0..WARMUP {
            s.period();
        }
        s
    }

    /// `packet` as a peer sends it: sealed under the peers' primary, or as it is.
    fn peer_datagram<'a>(&'a mut self, packet: &'a [u8]) -> &'a [u8] {
        let Some(sealer) = &mut self.peers else {
            return packet;
        };
        let len = packet.len();
        self.sealed[PAYLOAD_OFFSET..PAYLOAD_OFFSET + len].copy_from_slice(packet);
        let n = sealer
            .seal(&self.cluster, &mut self.sealed, len)
            .expect("room");
        &self.sealed[..n]
    }

    fn period(&mut self) {
        let end = self.t + self.interval;
        let mut first = true;
        while let Some(at) = self.node.poll_timeout() {
            if at >= end {
                break;
            }
            self.node.handle_timeout(at);
            self.drain(at);
            let reply_at = at + Duration::from_micros(200);
            for k in 0..self.owed.len() {
                let (from, sender, seq) = self.owed[k];
                let mut ack = std::mem::take(&mut self.scratch);
                common::write_ack(&mut ack, &self.cluster, sender, seq);
                let datagram = self.peer_datagram(&ack).to_vec();
                self.scratch = ack;
                self.node.handle_packet(reply_at, from, &datagram);
            }
            self.owed.clear();
            self.drain(reply_at);
            if first {
                first = false;
                for (from, ping) in &self.inbound_pings {
                    self.node.handle_packet(reply_at, *from, ping);
                }
                self.drain(reply_at);
            }
        }
        self.t = end;
    }

    fn drain(&mut self, now: Time) {
        while let Some(tx) = self.node.poll_transmit(now, &mut self.buf) {
            let datagram = &self.buf[..tx.len];
            let packet = match &mut self.peers {
                Some(sealer) => {
                    assert!(sealer.open(&self.cluster, datagram, &mut self.opened));
                    &self.opened[..]
                }
                None => datagram,
            };
            if let Some(seq) = common::ping_seq(packet) {
                let IpAddr::V4(ip) = tx.destination.ip() else {
                    unreachable!("peers have IPv4 addresses")
                };
                let [_, _, hi, lo] = ip.octets();
                let target = NodeId((u64::from(hi) << 8 | u64::from(lo)) + 1);
                self.owed.push((tx.destination, target, seq));
            }
        }
        while self.node.poll_event().is_some() {}
        let stats = self.node.stats();
        debug_assert_eq!((stats.auth_failures, stats.plaintext_refused), (0, 0));
    }
}
