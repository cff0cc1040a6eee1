//! A whole service on one health registry: rumor's membership, a worker loop watched
//! by a liveness watchdog, a fake database checked for readiness (with a timeout and
//! a cached result), two startup gates, and a drain on SIGTERM.
//!
//! ```text
//! cargo run --example service --features axum -- --http 127.0.0.1:8080
//! curl -s '127.0.0.1:8080/readyz?verbose'
//! curl -s -XPOST -H 'x-admin-token: let-me-in' '127.0.0.1:8080/admin/db?hang=1'
//! curl -s '127.0.0.1:8080/readyz?verbose'            # db: no answer within the timeout
//! curl -s '127.0.0.1:8080/readyz?exclude=db'         # ok: an operator's override
//! curl -s -XPOST -H 'x-admin-token: let-me-in' '127.0.0.1:8080/admin/wedge?on=1'
//! curl -s '127.0.0.1:8080/livez?verbose'             # worker: ticked 2000 ms ago
//! kill -TERM $PID    # readiness 503 at once, drain, Leave, exit
//! ```
//!
//! Flags: `--http ADDR`, `--gossip ADDR`, `--seed ADDR` (repeatable), `--drain-ms N`,
//! `--db-latency-ms N`, `--db-fail`. Each step of the stop is printed on stdout as
//! `<ms since start> <step>`: `listening`, `signal`, `draining`, `left`, `exit`.

// The tests (tests/health_service.rs) drive parts `main` has no use for.
#[allow(dead_code)]
mod app;
#[allow(dead_code)]
mod fake_db;

use std::time::Duration;

use tokio::time::Instant;

fn usage(e: &str) -> ! {
    eprintln!(
        "{e}\nflags: --http ADDR --gossip ADDR --seed ADDR --drain-ms N --db-latency-ms N --db-fail"
    );
    std::process::exit(2)
}

fn parse(mut opts: app::Options) -> app::Options {
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--db-fail" {
            opts.db_failing = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let ms = || Duration::from_millis(value.parse().unwrap_or_else(|_| usage("not a number")));
        let addr = || value.parse().unwrap_or_else(|_| usage("not an address"));
        match flag.as_str() {
            "--http" => opts.http = addr(),
            "--gossip" => opts.gossip = addr(),
            "--seed" => opts.seeds.push(addr()),
            "--drain-ms" => opts.drain = ms(),
            "--db-latency-ms" => opts.db_latency = ms(),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    opts
}

/// SIGTERM (what Kubernetes sends) or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let say = move |step: &str| println!("{} {step}", t0.elapsed().as_millis());
    let opts = parse(app::Options::local());
    let drain = opts.drain;
    let service = app::start(opts).await?;
    println!(
        "{} listening http={} gossip={}",
        t0.elapsed().as_millis(),
        service.http,
        service.node.advertise_addr()
    );
    terminated().await;
    say("signal");
    service.stop(drain, say).await;
    Ok(())
}
