//! Classic SWIM against its own analysis (Das, Gupta, Motivala 2002, §3): with uniform
//! loss `p` per datagram and `k` indirect helpers, a probe of a live member fails when
//! the direct ping or its ack is lost, `1 − (1−p)²`, and so does every indirect path
//! (ping-req, ping, ack, ack: four datagrams), `(1 − (1−p)⁴)^k`. Latency is far below
//! `probe_timeout`, so no ack arrives late.

use rumor::NodeStats;
use rumor_sim::scenario::Scenario;
use rumor_sim::world::World;

fn run(sc: &Scenario, seed: u64) -> (NodeStats, u64) {
    let mut w = World::new(sc, seed).unwrap();
    w.run(|_| {});
    (w.total_stats(), w.oracle.verdicts().false_suspicions)
}

#[test]
fn swim_false_suspicion_rate_per_probe_matches_the_analysis() {
    let p: f64 = 0.05;
    let k = 3;
    let text = format!(
        r#"
name = "swim-analysis"
nodes = 50
duration = "4000s"
[config]
strategy = "swim"
indirect_checks = {k}
[network]
loss = {p}
"#
    );
    let sc = Scenario::parse(&text, &[]).unwrap();
    // Two seeds on two threads: ~400,000 probes, ~250 expected failures, so one standard
    // deviation is ~6.3 % and the ±25 % band is ~4σ.
    let runs: Vec<(NodeStats, u64)> = std::thread::scope(|s| {
        let hs: Vec<_> = [1u64, 2]
            .iter()
            .map(|&seed| {
                let sc = &sc;
                s.spawn(move || run(sc, seed))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let sent: u64 = runs.iter().map(|r| r.0.probes_sent).sum();
    let failed: u64 = runs.iter().map(|r| r.0.probes_failed).sum();
    let expected = (1.0 - (1.0 - p).powi(2)) * (1.0 - (1.0 - p).powi(4)).powi(k);
    let measured = failed as f64 / sent as f64;
    eprintln!(
        "measured {measured:.3e} per probe ({failed} failed / {sent} sent), analysis {expected:.3e}"
    );
    assert!(sent > 390_000, "{sent}");
    assert!(
        (measured / expected - 1.0).abs() <= 0.25,
        "measured {measured:.3e} per probe ({failed} failed / {sent} sent), analysis {expected:.3e}"
    );
    // Every failed probe of a live member raises a suspicion; the distinct suspected
    // (member, incarnation) pairs the oracle saw cannot exceed them.
    for (stats, false_suspicions) in &runs {
        assert!(*false_suspicions > 0);
        assert!(*false_suspicions <= stats.probes_failed, "{stats:?}");
    }
}
