//! Untrusted datagrams: whatever arrives, the node neither panics nor loses itself.

use std::net::SocketAddr;

use proptest::prelude::*;
use rumor::{Config, Identity, MemberState, Node, Time};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn node(name: &str, port: u16, seed: u64) -> Node {
    Node::new(
        Identity::new(name, addr(port)),
        Config::lan(),
        seed,
        Time::ZERO,
    )
    .unwrap()
}

/// Real datagrams from a joining node and its seed's answers: a corpus to mutate.
fn corpus() -> Vec<Vec<u8>> {
    let mut a = node("a", 1, 1);
    let mut b = node("b", 2, 2);
    b.join(Time::ZERO, &[]);
    a.join(Time::ZERO, &[addr(2)]);
    a.broadcast(Time::ZERO, bytes::Bytes::from_static(b"hello"))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1400];
    let mut now = Time::ZERO;
    for _ in 0..50 {
        now += std::time::Duration::from_millis(100);
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            out.push(buf[..t.len].to_vec());
            b.handle_packet(now, addr(1), &buf[..t.len]);
        }
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            out.push(buf[..t.len].to_vec());
            a.handle_packet(now, addr(2), &buf[..t.len]);
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert!(out.len() > 10, "corpus too small");
    out
}

fn assert_sane(n: &mut Node) {
    let me = n.local_member();
    assert_eq!(me.state, MemberState::Alive);
    assert!(n.live_count() >= 1);
    let mut buf = [0u8; 1400];
    let now = Time::from_secs(10);
    n.handle_timeout(now);
    let mut sent = 0;
    while let Some(t) = n.poll_transmit(now, &mut buf) {
        assert!(t.len <= 1400);
        sent += 1;
        assert!(sent < 10_000, "unbounded output");
    }
    while n.poll_event().is_some() {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        let mut n = node("victim", 9, 9);
        n.join(Time::ZERO, &[]);
        n.handle_packet(Time::from_secs(1), addr(7), &data);
        assert_sane(&mut n);
        prop_assert!(n.stats().decode_errors_total() + n.stats().cluster_mismatch <= 1);
    }

    #[test]
    fn mutated_real_packets_never_panic(
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..20)
    ) {
        let corpus = corpus();
        let mut n = node("victim", 9, 9);
        n.join(Time::ZERO, &[]);
        for (i, (which, pos, byte, op)) in picks.into_iter().enumerate() {
            let mut d = corpus[which.index(corpus.len())].clone();
            let p = pos.index(d.len().max(1));
            match op {
                0 if !d.is_empty() => d[p] = byte,
                1 => d.truncate(p),
                2 => d.insert(p.min(d.len()), byte),
                _ if !d.is_empty() => d[p] ^= 1 << (byte % 8),
                _ => {}
            }
            n.handle_packet(Time::from_millis(100 * i as u64 + 1), addr(1), &d);
        }
        assert_sane(&mut n);
    }
}
