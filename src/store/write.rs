//! The write side: a page with its token in one transaction, outcomes,
//! discovered calendars and account health.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{CollectionKey, Store, StoreError};
use crate::aurinko::Calendar;
use crate::sync::{Commit, Cursor, EventRow, Phase, SyncState, Window};

/// The records that came with a page.
#[derive(Debug)]
pub enum PageRecords {
    None,
    Upserts(Vec<EventRow>),
    Deletes(Vec<String>),
}

/// What a commit changed, for progress and summaries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    /// Rows inserted or rewritten.
    pub upserted: u64,
    /// Records whose etag matched the stored row: not rewritten.
    pub unchanged: u64,
    /// Rows removed by the deleted stream.
    pub deleted: u64,
    /// Rows removed by a reconciling sweep or a purge.
    pub swept: u64,
}

pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Store {
    /// The stored state of a collection, or `None` if it was never synced.
    pub fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
        let conn = self.conn();
        let state = conn
            .query_row(
                "SELECT phase, window_min, window_max, generation, reconciling,
                        updated_delta_token, updated_page_token, deleted_delta_token, deleted_page_token
                 FROM sync_state WHERE account = ?1 AND kind = ?2 AND collection_id = ?3",
                params![key.account, key.kind, key.id],
                |r| {
                    let phase: String = r.get(0)?;
                    let window_min: Option<String> = r.get(1)?;
                    let window_max: Option<String> = r.get(2)?;
                    Ok(SyncState {
                        // An unknown phase (a damaged row) starts over.
                        phase: Phase::parse(&phase).unwrap_or(Phase::Provisioning),
                        window: parse_window(window_min.as_deref(), window_max.as_deref()),
                        generation: r.get(3)?,
                        reconciling: r.get::<_, i64>(4)? != 0,
                        updated: Cursor { delta_token: r.get(5)?, page_token: r.get(6)? },
                        deleted: Cursor { delta_token: r.get(7)?, page_token: r.get(8)? },
                    })
                },
            )
            .optional()?;
        Ok(state)
    }

    /// Applies a page's records and the state that follows them in one
    /// transaction: either both are stored or neither is.
    pub fn commit(
        &self,
        key: &CollectionKey,
        commit: &Commit,
        records: &PageRecords,
        now: DateTime<Utc>,
    ) -> Result<CommitStats, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut stats = CommitStats::default();
        let now_text = timestamp(now);
        if commit.purge {
            stats.swept += tx
                .execute("DELETE FROM events WHERE account = ?1 AND calendar_id = ?2", params![key.account, key.id])?
                as u64;
            tx.execute(
                "UPDATE calendars SET removed_at = coalesce(removed_at, ?3) WHERE account = ?1 AND calendar_id = ?2",
                params![key.account, key.id, now_text],
            )?;
        }
        match records {
            PageRecords::None => {}
            PageRecords::Upserts(rows) => {
                upsert_events(&tx, key, rows, commit.state.generation, &now_text, &mut stats)?;
            }
            PageRecords::Deletes(ids) => {
                let mut delete =
                    tx.prepare_cached("DELETE FROM events WHERE account = ?1 AND calendar_id = ?2 AND event_id = ?3")?;
                for id in ids {
                    stats.deleted += delete.execute(params![key.account, key.id, id])? as u64;
                }
            }
        }
        if let Some(generation) = commit.sweep_below {
            stats.swept += tx.execute(
                "DELETE FROM events WHERE account = ?1 AND calendar_id = ?2 AND generation < ?3",
                params![key.account, key.id, generation],
            )? as u64;
        }
        save_state(&tx, key, &commit.state, &now_text)?;
        tx.commit()?;
        Ok(stats)
    }

    /// Remembers how a pass ended. `error` is `None` for a success.
    pub fn record_outcome(
        &self,
        key: &CollectionKey,
        error: Option<(&str, &str)>,
        next_attempt: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let now_text = timestamp(now);
        conn.execute(
            "INSERT INTO sync_state (account, kind, collection_id, phase, updated_at)
             VALUES (?1, ?2, ?3, 'new', ?4) ON CONFLICT DO NOTHING",
            params![key.account, key.kind, key.id, now_text],
        )?;
        let next = next_attempt.map(timestamp);
        match error {
            None => conn.execute(
                "UPDATE sync_state SET last_attempt_at = ?4, last_success_at = ?4, last_error = NULL,
                        last_error_class = NULL, consecutive_failures = 0, next_attempt_at = ?5, updated_at = ?4
                 WHERE account = ?1 AND kind = ?2 AND collection_id = ?3",
                params![key.account, key.kind, key.id, now_text, next],
            )?,
            Some((class, message)) => conn.execute(
                "UPDATE sync_state SET last_attempt_at = ?4, last_error = ?6, last_error_class = ?7,
                        consecutive_failures = consecutive_failures + 1, next_attempt_at = ?5, updated_at = ?4
                 WHERE account = ?1 AND kind = ?2 AND collection_id = ?3",
                params![key.account, key.kind, key.id, now_text, next, message, class],
            )?,
        };
        Ok(())
    }

    /// Records the calendars discovery returned for an account.
    pub fn save_calendars(&self, account: &str, calendars: &[Calendar], now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now_text = timestamp(now);
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO calendars (account, calendar_id, name, is_primary, access_role, raw, first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (account, calendar_id) DO UPDATE SET name = excluded.name,
                    is_primary = excluded.is_primary, access_role = excluded.access_role, raw = excluded.raw,
                    last_seen_at = excluded.last_seen_at, removed_at = NULL",
            )?;
            for c in calendars {
                upsert.execute(params![account, c.id, c.name, c.primary, c.access_role, c.raw, now_text])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets or clears an account's authentication failure.
    pub fn record_account_auth(
        &self,
        account: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_text = timestamp(now);
        self.conn().execute(
            "INSERT INTO accounts (name, auth_error, auth_error_at, updated_at) VALUES (?1, ?2, CASE WHEN ?2 IS NULL THEN NULL ELSE ?3 END, ?3)
             ON CONFLICT (name) DO UPDATE SET auth_error = excluded.auth_error,
                auth_error_at = CASE WHEN excluded.auth_error IS NULL THEN NULL ELSE coalesce(accounts.auth_error_at, excluded.auth_error_at) END,
                updated_at = excluded.updated_at",
            params![account, error, now_text],
        )?;
        Ok(())
    }
}

/// An event whose etag did not change is not rewritten; during a
/// reconciling pass the generation differs, so the row is touched once to
/// mark it as seen.
fn upsert_events(
    tx: &Transaction<'_>,
    key: &CollectionKey,
    rows: &[EventRow],
    generation: i64,
    now: &str,
    stats: &mut CommitStats,
) -> Result<(), StoreError> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO events (account, calendar_id, event_id, etag, subject, start_time, end_time, all_day,
                             last_modified, ical_uid, recurrence_type, raw, generation, synced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (account, calendar_id, event_id) DO UPDATE SET
            etag = excluded.etag, subject = excluded.subject, start_time = excluded.start_time,
            end_time = excluded.end_time, all_day = excluded.all_day, last_modified = excluded.last_modified,
            ical_uid = excluded.ical_uid, recurrence_type = excluded.recurrence_type, raw = excluded.raw,
            generation = excluded.generation, synced_at = excluded.synced_at
         WHERE events.generation IS NOT excluded.generation
            OR events.etag IS NOT excluded.etag
            OR (excluded.etag IS NULL AND events.raw IS NOT excluded.raw)",
    )?;
    for row in rows {
        let changed = upsert.execute(params![
            key.account,
            key.id,
            row.event_id,
            row.etag,
            row.subject,
            row.start,
            row.end,
            row.all_day,
            row.last_modified,
            row.ical_uid,
            row.recurrence_type,
            row.raw,
            generation,
            now,
        ])?;
        if changed > 0 {
            stats.upserted += 1;
        } else {
            stats.unchanged += 1;
        }
    }
    Ok(())
}

fn save_state(tx: &Transaction<'_>, key: &CollectionKey, s: &SyncState, now: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO sync_state (account, kind, collection_id, phase, window_min, window_max, generation, reconciling,
                                 updated_delta_token, updated_page_token, deleted_delta_token, deleted_page_token, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (account, kind, collection_id) DO UPDATE SET
            phase = excluded.phase, window_min = excluded.window_min, window_max = excluded.window_max,
            generation = excluded.generation, reconciling = excluded.reconciling,
            updated_delta_token = excluded.updated_delta_token, updated_page_token = excluded.updated_page_token,
            deleted_delta_token = excluded.deleted_delta_token, deleted_page_token = excluded.deleted_page_token,
            updated_at = excluded.updated_at",
    )?
    .execute(params![
        key.account,
        key.kind,
        key.id,
        s.phase.as_str(),
        s.window.map(|w| timestamp(w.time_min)),
        s.window.map(|w| timestamp(w.time_max)),
        s.generation,
        s.reconciling,
        s.updated.delta_token,
        s.updated.page_token,
        s.deleted.delta_token,
        s.deleted.page_token,
        now,
    ])?;
    Ok(())
}

fn parse_window(min: Option<&str>, max: Option<&str>) -> Option<Window> {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc));
    Some(Window { time_min: parse(min?)?, time_max: parse(max?)? })
}
