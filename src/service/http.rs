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

use super::collection_metrics;
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

/// Prometheus text format: the recorder's series, then the per-collection
/// ones computed now from the health snapshot.
async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    text.push_str(&collection_metrics::render(&state.health.snapshot(), Utc::now()));
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
