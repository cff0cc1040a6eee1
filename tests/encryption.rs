//! Sealed packets: a keyed cluster works as a plaintext one does; packets sealed with an
//! unknown key, plaintext (unless migrating) and packets of another cluster are dropped
//! and counted; a key rotation (add everywhere, use everywhere, remove everywhere)
//! convicts no one.

mod common;

use std::time::Duration;

use common::Cluster;
use rumor::{Config, Key, Keyring, MemberState, Time};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn key(b: u8) -> Key {
    Key::from_bytes([b; 32])
}

fn keyed(k: Key) -> Config {
    let mut cfg = Config::lan();
    cfg.keyring = Keyring::new(k);
    cfg
}

#[test]
fn a_keyed_cluster_converges_and_detects_a_crash() {
    let mut c = Cluster::settled(10, keyed(key(1)), 1);
    c.run_for(secs(20.0));
    c.crash(4);
    c.run_for(secs(12.0));
    for i in (0..10).filter(|&i| i != 4) {
        assert_eq!(c.state_at(i, 4), Some(MemberState::Dead));
        let s = c.slots[i].node().stats();
        assert_eq!((s.auth_failures, s.plaintext_refused), (0, 0));
    }
}

#[test]
fn a_wrong_key_or_plaintext_cannot_join_and_is_counted() {
    let mut c = Cluster::settled(4, keyed(key(1)), 2);
    // Node 3 loses its key and takes another: nobody can read it, it reads nobody.
    c.with_node(3, |n, _| {
        n.keyring_add(key(9)).unwrap();
        n.keyring_use(&key(9)).unwrap();
        n.keyring_remove(&key(1)).unwrap();
    });
    c.run_for(secs(30.0));
    let failures: u64 = (0..3)
        .map(|i| c.slots[i].node().stats().auth_failures)
        .sum();
    assert!(
        failures > 0,
        "sealed packets under an unknown key were not counted"
    );
    assert!(c.slots[3].node().stats().auth_failures > 0);
    for i in 0..3 {
        assert_ne!(
            c.state_at(i, 3),
            Some(MemberState::Alive),
            "node {i} still hears 3"
        );
    }
}

#[test]
fn plaintext_is_refused_unless_migrating() {
    let mut plain = Config::lan();
    plain.cluster_label = "rumor".into();
    let mut c = Cluster::settled(3, plain, 3);
    // One packet from a plaintext member to a keyed node.
    let mut keyed_cfg = keyed(key(1));
    let mut victim = rumor::Node::new(
        rumor::Identity::new("keyed", common::addr(50)),
        keyed_cfg.clone(),
        7,
        Time::ZERO,
    )
    .unwrap();
    let mut buf = [0u8; 1400];
    let datagram = c.with_node(0, |n, now| {
        n.join(now, &[common::addr(50)]);
        let t = n.poll_transmit(now, &mut buf).expect("a join datagram");
        buf[..t.len].to_vec()
    });
    victim.handle_packet(Time::from_millis(1), common::addr(0), &datagram);
    assert_eq!(victim.stats().plaintext_refused, 1);
    assert_eq!(victim.live_count(), 1);
    // The migration setting accepts it.
    keyed_cfg.accept_plaintext = true;
    let mut migrating = rumor::Node::new(
        rumor::Identity::new("keyed", common::addr(50)),
        keyed_cfg,
        7,
        Time::ZERO,
    )
    .unwrap();
    migrating.handle_packet(Time::from_millis(1), common::addr(0), &datagram);
    assert_eq!(migrating.stats().plaintext_refused, 0);
    assert!(
        migrating.live_count() > 1,
        "the plaintext packet was not accepted"
    );
}

#[test]
fn another_clusters_sealed_packets_fail_authentication_under_the_same_key() {
    let mut a = keyed(key(1));
    a.cluster_label = "a".into();
    let mut b = keyed(key(1));
    b.cluster_label = "b".into();
    let mut na =
        rumor::Node::new(rumor::Identity::new("x", common::addr(1)), a, 1, Time::ZERO).unwrap();
    let mut nb =
        rumor::Node::new(rumor::Identity::new("y", common::addr(2)), b, 2, Time::ZERO).unwrap();
    nb.join(Time::ZERO, &[common::addr(1)]);
    let mut buf = [0u8; 1400];
    let t = nb.poll_transmit(Time::ZERO, &mut buf).unwrap();
    na.handle_packet(Time::from_millis(1), common::addr(2), &buf[..t.len]);
    assert_eq!(na.stats().auth_failures, 1);
    assert_eq!(na.live_count(), 1);
}

#[test]
fn a_key_rotation_convicts_no_one() {
    let n = 12;
    let mut c = Cluster::settled(n, keyed(key(1)), 4);
    c.run_for(secs(10.0));
    c.loss = 0.01;
    // Each step reaches the members one by one, a few hundred ms apart, as a rolling
    // change does; the next step starts only once every member has done this one.
    let steps: [&dyn Fn(&mut rumor::Node); 3] = [
        &|node| node.keyring_add(key(2)).unwrap(),
        &|node| node.keyring_use(&key(2)).unwrap(),
        &|node| node.keyring_remove(&key(1)).unwrap(),
    ];
    for step in steps {
        for i in 0..n {
            c.with_node(i, |node, _| step(node));
            c.run_for(secs(0.3));
        }
        c.run_for(secs(5.0));
    }
    c.run_for(secs(20.0));
    for j in 0..n {
        assert!(
            !c.anyone_declared_dead(j),
            "node {j} was convicted during the rotation"
        );
    }
    for i in 0..n {
        let node = c.slots[i].node();
        assert_eq!(node.keyring().keys(), &[key(2)]);
        assert_eq!(node.stats().auth_failures, 0, "node {i} dropped packets");
    }
    assert!(c.converged());
}
