//! A fleet instance (`[fleet]`): instead of running every account, it
//! leases accounts from the store and runs a supervisor for each one it
//! holds.
//!
//! Every third of `lease_secs` it renews its heartbeat and leases (a lease
//! it no longer holds was taken over: that account stops at once), counts
//! the live instances, and moves towards its fair share, the accounts over
//! the live instances (the first instances by id take one more each while
//! it does not divide evenly): it claims free or expired leases (`FOR
//! UPDATE SKIP LOCKED`) when it has fewer, and releases some when it has
//! more, so a joining instance gets work within a tick or two. A commit
//! refused by fencing stops its account at once too. On a clean stop every
//! lease is released, so the others take the accounts over on their next
//! tick instead of waiting for the leases to expire. The instances tell
//! each other (PostgreSQL `NOTIFY`) when leases are released or an instance
//! comes or goes, and each ticks at once then; webhook notifications for a
//! collection another instance holds reach it the same way.
//!
//! With app discovery, the accounts to share are the configured ones and
//! those the app's list names as syncable, read every discovery interval by
//! each instance.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::app_accounts;
use super::health::Health;
use super::nudge::Nudges;
use super::supervisor;
use crate::aurinko::AccountClient;
use crate::config::{AccountConfig, FleetConfig};
use crate::store::{Backend, Fences, FleetView, Signal, StoreError};
use crate::sync::Engine;

/// How often a start under a still-live id tries again.
const REGISTER_RETRY: Duration = Duration::from_millis(500);

/// Ticks brought forward by the other instances' signals come at most this
/// often.
const MIN_TICK: Duration = Duration::from_millis(200);

/// The next signal, or never without a subscription.
async fn next_signal(signals: &mut Option<UnboundedReceiver<Signal>>) -> Option<Signal> {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}

/// Joins the fleet: installs fencing on the store and registers the
/// instance. Fails when the store cannot (SQLite) or the id is live
/// elsewhere. Returns the channel of accounts whose commits were fenced.
pub async fn join(engine: &Engine, fleet: &FleetConfig) -> Result<(Arc<Fences>, UnboundedReceiver<String>), String> {
    let (fences, lost) = Fences::new(&fleet.instance);
    let fences = Arc::new(fences);
    let lease = fleet.lease;
    let joined = fences.clone();
    blocking(engine.store().clone(), move |s| s.join_fleet(joined).map(drop))
        .await
        .map_err(|e| format!("fleet: {e}"))?;
    // An instance restarted after a crash finds its id still live until
    // its old heartbeat is a lease old: it waits that out. A second live
    // process under the id never ages out, and is refused.
    let deadline = Instant::now() + 2 * lease;
    let host = crate::config::default_instance_id();
    let mut said = false;
    loop {
        let host = host.clone();
        let register = blocking(engine.store().clone(), move |s| {
            s.fleet()?.register(&host, std::process::id(), env!("CARGO_PKG_VERSION"), lease)
        })
        .await;
        match register {
            Ok(()) => break,
            Err(StoreError::InstanceIdInUse(_)) if Instant::now() < deadline => {
                if !said {
                    tracing::warn!(instance = %fleet.instance, "the id is still live (a previous run's heartbeat?): waiting up to two leases for it");
                    said = true;
                }
                tokio::time::sleep(REGISTER_RETRY).await;
            }
            Err(e) => return Err(format!("fleet: {e}")),
        }
    }
    tracing::info!(instance = %fleet.instance, lease_secs = lease.as_secs(), "joined the fleet");
    Ok((fences, lost))
}

/// Runs the store call `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    store: Arc<dyn Backend>,
    f: impl FnOnce(&dyn Backend) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(move || f(&*store)).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Unsupported(format!("a store call panicked: {e}"))),
    }
}

/// One account this instance runs.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// What the manager shares with the rest of the daemon.
pub struct Daemon {
    pub engine: Arc<Engine>,
    pub health: Arc<Health>,
    pub nudges: Arc<Nudges>,
    pub cancel: CancellationToken,
}

pub struct Manager {
    daemon: Daemon,
    lease: Duration,
    fences: Arc<Fences>,
    /// What may be shared: configured accounts, and the app's syncable ones.
    candidates: BTreeMap<String, (AccountConfig, AccountClient)>,
    running: HashMap<String, Running>,
    /// Candidates known to have a lease row.
    added: HashSet<String>,
    /// Stops under way (their leases are released once each has stopped).
    stopping: JoinSet<Option<String>>,
}

impl Manager {
    pub fn new(daemon: Daemon, lease: Duration, fences: Arc<Fences>) -> Manager {
        let candidates =
            daemon.engine.accounts().iter().map(|(a, c)| (a.name.clone(), (a.clone(), c.clone()))).collect();
        Manager {
            daemon,
            lease,
            fences,
            candidates,
            running: HashMap::new(),
            added: HashSet::new(),
            stopping: JoinSet::new(),
        }
    }

    /// Runs until `cancel` fires; then stops every account, releases the
    /// leases and leaves the fleet.
    pub async fn run(mut self, mut lost: UnboundedReceiver<String>) {
        let tick = self.lease / 3;
        let mut signals = match blocking(self.daemon.engine.store().clone(), |s| s.fleet()?.subscribe()).await {
            Ok(signals) => Some(signals),
            Err(e) => {
                tracing::warn!("fleet: cannot hear the other instances (claims wait for the next tick): {e}");
                None
            }
        };
        self.publish(Signal::LeasesChanged).await;
        let mut next_listing = Instant::now();
        let mut next_tick = Instant::now();
        loop {
            if Instant::now() >= next_tick {
                if self.daemon.engine.discovers_app_accounts() && Instant::now() >= next_listing {
                    next_listing = Instant::now() + self.refresh_app_accounts().await;
                }
                self.tick().await;
                next_tick = Instant::now() + tick;
            }
            tokio::select! {
                _ = self.daemon.cancel.cancelled() => break,
                _ = tokio::time::sleep_until(next_tick) => {}
                Some(account) = lost.recv() => {
                    self.stop(&account, "a commit was refused: another instance holds it now", false);
                }
                Some(Ok(Some(account))) = self.stopping.join_next(), if !self.stopping.is_empty() => {
                    self.release(account).await;
                }
                Some(signal) = next_signal(&mut signals) => match signal {
                    // Claim now rather than at the next tick, but not more
                    // often than every MIN_TICK however many signals come.
                    Signal::LeasesChanged => next_tick = next_tick.min(Instant::now() + MIN_TICK),
                    Signal::Nudge(key) => {
                        self.daemon.nudges.nudge(&key);
                    }
                },
            }
        }
        for (_, running) in self.running.drain() {
            let _ = running.task.await;
        }
        while self.stopping.join_next().await.is_some() {}
        match blocking(self.daemon.engine.store().clone(), |s| s.fleet()?.leave()).await {
            Ok(()) => tracing::info!(instance = %self.fences.instance, "left the fleet: every lease released"),
            Err(e) => tracing::warn!("fleet: could not release the leases (they expire by themselves): {e}"),
        }
        self.publish(Signal::LeasesChanged).await;
    }

    /// Tells the other instances; a failure only delays them to their tick.
    async fn publish(&self, signal: Signal) {
        if let Err(e) = blocking(self.daemon.engine.store().clone(), move |s| s.fleet()?.publish(&signal)).await {
            tracing::debug!("fleet: a signal to the other instances was not sent: {e}");
        }
    }

    /// Reads the app's list: its syncable accounts become candidates, and
    /// those this instance runs that left it are stopped. Returns when to
    /// read it next.
    async fn refresh_app_accounts(&mut self) -> Duration {
        let Some((listing, wait)) = app_accounts::read(&self.daemon.engine, &self.daemon.health).await else {
            return self.daemon.engine.config().sync.discovery_interval;
        };
        if let Some(listing) = listing {
            let configured: Vec<String> = self.daemon.engine.accounts().iter().map(|(a, _)| a.name.clone()).collect();
            self.candidates.retain(|name, _| configured.contains(name));
            for (account, client) in &listing.syncable {
                self.candidates.insert(account.name.clone(), (account.clone(), client.clone()));
            }
            let gone: Vec<String> =
                self.running.keys().filter(|name| !self.candidates.contains_key(*name)).cloned().collect();
            for name in gone {
                self.stop(&name, "the app no longer syncs it", true);
            }
            self.daemon.engine.record_app_listing(&listing).await;
        }
        wait
    }

    /// Heartbeat and renewals, then one step towards the fair share.
    async fn tick(&mut self) {
        let lease = self.lease;
        let view = match blocking(self.daemon.engine.store().clone(), move |s| s.fleet()?.heartbeat(lease)).await {
            Ok(view) => view,
            Err(e) => {
                // The leases run out unless a later tick renews them; the
                // fencing keeps any commit after that from landing.
                tracing::warn!("fleet: heartbeat failed: {e}");
                return;
            }
        };
        self.drop_lost(&view);
        let share = fair_share(self.candidates.len(), &view.live, &self.fences.instance);
        let held = self.running.len();
        if held > share {
            let extra: Vec<String> = self.running.keys().take(held - share).cloned().collect();
            for name in extra {
                self.stop(&name, "rebalancing: another instance takes it over", true);
            }
        } else if held < share {
            self.claim(share - held).await;
        }
    }

    /// Stops the accounts whose lease this session no longer holds.
    fn drop_lost(&mut self, view: &FleetView) {
        let lost: Vec<String> =
            self.running.keys().filter(|name| !view.held.iter().any(|(a, _)| a == *name)).cloned().collect();
        for name in lost {
            self.fences.forget(&name);
            self.stop(&name, "its lease was taken over", false);
        }
    }

    async fn claim(&mut self, want: usize) {
        let new: Vec<String> = self.candidates.keys().filter(|name| !self.added.contains(*name)).cloned().collect();
        if !new.is_empty() {
            let rows = new.clone();
            match blocking(self.daemon.engine.store().clone(), move |s| s.fleet()?.add_accounts(&rows)).await {
                Ok(()) => self.added.extend(new),
                Err(e) => tracing::warn!("fleet: adding accounts to the leases failed: {e}"),
            }
        }
        let free: Vec<String> = self
            .candidates
            .keys()
            .filter(|name| !self.running.contains_key(*name) && self.fences.epoch(name).is_none())
            .cloned()
            .collect();
        if free.is_empty() {
            return;
        }
        let lease = self.lease;
        let claimed =
            match blocking(self.daemon.engine.store().clone(), move |s| s.fleet()?.claim(&free, want, lease)).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!("fleet: claiming accounts failed: {e}");
                    return;
                }
            };
        for (name, epoch) in claimed {
            let Some((account, client)) = self.candidates.get(&name).cloned() else { continue };
            tracing::info!(account = %name, epoch, "lease claimed: syncing the account");
            self.daemon.health.forget_account(&name);
            let stop = self.daemon.cancel.child_token();
            let task = tokio::spawn(supervisor::supervise(
                self.daemon.engine.clone(),
                account,
                client,
                self.daemon.health.clone(),
                self.daemon.nudges.clone(),
                stop.clone(),
            ));
            self.running.insert(name, Running { stop, task });
        }
    }

    /// Stops an account's supervisor; with `release`, its lease is given up
    /// once it has stopped (in the background: the ticks go on meanwhile).
    fn stop(&mut self, account: &str, why: &str, release: bool) {
        let Some(running) = self.running.remove(account) else { return };
        tracing::info!(account, "stopping the account: {why}");
        running.stop.cancel();
        let name = account.to_string();
        let health = self.daemon.health.clone();
        self.stopping.spawn(async move {
            let _ = running.task.await;
            health.forget_account(&name);
            release.then_some(name)
        });
    }

    /// An account stopped for a release: its lease is given up.
    async fn release(&mut self, account: String) {
        if self.running.contains_key(&account) {
            return;
        }
        let names = vec![account.clone()];
        match blocking(self.daemon.engine.store().clone(), move |s| s.fleet()?.release(&names)).await {
            Ok(()) => self.publish(Signal::LeasesChanged).await,
            Err(e) => tracing::warn!(account, "fleet: releasing the lease failed (it expires by itself): {e}"),
        }
    }
}

/// How many of `total` accounts the instance `me` should hold: as many as
/// any other live instance, give or take one; the instances first by id
/// take the remainder. Every instance computes the same split from the same
/// list, so the shares add up to the total.
fn fair_share(total: usize, live: &[String], me: &str) -> usize {
    let n = live.len().max(1);
    let position = live.iter().position(|id| id == me).unwrap_or(0);
    total / n + usize::from(position < total % n)
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn shares_add_up_and_differ_by_one_at_most() {
        let live: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let shares: Vec<usize> = live.iter().map(|me| fair_share(30, &live, me)).collect();
        assert_eq!(shares, [8, 8, 7, 7]);
        assert_eq!(fair_share(30, &live[..3], "c"), 10);
        assert_eq!(fair_share(2, &live, "d"), 0);
        assert_eq!(fair_share(5, &[], "a"), 5, "alone when the list is empty");
    }
}
