//! The health routes over real HTTP (feature `axum`): status codes and reasons through
//! join, drain and stop.
#![cfg(feature = "axum")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use rumor::{Config, RuntimeBuilder};
use support::{get, serve, wait_status};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_routes_follow_join_drain_and_stop() {
    let mut cfg = Config::local();
    cfg.cluster_label = "http".into();
    cfg.probe_interval = Duration::from_millis(200);
    cfg.probe_timeout = Duration::from_millis(80);
    cfg.gossip_interval = Duration::from_millis(50);
    cfg.join_retry_interval = Duration::from_millis(200);
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    // A node whose seed does not answer yet: live, not started, not ready.
    let silent = std::net::UdpSocket::bind(any).expect("bind");
    let lonely = RuntimeBuilder::new("http-lonely")
        .bind(any)
        .seeds([silent.local_addr().expect("addr")])
        .config(cfg.clone())
        .start()
        .await
        .expect("start");
    let lonely_http = serve(&lonely).await;
    assert_eq!(get(lonely_http, "/livez").await, (200, "ok\n".to_string()));
    let (code, body) = get(lonely_http, "/startupz").await;
    assert_eq!(code, 503);
    assert!(body.starts_with("joined:"), "{body}");
    let (code, body) = get(lonely_http, "/readyz?verbose").await;
    assert_eq!(code, 503);
    assert!(body.contains("[+]watchdog ok"), "{body}");
    assert!(body.contains("[-]joined failed"), "{body}");
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    lonely.abort();

    let a = RuntimeBuilder::new("http-a")
        .bind(any)
        .config(cfg.clone())
        .start()
        .await
        .expect("start a");
    let b = RuntimeBuilder::new("http-b")
        .bind(any)
        .seeds([a.advertise_addr()])
        .config(cfg)
        .start()
        .await
        .expect("start b");
    let http = serve(&b).await;
    wait_status(http, "/startupz", 200).await;
    let body = wait_status(http, "/readyz", 200).await;
    assert_eq!(body, "ok\n");
    let (code, body) = get(http, "/readyz?verbose").await;
    assert_eq!(code, 200);
    for part in [
        "watchdog",
        "joined",
        "not_leaving",
        "not_suspected",
        "local_health",
    ] {
        assert!(body.contains(&format!("[+]{part} ok")), "{part}: {body}");
    }
    assert_eq!(get(http, "/nope").await.0, 404);

    // SIGTERM's path: readiness 503 during the drain while liveness stays 200.
    let leaving = tokio::spawn({
        let b = b.clone();
        async move { b.leave_and_drain(Duration::from_millis(800)).await }
    });
    let body = wait_status(http, "/readyz", 503).await;
    assert!(body.starts_with("not_leaving:"), "{body}");
    assert_eq!(get(http, "/livez").await.0, 200);
    assert_eq!(get(http, "/startupz").await.0, 200);
    timeout(Duration::from_secs(10), leaving)
        .await
        .expect("leave finishes")
        .expect("task")
        .expect("leave_and_drain");
    // Stopped: nothing answers 200 any more but startup, which stays done.
    let body = wait_status(http, "/livez", 503).await;
    assert!(body.contains("driver stopped"), "{body}");
    assert_eq!(get(http, "/readyz").await.0, 503);
    a.abort();
}
