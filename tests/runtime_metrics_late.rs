//! A metrics recorder installed after `start()` (its own test binary: the global
//! recorder can be installed once per process). The driver registers its metrics
//! again every 5 s, so the late recorder sees them, counters with their totals since
//! the node started.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rumor::{Config, RuntimeBuilder};
use tokio::time::{Instant, sleep};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_installed_after_start_sees_every_metric_within_seconds() {
    let mut cfg = Config::local();
    cfg.cluster_label = "late-metrics".into();
    cfg.probe_interval = Duration::from_millis(200);
    cfg.probe_timeout = Duration::from_millis(80);
    cfg.gossip_interval = Duration::from_millis(50);
    cfg.join_retry_interval = Duration::from_millis(200);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = RuntimeBuilder::new("late-a")
        .bind(any)
        .config(cfg.clone())
        .metrics_label("node", "late-a")
        .start()
        .await
        .unwrap();
    let b = RuntimeBuilder::new("late-b")
        .bind(any)
        .seeds([a.advertise_addr()])
        .config(cfg)
        .metrics_label("node", "late-b")
        .start()
        .await
        .unwrap();
    for _ in 0..250 {
        if b.members().len() == 1 && b.stats().packets_in > 5 {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let before = b.stats().packets_in;
    assert!(before > 5, "the nodes never talked");
    // Installed now, after both started.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");
    let t0 = Instant::now();
    let mut seen = None;
    while t0.elapsed() < Duration::from_secs(8) {
        let snap = snapshotter.snapshot().into_vec();
        let packets = snap.iter().find_map(|(k, _, _, v)| {
            let key = k.key();
            let ours = key.name() == "rumor_packets_in_total"
                && key
                    .labels()
                    .any(|l| l.key() == "node" && l.value() == "late-b");
            match (ours, v) {
                (true, DebugValue::Counter(c)) => Some(*c),
                _ => None,
            }
        });
        let health = snap
            .iter()
            .any(|(k, _, _, _)| k.key().name() == "rumor_health_check");
        if let Some(p) = packets
            && p > 0
            && health
        {
            seen = Some((p, t0.elapsed()));
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    let (packets, took) = seen.expect("the late recorder never saw rumor_packets_in_total");
    eprintln!("seen {took:?} after the recorder was installed");
    // The total since start, not only what arrived after the recorder.
    assert!(
        packets >= before,
        "{packets} < {before} received before the recorder"
    );
    a.abort();
    b.abort();
}
