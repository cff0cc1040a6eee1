//! The example service (examples/service) over real HTTP on 127.0.0.1: the health
//! registry's scope rules, timeouts, cache, panic guard, startup gates and the drain
//! on SIGTERM (a real child process, a real signal). The service's code is included
//! from the example, so these tests run exactly what the example runs.
#![cfg(feature = "axum")]

#[path = "../examples/service/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../examples/service/fake_db.rs"]
#[allow(dead_code)]
mod fake_db;
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use rumor::{CheckOptions, Event};
use support::{fast_config, get, wait_status};
use tokio::time::{Instant, sleep, timeout};

fn options(label: &str) -> app::Options {
    let mut o = app::Options::local();
    o.config = fast_config(label);
    o.drain = Duration::from_millis(1000);
    o.migrations = Duration::from_millis(200);
    o.cache_warmup = Duration::from_millis(200);
    o.worker_timeout = Duration::from_millis(500);
    o.db_check = CheckOptions::new()
        .timeout(Duration::from_millis(300))
        .ttl(Duration::from_secs(1));
    o
}

async fn ready_service(label: &str) -> app::Service {
    let s = app::start(options(label)).await.expect("service starts");
    wait_status(s.http, "/startupz", 200).await;
    wait_status(s.http, "/readyz", 200).await;
    s
}

/// Time of one GET, in a blocking client (see `support::get`).
async fn timed_get(addr: SocketAddr, path: &str) -> ((u16, String), Duration) {
    let t = Instant::now();
    let r = get(addr, path).await;
    (r, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_dependency_is_cut_at_its_timeout_and_fails_readiness() {
    let s = ready_service("hsvc-hang").await;
    s.db.set_hanging(true);
    // The next run (within a TTL) hangs, is cut at 300 ms, and fails the part.
    let body = wait_status(s.http, "/readyz?verbose", 503).await;
    assert!(
        body.contains("[-]db failed: no answer within the 300 ms timeout"),
        "{body}"
    );
    // Every probe meanwhile answers from the cache, with the reason.
    for _ in 0..20 {
        let (code, body) = get(s.http, "/readyz").await;
        assert_eq!(code, 503, "{body}");
        assert!(body.starts_with("db: no answer within"), "{body}");
        sleep(Duration::from_millis(20)).await;
    }
    assert!(!s.health.readiness().ok);
    // And the dependency coming back makes the pod ready again.
    s.db.set_hanging(false);
    wait_status(s.http, "/readyz", 200).await;
    s.node.abort();
}

/// No probe waits for a check in progress. The check's timeout is 30 s, so a run
/// that hangs holds on for 30 s; every `/readyz` meanwhile must answer long before
/// that (2 s: a bound for a loaded CI machine, not a latency goal: `probe_latency`
/// measures those).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_answers_long_before_a_hanging_check_ends() {
    let hang = Duration::from_secs(30);
    let mut o = options("hsvc-hang-long");
    o.db_check = CheckOptions::new()
        .timeout(hang)
        .ttl(Duration::from_secs(1));
    let s = app::start(o).await.expect("service starts");
    wait_status(s.http, "/readyz", 200).await;
    let pings = s.db.pings();
    s.db.set_hanging(true);
    // The next run starts within a TTL, and hangs.
    for _ in 0..250 {
        if s.db.pings() > pings {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    assert!(s.db.pings() > pings, "no run started within 5 s");
    let hanging_since = Instant::now();
    for _ in 0..20 {
        let (code, body) = timeout(Duration::from_secs(2), get(s.http, "/readyz"))
            .await
            .expect("/readyz answered within 2 s while the check hangs for 30 s");
        // The last result stands while the run is in progress (it is not stale
        // before 2 TTLs + the timeout).
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        assert!(s.health.readiness().ok);
        sleep(Duration::from_millis(20)).await;
    }
    // All of it while the run was still hanging, not after it was cut.
    assert!(
        hanging_since.elapsed() < hang - Duration::from_secs(5),
        "{:?}",
        hanging_since.elapsed()
    );
    s.db.set_hanging(false);
    s.node.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_probes_cost_one_dependency_call_per_ttl() {
    let s = ready_service("hsvc-ttl").await;
    let ttl = Duration::from_secs(1);
    let (p0, t0) = (s.db.pings(), Instant::now());
    let mut probes = 0;
    for _round in 0..6 {
        let tasks: Vec<_> = (0..100)
            .map(|_| tokio::spawn(get(s.http, "/readyz")))
            .collect();
        for t in tasks {
            let (code, body) = timeout(Duration::from_secs(10), t)
                .await
                .expect("probe in time")
                .expect("task");
            assert_eq!(code, 200, "{body}");
            probes += 1;
        }
        sleep(Duration::from_millis(200)).await;
    }
    let (calls, elapsed) = (s.db.pings() - p0, t0.elapsed());
    // One run per TTL from the background refresher, whatever the probes do.
    let most = elapsed.as_millis() / ttl.as_millis() + 1;
    eprintln!("{probes} probes in {elapsed:?}: {calls} database calls (at most {most})");
    assert!(u128::from(calls) <= most, "{calls} calls > {most}");
    assert!(calls >= 1, "the check kept running");
    s.node.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_check_fails_readiness_with_a_reason_and_the_server_keeps_serving() {
    let s = ready_service("hsvc-panic").await;
    s.db.set_panicking(true);
    let body = wait_status(s.http, "/readyz", 503).await;
    assert!(
        body.starts_with("db: the check panicked: fake db client: connection pool poisoned"),
        "{body}"
    );
    // The server, the other probes and the API are unharmed.
    assert_eq!(get(s.http, "/hello").await, (200, "hello\n".to_string()));
    assert_eq!(get(s.http, "/livez").await.0, 200);
    assert_eq!(get(s.http, "/startupz").await.0, 200);
    // An operator may take the broken check out of the decision.
    assert_eq!(get(s.http, "/readyz?exclude=db").await.0, 200);
    let (code, body) = get(s.http, "/readyz?verbose&exclude=db&exclude=nope").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("[+]db excluded"), "{body}");
    assert!(body.contains("no matches for \"nope\""), "{body}");
    // The refresher survived its check's panic: a fixed client makes it ready again.
    s.db.set_panicking(false);
    wait_status(s.http, "/readyz", 200).await;
    s.node.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wedged_loop_fails_livez_while_a_failed_dependency_never_does() {
    let s = ready_service("hsvc-wedge").await;
    // The database down: readiness fails, liveness does not (no restart for it).
    s.db.set_failing(true);
    let body = wait_status(s.http, "/readyz", 503).await;
    assert!(body.starts_with("db: connection refused"), "{body}");
    for _ in 0..10 {
        assert_eq!(get(s.http, "/livez").await.0, 200);
        sleep(Duration::from_millis(50)).await;
    }
    // The worker loop stops ticking: liveness fails after its 500 ms timeout.
    let t = Instant::now();
    s.wedged.store(true, Ordering::Relaxed);
    let body = wait_status(s.http, "/livez", 503).await;
    assert!(body.starts_with("worker: ticked"), "{body}");
    assert!(body.contains("(limit 500 ms)"), "{body}");
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    let (_, verbose) = get(s.http, "/livez?verbose").await;
    assert!(
        verbose.contains("[+]watchdog ok"),
        "rumor's driver is fine: {verbose}"
    );
    assert!(verbose.contains("[-]worker failed"), "{verbose}");
    assert!(
        !verbose.contains("db"),
        "no dependency in liveness: {verbose}"
    );
    s.wedged.store(false, Ordering::Relaxed);
    wait_status(s.http, "/livez", 200).await;
    s.node.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn startup_gates_fail_until_opened_then_stay_passed() {
    let mut o = options("hsvc-gates");
    o.migrations = Duration::from_millis(400);
    o.cache_warmup = Duration::from_millis(400);
    let s = app::start(o).await.expect("start");
    let (code, body) = get(s.http, "/startupz").await;
    assert_eq!((code, body.as_str()), (503, "migrations: not opened yet\n"));
    let body = wait_status(s.http, "/startupz", 503).await;
    assert!(
        body.starts_with("migrations:") || body.starts_with("cache:"),
        "{body}"
    );
    wait_for_body(s.http, "/startupz", "cache: not opened yet\n").await;
    assert!(s.migrations.is_open() && !s.cache.is_open());
    wait_status(s.http, "/startupz", 200).await;
    let (_, verbose) = get(s.http, "/startupz?verbose").await;
    for part in ["migrations", "cache", "joined", "synced"] {
        assert!(
            verbose.contains(&format!("[+]{part} ok")),
            "{part}: {verbose}"
        );
    }
    // Passed once, passed for good: a gate added later, a dependency down, a drain.
    let _late = s.health.startup_gate("late_gate");
    s.db.set_failing(true);
    s.health.set_draining(true);
    wait_status(s.http, "/readyz", 503).await;
    let (code, verbose) = get(s.http, "/startupz?verbose").await;
    assert_eq!(code, 200, "{verbose}");
    assert!(
        verbose.contains("[+]late_gate ok: startup passed earlier"),
        "{verbose}"
    );
    s.node.abort();
}

async fn wait_for_body(addr: SocketAddr, path: &str, want: &str) {
    let mut last = (0, String::new());
    for _ in 0..300 {
        last = get(addr, path).await;
        if last.1 == want {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("{path} never said {want:?}; last {last:?}");
}

/// The child half of the SIGTERM test: runs the service as `main.rs` does, seeded
/// with the parent's node, until SIGTERM. Ignored unless the parent starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the SIGTERM test's child process"]
async fn sigterm_child() {
    let Ok(seed) = std::env::var("HEALTH_SIGTERM_SEED") else {
        return;
    };
    let mut o = options("hsvc-term");
    o.seeds = vec![seed.parse().expect("seed address")];
    let drain = o.drain;
    let t0 = Instant::now();
    let say = move |step: &str| println!("STEP {} {step}", t0.elapsed().as_millis());
    let s = app::start(o).await.expect("start");
    println!("LISTENING {} {}", s.http, s.node.name());
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("sig");
    timeout(Duration::from_secs(60), term.recv())
        .await
        .expect("SIGTERM within a minute");
    say("signal");
    s.stop(drain, say).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_order_readiness_then_delay_then_leave_then_exit() {
    let peer = support::start("term-peer", &fast_config("hsvc-term"), &[]).await;
    let mut events = peer.events();
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "sigterm_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HEALTH_SIGTERM_SEED", peer.advertise_addr().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let pid = child.id();
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<(Instant, String)>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let (http, name) = loop {
        let (_, line) = timeout(Duration::from_secs(20), lines.recv())
            .await
            .expect("the child starts within 20 s")
            .expect("child output");
        // libtest may print `test sigterm_child ... ` before it on the same line.
        if let Some((_, rest)) = line.split_once("LISTENING ") {
            let (a, n) = rest.split_once(' ').expect("addr and name");
            break (a.parse::<SocketAddr>().expect("addr"), n.to_string());
        }
    };
    wait_status(http, "/readyz", 200).await;

    let sent = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -TERM {pid}");
    // 1. Readiness false at once.
    wait_status(http, "/readyz", 503).await;
    let unready = sent.elapsed();
    // The order is the claim, not a latency: unready before the drain (1 s) ends.
    assert!(
        unready < Duration::from_secs(1),
        "503 only after {unready:?}, past the drain"
    );
    // 2. Serving through the drain: liveness stays up.
    assert_eq!(get(http, "/livez").await.0, 200);
    // 3. Leave after the drain: the peer sees Left, not Dead.
    let left = timeout(Duration::from_secs(15), async {
        loop {
            match events.next().await {
                Some(Ok(Event::MemberLeft(m))) if m.name() == name => return sent.elapsed(),
                Some(Ok(Event::MemberDead { member, .. })) if member.name() == name => {
                    panic!("the peer saw the service dead, not left")
                }
                Some(_) => {}
                None => panic!("peer stopped"),
            }
        }
    })
    .await
    .expect("Left within 15 s");
    assert!(
        left >= Duration::from_millis(900),
        "Leave before the drain: {left:?}"
    );
    // 4. Exit.
    let status = tokio::task::spawn_blocking(move || {
        let t = std::time::Duration::from_secs(15);
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                return s;
            }
            assert!(start.elapsed() < t, "child did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("join");
    let exited = sent.elapsed();
    assert!(status.success(), "child exit {status:?}");
    assert!(exited >= left, "exit {exited:?} before Leave {left:?}");
    let mut steps = Vec::new();
    // Until the reader thread has forwarded the last line and hung up.
    while let Ok(Some((_, line))) = timeout(Duration::from_secs(5), lines.recv()).await {
        if let Some((_, rest)) = line.split_once("STEP ") {
            steps.push(rest.split_once(' ').map_or("", |(_, s)| s).to_string());
        }
    }
    assert_eq!(steps, ["signal", "draining", "left", "exit"]);
    eprintln!(
        "SIGTERM: 503 after {unready:?}, peers saw Left after {left:?}, exit after {exited:?}"
    );
    peer.abort();
}

/// Probe handler latency under 100 concurrent probes: `cargo test --release
/// --all-features --test health_service -- --ignored probe_latency --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: run it by name"]
async fn probe_latency() {
    let s = ready_service("hsvc-latency").await;
    let mut http = Vec::new();
    for _ in 0..20 {
        let tasks: Vec<_> = (0..100)
            .map(|_| tokio::spawn(timed_get(s.http, "/readyz?verbose")))
            .collect();
        for t in tasks {
            let ((code, _), took) = t.await.expect("task");
            assert_eq!(code, 200);
            http.push(took);
        }
    }
    // The handler's own work: evaluating the probe from cached state, 100 threads at
    // once (what 100 concurrent requests make the handlers do).
    let mut eval: Vec<Duration> = Vec::new();
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let h = s.health.clone();
            std::thread::spawn(move || {
                (0..200)
                    .map(|_| {
                        let t = Instant::now();
                        let c = h.check(rumor::Probe::Readiness, &[]);
                        let _ = c.verbose("readyz");
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        eval.extend(t.join().expect("thread"));
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 - 1.0) * p) as usize]
    };
    println!(
        "readiness evaluation (handler work), 100 threads x 200: p50 {:?} p99 {:?}",
        pct(&mut eval, 0.50),
        pct(&mut eval, 0.99)
    );
    println!(
        "GET /readyz?verbose over TCP (connect, request, close), 100 concurrent x 20: p50 {:?} p99 {:?}",
        pct(&mut http, 0.50),
        pct(&mut http, 0.99)
    );
    // With the dependency hanging (each run cut at its 300 ms timeout): the probes
    // still answer from the cache, one request at a time and in process.
    s.db.set_hanging(true);
    wait_status(s.http, "/readyz", 503).await;
    let mut hung = Vec::new();
    for _ in 0..100 {
        let ((code, _), took) = timed_get(s.http, "/readyz").await;
        assert_eq!(code, 503);
        hung.push(took);
        sleep(Duration::from_millis(10)).await;
    }
    let t = Instant::now();
    for _ in 0..100 {
        assert!(!s.health.readiness().ok);
    }
    let in_process = t.elapsed() / 100;
    println!(
        "GET /readyz with the dependency hanging, 100 sequential: p50 {:?} p99 {:?} worst {:?}; in process {in_process:?} per evaluation",
        pct(&mut hung, 0.50),
        pct(&mut hung, 0.99),
        pct(&mut hung, 1.0)
    );
    s.db.set_hanging(false);
    s.node.abort();
}
