//! `aurinko-sync store copy`: a SQLite store into an empty PostgreSQL one,
//! rows, sync state (with its delta and page tokens), subscriptions and
//! accounts, in one transaction. The tables and columns are the same; each
//! value is converted to its PostgreSQL column's type as the sync itself
//! writes it (instants parsed, JSON as `jsonb`, flags as booleans).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::future::try_join_all;
use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use super::super::{Store, StoreError};
use super::write::{clean, instant, json};
use super::{Postgres, refused};

/// Every table of the store, in an order that needs no deferred checks.
const TABLES: &[&str] = &[
    "accounts",
    "calendars",
    "task_lists",
    "folders",
    "sync_state",
    "events",
    "event_occurrences",
    "messages",
    "contacts",
    "tasks",
    "subscriptions",
    "runs",
    "run_collections",
];

/// Rows sent at once: their inserts are pipelined on the connection.
const CHUNK: usize = 500;

/// How many rows each table received.
pub type Copied = Vec<(&'static str, u64)>;

impl Postgres {
    /// Copies `source` into this store, which must hold nothing yet.
    pub fn copy_from(&self, source: &Store) -> Result<Copied, StoreError> {
        self.block_on(copy(self, source))
    }
}

async fn copy(pg: &Postgres, source: &Store) -> Result<Copied, StoreError> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    for table in TABLES {
        let n: i64 = tx.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?.try_get(0)?;
        if n > 0 {
            return Err(refused(format!(
                "the PostgreSQL store is not empty ({n} rows in {table}): copy only into a store that holds nothing"
            )));
        }
    }
    // One read transaction over the source: every table from the same
    // moment, even with a daemon writing to it.
    source.conn().execute_batch("BEGIN")?;
    let mut copied = Vec::with_capacity(TABLES.len());
    let mut result = Ok(());
    for table in TABLES {
        match copy_table(&tx, source, table).await {
            Ok(n) => copied.push((*table, n)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    source.conn().execute_batch("ROLLBACK")?;
    result?;
    // The copied run ids are explicit: the next stored run continues after
    // them.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('runs', 'run_id'), coalesce(max(run_id), 0) + 1, false) FROM runs",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(copied)
}

/// One table: its columns as PostgreSQL types them, read from SQLite under
/// the same names, a chunk at a time.
// The SQLite connection stays locked across the inserts' awaits on purpose:
// its rows are read as they are sent, and nothing else uses that store in
// `store copy`'s process (the future runs on this thread, in `block_on`).
#[allow(clippy::await_holding_lock)]
async fn copy_table(c: &impl GenericClient, source: &Store, table: &str) -> Result<u64, StoreError> {
    let columns: Vec<(String, String)> = c
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let placeholders: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| if ty == "jsonb" { format!("${}::text::jsonb", i + 1) } else { format!("${}", i + 1) })
        .collect();
    let insert =
        c.prepare(&format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), placeholders.join(", "))).await?;
    let conn = source.conn();
    let mut select = conn.prepare(&format!("SELECT {} FROM {table}", names.join(", ")))?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    loop {
        // A chunk at a time: a large table is never held in memory whole.
        let mut chunk: Vec<Vec<Box<dyn ToSql + Sync + Send>>> = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            let Some(row) = rows.next()? else { break };
            let mut values = Vec::with_capacity(columns.len());
            for (i, (name, ty)) in columns.iter().enumerate() {
                values.push(convert(table, name, ty, &row.get::<_, Value>(i)?)?);
            }
            chunk.push(values);
        }
        if chunk.is_empty() {
            return Ok(copied);
        }
        copied += chunk.len() as u64;
        let inserts = chunk.iter().map(|row| {
            let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
            let insert = &insert;
            async move { c.execute(insert, &params).await }
        });
        try_join_all(inserts).await?;
    }
}

/// A SQLite value as the PostgreSQL column's type takes it.
fn convert(table: &str, column: &str, ty: &str, value: &Value) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    let text = |v: &Value| match v {
        Value::Text(t) => Some(t.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Null => None,
    };
    let integer = |v: &Value| match v {
        Value::Integer(i) => Ok(Some(*i)),
        Value::Null => Ok(None),
        other => Err(refused(format!("{table}.{column}: {other:?} is not an integer"))),
    };
    Ok(match ty {
        "text" => Box::new(text(value).map(|t| clean(&t).into_owned())),
        "jsonb" => Box::new(text(value).map(|t| json(&t).into_owned())),
        "bigint" => Box::new(integer(value)?),
        "integer" => Box::new(integer(value)?.map(|i| i as i32)),
        "boolean" => Box::new(integer(value)?.map(|i| i != 0)),
        "timestamp with time zone" => Box::new(text(value).and_then(|t| instant(&t)).map(|t: DateTime<Utc>| t)),
        other => return Err(refused(format!("{table}.{column}: no copy for PostgreSQL type {other}"))),
    })
}
