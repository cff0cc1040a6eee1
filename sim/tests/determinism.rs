//! Same scenario + seed ⇒ the same report (wall time aside) and the same trace hash;
//! another seed ⇒ another trace.

use rumor_sim::scenario::Scenario;

/// A small scenario that exercises every source of randomness: latency, jitter, loss,
/// bursts, duplication, reordering, random crash times, Poisson pauses, a partition.
const TEXT: &str = r#"
name = "determinism"
nodes = 24
duration = "150s"
[network]
loss = 0.02
duplicate = 0.01
reorder = 0.02
burst = { p_good_to_bad = 0.01, p_bad_to_good = 0.2, loss_bad = 0.5 }
[[partitions]]
start = "60s"
end = "70s"
side = { count = 3 }
[[faults]]
kind = "crash"
random = { count = 2, from = "30s", to = "90s" }
[[faults]]
kind = "pause"
targets = { fraction = 0.5 }
poisson = { rate_per_min = 2.0, from = "20s", to = "140s" }
pause = { dist = "exponential", mean = "800ms" }
[[faults]]
kind = "restart"
at = "100s"
down = "5s"
"#;

fn json_without_wall(seed: u64) -> (serde_json::Value, String) {
    let sc = Scenario::parse(TEXT, &[]).unwrap();
    let r = rumor_sim::run(&sc, seed, "test", |_| {}).unwrap();
    let mut v = serde_json::to_value(&r).unwrap();
    let obj = v.as_object_mut().unwrap();
    assert!(obj.remove("wall_ms").is_some());
    (v, r.trace_hash)
}

#[test]
fn same_seed_same_report_other_seed_other_trace() {
    let (a, ha) = json_without_wall(5);
    let (b, hb) = json_without_wall(5);
    assert_eq!(a, b);
    assert_eq!(ha, hb);
    // The run did something worth hashing.
    assert!(a["events"].as_u64().unwrap() > 10_000, "{a}");
    assert!(a["pauses"].as_u64().unwrap() > 0, "{a}");
    let (c, hc) = json_without_wall(6);
    assert_ne!(ha, hc);
    assert_ne!(a, c);
}

#[test]
fn a_run_split_in_two_is_the_same_run() {
    let sc = Scenario::parse(TEXT, &[]).unwrap();
    let mut whole = rumor_sim::world::World::new(&sc, 9).unwrap();
    whole.run(|_| {});
    let mut split = rumor_sim::world::World::new(&sc, 9).unwrap();
    // Stop inside the partition and the pauses, then finish.
    split.advance_to(rumor::Time::from_secs(65), |_| {});
    assert!(split.counters.events > 0);
    assert!(split.counters.events < whole.counters.events);
    split.run(|_| {});
    assert_eq!(split.trace_hash, whole.trace_hash);
    assert_eq!(split.counters.events, whole.counters.events);
}
