//! Ground truth and the verdicts checked against it: every field of the JSON contract
//! that is about correctness or speed is computed here.

use std::collections::BTreeSet;

use rumor::{Event, Time};

/// What a node really is at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    /// Running and processing.
    Up,
    /// Running but frozen.
    Paused,
    /// Crashed (silently), not yet restarted.
    Crashed,
    /// Left gracefully (leaving or exited).
    Left,
    /// Not started yet.
    NotStarted,
}

#[derive(Debug)]
struct Crash {
    subject: usize,
    at: Time,
    /// When a new process took the name over (then later verdicts are about it).
    ended: Option<Time>,
    first_suspicion: Option<Time>,
    first_dead: Option<Time>,
    /// When each observer first saw it dead.
    seen_dead: Vec<Option<Time>>,
    /// Observers running from the crash to the end of the crash's window.
    eligible: Vec<bool>,
}

#[derive(Debug)]
enum ChangeKind {
    Left,
    Rejoined,
}

#[derive(Debug)]
struct Change {
    kind: ChangeKind,
    subject: usize,
    at: Time,
    seen: Vec<Option<Time>>,
    eligible: Vec<bool>,
}

/// Percentiles of a sample, `None` when there are no samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (milliseconds).
    pub fn of(v: &[f64]) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Percentiles {
            p50: Some(rank(0.5)),
            p99: Some(rank(0.99)),
            max: s.last().copied(),
        }
    }
}

/// The oracle's findings.
#[derive(Clone, Debug, Default)]
pub struct Verdicts {
    /// Distinct (member, incarnation) declared dead while alive or paused.
    pub false_convictions: u64,
    /// Of those, while paused.
    pub paused_convictions: u64,
    /// Distinct (member, incarnation) suspected while alive or paused.
    pub false_suspicions: u64,
    /// Crashes injected (restarts included).
    pub crashes: u64,
    /// Crashes seen dead by every eligible observer.
    pub detected: u64,
    /// Crash → dead at every eligible observer, ms.
    pub detection_ms: Vec<f64>,
    /// Crash → first suspicion anywhere, ms.
    pub first_suspicion_ms: Vec<f64>,
    /// Change → known at every eligible observer, ms.
    pub dissemination_ms: Vec<f64>,
}

/// Ground truth plus what every node said.
#[derive(Debug)]
pub struct Oracle {
    truth: Vec<Truth>,
    crashes: Vec<Crash>,
    open_crash: Vec<Option<usize>>,
    changes: Vec<Change>,
    open_changes: Vec<Vec<usize>>,
    false_convictions: BTreeSet<(usize, u64)>,
    paused_convictions: BTreeSet<(usize, u64)>,
    false_suspicions: BTreeSet<(usize, u64)>,
}

impl Oracle {
    /// An oracle for `n` nodes, none started.
    pub fn new(n: usize) -> Oracle {
        Oracle {
            truth: vec![Truth::NotStarted; n],
            crashes: Vec::new(),
            open_crash: vec![None; n],
            changes: Vec::new(),
            open_changes: vec![Vec::new(); n],
            false_convictions: BTreeSet::new(),
            paused_convictions: BTreeSet::new(),
            false_suspicions: BTreeSet::new(),
        }
    }

    /// The truth about node `i` now.
    pub fn truth(&self, i: usize) -> Truth {
        self.truth[i]
    }

    fn running(&self) -> Vec<bool> {
        self.truth
            .iter()
            .map(|t| matches!(t, Truth::Up | Truth::Paused))
            .collect()
    }

    /// Node `i` started (first time).
    pub fn started(&mut self, i: usize) {
        self.truth[i] = Truth::Up;
    }

    /// Node `i` paused / resumed.
    pub fn paused(&mut self, i: usize, paused: bool) {
        if matches!(self.truth[i], Truth::Up | Truth::Paused) {
            self.truth[i] = if paused { Truth::Paused } else { Truth::Up };
        }
    }

    /// Node `i` crashed at `at`.
    pub fn crashed(&mut self, i: usize, at: Time) {
        if !matches!(self.truth[i], Truth::Up | Truth::Paused) {
            return;
        }
        self.truth[i] = Truth::Crashed;
        self.observer_gone(i);
        let eligible = self.running();
        let n = self.truth.len();
        self.open_crash[i] = Some(self.crashes.len());
        self.crashes.push(Crash {
            subject: i,
            at,
            ended: None,
            first_suspicion: None,
            first_dead: None,
            seen_dead: vec![None; n],
            eligible,
        });
    }

    /// Node `i` starts leaving at `at`.
    pub fn left(&mut self, i: usize, at: Time) {
        if !matches!(self.truth[i], Truth::Up | Truth::Paused) {
            return;
        }
        self.truth[i] = Truth::Left;
        self.observer_gone(i);
        let eligible = self.running();
        self.open_changes[i].push(self.changes.len());
        self.changes.push(Change {
            kind: ChangeKind::Left,
            subject: i,
            at,
            seen: vec![None; self.truth.len()],
            eligible,
        });
    }

    /// A new process runs under node `i`'s name from `at`.
    pub fn restarted(&mut self, i: usize, at: Time) {
        if let Some(c) = self.open_crash[i].take() {
            self.crashes[c].ended = Some(at);
        }
        self.truth[i] = Truth::Up;
        let mut eligible = self.running();
        eligible[i] = false;
        self.open_changes[i].push(self.changes.len());
        self.changes.push(Change {
            kind: ChangeKind::Rejoined,
            subject: i,
            at,
            seen: vec![None; self.truth.len()],
            eligible,
        });
    }

    /// `i` stops observing (crash, leave): verdicts it owed no longer count.
    fn observer_gone(&mut self, i: usize) {
        for c in &mut self.crashes {
            if c.seen_dead[i].is_none() {
                c.eligible[i] = false;
            }
        }
        for ch in &mut self.changes {
            if ch.seen[i].is_none() {
                ch.eligible[i] = false;
            }
        }
    }

    /// Node `observer` reported `event` at `at`; `subject` is the member it is about.
    pub fn observe(&mut self, at: Time, observer: usize, subject: Option<usize>, event: &Event) {
        let Some(s) = subject else { return };
        match event {
            Event::MemberDead { member, .. } => match self.truth[s] {
                Truth::Up => {
                    self.false_convictions.insert((s, member.incarnation));
                }
                Truth::Paused => {
                    self.false_convictions.insert((s, member.incarnation));
                    self.paused_convictions.insert((s, member.incarnation));
                }
                Truth::Crashed => {
                    if let Some(c) = self.open_crash[s] {
                        let c = &mut self.crashes[c];
                        c.first_dead.get_or_insert(at);
                        if c.seen_dead[observer].is_none() {
                            c.seen_dead[observer] = Some(at);
                        }
                    }
                }
                _ => {}
            },
            Event::MemberSuspected { member, .. } => match self.truth[s] {
                Truth::Up | Truth::Paused => {
                    self.false_suspicions.insert((s, member.incarnation));
                }
                Truth::Crashed => {
                    if let Some(c) = self.open_crash[s] {
                        self.crashes[c].first_suspicion.get_or_insert(at);
                    }
                }
                _ => {}
            },
            Event::MemberLeft(_) => {
                self.seen_change(observer, s, at, |k| matches!(k, ChangeKind::Left))
            }
            Event::MemberJoined(_) => {
                self.seen_change(observer, s, at, |k| matches!(k, ChangeKind::Rejoined))
            }
            _ => {}
        }
    }

    fn seen_change(
        &mut self,
        observer: usize,
        s: usize,
        at: Time,
        kind: impl Fn(&ChangeKind) -> bool,
    ) {
        for &c in &self.open_changes[s] {
            let ch = &mut self.changes[c];
            if kind(&ch.kind) && at >= ch.at && ch.seen[observer].is_none() {
                ch.seen[observer] = Some(at);
            }
        }
    }

    /// Final verdicts at the end of the run.
    pub fn verdicts(&self) -> Verdicts {
        let ms = |a: Time, b: Time| (b - a).as_secs_f64() * 1e3;
        let mut v = Verdicts {
            false_convictions: self.false_convictions.len() as u64,
            paused_convictions: self.paused_convictions.len() as u64,
            false_suspicions: self.false_suspicions.len() as u64,
            crashes: self.crashes.len() as u64,
            ..Verdicts::default()
        };
        for c in &self.crashes {
            if let Some(t) = c.first_suspicion {
                v.first_suspicion_ms.push(ms(c.at, t));
            }
            let observers: Vec<usize> = (0..c.eligible.len())
                .filter(|&o| c.eligible[o] && o != c.subject)
                .collect();
            let all_seen = observers
                .iter()
                .all(|&o| c.seen_dead[o].is_some_and(|t| c.ended.is_none_or(|e| t <= e)));
            if all_seen {
                v.detected += 1;
                let last = observers
                    .iter()
                    .filter_map(|&o| c.seen_dead[o])
                    .max()
                    .unwrap_or(c.at);
                v.detection_ms.push(ms(c.at, last));
                if let Some(first) = c.first_dead {
                    v.dissemination_ms.push(ms(first, last));
                }
            }
        }
        for ch in &self.changes {
            let observers: Vec<usize> = (0..ch.eligible.len())
                .filter(|&o| ch.eligible[o] && o != ch.subject)
                .collect();
            if observers.iter().all(|&o| ch.seen[o].is_some()) {
                let last = observers
                    .iter()
                    .filter_map(|&o| ch.seen[o])
                    .max()
                    .unwrap_or(ch.at);
                v.dissemination_ms.push(ms(ch.at, last));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rumor::{Cause, Member, MemberState, NodeId};

    fn member(inc: u64, state: MemberState) -> Member {
        Member {
            id: NodeId(1),
            name: Bytes::from_static(b"x"),
            addr: "127.0.0.1:1".parse().unwrap(),
            incarnation: inc,
            state,
            metadata: Bytes::new(),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank_and_null_when_empty() {
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v);
        assert_eq!((p.p50, p.p99, p.max), (Some(50.0), Some(99.0), Some(100.0)));
    }

    #[test]
    fn crash_detection_and_false_convictions() {
        let mut o = Oracle::new(3);
        for i in 0..3 {
            o.started(i);
        }
        let dead = |inc| Event::MemberDead {
            member: member(inc, MemberState::Dead),
            cause: Cause::Silence,
        };
        // A paused node convicted: a false (paused) conviction.
        o.paused(2, true);
        o.observe(Time::from_secs(1), 0, Some(2), &dead(0));
        o.observe(Time::from_secs(1), 1, Some(2), &dead(0));
        o.paused(2, false);
        o.crashed(1, Time::from_secs(10));
        o.observe(Time::from_secs(13), 0, Some(1), &dead(0));
        let v = o.verdicts();
        assert_eq!((v.false_convictions, v.paused_convictions), (1, 1));
        // Node 2 never saw the crash: not detected.
        assert_eq!((v.crashes, v.detected), (1, 0));
        o.observe(Time::from_secs(14), 2, Some(1), &dead(0));
        let v = o.verdicts();
        assert_eq!(v.detected, 1);
        assert_eq!(v.detection_ms, vec![4000.0]);
        assert_eq!(v.dissemination_ms, vec![1000.0]);
    }
}
