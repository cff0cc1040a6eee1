//! The risk `tune` states, checked against the simulator (issue 24): at a deliberately
//! under-provisioned setting, the false convictions the model predicts
//! (`rumor_sim::tune::check`) must fall inside the 99 % Poisson interval of the count
//! the simulator measures, and a prediction 3× off (or the old rule, every pause longer
//! than the steady silence to convict) must fall outside it.

use std::time::Duration;

use rumor_sim::scenario::{Dur, PauseDist};
use rumor_sim::tune::check::{Comparison, compare, poisson_interval};

/// 100 members on a `lan` network with 1 % loss, each pausing 4 times a minute from
/// 20 s to 300 s (pauses that arrive during a pause are skipped, so every pause is a
/// whole stall): 8.3 member-hours (pauses during the last 7.8) and about 1,750 pauses
/// per seed.
fn scenario(dist: &str) -> String {
    format!(
        r#"name = "risk-check"
nodes = 100
duration = "300s"
[network]
loss = 0.01
[[faults]]
kind = "pause"
targets = {{ all = true }}
poisson = {{ rate_per_min = 4.0, from = "20s", to = "300s" }}
pause = {dist}
merge = false
"#
    )
}

fn check(c: &Comparison) {
    eprintln!("{c:?}");
    let (lo, hi) = c.interval;
    assert!(
        (lo..=hi).contains(&c.predicted),
        "predicted {:.1} false convictions, measured {} (99 % interval {lo:.1} to {hi:.1})",
        c.predicted,
        c.measured
    );
    // The check has the power to see a wrong model: 3× off either way is outside.
    assert!(3.0 * c.predicted > hi && c.predicted / 3.0 < lo, "{c:?}");
    // Enough member-hours to tell: tens of convictions.
    assert!(c.measured >= 40, "{c:?}");
}

#[test]
fn predicted_false_convictions_match_the_simulator() {
    // Exponential pauses, mean 1 s; acceptable_pause 2.5 s gives a steady silence to
    // convict of 4.02 s, which 1.8 % of pauses exceed. Measured at dcca33c: 118
    // members convicted over seeds 1–3 (99 % interval 92 to 149), predicted 116.5; the
    // old rule predicts 80.7, outside the interval.
    let exp = PauseDist::Exponential {
        mean: Dur(Duration::from_secs(1)),
    };
    let c = compare(
        &scenario(r#"{ dist = "exponential", mean = "1s" }"#),
        &exp,
        4.0,
        &|x: f64| (-x.max(0.0)).exp(),
        Duration::from_millis(2500),
        &[1, 2, 3],
    )
    .unwrap();
    check(&c);
    assert!(
        !(c.interval.0..=c.interval.1).contains(&c.predicted_naive),
        "the steady silence alone should be seen to be wrong here: {c:?}"
    );
}

#[test]
fn predicted_false_convictions_match_the_simulator_for_a_heavy_tail() {
    // Pareto pauses (200 ms minimum, tail index 1.5), acceptable_pause 2 s: steady
    // silence to convict 3.52 s. Measured: 79 over seeds 1–3, predicted 86.9.
    let pareto = PauseDist::Pareto {
        scale: Dur(Duration::from_millis(200)),
        shape: 1.5,
    };
    let c = compare(
        &scenario(r#"{ dist = "pareto", scale = "200ms", shape = 1.5 }"#),
        &pareto,
        4.0,
        &|x: f64| (0.2 / x.max(0.2)).powf(1.5),
        Duration::from_secs(2),
        &[1, 2, 3],
    )
    .unwrap();
    check(&c);
}

#[test]
fn the_poisson_interval_is_the_exact_one() {
    // Garwood's 99 % interval, from the chi-square quantiles.
    let (lo, hi) = poisson_interval(100, 0.99);
    assert!(
        (lo - 76.12).abs() < 0.01 && (hi - 128.76).abs() < 0.01,
        "{lo} {hi}"
    );
    let (lo, hi) = poisson_interval(0, 0.99);
    assert!(lo == 0.0 && (hi - 5.298).abs() < 0.01, "{hi}");
}
