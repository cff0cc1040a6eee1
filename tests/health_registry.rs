//! The health registry's own rules, through its API and over real HTTP on 127.0.0.1:
//! startup's latch and a node plugged in late, check options' bounds, retired
//! watchdogs.
#![cfg(feature = "axum")]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rumor::{CheckOptions, Health};
use support::{builder, fast_config, get, wait_status};
use tokio::time::{Instant, sleep};

/// Serves `health`'s probes on an ephemeral port, as a service that serves them before
/// its node starts.
async fn serve_registry(health: &Health) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app: axum::Router = health.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A seed that never answers: a bound UDP socket nobody reads.
fn silent_seed() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind")
}

/// `/startupz` says 503 with a body starting `joined:` every time over `checks`
/// requests 50 ms apart, never the latch's "passed earlier".
async fn stays_not_started(http: SocketAddr, checks: usize) {
    for _ in 0..checks {
        let (code, body) = get(http, "/startupz?verbose").await;
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("[-]joined failed"), "{body}");
        assert!(!body.contains("passed earlier"), "{body}");
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_evaluated_before_the_node_is_plugged_in_does_not_latch() {
    let health = Health::new();
    let _worker = health.watchdog("worker", Duration::from_secs(30)); // starts the monitor
    let http = serve_registry(&health).await;
    // Nothing plugged in and no gate: the registry passes on its own parts (it cannot
    // know a node is coming), and the monitor evaluates startup meanwhile.
    assert_eq!(get(http, "/startupz").await, (200, "ok\n".to_string()));
    sleep(Duration::from_millis(300)).await;
    let seed = silent_seed();
    let node = builder(
        "hreg-late",
        &fast_config("hreg-late"),
        &[seed.local_addr().expect("addr")],
    )
    .health_registry(health.clone())
    .start()
    .await
    .expect("start");
    // Plugged in: startup is the node's to pass, and it has not joined.
    stays_not_started(http, 10).await;
    assert!(!health.startup().ok);
    node.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expected_node_holds_startup_and_readiness_until_it_joins() {
    let health = Health::new();
    health.expect_node();
    let _worker = health.watchdog("worker", Duration::from_secs(30));
    let http = serve_registry(&health).await;
    // Served before the node starts: not started, not ready, and the reason says why.
    for _ in 0..6 {
        let (code, body) = get(http, "/startupz").await;
        assert_eq!(
            (code, body.as_str()),
            (503, "joined: no rumor node plugged in yet\n")
        );
        let (code, body) = get(http, "/readyz").await;
        assert_eq!(
            (code, body.as_str()),
            (503, "joined: no rumor node plugged in yet\n")
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get(http, "/livez").await.0,
        200,
        "liveness never waits for it"
    );
    // A node without seeds joins at once: startup passes, then latches.
    let node = builder("hreg-expected", &fast_config("hreg-expected"), &[])
        .health_registry(health.clone())
        .start()
        .await
        .expect("start");
    wait_status(http, "/startupz", 200).await;
    wait_status(http, "/readyz", 200).await;
    node.abort();
    wait_status(http, "/readyz", 503).await;
    let (code, body) = get(http, "/startupz").await;
    assert_eq!(
        (code, body.as_str()),
        (200, "ok\n"),
        "passed with the node: latched"
    );
}

/// A check that counts its runs and always passes.
fn counting_check(health: &Health, name: &str, options: CheckOptions) -> Arc<AtomicU64> {
    let runs = Arc::new(AtomicU64::new(0));
    let r = runs.clone();
    health.readiness_check(name, options, move || {
        r.fetch_add(1, Ordering::Relaxed);
        async { Ok::<(), std::io::Error>(()) }
    });
    runs
}

/// Waits (bounded) for the readiness part `name` to pass.
async fn wait_part_ok(health: &Health, name: &str) {
    let mut last = None;
    for _ in 0..250 {
        let check = health.readiness();
        let part = check.part(name).expect("the part").clone();
        if part.ok {
            return;
        }
        last = Some(part);
        sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never passed: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_options_set_through_their_fields_are_clamped_like_the_setters() {
    let health = Health::new();
    let mut o = CheckOptions::new();
    o.ttl = Duration::ZERO;
    o.timeout = Duration::ZERO;
    let t0 = Instant::now();
    let runs = counting_check(&health, "db", o);
    // A zero timeout would cut any run that does not answer at once: raised to 1 ms,
    // a check that answers at once passes.
    wait_part_ok(&health, "db").await;
    sleep(Duration::from_millis(500)).await;
    // A zero TTL would run it back to back: raised to 100 ms, a run starts at most
    // every 100 ms (never sooner, however loaded the machine is).
    let (calls, elapsed) = (runs.load(Ordering::Relaxed), t0.elapsed());
    let most = u64::try_from(elapsed.as_millis() / 100).expect("small") + 1;
    assert!(
        calls <= most,
        "{calls} runs in {elapsed:?} (at most {most})"
    );
    assert!(calls >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_options_of_absurd_length_do_not_overflow() {
    let health = Health::new();
    let mut o = CheckOptions::new();
    o.ttl = Duration::MAX;
    o.timeout = Duration::MAX;
    let runs = counting_check(&health, "db", o);
    // The first run answers; probes read its result without overflowing the
    // staleness bound, and the refresher schedules the next run without panicking.
    wait_part_ok(&health, "db").await;
    for _ in 0..5 {
        assert!(health.readiness().ok);
        sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_watchdog_leaves_liveness_and_frees_its_name() {
    let health = Health::new();
    let http = serve_registry(&health).await;
    let done = health.watchdog("batch", Duration::from_millis(50));
    let alive = health.watchdog("main_loop", Duration::from_secs(60));
    let ticker = done.clone();
    assert_eq!(
        (done.name(), done.timeout()),
        ("batch", Duration::from_millis(50))
    );
    // Not ticked: it expires and fails liveness (dropping a clone changes nothing).
    drop(ticker);
    let body = wait_status(http, "/livez", 503).await;
    assert!(body.starts_with("batch: ticked"), "{body}");
    // Retired on purpose: gone from liveness at once, the other watchdog still there.
    done.retire();
    assert!(health.liveness().ok, "{}", health.liveness());
    let (code, verbose) = get(http, "/livez?verbose").await;
    assert_eq!(code, 200, "{verbose}");
    assert!(!verbose.contains("batch"), "{verbose}");
    assert!(verbose.contains("[+]main_loop ok"), "{verbose}");
    // `?exclude=batch` now names nothing.
    let (_, verbose) = get(http, "/livez?verbose&exclude=batch").await;
    assert!(verbose.contains("no matches for \"batch\""), "{verbose}");
    // The name is free again: a new watchdog under it is a new part, ticked afresh.
    let again = health.watchdog("batch", Duration::from_secs(60));
    let check = health.liveness();
    assert!(check.ok, "{check}");
    assert!(check.part("batch").is_some_and(|p| p.ok));
    assert_eq!(check.parts.len(), 2, "{:?}", check.parts);
    again.retire();
    alive.retire();
    assert!(health.liveness().parts.is_empty());
}

#[test]
#[should_panic(expected = "registered already")]
fn a_watchdog_that_was_only_dropped_keeps_its_name() {
    let health = Health::new();
    drop(health.watchdog("batch", Duration::from_secs(60)));
    let _ = health.watchdog("batch", Duration::from_secs(60));
}
