//! The writer's side in PostgreSQL: a page's rows and the state that follows
//! them in one transaction, as the SQLite store does. A page is one
//! statement per kind of change: its rows travel as arrays (`unnest`), so a
//! page costs one round trip, not one per row.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::types::ToSql;

use super::super::failpoint::{self, Point};
use super::super::instances;
use super::super::write::{OUTCOME_FAILURE, OUTCOME_ROW, OUTCOME_SUCCESS, REPROVISIONED, SAVE_STATE};
use super::super::{CommitStats, Outcome, PageRecords, StoreError, Transaction, Write};
use super::{Postgres, dollars, fleet, read};
use crate::model::{CollectionKey, Commit, Field, RangeDays, Row, SWEEP_MARGIN, Sweep, SyncState, Table, Window};

/// Record columns holding instants: `timestamptz` here, where SQLite keeps
/// RFC 3339 text. An all-day date is its midnight in UTC (`all_day` says
/// which); a value that is not a time leaves the column empty (`raw` keeps
/// it).
const INSTANTS: &[&str] = &["start_time", "end_time", "last_modified", "received_at", "due", "completed"];

/// Record columns holding JSON arrays (`jsonb`).
const JSON: &[&str] = &["sys_labels", "emails"];

/// Record columns holding flags (`boolean`).
const FLAGS: &[&str] = &["all_day", "has_attachments"];

/// The writer's open transaction on one pooled connection.
pub(super) struct Batch<'a> {
    pg: &'a Postgres,
    /// `None` once committed.
    client: Option<Object>,
    now: DateTime<Utc>,
    /// In a fleet: the accounts whose lease this transaction has checked
    /// (and locked), with the epoch.
    checked: HashMap<String, Option<i64>>,
}

impl<'a> Batch<'a> {
    pub(super) async fn begin(pg: &'a Postgres, now: DateTime<Utc>) -> Result<Batch<'a>, StoreError> {
        let client = pg.client().await?;
        client.batch_execute("BEGIN").await?;
        Ok(Batch { pg, client: Some(client), now, checked: HashMap::new() })
    }

    fn client(&self) -> &Object {
        self.client.as_ref().expect("an open batch has its connection until it commits")
    }
}

impl Transaction for Batch<'_> {
    fn apply(&mut self, write: &Write) -> Result<CommitStats, StoreError> {
        let account = &write.key.account;
        let client = self.client.as_ref().expect("an open batch has its connection until it commits");
        let fences = self.pg.fences.get().map(|f| &**f);
        let checked = self.checked.get(account).copied();
        let (epoch, stats) = self.pg.block_on(async {
            // Once per account and transaction: the lock holds until it ends.
            let epoch = match checked {
                Some(epoch) => epoch,
                None => fleet::check(client, fences, account).await?,
            };
            Ok::<_, StoreError>((epoch, apply(client, write, self.now, epoch, self.pg.keep_deleted).await?))
        })?;
        self.checked.insert(account.clone(), epoch);
        Ok(stats)
    }

    fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
        self.pg.block_on(read::load_state(self.client(), key))
    }

    fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError> {
        self.pg.block_on(read::resync_requested(self.client(), key))
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let client = self.client.take().expect("an open batch has its connection");
        match self.pg.block_on(client.batch_execute("COMMIT")) {
            Ok(()) => Ok(()),
            Err(e) => {
                discard(client);
                Err(e.into())
            }
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            discard(client);
        }
    }
}

/// Closes a connection instead of returning it to the pool: the server
/// rolls back whatever transaction it had open.
fn discard(client: Object) {
    drop(Object::take(client));
}

/// Applies each write in a transaction of its own, in order; a collection's
/// writes after one of its own that failed are not applied.
pub(super) async fn each(pg: &Postgres, writes: &[&Write], now: DateTime<Utc>) -> Vec<Result<CommitStats, StoreError>> {
    let mut failed: Vec<&CollectionKey> = Vec::new();
    let mut results = Vec::with_capacity(writes.len());
    for w in writes {
        let result = if failed.contains(&&w.key) {
            Err(StoreError::AfterFailure(w.key.to_string()))
        } else {
            transact(pg, w, now).await
        };
        if result.is_err() {
            failed.push(&w.key);
        }
        results.push(result);
    }
    results
}

async fn transact(pg: &Postgres, write: &Write, now: DateTime<Utc>) -> Result<CommitStats, StoreError> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let epoch = fleet::check(&tx, pg.fences.get().map(|f| &**f), &write.key.account).await?;
    let stats = apply(&tx, write, now, epoch, pg.keep_deleted).await?;
    tx.commit().await?;
    Ok(stats)
}

/// One write, inside the caller's transaction, made under the fleet lease
/// `lease_epoch` (checked by the caller) when there is one.
pub(super) async fn apply(
    c: &impl GenericClient,
    w: &Write,
    now: DateTime<Utc>,
    lease_epoch: Option<i64>,
    keep_deleted: bool,
) -> Result<CommitStats, StoreError> {
    let key = &w.key;
    // With `sync.keep_deleted` rows are marked, not removed.
    let removing = |t: &Table| match keep_deleted {
        true => format!("UPDATE {} SET deleted_at = now() WHERE deleted_at IS NULL AND", t.name),
        false => format!("DELETE FROM {} WHERE", t.name),
    };
    let mut stats = CommitStats::default();
    if let Some(commit) = &w.commit {
        let t = key.kind.table();
        if commit.purge {
            let (filter, values) = key_filter(key);
            stats.swept += c.execute(&format!("{} {filter}", removing(t)), &values).await?;
            if let Some(listing) = key.kind.listing() {
                c.execute(
                    &format!(
                        "UPDATE {table} SET removed_at = coalesce(removed_at, $3) WHERE account = $1 AND {id} = $2",
                        table = listing.table,
                        id = listing.id
                    ),
                    &[&key.account, &key.id, &now],
                )
                .await?;
            }
        }
        let slots = instances::kept_for(key);
        let mut series = BTreeSet::new();
        if commit.purge && slots {
            c.execute(&dollars(instances::DROP_CALENDAR), &[&key.account, &key.id]).await?;
        }
        match &w.records {
            PageRecords::None => {}
            PageRecords::Upserts(rows) => {
                upsert_rows(c, key, rows, commit.state.generation, now, &mut stats).await?;
                if slots {
                    series = instances::touched_by(rows);
                }
            }
            PageRecords::Deletes(ids) => {
                if slots {
                    let masters = c.query(&dollars(instances::MASTERS_OF), &[&key.account, &key.id, ids]).await?;
                    series = masters.iter().filter_map(|r| r.get::<_, Option<String>>(0)).collect();
                }
                let (filter, mut values) = key_filter(key);
                let n = values.len() + 1;
                values.push(ids);
                let sql = format!("{} {filter} AND {} = ANY(${n})", removing(t), t.id);
                stats.deleted += c.execute(&sql, &values).await?;
                if !ids.is_empty() {
                    failpoint::reached(Point::AfterRows);
                }
            }
        }
        if let Some(sweep) = commit.sweep {
            let swept = apply_sweep(c, key, t, sweep, &removing(t)).await?;
            stats.swept += swept;
            if slots && swept > 0 {
                c.execute(&dollars(instances::DROP_CALENDAR), &[&key.account, &key.id]).await?;
                let masters = c.query(&dollars(instances::MASTERS), &[&key.account, &key.id]).await?;
                series = masters.iter().map(|r| r.get::<_, String>(0)).collect();
            }
        }
        if !series.is_empty() {
            refresh_slots(c, key, commit.state.window.as_ref(), &series).await?;
        }
        save_state(c, key, &commit.state, now, lease_epoch).await?;
        save_reprovision(c, key, commit, now).await?;
    }
    if let Some(outcome) = &w.outcome {
        save_outcome(c, key, outcome, now).await?;
    }
    Ok(stats)
}

/// Expands `masters` again over `window`, replacing their slots
/// (`store::instances`, with SQLite's statements).
async fn refresh_slots(
    c: &impl GenericClient,
    key: &CollectionKey,
    window: Option<&Window>,
    masters: &BTreeSet<String>,
) -> Result<(), StoreError> {
    let [drop_series, master_raw, taken_sql, insert] =
        [instances::DROP_SERIES, instances::MASTER_RAW_TEXT, instances::TAKEN, instances::INSERT_SLOT].map(dollars);
    for master in masters {
        c.execute(&drop_series, &[&key.account, &key.id, master]).await?;
        let Some(window) = window else { continue };
        let raw = c.query_opt(&master_raw, &[&key.account, &key.id, master]).await?;
        let Some(raw) = raw else { continue };
        let taken = c.query(&taken_sql, &[&key.account, &key.id, master]).await?;
        let taken = taken.iter().map(|r| r.get::<_, String>(0)).collect();
        let expansion = instances::expand(raw.get::<_, &str>(0), window, taken, master);
        for s in &expansion.slots {
            let (Some(start), Some(end)) = (instant(&s.start), instant(&s.end)) else { continue };
            c.execute(
                &insert,
                &[
                    &key.account,
                    &key.id,
                    master,
                    &owned_clean(&s.original_start),
                    &start,
                    &end,
                    &s.start_local,
                    &s.end_local,
                    &s.time_zone.as_deref().map(owned_clean),
                    &s.all_day,
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// The condition naming a collection's rows (`account = $1`, and the scope
/// column for kinds with one), with its values.
fn key_filter(key: &CollectionKey) -> (String, Vec<&(dyn ToSql + Sync)>) {
    match key.kind.table().scope {
        Some(scope) => (format!("account = $1 AND {scope} = $2"), vec![&key.account, &key.id]),
        None => ("account = $1".to_string(), vec![&key.account]),
    }
}

/// A page's rows in one statement. A record whose etag and JSON did not
/// change is not rewritten; during a reconciling pass the generation
/// differs, so the row is touched once to mark it as seen. A record listed
/// twice in a page is written as its last listing.
async fn upsert_rows(
    c: &impl GenericClient,
    key: &CollectionKey,
    rows: &[Row],
    generation: i64,
    now: DateTime<Utc>,
    stats: &mut CommitStats,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let t = key.kind.table();
    let last: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
    let rows: Vec<&Row> = rows.iter().enumerate().filter(|(i, r)| last[r.id.as_str()] == *i).map(|(_, r)| r).collect();
    let mut arrays: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    arrays.push(Box::new(rows.iter().map(|r| clean(&r.id).into_owned()).collect::<Vec<String>>()));
    if t.etag {
        arrays.push(Box::new(rows.iter().map(|r| r.etag.as_deref().map(owned_clean)).collect::<Vec<_>>()));
    }
    for (i, column) in t.columns.iter().enumerate() {
        if INSTANTS.contains(column) {
            arrays.push(Box::new(rows.iter().map(|r| text_at(r, i).and_then(instant)).collect::<Vec<_>>()));
        } else if JSON.contains(column) {
            arrays.push(Box::new(rows.iter().map(|r| text_at(r, i).map(|t| json(t).into_owned())).collect::<Vec<_>>()));
        } else if FLAGS.contains(column) {
            arrays.push(Box::new(rows.iter().map(|r| r.flag(i).unwrap_or(false)).collect::<Vec<bool>>()));
        } else {
            arrays.push(Box::new(rows.iter().map(|r| text_at(r, i).map(owned_clean)).collect::<Vec<_>>()));
        }
    }
    arrays.push(Box::new(rows.iter().map(|r| json(&r.raw).into_owned()).collect::<Vec<String>>()));
    let (_, key_values) = key_filter(key);
    let mut values: Vec<&(dyn ToSql + Sync)> = key_values;
    values.extend(arrays.iter().map(|a| &**a as &(dyn ToSql + Sync)));
    values.push(&generation);
    values.push(&now);
    let affected = c.execute(&upsert_sql(t), &values).await?;
    stats.upserted += affected;
    stats.unchanged += rows.len() as u64 - affected;
    // A test-only crash point: the page's rows are written, its token not
    // yet (see `failpoint`).
    failpoint::reached(Point::AfterRows);
    Ok(())
}

/// The text of a row's field, if it is text and set.
fn text_at(row: &Row, index: usize) -> Option<&str> {
    match row.fields.get(index) {
        Some(Field::Text(t)) => t.as_deref(),
        _ => None,
    }
}

/// `INSERT ... SELECT ... FROM unnest(arrays) ON CONFLICT DO UPDATE ...
/// WHERE changed` for a kind's table.
fn upsert_sql(t: &Table) -> String {
    let mut key_columns = vec!["account"];
    key_columns.extend(t.scope);
    let mut row_columns: Vec<(&str, &str)> = vec![(t.id, "text")];
    if t.etag {
        row_columns.push(("etag", "text"));
    }
    for column in t.columns {
        let array = if INSTANTS.contains(column) {
            "timestamptz"
        } else if FLAGS.contains(column) {
            "boolean"
        } else {
            "text"
        };
        row_columns.push((column, array));
    }
    row_columns.push(("raw", "text"));
    let first = key_columns.len() + 1;
    let unnest: Vec<String> =
        row_columns.iter().enumerate().map(|(i, (_, ty))| format!("${}::{ty}[]", first + i)).collect();
    let names: Vec<&str> = row_columns.iter().map(|(c, _)| *c).collect();
    let selected: Vec<String> = names
        .iter()
        .map(|c| if JSON.contains(c) || *c == "raw" { format!("u.{c}::jsonb") } else { format!("u.{c}") })
        .collect();
    let generation = first + row_columns.len();
    let key_params: Vec<String> = (1..first).map(|i| format!("${i}")).collect();
    let mut all_columns: Vec<&str> = key_columns.clone();
    all_columns.extend(&names);
    all_columns.extend(["generation", "synced_at"]);
    let mut updates: Vec<String> =
        all_columns[key_columns.len() + 1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
    // A record marked deleted (`sync.keep_deleted`) that comes back is live
    // again.
    updates.push("deleted_at = NULL".into());
    let changed = if t.etag {
        format!("{0}.etag IS DISTINCT FROM excluded.etag OR {0}.raw IS DISTINCT FROM excluded.raw", t.name)
    } else {
        format!("{0}.raw IS DISTINCT FROM excluded.raw", t.name)
    };
    format!(
        "INSERT INTO {name} ({columns}) SELECT {keys}, {selected}, ${generation}, ${now} FROM unnest({unnest}) AS u({names})
         ON CONFLICT ({conflict}) DO UPDATE SET {updates}
         WHERE {name}.generation IS DISTINCT FROM excluded.generation OR {name}.deleted_at IS NOT NULL OR {changed}",
        name = t.name,
        columns = all_columns.join(", "),
        keys = key_params.join(", "),
        selected = selected.join(", "),
        now = generation + 1,
        unnest = unnest.join(", "),
        names = names.join(", "),
        conflict = [key_columns.as_slice(), &[t.id]].concat().join(", "),
        updates = updates.join(", "),
    )
}

/// Removes the rows a reconciling pass did not see, within the range its
/// provisioning covered (less [`SWEEP_MARGIN`] at each edge). Rows without
/// a time in the range's columns are kept, unless the range says an empty
/// end lies inside (open tasks).
async fn apply_sweep(
    c: &impl GenericClient,
    key: &CollectionKey,
    t: &Table,
    sweep: Sweep,
    removing: &str,
) -> Result<u64, StoreError> {
    let (filter, mut values) = key_filter(key);
    let n = values.len();
    values.push(&sweep.below);
    let bounds;
    let mut sql = format!("{removing} {filter} AND generation < ${}", n + 1);
    if let (Some(range), Some(w)) = (t.range.as_ref(), sweep.window) {
        bounds = [w.time_min + SWEEP_MARGIN, w.time_max - SWEEP_MARGIN];
        values.push(&bounds[0]);
        let mut inside = format!("{0} > ${1}", range.end, n + 2);
        if range.empty_end_inside {
            // Empty, not unreadable: a value that is not a time leaves the
            // column empty too, and nothing is known of such a row. The
            // record's field has the column's name (`completed`).
            inside = format!("(({0} IS NULL AND raw->>'{0}' IS NULL) OR {inside})", range.end);
        }
        sql.push_str(&format!(" AND {inside}"));
        if let Some(start) = range.start {
            values.push(&bounds[1]);
            sql.push_str(&format!(" AND {start} < ${}", n + 3));
        }
    }
    Ok(c.execute(&sql, &values).await?)
}

async fn save_state(
    c: &impl GenericClient,
    key: &CollectionKey,
    s: &SyncState,
    now: DateTime<Utc>,
    lease_epoch: Option<i64>,
) -> Result<(), StoreError> {
    // A test-only crash point: the page's rows are written, its token about
    // to be (see `failpoint`).
    failpoint::reached(Point::BeforeToken);
    let statement = c.prepare_cached(&dollars(SAVE_STATE)).await?;
    c.execute(
        &statement,
        &[
            &key.account,
            &key.kind.as_str(),
            &key.id,
            &s.phase.as_str(),
            &s.window.map(|w| w.time_min),
            &s.window.map(|w| w.time_max),
            &s.generation,
            &s.reconciling,
            &s.updated.delta_token,
            &s.updated.page_token,
            &s.deleted.delta_token,
            &s.deleted.page_token,
            &now,
            &i64::from(s.permanent_failures),
            &s.reprovisioned_after_failures,
            &s.range.map(RangeDays::to_stored),
            &s.resync_handled,
            &lease_epoch,
        ],
    )
    .await?;
    Ok(())
}

async fn save_reprovision(
    c: &impl GenericClient,
    key: &CollectionKey,
    commit: &Commit,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(reason) = commit.reprovision {
        c.execute(&dollars(REPROVISIONED), &[&key.account, &key.kind.as_str(), &key.id, &reason.as_str(), &now])
            .await?;
    }
    Ok(())
}

async fn save_outcome(
    c: &impl GenericClient,
    key: &CollectionKey,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kind = key.kind.as_str();
    c.execute(&dollars(OUTCOME_ROW), &[&key.account, &kind, &key.id, &now]).await?;
    match &outcome.error {
        None => {
            c.execute(&dollars(OUTCOME_SUCCESS), &[&key.account, &kind, &key.id, &now, &outcome.next_attempt]).await?
        }
        Some((class, message)) => {
            c.execute(
                &dollars(OUTCOME_FAILURE),
                &[&key.account, &kind, &key.id, &now, &outcome.next_attempt, &owned_clean(message), class],
            )
            .await?
        }
    };
    Ok(())
}

/// A record time as an instant: RFC 3339, or an all-day date at its
/// midnight in UTC; `None` for anything else.
pub(super) fn instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

/// Text PostgreSQL accepts: it refuses NUL characters, which JSON may
/// carry (`\u0000`). They become U+FFFD.
pub(super) fn clean(text: &str) -> Cow<'_, str> {
    if text.contains('\0') { Cow::Owned(text.replace('\0', "\u{fffd}")) } else { Cow::Borrowed(text) }
}

fn owned_clean(text: &str) -> String {
    clean(text).into_owned()
}

/// JSON text `jsonb` accepts. JSON allows any `\uXXXX` escape; jsonb
/// refuses `\u0000` and a surrogate half without its other half (`\ud800`
/// alone), which a record may carry all the same. Those become `\ufffd`;
/// everything else is kept as sent (jsonb then normalises spacing and key
/// order). Backslashes occur only inside JSON strings, so a scan for them
/// needs no parser.
pub(super) fn json(raw: &str) -> Cow<'_, str> {
    if !raw.contains("\\u") {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let escape = |at: usize| -> Option<u16> {
        let hex = bytes.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut out = String::with_capacity(raw.len());
    let mut changed = false;
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = escape(i) else {
            i += 2; // `\\`, `\"` and the other one-letter escapes
            continue;
        };
        let paired =
            (0xD800..0xDC00).contains(&unit) && escape(i + 6).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
        } else if unit == 0 || (0xD800..0xE000).contains(&unit) {
            out.push_str(&raw[copied..i]);
            out.push_str("\\ufffd");
            changed = true;
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if !changed {
        return Cow::Borrowed(raw);
    }
    out.push_str(&raw[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_times_become_instants_and_the_rest_nothing() {
        assert_eq!(
            instant("2026-11-27T10:00:00+02:00").map(|t| t.to_rfc3339()),
            Some("2026-11-27T08:00:00+00:00".into())
        );
        assert_eq!(instant("2026-11-27").map(|t| t.to_rfc3339()), Some("2026-11-27T00:00:00+00:00".into()));
        assert_eq!(instant("next tuesday"), None);
    }

    #[test]
    fn what_postgresql_refuses_is_replaced_and_the_rest_kept_as_sent() {
        assert_eq!(clean("a\0b"), "a\u{fffd}b");
        assert_eq!(json(r#"{"s":"a\u0000b","k\u0000":1}"#), r#"{"s":"a\ufffdb","k\ufffd":1}"#);
        assert_eq!(
            json(r#"{"s":"\ud800 \uDC00 \ud83d\ude00 \u00e9"}"#),
            r#"{"s":"\ufffd \ufffd \ud83d\ude00 \u00e9"}"#
        );
        assert_eq!(json(r#"{"s":"\ud800\u0041"}"#), r#"{"s":"\ufffd\u0041"}"#, "a high half before a non-surrogate");
        assert!(matches!(json(r#"{"s":"plain \u00e9 \n"}"#), Cow::Borrowed(_)));
        assert_eq!(json(r#"{"s":"\\u0000 \\ud800"}"#), r#"{"s":"\\u0000 \\ud800"}"#, "escaped backslashes are text");
        assert_eq!(json(r#"{"s":"\u00"}"#), r#"{"s":"\u00"}"#, "a cut escape is left to the server");
    }
}
