//! `--http`: the health routes and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rumor::Handle;

/// Installs the Prometheus recorder. Must run before the node starts: the driver
/// registers its metrics then.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    // The lateness histogram as a Prometheus histogram with rumor's fixed buckets
    // (1 ms .. 60 s), which aggregate across pods; the exporter's default for a
    // histogram is a summary, whose quantiles do not, and which hid a 3.6 s SIGSTOP
    // in `_sum` behind quantile="1" = 0.005.
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("rumor_timer_lateness_seconds".into()),
            &rumor::STALL_BUCKETS_SECONDS,
        )
        .map_err(|e| format!("metrics buckets: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics recorder: {e}"))
}

/// Binds `addr`: before the node starts, so that a taken port stops the process
/// before it has joined anyone (who would then see it die).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--http {addr}: {e}"))
}

/// Serves the routes on `listener` in a task of their own.
pub fn serve(listener: tokio::net::TcpListener, h: &Handle, prom: PrometheusHandle) {
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
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("http server: {e}");
        }
    });
}
