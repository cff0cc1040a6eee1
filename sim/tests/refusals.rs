//! Crash versus pause (issue 7) at a size CI affords (200 members), on the canned
//! scenarios: a process crash (port refused) is convicted everywhere at p99 <= 3 s with
//! the cluster tuned for 8-second pauses; a host crash (silence) at p99 <=
//! acceptable_pause + 4 s; pauses up to 7.5 s with forged refusals, some aimed at paused
//! members, convict no one.

use std::path::Path;

use rumor_sim::scenario::Scenario;

fn canned(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path, &[]).expect("canned scenario loads")
}

/// Issue 27's target at the size CI affords (200 members, 1 % loss; `--nodes 1000` for
/// the headline): a process crash is dead at every live member within a second, though
/// the cluster tolerates 8-second pauses. Issue 7's bound was 3 s.
#[test]
fn a_process_crash_is_convicted_everywhere_within_1s_at_acceptable_pause_8s() {
    let sc = canned("crash-process");
    assert_eq!(sc.node_config().unwrap().acceptable_pause.as_secs(), 8);
    let r = rumor_sim::run(&sc, 1, "test", |_| {}).unwrap();
    assert_eq!((r.crashes, r.detected), (5, 5), "{r:?}");
    assert_eq!(r.false_convictions, 0, "{r:?}");
    assert!(r.refusal_convictions > 0, "{r:?}");
    let p99 = r.detection_ms.p99.unwrap();
    assert!(p99 <= 1_000.0, "process crash p99 {p99} ms > 1 s");
}

#[test]
fn a_host_crash_is_convicted_within_acceptable_pause_plus_4s_and_not_before() {
    let sc = canned("crash-host");
    let r = rumor_sim::run(&sc, 1, "test", |_| {}).unwrap();
    assert_eq!((r.crashes, r.detected), (5, 5), "{r:?}");
    assert_eq!(r.false_convictions, 0, "{r:?}");
    assert_eq!(r.refusals, 0, "a silent host refused: {r:?}");
    let (p50, p99) = (r.detection_ms.p50.unwrap(), r.detection_ms.p99.unwrap());
    assert!(p99 <= 12_000.0, "host crash p99 {p99} ms > 8 s + 4 s");
    // Silence cannot tell a crash from an 8 s pause, so it must not convict sooner.
    assert!(
        p50 >= 8_000.0,
        "host crash convicted before acceptable_pause: {p50} ms"
    );
}

#[test]
fn pauses_below_acceptable_pause_with_forged_refusals_convict_no_one() {
    let sc = canned("forged-refusals");
    let r = rumor_sim::run(&sc, 1, "test", |_| {}).unwrap();
    assert!(r.pauses > 50, "{r:?}");
    let longest = r.max_pause_ms.unwrap();
    assert!((7_000.0..8_000.0).contains(&longest), "{r:?}");
    assert!(r.refusals > 1_000, "the forger was not heard: {r:?}");
    assert_eq!(r.false_convictions, 0, "{r:?}");
    assert_eq!((r.crashes, r.detected), (3, 3), "{r:?}");
}

/// Issue 20, finding 1: members paused in turn for 0.9 × acceptable_pause, each reported
/// refused 1 s into its pause to a fifth of the cluster and 200 ms later to everyone.
/// Before refusals had to quote a probe, every paused member was convicted (12 of 12,
/// in each of 5 seeds, in every strategy). The forger is off the path: none of its
/// reports proves itself.
#[test]
fn a_burst_of_forged_refusals_convicts_no_paused_member_in_any_strategy() {
    for strategy in ["phi-monitors", "lifeguard", "swim"] {
        let sc = Scenario::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/forged-refusal-pauses.toml"),
            &[("strategy".into(), strategy.into())],
        )
        .unwrap();
        let r = rumor_sim::run(&sc, 1, "test", |_| {}).unwrap();
        assert_eq!(r.pauses, 12, "{strategy}: {r:?}");
        assert!(r.forged_refusals > 500, "{strategy}: {r:?}");
        assert_eq!(
            r.refusals_unverified, r.forged_refusals,
            "{strategy}: {r:?}"
        );
        assert_eq!(r.false_convictions, 0, "{strategy}: {r:?}");
        assert_eq!(r.refusal_convictions, 0, "{strategy}: {r:?}");
    }
}

/// Issue 20, finding 1: a steady storm of about 13 off-path forgeries a second while
/// members are paused in turn (before: 0–7 paused members convicted per seed).
#[test]
fn a_storm_of_forged_refusals_convicts_no_one() {
    let sc = canned("forged-refusal-storm");
    let r = rumor_sim::run(&sc, 2, "test", |_| {}).unwrap();
    assert!(r.forged_refusals > 50_000, "{r:?}");
    assert_eq!(r.false_convictions, 0, "{r:?}");
    assert_eq!(r.refusal_convictions, 0, "{r:?}");
}

/// What a forger on the path can do, pinned so that docs/security.md stays true: its
/// copies of real probes prove themselves (the defence is against off-path forgers
/// only), so a paused member it targets, with its helpers' relays, can be convicted.
#[test]
fn on_path_forgeries_prove_themselves() {
    let sc = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/forged-refusal-pauses.toml"),
        &[],
    )
    .unwrap();
    let mut sc = sc;
    for f in &mut sc.faults {
        if f.kind == rumor_sim::scenario::FaultKind::ForgedRefusal {
            f.forger = Some(rumor_sim::scenario::Forger::OnPath);
        }
    }
    let r = rumor_sim::run(&sc, 1, "test", |_| {}).unwrap();
    assert!(r.forged_refusals > 100, "{r:?}");
    assert!(
        r.refusals_unverified < r.forged_refusals / 2,
        "on-path copies failed to prove themselves: {r:?}"
    );
}
