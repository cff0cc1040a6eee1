//! Protocol behaviour of real `Node`s in the in-process harness.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, addr};
use rumor::{Config, Event, MemberState, Strategy, Time};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// An upper bound on crash → dead at every live member under the phi-monitor strategy,
/// derived from the config: a monitor's silence to convict under a steady rhythm
/// (`probe_interval + acceptable_pause + y(phi_convict) × min_std_dev`), plus one period
/// for the deadline to land after an indirect round, plus dissemination to everyone by
/// gossip (`ceil(log2 n)` gossip rounds, doubled for loss of a round), plus slack for
/// the detector's measured jitter.
fn crash_detection_bound(cfg: &Config, n: usize) -> Duration {
    let y = rumor::detector::y_for_phi(cfg.phi_convict);
    let convict = cfg.probe_interval + cfg.acceptable_pause + cfg.min_std_dev.mul_f64(y);
    let rounds = (n as f64).log2().ceil() as u32 * 2;
    convict + cfg.probe_interval + cfg.probe_timeout + cfg.gossip_interval * rounds
}

#[test]
fn three_nodes_join_and_converge() {
    let mut c = Cluster::new(3, Config::lan(), 1);
    c.join_all();
    assert!(c.run_until_converged(secs(5.0)), "3 nodes did not converge");
    for i in 0..3 {
        let n = c.slots[i].node();
        assert!(n.is_joined(), "node {i} not joined");
        assert!(n.is_synced(), "node {i} not synced");
        assert_eq!(
            c.events_where(i, |e| matches!(e, Event::JoinedCluster))
                .len(),
            1
        );
        assert_eq!(
            c.events_where(i, |e| matches!(e, Event::MemberJoined(_)))
                .len(),
            2
        );
    }
}

#[test]
fn fifty_nodes_join_and_converge() {
    let mut c = Cluster::new(50, Config::lan(), 2);
    c.join_all();
    assert!(
        c.run_until_converged(secs(10.0)),
        "50 nodes did not converge"
    );
    // No one was suspected while joining on a clean network.
    for i in 0..50 {
        assert!(
            c.events_where(i, |e| matches!(e, Event::MemberSuspected { .. }))
                .is_empty()
        );
    }
}

fn crash_is_detected_by_all(strategy: Strategy, n: usize, seed: u64, bound: Duration) {
    let mut cfg = Config::lan();
    cfg.strategy = strategy;
    let mut c = Cluster::new(n, cfg, seed);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    c.run_for(secs(20.0)); // fill the detectors' history
    let crashed = 7 % n;
    let t0 = c.now;
    c.crash(crashed);
    c.run_for(bound + secs(1.0));
    for i in (0..n).filter(|&i| i != crashed) {
        let at = c
            .dead_at(i, crashed)
            .unwrap_or_else(|| panic!("{strategy}: node {i} never saw the crash"));
        assert!(
            at - t0 <= bound,
            "{strategy}: node {i} saw the crash after {:?} > {bound:?}",
            at - t0
        );
        assert_eq!(c.state_at(i, crashed), Some(MemberState::Dead));
    }
    // And nobody else was convicted.
    for j in (0..n).filter(|&j| j != crashed) {
        assert!(
            !c.anyone_declared_dead(j),
            "{strategy}: live node {j} convicted"
        );
    }
}

#[test]
fn crash_is_detected_by_all_within_the_derived_bound() {
    let cfg = Config::lan();
    crash_is_detected_by_all(
        Strategy::PhiMonitors,
        20,
        3,
        crash_detection_bound(&cfg, 20),
    );
}

#[test]
fn crash_is_detected_under_swim_and_lifeguard() {
    // SWIM: the member is probed within 2n − 1 periods, then ping-req, then the fixed
    // suspicion timeout (suspicion_mult × max(1, log10 n) × T), then dissemination.
    let cfg = Config::lan();
    let n = 12;
    let probe = cfg.probe_interval * (2 * n as u32 - 1) + cfg.probe_interval;
    let suspicion = cfg.suspicion_min_timeout(n);
    let spread = cfg.gossip_interval * 16;
    crash_is_detected_by_all(Strategy::Swim, n, 4, probe + suspicion + spread);
    // Lifeguard: the timeout starts at suspicion_max_mult × min and shrinks with
    // confirmations; with one prober per period confirmations are slow, so allow max.
    let suspicion = suspicion * cfg.suspicion_max_mult;
    crash_is_detected_by_all(Strategy::Lifeguard, n, 5, probe + suspicion + spread);
}

#[test]
fn short_pause_is_never_convicted_and_refutes() {
    let cfg = Config::lan();
    let pause = cfg.acceptable_pause.mul_f64(0.9);
    let mut c = Cluster::new(12, cfg, 6);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    c.run_for(secs(20.0));
    let paused = 3;
    let inc_before = c.slots[paused].node().incarnation();
    c.pause(paused, pause);
    c.run_for(pause + secs(10.0));
    assert!(
        !c.anyone_declared_dead(paused),
        "a member paused below acceptable_pause was convicted"
    );
    // It was suspected while silent and refuted on resume.
    let refuted = c.events_where(paused, |e| matches!(e, Event::SelfRefuted { .. }));
    assert!(!refuted.is_empty(), "the paused member never refuted");
    assert!(c.slots[paused].node().incarnation() > inc_before);
    assert!(c.converged(), "cluster did not settle after the pause");
}

#[test]
fn long_pause_is_convicted_then_rejoins_at_higher_incarnation() {
    let cfg = Config::lan();
    let pause = cfg.acceptable_pause * 4;
    let mut c = Cluster::new(10, cfg, 7);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    c.run_for(secs(20.0));
    let paused = 4;
    let inc_before = c.slots[paused].node().incarnation();
    c.pause(paused, pause);
    c.run_for(pause);
    assert!(
        c.anyone_declared_dead(paused),
        "a member paused 4× acceptable_pause was not convicted"
    );
    for i in (0..10).filter(|&i| i != paused) {
        assert_eq!(
            c.state_at(i, paused),
            Some(MemberState::Dead),
            "observer {i}"
        );
    }
    // On resume it hears it is dead, refutes above that incarnation and is back.
    assert!(
        c.run_until_converged(secs(15.0)),
        "the convicted member did not rejoin"
    );
    assert!(c.slots[paused].node().incarnation() > inc_before);
    for i in (0..10).filter(|&i| i != paused) {
        let rejoined = c.events_where(
            i,
            |e| matches!(e, Event::MemberJoined(m) if m.id == c.id(paused)),
        );
        assert_eq!(
            rejoined.len(),
            2,
            "observer {i} should see it join, then rejoin"
        );
    }
}

#[test]
fn stalled_observer_convicts_no_healthy_peer() {
    let cfg = Config::lan();
    // Longer than anything could survive had the observer trusted its own clock.
    let stall = cfg.acceptable_pause * 5;
    let mut c = Cluster::new(10, cfg, 8);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    c.run_for(secs(20.0));
    let observer = 2;
    c.pause(observer, stall);
    c.run_for(stall + secs(10.0));
    let convicted = c.events_where(observer, |e| matches!(e, Event::MemberDead { .. }));
    assert!(
        convicted.is_empty(),
        "stalled observer convicted {convicted:?}"
    );
    let stats = c.slots[observer].node().stats();
    assert!(
        stats.stalls_detected >= 1,
        "the observer did not notice its own stall"
    );
    // The others convicted the observer (it was silent far past acceptable_pause) and it
    // rejoined; no healthy peer was convicted by anyone.
    for j in (0..10).filter(|&j| j != observer) {
        assert!(!c.anyone_declared_dead(j), "healthy node {j} convicted");
    }
    assert!(c.converged());
}

#[test]
fn leave_is_seen_as_left_never_dead() {
    let mut c = Cluster::new(8, Config::lan(), 9);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    c.run_for(secs(5.0));
    let leaver = 5;
    c.leave(leaver);
    c.run_for(secs(2.0));
    assert_eq!(
        c.slots[leaver].node().pending_updates(),
        0,
        "Leave still queued after 2 s"
    );
    c.crash(leaver); // the process exits after its drain delay
    c.run_for(secs(30.0));
    for i in (0..8).filter(|&i| i != leaver) {
        assert_eq!(
            c.state_at(i, leaver),
            Some(MemberState::Left),
            "observer {i}"
        );
        assert_eq!(
            c.events_where(i, |e| matches!(e, Event::MemberLeft(_)))
                .len(),
            1
        );
    }
    assert!(!c.anyone_declared_dead(leaver));
}

#[test]
fn metadata_updates_spread() {
    let mut c = Cluster::new(20, Config::lan(), 10);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    let who = 11;
    c.with_node(who, |n, now| {
        n.set_metadata(now, Bytes::from_static(b"zone=b")).unwrap()
    });
    c.run_for(secs(3.0));
    let id = c.id(who);
    for i in (0..20).filter(|&i| i != who) {
        let m = c.slots[i].node().member(id).unwrap();
        assert_eq!(&m.metadata[..], b"zone=b", "observer {i}");
        let updated = c.events_where(i, |e| matches!(e, Event::MemberUpdated(m) if m.id == id));
        assert_eq!(updated.len(), 1, "observer {i}");
    }
    // Oversized metadata is refused and changes nothing.
    let big = Bytes::from(vec![0u8; c.cfg.max_metadata_size + 1]);
    let inc = c.slots[who].node().incarnation();
    assert!(c.with_node(who, |n, now| n.set_metadata(now, big)).is_err());
    assert_eq!(c.slots[who].node().incarnation(), inc);
}

#[test]
fn each_broadcast_is_delivered_exactly_once_per_node() {
    let mut c = Cluster::new(30, Config::lan(), 11);
    c.loss = 0.02;
    c.join_all();
    assert!(c.run_until_converged(secs(15.0)));
    for k in 0..10u8 {
        let origin = (k as usize * 7) % 30;
        c.with_node(origin, |n, now| {
            n.broadcast(now, Bytes::from(vec![k; 100])).unwrap()
        });
        c.run_for(secs(0.3));
    }
    c.run_for(secs(10.0));
    for i in 0..30 {
        let got = c.events_where(i, |e| matches!(e, Event::Broadcast { .. }));
        let mut payloads: Vec<u8> = got
            .iter()
            .map(|(_, e)| match e {
                Event::Broadcast { payload, .. } => payload[0],
                _ => unreachable!(),
            })
            .collect();
        payloads.sort();
        let expected: Vec<u8> = (0..10u8).filter(|k| (*k as usize * 7) % 30 != i).collect();
        assert_eq!(payloads, expected, "node {i}");
    }
}

#[test]
fn restarted_node_with_fresh_incarnation_is_not_stuck_dead() {
    let mut c = Cluster::new(8, Config::lan(), 12);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    c.run_for(secs(10.0));
    let r = 6;
    // Bump its incarnation a few times so the restart's incarnation 0 is stale.
    for _ in 0..3 {
        c.with_node(r, |n, now| {
            n.set_metadata(now, Bytes::from_static(b"v")).unwrap()
        });
    }
    c.run_for(secs(2.0));
    c.crash(r);
    c.run_for(secs(15.0));
    assert_eq!(c.state_at(0, r), Some(MemberState::Dead));
    c.restart(r, 0, &[addr(0)]);
    assert!(
        c.run_until_converged(secs(15.0)),
        "restarted node stuck dead"
    );
    assert!(c.slots[r].node().incarnation() > 3);
}

#[test]
fn a_node_without_seeds_is_a_cluster_of_one() {
    let mut c = Cluster::new(1, Config::lan(), 13);
    c.join(0, &[]);
    c.run_for(secs(5.0));
    let n = c.slots[0].node();
    assert!(n.is_joined() && n.is_synced());
    assert_eq!(n.live_count(), 1);
    assert_eq!(n.stats().probes_sent, 0);
}

#[test]
fn convergence_under_loss_without_false_convictions() {
    let mut c = Cluster::new(30, Config::lan(), 14);
    c.loss = 0.05;
    c.join_all();
    assert!(c.run_until_converged(secs(20.0)));
    c.run_for(secs(120.0));
    for j in 0..30 {
        assert!(
            !c.anyone_declared_dead(j),
            "node {j} convicted under 5% loss"
        );
    }
}

#[test]
fn same_seed_same_events() {
    let run = |seed: u64| {
        let mut c = Cluster::new(15, Config::lan(), seed);
        c.loss = 0.01;
        c.join_all();
        c.run_for(secs(10.0));
        c.crash(3);
        c.pause(5, secs(2.0));
        c.run_for(secs(20.0));
        let events: Vec<Vec<(Time, Event)>> = c.slots.iter().map(|s| s.events.clone()).collect();
        let stats: Vec<_> = c
            .slots
            .iter()
            .filter_map(|s| s.node.as_ref().map(|n| n.stats()))
            .collect();
        (events, stats)
    };
    let a = run(77);
    let b = run(77);
    assert!(a == b, "same seed gave different runs");
    let c = run(78);
    assert!(a.1 != c.1, "different seeds gave identical stats");
}

#[test]
fn degraded_observer_convicts_no_healthy_peer() {
    // One node loses most datagrams sent to it. It must not turn its own trouble into
    // convictions of healthy peers (Lifeguard's promise, kept under phi monitors by
    // withheld suspicions, a refutation window and health-stretched deadlines).
    for loss in [0.7, 0.85] {
        let mut c = Cluster::new(10, Config::lan(), 15);
        c.join_all();
        assert!(c.run_until_converged(secs(10.0)));
        let degraded = 4;
        c.inbound_loss.insert(degraded, loss);
        c.run_for(secs(300.0));
        // It did see its probes fail: the test exercises the degraded path.
        let st = c.slots[degraded].node().stats();
        assert!(
            st.probes_failed >= 5 && st.indirect_probes >= 20,
            "loss {loss}: {st:?}"
        );
        for j in (0..10).filter(|&j| j != degraded) {
            for i in 0..10 {
                assert!(
                    c.dead_at(i, j).is_none(),
                    "loss {loss}: node {i} saw healthy node {j} dead"
                );
            }
        }
    }
}

#[test]
fn a_real_death_does_not_cost_its_monitors_local_health() {
    // Helpers that nack a failed probe show the prober's own links work: the failure is
    // the target's, and the prober's health must not rise (under phi monitors each point
    // would push the dead member's conviction a period later). A node that hears no
    // nacks at all is the one in trouble, and its health rises.
    for strategy in [Strategy::PhiMonitors, Strategy::Lifeguard] {
        let mut cfg = Config::lan();
        cfg.strategy = strategy;
        // A probe round takes probe_timeout twice (direct, then indirect): at 300 ms it
        // ends 400 ms before the next round's acks, rather than at the very instant the
        // next round starts, where a point of health would last one network delay. Real
        // timers never tie like that (the chaos run's escaped pause).
        cfg.probe_timeout = Duration::from_millis(300);
        let n = 8;
        let mut c = Cluster::new(n, cfg, 21);
        c.join_all();
        assert!(c.run_until_converged(secs(10.0)));
        c.run_for(secs(20.0));
        c.crash(3);
        let mut failed = 0;
        for _ in 0..600 {
            c.run_for(secs(0.01));
            for i in (0..n).filter(|&i| i != 3) {
                let node = c.slots[i].node();
                failed += node.stats().probes_failed;
                assert_eq!(
                    node.local_health(),
                    0,
                    "{strategy}: node {i} blamed itself for node 3's death at {}",
                    c.now
                );
            }
        }
        assert!(failed > 0, "{strategy}: no probe of the dead member failed");
        assert!(c.dead_at(0, 3).is_some() || c.dead_at(1, 3).is_some());

        // Now node 5 hears nothing: its probes fail and no helper's nack reaches it.
        c.inbound_loss.insert(5, 1.0);
        c.run_for(secs(5.0));
        assert!(
            c.slots[5].node().local_health() > 0,
            "{strategy}: a deaf node kept full health"
        );
    }
}

#[test]
fn lifeguard_confirmations_shorten_the_suspicion() {
    // Under Lifeguard every prober that fails on an already-suspected member confirms
    // the suspicion, so a crash is convicted well before the maximum timeout.
    let mut cfg = Config::lan();
    cfg.strategy = Strategy::Lifeguard;
    let n = 12;
    let max = cfg.suspicion_min_timeout(n) * cfg.suspicion_max_mult;
    let mut c = Cluster::new(n, cfg, 16);
    c.join_all();
    assert!(c.run_until_converged(secs(10.0)));
    c.run_for(secs(10.0));
    c.crash(3);
    let t0 = c.now;
    c.run_for(max + secs(30.0));
    let first_suspicion = (0..n)
        .filter(|&i| i != 3)
        .filter_map(|i| {
            c.slots[i]
                .events
                .iter()
                .find(|(_, e)| matches!(e, Event::MemberSuspected { member, .. } if member.id == c.id(3)))
                .map(|(t, _)| *t)
        })
        .min()
        .expect("the crash was never suspected");
    let dead = (0..n)
        .filter(|&i| i != 3)
        .filter_map(|i| c.dead_at(i, 3))
        .min()
        .expect("never convicted");
    assert!(
        dead - first_suspicion < max,
        "convicted {:?} after the first suspicion: the maximum timeout",
        dead - first_suspicion
    );
    assert!(dead > t0);
}

#[test]
fn a_join_storm_under_loss_converges() {
    // 50 nodes joining at once through one seed over a 5% lossy network: every node
    // ends up knowing every other. Guards against a joiner's news being spent on the
    // joiner itself and against a node nobody knows being unable to push-pull.
    let mut c = Cluster::new(50, Config::lan(), 17);
    c.loss = 0.05;
    c.join_all();
    // A member whose entry was lost from a joiner's sync answer is filled in by the next
    // push-pull (every 60 s at this size, the first at 0.5–1.5 of that): allow two.
    assert!(
        c.run_until_converged(secs(150.0)),
        "50 nodes under 5% loss did not converge within 150 s"
    );
}

/// A member convicted by silence stays a reconnect candidate after `dead_retention`
/// forgets it (a long partition must still heal), but not once another member lives at
/// its address: a knock there would only fetch that member's whole state, every
/// interval, for `reconnect_timeout`.
#[test]
fn a_reused_address_is_no_longer_knocked_on() {
    let mut cfg = Config::lan();
    cfg.dead_retention = Duration::from_secs(10);
    cfg.reconnect_interval = Duration::from_secs(1);
    let mut c = Cluster::settled(3, cfg.clone(), 5);
    c.run_for(Duration::from_secs(5));
    c.crash(2);
    c.run_for(Duration::from_secs(30));
    assert!(c.dead_at(0, 2).is_some(), "the crash was not convicted");
    let knocks = |c: &Cluster| c.slots[0].node().stats().reconnects;
    let before = knocks(&c);
    c.run_for(Duration::from_secs(20));
    assert!(
        knocks(&c) > before,
        "a forgotten candidate is still knocked on"
    );

    // Another process, under another name, takes the address.
    let id = rumor::Identity::new("newcomer", addr(2));
    let now = c.now;
    c.slots[2].node = Some(rumor::Node::new(id, cfg, 99, now).expect("valid config"));
    c.join(2, &[addr(0)]);
    c.run_for(Duration::from_secs(5));
    assert!(
        c.slots[0]
            .node()
            .members()
            .any(|m| m.name() == "newcomer" && m.state.is_live()),
        "the newcomer did not join"
    );
    let settled = knocks(&c);
    c.run_for(Duration::from_secs(30));
    assert_eq!(
        knocks(&c),
        settled,
        "kept knocking on the newcomer's address"
    );
}

/// Issue 20, finding 4: one stall is one stall. The backlog a paused node reads when it
/// resumes (every datagram at the same instant) used to count once per datagram (43 for
/// a 2 s pause), and each count pushed every open suspicion back by the whole stall.
#[test]
fn a_pause_counts_as_one_stall() {
    let cfg = Config::lan();
    let mut c = Cluster::settled(10, cfg, 21);
    c.run_for(secs(10.0));
    let observer = 3;
    let before = c.slots[observer].node().stats().stalls_detected;
    c.pause(observer, secs(2.0));
    c.run_for(secs(5.0));
    let after = c.slots[observer].node().stats().stalls_detected;
    assert_eq!(
        after - before,
        1,
        "a 2 s pause counted as {} stalls",
        after - before
    );
}

/// Issue 20, finding 4: a driver that calls `join` a while after `Node::new` (a service
/// that builds the node, then resolves its seeds) is not a stalled process.
#[test]
fn a_late_join_is_not_a_stall() {
    use rumor::{Identity, Node};
    let cfg = Config::lan();
    let mut node = Node::new(Identity::new("a", addr(0)), cfg, 1, Time::ZERO).unwrap();
    // Nothing drives it for 2 s; then it joins and runs on time.
    node.join(Time::from_secs(2), &[addr(1)]);
    let mut buf = vec![0u8; 2048];
    while node.poll_transmit(Time::from_secs(2), &mut buf).is_some() {}
    let mut now = Time::from_secs(2);
    for _ in 0..100 {
        now = node.poll_timeout().unwrap_or(now).max(now);
        node.handle_timeout(now);
        while node.poll_transmit(now, &mut buf).is_some() {}
    }
    assert_eq!(node.stats().stalls_detected, 0);
}

/// Issue 20, finding 4: a driver that always calls `handle_timeout` somewhat late (past
/// `stall_threshold`) looks stalled again and again; every late call used to push every
/// open suspicion back, so under SWIM a crashed member stayed Suspect for good. Each
/// suspicion is now held back by at most its longest timeout, so it still ends.
#[test]
fn a_driver_that_is_always_late_still_convicts_a_crash() {
    for strategy in [Strategy::Swim, Strategy::Lifeguard, Strategy::PhiMonitors] {
        let mut cfg = Config::lan();
        cfg.strategy = strategy;
        let n = 6;
        let mut c = Cluster::settled(n, cfg.clone(), 23);
        c.run_for(secs(10.0));
        let late = cfg.stall_threshold + Duration::from_millis(100);
        for i in 0..n {
            c.late.insert(i, late);
        }
        let crashed = 4;
        c.crash(crashed);
        // Silence to suspect, the longest suspicion timeout twice over (the budget the
        // stalls may use), the guard and gossip: generous, and finite.
        let max = cfg.suspicion_min_timeout(n) * cfg.suspicion_max_mult;
        c.run_for(cfg.acceptable_pause + max * 2 + secs(30.0));
        for i in (0..n).filter(|&i| i != crashed) {
            assert_eq!(
                c.state_at(i, crashed),
                Some(MemberState::Dead),
                "{strategy}: node {i} never convicted the crash"
            );
        }
    }
}

/// Nodes that join together must not push-pull together for ever after (issue 26): a
/// push-pull is a whole member table each way, and a cluster whose members all sync in
/// the same instant sends N tables at once every interval (one 2,000-node window on
/// loopback: 0 push-pulls, the next 57,900), while a simultaneous join finished only
/// in steps at the early rounds. 32 nodes (one push-pull interval, 30 s, no scaling)
/// join at one instant; from 60 s on, no 2-second window may hold more than a fifth of
/// the cluster's push-pulls of one interval. Without jitter every node's rounds stay
/// on the phase its join gave it, and a window held all 32.
#[test]
fn push_pulls_of_nodes_that_joined_together_spread_out() {
    let n = 32;
    let mut c = Cluster::new(n, Config::lan(), 7);
    c.join_all();
    assert!(c.run_until_converged(Duration::from_secs(10)));
    let total = |c: &Cluster| -> u64 {
        (0..n)
            .map(|i| c.slots[i].node().stats().sync_digests_sent)
            .sum()
    };
    c.run_for(Duration::from_secs(60) - c.now.saturating_since(Time::ZERO));
    let window = Duration::from_secs(2);
    let mut counts = Vec::new();
    let mut before = total(&c);
    for _ in 0..60 {
        c.run_for(window);
        let now = total(&c);
        counts.push(now - before);
        before = now;
    }
    let sum: u64 = counts.iter().sum();
    let max = counts.iter().copied().max().unwrap_or(0);
    // 120 s of a 30 s interval: about 4 rounds per node.
    assert!(
        sum >= 3 * n as u64,
        "push-pulls went missing: {sum} in 120 s"
    );
    assert!(
        max <= n as u64 / 5,
        "push-pulls in phase: {max} of the cluster's {n} per interval in one 2 s window ({counts:?})"
    );
}
