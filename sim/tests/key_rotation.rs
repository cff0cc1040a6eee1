//! A rolling three-step key rotation in a sealed cluster convicts no one and drops no
//! packet; the same rotation with its steps overlapping (some members sealing with the
//! new key before others can open it) is caught by the same measurements.

use std::path::Path;

use rumor_sim::scenario::Scenario;

fn rotation(sets: &[(&str, &str)]) -> rumor_sim::report::Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/key-rotation.toml");
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sc = Scenario::load(&path, &sets).expect("canned scenario loads");
    rumor_sim::run(&sc, 1, "test", |_| {}).unwrap()
}

#[test]
fn a_rolling_key_rotation_convicts_no_one_and_drops_nothing() {
    let r = rotation(&[]);
    assert_eq!(r.false_convictions, 0, "{r:?}");
    assert_eq!(r.auth_failures, 0, "{r:?}");
    assert_eq!((r.crashes, r.detected), (2, 2), "{r:?}");
    assert!(r.pauses > 100, "{r:?}");
}

#[test]
fn using_the_new_key_before_everyone_has_it_shows_as_auth_failures() {
    let r = rotation(&[("faults.2.at", "62s")]);
    assert!(r.auth_failures > 0, "{r:?}");
}
