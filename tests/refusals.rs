//! Crash versus pause: a crashed process's closed port is reported as refusals, which
//! convict in `refusal_window`; a paused process produces none, so it is never convicted
//! before `acceptable_pause`, whatever forged refusals say.

mod common;

use std::time::Duration;

use common::Cluster;
use rumor::{Cause, Config, Event, MemberState, Strategy};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A cluster tuned for 8-second pauses, as issue 7's targets are set.
fn tolerant() -> Config {
    let mut cfg = Config::lan();
    cfg.acceptable_pause = Duration::from_secs(8);
    cfg
}

fn settled(n: usize, cfg: Config, seed: u64) -> Cluster {
    let mut c = Cluster::settled(n, cfg, seed);
    c.run_for(secs(20.0)); // fill the detectors' history
    c
}

/// The refusal path's bound: the first datagram sent to the dead port within one period
/// (every monitor pings it each period), the window, then dissemination of Dead by gossip
/// (`ceil(log2 n)` rounds, doubled for loss of a round), plus one probe timeout of slack.
fn refusal_bound(cfg: &Config, n: usize) -> Duration {
    let rounds = (n as f64).log2().ceil() as u32 * 2;
    cfg.probe_interval + cfg.refusal_window + cfg.gossip_interval * rounds + cfg.probe_timeout
}

fn process_crash_is_convicted_fast(strategy: Strategy, seed: u64) {
    let mut cfg = tolerant();
    cfg.strategy = strategy;
    let n = 20;
    let bound = refusal_bound(&cfg, n);
    // The silence path could not be this fast: it waits out the 8 s pause at least.
    assert!(bound < cfg.acceptable_pause);
    let mut c = settled(n, cfg, seed);
    let crashed = 5;
    let t0 = c.now;
    c.crash_process(crashed);
    c.run_for(bound + secs(1.0));
    for i in (0..n).filter(|&i| i != crashed) {
        let at = c
            .dead_at(i, crashed)
            .unwrap_or_else(|| panic!("{strategy}: node {i} never convicted the crash"));
        assert!(
            at - t0 <= bound,
            "{strategy}: node {i} convicted after {:?} > {bound:?}",
            at - t0
        );
    }
    let by_refusal: usize = (0..n)
        .map(|i| {
            c.events_where(i, |e| {
                matches!(
                    e,
                    Event::MemberDead {
                        cause: Cause::Refused,
                        ..
                    }
                )
            })
            .len()
        })
        .sum();
    assert!(by_refusal >= n - 1, "Dead did not carry cause Refused");
    for j in (0..n).filter(|&j| j != crashed) {
        assert!(
            !c.anyone_declared_dead(j),
            "{strategy}: live node {j} convicted"
        );
    }
}

#[test]
fn a_crashed_process_is_convicted_within_the_refusal_window() {
    process_crash_is_convicted_fast(Strategy::PhiMonitors, 11);
}

#[test]
fn refusals_convict_fast_under_lifeguard_too() {
    process_crash_is_convicted_fast(Strategy::Lifeguard, 12);
}

#[test]
fn a_host_crash_is_left_to_the_silence_path() {
    let cfg = tolerant();
    let n = 12;
    let bound = refusal_bound(&cfg, n);
    let mut c = settled(n, cfg.clone(), 13);
    let crashed = 4;
    c.crash(crashed);
    c.run_for(bound);
    assert!(
        !c.anyone_declared_dead(crashed),
        "a silent crash was convicted before acceptable_pause"
    );
    c.run_for(cfg.acceptable_pause + secs(10.0));
    for i in (0..n).filter(|&i| i != crashed) {
        assert_eq!(c.state_at(i, crashed), Some(MemberState::Dead));
    }
}

#[test]
fn forged_refusals_against_a_live_member_convict_no_one() {
    let cfg = tolerant();
    let n = 12;
    let mut c = settled(n, cfg, 14);
    let victim = 3;
    // Every other node is told, again and again, that the victim's port is closed, by a
    // forger on the path: each forgery copies a probe its observer really sent, so it
    // proves itself, and only the victim's refutation saves it.
    for round in 0..10 {
        for o in (0..n).filter(|&o| o != victim) {
            c.forge_refusal_on_path(o, victim);
        }
        c.run_for(secs(0.5 + f64::from(round % 3) * 0.1));
    }
    c.run_for(secs(20.0));
    assert!(
        !c.anyone_declared_dead(victim),
        "forged refusals convicted a live member"
    );
    assert!(c.converged());
    let withdrawn: u64 = (0..n)
        .filter(|&o| o != victim)
        .map(|o| c.slots[o].node().stats().refusals_withdrawn)
        .sum();
    assert!(withdrawn > 0, "no refusal was withdrawn");
}

#[test]
fn off_path_forgeries_prove_nothing_and_change_nothing() {
    let cfg = tolerant();
    let n = 12;
    let mut c = settled(n, cfg, 18);
    let victim = 5;
    let before: Vec<_> = (0..n).map(|o| c.slots[o].node().stats()).collect();
    // Each forgery quotes the last probe its observer sent the victim, token guessed.
    for _ in 0..20 {
        for o in (0..n).filter(|&o| o != victim) {
            c.forge_refusal(o, victim);
        }
        c.run_for(secs(0.3));
    }
    for o in (0..n).filter(|&o| o != victim) {
        let s = c.slots[o].node().stats();
        assert_eq!(s.refusals - before[o].refusals, 20);
        assert_eq!(
            s.refusals_unverified - before[o].refusals_unverified,
            20,
            "node {o} took a forgery for evidence"
        );
    }
    let suspected = (0..n).any(|o| {
        !c.events_where(
            o,
            |e| matches!(e, Event::MemberSuspected { member, .. } if member.name() == "node-5"),
        )
        .is_empty()
    });
    assert!(!suspected, "an off-path forgery raised a suspicion");
}

#[test]
fn forged_refusals_against_a_paused_member_convict_no_one() {
    let cfg = tolerant();
    let pause = secs(6.0);
    assert!(pause < cfg.acceptable_pause);
    let n = 12;
    let mut c = settled(n, cfg, 15);
    let victim = 6;
    c.pause(victim, pause);
    // While it is frozen, everyone hears forged refusals for it: only its helpers' own
    // probes could corroborate, and a paused process's open port refuses nothing.
    for _ in 0..8 {
        for o in (0..n).filter(|&o| o != victim) {
            c.forge_refusal(o, victim);
        }
        c.run_for(secs(0.7));
    }
    c.run_for(secs(20.0));
    assert!(
        !c.anyone_declared_dead(victim),
        "a paused member was convicted on forged refusals"
    );
    assert!(c.converged(), "the cluster did not settle after the pause");
}

#[test]
fn two_nodes_corroborate_by_a_second_refusal() {
    let cfg = tolerant();
    let bound = refusal_bound(&cfg, 2) + cfg.probe_interval;
    let mut c = settled(2, cfg, 16);
    let t0 = c.now;
    c.crash_process(1);
    c.run_for(bound);
    let at = c
        .dead_at(0, 1)
        .expect("the lone peer never convicted the crash");
    assert!(at - t0 <= bound, "convicted after {:?}", at - t0);
}

#[test]
fn a_process_restarted_on_the_same_address_is_alive_again() {
    let cfg = tolerant();
    let n = 8;
    let mut c = settled(n, cfg.clone(), 17);
    let crashed = 2;
    c.crash_process(crashed);
    c.run_for(refusal_bound(&cfg, n) + secs(1.0));
    assert!(c.anyone_declared_dead(crashed));
    let seeds = [common::addr(0)];
    c.restart(crashed, 0, &seeds);
    c.run_for(secs(10.0));
    for i in 0..n {
        assert_eq!(
            c.state_at(i, crashed),
            Some(MemberState::Alive),
            "at node {i}"
        );
    }
}

/// Processes started together refuse each other's first datagrams until each has bound
/// its port: a join sent to a seed not yet up comes back refused after the joiner has
/// already learned that seed from someone else. A refusal that reaches a node within
/// `probe_timeout` of a member turning Alive there may answer a datagram sent before
/// this member was at that address, so it is not evidence against it.
#[test]
fn a_refusal_just_after_a_member_appears_does_not_suspect_it() {
    let cfg = Config::lan();
    let mut c = Cluster::new(3, cfg.clone(), 11);
    c.join(0, &[]);
    c.join(1, &[common::addr(0)]);
    c.run_for(secs(3.0));
    c.join(2, &[common::addr(1)]);
    let mut steps = 0;
    while c.state_at(0, 2) != Some(MemberState::Alive) {
        steps += 1;
        assert!(steps < 5_000, "node 0 never learned node 2");
        c.run_for(Duration::from_millis(1));
    }
    let refusals_before = c.slots[0].node().stats().refusals;
    c.forge_refusal(0, 2);
    assert_eq!(c.slots[0].node().stats().refusals, refusals_before + 1);
    let suspected = c.events_where(
        0,
        |e| matches!(e, Event::MemberSuspected { member, .. } if member.name() == "node-2"),
    );
    assert!(
        suspected.is_empty(),
        "suspected a member it had just learned: {suspected:?}"
    );
    c.run_for(secs(5.0));
    assert!(!c.anyone_declared_dead(2));
    assert_eq!(c.state_at(0, 2), Some(MemberState::Alive));
}

/// Two observers' proven refusals (ours and a helper's, or a peer's report of the same
/// life) convict as soon as the member has had a few round trips to answer our own
/// ping: long before `refusal_window`, which now bounds only the wait for
/// corroboration. Before issue 27 every conviction waited out the window.
#[test]
fn a_corroborated_refusal_convicts_before_the_window_ends() {
    let mut cfg = tolerant();
    cfg.refusal_window = Duration::from_secs(5);
    let n = 20;
    let mut c = settled(n, cfg.clone(), 21);
    let crashed = 7;
    let t0 = c.now;
    c.crash_process(crashed);
    // The first probe after the crash (within a period), corroboration, dissemination.
    let bound = cfg.probe_interval + cfg.gossip_interval * 2;
    c.run_for(bound);
    for i in (0..n).filter(|&i| i != crashed) {
        let at = c
            .dead_at(i, crashed)
            .unwrap_or_else(|| panic!("node {i} had not convicted within {bound:?}"));
        assert!(at - t0 < cfg.refusal_window, "node {i}: {:?}", at - t0);
    }
    let reported: u64 = (0..n)
        .filter(|&i| i != crashed)
        .map(|i| c.slots[i].node().stats().probes_on_report)
        .sum();
    // Only the crashed member's monitors look at once on a peer's report, each at most
    // once per probe interval.
    let periods = bound.as_secs_f64() / cfg.probe_interval.as_secs_f64();
    assert!(
        reported as f64 <= cfg.monitors as f64 * periods.ceil(),
        "{reported} early probes"
    );
}

/// A process killed and started again on its address, faster than detection: its new
/// life (a higher incarnation) is never convicted by refusals about the old one. The
/// application sees either nothing, or the old life Dead and then the new one Joined.
#[test]
fn a_process_restarted_within_detection_is_a_restart() {
    let cfg = tolerant();
    let n = 12;
    let seeds = [common::addr(0)];
    for delay_ms in [0u64, 2, 20, 150] {
        let mut c = settled(n, cfg.clone(), 22 + delay_ms);
        let crashed = 4;
        c.crash_process(crashed);
        c.run_for(Duration::from_millis(delay_ms));
        let refused_while_down: u64 = (0..n)
            .filter(|&i| i != crashed)
            .map(|i| c.slots[i].node().stats().refusals)
            .sum();
        c.restart(crashed, 5, &seeds);
        c.run_for(secs(10.0));
        if delay_ms >= 150 {
            // Long enough down for the old life to be refused, so the case is real.
            assert!(refused_while_down > 0, "no refusal in {delay_ms} ms down");
        }
        for i in (0..n).filter(|&i| i != crashed) {
            assert_eq!(
                c.state_at(i, crashed),
                Some(MemberState::Alive),
                "restart after {delay_ms} ms: node {i}"
            );
            let dead_lives: Vec<u64> = c
                .events_where(
                    i,
                    |e| matches!(e, Event::MemberDead { member, .. } if member.name() == "node-4"),
                )
                .iter()
                .filter_map(|(_, e)| match e {
                    Event::MemberDead { member, .. } => Some(member.incarnation),
                    _ => None,
                })
                .collect();
            assert!(
                dead_lives.iter().all(|&inc| inc < 5),
                "restart after {delay_ms} ms: node {i} convicted the new life: {dead_lives:?}"
            );
        }
    }
}

/// A forger on one observer's path only, against a member paused for 6 s (below the
/// 8 s it may pause): that observer's refusals prove themselves, and the monitors'
/// silence suspicions confirm the suspicion, but a confirmation by silence is not a
/// second refusal. It once was: the confirmer was gossiped with the first accuser's
/// cause, `Refused`, and counted as a second observer's refusal.
#[test]
fn a_forger_on_one_path_does_not_convict_a_paused_member() {
    for seed in 30..36 {
        let mut c = settled(12, tolerant(), seed);
        let victim = 5;
        c.pause(victim, secs(6.0));
        for _ in 0..60 {
            c.forge_refusal_on_path(0, victim);
            c.run_for(secs(0.1));
        }
        c.run_for(secs(5.0));
        assert!(
            !c.anyone_declared_dead(victim),
            "seed {seed}: a paused member was convicted on one path's forgeries"
        );
    }
}

/// The round trip the refusal path leans on is learned when it rises: after a step from
/// 2 ms to 30 ms, monitor pings are no longer all sent twice (a frozen estimate would
/// resend every one, `monitors` per node per period, for good), and a live member
/// that forged refusals target at every observer still answers within the grace.
#[test]
fn a_rising_round_trip_is_learned() {
    let n = 12;
    let mut c = settled(n, tolerant(), 40);
    c.latency = Duration::from_millis(15);
    c.run_for(secs(20.0));
    let rechecked = |c: &Cluster| -> u64 {
        (0..n)
            .map(|i| c.slots[i].node().stats().probes_rechecked)
            .sum()
    };
    let before = rechecked(&c);
    c.run_for(secs(20.0));
    let per_node_period = (rechecked(&c) - before) as f64 / (n as f64 * 20.0);
    assert!(
        per_node_period < 0.5,
        "{per_node_period:.2} rechecks per node per period after the step"
    );
    let victim = 3;
    for round in 0..6 {
        for o in (0..n).filter(|&o| o != victim) {
            c.forge_refusal_on_path(o, victim);
        }
        c.run_for(secs(0.5 + f64::from(round % 3) * 0.1));
    }
    c.run_for(secs(10.0));
    assert!(
        !c.anyone_declared_dead(victim),
        "a live member was convicted"
    );
}
