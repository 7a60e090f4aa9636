//! The operator's commands in PostgreSQL (`resync`, `reset`), each one
//! short transaction, as in SQLite (see `store::resync`).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::super::resync::{BOOKKEEPING_TABLES, DATA_TABLES};
use super::super::{AccountRows, ResyncFilter, StoreError};
use super::Postgres;
use crate::model::{CollectionKey, Kind};

/// The state a collection starts from after a reset; see SQLite's.
const FRESH_STATE: &str =
    "UPDATE sync_state SET phase = 'new', window_min = NULL, window_max = NULL, range_days = NULL,
        reconciling = false, updated_delta_token = NULL, updated_page_token = NULL, deleted_delta_token = NULL,
        deleted_page_token = NULL, last_attempt_at = NULL, last_success_at = NULL, last_error = NULL,
        last_error_class = NULL, consecutive_failures = 0, next_attempt_at = NULL, permanent_failures = 0,
        reprovisioned_after_failures = false, reprovision_reason = NULL, reprovisioned_at = NULL,
        resync_requested = resync_requested + 1, updated_at = $2
    WHERE account = $1";

pub(super) async fn request_resync(
    pg: &Postgres,
    filter: &ResyncFilter,
    now: DateTime<Utc>,
) -> Result<Vec<CollectionKey>, StoreError> {
    let c = pg.client().await?;
    let rows = c
        .query(
            "UPDATE sync_state SET resync_requested = resync_requested + 1, updated_at = $4
             WHERE phase != 'removed' AND ($1::text IS NULL OR account = $1) AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR collection_id = $3)
             RETURNING account, kind, collection_id",
            &[&filter.account, &filter.kind.map(Kind::as_str), &filter.collection, &now],
        )
        .await?;
    let mut marked = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get(1)?;
        if let Some(kind) = Kind::parse(&kind) {
            marked.push(CollectionKey { account: row.try_get(0)?, kind, id: row.try_get(2)? });
        }
    }
    marked.sort_by(|a, b| (&a.account, a.kind.as_str(), &a.id).cmp(&(&b.account, b.kind.as_str(), &b.id)));
    Ok(marked)
}

pub(super) async fn account_rows(pg: &Postgres, account: &str, configured: bool) -> Result<AccountRows, StoreError> {
    count_rows(&pg.client().await?, account, configured).await
}

pub(super) async fn reset_account(
    pg: &Postgres,
    account: &str,
    configured: bool,
    now: DateTime<Utc>,
) -> Result<AccountRows, StoreError> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let rows = count_rows(&tx, account, configured).await?;
    for (table, _) in &rows.tables {
        let column = if *table == "accounts" { "name" } else { "account" };
        tx.execute(&format!("DELETE FROM {table} WHERE {column} = $1"), &[&account]).await?;
    }
    if configured {
        tx.execute(FRESH_STATE, &[&account, &now]).await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// Rows per table that a reset of `account` deletes.
async fn count_rows(c: &impl GenericClient, account: &str, configured: bool) -> Result<AccountRows, StoreError> {
    let mut tables: Vec<(&'static str, u64)> = Vec::new();
    let bookkeeping: &[&'static str] = if configured { &[] } else { BOOKKEEPING_TABLES };
    let count = async |sql: String| -> Result<u64, StoreError> {
        let n: i64 = c.query_one(&sql, &[&account]).await?.try_get(0)?;
        Ok(n as u64)
    };
    for table in DATA_TABLES.iter().chain(bookkeeping) {
        tables.push((table, count(format!("SELECT count(*) FROM {table} WHERE account = $1")).await?));
    }
    let mut collections_reset = 0;
    if configured {
        collections_reset = count("SELECT count(*) FROM sync_state WHERE account = $1".into()).await?;
    } else {
        tables.push(("accounts", count("SELECT count(*) FROM accounts WHERE name = $1".into()).await?));
    }
    Ok(AccountRows { tables, collections_reset })
}
