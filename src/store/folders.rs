//! The mailbox's folders as `GET /email/folders` last listed them, so
//! `messages.folder_id` can be joined to a name.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::write::timestamp;
use super::{Store, StoreError};
use crate::model::EmailFolder;

impl Store {
    /// Upserts the listed folders and marks the account's others removed
    /// (kept, so messages still filed there keep a name); a folder listed
    /// again loses its mark. An empty list marks nothing. One transaction.
    pub(super) fn save_folders(
        &self,
        account: &str,
        folders: &[EmailFolder],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = timestamp(now);
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO folders (account, folder_id, name, full_name, role, parent_id, is_folder, is_label, raw,
                    first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                 ON CONFLICT (account, folder_id) DO UPDATE SET name = excluded.name, full_name = excluded.full_name,
                    role = excluded.role, parent_id = excluded.parent_id, is_folder = excluded.is_folder,
                    is_label = excluded.is_label, raw = excluded.raw, last_seen_at = excluded.last_seen_at,
                    removed_at = NULL",
            )?;
            for f in folders {
                upsert.execute(params![
                    account,
                    f.id,
                    f.name,
                    f.full_name,
                    f.sys_label,
                    f.parent_id,
                    f.is_folder,
                    f.is_label,
                    f.raw,
                    now
                ])?;
            }
        }
        // A mailbox always has folders: an empty list says nothing about
        // which went away.
        if !folders.is_empty() {
            let listed = serde_json::to_string(&folders.iter().map(|f| f.id.as_str()).collect::<Vec<_>>())
                .map_err(|e| StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
            tx.execute(
                "UPDATE folders SET removed_at = ?2 WHERE account = ?1 AND removed_at IS NULL
                    AND folder_id NOT IN (SELECT value FROM json_each(?3))",
                params![account, now, listed],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
