//! Nudges: how a webhook notification reaches a collection's actor.
//!
//! Each actor owns a `Notify`. `notify_one` keeps at most one permit, so a
//! burst of notifications while an actor syncs leaves one pass to run after
//! it, never one per notification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::model::CollectionKey;

#[derive(Default)]
pub struct Nudges {
    actors: Mutex<HashMap<CollectionKey, Arc<Notify>>>,
    /// Aurinko account id → local account name, learned from `GET /account`.
    accounts: Mutex<HashMap<i64, String>>,
}

impl Nudges {
    pub fn register(&self, key: &CollectionKey) -> Arc<Notify> {
        lock(&self.actors).entry(key.clone()).or_default().clone()
    }

    /// Unregisters `key` if `notify` is still its actor's: a stopped actor
    /// leaves, but not a newer actor of the same collection (its account
    /// claimed again meanwhile).
    pub fn unregister_own(&self, key: &CollectionKey, notify: &Arc<Notify>) {
        let mut actors = lock(&self.actors);
        if actors.get(key).is_some_and(|current| Arc::ptr_eq(current, notify)) {
            actors.remove(key);
        }
    }

    /// Asks the collection's actor for a pass now. False when no actor runs
    /// it (not configured, or stopped).
    pub fn nudge(&self, key: &CollectionKey) -> bool {
        match lock(&self.actors).get(key) {
            Some(notify) => {
                notify.notify_one();
                true
            }
            None => false,
        }
    }

    pub fn learn_account(&self, aurinko_id: i64, account: &str) {
        lock(&self.accounts).insert(aurinko_id, account.to_string());
    }

    pub fn account(&self, aurinko_id: i64) -> Option<String> {
        lock(&self.accounts).get(&aurinko_id).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
