//! Turns a scenario's fault and partition descriptions into a concrete timeline.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Pareto};
use rand_xoshiro::Xoshiro256PlusPlus;
use rumor::Time;

use crate::network::ActivePartition;
use crate::scenario::{
    CrashMode, Fault, FaultKind, Forger, PauseDist, RestartIncarnation, Scenario, Targets,
};

/// One thing that happens to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The process dies; its host stays silent or refuses for it.
    Crash(usize, CrashMode),
    /// The process starts leaving gracefully.
    Leave(usize),
    /// The process exits (after a leave's drain).
    Exit(usize),
    /// A new process starts under the node's name, at the incarnation `.1` says,
    /// joining through the seeds of fault `.2` (`seeds`), or a random running member.
    Restart(usize, RestartIncarnation, u32),
    /// The node's monotonic clock leaps ahead by this much (VM suspend or migration).
    ClockJump(usize, Duration),
    /// The process stops for this long; `.2`: a pause that begins while the node is
    /// still paused extends the stall (true, the default), or is skipped (false).
    Pause(usize, Duration, bool),
    /// Each event takes `delay` to process until `until`.
    Slow(usize, Duration, Time),
    /// This fraction (in parts per million) of the other nodes hear a forged refusal
    /// for the node, from a forger on or off the path.
    ForgedRefusal(usize, u32, Forger),
    /// A keyring step at the node, with the key's bytes.
    Keyring(usize, KeyOp, [u8; 32]),
}

impl Action {
    /// The node acted on.
    pub fn node(&self) -> usize {
        match *self {
            Action::Crash(i, _) | Action::Leave(i) | Action::Exit(i) | Action::Restart(i, _, _) => {
                i
            }
            Action::ClockJump(i, _) => i,
            Action::Pause(i, _, _) | Action::Slow(i, _, _) | Action::ForgedRefusal(i, _, _) => i,
            Action::Keyring(i, _, _) => i,
        }
    }
}

/// A step of a key rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOp {
    /// The key opens packets.
    Add,
    /// The key seals packets.
    Use,
    /// The key is dropped.
    Remove,
}

/// Picks the nodes a [`Targets`] names.
pub fn pick(t: &Targets, n: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<usize> {
    if t.all {
        return (0..n).collect();
    }
    let mut out: Vec<usize> = t.nodes.iter().copied().filter(|&i| i < n).collect();
    let extra = t.count.unwrap_or(0) + t.fraction.map_or(0, |f| (f * n as f64).round() as usize);
    let want = if out.is_empty() && extra == 0 {
        1
    } else {
        out.len() + extra
    }
    .min(n);
    // Bounded: a partial Fisher-Yates over all indices.
    let mut pool: Vec<usize> = (0..n).filter(|i| !out.contains(i)).collect();
    while out.len() < want && !pool.is_empty() {
        let j = rng.random_range(0..pool.len());
        out.push(pool.swap_remove(j));
    }
    out.sort_unstable();
    out
}

/// Draws one pause length.
pub fn sample_pause(d: &PauseDist, rng: &mut Xoshiro256PlusPlus) -> Duration {
    let secs = match d {
        PauseDist::Fixed { value } => value.0.as_secs_f64(),
        PauseDist::Exponential { mean } => {
            let rate = 1.0 / mean.0.as_secs_f64().max(1e-9);
            Exp::new(rate).map_or(0.0, |e| e.sample(rng))
        }
        PauseDist::Pareto { scale, shape } => {
            Pareto::new(scale.0.as_secs_f64().max(1e-9), shape.max(1e-3))
                .map_or(0.0, |p| p.sample(rng))
        }
        PauseDist::Lognormal { median, sigma } => {
            LogNormal::new(median.0.as_secs_f64().max(1e-9).ln(), sigma.max(0.0))
                .map_or(0.0, |l| l.sample(rng))
        }
        PauseDist::Samples { values, tail } => {
            if values.is_empty() {
                0.0
            } else {
                let v = values[rng.random_range(0..values.len())].as_secs_f64();
                match tail {
                    // A pause from the tail's part of the sample: from the fitted
                    // tail instead, which reaches beyond the largest measured.
                    Some(t) if v > t.threshold_s => t.at(rng.random::<f64>()),
                    _ => v,
                }
            }
        }
    };
    // A pause longer than an hour is a crash by another name; cap to keep time finite.
    Duration::from_secs_f64(secs.clamp(0.0, 3600.0))
}

fn time(d: Duration) -> Time {
    Time::ZERO + d
}

/// Every fault occurrence, in time order (ties keep scenario order).
pub fn timeline(sc: &Scenario, rng: &mut Xoshiro256PlusPlus) -> Vec<(Time, Action)> {
    let n = sc.nodes;
    let mut out = Vec::new();
    for (k, f) in sc.faults.iter().enumerate() {
        let emit = |at: Time,
                    nodes: &[usize],
                    rng: &mut Xoshiro256PlusPlus,
                    out: &mut Vec<(Time, Action)>| {
            let shared = (f.kind == FaultKind::Pause && f.together)
                .then(|| f.pause.as_ref().map(|p| sample_pause(p, rng)))
                .flatten();
            for &i in nodes {
                expand(f, k, at, i, shared, rng, out);
            }
        };
        if let Some(at) = f.at {
            let nodes = pick(&f.targets, n, rng);
            emit(time(at.0), &nodes, rng, &mut out);
        }
        if let Some(r) = &f.random {
            for _ in 0..r.count {
                let span = r.to.0.saturating_sub(r.from.0);
                let at = time(r.from.0 + span.mul_f64(rng.random::<f64>()));
                let nodes = pick(&f.targets, n, rng);
                emit(at, &nodes, rng, &mut out);
            }
        }
        if let Some(p) = &f.poisson {
            let nodes = pick(&f.targets, n, rng);
            let arrivals = |rng: &mut Xoshiro256PlusPlus| {
                let mut v = Vec::new();
                let Ok(exp) = Exp::new(p.rate_per_min.max(1e-12) / 60.0) else {
                    return v;
                };
                let mut t = p.from.0.as_secs_f64();
                // Bounded: a million arrivals per node is far beyond any scenario.
                for _ in 0..1_000_000 {
                    t += exp.sample(rng);
                    if t >= p.to.0.as_secs_f64() {
                        break;
                    }
                    v.push(Time::ZERO + Duration::from_secs_f64(t));
                }
                v
            };
            if f.together {
                for at in arrivals(rng) {
                    emit(at, &nodes, rng, &mut out);
                }
            } else {
                for &i in &nodes {
                    for at in arrivals(rng) {
                        emit(at, &[i], rng, &mut out);
                    }
                }
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

fn expand(
    f: &Fault,
    k: usize,
    at: Time,
    i: usize,
    shared: Option<Duration>,
    rng: &mut Xoshiro256PlusPlus,
    out: &mut Vec<(Time, Action)>,
) {
    match f.kind {
        FaultKind::Crash => out.push((at, Action::Crash(i, f.crash.unwrap_or_default()))),
        FaultKind::Leave => {
            out.push((at, Action::Leave(i)));
            let drain = f.drain.map_or(Duration::from_secs(2), |d| d.0);
            out.push((at + drain, Action::Exit(i)));
        }
        FaultKind::Restart => {
            out.push((at, Action::Crash(i, f.crash.unwrap_or_default())));
            let down = f.down.map_or(Duration::from_secs(10), |d| d.0);
            let from = f.incarnation.unwrap_or_default();
            out.push((at + down, Action::Restart(i, from, k as u32)));
        }
        FaultKind::Pause => {
            let d = shared
                .or_else(|| f.pause.as_ref().map(|p| sample_pause(p, rng)))
                .unwrap_or_default();
            let d = f.pause_max.map_or(d, |m| d.min(m.0));
            out.push((at, Action::Pause(i, d, f.merge.unwrap_or(true))));
        }
        FaultKind::Slow => {
            let delay = f.delay.map_or(Duration::ZERO, |d| d.0);
            let until = at + f.length.map_or(Duration::ZERO, |d| d.0);
            out.push((at, Action::Slow(i, delay, until)));
        }
        FaultKind::AddKey | FaultKind::UseKey | FaultKind::RemoveKey => {
            let op = match f.kind {
                FaultKind::AddKey => KeyOp::Add,
                FaultKind::UseKey => KeyOp::Use,
                _ => KeyOp::Remove,
            };
            let key = f
                .key
                .as_deref()
                .and_then(rumor::Key::from_hex)
                .map_or([0; 32], |k| k.to_bytes());
            let delay = f
                .spread
                .map_or(Duration::ZERO, |s| s.0.mul_f64(rng.random::<f64>()));
            out.push((at + delay, Action::Keyring(i, op, key)));
        }
        FaultKind::ClockJump => {
            out.push((
                at,
                Action::ClockJump(i, f.jump.map_or(Duration::ZERO, |d| d.0)),
            ));
        }
        FaultKind::ForgedRefusal => {
            let ppm = (f.observers.unwrap_or(1.0) * 1e6).round() as u32;
            out.push((
                at,
                Action::ForgedRefusal(i, ppm, f.forger.unwrap_or_default()),
            ));
        }
    }
}

/// Everything about a run that is drawn before it starts, from the master seed, in one
/// fixed order: partitions' sides, then the fault timeline. `World::new` and `tune`
/// (which needs the longest stall before running) both use this, so they cannot drift.
pub struct Plan {
    /// Partitions with their sides.
    pub partitions: Vec<ActivePartition>,
    /// Fault occurrences in time order.
    pub timeline: Vec<(Time, Action)>,
    /// The master RNG after those draws (the world goes on drawing from it).
    pub rng: Xoshiro256PlusPlus,
}

/// Draws the [`Plan`] of `sc` under master seed `seed`.
pub fn plan(sc: &Scenario, seed: u64) -> Plan {
    let mut rng = <Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(seed);
    let partitions = partitions(sc, &mut rng);
    let timeline = timeline(sc, &mut rng);
    Plan {
        partitions,
        timeline,
        rng,
    }
}

/// The scenario's partitions with their sides chosen.
pub fn partitions(sc: &Scenario, rng: &mut Xoshiro256PlusPlus) -> Vec<ActivePartition> {
    sc.partitions
        .iter()
        .map(|p| {
            let mut side = vec![false; sc.nodes];
            let mut t = p.side.clone();
            if t.nodes.is_empty() && t.count.is_none() && t.fraction.is_none() && !t.all {
                t.fraction = Some(0.5);
            }
            // A link cut has no side: draw none, so it moves no other draw.
            if p.link.is_none() {
                for i in pick(&t, sc.nodes, rng) {
                    side[i] = true;
                }
            }
            ActivePartition {
                start: time(p.start.0),
                end: time(p.end.0),
                side,
                one_way: p.one_way,
                loss: p.loss,
                link: p.link.map(|[a, b]| (a, b)),
                flap: p.flap.map(|f| (f.down.0, f.up.0)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;
    use rand::SeedableRng;

    #[test]
    fn picks_are_distinct_and_sized() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let t = Targets {
            fraction: Some(0.1),
            ..Targets::default()
        };
        let v = pick(&t, 100, &mut rng);
        assert_eq!(v.len(), 10);
        let mut d = v.clone();
        d.dedup();
        assert_eq!(d, v);
        assert_eq!(pick(&Targets::default(), 100, &mut rng).len(), 1);
        assert_eq!(
            pick(
                &Targets {
                    all: true,
                    ..Targets::default()
                },
                5,
                &mut rng
            ),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(
            pick(
                &Targets {
                    nodes: vec![3, 99],
                    ..Targets::default()
                },
                10,
                &mut rng
            ),
            vec![3]
        );
    }

    #[test]
    fn pause_distributions_have_their_means() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let mean = |d: &PauseDist, rng: &mut Xoshiro256PlusPlus| {
            (0..20_000)
                .map(|_| sample_pause(d, rng).as_secs_f64())
                .sum::<f64>()
                / 20_000.0
        };
        let s = |x: f64| Dur(Duration::from_secs_f64(x));
        assert!((mean(&PauseDist::Fixed { value: s(2.0) }, &mut rng) - 2.0).abs() < 1e-9);
        assert!((mean(&PauseDist::Exponential { mean: s(1.0) }, &mut rng) - 1.0).abs() < 0.05);
        // Pareto mean = scale·shape/(shape − 1) = 0.5·3/2 = 0.75.
        assert!(
            (mean(
                &PauseDist::Pareto {
                    scale: s(0.5),
                    shape: 3.0
                },
                &mut rng
            ) - 0.75)
                .abs()
                < 0.05
        );
        // Lognormal mean = median·e^(σ²/2).
        let m = mean(
            &PauseDist::Lognormal {
                median: s(1.0),
                sigma: 0.5,
            },
            &mut rng,
        );
        assert!((m - (0.125f64).exp()).abs() < 0.05, "{m}");
    }
}
