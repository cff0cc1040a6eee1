//! The wire codec alone: encode and decode of a ping and of a full compound packet.
//!
//! Both packets are what a `Node` really sends (taken from its `poll_transmit`, not
//! built by hand): a ping with no piggyback (37 bytes with the default 5-byte cluster
//! label), and an ack filled to the 1,400-byte `max_packet_size` with piggybacked
//! `Alive` updates (a node with 1,000 members' news queued). Decoding is
//! `read_datagram`: the reader `Node::handle_packet` runs first on every datagram (every
//! check, then every message read again, borrowed, as the node walks them). Encoding is `write_packet`: the writer `Node::poll_transmit` uses, into a
//! reused buffer, with each message already chosen (the node writes each as it chooses
//! it, so choosing is not counted here; see `dissemination`).
//!
//! Budgets: ping decode ≤ 100 ns; 1,400-byte compound decode ≤ 300 ns.
//!
//! `cargo bench --features internals --bench codec`

mod common;

use std::hint::black_box;

use rumor::internals::{
    DecodeLimits, decode_packet, encode_packet, proto::Packet, read_datagram, write_packet,
};
use rumor::{NodeId, Time};

fn main() {
    divan::main();
}

/// The limits a node with the default config decodes with.
const LIMITS: DecodeLimits = DecodeLimits {
    max_packet_size: 1400,
    max_messages: 128,
    max_digest_entries: 700,
};

/// A ping as a node of a 16-member cluster sends it at its first probe tick.
fn ping() -> Vec<u8> {
    let mut node = common::node_knowing(16, common::probe_config(), true);
    let mut buf = [0u8; common::MTU];
    while let Some(at) = node.poll_timeout() {
        node.handle_timeout(at);
        while let Some(tx) = node.poll_transmit(at, &mut buf) {
            let datagram = &buf[..tx.len];
            if common::ping_seq(datagram).is_some() {
                return datagram.to_vec();
            }
        }
    }
    unreachable!("a node with peers pings one")
}

/// An ack packed to the brim with piggybacked updates.
fn compound() -> Vec<u8> {
    let mut node = common::node_knowing(1000, common::probe_config(), false);
    let (_, from) = common::peer(2);
    let sender = NodeId::from_name(&common::peer(2).0);
    let ping = common::ping_datagram(b"rumor", sender, 1, node.id());
    node.handle_packet(Time::ZERO, from, &ping);
    let mut buf = [0u8; common::MTU];
    let tx = node.poll_transmit(Time::ZERO, &mut buf).expect("an ack");
    assert!(tx.len > 1300, "the ack is full: {} bytes", tx.len);
    buf[..tx.len].to_vec()
}

fn decoded(datagram: &[u8]) -> Packet {
    decode_packet(datagram, &LIMITS).expect("the node's own packet decodes")
}

/// Reading `datagram`, as the node does for every datagram it receives.
fn bench_decode(bencher: divan::Bencher<'_, '_>, datagram: Vec<u8>) {
    let messages = decoded(&datagram).messages.len();
    assert_eq!(read_datagram(&datagram, &LIMITS), Ok(messages));
    bencher
        .counter(divan::counter::BytesCount::new(datagram.len()))
        .bench_local(|| read_datagram(black_box(&datagram), &LIMITS));
}

/// Writing the packet `datagram` holds into a reused buffer, as `poll_transmit` does.
fn bench_encode(bencher: divan::Bencher<'_, '_>, datagram: Vec<u8>) {
    let packet = decoded(&datagram);
    let mut buf = [0u8; common::MTU];
    assert_eq!(write_packet(&packet, &mut buf), Some(datagram.len()));
    // The same packet, not always the same bytes: the node writes a ping's probe
    // token first (where the kernel's quote of a refused datagram is sure to hold it),
    // the writers here in field order.
    assert_eq!(decoded(&buf[..datagram.len()]), packet);
    let mut again = [0u8; common::MTU];
    assert_eq!(encode_packet(&packet, &mut again), Some(datagram.len()));
    assert_eq!(decoded(&again[..datagram.len()]), packet);
    bencher
        .counter(divan::counter::BytesCount::new(datagram.len()))
        .bench_local(|| write_packet(black_box(&packet), black_box(&mut buf)));
}

#[divan::bench]
fn decode_ping(bencher: divan::Bencher<'_, '_>) {
    bench_decode(bencher, ping());
}

#[divan::bench]
fn encode_ping(bencher: divan::Bencher<'_, '_>) {
    bench_encode(bencher, ping());
}

#[divan::bench]
fn decode_compound_1400(bencher: divan::Bencher<'_, '_>) {
    bench_decode(bencher, compound());
}

#[divan::bench]
fn encode_compound_1400(bencher: divan::Bencher<'_, '_>) {
    bench_encode(bencher, compound());
}
