//! The service: rumor, a worker loop, a fake database and an HTTP API, all answering
//! to one health registry. Shared by `main.rs` and the tests (`tests/health_*.rs`
//! include it with `#[path]`), so the tests exercise exactly what the example runs.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use rumor::{CancellationToken, CheckOptions, Config, Handle, Health, RuntimeBuilder, StartupGate};
use tokio::task::JoinHandle;

use crate::fake_db::FakeDb;

/// What the service is told at start (flags in `main.rs`, values in the tests).
#[derive(Clone, Debug)]
pub struct Options {
    /// The HTTP listener (API, admin and the probes).
    pub http: SocketAddr,
    /// rumor's UDP socket.
    pub gossip: SocketAddr,
    /// rumor's seeds.
    pub seeds: Vec<SocketAddr>,
    /// Readiness false → this long → Leave → exit. On Kubernetes: the readiness
    /// probe's `periodSeconds × failureThreshold`.
    pub drain: Duration,
    /// The fake database's latency and failures.
    pub db_latency: Duration,
    pub db_failing: bool,
    /// The readiness check of the database.
    pub db_check: CheckOptions,
    /// How long the boot phases take before their gates open.
    pub migrations: Duration,
    pub cache_warmup: Duration,
    /// The worker loop's watchdog timeout.
    pub worker_timeout: Duration,
    /// rumor's protocol configuration.
    pub config: Config,
    /// The token the admin routes want in `x-admin-token`.
    pub admin_token: String,
}

impl Options {
    /// Everything on 127.0.0.1, ephemeral ports, short timings: for trying it out
    /// and for the tests.
    pub fn local() -> Options {
        Options {
            http: "127.0.0.1:0".parse().expect("address"),
            gossip: "127.0.0.1:0".parse().expect("address"),
            seeds: Vec::new(),
            drain: Duration::from_millis(1000),
            db_latency: Duration::from_millis(5),
            db_failing: false,
            db_check: CheckOptions::new()
                .timeout(Duration::from_millis(300))
                .ttl(Duration::from_secs(1)),
            migrations: Duration::from_millis(300),
            cache_warmup: Duration::from_millis(300),
            worker_timeout: Duration::from_secs(2),
            config: Config::local(),
            admin_token: "let-me-in".to_string(),
        }
    }
}

/// A running service.
pub struct Service {
    pub health: Health,
    pub db: Arc<FakeDb>,
    pub node: Handle,
    /// Where HTTP listens.
    pub http: SocketAddr,
    pub migrations: StartupGate,
    pub cache: StartupGate,
    /// While set, the worker loop is stuck and stops ticking its watchdog.
    pub wedged: Arc<AtomicBool>,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
}

/// Starts the service: the registry first, then every part that reports to it.
pub async fn start(opts: Options) -> Result<Service, Box<dyn Error>> {
    let health = Health::new();

    // Readiness: the database, pinged in the background with a hard timeout; probes
    // read the cached result.
    let db = Arc::new(FakeDb::new(opts.db_latency, opts.db_failing));
    let pinger = db.clone();
    health.readiness_check("db", opts.db_check.clone(), move || {
        let db = pinger.clone();
        async move { db.ping().await }
    });

    // Startup: two boot phases, each a gate opened when done.
    let migrations = health.startup_gate("migrations");
    let cache = health.startup_gate("cache");
    {
        let (m, c) = (migrations.clone(), cache.clone());
        let (md, cd) = (opts.migrations, opts.cache_warmup);
        tokio::spawn(async move {
            tokio::time::sleep(md).await; // run the migrations
            m.open();
            tokio::time::sleep(cd).await; // warm the cache
            c.open();
        });
    }

    // Liveness: the worker loop ticks its watchdog every turn. Nothing else.
    let worker = health.watchdog("worker", opts.worker_timeout);
    let wedged = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    {
        let (wedged, stop) = (wedged.clone(), shutdown.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if !wedged.load(Ordering::Relaxed) {
                    worker.tick(); // a real loop would take a job from its queue here
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    // rumor plugs its own parts into the same registry.
    let node = RuntimeBuilder::new(format!("service-{}", std::process::id()))
        .bind(opts.gossip)
        .seeds(opts.seeds.clone())
        .config(opts.config.clone())
        .health_registry(health.clone())
        .cancel_token(shutdown.child_token())
        .drain(opts.drain)
        .start()
        .await?;

    // The probes are merged outside the auth layer: the kubelet sends no token.
    let admin = admin_routes(db.clone(), wedged.clone()).layer(middleware::from_fn({
        let token = opts.admin_token.clone();
        move |req: Request, next: Next| {
            let token = token.clone();
            async move { require_token(&token, req, next).await }
        }
    }));
    let app = Router::new()
        .merge(health.router())
        .route("/hello", get(|| async { "hello\n" }))
        .merge(admin);
    let listener = tokio::net::TcpListener::bind(opts.http).await?;
    let http = listener.local_addr()?;
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("http: {e}");
        }
    });
    Ok(Service {
        health,
        db,
        node,
        http,
        migrations,
        cache,
        wedged,
        shutdown,
        server,
    })
}

impl Service {
    /// The documented stop, for SIGTERM: readiness false at once (`draining`), keep
    /// serving for the drain so the endpoints drop the pod, rumor gossips Leave
    /// (peers see Left, not Dead), then HTTP stops. `say` reports each step.
    pub async fn stop(self, drain: Duration, say: impl Fn(&str)) {
        self.health.set_draining(true);
        say("draining");
        // rumor's own drain runs the same delay, then Leave, then its driver stops.
        let left = self.node.leave_and_drain(drain).await;
        say(if left.is_ok() { "left" } else { "stopped" });
        self.shutdown.cancel();
        self.server.abort();
        say("exit");
    }
}

/// `/admin/db?latency_ms=N&fail=0|1&hang=0|1&panic=0|1` and `/admin/wedge?on=0|1`.
fn admin_routes(db: Arc<FakeDb>, wedged: Arc<AtomicBool>) -> Router {
    Router::new()
        .route(
            "/admin/db",
            post(move |RawQuery(q): RawQuery| async move {
                for (k, v) in pairs(q.as_deref()) {
                    let on = v == "1" || v == "true";
                    match k {
                        "latency_ms" => {
                            let ms = v.parse().unwrap_or(0);
                            db.set_latency(Duration::from_millis(ms));
                        }
                        "fail" => db.set_failing(on),
                        "hang" => db.set_hanging(on),
                        "panic" => db.set_panicking(on),
                        _ => return (StatusCode::BAD_REQUEST, format!("unknown {k}\n")),
                    }
                }
                (StatusCode::OK, "ok\n".to_string())
            }),
        )
        .route(
            "/admin/wedge",
            post(move |RawQuery(q): RawQuery| async move {
                let on = pairs(q.as_deref()).any(|(k, v)| k == "on" && v != "0");
                wedged.store(on, Ordering::Relaxed);
                "ok\n"
            }),
        )
}

fn pairs(q: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    q.unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
}

async fn require_token(token: &str, req: Request, next: Next) -> Result<Response, StatusCode> {
    let ok = req
        .headers()
        .get("x-admin-token")
        .is_some_and(|v| v.as_bytes() == token.as_bytes());
    if ok {
        Ok(next.run(req).await)
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}
