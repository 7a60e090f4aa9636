//! What the service knows about itself right now: the loop's heartbeat and
//! each collection's last outcome. `/healthz`, `STATUS=` and the lag and
//! collection gauges of `/metrics` read it; actors write it. A collection
//! that is forgotten (gone upstream) leaves no trace here, so it stops
//! counting in `/metrics` with it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::discovery_health::{Discoveries, Verdict};
use crate::model::CollectionKey;

/// A heartbeat older than this means the service loop is stuck.
const STALL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default)]
pub struct CollectionHealth {
    pub failing: bool,
    pub last_success: Option<DateTime<Utc>>,
}

pub struct Health {
    heartbeat: Mutex<Instant>,
    collections: Mutex<BTreeMap<CollectionKey, CollectionHealth>>,
    refused_accounts: Mutex<BTreeSet<String>>,
    discoveries: Mutex<Discoveries>,
}

impl Health {
    /// The health of a service running `accounts`.
    pub fn new(accounts: impl IntoIterator<Item = String>) -> Health {
        Health {
            heartbeat: Mutex::new(Instant::now()),
            collections: Mutex::new(BTreeMap::new()),
            refused_accounts: Mutex::new(BTreeSet::new()),
            discoveries: Mutex::new(Discoveries::new(accounts)),
        }
    }

    pub fn beat(&self) {
        *lock(&self.heartbeat) = Instant::now();
    }

    pub fn loop_stalled(&self) -> bool {
        lock(&self.heartbeat).elapsed() > STALL
    }

    /// Starts tracking a collection; the other updates apply only to
    /// tracked ones, so a pass ending after its collection was forgotten
    /// cannot bring it back.
    pub fn watch(&self, key: &CollectionKey, last_success: Option<DateTime<Utc>>) {
        lock(&self.collections)
            .entry(key.clone())
            .or_insert(CollectionHealth { last_success, ..CollectionHealth::default() });
    }

    pub fn succeeded(&self, key: &CollectionKey, at: DateTime<Utc>) {
        if let Some(c) = lock(&self.collections).get_mut(key) {
            c.failing = false;
            c.last_success = Some(at);
        }
    }

    pub fn failed(&self, key: &CollectionKey) {
        if let Some(c) = lock(&self.collections).get_mut(key) {
            c.failing = true;
        }
    }

    pub fn forget(&self, key: &CollectionKey) {
        lock(&self.collections).remove(key);
    }

    /// A refused token stops the account until restart: its discovery
    /// counts as failing from now on.
    pub fn account_refused(&self, account: &str) {
        lock(&self.refused_accounts).insert(account.to_string());
        lock(&self.discoveries).refused(account);
    }

    /// An account no longer synced (the app stopped it) leaves no trace.
    pub fn forget_account(&self, account: &str) {
        lock(&self.refused_accounts).remove(account);
        lock(&self.discoveries).forget(account);
        lock(&self.collections).retain(|key, _| key.account != account);
    }

    /// Records how an account's discovery ended: `None` for a success.
    pub fn discovered(&self, account: &str, error: Option<String>) {
        lock(&self.discoveries).record(account, error);
    }

    pub fn discovery(&self) -> Verdict {
        lock(&self.discoveries).verdict()
    }

    /// Accounts whose latest discovery failed.
    pub fn discovery_failing(&self) -> usize {
        lock(&self.discoveries).failing()
    }

    pub fn snapshot(&self) -> BTreeMap<CollectionKey, CollectionHealth> {
        lock(&self.collections).clone()
    }

    /// One line for `STATUS=`: "7 collections, 1 failing, last sync 12:00:03Z".
    pub fn status_line(&self) -> String {
        let collections = lock(&self.collections);
        let failing = collections.values().filter(|c| c.failing).count();
        let last = collections.values().filter_map(|c| c.last_success).max();
        let mut line = format!("{} collections, {failing} failing", collections.len());
        match last {
            Some(t) => line.push_str(&format!(", last sync {}", t.format("%Y-%m-%d %H:%M:%SZ"))),
            None => line.push_str(", no sync yet"),
        }
        let discovery_failing = self.discovery_failing();
        if discovery_failing > 0 {
            line.push_str(&format!(
                ", discovery failing for {discovery_failing} of {} accounts",
                lock(&self.discoveries).len()
            ));
        }
        let refused = lock(&self.refused_accounts);
        if !refused.is_empty() {
            let names: Vec<&str> = refused.iter().map(String::as_str).collect();
            line.push_str(&format!(", token refused: {}", names.join(", ")));
        }
        line
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
