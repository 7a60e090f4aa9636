//! The read side in PostgreSQL: the state a pass starts from, schedules and
//! lookups for the daemon, and the report `state` prints (the same report
//! as SQLite's: times in it are text in the store's format).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::super::read::ACCOUNTS;
use super::super::read::{EVENTS, INSTANCES, LIVE_COLLECTIONS, SCHEDULE};
use super::super::resync::RESYNC_REQUESTED;
use super::super::write::LOAD_STATE;
use super::super::write::timestamp;
use super::super::{
    AccountReport, CollectionReport, InstanceReport, Report, Schedule, StoreError, StoredEvent, StoredInstance,
    StoredRecord, StoredRun,
};
use super::{Postgres, dollars};
use crate::model::{CollectionKey, Cursor, Kind, Phase, RangeDays, SyncState, Window};

/// A collection's stored state, `None` if it was never synced.
pub(super) async fn load_state(c: &impl GenericClient, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
    let statement = c.prepare_cached(&dollars(LOAD_STATE)).await?;
    let Some(r) = c.query_opt(&statement, &[&key.account, &key.kind.as_str(), &key.id]).await? else {
        return Ok(None);
    };
    let phase: String = r.try_get(0)?;
    let window_min: Option<DateTime<Utc>> = r.try_get(1)?;
    let window_max: Option<DateTime<Utc>> = r.try_get(2)?;
    Ok(Some(SyncState {
        // An unknown phase (a damaged row) starts over.
        phase: Phase::parse(&phase).unwrap_or(Phase::Provisioning),
        window: window_min.zip(window_max).map(|(time_min, time_max)| Window { time_min, time_max }),
        range: r.try_get::<_, Option<String>>(11)?.as_deref().and_then(RangeDays::parse),
        generation: r.try_get(3)?,
        reconciling: r.try_get(4)?,
        updated: Cursor { delta_token: r.try_get(5)?, page_token: r.try_get(6)? },
        deleted: Cursor { delta_token: r.try_get(7)?, page_token: r.try_get(8)? },
        permanent_failures: u32::try_from(r.try_get::<_, i64>(9)?).unwrap_or(u32::MAX),
        reprovisioned_after_failures: r.try_get(10)?,
        resync_handled: r.try_get(12)?,
    }))
}

/// The count of operator resync requests for a collection.
pub(super) async fn resync_requested(c: &impl GenericClient, key: &CollectionKey) -> Result<i64, StoreError> {
    let statement = c.prepare_cached(&dollars(RESYNC_REQUESTED)).await?;
    let row = c.query_opt(&statement, &[&key.account, &key.kind.as_str(), &key.id]).await?;
    Ok(match row {
        Some(r) => r.try_get(0)?,
        None => 0,
    })
}

pub(super) async fn schedule(pg: &Postgres, key: &CollectionKey) -> Result<Schedule, StoreError> {
    let c = pg.client().await?;
    let row = c.query_opt(&dollars(SCHEDULE), &[&key.account, &key.kind.as_str(), &key.id]).await?;
    let Some(r) = row else { return Ok(Schedule::default()) };
    Ok(Schedule { failures: r.try_get(0)?, next_attempt: r.try_get(1)?, last_success: r.try_get(2)? })
}

pub(super) async fn live_collections(pg: &Postgres, account: &str) -> Result<Vec<CollectionKey>, StoreError> {
    let c = pg.client().await?;
    let rows = c.query(&dollars(LIVE_COLLECTIONS), &[&account]).await?;
    let mut keys = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.try_get(0)?;
        if let Some(kind) = Kind::parse(&kind) {
            keys.push(CollectionKey { account: account.to_string(), kind, id: r.try_get(1)? });
        }
    }
    Ok(keys)
}

pub(super) async fn account_for_id(pg: &Postgres, aurinko_id: i64) -> Result<Option<String>, StoreError> {
    let c = pg.client().await?;
    let row = c.query_opt("SELECT name FROM accounts WHERE aurinko_account_id = $1 LIMIT 1", &[&aurinko_id]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub(super) async fn aliased(pg: &Postgres, account: &str, kind: Kind) -> Result<Option<String>, StoreError> {
    let Some(listing) = kind.listing() else { return Ok(None) };
    let c = pg.client().await?;
    let sql = format!(
        "SELECT {id} FROM {table} WHERE account = $1 AND {alias} AND removed_at IS NULL
         ORDER BY last_seen_at DESC LIMIT 1",
        id = listing.id,
        table = listing.table,
        alias = listing.alias,
    );
    let row = c.query_opt(&sql, &[&account]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Whether a write could start now: a connection answers and the session
/// is not read-only (a standby, or `default_transaction_read_only`).
pub(super) async fn check_writable(pg: &Postgres) -> Result<(), StoreError> {
    let c = pg.client().await?;
    let read_only: String = c.query_one("SHOW transaction_read_only", &[]).await?.try_get(0)?;
    if read_only == "on" {
        return Err(StoreError::Pg {
            class: crate::model::ErrorClass::Transient,
            message: "the database accepts no writes (read-only session)".into(),
        });
    }
    Ok(())
}

/// Everything `state` shows.
pub(super) async fn report(pg: &Postgres) -> Result<Report, StoreError> {
    let c = pg.client().await?;
    let accounts = c
        .query(ACCOUNTS, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(AccountReport {
                name: r.try_get(0)?,
                auth_error: r.try_get(1)?,
                auth_error_at: time(r, 2)?,
                discovery_error: r.try_get(3)?,
                discovery_error_class: r.try_get(4)?,
                discovery_failing_since: time(r, 5)?,
                discovery_failures: r.try_get(6)?,
                discovery_success_at: time(r, 7)?,
                app_listed: r.try_get(8)?,
                service_type: r.try_get(9)?,
                email: r.try_get(10)?,
                token_status: r.try_get(11)?,
                app_stopped: r.try_get(12)?,
                app_seen_at: time(r, 13)?,
                lease_owner: None,
                lease_epoch: None,
                lease_expires_at: None,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let sql = format!(
        "SELECT s.account, s.kind, s.collection_id, coalesce(c.name, t.title), s.phase, {}, {},
                s.window_min, s.window_max, s.last_success_at, s.last_attempt_at, s.last_error,
                s.last_error_class, s.consecutive_failures, s.next_attempt_at,
                s.reprovision_reason, s.reprovisioned_at,
                sub.subscription_id,
                CASE WHEN sub.subscription_id IS NULL THEN NULL
                     WHEN sub.lifecycle_event = 'error' THEN 'error: ' || coalesce(sub.lifecycle_error, 'reported by Aurinko')
                     WHEN NOT sub.active THEN 'inactive'
                     WHEN sub.fail_description IS NOT NULL THEN 'failing: ' || sub.fail_description
                     ELSE 'active' END
         FROM sync_state s
         LEFT JOIN LATERAL (
             SELECT * FROM subscriptions x
             WHERE x.account = s.account AND x.kind = s.kind AND x.collection_id = s.collection_id
             ORDER BY x.active DESC, x.updated_at DESC LIMIT 1) sub ON true
         LEFT JOIN calendars c ON c.account = s.account AND c.calendar_id = s.collection_id AND s.kind = 'calendar'
         LEFT JOIN task_lists t ON t.account = s.account AND t.task_list_id = s.collection_id AND s.kind = 'tasks'
         ORDER BY s.account, s.kind, s.collection_id",
        super::super::read::record_count_by_kind(),
        outside_count_by_kind()
    );
    let collections = c
        .query(&sql, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(CollectionReport {
                account: r.try_get(0)?,
                kind: r.try_get(1)?,
                id: r.try_get(2)?,
                name: r.try_get(3)?,
                phase: r.try_get(4)?,
                records: r.try_get(5)?,
                outside_window: r.try_get(6)?,
                window_min: time(r, 7)?,
                window_max: time(r, 8)?,
                last_success_at: time(r, 9)?,
                last_attempt_at: time(r, 10)?,
                last_error: r.try_get(11)?,
                last_error_class: r.try_get(12)?,
                consecutive_failures: r.try_get(13)?,
                next_attempt_at: time(r, 14)?,
                reprovision_reason: r.try_get(15)?,
                reprovisioned_at: time(r, 16)?,
                subscription_id: r.try_get(17)?,
                subscription_status: r.try_get(18)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut accounts = accounts;
    for r in c
        .query(
            "SELECT account, owner, epoch, expires_at FROM fleet_leases
             WHERE owner IS NOT NULL AND expires_at > now()",
            &[],
        )
        .await?
    {
        let account: String = r.try_get(0)?;
        if let Some(a) = accounts.iter_mut().find(|a| a.name == account) {
            a.lease_owner = r.try_get(1)?;
            a.lease_epoch = r.try_get(2)?;
            a.lease_expires_at = time(&r, 3)?;
        }
    }
    let instances = c
        .query(
            "SELECT i.id, i.host, i.pid, i.version, i.started_at, i.heartbeat_at,
                    i.heartbeat_at > now() - i.lease_ms * interval '1 millisecond',
                    count(l.account) FILTER (WHERE l.expires_at > now())
             FROM fleet_instances i LEFT JOIN fleet_leases l ON l.session = i.session
             GROUP BY i.id ORDER BY i.id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(InstanceReport {
                id: r.try_get(0)?,
                host: r.try_get(1)?,
                pid: r.try_get(2)?,
                version: r.try_get(3)?,
                started_at: time(r, 4)?,
                heartbeat_at: time(r, 5)?,
                live: r.try_get::<_, Option<bool>>(6)?.unwrap_or(false),
                leases: r.try_get(7)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Report { accounts, collections, instances })
}

/// An instant column as the report writes times (`2026-11-27T12:00:00Z`).
fn time(r: &Row, index: usize) -> Result<Option<String>, StoreError> {
    Ok(r.try_get::<_, Option<DateTime<Utc>>>(index)?.map(timestamp))
}

/// An account's `event_instances`, times in the SQLite store's form.
pub(super) async fn instances(pg: &Postgres, account: &str) -> Result<Vec<StoredInstance>, StoreError> {
    let c = pg.client().await?;
    let rows = c.query(&dollars(INSTANCES), &[&account]).await?;
    rows.iter()
        .map(|r| {
            let all_day: bool = r.try_get(5)?;
            let start: Option<DateTime<Utc>> = r.try_get(3)?;
            Ok(StoredInstance {
                calendar_id: r.try_get(0)?,
                event_id: r.try_get(1)?,
                master_id: r.try_get(2)?,
                start_time: start.map(|t| sqlite_time(t, all_day)),
                start_local: r.try_get(4)?,
                all_day,
                modified: r.try_get(6)?,
            })
        })
        .collect()
}

/// The last `limit` runs, newest first, times as SQLite's store writes them.
pub(super) async fn runs(pg: &Postgres, limit: u32) -> Result<Vec<StoredRun>, StoreError> {
    let c = pg.client().await?;
    let rows = c.query(&dollars(super::super::runs::LAST_RUNS), &[&i64::from(limit)]).await?;
    let failed = dollars(super::super::runs::FAILED_IN_RUN);
    let mut runs = Vec::with_capacity(rows.len());
    for r in &rows {
        let run_id: i64 = r.try_get(0)?;
        let failed = c
            .query(&failed, &[&run_id])
            .await?
            .iter()
            .map(|f| Ok((f.try_get(0)?, f.try_get(1)?, f.try_get(2)?, f.try_get(3)?)))
            .collect::<Result<_, StoreError>>()?;
        runs.push(StoredRun {
            run_id,
            mode: r.try_get(1)?,
            instance: r.try_get(2)?,
            started_at: timestamp(r.try_get(3)?),
            ended_at: timestamp(r.try_get(4)?),
            outcome: r.try_get(5)?,
            passes: r.try_get(6)?,
            pages: r.try_get(7)?,
            requests: r.try_get(8)?,
            collections: r.try_get(9)?,
            upserted: r.try_get(10)?,
            deleted: r.try_get(11)?,
            swept: r.try_get(12)?,
            failed,
        });
    }
    Ok(runs)
}

/// A `timestamptz` as the SQLite store writes it: an all-day date as
/// `YYYY-MM-DD`, an instant in UTC with milliseconds.
fn sqlite_time(t: DateTime<Utc>, all_day: bool) -> String {
    if all_day { t.date_naive().to_string() } else { t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true) }
}

/// The events of an account, ordered by calendar and id; start times in
/// the SQLite store's form (an all-day date as `YYYY-MM-DD`).
pub(super) async fn events(pg: &Postgres, account: &str) -> Result<Vec<StoredEvent>, StoreError> {
    let c = pg.client().await?;
    let rows = c.query(&dollars(EVENTS), &[&account]).await?;
    rows.iter()
        .map(|r| {
            let all_day: bool = r.try_get(5)?;
            let start: Option<DateTime<Utc>> = r.try_get(4)?;
            Ok(StoredEvent {
                calendar_id: r.try_get(0)?,
                event_id: r.try_get(1)?,
                etag: r.try_get(2)?,
                subject: r.try_get(3)?,
                start_time: start.map(|t| sqlite_time(t, all_day)),
                all_day,
            })
        })
        .collect()
}

/// Every row of one kind for an account, ordered by collection and id;
/// `raw` is the stored JSON as PostgreSQL writes it back (`jsonb`
/// normalises spacing and key order).
pub(super) async fn records(pg: &Postgres, account: &str, kind: Kind) -> Result<Vec<StoredRecord>, StoreError> {
    let t = kind.table();
    let sql = format!(
        "SELECT {scope}, {id}, {etag}, raw::text FROM {name} WHERE account = $1 AND deleted_at IS NULL ORDER BY 1, 2",
        scope = t.scope.map(str::to_string).unwrap_or_else(|| format!("'{}'::text", kind.as_str())),
        id = t.id,
        etag = if t.etag { "etag" } else { "NULL::text" },
        name = t.name,
    );
    let c = pg.client().await?;
    let rows = c.query(&sql, &[&account]).await?;
    rows.iter()
        .map(|r| {
            Ok(StoredRecord {
                collection_id: r.try_get(0)?,
                id: r.try_get(1)?,
                etag: r.try_get(2)?,
                raw: r.try_get(3)?,
            })
        })
        .collect()
}

/// A SQL expression counting the rows of `s`'s collection wholly outside
/// its stored window; NULL without a window or for kinds without a range.
fn outside_count_by_kind() -> String {
    let arms: String = Kind::ALL
        .iter()
        .filter_map(|k| {
            let t = k.table();
            let range = t.range.as_ref()?;
            let mut outside = format!("r.{} <= s.window_min", range.end);
            if let Some(start) = range.start {
                outside.push_str(&format!(" OR r.{start} >= s.window_max"));
            }
            let scope = t.scope.map(|c| format!(" AND r.{c} = s.collection_id")).unwrap_or_default();
            Some(format!(
                " WHEN '{}' THEN (SELECT count(*) FROM {} r WHERE r.account = s.account{scope} AND r.deleted_at IS NULL AND ({outside}))",
                k.as_str(),
                t.name
            ))
        })
        .collect();
    format!("CASE WHEN s.window_min IS NULL OR s.window_max IS NULL THEN NULL ELSE CASE s.kind{arms} END END")
}
