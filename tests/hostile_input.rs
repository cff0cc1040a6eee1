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

/// The datagrams a node would send for one input.
fn drain(n: &mut Node, now: Time) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 1400];
    let mut out = Vec::new();
    while let Some(t) = n.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
        assert!(out.len() < 100_000);
    }
    out
}

/// A cluster of `n` members as seen by the returned node, built by real joins.
fn node_knowing(n: usize) -> (Node, Vec<Vec<u8>>) {
    let mut victim = node("victim", 9, 9);
    victim.join(Time::ZERO, &[]);
    let mut joins = Vec::new();
    for i in 0..n {
        let port = 1000 + i as u16;
        let mut j = node(&format!("peer-{i}"), port, i as u64);
        j.join(Time::ZERO, &[addr(9)]);
        for d in drain(&mut j, Time::ZERO) {
            victim.handle_packet(Time::from_millis(1), addr(port), &d);
            joins.push(d);
        }
    }
    drain(&mut victim, Time::from_millis(1));
    (victim, joins)
}

#[test]
fn sync_is_answered_only_to_known_members_at_their_address() {
    let (mut victim, joins) = node_knowing(50);
    assert_eq!(victim.live_count(), 51);
    // A join packet replayed from another address: the digest is not answered there.
    victim.handle_packet(Time::from_millis(2), addr(7777), &joins[0]);
    let out = drain(&mut victim, Time::from_millis(2));
    assert!(
        out.len() <= 1,
        "answered a digest to a stranger's address with {} datagrams",
        out.len()
    );
    // The same join from the member's own address is answered in full.
    victim.handle_packet(Time::from_millis(3), addr(1000), &joins[0]);
    let out = drain(&mut victim, Time::from_millis(3));
    assert!(out.len() >= 2, "a real join got no answer");
}

/// A hand-encoded protobuf `Packet` (the schema in proto/rumor/v1/rumor.proto), so the
/// tests can say things the node itself would never send.
fn packet(sender_name: &str, messages: &[Vec<u8>]) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut p = vec![0x08, 1]; // version = 1
    p.extend_from_slice(&[0x12, 5]);
    p.extend_from_slice(b"rumor"); // cluster
    p.push(0x19); // sender: fixed64
    p.extend_from_slice(&rumor::NodeId::from_name(sender_name).0.to_le_bytes());
    for m in messages {
        p.push(0x2a); // messages
        varint(m.len() as u64, &mut p);
        p.extend_from_slice(m);
    }
    p
}

/// `Message { ping: Ping { seq, target } }`.
fn ping_message(seq: u32, target: &str) -> Vec<u8> {
    let mut ping = vec![0x08];
    let mut s = seq as u64;
    while s >= 0x80 {
        ping.push((s as u8) | 0x80);
        s >>= 7;
    }
    ping.push(s as u8);
    ping.push(0x11); // target: fixed64
    ping.extend_from_slice(&rumor::NodeId::from_name(target).0.to_le_bytes());
    let mut m = vec![0x0a, ping.len() as u8];
    m.extend_from_slice(&ping);
    m
}

/// `Message { sync_digest: SyncDigest { lo: 0, hi: u64::MAX, last: true } }`: "send me
/// everything", in 23 bytes.
fn everything_digest() -> Vec<u8> {
    let mut d = vec![0x09];
    d.extend_from_slice(&0u64.to_le_bytes());
    d.push(0x11);
    d.extend_from_slice(&u64::MAX.to_le_bytes());
    d.extend_from_slice(&[0x28, 1]);
    let mut m = vec![0x52, d.len() as u8];
    m.extend_from_slice(&d);
    m
}

#[test]
fn many_pings_in_one_datagram_get_one_ack() {
    let mut victim = node("victim", 9, 9);
    victim.join(Time::ZERO, &[]);
    drain(&mut victim, Time::ZERO);
    let pings: Vec<Vec<u8>> = (0..40).map(|i| ping_message(i, "victim")).collect();
    let datagram = packet("stranger", &pings);
    assert!(datagram.len() < 1400);
    victim.handle_packet(Time::from_millis(1), addr(5), &datagram);
    assert_eq!(
        victim.stats().decode_errors_total(),
        0,
        "hand-encoded packet rejected"
    );
    let out = drain(&mut victim, Time::from_millis(1));
    assert_eq!(out.len(), 1, "40 pings in one datagram must cost one ack");
    assert_eq!(victim.stats().messages_rejected, 39);
}

#[test]
fn a_tiny_forged_digest_does_not_dump_the_member_table() {
    let (mut victim, _) = node_knowing(50);
    // Claiming to be a known member, from an address that is not its own.
    let datagram = packet(
        "peer-3",
        &[
            everything_digest(),
            everything_digest(),
            everything_digest(),
        ],
    );
    victim.handle_packet(Time::from_millis(5), addr(4242), &datagram);
    assert_eq!(
        victim.stats().decode_errors_total(),
        0,
        "hand-encoded packet rejected"
    );
    assert!(drain(&mut victim, Time::from_millis(5)).is_empty());
    // From its own address, three digests in one datagram are answered once.
    victim.handle_packet(Time::from_millis(6), addr(1003), &datagram);
    let once = drain(&mut victim, Time::from_millis(6)).len();
    victim.handle_packet(
        Time::from_millis(7),
        addr(1003),
        &packet("peer-3", &[everything_digest()]),
    );
    let single = drain(&mut victim, Time::from_millis(7)).len();
    assert_eq!(
        once, single,
        "three digests in one datagram were answered more than once"
    );
}

#[test]
fn forged_huge_incarnations_are_rejected() {
    let (mut victim, _) = node_knowing(3);
    // `Message { dead: Dead { member: peer-1, incarnation: u64::MAX, from: x } }`.
    let mut d = vec![0x09];
    d.extend_from_slice(&rumor::NodeId::from_name("peer-1").0.to_le_bytes());
    d.push(0x10);
    d.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let mut m = vec![0x3a, d.len() as u8];
    m.extend_from_slice(&d);
    victim.handle_packet(Time::from_millis(5), addr(1000), &packet("peer-0", &[m]));
    assert_eq!(
        victim.stats().decode_errors_total(),
        0,
        "hand-encoded packet rejected"
    );
    let peer1 = victim.member(rumor::NodeId::from_name("peer-1")).unwrap();
    assert_eq!(
        peer1.state,
        MemberState::Alive,
        "a forged u64::MAX incarnation convicted a member"
    );
    assert_eq!(victim.stats().messages_rejected, 1);
}

/// `Message { suspect: Suspect { member, incarnation, from } }`.
fn suspect_message(member: &str, incarnation: u8, from: &str) -> Vec<u8> {
    let mut s = vec![0x09];
    s.extend_from_slice(&rumor::NodeId::from_name(member).0.to_le_bytes());
    s.extend_from_slice(&[0x10, incarnation & 0x7f, 0x19]);
    s.extend_from_slice(&rumor::NodeId::from_name(from).0.to_le_bytes());
    let mut m = vec![0x32, s.len() as u8];
    m.extend_from_slice(&s);
    m
}

/// The member that tells the victim of an accusation is answered with the refutation
/// at once (after a partition heals, it is on the far side, and gossip would carry the
/// refutation back only by chance). A member still gossiping an accusation the victim
/// has already refuted (it missed the refutation) is answered with the victim's current
/// Alive too, so it cannot go on to convict on a suspicion timer; a stranger repeating
/// it gets nothing.
#[test]
fn accusations_are_answered_with_the_refutation() {
    let (mut victim, _) = node_knowing(3);
    let accusation = packet("peer-0", &[suspect_message("victim", 0, "peer-0")]);
    victim.handle_packet(Time::from_millis(5), addr(1000), &accusation);
    assert_eq!(victim.incarnation(), 1, "the accusation was not refuted");
    assert_eq!(
        victim.stats().accusations_answered,
        1,
        "the accuser was not answered"
    );
    let mut to_accuser = 0;
    while let Some(t) = victim.poll_transmit(Time::from_millis(5), &mut [0u8; 1400]) {
        to_accuser += usize::from(t.destination == addr(1000));
        assert!(to_accuser < 1000);
    }
    assert!(to_accuser >= 1, "nothing went back to the accuser");
    // ... and the refutation's gossip is lost.

    // peer-1 heard the accusation but not the refutation, and repeats it.
    let mut peer1 = node("peer-1", 1001, 1);
    peer1.join(Time::ZERO, &[addr(9)]);
    drain(&mut peer1, Time::ZERO);
    let stale = packet("peer-1", &[suspect_message("victim", 0, "peer-0")]);
    victim.handle_packet(Time::from_millis(6), addr(1001), &stale);
    let answers = drain(&mut victim, Time::from_millis(6));
    assert!(!answers.is_empty(), "the stale accusation went unanswered");
    for a in &answers {
        peer1.handle_packet(Time::from_millis(7), addr(9), a);
    }
    let seen = peer1.member(victim.id()).expect("peer-1 learns the victim");
    assert_eq!((seen.state, seen.incarnation), (MemberState::Alive, 1));
    assert_eq!(victim.stats().accusations_answered, 2);

    // The same accusation from an address that is not peer-1's is not answered.
    victim.handle_packet(Time::from_millis(8), addr(4242), &stale);
    assert!(drain(&mut victim, Time::from_millis(8)).is_empty());
    assert_eq!(victim.stats().accusations_answered, 2);
}

/// A stream of accusations in separate datagrams, all "from" one member (on a cluster
/// without keys, anyone can forge them with that member's address as the source): each
/// would make the victim send its whole Alive back to that member. At most
/// `MAX_ANSWERS_PER_SOURCE` (4) are answered per probe interval; the rest are counted.
#[test]
fn answers_to_accusations_are_budgeted_per_source() {
    let (mut victim, _) = node_knowing(3);
    let cfg = rumor::Config::lan();
    let stale = packet("peer-1", &[suspect_message("victim", 0, "peer-0")]);
    let mut sent_back = 0;
    for i in 0..100u64 {
        victim.handle_packet(Time::from_millis(5 + i), addr(1001), &stale);
        sent_back += drain(&mut victim, Time::from_millis(5 + i)).len();
    }
    let s = victim.stats();
    assert_eq!(s.accusations_answered, 4, "{s:?}");
    assert_eq!(s.answers_refused, 96, "{s:?}");
    assert!(sent_back <= 8, "{sent_back} datagrams went back");
    // Another source has a budget of its own, and the next interval a fresh one.
    let other = packet("peer-2", &[suspect_message("victim", 0, "peer-0")]);
    victim.handle_packet(Time::from_millis(200), addr(1002), &other);
    assert_eq!(victim.stats().accusations_answered, 5);
    let later = Time::from_millis(5) + cfg.probe_interval;
    victim.handle_packet(later, addr(1001), &stale);
    assert_eq!(victim.stats().accusations_answered, 6);
}

/// `Message { ping_req: PingReq { seq, target, target_addr } }` for a member on 127.0.0.1.
fn ping_req_message(seq: u8, target: &str, port: u16) -> Vec<u8> {
    let mut r = vec![0x08, seq & 0x7f, 0x11];
    r.extend_from_slice(&rumor::NodeId::from_name(target).0.to_le_bytes());
    r.extend_from_slice(&[0x1a, 6, 127, 0, 0, 1]);
    r.extend_from_slice(&port.to_be_bytes());
    let mut m = vec![0x1a, r.len() as u8];
    m.extend_from_slice(&r);
    m
}

/// One source asking for relays or syncs in separate datagrams, fast: served up to its
/// per-interval budget, refused and counted beyond it.
#[test]
fn relays_and_syncs_are_budgeted_per_source() {
    let (mut victim, _) = node_knowing(3);
    let cfg = rumor::Config::lan();
    for i in 0..100u8 {
        let p = packet("peer-0", &[ping_req_message(i, "peer-1", 1001)]);
        victim.handle_packet(Time::from_millis(5), addr(1000), &p);
    }
    let s = victim.stats();
    assert_eq!(s.relays_served, cfg.max_relays_per_source as u64);
    assert_eq!(s.relays_refused, 100 - cfg.max_relays_per_source as u64);
    // Another source has a budget of its own.
    let p = packet("peer-2", &[ping_req_message(1, "peer-1", 1001)]);
    victim.handle_packet(Time::from_millis(6), addr(1002), &p);
    assert_eq!(
        victim.stats().relays_served,
        cfg.max_relays_per_source as u64 + 1
    );

    for _ in 0..200 {
        let p = packet("peer-0", &[everything_digest()]);
        victim.handle_packet(Time::from_millis(7), addr(1000), &p);
    }
    let s = victim.stats();
    // The joins that built the victim's view spent part of peer-0's budget already.
    let answered = 200 - s.syncs_refused;
    assert!(
        answered <= cfg.max_syncs_per_source as u64
            && answered + 2 >= cfg.max_syncs_per_source as u64,
        "{answered} digests answered"
    );
    // The next probe interval brings a fresh budget.
    let later = Time::from_millis(7) + cfg.probe_interval;
    victim.handle_packet(later, addr(1000), &packet("peer-0", &[everything_digest()]));
    assert_eq!(victim.stats().syncs_refused, s.syncs_refused);
}
