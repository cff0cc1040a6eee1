//! A standalone rumor node: one process, one member. Prints every membership event as
//! one JSON line on stdout; logs and errors go to stderr.
//!
//! ```text
//! cargo run --example node -- --bind 127.0.0.1:7946 --name a
//! cargo run --example node -- --bind 127.0.0.1:7947 --name b --seeds 127.0.0.1:7946
//! cargo run --features axum --example node -- --name c --bind 127.0.0.1:7948 \
//!     --seeds 127.0.0.1:7946 --http 127.0.0.1:8080 --preset local --set acceptable_pause=2s
//! ```
//!
//! Flags (`--flag value` or `--flag=value`):
//! - `--bind ADDR` (default `127.0.0.1:7946`), `--advertise ADDR` (default: the bound
//!   address; required when binding `0.0.0.0`)
//! - `--seeds HOST:PORT,HOST:PORT` resolved once at start (a DNS name may stand for
//!   several members, e.g. a Kubernetes headless Service)
//! - `--name NAME` (default `$HOSTNAME`, else `node-PORT`)
//! - `--preset lan|wan|local` (default `lan`), then `--set field=value` (repeatable; any
//!   field of `rumor::Config`, e.g. `--set probe_interval=500ms`)
//! - `--metadata TEXT`
//! - `--http ADDR`: `/livez`, `/readyz`, `/startupz` and `/metrics` (Prometheus text);
//!   needs `--features axum`
//! - `--drain DURATION` (default `5s`): on Ctrl-C or SIGTERM, readiness goes false, then
//!   after this delay the node gossips Leave and exits
//! - `--pauses FILE`: on exit, write the timer-lateness samples for
//!   `rumor-sim tune --pauses FILE`
//! - `--refusals on|off` (default `on`): convict a member whose port the network reports
//!   closed (ICMP port unreachable, Linux) in `refusal_window`; `off` detects by silence
//!   alone
//! - `--log LEVEL` (`error` … `trace`; default none): the library's tracing lines on
//!   stderr (`debug` shows each refusal the driver reads and each send that failed)
//!
//! Each stdout line is a JSON object with `at_ms` (since start), `event` and, for
//! membership events, `member`, `incarnation`, `addr` and `cause` where relevant.
//! Events: `started`, `cluster_joined`, `synced`, `joined`, `updated`, `suspected`,
//! `alive`, `dead`, `left`, `self_suspected`, `refuted`, `broadcast`, `lagged`,
//! `draining`, `stopped`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use rumor::duration::parse_duration;
use rumor::{Config, Event, Handle, Lagged, Member, RuntimeBuilder};
use serde_json::{Value, json};
use tokio::time::Instant;

struct Args {
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    seeds: Vec<String>,
    name: Option<String>,
    preset: String,
    sets: Vec<(String, String)>,
    metadata: String,
    http: Option<SocketAddr>,
    drain: Duration,
    pauses: Option<String>,
    refusals: bool,
    log: Option<tracing::Level>,
}

const USAGE: &str = "usage: node [--bind ADDR] [--advertise ADDR] [--seeds A,B] [--name NAME] \
[--preset lan|wan|local] [--set field=value]... [--metadata TEXT] [--http ADDR] \
[--drain DURATION] [--pauses FILE] [--refusals on|off] [--log error|warn|info|debug|trace]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bind: "127.0.0.1:7946".parse().map_err(|e| format!("{e}"))?,
        advertise: None,
        seeds: Vec::new(),
        name: None,
        preset: "lan".into(),
        sets: Vec::new(),
        metadata: String::new(),
        http: None,
        drain: Duration::from_secs(5),
        pauses: None,
        refusals: true,
        log: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.into());
        }
        // `--flag value` or `--flag=value`.
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), v.to_string()),
            _ => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
                (arg, v)
            }
        };
        let addr = |v: &str| -> Result<SocketAddr, String> {
            v.parse()
                .map_err(|_| format!("{flag} {v:?}: expected IP:PORT"))
        };
        match flag.as_str() {
            "--bind" => a.bind = addr(&value)?,
            "--advertise" => a.advertise = Some(addr(&value)?),
            "--seeds" => a.seeds.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            "--name" => a.name = Some(value),
            "--preset" => a.preset = value,
            "--set" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--set {value:?}: expected field=value"))?;
                a.sets.push((k.trim().to_string(), v.trim().to_string()));
            }
            "--metadata" => a.metadata = value,
            "--http" => a.http = Some(addr(&value)?),
            "--drain" => {
                a.drain = parse_duration(&value)
                    .ok_or_else(|| format!("--drain {value:?}: expected a duration like 5s"))?;
            }
            "--pauses" => a.pauses = Some(value),
            "--refusals" => {
                a.refusals = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--refusals {value:?}: expected on or off")),
                };
            }
            "--log" => {
                a.log = Some(value.parse().map_err(|_| {
                    format!("--log {value:?}: expected error, warn, info, debug or trace")
                })?);
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn config(a: &Args) -> Result<Config, String> {
    let mut cfg = match a.preset.as_str() {
        "lan" => Config::lan(),
        "wan" => Config::wan(),
        "local" => Config::local(),
        other => return Err(format!("--preset {other:?}: expected lan, wan or local")),
    };
    for (k, v) in &a.sets {
        cfg.set(k, v).map_err(|e| format!("--set {k}={v}: {e}"))?;
    }
    cfg.validate().map_err(|e| format!("invalid config: {e}"))?;
    Ok(cfg)
}

/// Resolves each `host:port`; a name that does not resolve (yet) is skipped with a
/// warning, so the first member of a new cluster starts alone.
async fn resolve(seeds: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for s in seeds {
        match tokio::net::lookup_host(s.as_str()).await {
            Ok(addrs) => out.extend(addrs),
            Err(e) => eprintln!("warning: seed {s}: {e}"),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn emit(t0: Instant, mut line: Value) {
    if let Value::Object(map) = &mut line {
        map.insert("at_ms".into(), json!(t0.elapsed().as_millis() as u64));
    }
    println!("{line}");
}

fn member_line(event: &str, m: &Member) -> Value {
    json!({
        "event": event,
        "member": m.name(),
        "incarnation": m.incarnation,
        "addr": m.addr.to_string(),
        "state": m.state.as_str(),
    })
}

fn event_line(h: &Handle, e: &Event) -> Value {
    match e {
        Event::JoinedCluster => json!({"event": "cluster_joined", "member": h.name()}),
        Event::Synced => json!({"event": "synced", "member": h.name()}),
        Event::MemberJoined(m) => member_line("joined", m),
        Event::MemberUpdated(m) => {
            let mut v = member_line("updated", m);
            v["metadata"] = json!(String::from_utf8_lossy(&m.metadata));
            v
        }
        Event::MemberSuspected { member, cause } => {
            let mut v = member_line("suspected", member);
            v["cause"] = json!(cause.as_str());
            v
        }
        Event::MemberAlive(m) => member_line("alive", m),
        Event::MemberDead { member, cause } => {
            let mut v = member_line("dead", member);
            v["cause"] = json!(cause.as_str());
            v
        }
        Event::MemberLeft(m) => {
            let mut v = member_line("left", m);
            v["cause"] = json!("left");
            v
        }
        Event::SelfSuspected { by, incarnation } => {
            let by = h
                .members()
                .into_iter()
                .find(|m| m.id == *by)
                .map_or_else(|| by.to_string(), |m| m.name().to_string());
            json!({"event": "self_suspected", "member": h.name(), "incarnation": incarnation, "by": by})
        }
        Event::SelfRefuted { incarnation } => {
            json!({"event": "refuted", "member": h.name(), "incarnation": incarnation})
        }
        Event::Broadcast { origin, payload } => json!({
            "event": "broadcast",
            "origin": origin.to_string(),
            "len": payload.len(),
        }),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}

#[cfg(feature = "axum")]
async fn serve_http(
    addr: SocketAddr,
    h: &Handle,
    prom: metrics_exporter_prometheus::PrometheusHandle,
) -> Result<(), String> {
    use axum::routing::get;
    let upkeep = prom.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let app: axum::Router = h
        .health()
        .router()
        .route("/metrics", get(move || async move { prom.render() }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--http {addr}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("http server: {e}");
        }
    });
    Ok(())
}

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
    let t0 = Instant::now();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(level) = args.log {
        // stderr, so stdout stays one JSON event per line.
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let cfg = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    #[cfg(not(feature = "axum"))]
    if args.http.is_some() {
        eprintln!("--http needs the axum feature: cargo run --features axum --example node -- ...");
        return ExitCode::from(2);
    }
    let name = args.name.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("node-{}", args.bind.port()))
    });
    let seeds = resolve(&args.seeds).await;
    // A metrics recorder must be installed before the driver starts: it registers its
    // metrics then.
    let mut builder = RuntimeBuilder::new(name)
        .bind(args.bind)
        .seeds(seeds.iter().copied())
        .config(cfg)
        .refusals(args.refusals)
        .metadata(args.metadata.clone().into_bytes());
    if let Some(a) = args.advertise {
        builder = builder.advertise(a);
    }
    #[cfg(feature = "axum")]
    let prom = match args.http {
        Some(_) => match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("metrics recorder: {e}");
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
    #[cfg(feature = "axum")]
    if let (Some(addr), Some(prom)) = (args.http, prom) {
        if let Err(e) = serve_http(addr, &h, prom).await {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    emit(
        t0,
        json!({
            "event": "started",
            "member": h.name(),
            "incarnation": h.local_member().incarnation,
            "addr": h.advertise_addr().to_string(),
            "seeds": seeds.iter().map(ToString::to_string).collect::<Vec<_>>(),
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
    emit(
        t0,
        json!({"event": "stopped", "member": h.name(), "reason": match result {
            Ok(()) => "left".to_string(),
            Err(e) => e.to_string(),
        }}),
    );
    ExitCode::SUCCESS
}
