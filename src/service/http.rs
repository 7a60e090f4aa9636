//! The optional listener: `GET /healthz` and `GET /metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::Utc;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use super::webhook::{self, Receiver};
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub health: Arc<Health>,
    pub store: Arc<Store>,
    pub metrics: PrometheusHandle,
}

/// Installs the process-wide Prometheus recorder the counters report to.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new().install_recorder().map_err(|e| format!("cannot set up metrics: {e}"))
}

/// Serves health and metrics, and the webhook receiver at its path when
/// configured.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    webhook: Option<(String, Receiver)>,
    cancel: CancellationToken,
) {
    let mut app =
        Router::new().route("/healthz", get(healthz)).route("/metrics", get(render_metrics)).with_state(state);
    if let Some((path, receiver)) = webhook {
        let hook = Router::new()
            .route(&path, post(webhook::receive))
            .layer(DefaultBodyLimit::max(webhook::MAX_BODY))
            .with_state(receiver);
        app = app.merge(hook);
    }
    let stop = cancel.clone();
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await {
        tracing::error!("health and metrics listener failed: {e}");
    }
}

/// 200 while the service loop advances and the store takes writes; 503 with
/// the reason otherwise.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.loop_stalled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "service loop stalled\n".to_string());
    }
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.check_writable()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n".to_string()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store not writable: {e}\n")),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store check failed: {e}\n")),
    }
}

/// Prometheus text format. Lag and failing gauges are computed now, from
/// each collection's last success.
async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let now = Utc::now();
    let collections = state.health.snapshot();
    let mut failing = 0u32;
    for (key, c) in &collections {
        let labels =
            [("account", key.account.clone()), ("kind", key.kind.as_str().to_string()), ("collection", key.id.clone())];
        if let Some(at) = c.last_success {
            metrics::gauge!("aurinko_sync_lag_seconds", &labels).set((now - at).num_milliseconds() as f64 / 1000.0);
        }
        failing += u32::from(c.failing);
    }
    metrics::gauge!("aurinko_sync_failing_collections").set(failing);
    metrics::gauge!("aurinko_sync_collections").set(collections.len() as f64);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
