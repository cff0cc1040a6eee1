//! The health routes over real HTTP (feature `axum`): status codes and reasons through
//! join, drain and stop.
#![cfg(feature = "axum")]

use std::net::SocketAddr;
use std::time::Duration;

use rumor::{Config, Handle, RuntimeBuilder};
use tokio::net::TcpListener;
use tokio::time::{sleep, timeout};

/// One `GET` over a fresh connection: (status code, body). A blocking std client on
/// the blocking pool (tokio's `io-util` is not among the dev-dependencies' features).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let io = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(req.as_bytes())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        Ok::<_, std::io::Error>(buf)
    });
    let buf = timeout(Duration::from_secs(10), io)
        .await
        .expect("HTTP answer within 10 s")
        .expect("task")
        .expect("HTTP I/O");
    let text = String::from_utf8(buf).expect("utf-8 response");
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

async fn wait_status(addr: SocketAddr, path: &str, want: u16) -> String {
    let mut last = (0, String::new());
    for _ in 0..500 {
        last = get(addr, path).await;
        if last.0 == want {
            return last.1;
        }
        sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never answered {want}; last {} {:?}", last.0, last.1);
}

async fn serve(h: &Handle) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app: axum::Router = h.health().router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

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
    lonely.cancel_token().cancel();

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
    a.cancel_token().cancel();
}
