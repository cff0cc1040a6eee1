//! `start = "converged"`: the cluster built through the nodes' own join and state sync
//! costs what the protocol must (each member learns the n − 1 others once, O(n²)), not
//! a live join's gossip storm (each join re-gossiped by every member, O(n² λ log n)
//! decoded updates).

use rumor::Time;
use rumor_sim::scenario::Scenario;
use rumor_sim::world::World;

/// Messages every node decoded from the start to `secs`, and the stale views then.
fn decoded(nodes: usize, start: &str, secs: u64) -> (u64, u64) {
    let text = format!(
        "name = \"t\"\nnodes = {nodes}\nduration = \"{secs}s\"\njoin_spread = \"2s\"\nstart = \"{start}\"\n"
    );
    let sc = Scenario::parse(&text, &[]).expect("valid scenario");
    let mut w = World::new(&sc, 3).expect("valid world");
    w.advance_to(Time::from_secs(secs), |_| {});
    let total = (0..nodes)
        .filter_map(|i| w.node(i))
        .map(|n| n.stats().messages_in)
        .sum();
    (total, w.stale_views())
}

#[test]
fn a_converged_start_decodes_a_fraction_of_a_join_storm() {
    let n = 200;
    let (storm, storm_stale) = decoded(n, "join", 30);
    let (built, built_stale) = decoded(n, "converged", 30);
    println!("messages decoded in 30 s, {n} nodes: join {storm}, converged {built}");
    assert_eq!((storm_stale, built_stale), (0, 0), "both converge");
    let n2 = (n * n) as u64;
    assert!(built < storm / 2, "converged {built} against join {storm}");
    // The build's entries (about 1.5 n² with one hub) plus 30 s of steady traffic.
    assert!(built < 4 * n2, "converged {built} against n² = {n2}");
}
