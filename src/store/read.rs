//! The read side: what `state` prints, and the rows tests and `demo` show.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{CollectionKey, Store, StoreError, range};
use crate::model::Kind;

/// Everything the store knows, per account and per collection.
#[derive(Debug, Serialize)]
pub struct Report {
    pub accounts: Vec<AccountReport>,
    pub collections: Vec<CollectionReport>,
    /// A fleet's instances (PostgreSQL with `[fleet]`); empty otherwise.
    pub instances: Vec<InstanceReport>,
}

/// A fleet instance as its row says.
#[derive(Debug, Serialize)]
pub struct InstanceReport {
    pub id: String,
    pub host: Option<String>,
    pub pid: Option<i64>,
    pub version: Option<String>,
    pub started_at: Option<String>,
    pub heartbeat_at: Option<String>,
    /// Whether its heartbeat is younger than its leases last (it counts in
    /// the fair share); a killed instance's row stays until it starts again.
    pub live: bool,
    /// Unexpired leases it holds.
    pub leases: i64,
}

#[derive(Debug, Serialize)]
pub struct AccountReport {
    pub name: String,
    /// Set while Aurinko refuses the account's token.
    pub auth_error: Option<String>,
    pub auth_error_at: Option<String>,
    /// Set while the account's latest discovery (calendar, task list or
    /// mail folder list) failed, with its class; cleared by the next
    /// discovery that succeeds.
    pub discovery_error: Option<String>,
    pub discovery_error_class: Option<String>,
    /// When the current run of failed discoveries began.
    pub discovery_failing_since: Option<String>,
    /// Failed discoveries in a row.
    pub discovery_failures: i64,
    pub discovery_success_at: Option<String>,
    /// Found in the app's account list (`[app] accounts = "aurinko"`).
    pub app_listed: bool,
    /// What the app's list said of it: provider, address, token status.
    pub service_type: Option<String>,
    pub email: Option<String>,
    pub token_status: Option<String>,
    /// Why the app does not sync it now (`token invalid`, `removed from
    /// the app`); `None` while it does.
    pub app_stopped: Option<String>,
    /// The last listing that named it.
    pub app_seen_at: Option<String>,
    /// In a fleet: the instance holding the account's lease, its epoch and
    /// until when (unless renewed).
    pub lease_owner: Option<String>,
    pub lease_epoch: Option<i64>,
    pub lease_expires_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CollectionReport {
    pub account: String,
    pub kind: String,
    pub id: String,
    pub name: Option<String>,
    pub phase: String,
    pub records: i64,
    /// Rows wholly outside the window of the current provisioning (events
    /// before or after it, mail older than the cutoff): kept as history,
    /// no longer updated. `None` for collections without a window.
    pub outside_window: Option<i64>,
    pub window_min: Option<String>,
    pub window_max: Option<String>,
    pub last_success_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_class: Option<String>,
    pub consecutive_failures: i64,
    pub next_attempt_at: Option<String>,
    /// Why the collection was last provisioned again (`expired_token`,
    /// `window_rolled`, `permanent_failures`), and when.
    pub reprovision_reason: Option<String>,
    pub reprovisioned_at: Option<String>,
    /// The webhook subscription for this collection, if `subscribe` made one.
    pub subscription_id: Option<i64>,
    /// `active`, `inactive`, or `error: ...` from the last lifecycle event
    /// or Aurinko's `failDescription`.
    pub subscription_status: Option<String>,
}

/// When a collection is due, as remembered between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    pub failures: i64,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
}

/// Any kind's row as stored: its collection, id, version and raw JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StoredRecord {
    pub collection_id: String,
    pub id: String,
    pub etag: Option<String>,
    pub raw: String,
}

/// An event row as stored, for the demo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StoredEvent {
    pub calendar_id: String,
    pub event_id: String,
    pub etag: Option<String>,
    pub subject: Option<String>,
    pub start_time: Option<String>,
    pub all_day: bool,
}

/// One row of the `event_instances` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    pub calendar_id: String,
    pub event_id: String,
    pub master_id: Option<String>,
    /// UTC (or the date of an all-day instance), in SQLite's text form.
    pub start_time: Option<String>,
    pub start_local: Option<String>,
    pub all_day: bool,
    pub modified: bool,
}

// Read by both stores (PostgreSQL numbers the parameters `$N`).

/// A collection's failures in a row, next attempt and last success.
pub(super) const SCHEDULE: &str = "SELECT consecutive_failures, next_attempt_at, last_success_at FROM sync_state
     WHERE account = ?1 AND kind = ?2 AND collection_id = ?3";

/// The collections of an account that are not removed.
pub(super) const LIVE_COLLECTIONS: &str = "SELECT kind, collection_id FROM sync_state
     WHERE account = ?1 AND phase != 'removed' ORDER BY kind, collection_id";

/// An account's events, for the demo.
/// `state`'s accounts, in [`AccountReport`]'s order.
pub(super) const ACCOUNTS: &str = "SELECT name, auth_error, auth_error_at, discovery_error, discovery_error_class,
        discovery_failing_since, discovery_failures, discovery_success_at,
        app_listed, service_type, email, token_status, app_stopped, app_seen_at
     FROM accounts ORDER BY name";

pub(super) const INSTANCES: &str = "SELECT calendar_id, event_id, master_id, start_time, start_local, all_day, modified
     FROM event_instances WHERE account = ?1 ORDER BY start_time, calendar_id, event_id";

pub(super) const EVENTS: &str = "SELECT calendar_id, event_id, etag, subject, start_time, all_day FROM events
     WHERE account = ?1 AND deleted_at IS NULL ORDER BY calendar_id, event_id";

impl Store {
    pub fn report(&self) -> Result<Report, StoreError> {
        let conn = self.conn();
        let accounts = conn
            .prepare(ACCOUNTS)?
            .query_map([], |r| {
                Ok(AccountReport {
                    name: r.get(0)?,
                    auth_error: r.get(1)?,
                    auth_error_at: r.get(2)?,
                    discovery_error: r.get(3)?,
                    discovery_error_class: r.get(4)?,
                    discovery_failing_since: r.get(5)?,
                    discovery_failures: r.get(6)?,
                    discovery_success_at: r.get(7)?,
                    app_listed: r.get(8)?,
                    service_type: r.get(9)?,
                    email: r.get(10)?,
                    token_status: r.get(11)?,
                    app_stopped: r.get(12)?,
                    app_seen_at: r.get(13)?,
                    lease_owner: None,
                    lease_epoch: None,
                    lease_expires_at: None,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let collections = conn
            .prepare(&format!(
                "SELECT s.account, s.kind, s.collection_id, coalesce(c.name, t.title), s.phase, {}, {},
                        s.window_min, s.window_max, s.last_success_at, s.last_attempt_at, s.last_error,
                        s.last_error_class, s.consecutive_failures, s.next_attempt_at,
                        s.reprovision_reason, s.reprovisioned_at,
                        sub.subscription_id,
                        CASE WHEN sub.subscription_id IS NULL THEN NULL
                             WHEN sub.lifecycle_event = 'error' THEN 'error: ' || coalesce(sub.lifecycle_error, 'reported by Aurinko')
                             WHEN sub.active = 0 THEN 'inactive'
                             WHEN sub.fail_description IS NOT NULL THEN 'failing: ' || sub.fail_description
                             ELSE 'active' END
                 FROM sync_state s
                 LEFT JOIN subscriptions sub ON sub.rowid = (
                     SELECT rowid FROM subscriptions x
                     WHERE x.account = s.account AND x.kind = s.kind AND x.collection_id = s.collection_id
                     ORDER BY x.active DESC, x.updated_at DESC LIMIT 1)
                 LEFT JOIN calendars c ON c.account = s.account AND c.calendar_id = s.collection_id
                     AND s.kind = 'calendar'
                 LEFT JOIN task_lists t ON t.account = s.account AND t.task_list_id = s.collection_id
                     AND s.kind = 'tasks'
                 ORDER BY s.account, s.kind, s.collection_id",
                record_count_by_kind(),
                outside_count_by_kind()
            ))?
            .query_map([], |r| {
                Ok(CollectionReport {
                    account: r.get(0)?,
                    kind: r.get(1)?,
                    id: r.get(2)?,
                    name: r.get(3)?,
                    phase: r.get(4)?,
                    records: r.get(5)?,
                    outside_window: r.get(6)?,
                    window_min: r.get(7)?,
                    window_max: r.get(8)?,
                    last_success_at: r.get(9)?,
                    last_attempt_at: r.get(10)?,
                    last_error: r.get(11)?,
                    last_error_class: r.get(12)?,
                    consecutive_failures: r.get(13)?,
                    next_attempt_at: r.get(14)?,
                    reprovision_reason: r.get(15)?,
                    reprovisioned_at: r.get(16)?,
                    subscription_id: r.get(17)?,
                    subscription_status: r.get(18)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Report { accounts, collections, instances: Vec::new() })
    }

    /// A collection's failure count, next attempt and last success, so a
    /// restarted daemon keeps backing off a broken collection. One row read:
    /// cheap enough for every actor at start.
    pub fn schedule(&self, key: &CollectionKey) -> Result<Schedule, StoreError> {
        let conn = self.conn();
        let row: Option<(i64, Option<String>, Option<String>)> = conn
            .query_row(SCHEDULE, params![key.account, key.kind.as_str(), key.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((failures, next, last)) = row else { return Ok(Schedule::default()) };
        let parse =
            |t: Option<String>| t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc));
        Ok(Schedule { failures, next_attempt: parse(next), last_success: parse(last) })
    }

    /// The collections of an account the store syncs (not removed), from the
    /// sync state alone: no record counts.
    pub fn live_collections(&self, account: &str) -> Result<Vec<CollectionKey>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(LIVE_COLLECTIONS)?
            .query_map(params![account], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, id)| {
                Some(CollectionKey { account: account.to_string(), kind: Kind::parse(&kind)?, id })
            })
            .collect())
    }

    /// Every row of one kind for an account, ordered by collection and id.
    pub fn records(&self, account: &str, kind: Kind) -> Result<Vec<StoredRecord>, StoreError> {
        let t = kind.table();
        let sql = format!(
            "SELECT {scope}, {id}, {etag}, raw FROM {name} WHERE account = ?1 AND deleted_at IS NULL ORDER BY 1, 2",
            scope = t.scope.map(str::to_string).unwrap_or_else(|| format!("'{}'", kind.as_str())),
            id = t.id,
            etag = if t.etag { "etag" } else { "NULL" },
            name = t.name,
        );
        let conn = self.conn();
        let rows = conn
            .prepare(&sql)?
            .query_map(params![account], |r| {
                Ok(StoredRecord { collection_id: r.get(0)?, id: r.get(1)?, etag: r.get(2)?, raw: r.get(3)? })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// An account's `event_instances`, in time order.
    pub fn instances(&self, account: &str) -> Result<Vec<StoredInstance>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare(INSTANCES)?
            .query_map(params![account], |r| {
                Ok(StoredInstance {
                    calendar_id: r.get(0)?,
                    event_id: r.get(1)?,
                    master_id: r.get(2)?,
                    start_time: r.get(3)?,
                    start_local: r.get(4)?,
                    all_day: r.get(5)?,
                    modified: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The events of an account, ordered by calendar and id.
    pub fn events(&self, account: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare(EVENTS)?
            .query_map(params![account], |r| {
                Ok(StoredEvent {
                    calendar_id: r.get(0)?,
                    event_id: r.get(1)?,
                    etag: r.get(2)?,
                    subject: r.get(3)?,
                    start_time: r.get(4)?,
                    all_day: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// A SQL expression counting the rows of the sync state `s`'s collection,
/// whatever its kind.
pub(super) fn record_count_by_kind() -> String {
    let arms: String = Kind::ALL
        .iter()
        .map(|k| {
            let t = k.table();
            let scope = t.scope.map(|c| format!(" AND r.{c} = s.collection_id")).unwrap_or_default();
            format!(
                " WHEN '{}' THEN (SELECT count(*) FROM {} r WHERE r.account = s.account{scope} AND r.deleted_at IS NULL)",
                k.as_str(),
                t.name
            )
        })
        .collect();
    format!("CASE s.kind{arms} ELSE 0 END")
}

/// A SQL expression counting the rows of `s`'s collection that lie wholly
/// outside its stored window; NULL without a window or for kinds without a
/// range.
fn outside_count_by_kind() -> String {
    let (min, max) = (range::as_record_time("s.window_min"), range::as_record_time("s.window_max"));
    let arms: String = Kind::ALL
        .iter()
        .filter_map(|k| {
            let t = k.table();
            let outside = range::outside(t.range.as_ref()?, &min, &max);
            let scope = t.scope.map(|c| format!(" AND r.{c} = s.collection_id")).unwrap_or_default();
            Some(format!(
                " WHEN '{}' THEN (SELECT count(*) FROM {} r WHERE r.account = s.account{scope} AND r.deleted_at IS NULL AND {outside})",
                k.as_str(),
                t.name
            ))
        })
        .collect();
    format!("CASE WHEN s.window_min IS NULL OR s.window_max IS NULL THEN NULL ELSE CASE s.kind{arms} END END")
}
