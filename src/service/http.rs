//! The optional listener: `GET /healthz`, `GET /metrics` and the webhook.
//!
//! Anyone who can reach it may connect, so what an unauthenticated peer can
//! hold is bounded, each by hyper's or tower's own settings:
//!
//! - connections: at most `cap` open (see `connections`: at the cap the one
//!   that has waited longest for a request is closed to make room);
//! - time: a request head must arrive within `server.timeout_secs` of the
//!   connection opening or of the previous response (hyper's header read
//!   timeout, which is also the keep-alive idle timeout), and a request,
//!   its body included, is answered within it too (408);
//! - memory: a connection buffers at most [`MAX_BUF`]; the webhook reads a
//!   body up to `webhook::MAX_BODY` and refuses it with 413 as soon as it
//!   passes that (other routes read none); at
//!   most [`MAX_WEBHOOK_REQUESTS`] webhook requests are read at once, more
//!   wait for their turn (within the request timeout) before their bodies
//!   are read: a burst of genuine notifications is queued, not refused;
//! - HTTP/2 (h2c) only when `server.http2` is set, then with few streams
//!   per connection and small flow-control windows.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::limit::ConcurrencyLimitLayer;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::timeout::TimeoutLayer;

use super::collection_metrics;
use super::connections::{Conn, Connections};
use super::discovery_health::{self, Verdict};
use super::health::Health;
use super::webhook::{self, Receiver};
use crate::store::Backend;

/// A connection's read buffer at most (hyper's minimum is 8 KiB): request
/// heads larger than this are refused with 431.
const MAX_BUF: usize = 16 * 1024;
/// Webhook requests read at once; more wait. With `webhook::MAX_BODY` this
/// bounds the bodies held in memory (2 MiB).
pub const MAX_WEBHOOK_REQUESTS: usize = 32;
/// HTTP/2, when on: streams per connection, and the flow-control windows
/// that bound what a peer may send before the service reads it.
const H2_STREAMS: u32 = 8;
const H2_STREAM_WINDOW: u32 = 16 * 1024;
const H2_CONNECTION_WINDOW: u32 = 64 * 1024;
const H2_MAX_HEADER_LIST: u32 = 16 * 1024;
/// After an accept error (out of descriptors), a pause before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(250);
/// How long a stop waits for requests under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct AppState {
    pub health: Arc<Health>,
    pub store: Arc<dyn Backend>,
    pub metrics: PrometheusHandle,
}

/// What the listener allows: its connection cap, HTTP/2 or not, and how
/// long a request head may take to arrive and a request to be answered.
pub struct Limits {
    pub max_connections: usize,
    pub http2: bool,
    pub timeout: Duration,
}

/// Installs the process-wide Prometheus recorder the counters report to.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new().install_recorder().map_err(|e| format!("cannot set up metrics: {e}"))?;
    super::metric_help::describe();
    Ok(handle)
}

/// Serves health and metrics, and the webhook receiver at its path when
/// configured, until `cancel` fires; then lets requests under way finish
/// for a moment.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    webhook: Option<(String, Receiver)>,
    limits: Limits,
    cancel: CancellationToken,
) {
    let app = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.timeout))
        .service(router(state, webhook));
    let builder = connection_builder(&limits);
    let connections = Connections::new(limits.max_connections);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "listener cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = cancel.cancelled() => break,
        };
        let Some(conn) = connections.admit() else { continue };
        let conn = Arc::new(conn);
        let closed = conn.closed.clone();
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(conn.clone());
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = closed.cancelled() => {}
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// The routes. Each handler marks its connection as handling a request
/// while it runs; a webhook request waiting for its turn does not, so it
/// can make room for a newcomer at the cap like an idle connection.
fn router(state: AppState, webhook: Option<(String, Receiver)>) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn(handling))
        .with_state(state);
    if let Some((path, receiver)) = webhook {
        let hook = Router::new()
            .route(&path, post(webhook::receive))
            .layer(DefaultBodyLimit::max(webhook::MAX_BODY))
            .layer(middleware::from_fn(handling))
            .layer(ConcurrencyLimitLayer::new(MAX_WEBHOOK_REQUESTS))
            .with_state(receiver);
        app = app.merge(hook);
    }
    app
}

/// Marks the request's connection (put in its extensions by `serve`) as
/// handling a request until the response is ready.
async fn handling(request: Request, next: Next) -> Response {
    let _handling = request.extensions().get::<Arc<Conn>>().map(|conn| conn.request());
    next.run(request).await
}

/// HTTP/1.1 with hyper's timeouts and a small buffer; HTTP/2 only if asked.
fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.timeout).max_buf_size(MAX_BUF);
    if !limits.http2 {
        return builder.http1_only();
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_send_buf_size(MAX_BUF)
        .keep_alive_interval(limits.timeout)
        .keep_alive_timeout(limits.timeout);
    builder
}

/// 200 while the service loop advances, the store takes writes and some
/// account's latest discovery worked (or none has ended yet, at start-up);
/// 503 with the reason otherwise.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.loop_stalled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "service loop stalled\n".to_string());
    }
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.check_writable()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return (StatusCode::SERVICE_UNAVAILABLE, format!("store not writable: {e}\n")),
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("store check failed: {e}\n")),
    }
    match state.health.discovery() {
        Verdict::Working => (StatusCode::OK, "ok\n".to_string()),
        Verdict::Starting => (StatusCode::OK, "ok: first discovery under way\n".to_string()),
        Verdict::Unreachable(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// Prometheus text format: the recorder's series, then the per-collection
/// ones computed now from the health snapshot.
async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    text.push_str(&collection_metrics::render(&state.health.snapshot(), Utc::now()));
    text.push_str(&discovery_health::render_metrics(state.health.discovery_failing()));
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
