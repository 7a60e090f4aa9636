//! The long-running service (`aurinko-sync run`): one supervisor per
//! account refreshing its calendar and task lists, one actor per collection polling its
//! delta, a health and metrics listener, and systemd notifications.
//!
//! - `supervisor`: discovery per account; starts and stops actors.
//! - `app_accounts`: app mode: the app's account list, read every discovery
//!   interval, starts and stops the accounts' supervisors.
//! - `fleet`: with `[fleet]`, the accounts this instance leases, instead of
//!   all of them: heartbeat, claims, releases, and stops on fencing.
//! - `actor`: one collection's poll loop, with failure backoff.
//! - `health`: what `/healthz`, `STATUS=` and the lag metrics read;
//!   `discovery_health` judges from the accounts' discoveries whether the
//!   service reaches Aurinko at all.
//! - `http`: the optional listener (`/healthz`, `/metrics`, the webhook),
//!   with `connections` (its cap) and `fd_budget` (descriptors it may use);
//!   `collection_metrics` renders the per-collection series from `health`.
//! - `notify`: `READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`.
//! - `webhook` and `nudge`: Aurinko's notifications, verified, wake actors;
//!   `replay` collapses repeats, `refusals` counts and logs refused requests.
//! - `subscribe`: keeps one subscription per synced collection.
//! - `runs`: the daemon's passes stored as runs, a batch at a time.

mod actor;
mod app_accounts;
mod collection_metrics;
mod connections;
mod discovery_health;
mod fd_budget;
mod fleet;
mod health;
mod http;
mod metric_help;
mod notify;
mod nudge;
mod refusals;
mod replay;
mod runs;
mod subscribe;
mod supervisor;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::model::RunMode;
use crate::sync::Engine;
pub use health::Health;
pub use nudge::Nudges;
pub use subscribe::{SubscribeSummary, subscribe};

/// A stop keeps the promise of exiting within 10 s (well within systemd's
/// default stop timeout) by this budget, counted from the request: the
/// collections have `STOP_GRACE` to finish the commits under way, the
/// listener `LISTENER_GRACE` more for its last answers, the writer
/// `WRITER_GRACE` more for what is queued (`cli::run`), and the runtime half
/// a second for blocking calls still running (`cli::main`): 9.5 s at most.
/// Work abandoned at a limit is redone by the next run from the store.
const STOP_GRACE: Duration = Duration::from_secs(7);
const LISTENER_GRACE: Duration = Duration::from_secs(1);
pub const WRITER_GRACE: Duration = Duration::from_secs(1);

/// Runs until `cancel` fires. Returns an error only if it cannot start (the
/// listener cannot bind).
pub async fn run(engine: Arc<Engine>, cancel: CancellationToken) -> Result<(), String> {
    let fleet = match &engine.config().fleet {
        Some(config) => Some((config.lease, fleet::join(&engine, config).await?)),
        None => None,
    };
    // A fleet instance watches the accounts it holds, as it claims them.
    let mut watched: Vec<String> = match fleet {
        Some(_) => Vec::new(),
        None => engine.accounts().iter().map(|(a, _)| a.name.clone()).collect(),
    };
    if engine.discovers_app_accounts() {
        watched.push(app_accounts::LISTING.to_string());
    }
    let health = Arc::new(Health::new(watched));
    let nudges = Arc::new(Nudges::default());
    // Before anything opens files or sockets: the API client and the store
    // need descriptors whatever the listener's peers do.
    let fd_limit = fd_budget::raise_limit();
    let server = &engine.config().server;
    let listener = match server.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("server.listen: cannot listen on {addr}: {e}"))?;
            // The address bound, not the one asked for: with port 0 the
            // system picks a free port, and this line is where it is told.
            let bound = listener.local_addr().map_err(|e| format!("server.listen: {addr}: {e}"))?;
            tracing::info!("listening on {bound} for /healthz and /metrics");
            Some(listener)
        }
        None => None,
    };
    let server = match listener {
        Some(listener) => {
            let metrics = http::install_metrics()?;
            let receiver = engine.config().webhook.as_ref().map(|w| {
                let receiver = webhook::Receiver::new(
                    w.signing_secret.clone(),
                    w.tolerance,
                    nudges.clone(),
                    engine.store().clone(),
                    engine.writer().clone(),
                );
                (w.path.clone(), receiver)
            });
            let state = http::AppState { health: health.clone(), store: engine.store().clone(), metrics };
            let max_connections = fd_budget::connection_cap(server.max_connections, fd_limit);
            tracing::info!(max_connections, http2 = server.http2, "listener limits");
            let limits = http::Limits { max_connections, http2: server.http2, timeout: server.timeout };
            Some(tokio::spawn(http::serve(listener, state, receiver, limits, cancel.clone())))
        }
        None => None,
    };
    let supervisors = TaskTracker::new();
    match fleet {
        Some((lease, (fences, lost))) => {
            let daemon = fleet::Daemon {
                engine: engine.clone(),
                health: health.clone(),
                nudges: nudges.clone(),
                cancel: cancel.clone(),
            };
            let manager = fleet::Manager::new(daemon, lease, fences);
            supervisors.spawn(manager.run(lost));
        }
        None => {
            for (account, client) in engine.accounts() {
                let (account, client) = (account.clone(), client.clone());
                supervisors.spawn(supervisor::supervise(
                    engine.clone(),
                    account,
                    client,
                    health.clone(),
                    nudges.clone(),
                    cancel.clone(),
                ));
            }
            if engine.discovers_app_accounts() {
                supervisors.spawn(app_accounts::run(engine.clone(), health.clone(), nudges.clone(), cancel.clone()));
            }
        }
    }
    supervisors.close();
    let ticker = tokio::spawn(notify::tick(health.clone(), cancel.clone()));
    let history = tokio::spawn(runs::batches(engine.clone(), cancel.clone()));
    notify::ready(&health.status_line());
    tracing::info!(poll_interval_secs = engine.config().sync.poll_interval.as_secs(), "aurinko-sync running");

    cancel.cancelled().await;
    notify::stopping();
    if tokio::time::timeout(STOP_GRACE, supervisors.wait()).await.is_err() {
        tracing::warn!("some collections did not stop in time; their next run resumes from the store");
    }
    let _ = ticker.await;
    let _ = history.await;
    // The passes since the last batch, stopped ones included.
    engine.end_run(RunMode::Daemon).await;
    if let Some(server) = server {
        let _ = tokio::time::timeout(LISTENER_GRACE, server).await;
    }
    tracing::info!("stopped");
    Ok(())
}
