//! With no faults nobody is convicted, and the message load is what the configuration
//! says it should be.
//!
//! Expected load per node per protocol period `T`:
//! - phi-monitors: each node pings its `monitors` targets and, being watched by as many
//!   monitors, answers as many acks: `2 × monitors / T` datagrams per second;
//! - swim and lifeguard: one ping and one ack per period: `2 / T`.
//!
//! Membership updates ride on those pings and acks, so on a quiet cluster the only other
//! datagrams are the push-pull state syncs (a few datagrams per node every
//! `push_pull_interval`, 30 s here) and the odd gossip round: at most a few percent.
//! The band below is −3 % … +15 % of the probe load.

use rumor_sim::scenario::Scenario;

fn steady(strategy: &str, monitors: usize) -> rumor_sim::report::Report {
    let text = format!(
        r#"
name = "steady-load"
nodes = 30
duration = "4m"
warmup = "30s"
[config]
strategy = "{strategy}"
monitors = {monitors}
"#
    );
    let sc = Scenario::parse(&text, &[]).unwrap();
    rumor_sim::run(&sc, 3, "test", |_| {}).unwrap()
}

fn check(r: &rumor_sim::report::Report, probes_per_period: f64) {
    let expected = 2.0 * probes_per_period; // pings + acks, T = 1 s
    let m = r.msgs_per_node_per_sec;
    eprintln!(
        "{} probes/period {probes_per_period}: {m:.3} msgs/node/s, {:.3} probes/node/s",
        r.strategy, r.probes_per_node_per_sec
    );
    assert_eq!(r.false_convictions, 0, "{r:?}");
    assert_eq!(r.false_suspicions, 0, "{r:?}");
    assert!(
        m >= expected * 0.97 && m <= expected * 1.15,
        "{}: {m:.3} msgs/node/s, expected ≈ {expected}",
        r.strategy
    );
    assert!(
        (r.probes_per_node_per_sec - probes_per_period).abs() <= probes_per_period * 0.05,
        "{}: {} probes/node/s, expected {probes_per_period}",
        r.strategy,
        r.probes_per_node_per_sec
    );
}

#[test]
fn phi_monitors_load_is_two_messages_per_monitor_per_period() {
    for monitors in [3, 5] {
        let r = steady("phi-monitors", monitors);
        check(&r, monitors as f64);
    }
}

#[test]
fn swim_and_lifeguard_load_is_one_probe_round_trip_per_period() {
    for s in ["swim", "lifeguard"] {
        let r = steady(s, 3);
        check(&r, 1.0);
    }
}
