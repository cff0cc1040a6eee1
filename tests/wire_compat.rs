//! Rolling upgrades: datagrams recorded from the previous wire format (commit 3fe7e4a,
//! before `Packet.token`; `tests/data/wire-3fe7e4a/record.rs` says how) are read by
//! today's node, which converges with what they say.
//!
//! Each of the three recorded nodes is replaced by today's `Node` with the same name,
//! address, incarnation and config, fed every datagram the old nodes sent it, at the
//! recorded times plus the recording's 1 ms of latency, its timers fired in between.
//! What it sends goes nowhere (the old nodes cannot answer from a recording), so the
//! checks are about what it read: nothing refused as undecodable or foreign, the join
//! and first sync done, every member known, the metadata update and the leave applied.
//! The other direction, old readers skipping today's new fields, is protobuf's rule for
//! unknown fields; the wire tests pin each addition as a new field number.

mod recorded;

use std::net::SocketAddr;
use std::time::Duration;

use recorded::Datagram;
use rumor::{Config, Event, Identity, MemberState, Node, Time};

fn recorded() -> Vec<Datagram> {
    recorded::parse(include_str!("data/wire-3fe7e4a/datagrams.txt"))
}

/// Today's node in the place of recorded node `i`, fed the recording up to `until`.
fn replay(i: usize, until: Time) -> (Node, Vec<Event>) {
    let names = ["a", "b", "c"];
    let addr: SocketAddr = format!("10.0.0.{}:7946", i + 1).parse().unwrap();
    let mut id = Identity::new(names[i], addr);
    id.incarnation = 100 + i as u64;
    let mut node = Node::new(id, Config::lan(), 7 + i as u64, Time::ZERO).unwrap();
    let seeds: Vec<SocketAddr> = if i == 0 {
        Vec::new()
    } else {
        vec!["10.0.0.1:7946".parse().unwrap()]
    };
    node.join(Time::ZERO, &seeds);
    let mut buf = vec![0u8; 1400];
    let mut events = Vec::new();
    let mut drain = |n: &mut Node, now: Time, events: &mut Vec<Event>| {
        while n.poll_transmit(now, &mut buf).is_some() {}
        while let Some(e) = n.poll_event() {
            events.push(e);
        }
    };
    let latency = Duration::from_millis(1);
    for d in recorded().into_iter().filter(|d| d.to == addr) {
        let at = d.at + latency;
        if at > until {
            break;
        }
        // Fire every timer due before the datagram arrives, bounded in count.
        for _ in 0..100_000 {
            match node.poll_timeout() {
                Some(t) if t <= at => {
                    node.handle_timeout(t);
                    drain(&mut node, t, &mut events);
                }
                _ => break,
            }
        }
        node.handle_packet(at, d.from, &d.bytes);
        drain(&mut node, at, &mut events);
    }
    (node, events)
}

fn has(events: &[Event], pred: impl Fn(&Event) -> bool) -> bool {
    events.iter().any(pred)
}

#[test]
fn the_recording_is_the_previous_format() {
    let all = recorded();
    assert!(all.len() > 200, "{} datagrams", all.len());
    // Field 9 (`token`, fixed32: tag byte 0x4d) is today's first field of a packet
    // that carries a ping; no recorded datagram starts with it.
    assert!(all.iter().all(|d| d.bytes.first() != Some(&0x4d)));
}

#[test]
fn todays_nodes_read_the_previous_format_and_converge() {
    let until = Time::ZERO + Duration::from_secs(13);
    for i in 0..3 {
        let (node, events) = replay(i, until);
        let stats = node.stats();
        assert!(
            stats.packets_in > 30,
            "node {i} read {} datagrams",
            stats.packets_in
        );
        assert_eq!(stats.decode_errors_total(), 0, "node {i}: {stats:?}");
        assert_eq!(stats.cluster_mismatch, 0, "node {i}");
        assert_eq!(stats.messages_rejected, 0, "node {i}");
        assert!(
            node.is_joined() && node.is_synced(),
            "node {i} never synced"
        );
        let names: Vec<String> = node.members().map(|m| m.name().to_string()).collect();
        let others: Vec<&str> = ["a", "b", "c"]
            .into_iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n)
            .collect();
        for o in &others {
            assert!(
                names.iter().any(|n| n == o),
                "node {i} never learned {o}: {names:?}"
            );
        }
        if i != 0 {
            // a's metadata update at 5 s, at its new incarnation.
            let a = node.members().find(|m| m.name() == "a").expect("a");
            assert_eq!(&a.metadata[..], b"zone=a", "node {i}");
            assert!(has(
                &events,
                |e| matches!(e, Event::MemberUpdated(m) if m.name() == "a")
            ));
        }
        if i != 2 {
            // c's leave at 12 s.
            let c = node.members().find(|m| m.name() == "c").expect("c");
            assert_eq!(c.state, MemberState::Left, "node {i}");
            assert!(has(
                &events,
                |e| matches!(e, Event::MemberLeft(m) if m.name() == "c")
            ));
        }
    }
}
