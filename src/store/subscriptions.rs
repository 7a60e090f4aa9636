//! Webhook bookkeeping: Aurinko's numeric account ids (notifications name
//! accounts by them) and the subscriptions `subscribe` keeps.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::write::timestamp;
use super::{CollectionKey, Store, StoreError};
use crate::model::Kind;

/// A subscription as `subscribe` left it, with the last lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub id: i64,
    pub resource: String,
    pub key: CollectionKey,
    pub notification_url: String,
    pub active: bool,
    pub fail_since: Option<String>,
    pub fail_description: Option<String>,
}

// Written by both stores (PostgreSQL numbers the parameters `$N`).

/// An account's Aurinko id.
pub(super) const SAVE_ACCOUNT_ID: &str =
    "INSERT INTO accounts (name, aurinko_account_id, updated_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (name) DO UPDATE SET aurinko_account_id = excluded.aurinko_account_id,
        updated_at = excluded.updated_at";

/// One subscription as Aurinko listed it.
pub(super) const SAVE_SUBSCRIPTION: &str = "INSERT INTO subscriptions (account, subscription_id, resource, kind,
        collection_id, notification_url, active, fail_since, fail_description, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT (account, subscription_id) DO UPDATE SET resource = excluded.resource,
        kind = excluded.kind, collection_id = excluded.collection_id,
        notification_url = excluded.notification_url, active = excluded.active,
        fail_since = excluded.fail_since, fail_description = excluded.fail_description,
        updated_at = excluded.updated_at";

impl Store {
    pub(super) fn save_account_id(&self, account: &str, aurinko_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        save_account_id(&self.conn(), account, aurinko_id, &timestamp(now))
    }

    /// The local account name for an Aurinko account id.
    pub fn account_for_id(&self, aurinko_id: i64) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        let name = conn
            .query_row("SELECT name FROM accounts WHERE aurinko_account_id = ?1", params![aurinko_id], |r| r.get(0))
            .optional()?;
        Ok(name)
    }

    /// The live collection of a listed kind that discovery marked as the
    /// one its alias names: the primary calendar (`/calendars/primary/...`),
    /// the default task list (`/tasklists/default/...`).
    pub fn aliased(&self, account: &str, kind: Kind) -> Result<Option<String>, StoreError> {
        let Some(listing) = kind.listing() else { return Ok(None) };
        let conn = self.conn();
        let id = conn
            .query_row(
                &format!(
                    "SELECT {id} FROM {table} WHERE account = ?1 AND {alias} = 1 AND removed_at IS NULL
                     ORDER BY last_seen_at DESC LIMIT 1",
                    id = listing.id,
                    table = listing.table,
                    alias = listing.alias,
                ),
                params![account],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id)
    }

    /// Replaces what the store knows of an account's subscriptions with
    /// what Aurinko listed after `subscribe`, with the account's Aurinko id,
    /// in one transaction; lifecycle events of kept subscriptions stay.
    pub(super) fn save_subscriptions(
        &self,
        account: &str,
        aurinko_id: i64,
        subscriptions: &[StoredSubscription],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = timestamp(now);
        save_account_id(&tx, account, aurinko_id, &now)?;
        let ids: Vec<i64> = subscriptions.iter().map(|s| s.id).collect();
        let keep = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "DELETE FROM subscriptions WHERE account = ?1 AND subscription_id NOT IN (SELECT value FROM json_each(?2))",
            params![account, keep],
        )?;
        {
            let mut upsert = tx.prepare_cached(SAVE_SUBSCRIPTION)?;
            for s in subscriptions {
                upsert.execute(params![
                    account,
                    s.id,
                    s.resource,
                    s.key.kind.as_str(),
                    s.key.id,
                    s.notification_url,
                    s.active,
                    s.fail_since,
                    s.fail_description,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a `lifecycleEvent` (`error` or `active`) for a subscription.
    /// Returns false when the subscription is unknown.
    pub(super) fn record_lifecycle(
        &self,
        account: &str,
        subscription_id: i64,
        event: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE subscriptions SET lifecycle_event = ?3, lifecycle_error = ?4, lifecycle_at = ?5,
                active = CASE ?3 WHEN 'active' THEN 1 WHEN 'error' THEN 0 ELSE active END, updated_at = ?5
             WHERE account = ?1 AND subscription_id = ?2",
            params![account, subscription_id, event, error, timestamp(now)],
        )?;
        Ok(changed > 0)
    }
}

/// Remembers an account's Aurinko id, in the caller's transaction or alone.
fn save_account_id(conn: &Connection, account: &str, aurinko_id: i64, now: &str) -> Result<(), StoreError> {
    conn.execute(SAVE_ACCOUNT_ID, params![account, aurinko_id, now])?;
    Ok(())
}
