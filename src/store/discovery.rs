//! How each account's discovery (its calendar, task list and mail folder
//! lists) fares, in the `accounts` table: what `state` shows for an account
//! that cannot reach Aurinko before any of its collections exists.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::write::timestamp;
use super::{Store, StoreError};

/// How an account's discovery ended: `None` for a success, else the error's
/// class and message.
pub(super) type DiscoveryOutcome<'a> = Option<(&'a str, &'a str)>;

impl Store {
    /// Records how an account's discovery ended. A failure keeps the start of
    /// its streak (`discovery_failing_since`) and counts it; a success clears
    /// the error and the count and is remembered as the last success.
    pub(super) fn record_discovery(
        &self,
        account: &str,
        outcome: DiscoveryOutcome<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (class, error) = outcome.unzip();
        self.conn().execute(
            "INSERT INTO accounts (name, updated_at, discovery_error, discovery_error_class,
                                   discovery_failing_since, discovery_failures, discovery_success_at)
             VALUES (?1, ?4, ?2, ?3, CASE WHEN ?2 IS NULL THEN NULL ELSE ?4 END,
                     CASE WHEN ?2 IS NULL THEN 0 ELSE 1 END, CASE WHEN ?2 IS NULL THEN ?4 END)
             ON CONFLICT (name) DO UPDATE SET
                discovery_error = excluded.discovery_error,
                discovery_error_class = excluded.discovery_error_class,
                discovery_failing_since = CASE WHEN excluded.discovery_error IS NULL THEN NULL
                    ELSE coalesce(accounts.discovery_failing_since, excluded.discovery_failing_since) END,
                discovery_failures = CASE WHEN excluded.discovery_error IS NULL THEN 0
                    ELSE accounts.discovery_failures + 1 END,
                discovery_success_at = coalesce(excluded.discovery_success_at, accounts.discovery_success_at),
                updated_at = excluded.updated_at",
            params![account, error, class, timestamp(now)],
        )?;
        Ok(())
    }
}
