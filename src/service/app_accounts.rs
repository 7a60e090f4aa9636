//! App mode in the daemon (`[app] accounts = "aurinko"`): every
//! `discovery_interval` the app's account list is read and recorded, a
//! supervisor is started for each account that appeared (or whose token is
//! active again), and the supervisors of accounts that left the list or
//! whose token is no longer active are stopped. A stopped account's rows
//! stay (unless `purge_removed_accounts` and it left the app); `state`
//! shows it and why.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use super::nudge::Nudges;
use super::supervisor;
use crate::sync::{AppListing, Engine};

/// What `/healthz` and `STATUS=` call the app's account list.
pub const LISTING: &str = "the app's account list";

/// A failed listing is tried again this soon (or at the discovery
/// interval, if shorter), so a start during an outage is not stuck for
/// the whole interval with nothing to sync.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Reads the app's list and says how it went to `health`; with the
/// listing, when to read it next (the discovery interval, or sooner after a
/// failure). `None` without app discovery.
pub async fn read(engine: &Engine, health: &Health) -> Option<(Option<AppListing>, Duration)> {
    let interval = engine.config().sync.discovery_interval;
    match engine.list_app_accounts().await? {
        Ok(listing) => {
            health.discovered(LISTING, None);
            Some((Some(listing), interval))
        }
        Err(e) => {
            tracing::error!("the app's account list failed (accounts already running go on): {e}");
            health.discovered(LISTING, Some(format!("the app's account list failed: {e}")));
            Some((None, interval.min(RETRY_AFTER_FAILURE)))
        }
    }
}

/// Runs until `cancel` fires, then waits for the supervisors it started.
pub async fn run(engine: Arc<Engine>, health: Arc<Health>, nudges: Arc<Nudges>, cancel: CancellationToken) {
    // Each running account's stop token and supervisor.
    let mut running: HashMap<String, (CancellationToken, JoinHandle<()>)> = HashMap::new();
    loop {
        let Some((listing, wait)) = read(&engine, &health).await else { return };
        if let Some(listing) = listing {
            let syncable: HashSet<String> = listing.syncable.iter().map(|(a, _)| a.name.clone()).collect();
            let mut stopping = Vec::new();
            for name in running.keys().filter(|name| !syncable.contains(*name)).cloned().collect::<Vec<_>>() {
                let why = listing.stopped.iter().find(|(n, _)| *n == name).map_or("removed from the app", |(_, w)| w);
                tracing::info!(account = %name, "the app no longer syncs this account ({why}): stopping it");
                if let Some((stop, task)) = running.remove(&name) {
                    stop.cancel();
                    stopping.push((name, task));
                }
            }
            for (name, task) in stopping {
                let _ = task.await;
                health.forget_account(&name);
            }
            // After the stops: a purge of a removed account comes after
            // its last commit.
            engine.record_app_listing(&listing).await;
            let mut started = 0;
            for (account, client) in listing.syncable {
                // A supervisor that ended by itself found the token
                // refused; the list says it is active again: retry.
                if running.get(&account.name).is_some_and(|(_, task)| !task.is_finished()) {
                    continue;
                }
                health.forget_account(&account.name);
                let stop = cancel.child_token();
                let name = account.name.clone();
                let task = tokio::spawn(supervisor::supervise(
                    engine.clone(),
                    account,
                    client,
                    health.clone(),
                    nudges.clone(),
                    stop.clone(),
                ));
                running.insert(name, (stop, task));
                started += 1;
            }
            if started > 0 || !listing.stopped.is_empty() {
                tracing::info!(
                    started,
                    syncing = running.len(),
                    stopped = listing.stopped.len(),
                    "the app's account list read"
                );
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    for (_, (_, task)) in running {
        let _ = task.await;
    }
}
