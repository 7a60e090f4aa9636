//! What the service knows about itself right now: the loop's heartbeat and
//! each collection's last outcome. `/healthz`, `STATUS=` and the lag gauges
//! read it; actors write it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::sync::CollectionKey;

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
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    pub fn new() -> Health {
        Health {
            heartbeat: Mutex::new(Instant::now()),
            collections: Mutex::new(BTreeMap::new()),
            refused_accounts: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn beat(&self) {
        *lock(&self.heartbeat) = Instant::now();
    }

    pub fn loop_stalled(&self) -> bool {
        lock(&self.heartbeat).elapsed() > STALL
    }

    pub fn watch(&self, key: &CollectionKey, last_success: Option<DateTime<Utc>>) {
        lock(&self.collections).entry(key.clone()).or_insert(CollectionHealth { failing: false, last_success });
    }

    pub fn succeeded(&self, key: &CollectionKey, at: DateTime<Utc>) {
        lock(&self.collections).insert(key.clone(), CollectionHealth { failing: false, last_success: Some(at) });
    }

    pub fn failed(&self, key: &CollectionKey) {
        lock(&self.collections).entry(key.clone()).or_default().failing = true;
    }

    pub fn forget(&self, key: &CollectionKey) {
        lock(&self.collections).remove(key);
    }

    pub fn account_refused(&self, account: &str) {
        lock(&self.refused_accounts).insert(account.to_string());
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
