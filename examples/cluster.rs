//! An in-process cluster on the sans-IO core: 50 `Node`s on a virtual clock exchange
//! real encoded datagrams through a simulated network (1 ms ± 0.5 ms, optional loss).
//! Prints what node 0 sees, then measured crash-detection and dissemination times.
//!
//! ```text
//! cargo run --release --example cluster [-- --nodes 50 --seed 1 --loss 0.01]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Cluster;
use rumor::{Config, Event, MemberState, Time};

fn main() {
    let mut nodes = 50usize;
    let mut seed = 1u64;
    let mut loss = 0.0f64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().map(String::as_str).unwrap_or("");
        match flag.as_str() {
            "--nodes" => nodes = value.parse().expect("--nodes takes a number"),
            "--seed" => seed = value.parse().expect("--seed takes a number"),
            "--loss" => loss = value.parse().expect("--loss takes a fraction"),
            _ => {
                eprintln!("usage: cluster [--nodes N] [--seed S] [--loss P]");
                std::process::exit(2);
            }
        }
    }
    assert!(nodes >= 4, "--nodes must be at least 4");
    let cfg = Config::lan();
    println!(
        "# {nodes} nodes, seed {seed}, loss {loss}, strategy {}",
        cfg.strategy
    );
    let mut c = Cluster::new(nodes, cfg.clone(), seed);
    c.loss = loss;

    c.join_all();
    let converged = c.run_until_converged(Duration::from_secs(30));
    println!("# join: converged={converged} at {}", c.now);
    c.run_for(Duration::from_secs(30));

    // A crash.
    let crashed = nodes / 2;
    let t_crash = c.now;
    println!("# {}: crash node-{crashed}", c.now);
    c.crash(crashed);
    c.run_for(Duration::from_secs(15));

    // A pause shorter than acceptable_pause: suspected, refuted, never convicted.
    let paused = nodes / 3;
    let t_pause = c.now;
    println!("# {}: pause node-{paused} for 2s", c.now);
    c.pause(paused, Duration::from_secs(2));
    c.run_for(Duration::from_secs(10));

    // A metadata update.
    let updater = 1;
    let t_meta = c.now;
    c.with_node(updater, |n, now| {
        n.set_metadata(now, Bytes::from_static(b"v2"))
            .expect("fits")
    });
    c.run_for(Duration::from_secs(5));

    // A graceful leave.
    let leaver = nodes - 1;
    let t_leave = c.now;
    println!("# {}: node-{leaver} leaves", c.now);
    c.leave(leaver);
    c.run_for(Duration::from_secs(2));
    c.crash(leaver);
    c.run_for(Duration::from_secs(5));

    println!("# what node-0 saw:");
    for (t, e) in &c.slots[0].events {
        println!("{t}  {}", describe(e));
    }

    let others = |skip: &[usize]| {
        (0..nodes)
            .filter(move |i| !skip.contains(i))
            .collect::<Vec<_>>()
    };
    let crash_ms: Vec<f64> = others(&[crashed, leaver])
        .iter()
        .filter_map(|&i| c.dead_at(i, crashed))
        .map(|t| ms(t - t_crash))
        .collect();
    let first_suspect = others(&[crashed, leaver])
        .iter()
        .filter_map(|&i| {
            c.slots[i].events.iter().find(|(t, e)| {
                *t >= t_crash && matches!(e, Event::MemberSuspected { member, .. } if member.id == c.id(crashed))
            })
        })
        .map(|(t, _)| ms(*t - t_crash))
        .fold(f64::INFINITY, f64::min);
    let meta_ms = spread_ms(
        &c,
        &others(&[crashed, leaver, updater]),
        t_meta,
        |e| matches!(e, Event::MemberUpdated(m) if m.id == c.id(updater)),
    );
    let leave_ms = spread_ms(
        &c,
        &others(&[crashed, leaver]),
        t_leave,
        |e| matches!(e, Event::MemberLeft(m) if m.id == c.id(leaver)),
    );
    let paused_convicted = c.anyone_declared_dead(paused);
    let false_dead = others(&[crashed, paused])
        .iter()
        .filter(|&&j| c.anyone_declared_dead(j))
        .count();
    println!("# results");
    println!(
        "crash: first suspicion {first_suspect:.0} ms; dead at every live member: {}",
        summary(&crash_ms)
    );
    println!(
        "crash: seen dead by {}/{} live members",
        crash_ms.len(),
        nodes - 2
    );
    println!(
        "pause 2s (acceptable_pause {:?}): convicted={paused_convicted}",
        cfg.acceptable_pause
    );
    let _ = t_pause;
    println!(
        "metadata update known at every live member: {}",
        summary(&meta_ms)
    );
    println!("leave known at every live member: {}", summary(&leave_ms));
    println!("false convictions of live members: {false_dead}");
    let alive_everywhere = others(&[crashed, leaver])
        .iter()
        .all(|&i| c.state_at(i, paused) == Some(MemberState::Alive));
    println!("paused member alive everywhere at the end: {alive_everywhere}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn spread_ms(
    c: &Cluster,
    observers: &[usize],
    since: Time,
    f: impl Fn(&Event) -> bool,
) -> Vec<f64> {
    observers
        .iter()
        .filter_map(|&i| {
            c.slots[i]
                .events
                .iter()
                .find(|(t, e)| *t >= since && f(e))
                .map(|(t, _)| ms(*t - since))
        })
        .collect()
}

fn summary(v: &[f64]) -> String {
    if v.is_empty() {
        return "no samples".to_string();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let p = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (n={})",
        p(0.5),
        p(0.99),
        s[s.len() - 1],
        s.len()
    )
}

fn describe(e: &Event) -> String {
    match e {
        Event::JoinedCluster => "joined the cluster".into(),
        Event::Synced => "first state sync done".into(),
        Event::MemberJoined(m) => format!("{} joined (incarnation {})", m.name(), m.incarnation),
        Event::MemberUpdated(m) => format!("{} updated metadata {:?}", m.name(), m.metadata),
        Event::MemberSuspected { member, cause } => {
            format!("{} suspected ({})", member.name(), cause.as_str())
        }
        Event::MemberAlive(m) => format!(
            "{} refuted, alive at incarnation {}",
            m.name(),
            m.incarnation
        ),
        Event::MemberDead { member, cause } => {
            format!("{} dead ({})", member.name(), cause.as_str())
        }
        Event::MemberLeft(m) => format!("{} left", m.name()),
        Event::SelfSuspected { incarnation, .. } => {
            format!("I am suspected at incarnation {incarnation}")
        }
        Event::SelfRefuted { incarnation } => format!("I refuted at incarnation {incarnation}"),
        Event::Broadcast { origin, payload } => {
            format!("broadcast from {origin}: {} bytes", payload.len())
        }
        other => format!("{other:?}"),
    }
}
