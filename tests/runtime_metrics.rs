//! The runtime's metrics through the `metrics` facade, captured by metrics-util's
//! debugging recorder installed for this thread only (the library installs none).
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use rumor::{Config, Handle, MemberState, RuntimeBuilder};
use tokio::time::{sleep, timeout};

/// `(name, labels, value)` of one metric.
type Sample = (String, Vec<(String, String)>, DebugValue);

/// Every metric's sample.
fn snapshot(s: &Snapshotter) -> Vec<Sample> {
    s.snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v)| {
            let key = k.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            (key.name().to_string(), labels, v)
        })
        .collect()
}

fn value(snap: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    snap.iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(h) => h.len() as f64,
        })
}

/// Whether every metric carries a description (read before anything else: reading
/// does not reset descriptions).
fn snapshotter_descriptions(s: &Snapshotter) -> bool {
    s.snapshot()
        .into_vec()
        .iter()
        .all(|(_, _, desc, _)| desc.as_ref().is_some_and(|d| !d.is_empty()))
}

#[test]
fn metrics_are_exported_through_the_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // A current-thread runtime keeps every driver on this thread, where the local
    // recorder is installed.
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async { timeout(Duration::from_secs(20), scenario(&snapshotter)).await })
            .expect("scenario finishes within 20 s");
    });
}

async fn scenario(snapshotter: &Snapshotter) {
    let mut cfg = Config::local();
    cfg.cluster_label = "metrics".into();
    cfg.probe_interval = Duration::from_millis(200);
    cfg.probe_timeout = Duration::from_millis(80);
    cfg.acceptable_pause = Duration::from_millis(800);
    cfg.gossip_interval = Duration::from_millis(50);
    cfg.join_retry_interval = Duration::from_millis(200);
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut nodes: Vec<Handle> = Vec::new();
    for i in 0..4 {
        let seeds: Vec<SocketAddr> = nodes
            .first()
            .map(Handle::advertise_addr)
            .into_iter()
            .collect();
        let h = RuntimeBuilder::new(format!("m-{i}"))
            .bind(any)
            .seeds(seeds)
            .config(cfg.clone())
            .metrics_label("node", format!("m-{i}"))
            .start()
            .await
            .expect("start");
        nodes.push(h);
    }
    // The debugging recorder resets counters and gauges when read, so each phase waits
    // on the handles and reads the recorder once.
    while !nodes.iter().all(|n| n.members().len() == 3) {
        sleep(Duration::from_millis(20)).await;
    }
    sleep(Duration::from_millis(500)).await;
    let snap = snapshot(snapshotter);
    for i in 0..4 {
        let node = format!("m-{i}");
        let alive = value(
            &snap,
            "rumor_members",
            &[("node", &node), ("state", "alive")],
        );
        assert_eq!(alive, Some(3.0), "{node}");
    }
    let described = snapshotter_descriptions(snapshotter);
    assert!(described, "metrics are described");
    for name in [
        "rumor_probes_total",
        "rumor_packets_in_total",
        "rumor_packets_out_total",
        "rumor_received_bytes_total",
        "rumor_sent_bytes_total",
        "rumor_timer_lateness_seconds",
    ] {
        let v = value(&snap, name, &[("node", "m-1")]);
        assert!(v.is_some_and(|v| v > 0.0), "{name} = {v:?}");
    }
    // The health gauges: converged nodes are ready and started, with local health 0.
    for check in ["readiness", "startup"] {
        let v = value(
            &snap,
            "rumor_health_check",
            &[("node", "m-1"), ("check", check)],
        );
        assert_eq!(v, Some(1.0), "{check}");
    }
    assert_eq!(
        value(&snap, "rumor_local_health", &[("node", "m-1")]),
        Some(0.0)
    );
    for kind in rumor::DecodeErrorKind::ALL {
        let v = value(
            &snap,
            "rumor_decode_errors_total",
            &[("node", "m-1"), ("kind", kind.as_str())],
        );
        assert_eq!(v, Some(0.0), "decode errors of kind {}", kind.as_str());
    }
    assert_eq!(
        value(
            &snap,
            "rumor_members",
            &[("node", "m-1"), ("state", "dead")]
        ),
        Some(0.0)
    );
    let stats = nodes[1].stats();
    let exported = value(&snap, "rumor_packets_in_total", &[("node", "m-1")]).unwrap_or(0.0);
    assert!(exported <= stats.packets_in as f64 && exported > 0.0);

    // A crash: the others' gauges move to dead, and someone convicted.
    nodes[3].abort();
    loop {
        let dead = (0..3).all(|i| {
            nodes[i]
                .members()
                .iter()
                .any(|m| m.name() == "m-3" && m.state == MemberState::Dead)
        });
        if dead {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    sleep(Duration::from_millis(100)).await;
    let snap = snapshot(snapshotter);
    let mut convictions = 0.0;
    for i in 0..3 {
        let node = format!("m-{i}");
        assert_eq!(
            value(
                &snap,
                "rumor_members",
                &[("node", &node), ("state", "dead")]
            ),
            Some(1.0),
            "{node}"
        );
        assert_eq!(
            value(
                &snap,
                "rumor_members",
                &[("node", &node), ("state", "alive")]
            ),
            Some(2.0),
            "{node}"
        );
        convictions += value(&snap, "rumor_convictions_total", &[("node", &node)]).unwrap_or(0.0);
    }
    assert!(convictions >= 1.0);
    for h in &nodes {
        h.abort();
    }
}
