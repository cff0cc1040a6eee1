//! The live demo: a real cluster of rumor nodes on 127.0.0.1 (real UDP sockets, the
//! tokio runtime), in one process, in about 20 seconds:
//!
//! 1. six nodes start and join;
//! 2. one crashes (its driver is cancelled without a Leave and its socket closes) and
//!    every other node declares it dead;
//! 3. one is paused for 2 s (its driver sleeps without reading its socket, which is
//!    what a GC pause or `SIGSTOP` looks like): peers suspect it, it refutes when it
//!    resumes, and nobody declares it dead, since the pause is shorter than
//!    `acceptable_pause`.
//!
//! ```text
//! cargo run --release --example demo [-- --nodes 6]
//! ```
//!
//! Prints a timeline and a summary; exits 0 when every expectation held, 1 otherwise.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumor::detector::{PhiDetector, PhiParams};
use rumor::{Config, Event, Handle, Lagged, MemberState, RuntimeBuilder, Time};
use tokio::time::{Instant, sleep};

/// One membership event, as seen by one node.
#[derive(Clone, Debug)]
struct Record {
    at: Duration,
    observer: String,
    kind: &'static str,
    member: String,
}

type Records = Arc<Mutex<Vec<Record>>>;

fn demo_config() -> Config {
    let mut c = Config::local();
    c.probe_interval = Duration::from_millis(500);
    c.probe_timeout = Duration::from_millis(150);
    c.acceptable_pause = Duration::from_secs(3);
    c.gossip_interval = Duration::from_millis(100);
    c.join_retry_interval = Duration::from_millis(250);
    c
}

/// Seconds of silence the config's thresholds mean for a member acking at a steady
/// `probe_interval` rhythm: (to suspect, to convict).
fn implied_silences(c: &Config) -> (Duration, Duration) {
    let mut d = PhiDetector::new(&PhiParams {
        window: c.phi_window,
        min_std_dev: c.min_std_dev,
        acceptable_pause: c.acceptable_pause,
        first_interval: c.probe_interval,
    });
    for i in 0..=c.phi_window as u64 {
        d.heartbeat(Time::ZERO + c.probe_interval * i as u32);
    }
    (
        d.silence_for(c.phi_suspect, false),
        d.silence_for(c.phi_convict, true),
    )
}

fn secs(d: Duration) -> String {
    format!("{:>7.3}s", d.as_secs_f64())
}

/// Forwards one node's events into the shared record and prints the interesting ones.
fn watch(h: &Handle, t0: Instant, records: Records) {
    let mut events = h.events();
    let me = h.name().to_string();
    let handle = h.clone();
    tokio::spawn(async move {
        while let Some(item) = events.next().await {
            let at = t0.elapsed();
            let (kind, member, incarnation, note) = match item {
                Ok(Event::MemberJoined(m)) => ("joined", m.name().to_string(), m.incarnation, ""),
                Ok(Event::MemberSuspected { member, cause }) => (
                    "suspected",
                    member.name().to_string(),
                    member.incarnation,
                    cause.as_str(),
                ),
                Ok(Event::MemberAlive(m)) => ("alive", m.name().to_string(), m.incarnation, ""),
                Ok(Event::MemberDead { member, cause }) => (
                    "dead",
                    member.name().to_string(),
                    member.incarnation,
                    cause.as_str(),
                ),
                Ok(Event::MemberLeft(m)) => ("left", m.name().to_string(), m.incarnation, ""),
                Ok(Event::SelfSuspected { incarnation, .. }) => {
                    ("self_suspected", me.clone(), incarnation, "")
                }
                Ok(Event::SelfRefuted { incarnation }) => ("refuted", me.clone(), incarnation, ""),
                Ok(_) => continue,
                Err(Lagged(n)) => {
                    println!("{} {me:>4}  (missed {n} events)", secs(at));
                    continue;
                }
            };
            if kind != "joined" {
                let what = match kind {
                    "suspected" => format!("suspects {member} ({note})"),
                    "alive" => format!("sees {member} alive again (incarnation {incarnation})"),
                    "dead" => format!("declares {member} DEAD ({note})"),
                    "left" => format!("sees {member} leave"),
                    "self_suspected" => "hears it is suspected".to_string(),
                    _ => format!("refutes at incarnation {incarnation}"),
                };
                println!("{} {me:>4}  {what}", secs(at));
            }
            if let Ok(mut r) = records.lock() {
                r.push(Record {
                    at,
                    observer: me.clone(),
                    kind,
                    member,
                });
            }
        }
        drop(handle);
    });
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; the time it took.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        sleep(Duration::from_millis(10)).await;
    }
    None
}

fn state_of(observer: &Handle, name: &str) -> Option<MemberState> {
    observer
        .members()
        .into_iter()
        .find(|m| m.name() == name)
        .map(|m| m.state)
}

fn records(r: &Records) -> Vec<Record> {
    r.lock().map(|v| v.clone()).unwrap_or_default()
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut n = 6usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, v] = args.as_slice()
        && flag == "--nodes"
    {
        n = v.parse().unwrap_or(0);
    }
    if !(4..=50).contains(&n) {
        eprintln!("usage: demo [--nodes N]  (4 <= N <= 50)");
        return ExitCode::from(2);
    }
    let cfg = demo_config();
    let (suspect, convict) = implied_silences(&cfg);
    let pause = Duration::from_secs(2);
    println!(
        "rumor live demo: {n} nodes on 127.0.0.1, real UDP; probe_interval {} ms, acceptable_pause {} s",
        cfg.probe_interval.as_millis(),
        cfg.acceptable_pause.as_secs_f64()
    );
    println!(
        "the config implies: suspect after ~{:.2} s of silence, convict after ~{:.2} s \
         (with acceptable_pause), then gossip",
        suspect.as_secs_f64(),
        convict.as_secs_f64()
    );
    let t0 = Instant::now();
    let log: Records = Arc::new(Mutex::new(Vec::new()));
    let mut ok = true;

    // 1. Start and join.
    println!("\n-- 1. {n} nodes start; n1 forms the cluster, the others join through it");
    let mut nodes: Vec<Handle> = Vec::new();
    for i in 1..=n {
        let seeds: Vec<_> = nodes
            .first()
            .map(Handle::advertise_addr)
            .into_iter()
            .collect();
        let started = RuntimeBuilder::new(format!("n{i}"))
            .bind("127.0.0.1:0".parse().expect("address"))
            .seeds(seeds)
            .config(cfg.clone())
            .start()
            .await;
        let h = match started {
            Ok(h) => h,
            Err(e) => {
                eprintln!("n{i} cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        watch(&h, t0, log.clone());
        println!(
            "{} {:>4}  started on {}",
            secs(t0.elapsed()),
            h.name(),
            h.advertise_addr()
        );
        nodes.push(h);
    }
    let converged = wait_for(Duration::from_secs(10), || {
        nodes.iter().all(|a| {
            a.members()
                .iter()
                .filter(|m| m.state == MemberState::Alive)
                .count()
                == n - 1
        })
    })
    .await;
    match converged {
        Some(_) => println!(
            "{}       every node sees {} alive peers",
            secs(t0.elapsed()),
            n - 1
        ),
        None => {
            println!("join did not converge within 10 s");
            return ExitCode::FAILURE;
        }
    }
    let join_ms = t0.elapsed();
    // Let the detectors learn the ack rhythm.
    sleep(Duration::from_secs(3)).await;

    // 2. Crash.
    let victim = nodes[n / 2].clone();
    println!(
        "\n-- 2. {} crashes: its driver is cancelled, no Leave is sent, its socket closes",
        victim.name()
    );
    let t_crash = Instant::now();
    victim.abort();
    victim.stopped().await;
    println!("{} {:>4}  crashed", secs(t0.elapsed()), victim.name());
    let survivors: Vec<Handle> = nodes
        .iter()
        .filter(|h| h.name() != victim.name())
        .cloned()
        .collect();
    let detected = wait_for(Duration::from_secs(15), || {
        survivors
            .iter()
            .all(|s| state_of(s, victim.name()) == Some(MemberState::Dead))
    })
    .await;
    let crash_at = t_crash - t0;
    let deaths: Vec<Duration> = records(&log)
        .iter()
        .filter(|r| r.kind == "dead" && r.member == victim.name())
        .map(|r| r.at.saturating_sub(crash_at))
        .collect();
    let first_suspicion = records(&log)
        .iter()
        .filter(|r| r.kind == "suspected" && r.member == victim.name())
        .map(|r| r.at.saturating_sub(crash_at))
        .min();
    match detected {
        Some(d) => println!(
            "{}       {} is dead at all {} survivors, {:.2} s after the crash",
            secs(t0.elapsed()),
            victim.name(),
            survivors.len(),
            d.as_secs_f64()
        ),
        None => {
            println!("the crash was not detected by everyone within 15 s");
            ok = false;
        }
    }
    sleep(Duration::from_millis(1500)).await;

    // 3. Pause.
    let paused = nodes[1].clone();
    let inc_before = paused.local_member().incarnation;
    println!(
        "\n-- 3. {} pauses for {} s (its driver sleeps without reading its socket, like SIGSTOP)",
        paused.name(),
        pause.as_secs()
    );
    let t_pause = Instant::now() - t0;
    if paused.freeze(pause).await.is_err() {
        println!("the freeze failed");
        return ExitCode::FAILURE;
    }
    println!(
        "{} {:>4}  paused (until ~{})",
        secs(t0.elapsed()),
        paused.name(),
        secs(t_pause + pause).trim()
    );
    sleep(pause).await;
    let others: Vec<Handle> = survivors
        .iter()
        .filter(|h| h.name() != paused.name())
        .cloned()
        .collect();
    let back = wait_for(Duration::from_secs(10), || {
        others
            .iter()
            .all(|o| state_of(o, paused.name()) == Some(MemberState::Alive))
            && paused.local_member().incarnation > inc_before
    })
    .await;
    // Watch a while longer: a late conviction would show up here.
    sleep(Duration::from_secs(4)).await;
    let log_now = records(&log);
    let after_pause = |kind: &str| -> Vec<&Record> {
        log_now
            .iter()
            .filter(|r| r.kind == kind && r.member == paused.name() && r.at >= t_pause)
            .collect()
    };
    let suspected_by = after_pause("suspected")
        .iter()
        .map(|r| r.observer.clone())
        .collect::<std::collections::BTreeSet<_>>();
    let dead_by = after_pause("dead").len();
    let refuted = after_pause("refuted");
    let stall = paused.stall_histogram();

    // Summary.
    let false_convictions = log_now
        .iter()
        .filter(|r| r.kind == "dead" && r.member != victim.name())
        .count();
    println!("\n-- summary");
    println!(
        "join:   {n} nodes converged {:.2} s after the first started",
        join_ms.as_secs_f64()
    );
    if let (Some(first), Some(last)) = (deaths.iter().min(), deaths.iter().max()) {
        println!(
            "crash:  first suspicion after {}, dead at the first survivor after {:.2} s, at all {} after {:.2} s (config: ~{:.2} s of silence since the last ack, + gossip)",
            first_suspicion.map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64())),
            first.as_secs_f64(),
            deaths.len(),
            last.as_secs_f64(),
            convict.as_secs_f64()
        );
    }
    println!(
        "pause:  {} s (< acceptable_pause {} s): suspected by {} of {} peers, refuted {} time(s) (incarnation {} -> {}), declared dead by {}",
        pause.as_secs(),
        cfg.acceptable_pause.as_secs(),
        suspected_by.len(),
        others.len(),
        refuted.len(),
        inc_before,
        paused.local_member().incarnation,
        dead_by
    );
    println!(
        "        the paused node measured its own stall: timers fired up to {:.2} s late; core stalls detected: {}",
        stall.max().as_secs_f64(),
        paused.stats().stalls_detected
    );
    println!("false convictions: {false_convictions}");
    if back.is_none() {
        println!("FAIL: the paused node was not seen alive again by everyone");
        ok = false;
    }
    if dead_by > 0 || false_convictions > 0 {
        println!("FAIL: a live node was declared dead");
        ok = false;
    }
    if deaths.len() != survivors.len() {
        ok = false;
    }
    for h in &nodes {
        h.abort();
    }
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
