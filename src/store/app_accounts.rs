//! Accounts the app discovered (`GET /am/accounts`), in the `accounts`
//! table: what the listing said of each (service, address, token status),
//! and why the app does not sync it when it does not, so `state` can show
//! stopped accounts beside synced ones.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::resync::{BOOKKEEPING_TABLES, DATA_TABLES};
use super::write::timestamp;
use super::{Store, StoreError};
use crate::model::{AppAccount, discovered_name};

// Written by both stores (PostgreSQL numbers the parameters `$N`).

/// One listed account: `?1` its local name, `?2` its Aurinko id, `?3` to
/// `?5` service, address and token status, `?6` why it is stopped (NULL
/// while synced), `?7` now, `?8` true.
pub(super) const SAVE_APP_ACCOUNT: &str = "INSERT INTO accounts (name, aurinko_account_id, app_listed,
        service_type, email, token_status, app_stopped, app_seen_at, updated_at)
     VALUES (?1, ?2, ?8, ?3, ?4, ?5, ?6, ?7, ?7)
     ON CONFLICT (name) DO UPDATE SET aurinko_account_id = excluded.aurinko_account_id,
        app_listed = excluded.app_listed, service_type = excluded.service_type, email = excluded.email,
        token_status = excluded.token_status, app_stopped = excluded.app_stopped,
        app_seen_at = excluded.app_seen_at, updated_at = excluded.updated_at";

/// Every listed account a listing (the JSON array of names `?3`) did not
/// name: `?1` says why it stopped, `?2` is now. Names, not times, decide:
/// two listings may fall in the same second.
const APP_ACCOUNTS_REMOVED: &str = "UPDATE accounts SET app_stopped = ?1, updated_at = ?2
     WHERE app_listed = 1 AND name NOT IN (SELECT value FROM json_each(?3))
       AND (app_stopped IS NULL OR app_stopped <> ?1)";

/// Tables whose rows of a removed account `purge_removed_accounts` deletes:
/// all but `accounts`.
pub(super) fn purged_tables() -> impl Iterator<Item = &'static str> {
    DATA_TABLES.iter().chain(BOOKKEEPING_TABLES).copied()
}

/// Deletes `table`'s rows of every account removed from the app (`?1` the
/// removal's words, `?2` true).
pub(super) fn purge(table: &str) -> String {
    format!(
        "DELETE FROM {table} WHERE account IN
         (SELECT name FROM accounts WHERE app_listed = ?2 AND app_stopped = ?1)"
    )
}

/// What `state` says of an account the app's list no longer names.
pub const REMOVED_FROM_APP: &str = "removed from the app";

impl Store {
    /// Records a complete listing of the app's accounts, in one transaction.
    pub(super) fn save_app_accounts(
        &self,
        listed: &[AppAccount],
        purge_removed: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        let now = timestamp(now);
        {
            let mut save = tx.prepare_cached(SAVE_APP_ACCOUNT)?;
            for a in listed {
                save.execute(params![
                    discovered_name(a.id),
                    a.id,
                    a.service_type,
                    a.email,
                    a.token_status,
                    a.not_syncable(),
                    now,
                    true
                ])?;
            }
        }
        let names =
            serde_json::Value::from(listed.iter().map(|a| discovered_name(a.id)).collect::<Vec<_>>()).to_string();
        tx.execute(APP_ACCOUNTS_REMOVED, params![REMOVED_FROM_APP, now, names])?;
        if purge_removed {
            for table in purged_tables() {
                tx.execute(&purge(table), params![REMOVED_FROM_APP, true])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
