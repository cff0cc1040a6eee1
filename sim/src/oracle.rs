//! Ground truth and the verdicts checked against it: every field of the JSON contract
//! that is about correctness or speed is computed here.

use std::collections::{BTreeMap, BTreeSet};

use rumor::{Cause, Event, Member, Time};

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
    /// Observers up (running, not paused) at the crash: `detection_ms` is about them.
    eligible: Vec<bool>,
    /// Observers paused at the crash: their latency is reported apart, since a frozen
    /// process detects nothing until it resumes.
    paused_at_crash: Vec<bool>,
}

/// One member life declared dead while it was alive or paused: who, by how many
/// observers, when, why, and how long the member had been stalled then.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WrongVerdict {
    /// The member's node index in the simulation.
    pub member: usize,
    /// Which process under that name (1 for the first; a restart starts the next).
    pub life: u64,
    /// The incarnation the first verdict named.
    pub incarnation: u64,
    /// Distinct observers that declared it dead.
    pub observers: usize,
    /// When the first of them did, in simulated ms from the start.
    pub first_ms: f64,
    /// The first verdict's cause (`silence`, `refused`).
    pub cause: String,
    /// How long the member had been paused when the first verdict came (0 if it was
    /// running).
    pub stalled_ms: f64,
}

/// The convergence window after a partition heals: from the heal to the next fault or
/// partition start (or the end of the run).
#[derive(Debug)]
struct Heal {
    /// When the partition healed.
    at: Time,
    /// Nodes running (up or paused) when the window opened: the observers and subjects
    /// it is about. No crash, leave, restart or pause falls inside a window, so they run
    /// to its close.
    eligible: Vec<bool>,
    /// The last time an eligible observer's view of an eligible subject turned between
    /// live and not live inside the window.
    last_turn: Option<Time>,
    /// Open: between [`Oracle::heal_begin`] and [`Oracle::heal_end`].
    open: bool,
    /// Closed with every eligible view live (`Some(true)`) or not (`Some(false)`).
    healed: Option<bool>,
}

/// Every observer's view of every subject (live or not), kept only while a heal window
/// is open: n² flags, row-major by observer.
#[derive(Debug)]
struct Views {
    n: usize,
    live: Vec<bool>,
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
    /// Distinct (member, life) pairs declared dead while alive or paused; a verdict about
    /// an earlier life of a restarted member is not one.
    pub false_convictions: u64,
    /// Of those, while paused.
    pub paused_convictions: u64,
    /// Distinct (member, life) pairs suspected while alive or paused.
    pub false_suspicions: u64,
    /// Dead verdicts about an earlier life of a member now running again (not wrong).
    pub previous_life_verdicts: u64,
    /// The false convictions, named.
    pub wrong: Vec<WrongVerdict>,
    /// Crashes a restart superseded before every observer saw them dead (not misses).
    pub superseded: u64,
    /// Crash → dead at each observer that was paused at the crash, ms (apart from
    /// `detection_ms`).
    pub detection_paused_ms: Vec<f64>,
    /// Dead verdicts about a member alive or paused, one per observer that reached one:
    /// what applications see (a `MemberDead` each), where `false_convictions` counts
    /// members.
    pub false_dead_verdicts: u64,
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
    /// Partition heal → every running observer holds every running member live for
    /// good (until the window closes), ms; one sample per healed partition.
    pub heal_ms: Vec<f64>,
    /// Partitions healed before the end of the run whose views were not all live yet
    /// when their window closed.
    pub unhealed_partitions: u64,
}

/// Ground truth plus what every node said.
#[derive(Debug)]
pub struct Oracle {
    truth: Vec<Truth>,
    crashes: Vec<Crash>,
    open_crash: Vec<Option<usize>>,
    changes: Vec<Change>,
    open_changes: Vec<Vec<usize>>,
    /// Wrong verdicts by (member, life).
    wrong: BTreeMap<(usize, u64), (WrongVerdict, BTreeSet<usize>)>,
    paused_convictions: BTreeSet<(usize, u64)>,
    false_suspicions: BTreeSet<(usize, u64)>,
    false_dead_verdicts: u64,
    /// Dead verdicts about an earlier life of a member now running again.
    previous_life_verdicts: u64,
    /// Each node's current life (0 before it starts).
    life: Vec<u64>,
    /// Incarnations the node's current life has held, and those its earlier lives held.
    held: Vec<BTreeSet<u64>>,
    held_before: Vec<BTreeSet<u64>>,
    /// When each paused node's current stall began.
    paused_since: Vec<Option<Time>>,
    /// When each node's current life began.
    life_began: Vec<Time>,
    /// When any observer first suspected (member, incarnation).
    first_suspected: BTreeMap<(usize, u64), Time>,
    heals: Vec<Heal>,
    views: Option<Views>,
}

/// The member a membership event is about, in the state it leaves it; `None` for events
/// that are not about another member's state.
pub(crate) fn event_member(event: &Event) -> Option<&Member> {
    match event {
        Event::MemberJoined(m)
        | Event::MemberUpdated(m)
        | Event::MemberAlive(m)
        | Event::MemberLeft(m)
        | Event::MemberSuspected { member: m, .. }
        | Event::MemberDead { member: m, .. } => Some(m),
        _ => None,
    }
}

fn cause_name(c: Cause) -> &'static str {
    match c {
        Cause::Silence => "silence",
        Cause::Refused => "refused",
        Cause::Left => "left",
        _ => "other",
    }
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
            wrong: BTreeMap::new(),
            paused_convictions: BTreeSet::new(),
            false_suspicions: BTreeSet::new(),
            false_dead_verdicts: 0,
            previous_life_verdicts: 0,
            life: vec![0; n],
            held: vec![BTreeSet::new(); n],
            held_before: vec![BTreeSet::new(); n],
            paused_since: vec![None; n],
            life_began: vec![Time::ZERO; n],
            first_suspected: BTreeMap::new(),
            heals: Vec::new(),
            views: None,
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
        self.life[i] = 1;
    }

    /// Node `i`'s current life holds `incarnation` (reported whenever it changes).
    pub fn incarnation(&mut self, i: usize, incarnation: u64) {
        self.held[i].insert(incarnation);
    }

    /// Node `i` paused / resumed at `at`.
    pub fn paused(&mut self, i: usize, paused: bool, at: Time) {
        if matches!(self.truth[i], Truth::Up | Truth::Paused) {
            self.truth[i] = if paused { Truth::Paused } else { Truth::Up };
            if paused {
                self.paused_since[i].get_or_insert(at);
            } else {
                self.paused_since[i] = None;
            }
        }
    }

    /// Whether a verdict naming `incarnation` is about node `s`'s current life: an
    /// incarnation the current life held, or one no life held; not one only an earlier
    /// life held (a restart that began at a lower incarnation, its clock stepped back),
    /// nor one both held whose suspicion began before the current life did (the
    /// accusation was about the process that was then gone).
    fn about_current_life(&self, s: usize, incarnation: u64) -> bool {
        let earlier = self.held_before[s].contains(&incarnation);
        if !earlier {
            return true;
        }
        self.held[s].contains(&incarnation)
            && self
                .first_suspected
                .get(&(s, incarnation))
                .is_none_or(|&t| t >= self.life_began[s])
    }

    /// Node `i` crashed at `at`.
    pub fn crashed(&mut self, i: usize, at: Time) {
        if !matches!(self.truth[i], Truth::Up | Truth::Paused) {
            return;
        }
        self.truth[i] = Truth::Crashed;
        self.paused_since[i] = None;
        self.observer_gone(i);
        let eligible: Vec<bool> = self.truth.iter().map(|t| *t == Truth::Up).collect();
        let paused_at_crash: Vec<bool> = self.truth.iter().map(|t| *t == Truth::Paused).collect();
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
            paused_at_crash,
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
        self.life[i] += 1;
        self.life_began[i] = at;
        let before = std::mem::take(&mut self.held[i]);
        self.held_before[i].extend(before);
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

    /// Registers the window of a partition that heals at `at`; returns its index for
    /// [`Oracle::heal_begin`] (called at `at`) and [`Oracle::heal_end`] (called when
    /// the window closes: at the next fault or partition start, or the end of the run).
    pub fn heal_window(&mut self, at: Time) -> usize {
        self.heals.push(Heal {
            at,
            eligible: Vec::new(),
            last_turn: None,
            open: false,
            healed: None,
        });
        self.heals.len() - 1
    }

    /// Opens heal window `h` now (its heal time): the nodes running now are its
    /// observers and subjects, and `live(observer, subject)` is every running
    /// observer's view now. From here on, [`Oracle::observe`] follows the views.
    pub fn heal_begin(&mut self, h: usize, live: impl Fn(usize, usize) -> bool) {
        let n = self.truth.len();
        let running = self.running();
        let views = self.views.get_or_insert_with(|| Views {
            n,
            live: vec![false; n * n],
        });
        for (row, (o, &runs)) in views
            .live
            .chunks_mut(n.max(1))
            .zip(running.iter().enumerate())
        {
            for (s, cell) in row.iter_mut().enumerate() {
                *cell = runs && s != o && live(o, s);
            }
        }
        let heal = &mut self.heals[h];
        heal.eligible = running;
        heal.last_turn = None;
        heal.open = true;
    }

    /// Closes heal window `h` now (its close time): it healed if every eligible
    /// observer holds every other eligible node live, by `live(observer, subject)`.
    pub fn heal_end(&mut self, h: usize, live: impl Fn(usize, usize) -> bool) {
        let heal = &mut self.heals[h];
        if !heal.open {
            return;
        }
        let e = &heal.eligible;
        let healed = (0..e.len())
            .filter(|&o| e[o])
            .all(|o| (0..e.len()).all(|s| s == o || !e[s] || live(o, s)));
        heal.healed = Some(healed);
        heal.open = false;
        heal.eligible = Vec::new();
        if !self.heals.iter().any(|h| h.open) {
            self.views = None;
        }
    }

    /// Node `observer` reported `event` at `at`; `subject` is the member it is about.
    pub fn observe(&mut self, at: Time, observer: usize, subject: Option<usize>, event: &Event) {
        let Some(s) = subject else { return };
        if let (Some(views), Some(live)) = (
            self.views.as_mut(),
            event_member(event).map(|m| m.state.is_live()),
        ) && s != observer
        {
            let cell = &mut views.live[observer * views.n + s];
            if *cell != live {
                *cell = live;
                for h in self.heals.iter_mut().filter(|h| h.open) {
                    if h.eligible[observer] && h.eligible[s] {
                        h.last_turn = Some(at);
                    }
                }
            }
        }
        if let Event::MemberSuspected { member, .. } = event {
            self.first_suspected
                .entry((s, member.incarnation))
                .or_insert(at);
        }
        match event {
            Event::MemberDead { member, cause } => match self.truth[s] {
                Truth::Up | Truth::Paused if !self.about_current_life(s, member.incarnation) => {
                    self.previous_life_verdicts += 1;
                }
                Truth::Up | Truth::Paused => {
                    let life = self.life[s];
                    let stalled =
                        self.paused_since[s].map_or(0.0, |p| (at - p).as_secs_f64() * 1e3);
                    let (w, observers) = self.wrong.entry((s, life)).or_insert_with(|| {
                        (
                            WrongVerdict {
                                member: s,
                                life,
                                incarnation: member.incarnation,
                                observers: 0,
                                first_ms: at.as_secs_f64() * 1e3,
                                cause: cause_name(*cause).to_string(),
                                stalled_ms: stalled,
                            },
                            BTreeSet::new(),
                        )
                    });
                    observers.insert(observer);
                    w.observers = observers.len();
                    self.false_dead_verdicts += 1;
                    if self.truth[s] == Truth::Paused {
                        self.paused_convictions.insert((s, life));
                    }
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
                Truth::Up | Truth::Paused if self.about_current_life(s, member.incarnation) => {
                    self.false_suspicions.insert((s, self.life[s]));
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
            false_convictions: self.wrong.len() as u64,
            previous_life_verdicts: self.previous_life_verdicts,
            wrong: self.wrong.values().map(|(w, _)| w.clone()).collect(),
            paused_convictions: self.paused_convictions.len() as u64,
            false_suspicions: self.false_suspicions.len() as u64,
            false_dead_verdicts: self.false_dead_verdicts,
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
            for o in (0..c.paused_at_crash.len()).filter(|&o| c.paused_at_crash[o]) {
                if let Some(t) = c.seen_dead[o] {
                    v.detection_paused_ms.push(ms(c.at, t));
                }
            }
            if !all_seen && c.ended.is_some() {
                // A new process took the name over before everyone saw the old one
                // dead: the restart answered the question, so it is not a miss.
                v.superseded += 1;
            }
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
        for h in &self.heals {
            match h.healed {
                Some(true) => v.heal_ms.push(h.last_turn.map_or(0.0, |t| ms(h.at, t))),
                Some(false) => v.unhealed_partitions += 1,
                None => {}
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
        for i in 0..3 {
            o.incarnation(i, 0);
        }
        // A paused node convicted: a false (paused) conviction.
        o.paused(2, true, Time::from_millis(500));
        o.observe(Time::from_secs(1), 0, Some(2), &dead(0));
        o.observe(Time::from_secs(1), 1, Some(2), &dead(0));
        o.paused(2, false, Time::from_secs(2));
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
        // Named: node 2's first life, by two observers, 500 ms into its pause.
        assert_eq!(
            v.wrong,
            vec![WrongVerdict {
                member: 2,
                life: 1,
                incarnation: 0,
                observers: 2,
                first_ms: 1000.0,
                cause: "silence".into(),
                stalled_ms: 500.0,
            }]
        );
    }

    #[test]
    fn a_verdict_about_an_earlier_life_is_not_a_false_conviction() {
        let mut o = Oracle::new(2);
        o.started(0);
        o.started(1);
        o.incarnation(0, 0);
        for inc in [0, 3, 5] {
            o.incarnation(1, inc);
        }
        o.crashed(1, Time::from_secs(10));
        // The new process's clock stepped back: it starts at incarnation 0 again.
        o.restarted(1, Time::from_secs(12));
        o.incarnation(1, 0);
        let dead = |inc| Event::MemberDead {
            member: member(inc, MemberState::Dead),
            cause: Cause::Silence,
        };
        // A verdict naming incarnation 5, which only the first life held: late news.
        o.observe(Time::from_secs(13), 0, Some(1), &dead(5));
        let v = o.verdicts();
        assert_eq!((v.false_convictions, v.previous_life_verdicts), (0, 1));
        // The crash was superseded by the restart before node 0 saw it dead: no miss.
        assert_eq!((v.crashes, v.detected, v.superseded), (1, 0, 1));
        // A verdict naming 0, which the new life holds, is about the new life.
        o.observe(Time::from_secs(14), 0, Some(1), &dead(0));
        let v = o.verdicts();
        assert_eq!(v.false_convictions, 1);
        assert_eq!((v.wrong[0].member, v.wrong[0].life), (1, 2));
    }

    #[test]
    fn a_verdict_whose_accusation_began_in_an_earlier_life_is_about_that_life() {
        let mut o = Oracle::new(2);
        o.started(0);
        o.started(1);
        o.incarnation(0, 0);
        o.incarnation(1, 0);
        o.crashed(1, Time::from_secs(10));
        let ev = |state| match state {
            MemberState::Dead => Event::MemberDead {
                member: member(0, state),
                cause: Cause::Silence,
            },
            _ => Event::MemberSuspected {
                member: member(0, state),
                cause: Cause::Silence,
            },
        };
        // Suspected at 0 while crashed; a new process starts at 0 at 12 s; the
        // suspicion's verdict comes at 13 s.
        o.observe(Time::from_secs(11), 0, Some(1), &ev(MemberState::Suspect));
        o.restarted(1, Time::from_secs(12));
        o.incarnation(1, 0);
        o.observe(Time::from_secs(13), 0, Some(1), &ev(MemberState::Dead));
        let v = o.verdicts();
        assert_eq!((v.false_convictions, v.previous_life_verdicts), (0, 1));
    }

    #[test]
    fn observers_paused_at_a_crash_are_reported_apart() {
        let mut o = Oracle::new(3);
        for i in 0..3 {
            o.started(i);
            o.incarnation(i, 0);
        }
        let dead = Event::MemberDead {
            member: member(0, MemberState::Dead),
            cause: Cause::Silence,
        };
        o.paused(2, true, Time::from_secs(9));
        o.crashed(1, Time::from_secs(10));
        o.observe(Time::from_secs(12), 0, Some(1), &dead);
        let v = o.verdicts();
        // Node 2 was frozen at the crash: the crash is detected without it.
        assert_eq!(v.detected, 1);
        assert_eq!(v.detection_ms, vec![2000.0]);
        o.paused(2, false, Time::from_secs(20));
        o.observe(Time::from_secs(21), 2, Some(1), &dead);
        let v = o.verdicts();
        assert_eq!(v.detection_ms, vec![2000.0]);
        assert_eq!(v.detection_paused_ms, vec![11000.0]);
    }

    #[test]
    fn heal_is_the_last_turn_to_live_and_unhealed_without_one() {
        let mut o = Oracle::new(4);
        for i in 0..4 {
            o.started(i);
        }
        let ev = |state| match state {
            MemberState::Dead => Event::MemberDead {
                member: member(0, state),
                cause: Cause::Silence,
            },
            MemberState::Suspect => Event::MemberSuspected {
                member: member(0, state),
                cause: Cause::Silence,
            },
            _ => Event::MemberJoined(member(1, state)),
        };
        let ms = Time::from_millis;
        // Partition {0, 1} | {2, 3}: at the heal, each side holds the other dead.
        let cut = |a: usize, b: usize| (a < 2) != (b < 2);
        let first = o.heal_window(ms(10_000));
        let second = o.heal_window(ms(30_000));
        o.heal_begin(first, |a, b| !cut(a, b));
        // Views turn live; suspecting a member held alive is no turn (both are live).
        o.observe(ms(11_000), 0, Some(2), &ev(MemberState::Alive));
        o.observe(ms(11_500), 0, Some(1), &ev(MemberState::Suspect));
        for (a, b) in [(0, 3), (1, 2), (1, 3), (2, 0), (2, 1), (3, 0)] {
            o.observe(ms(12_000), a, Some(b), &ev(MemberState::Alive));
        }
        // A suspicion after everyone is live moves nothing; a late revival does.
        o.observe(ms(12_500), 2, Some(3), &ev(MemberState::Suspect));
        o.observe(ms(13_000), 3, Some(1), &ev(MemberState::Alive));
        // Events about oneself or with no subject are not views.
        o.observe(ms(14_000), 3, Some(3), &ev(MemberState::Dead));
        o.observe(ms(14_000), 3, None, &ev(MemberState::Dead));
        o.heal_end(first, |_, _| true);
        let v = o.verdicts();
        assert_eq!(
            (v.heal_ms.clone(), v.unhealed_partitions),
            (vec![3000.0], 0)
        );

        // The second window: node 3 is not running (not started again: say it left),
        // and node 1 still holds node 2 dead when the window closes.
        o.left(3, ms(20_000));
        o.heal_begin(second, |a, b| !cut(a, b));
        o.observe(ms(31_000), 0, Some(2), &ev(MemberState::Alive));
        o.heal_end(second, |a, b| !(a == 1 && b == 2));
        let v = o.verdicts();
        assert_eq!((v.heal_ms, v.unhealed_partitions), (vec![3000.0], 1));
        // Views are only kept while a window is open.
        assert!(o.views.is_none());
    }

    #[test]
    fn a_heal_with_no_turn_is_zero_and_ignores_nodes_not_running() {
        let mut o = Oracle::new(3);
        o.started(0);
        o.started(1);
        // Node 2 never starts: it is no one's subject or observer.
        let h = o.heal_window(Time::from_secs(5));
        o.heal_begin(h, |_, s| s != 2);
        o.observe(
            Time::from_secs(6),
            0,
            Some(2),
            &Event::MemberJoined(member(0, MemberState::Alive)),
        );
        o.heal_end(h, |_, s| s != 2);
        let v = o.verdicts();
        assert_eq!((v.heal_ms, v.unhealed_partitions), (vec![0.0], 0));
        assert_eq!(
            Percentiles::of(&Oracle::new(1).verdicts().heal_ms),
            Percentiles::default()
        );
    }
}
