//! Helpers of the runtime's integration tests (`runtime_udp`, `runtime_lifecycle`,
//! `runtime_health`): nodes on 127.0.0.1 with short periods, bounded waits, and a
//! minimal HTTP client for the health routes. Each test file uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use rumor::{Config, Handle, MemberState, RuntimeBuilder};
use tokio::time::{Instant, sleep, timeout};

/// Short periods so a test sees joins, crashes and leaves within seconds. Each test
/// has its own cluster label: a port freed by one test and reused by another must not
/// merge their clusters.
pub fn fast_config(label: &str) -> Config {
    let mut c = Config::local();
    c.cluster_label = label.to_string();
    c.probe_interval = Duration::from_millis(200);
    c.probe_timeout = Duration::from_millis(80);
    c.acceptable_pause = Duration::from_millis(1000);
    c.min_std_dev = Duration::from_millis(50);
    c.gossip_interval = Duration::from_millis(50);
    c.join_retry_interval = Duration::from_millis(200);
    c.push_pull_interval = Duration::from_secs(3);
    c.validate().expect("valid test config");
    c
}

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

pub async fn start(name: &str, cfg: &Config, seeds: &[SocketAddr]) -> Handle {
    builder(name, cfg, seeds)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{name} failed to start: {e}"))
}

pub fn builder(name: &str, cfg: &Config, seeds: &[SocketAddr]) -> RuntimeBuilder {
    RuntimeBuilder::new(name)
        .bind(localhost())
        .seeds(seeds.iter().copied())
        .config(cfg.clone())
        .rng_seed(rumor::NodeId::from_name(name).0)
        .metrics_label("node", name)
}

/// Starts `n` nodes: node 0 alone, every other one through node 0.
pub async fn cluster(label: &str, n: usize) -> Vec<Handle> {
    let cfg = fast_config(label);
    let first = start(&format!("{label}-0"), &cfg, &[]).await;
    let seed = first.advertise_addr();
    let mut nodes = vec![first];
    for i in 1..n {
        nodes.push(start(&format!("{label}-{i}"), &cfg, &[seed]).await);
    }
    nodes
}

/// Polls `check` every 20 ms until it returns `Ok`, failing with its last complaint
/// after `limit`. Returns how long it took.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<(), String>,
) -> Duration {
    let t0 = Instant::now();
    let mut last = String::new();
    let done = timeout(limit, async {
        loop {
            match check() {
                Ok(()) => return,
                Err(why) => last = why,
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "timed out after {limit:?} waiting for {what}: {last}"
    );
    t0.elapsed()
}

/// The state `observer` holds for the member named `name`, if any.
pub fn state_of(observer: &Handle, name: &str) -> Option<MemberState> {
    observer
        .members()
        .into_iter()
        .find(|m| m.name() == name)
        .map(|m| m.state)
}

/// Every node in `nodes` sees every other one alive.
pub fn all_alive(nodes: &[&Handle]) -> Result<(), String> {
    for a in nodes {
        for b in nodes {
            if a.name() != b.name() && state_of(a, b.name()) != Some(MemberState::Alive) {
                return Err(format!(
                    "{} sees {} as {:?}",
                    a.name(),
                    b.name(),
                    state_of(a, b.name())
                ));
            }
        }
    }
    Ok(())
}

pub fn refs(nodes: &[Handle]) -> Vec<&Handle> {
    nodes.iter().collect()
}

/// How long a small cluster on loopback may take to converge.
pub const JOIN_LIMIT: Duration = Duration::from_secs(10);

/// One `GET` over a fresh connection: (status code, body). A blocking std client on
/// the blocking pool (tokio's `io-util` is not among the dev-dependencies' features).
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
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

pub async fn wait_status(addr: SocketAddr, path: &str, want: u16) -> String {
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

#[cfg(feature = "axum")]
pub async fn serve(h: &Handle) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app: axum::Router = h.health().router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
