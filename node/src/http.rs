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
