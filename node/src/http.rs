//! `--http`: the health routes and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rumor::Handle;

/// Installs the Prometheus recorder. Must run before the node starts: the driver
/// registers its metrics then.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("metrics recorder: {e}"))
}

/// Binds `addr` and serves the routes in a task of their own.
pub async fn serve(addr: SocketAddr, h: &Handle, prom: PrometheusHandle) -> Result<(), String> {
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
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--http {addr}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("http server: {e}");
        }
    });
    Ok(())
}
