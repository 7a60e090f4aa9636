//! `event_occurrences`, the generated slots behind the `event_instances`
//! view, kept in step with the events in the same transaction: a write that
//! touches a series master or one of its exceptions expands that master
//! again (`model::recurrence`); a purge drops a calendar's slots, a sweep
//! expands every master left. Single events, nearly all of them, cost a
//! look at two columns.
//!
//! The statements are SQLite's; PostgreSQL's store runs the same ones with
//! its parameters numbered (`postgres::dollars`).

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::StoreError;
use crate::model::recurrence::{self, Expansion};
use crate::model::{CollectionKey, Kind, Row, Window};

/// Column positions in an event row's fields (`model::collection`'s order).
const RECURRENCE_TYPE: usize = 6;
const MASTER_ID: usize = 10;

/// The masters whose slots a page of event rows may change: the masters
/// in it, and the masters of the exceptions in it.
pub(super) fn touched_by(rows: &[Row]) -> BTreeSet<String> {
    let mut masters = BTreeSet::new();
    for row in rows {
        if row.text(RECURRENCE_TYPE) == Some("master") {
            masters.insert(row.id.clone());
        }
        if let Some(master) = row.text(MASTER_ID) {
            masters.insert(master.to_string());
        }
    }
    masters
}

/// Whether a collection's writes keep slots.
pub(super) fn kept_for(key: &CollectionKey) -> bool {
    key.kind == Kind::Calendar
}

/// The master a stored event is or belongs to, before it is deleted.
pub(super) const MASTER_OF: &str = "SELECT CASE WHEN recurrence_type = 'master' THEN event_id ELSE master_id END
     FROM events WHERE account = ?1 AND calendar_id = ?2 AND event_id = ?3";
/// [`MASTER_OF`] for a list of ids (PostgreSQL's `ANY`).
pub(super) const MASTERS_OF: &str = "SELECT CASE WHEN recurrence_type = 'master' THEN event_id ELSE master_id END
     FROM events WHERE account = ?1 AND calendar_id = ?2 AND event_id = ANY(?3)";
pub(super) const DROP_CALENDAR: &str = "DELETE FROM event_occurrences WHERE account = ?1 AND calendar_id = ?2";
pub(super) const DROP_SERIES: &str =
    "DELETE FROM event_occurrences WHERE account = ?1 AND calendar_id = ?2 AND master_id = ?3";
pub(super) const MASTERS: &str = "SELECT event_id FROM events WHERE account = ?1 AND calendar_id = ?2 AND recurrence_type = 'master' AND deleted_at IS NULL";
pub(super) const MASTER_RAW: &str = "SELECT raw FROM events WHERE account = ?1 AND calendar_id = ?2 AND event_id = ?3 AND recurrence_type = 'master' AND deleted_at IS NULL";
/// [`MASTER_RAW`] where `raw` is `jsonb`.
pub(super) const MASTER_RAW_TEXT: &str = "SELECT raw::text FROM events
     WHERE account = ?1 AND calendar_id = ?2 AND event_id = ?3 AND recurrence_type = 'master' AND deleted_at IS NULL";
pub(super) const TAKEN: &str = "SELECT original_start FROM events
     WHERE account = ?1 AND calendar_id = ?2 AND master_id = ?3 AND original_start IS NOT NULL AND deleted_at IS NULL";
/// A rule listing one start twice (an `RDATE` on an `RRULE`'s slot) makes
/// one slot.
pub(super) const INSERT_SLOT: &str = "INSERT INTO event_occurrences (account, calendar_id, master_id,
     original_start, start_time, end_time, start_local, end_local, time_zone, all_day)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT (account, calendar_id, master_id, original_start) DO NOTHING";

/// A master's slots from its stored JSON and its exceptions' slots.
pub(super) fn expand(raw: &str, window: &Window, taken: BTreeSet<String>, master: &str) -> Expansion {
    let value: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let expansion = recurrence::expand(&value, window, &taken);
    if let Some(why) = &expansion.unreadable {
        tracing::debug!(master = %crate::model::text::inert(master), why = %crate::model::text::inert(why),
            "a series' recurrence could not be read: it is one instance, at its start");
    }
    if expansion.limited {
        tracing::debug!(master = %crate::model::text::inert(master), "a series was cut at {} instances", recurrence::MAX_INSTANCES);
    }
    expansion
}

/// The masters of events about to be deleted.
pub(super) fn touched_by_deletes(
    conn: &Connection,
    key: &CollectionKey,
    ids: &[String],
) -> Result<BTreeSet<String>, StoreError> {
    let mut masters = BTreeSet::new();
    let mut lookup = conn.prepare_cached(MASTER_OF)?;
    for id in ids {
        if let Some(Some(master)) =
            lookup.query_row(params![key.account, key.id, id], |r| r.get::<_, Option<String>>(0)).optional()?
        {
            masters.insert(master);
        }
    }
    Ok(masters)
}

/// Every master of a calendar (after a sweep), with the slots of masters
/// no longer there dropped.
pub(super) fn all_masters(conn: &Connection, key: &CollectionKey) -> Result<BTreeSet<String>, StoreError> {
    conn.prepare_cached(DROP_CALENDAR)?.execute(params![key.account, key.id])?;
    let mut masters = conn.prepare_cached(MASTERS)?;
    let ids = masters.query_map(params![key.account, key.id], |r| r.get::<_, String>(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Expands `masters` again over `window`, replacing their slots.
pub(super) fn refresh(
    conn: &Connection,
    key: &CollectionKey,
    window: Option<&Window>,
    masters: &BTreeSet<String>,
) -> Result<(), StoreError> {
    for master in masters {
        conn.prepare_cached(DROP_SERIES)?.execute(params![key.account, key.id, master])?;
        let Some(window) = window else { continue };
        let raw: Option<String> = conn
            .prepare_cached(MASTER_RAW)?
            .query_row(params![key.account, key.id, master], |r| r.get(0))
            .optional()?;
        let Some(raw) = raw else { continue };
        let mut taken = conn.prepare_cached(TAKEN)?;
        let taken = taken.query_map(params![key.account, key.id, master], |r| r.get::<_, String>(0))?;
        let expansion = expand(&raw, window, taken.collect::<Result<_, _>>()?, master);
        let mut insert = conn.prepare_cached(INSERT_SLOT)?;
        for s in &expansion.slots {
            insert.execute(params![
                key.account,
                key.id,
                master,
                s.original_start,
                s.start,
                s.end,
                s.start_local,
                s.end_local,
                s.time_zone,
                s.all_day
            ])?;
        }
    }
    Ok(())
}
