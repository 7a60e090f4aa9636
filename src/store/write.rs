//! The write side: a page with its token in one transaction, outcomes,
//! discovered calendars and task lists, and account health.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{ToSql, ToSqlOutput};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::failpoint::{self, Point};
use super::instances;
use super::{CollectionKey, Held, Store, StoreError, range};
use crate::model::{
    Calendar, Commit, Cursor, Field, Kind, Phase, RangeDays, Row, SWEEP_MARGIN, Sweep, SyncState, Table, TaskList,
    Window,
};

/// The records that came with a page.
#[derive(Debug)]
pub enum PageRecords {
    None,
    Upserts(Vec<Row>),
    Deletes(Vec<String>),
}

/// One unit of the writer's batches ([`Store::begin_batch`]): a page's records with the
/// state that follows them, and/or how a pass ended.
#[derive(Debug)]
pub struct Write {
    pub key: CollectionKey,
    pub commit: Option<Commit>,
    pub records: PageRecords,
    pub outcome: Option<Outcome>,
}

/// How a pass ended: `error` is `(class, message)` for a failure; the
/// collection is due again at `next_attempt`.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub error: Option<(String, String)>,
    pub next_attempt: Option<DateTime<Utc>>,
}

impl PageRecords {
    /// How many records the page brought.
    pub fn len(&self) -> usize {
        match self {
            PageRecords::None => 0,
            PageRecords::Upserts(rows) => rows.len(),
            PageRecords::Deletes(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ToSql for Field {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Field::Text(t) => t.to_sql(),
            Field::Flag(f) => f.to_sql(),
        }
    }
}

/// The statements of one kind's table, built once from its description.
/// Parameters start with the collection's key: `account`, then the scope
/// column's value for tables that have one.
pub(super) struct KindSql {
    upsert: String,
    delete: String,
    sweep: String,
    /// The sweep limited to rows inside a window, for kinds with a range:
    /// then the window's start (and end, when the range has one) follow the
    /// generation.
    sweep_in_range: Option<String>,
    pub(super) purge: String,
    /// With `sync.keep_deleted`: the same four, marking rows
    /// (`deleted_at`) instead of removing them.
    kept: Marking,
}

struct Marking {
    delete: String,
    sweep: String,
    sweep_in_range: Option<String>,
    purge: String,
}

impl KindSql {
    fn deleting(&self, keep: bool) -> &str {
        if keep { &self.kept.delete } else { &self.delete }
    }

    fn sweeping(&self, keep: bool) -> &str {
        if keep { &self.kept.sweep } else { &self.sweep }
    }

    fn sweeping_in_range(&self, keep: bool) -> Option<&str> {
        if keep { self.kept.sweep_in_range.as_deref() } else { self.sweep_in_range.as_deref() }
    }

    pub(super) fn purging(&self, keep: bool) -> &str {
        if keep { &self.kept.purge } else { &self.purge }
    }
}

pub(super) fn sql(kind: Kind) -> &'static KindSql {
    static SQL: OnceLock<Vec<KindSql>> = OnceLock::new();
    let all = SQL.get_or_init(|| Kind::ALL.iter().map(|k| KindSql::new(k.table())).collect());
    &all[Kind::ALL.iter().position(|k| *k == kind).expect("every kind is in ALL")]
}

impl KindSql {
    fn new(t: &Table) -> KindSql {
        // The store's clock, in the service's own time format.
        let mark = format!("UPDATE {} SET deleted_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')", t.name);
        let mut key_columns = vec!["account"];
        key_columns.extend(t.scope);
        let scope_filter: String =
            key_columns.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect::<Vec<_>>().join(" AND ");
        let next = key_columns.len() + 1;
        let mut columns = key_columns.clone();
        columns.push(t.id);
        if t.etag {
            columns.push("etag");
        }
        columns.extend(t.columns);
        columns.extend(["raw", "generation", "synced_at"]);
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let conflict = [key_columns.as_slice(), &[t.id]].concat().join(", ");
        let mut updates: Vec<String> =
            columns[key_columns.len() + 1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
        // A record marked deleted (`sync.keep_deleted`) that comes back is
        // live again.
        updates.push("deleted_at = NULL".into());
        // The etag is compared first because it is short; a record whose
        // etag stayed but whose JSON changed (providers do not promise a new
        // etag for every change) is rewritten too.
        let changed = if t.etag {
            format!("{0}.etag IS NOT excluded.etag OR {0}.raw IS NOT excluded.raw", t.name)
        } else {
            format!("{0}.raw IS NOT excluded.raw", t.name)
        };
        KindSql {
            upsert: format!(
                "INSERT INTO {name} ({columns}) VALUES ({placeholders}) ON CONFLICT ({conflict}) DO UPDATE SET {updates} \
                 WHERE {name}.generation IS NOT excluded.generation OR {name}.deleted_at IS NOT NULL OR {changed}",
                name = t.name,
                columns = columns.join(", "),
                placeholders = placeholders.join(", "),
                updates = updates.join(", "),
            ),
            delete: format!("DELETE FROM {} WHERE {scope_filter} AND {} = ?{next}", t.name, t.id),
            sweep: format!("DELETE FROM {} WHERE {scope_filter} AND generation < ?{next}", t.name),
            sweep_in_range: t.range.as_ref().map(|r| {
                format!(
                    "DELETE FROM {} WHERE {scope_filter} AND generation < ?{next} AND {}",
                    t.name,
                    range::inside(r, &format!("?{}", next + 1), &format!("?{}", next + 2))
                )
            }),
            purge: format!("DELETE FROM {} WHERE {scope_filter}", t.name),
            kept: Marking {
                delete: format!("{mark} WHERE {scope_filter} AND {} = ?{next} AND deleted_at IS NULL", t.id),
                sweep: format!("{mark} WHERE {scope_filter} AND generation < ?{next} AND deleted_at IS NULL"),
                sweep_in_range: t.range.as_ref().map(|r| {
                    format!(
                        "{mark} WHERE {scope_filter} AND generation < ?{next} AND deleted_at IS NULL AND {}",
                        range::inside(r, &format!("?{}", next + 1), &format!("?{}", next + 2))
                    )
                }),
                purge: format!("{mark} WHERE {scope_filter} AND deleted_at IS NULL"),
            },
        }
    }
}

/// The key's values for a kind's key columns.
fn key_values(key: &CollectionKey) -> Vec<&dyn ToSql> {
    let mut values: Vec<&dyn ToSql> = vec![&key.account];
    if key.kind.table().scope.is_some() {
        values.push(&key.id);
    }
    values
}

// The statements both stores run, written once with SQLite's `?N`
// parameters; PostgreSQL's store numbers them `$N` (`postgres::dollars`).

/// A collection's state after a commit, replacing what was stored.
pub(super) const SAVE_STATE: &str = "INSERT INTO sync_state (account, kind, collection_id, phase, window_min, window_max, generation, reconciling,
                                 updated_delta_token, updated_page_token, deleted_delta_token, deleted_page_token, updated_at,
                                 permanent_failures, reprovisioned_after_failures, range_days, resync_handled,
                                 lease_epoch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT (account, kind, collection_id) DO UPDATE SET
            phase = excluded.phase, window_min = excluded.window_min, window_max = excluded.window_max,
            generation = excluded.generation, reconciling = excluded.reconciling,
            updated_delta_token = excluded.updated_delta_token, updated_page_token = excluded.updated_page_token,
            deleted_delta_token = excluded.deleted_delta_token, deleted_page_token = excluded.deleted_page_token,
            updated_at = excluded.updated_at, permanent_failures = excluded.permanent_failures,
            reprovisioned_after_failures = excluded.reprovisioned_after_failures,
            range_days = excluded.range_days, resync_handled = excluded.resync_handled,
            lease_epoch = excluded.lease_epoch";

/// Why and when a collection was last provisioned again.
pub(super) const REPROVISIONED: &str = "UPDATE sync_state SET reprovision_reason = ?4, reprovisioned_at = ?5
                 WHERE account = ?1 AND kind = ?2 AND collection_id = ?3";

/// The row an outcome updates, made if the collection has none yet.
pub(super) const OUTCOME_ROW: &str = "INSERT INTO sync_state (account, kind, collection_id, phase, updated_at)
         VALUES (?1, ?2, ?3, 'new', ?4) ON CONFLICT DO NOTHING";

/// A pass that succeeded.
pub(super) const OUTCOME_SUCCESS: &str =
    "UPDATE sync_state SET last_attempt_at = ?4, last_success_at = ?4, last_error = NULL,
                        last_error_class = NULL, consecutive_failures = 0, next_attempt_at = ?5, updated_at = ?4
                 WHERE account = ?1 AND kind = ?2 AND collection_id = ?3";

/// A pass that failed: one more in the streak.
pub(super) const OUTCOME_FAILURE: &str =
    "UPDATE sync_state SET last_attempt_at = ?4, last_error = ?6, last_error_class = ?7,
                        consecutive_failures = consecutive_failures + 1, next_attempt_at = ?5, updated_at = ?4
                 WHERE account = ?1 AND kind = ?2 AND collection_id = ?3";

/// A collection's stored state: the columns `SyncState` is read from.
pub(super) const LOAD_STATE: &str = "SELECT phase, window_min, window_max, generation, reconciling,
                    updated_delta_token, updated_page_token, deleted_delta_token, deleted_page_token,
                    permanent_failures, reprovisioned_after_failures, range_days, resync_handled
             FROM sync_state WHERE account = ?1 AND kind = ?2 AND collection_id = ?3";

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
        load_state(&self.conn(), key)
    }

    /// Applies a page's records and the state that follows them in one
    /// transaction: either both are stored or neither is. For the store's
    /// tests; the sync's writes go through the writer.
    #[cfg(test)]
    pub(super) fn commit(
        &self,
        key: &CollectionKey,
        commit: &Commit,
        records: &PageRecords,
        now: DateTime<Utc>,
    ) -> Result<CommitStats, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let stats = apply(&tx, key, Some(commit), records, None, &timestamp(now), self.keep_deleted)?;
        tx.commit()?;
        Ok(stats)
    }

    /// Applies each write in a transaction of its own, in order; a
    /// collection's writes after one of its own that failed are not
    /// applied: their tokens presume it. What a batch falls back to when
    /// one of its writes fails.
    pub(super) fn write_each<'w>(
        &self,
        writes: impl IntoIterator<Item = &'w Write>,
        now: DateTime<Utc>,
    ) -> Vec<Result<CommitStats, StoreError>> {
        let now = timestamp(now);
        let mut conn = self.conn();
        let mut failed: Vec<&CollectionKey> = Vec::new();
        writes
            .into_iter()
            .map(|w| {
                if failed.contains(&&w.key) {
                    return Err(StoreError::AfterFailure(w.key.to_string()));
                }
                let one = transact(&mut conn, w, &now, self.keep_deleted);
                if one.is_err() {
                    failed.push(&w.key);
                }
                one
            })
            .collect()
    }

    /// Opens a transaction that takes writes as they come, for the single
    /// writer (group commit): nothing is visible to other connections
    /// until [`OpenBatch::commit`], and dropping it rolls everything back.
    /// It holds the store's connection until then.
    pub(super) fn begin_batch(&self, now: DateTime<Utc>) -> Result<OpenBatch<'_>, StoreError> {
        let conn = self.conn();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(OpenBatch { conn: Some(conn), now: timestamp(now), keep_deleted: self.keep_deleted })
    }

    /// Records the calendars discovery returned for an account.
    pub(super) fn save_calendars(
        &self,
        account: &str,
        calendars: &[Calendar],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
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

    /// Records the task lists discovery returned for an account.
    pub(super) fn save_task_lists(
        &self,
        account: &str,
        lists: &[TaskList],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now_text = timestamp(now);
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO task_lists (account, task_list_id, title, is_default, raw, first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (account, task_list_id) DO UPDATE SET title = excluded.title,
                    is_default = excluded.is_default, raw = excluded.raw,
                    last_seen_at = excluded.last_seen_at, removed_at = NULL",
            )?;
            for t in lists {
                upsert.execute(params![account, t.id, t.title, t.default_list, t.raw, now_text])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets or clears an account's authentication failure.
    pub(super) fn record_account_auth(
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

/// See [`Store::load_state`].
fn load_state(conn: &Connection, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
    let state = conn
        .prepare_cached(LOAD_STATE)?
        .query_row(params![key.account, key.kind.as_str(), key.id], |r| {
            let phase: String = r.get(0)?;
            let window_min: Option<String> = r.get(1)?;
            let window_max: Option<String> = r.get(2)?;
            Ok(SyncState {
                // An unknown phase (a damaged row) starts over.
                phase: Phase::parse(&phase).unwrap_or(Phase::Provisioning),
                window: parse_window(window_min.as_deref(), window_max.as_deref()),
                range: r.get::<_, Option<String>>(11)?.as_deref().and_then(RangeDays::parse),
                generation: r.get(3)?,
                reconciling: r.get::<_, i64>(4)? != 0,
                updated: Cursor { delta_token: r.get(5)?, page_token: r.get(6)? },
                deleted: Cursor { delta_token: r.get(7)?, page_token: r.get(8)? },
                permanent_failures: r.get(9)?,
                reprovisioned_after_failures: r.get::<_, i64>(10)? != 0,
                resync_handled: r.get(12)?,
            })
        })
        .optional()?;
    Ok(state)
}

/// A transaction under way on the store's connection; see
/// [`Store::begin_batch`].
pub struct OpenBatch<'a> {
    /// `None` once committed.
    conn: Option<Held<'a>>,
    now: String,
    keep_deleted: bool,
}

impl OpenBatch<'_> {
    /// Applies one write inside the transaction. After an error the
    /// transaction holds part of the write: the caller must drop it.
    pub fn apply(&mut self, write: &Write) -> Result<CommitStats, StoreError> {
        apply_write(self.conn(), write, &self.now, self.keep_deleted)
    }

    /// A collection's stored state, read inside the transaction: the
    /// caller makes sure it holds no write of that collection.
    pub fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
        load_state(self.conn(), key)
    }

    /// The count of resync requests for a collection, read inside the
    /// transaction (only the `resync` and `reset` commands write it).
    pub fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError> {
        super::resync::requested(self.conn(), key)
    }

    fn conn(&self) -> &Connection {
        self.conn.as_deref().expect("an open batch has its connection until it commits")
    }

    /// Commits everything applied; on an error nothing of it is stored.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let conn = self.conn.take().expect("an open batch has its connection");
        conn.execute_batch("COMMIT").map_err(|e| {
            // A failed COMMIT may leave the transaction open.
            rollback(&conn);
            StoreError::from(e)
        })
    }
}

impl Drop for OpenBatch<'_> {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            rollback(conn);
        }
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!("store: rollback failed: {e}");
    }
}

/// Applies `write` in a `BEGIN IMMEDIATE` transaction of its own.
fn transact(conn: &mut Connection, write: &Write, now: &str, keep_deleted: bool) -> Result<CommitStats, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let stats = apply_write(&tx, write, now, keep_deleted)?;
    tx.commit()?;
    Ok(stats)
}

fn apply_write(conn: &Connection, w: &Write, now: &str, keep_deleted: bool) -> Result<CommitStats, StoreError> {
    apply(conn, &w.key, w.commit.as_ref(), &w.records, w.outcome.as_ref(), now, keep_deleted)
}

/// One write, inside the caller's transaction.
fn apply(
    conn: &Connection,
    key: &CollectionKey,
    commit: Option<&Commit>,
    records: &PageRecords,
    outcome: Option<&Outcome>,
    now: &str,
    keep_deleted: bool,
) -> Result<CommitStats, StoreError> {
    let mut stats = CommitStats::default();
    if let Some(commit) = commit {
        let sql = sql(key.kind);
        let slots = instances::kept_for(key);
        let mut series = BTreeSet::new();
        if commit.purge && slots {
            conn.prepare_cached(instances::DROP_CALENDAR)?.execute(params![key.account, key.id])?;
        }
        if commit.purge {
            stats.swept +=
                conn.prepare_cached(sql.purging(keep_deleted))?.execute(params_from_iter(key_values(key)))? as u64;
            if let Some(listing) = key.kind.listing() {
                conn.prepare_cached(&format!(
                    "UPDATE {table} SET removed_at = coalesce(removed_at, ?3) WHERE account = ?1 AND {id} = ?2",
                    table = listing.table,
                    id = listing.id
                ))?
                .execute(params![key.account, key.id, now])?;
            }
        }
        match records {
            PageRecords::None => {}
            PageRecords::Upserts(rows) => {
                upsert_rows(conn, key, rows, commit.state.generation, now, &mut stats)?;
                if slots {
                    series = instances::touched_by(rows);
                }
            }
            PageRecords::Deletes(ids) => {
                if slots {
                    series = instances::touched_by_deletes(conn, key, ids)?;
                }
                let mut delete = conn.prepare_cached(sql.deleting(keep_deleted))?;
                for id in ids {
                    let mut values = key_values(key);
                    values.push(id);
                    stats.deleted += delete.execute(params_from_iter(values))? as u64;
                }
                if !ids.is_empty() {
                    failpoint::reached(Point::AfterRows);
                }
            }
        }
        if let Some(sweep) = commit.sweep {
            let swept = apply_sweep(conn, key, sql, sweep, keep_deleted)?;
            stats.swept += swept;
            if slots && swept > 0 {
                series = instances::all_masters(conn, key)?;
            }
        }
        if !series.is_empty() {
            instances::refresh(conn, key, commit.state.window.as_ref(), &series)?;
        }
        save_state(conn, key, &commit.state, now)?;
        if let Some(reason) = commit.reprovision {
            conn.prepare_cached(REPROVISIONED)?.execute(params![
                key.account,
                key.kind.as_str(),
                key.id,
                reason.as_str(),
                now
            ])?;
        }
    }
    if let Some(outcome) = outcome {
        save_outcome(conn, key, outcome, now)?;
    }
    Ok(stats)
}

/// Removes the rows a reconciling pass did not see, within the range its
/// provisioning covered (less [`SWEEP_MARGIN`] at each edge).
fn apply_sweep(
    conn: &Connection,
    key: &CollectionKey,
    sql: &KindSql,
    sweep: Sweep,
    keep_deleted: bool,
) -> Result<u64, StoreError> {
    let bounds: [String; 2];
    let mut values = key_values(key);
    values.push(&sweep.below);
    let statement = match (sql.sweeping_in_range(keep_deleted), key.kind.table().range.as_ref(), sweep.window) {
        (Some(statement), Some(range), Some(w)) => {
            bounds = [range::time(w.time_min + SWEEP_MARGIN), range::time(w.time_max - SWEEP_MARGIN)];
            values.push(&bounds[0]);
            if range.start.is_some() {
                values.push(&bounds[1]);
            }
            statement
        }
        _ => sql.sweeping(keep_deleted),
    };
    Ok(conn.prepare_cached(statement)?.execute(params_from_iter(values))? as u64)
}

fn save_outcome(conn: &Connection, key: &CollectionKey, outcome: &Outcome, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(OUTCOME_ROW)?.execute(params![key.account, key.kind.as_str(), key.id, now])?;
    let next = outcome.next_attempt.map(timestamp);
    match &outcome.error {
        None => {
            conn.prepare_cached(OUTCOME_SUCCESS)?.execute(params![key.account, key.kind.as_str(), key.id, now, next])?
        }
        Some((class, message)) => conn.prepare_cached(OUTCOME_FAILURE)?.execute(params![
            key.account,
            key.kind.as_str(),
            key.id,
            now,
            next,
            message,
            class
        ])?,
    };
    Ok(())
}

/// A record whose etag and JSON did not change is not rewritten; during a
/// reconciling pass the generation differs, so the row is touched once to
/// mark it as seen.
fn upsert_rows(
    conn: &Connection,
    key: &CollectionKey,
    rows: &[Row],
    generation: i64,
    now: &str,
    stats: &mut CommitStats,
) -> Result<(), StoreError> {
    let with_etag = key.kind.table().etag;
    let scoped = key.kind.table().scope.is_some();
    let mut upsert = conn.prepare_cached(&sql(key.kind).upsert)?;
    let expected = upsert.parameter_count();
    // Bound one by one: the hot loop of a full sync, where collecting the
    // values into a vector per row showed in the profile.
    for row in rows {
        let mut n = 0;
        let mut bind = |value: &dyn ToSql| {
            n += 1;
            upsert.raw_bind_parameter(n, value)
        };
        bind(&key.account)?;
        if scoped {
            bind(&key.id)?;
        }
        bind(&row.id)?;
        if with_etag {
            bind(&row.etag)?;
        }
        for field in &row.fields {
            bind(field)?;
        }
        bind(&row.raw)?;
        bind(&generation)?;
        bind(&now)?;
        // Bindings outlive an execution: a row short of values must not
        // borrow the previous row's.
        if n != expected {
            return Err(rusqlite::Error::InvalidParameterCount(n, expected).into());
        }
        if upsert.raw_execute()? > 0 {
            stats.upserted += 1;
        } else {
            stats.unchanged += 1;
        }
    }
    // A test-only crash point: the page's rows are written, its token not
    // yet (see `failpoint`).
    if !rows.is_empty() {
        failpoint::reached(Point::AfterRows);
    }
    Ok(())
}

fn save_state(conn: &Connection, key: &CollectionKey, s: &SyncState, now: &str) -> Result<(), StoreError> {
    // A test-only crash point: the page's rows are written, its token about
    // to be (see `failpoint`).
    failpoint::reached(Point::BeforeToken);
    conn.prepare_cached(SAVE_STATE)?.execute(params![
        key.account,
        key.kind.as_str(),
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
        s.permanent_failures,
        s.reprovisioned_after_failures,
        s.range.map(RangeDays::to_stored),
        s.resync_handled,
        // A fleet's lease epoch: PostgreSQL only.
        None::<i64>,
    ])?;
    Ok(())
}

fn parse_window(min: Option<&str>, max: Option<&str>) -> Option<Window> {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc));
    Some(Window { time_min: parse(min?)?, time_max: parse(max?)? })
}
