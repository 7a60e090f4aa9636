//! The operator's side of the store: resync requests and dropping an
//! account's data (`aurinko-sync resync`, `reset`). Each is one short
//! `BEGIN IMMEDIATE` transaction, safe while the daemon runs: its writer
//! waits for it (busy timeout) and it waits for the writer.
//!
//! A request is a count in `sync_state.resync_requested`, a column the sync
//! never writes: a pass in flight, or a daemon keeping a collection's state
//! in memory, cannot overwrite it. The next pass compares it with the count
//! it last acted on and provisions again (see `Pass::resync_if_requested`).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::write::timestamp;
use super::{CollectionKey, Store, StoreError};
use crate::model::Kind;

/// Which collections a resync names; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct ResyncFilter {
    pub account: Option<String>,
    pub kind: Option<Kind>,
    pub collection: Option<String>,
}

/// How many rows a reset of an account deletes in each table, and how
/// many of its collections it sets back to nothing synced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRows {
    pub tables: Vec<(&'static str, u64)>,
    pub collections_reset: u64,
}

impl AccountRows {
    /// Whether there is nothing to delete or set back.
    pub fn is_empty(&self) -> bool {
        self.collections_reset == 0 && self.tables.iter().all(|(_, n)| *n == 0)
    }
}

/// Tables of synced data and of what discovery saw, keyed by `account`.
pub(super) const DATA_TABLES: &[&str] =
    &["events", "event_occurrences", "messages", "contacts", "tasks", "calendars", "task_lists", "folders"];

/// What remains of an account that is no longer configured, removed with it.
pub(super) const BOOKKEEPING_TABLES: &[&str] = &["sync_state", "subscriptions", "run_collections"];

/// The state a collection starts from after a reset: nothing synced, a
/// resync requested. The generation stays, so rows a pass in flight writes
/// after the reset are older than the next provisioning and swept by it.
const FRESH_STATE: &str =
    "UPDATE sync_state SET phase = 'new', window_min = NULL, window_max = NULL, range_days = NULL,
        reconciling = 0, updated_delta_token = NULL, updated_page_token = NULL, deleted_delta_token = NULL,
        deleted_page_token = NULL, last_attempt_at = NULL, last_success_at = NULL, last_error = NULL,
        last_error_class = NULL, consecutive_failures = 0, next_attempt_at = NULL, permanent_failures = 0,
        reprovisioned_after_failures = 0, reprovision_reason = NULL, reprovisioned_at = NULL,
        resync_requested = resync_requested + 1, updated_at = ?2
    WHERE account = ?1";

impl Store {
    /// The count of resync requests for a collection (0 when it has no
    /// stored state).
    pub fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError> {
        requested(&self.conn(), key)
    }

    /// Requests a resync of every stored, not removed collection `filter`
    /// matches, and returns them in order. Collections never synced have no
    /// state to give up: their first pass provisions anyway.
    pub(super) fn mark_for_resync(
        &self,
        filter: &ResyncFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<CollectionKey>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut marked = Vec::new();
        {
            let mut update = tx.prepare(
                "UPDATE sync_state SET resync_requested = resync_requested + 1, updated_at = ?4
                 WHERE phase != 'removed' AND (?1 IS NULL OR account = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR collection_id = ?3)
                 RETURNING account, kind, collection_id",
            )?;
            let mut rows = update.query(params![
                filter.account,
                filter.kind.map(Kind::as_str),
                filter.collection,
                timestamp(now)
            ])?;
            while let Some(row) = rows.next()? {
                let kind: String = row.get(1)?;
                if let Some(kind) = Kind::parse(&kind) {
                    marked.push(CollectionKey { account: row.get(0)?, kind, id: row.get(2)? });
                }
            }
        }
        tx.commit()?;
        marked.sort();
        Ok(marked)
    }

    /// What `delete_account` would delete for `account`, with `configured`
    /// as it would be given.
    pub(super) fn count_account_rows(&self, account: &str, configured: bool) -> Result<AccountRows, StoreError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        count_rows(&tx, account, configured)
    }

    /// Deletes an account's data in one transaction and returns what was
    /// deleted. For an account still `configured`, its collections keep
    /// a `sync_state` row set back to nothing synced, with a resync
    /// requested, so the next pass (of a running daemon too) provisions
    /// afresh; its subscriptions stay, since they still serve it. For an
    /// account no longer configured, nothing of it stays.
    pub(super) fn delete_account(
        &self,
        account: &str,
        configured: bool,
        now: DateTime<Utc>,
    ) -> Result<AccountRows, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows = count_rows(&tx, account, configured)?;
        for (table, _) in &rows.tables {
            if *table == "accounts" {
                tx.execute("DELETE FROM accounts WHERE name = ?1", params![account])?;
            } else {
                tx.execute(&format!("DELETE FROM {table} WHERE account = ?1"), params![account])?;
            }
        }
        if configured {
            tx.execute(FRESH_STATE, params![account, timestamp(now)])?;
        }
        tx.commit()?;
        Ok(rows)
    }
}

/// Rows per table that a reset of `account` deletes.
fn count_rows(tx: &Transaction<'_>, account: &str, configured: bool) -> Result<AccountRows, StoreError> {
    let mut tables: Vec<(&'static str, u64)> = Vec::new();
    let bookkeeping: &[&'static str] = if configured { &[] } else { BOOKKEEPING_TABLES };
    for table in DATA_TABLES.iter().chain(bookkeeping) {
        let n: i64 =
            tx.query_row(&format!("SELECT count(*) FROM {table} WHERE account = ?1"), params![account], |r| r.get(0))?;
        tables.push((table, n as u64));
    }
    let mut collections_reset = 0;
    if configured {
        let n: i64 =
            tx.query_row("SELECT count(*) FROM sync_state WHERE account = ?1", params![account], |r| r.get(0))?;
        collections_reset = n as u64;
    } else {
        let n: i64 = tx.query_row("SELECT count(*) FROM accounts WHERE name = ?1", params![account], |r| r.get(0))?;
        tables.push(("accounts", n as u64));
    }
    Ok(AccountRows { tables, collections_reset })
}

/// A collection's count of resync requests (both stores; PostgreSQL numbers
/// the parameters `$N`).
pub(super) const RESYNC_REQUESTED: &str =
    "SELECT resync_requested FROM sync_state WHERE account = ?1 AND kind = ?2 AND collection_id = ?3";

/// See [`Store::resync_requested`].
pub(super) fn requested(conn: &Connection, key: &CollectionKey) -> Result<i64, StoreError> {
    let mut query = conn.prepare_cached(RESYNC_REQUESTED)?;
    let mut rows = query.query(params![key.account, key.kind.as_str(), key.id])?;
    Ok(match rows.next()? {
        Some(row) => row.get(0)?,
        None => 0,
    })
}
