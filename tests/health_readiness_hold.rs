//! Readiness that does not punish what rumor tolerates (issue 23): a suspicion that a
//! stall of this very process explains, once refuted, does not hold `/readyz`; a
//! suspicion without a stall (peers could not reach a running node: the network)
//! holds it for `HealthConfig::suspected_hold`. Real HTTP on 127.0.0.1.
#![cfg(feature = "axum")]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumor::{Event, Identity, Node, NodeId, Time};
use support::{JOIN_LIMIT, all_alive, cluster, fast_config, get, refs, serve, wait_for};
use tokio::time::{Instant, sleep, timeout};

/// The `not_suspected` line of `/readyz?verbose`.
async fn not_suspected(http: SocketAddr) -> String {
    let (_, body) = get(http, "/readyz?verbose").await;
    body.lines()
        .find(|l| l.contains("not_suspected"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_the_cluster_forgave_does_not_hold_readiness() {
    let nodes = cluster("hold-stall", 5).await;
    wait_for("5 nodes to converge", JOIN_LIMIT, || {
        all_alive(&refs(&nodes))
    })
    .await;
    sleep(Duration::from_secs(1)).await; // the detectors learn the rhythm
    let frozen = &nodes[1];
    let http = serve(frozen).await;
    support::wait_status(http, "/readyz", 200).await;
    let mut events = frozen.events();
    // A pause peers suspect (700 ms at a 200 ms period) but never convict.
    frozen
        .freeze(Duration::from_millis(700))
        .await
        .expect("freeze");
    sleep(Duration::from_millis(700)).await;
    let resumed = Instant::now();
    let suspected = timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(Event::SelfSuspected { .. })) = events.next().await {
                return;
            }
        }
    })
    .await;
    assert!(suspected.is_ok(), "the pause was suspected");
    // Ready again as soon as the refutation is out: well within the 5 s hold.
    let body = support::wait_status(http, "/readyz", 200).await;
    let back = resumed.elapsed();
    assert_eq!(body, "ok\n");
    let line = not_suspected(http).await;
    assert!(line.starts_with("[+]not_suspected ok"), "{line}");
    assert!(line.contains("stall of this process, refuted"), "{line}");
    assert!(
        back < Duration::from_secs(2),
        "ready {back:?} after the resume"
    );
    eprintln!("stall-explained suspicion: ready {back:?} after the resume; {line}");
    for n in &nodes {
        n.abort();
    }
}

/// A peer driven by hand over its own socket, with a switch that drops everything
/// the victim sends it: a one-way network fault, the victim never stalls.
fn fake_peer(victim: SocketAddr, deaf: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    std::thread::spawn(move || {
        let start = Instant::now();
        let now = || Time::from_nanos(start.elapsed().as_nanos() as u64);
        let cfg = fast_config("hold-net");
        let mut node = Node::new(
            Identity::new("net-peer", addr),
            cfg,
            NodeId::from_name("net-peer").0,
            now(),
        )
        .expect("node");
        let mut inbuf = vec![0u8; 65_536];
        let mut out = vec![0u8; node.config().max_packet_size];
        node.join(now(), &[victim]);
        // Bounded: at most a minute, or until the test says stop.
        while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
            while let Some(t) = node.poll_transmit(now(), &mut out) {
                let _ = socket.send_to(&out[..t.len], t.destination);
            }
            while node.poll_event().is_some() {}
            let wait = node
                .poll_timeout()
                .map_or(Duration::from_millis(20), |t| t.saturating_since(now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(20));
            socket.set_read_timeout(Some(wait)).expect("timeout");
            if let Ok((len, from)) = socket.recv_from(&mut inbuf)
                && !(from == victim && deaf.load(Ordering::Relaxed))
            {
                node.handle_packet(now(), from, &inbuf[..len]);
            }
            if node.poll_timeout().is_some_and(|t| t <= now()) {
                node.handle_timeout(now());
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspicion_without_a_stall_holds_readiness() {
    let cfg = fast_config("hold-net");
    let victim = support::start("net-victim", &cfg, &[]).await;
    let http = serve(&victim).await;
    let (deaf, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    fake_peer(victim.advertise_addr(), deaf.clone(), stop.clone());
    wait_for("the peer to join", JOIN_LIMIT, || {
        match support::state_of(&victim, "net-peer") {
            Some(rumor::MemberState::Alive) => Ok(()),
            s => Err(format!("{s:?}")),
        }
    })
    .await;
    sleep(Duration::from_secs(1)).await;
    support::wait_status(http, "/readyz", 200).await;
    let mut events = victim.events();
    // The peer stops hearing the victim; the victim runs on, never stalled.
    deaf.store(true, Ordering::Relaxed);
    let suspected = timeout(Duration::from_secs(15), async {
        loop {
            if let Some(Ok(Event::SelfSuspected { .. })) = events.next().await {
                return Instant::now();
            }
        }
    })
    .await
    .expect("the peer suspects the victim within 15 s");
    deaf.store(false, Ordering::Relaxed);
    // Held: still unready 2 s later although the victim refuted at once.
    sleep(Duration::from_secs(2)).await;
    let line = not_suspected(http).await;
    assert!(line.starts_with("[-]not_suspected failed"), "{line}");
    assert!(line.contains("without a stall of its own"), "{line}");
    assert_eq!(get(http, "/readyz").await.0, 503);
    assert_eq!(get(http, "/livez").await.0, 200, "never a liveness matter");
    // Released after the hold (5 s).
    let hold = victim.health().config().expect("node").suspected_hold;
    loop {
        let line = not_suspected(http).await;
        if line.starts_with("[+]") {
            break;
        }
        assert!(
            suspected.elapsed() < hold + Duration::from_secs(3),
            "still held {:?} after: {line}",
            suspected.elapsed()
        );
        sleep(Duration::from_millis(50)).await;
    }
    let released = suspected.elapsed();
    assert!(
        released >= hold - Duration::from_millis(200),
        "{released:?}"
    );
    eprintln!("network suspicion: not_suspected held for {released:?} (hold {hold:?})");
    stop.store(true, Ordering::Relaxed);
    victim.abort();
}
