//! `rumor-node`: one rumor member as a process, for Kubernetes and for trying rumor
//! out. Prints every membership event as one JSON line on stdout; logs and errors go to
//! stderr. `rumor-node --help` documents every flag.
//!
//! ```text
//! rumor-node --bind 127.0.0.1:7946 --name a
//! rumor-node --bind 127.0.0.1:7947 --name b --seeds 127.0.0.1:7946 --http 127.0.0.1:8080
//! rumor-node --bind 0.0.0.0:7946 --advertise $POD_IP:7946 --name $POD_NAME \
//!     --seeds rumor.$NS.svc.cluster.local:7946 --bootstrap ordinal-0 --http 0.0.0.0:8080
//! ```
//!
//! Each stdout line is a JSON object with `at_ms` (since start), `event` and, for
//! membership events, `member`, `incarnation`, `addr` and `cause` where relevant.
//! Events: `started`, `cluster_joined`, `synced`, `joined`, `updated`, `suspected`,
//! `alive`, `dead`, `left`, `self_suspected`, `refuted`, `broadcast`, `lagged`,
//! `draining`, `stopped`.

mod cli;
mod config_file;
mod doctor;
mod events;
mod http;

use std::process::ExitCode;

use rumor::{Lagged, RuntimeBuilder};
use serde_json::json;
use tokio::time::Instant;

use cli::{Args, OnOff};
use events::{emit, event_line};

/// Ctrl-C, or SIGTERM on Unix (what Kubernetes sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // `rumor-node doctor ...` checks a manifest instead of running a node.
    if std::env::args_os().nth(1).is_some_and(|a| a == "doctor") {
        return doctor::run(std::env::args_os().skip(1));
    }
    let t0 = Instant::now();
    let args = Args::load_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if let Some(level) = args.log {
        // stderr, so stdout stays one JSON event per line.
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let cfg = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        match (toml::to_string(&cfg), toml::to_string(&args.node_table())) {
            (Ok(c), Ok(n)) => {
                println!(
                    "# what this node runs with (the keyring is never printed); --config loads it"
                );
                print!("[config]\n{c}\n[node]\n{n}");
                return ExitCode::SUCCESS;
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("--check-config: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let name = args.member_name();
    let bootstrap = args.bootstrap.applies_to(&name);
    let mut builder = RuntimeBuilder::new(name)
        .bind(args.bind)
        .seeds(args.seeds.iter().cloned())
        .bootstrap(bootstrap)
        .seed_refresh(args.seed_refresh)
        .seed_retry(args.seed_retry)
        .drain(args.drain)
        .config(cfg)
        .refusals(args.refusals == OnOff::On)
        .metadata(args.metadata.clone().into_bytes());
    if let Some(a) = args.advertise {
        builder = builder.advertise(a);
    }
    // Before `start`: the driver registers its metrics when it starts, and a taken
    // HTTP port must stop the process before it joins anyone.
    let http = match args.http {
        Some(addr) => match (http::install_recorder(), http::bind(addr).await) {
            (Ok(prom), Ok(listener)) => Some((prom, listener)),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let h = match builder.start().await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((prom, listener)) = http {
        http::serve(listener, &h, prom);
    }
    emit(
        t0,
        json!({
            "event": "started",
            "member": h.name(),
            "incarnation": h.local_member().incarnation,
            "addr": h.advertise_addr().to_string(),
            "seeds": args.seeds.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "bootstrap": bootstrap,
            "http": args.http.map(|a| a.to_string()),
        }),
    );
    let mut events = h.events();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => break,
            ev = events.next() => match ev {
                Some(Ok(e)) => emit(t0, event_line(&h, &e)),
                Some(Err(Lagged(n))) => emit(t0, json!({"event": "lagged", "dropped": n})),
                None => {
                    emit(t0, json!({"event": "stopped", "member": h.name(), "reason": "driver stopped"}));
                    return ExitCode::FAILURE;
                }
            },
        }
    }
    emit(
        t0,
        json!({"event": "draining", "member": h.name(), "drain_ms": args.drain.as_millis() as u64}),
    );
    let leave = h.leave_and_drain(args.drain);
    tokio::pin!(leave);
    // Keep printing what happens during the drain.
    let mut open = true;
    let result = loop {
        tokio::select! {
            r = &mut leave => break r,
            ev = events.next(), if open => match ev {
                Some(Ok(e)) => emit(t0, event_line(&h, &e)),
                Some(Err(Lagged(n))) => emit(t0, json!({"event": "lagged", "dropped": n})),
                None => open = false,
            },
        }
    };
    if let Some(path) = &args.pauses {
        match h.write_pauses(path) {
            Ok(n) => eprintln!("wrote {n} pauses to {path}"),
            Err(e) => eprintln!("cannot write {path}: {e}"),
        }
    }
    let (reason, code) = match &result {
        Ok(()) => ("left".to_string(), ExitCode::SUCCESS),
        Err(e) => (e.to_string(), ExitCode::FAILURE),
    };
    emit(
        t0,
        json!({"event": "stopped", "member": h.name(), "reason": reason}),
    );
    code
}
