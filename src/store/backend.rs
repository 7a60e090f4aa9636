//! What the sync and the daemon need from a store, as a trait: SQLite
//! ([`Store`](super::Store)) is one backend, and a second implements the
//! same calls; above the store nothing names SQLite.
//!
//! Three sides. The writer's ([`Writer`](super::Writer), the only write
//! path of a running sync), called on its thread alone: a transaction it
//! keeps open while passes send writes, a fallback that applies writes one
//! transaction each, bookkeeping changes, and the reads a pass makes between
//! its writes. Reads for the daemon: a collection's schedule, the
//! collections an account has, webhook lookups, the report `state` and
//! `/healthz` show. And the operator's one-shot commands (`resync`,
//! `reset`), each one short transaction from a process of its own, where no
//! writer runs: the store serialises them against a running daemon's writer.

use chrono::{DateTime, Utc};

use std::sync::Arc;

use super::{
    AccountRows, Change, CommitStats, Fences, Fleet, Report, ResyncFilter, Schedule, StoreError, StoredEvent,
    StoredInstance, StoredRecord, StoredRun, Write,
};
use crate::model::{CollectionKey, Kind, SyncState};

pub trait Backend: Send + Sync + 'static {
    /// Begins the writer's transaction.
    fn begin(&self, now: DateTime<Utc>) -> Result<Box<dyn Transaction + '_>, StoreError>;

    /// Applies each write in a transaction of its own, in order; a
    /// collection's writes after one of its own that failed are not
    /// applied (their tokens presume it). What a transaction falls back to
    /// when one of its writes fails.
    fn write_each(&self, writes: &[&Write], now: DateTime<Utc>) -> Vec<Result<CommitStats, StoreError>>;

    /// Applies a bookkeeping change in a transaction of its own; says
    /// whether it found what it changes.
    fn apply_change(&self, change: &Change, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// A collection's stored state, `None` if it was never synced.
    fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError>;

    /// The count of operator resync requests for a collection.
    fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError>;

    /// When a collection is due, and its failure streak.
    fn schedule(&self, key: &CollectionKey) -> Result<Schedule, StoreError>;

    /// The collections of an account the store knows and has not removed.
    fn live_collections(&self, account: &str) -> Result<Vec<CollectionKey>, StoreError>;

    /// The local account name for an Aurinko account id.
    fn account_for_id(&self, aurinko_id: i64) -> Result<Option<String>, StoreError>;

    /// The collection a subscription to an alias (`primary`, `default`)
    /// stands for.
    fn aliased(&self, account: &str, kind: Kind) -> Result<Option<String>, StoreError>;

    /// Whether a write could start now (the health probe).
    fn check_writable(&self) -> Result<(), StoreError>;

    /// Everything `state` shows.
    fn report(&self) -> Result<Report, StoreError>;

    /// An account's events, for the demo's summary.
    fn events(&self, account: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// An account's `event_instances` (the view), in time order.
    fn instances(&self, account: &str) -> Result<Vec<StoredInstance>, StoreError>;

    /// The last `limit` runs, newest first (`state --runs`).
    fn runs(&self, limit: u32) -> Result<Vec<StoredRun>, StoreError>;

    /// Every row of one kind for an account, ordered by collection and id
    /// (tests compare them with the truth).
    fn records(&self, account: &str, kind: Kind) -> Result<Vec<StoredRecord>, StoreError>;

    /// Requests a resync of every stored, not removed collection `filter`
    /// matches, and returns them in order (`aurinko-sync resync`).
    fn request_resync(&self, filter: &ResyncFilter, now: DateTime<Utc>) -> Result<Vec<CollectionKey>, StoreError>;

    /// What [`reset_account`](Backend::reset_account) would delete.
    fn account_rows(&self, account: &str, configured: bool) -> Result<AccountRows, StoreError>;

    /// Deletes an account's data in one transaction and returns what was
    /// deleted (`aurinko-sync reset`): a still `configured` account's
    /// collections start over, nothing stays of one no longer configured.
    fn reset_account(&self, account: &str, configured: bool, now: DateTime<Utc>) -> Result<AccountRows, StoreError>;

    /// Makes this store a fleet instance's: from now on every commit of an
    /// account's data checks its lease against `fences`. Only a store
    /// several processes can share (PostgreSQL) can.
    fn join_fleet(&self, fences: Arc<Fences>) -> Result<&dyn Fleet, StoreError>;

    /// The fleet operations of a store that has joined one.
    fn fleet(&self) -> Result<&dyn Fleet, StoreError>;
}

/// The writer's open transaction. Dropped without [`commit`](Transaction::commit),
/// nothing of it is stored.
pub trait Transaction {
    /// Applies one write. After an error the transaction holds part of the
    /// write: the caller must drop it.
    fn apply(&mut self, write: &Write) -> Result<CommitStats, StoreError>;

    /// A collection's stored state, read inside the transaction: the caller
    /// makes sure it holds no write of that collection.
    fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError>;

    /// The count of resync requests for a collection, read inside the
    /// transaction.
    fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError>;

    /// Commits everything applied; on an error nothing of it is stored.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

impl Backend for super::Store {
    fn begin(&self, now: DateTime<Utc>) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(self.begin_batch(now)?))
    }

    fn write_each(&self, writes: &[&Write], now: DateTime<Utc>) -> Vec<Result<CommitStats, StoreError>> {
        super::Store::write_each(self, writes.iter().copied(), now)
    }

    fn apply_change(&self, change: &Change, now: DateTime<Utc>) -> Result<bool, StoreError> {
        super::Store::apply_change(self, change, now)
    }

    fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
        super::Store::load_state(self, key)
    }

    fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError> {
        super::Store::resync_requested(self, key)
    }

    fn schedule(&self, key: &CollectionKey) -> Result<Schedule, StoreError> {
        super::Store::schedule(self, key)
    }

    fn live_collections(&self, account: &str) -> Result<Vec<CollectionKey>, StoreError> {
        super::Store::live_collections(self, account)
    }

    fn account_for_id(&self, aurinko_id: i64) -> Result<Option<String>, StoreError> {
        super::Store::account_for_id(self, aurinko_id)
    }

    fn aliased(&self, account: &str, kind: Kind) -> Result<Option<String>, StoreError> {
        super::Store::aliased(self, account, kind)
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        super::Store::check_writable(self)
    }

    fn report(&self) -> Result<Report, StoreError> {
        super::Store::report(self)
    }

    fn events(&self, account: &str) -> Result<Vec<StoredEvent>, StoreError> {
        super::Store::events(self, account)
    }

    fn instances(&self, account: &str) -> Result<Vec<StoredInstance>, StoreError> {
        super::Store::instances(self, account)
    }

    fn runs(&self, limit: u32) -> Result<Vec<StoredRun>, StoreError> {
        super::Store::runs(self, limit)
    }

    fn records(&self, account: &str, kind: Kind) -> Result<Vec<StoredRecord>, StoreError> {
        super::Store::records(self, account, kind)
    }

    fn request_resync(&self, filter: &ResyncFilter, now: DateTime<Utc>) -> Result<Vec<CollectionKey>, StoreError> {
        super::Store::mark_for_resync(self, filter, now)
    }

    fn account_rows(&self, account: &str, configured: bool) -> Result<AccountRows, StoreError> {
        super::Store::count_account_rows(self, account, configured)
    }

    fn reset_account(&self, account: &str, configured: bool, now: DateTime<Utc>) -> Result<AccountRows, StoreError> {
        super::Store::delete_account(self, account, configured, now)
    }

    fn join_fleet(&self, _fences: Arc<Fences>) -> Result<&dyn Fleet, StoreError> {
        self.fleet()
    }

    fn fleet(&self) -> Result<&dyn Fleet, StoreError> {
        Err(StoreError::Unsupported("several instances share accounts only through PostgreSQL (store.url)".into()))
    }
}

impl Transaction for super::OpenBatch<'_> {
    fn apply(&mut self, write: &Write) -> Result<CommitStats, StoreError> {
        super::OpenBatch::apply(self, write)
    }

    fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
        super::OpenBatch::load_state(self, key)
    }

    fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError> {
        super::OpenBatch::resync_requested(self, key)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        super::OpenBatch::commit(*self)
    }
}
