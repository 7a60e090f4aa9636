//! The PostgreSQL store: the same tables, columns and guarantees as the
//! SQLite one, for many accounts and for data an application queries in
//! place (records' JSON is `jsonb`, instants are `timestamptz`).
//!
//! The store's interface ([`Backend`]) is synchronous: the writer calls it
//! on its own thread, the daemon's reads on the blocking pool. The driver,
//! tokio-postgres with a deadpool pool, is asynchronous, so this backend
//! drives it on a small runtime of its own (one worker, which keeps the
//! connections moving) and blocks the calling thread on each call, as the
//! `postgres` crate does for its synchronous client.
//!
//! - `write`: the writer's transaction and its writes, one statement per page.
//! - `read`: the state a pass loads, schedules, lookups, `state`'s report.
//! - `change`: discovery's lists, account health, subscriptions.
//! - `operator`: `resync` and `reset`.
//! - `copy`: a SQLite store into an empty PostgreSQL one (`store copy`).
//! - `fleet`: leases and heartbeats of a fleet, and the fencing check.

mod change;
mod copy;
mod fleet;
mod operator;
mod read;
#[cfg(test)]
mod tests;
mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;

pub use copy::Copied;

use super::{
    AccountRows, Backend, Change, CommitStats, Fences, Fleet, Report, ResyncFilter, Schedule, StoreError, StoredEvent,
    StoredInstance, StoredRecord, StoredRun, Transaction, Write,
};
use crate::model::{CollectionKey, ErrorClass, Kind, SyncState};

/// The migrations, in order: applied on open under an advisory lock, so
/// instances starting together apply each once.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../state/postgres/0001_initial.sql")),
    (2, include_str!("../../../state/postgres/0002_app_accounts.sql")),
    (3, include_str!("../../../state/postgres/0003_fleet.sql")),
    (4, include_str!("../../../state/postgres/0004_keep_deleted.sql")),
    (5, include_str!("../../../state/postgres/0005_event_instances.sql")),
    (6, include_str!("../../../state/postgres/0006_child_views.sql")),
    (7, include_str!("../../../state/postgres/0007_runs.sql")),
];

/// Connections: the writer's, and a few for the daemon's reads (the health
/// probe, webhook lookups) so they never wait behind a long commit.
const POOL_SIZE: usize = 4;

/// How long a call waits for a connection (the server down, the pool
/// busy) before it fails as transient.
const WAIT: Duration = Duration::from_secs(10);

pub struct Postgres {
    /// `None` only while dropping: a runtime cannot be dropped inside an
    /// asynchronous context, so it is shut down in the background.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// Set when the store joins a fleet: every commit checks its lease.
    fences: std::sync::OnceLock<Arc<Fences>>,
    /// How to connect again, for a fleet's `LISTEN` connection.
    config: tokio_postgres::Config,
    /// The schema: a fleet's notification channels are named after it, so
    /// stores in other schemas of the database do not hear them.
    schema: String,
    /// `sync.keep_deleted` (see [`Store::keeping_deleted`](super::Store::keeping_deleted)).
    keep_deleted: bool,
}

impl Postgres {
    /// Connects to the database at `url` (a `postgresql://` URL without a
    /// password), creates `schema` if needed, and applies the migrations.
    pub fn open(url: &str, password: Option<&str>, schema: &str) -> Result<Postgres, StoreError> {
        Self::connect(url, password, schema, false, None)
    }

    /// [`open`](Self::open) for a fleet instance: a transaction left idle
    /// longer than `idle_transaction` (the process paused mid-commit) is
    /// ended by the server, so the lease rows it locked do not hold the
    /// other instances' takeover off while it sleeps.
    pub fn open_for_fleet(
        url: &str,
        password: Option<&str>,
        schema: &str,
        idle_transaction: Duration,
    ) -> Result<Postgres, StoreError> {
        Self::connect(url, password, schema, false, Some(idle_transaction))
    }

    /// Connects for reading only (`state`): every transaction is read-only,
    /// and nothing is created or migrated; a schema without the store's
    /// tables is refused.
    pub fn open_read_only(url: &str, password: Option<&str>, schema: &str) -> Result<Postgres, StoreError> {
        Self::connect(url, password, schema, true, None)
    }

    fn connect(
        url: &str,
        password: Option<&str>,
        schema: &str,
        read_only: bool,
        idle_transaction: Option<Duration>,
    ) -> Result<Postgres, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| refused(format!("store.url: not a valid PostgreSQL URL ({e})")))?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(WAIT);
        }
        config.application_name("aurinko-sync");
        // The schema is a checked identifier (see the configuration); the
        // tables are named without it, so it comes first in the path.
        // Notices ("schema already exists, skipping") are not news.
        let mut options = format!(
            "{} -c search_path={schema} -c client_min_messages=warning",
            config.get_options().unwrap_or_default()
        );
        if read_only {
            options.push_str(" -c default_transaction_read_only=on");
        }
        if let Some(idle) = idle_transaction {
            options.push_str(&format!(" -c idle_in_transaction_session_timeout={}", idle.as_millis().max(1)));
        }
        config.options(options.trim());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-postgres")
            .enable_all()
            .build()
            .map_err(|e| refused(format!("cannot start the store's runtime: {e}")))?;
        let manager =
            Manager::from_config(config.clone(), tls()?, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(WAIT))
            .recycle_timeout(Some(WAIT))
            .build()
            .map_err(|e| refused(format!("cannot build the connection pool: {e}")))?;
        let store = Postgres {
            runtime: Some(runtime),
            pool,
            fences: std::sync::OnceLock::new(),
            config,
            schema: schema.to_string(),
            keep_deleted: false,
        };
        if read_only {
            store.block_on(check_version(&store.pool, schema))?;
        } else {
            store.block_on(migrate(&store.pool, schema))?;
        }
        Ok(store)
    }

    /// With `on` (`sync.keep_deleted`), deleted records stay, marked with
    /// `deleted_at`, as [`Store::keeping_deleted`](super::Store::keeping_deleted).
    pub fn keeping_deleted(mut self, on: bool) -> Postgres {
        self.keep_deleted = on;
        self
    }

    /// Runs `future` to completion on the store's runtime.
    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.as_ref().expect("the runtime lives until the store is dropped").block_on(future)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// TLS for URLs that ask for it (`sslmode=require`, or `prefer` with a
/// server that offers it): rustls with ring, the server's certificate
/// verified against the platform's roots like every HTTPS request.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| refused(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Applies the migrations the database lacks, in one transaction under an
/// advisory lock: a second instance starting at the same time waits, then
/// finds them applied. A database migrated by a newer aurinko-sync is
/// refused, as SQLite's is.
async fn migrate(pool: &Pool, schema: &str) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('aurinko-sync migrations'))", &[]).await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .await?;
    let current: Option<i32> =
        tx.query_one(&format!("SELECT max(version) FROM {schema}.schema_migrations"), &[]).await?.get(0);
    let current = current.unwrap_or(0);
    newer_refused(schema, current)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute(&format!("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"), &[version]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Refuses a schema that holds no store of ours, or one of a newer
/// aurinko-sync.
async fn check_version(pool: &Pool, schema: &str) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let table = format!("{schema}.schema_migrations");
    let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?.try_get(0)?;
    if !exists {
        return Err(refused(format!("schema {schema} holds no aurinko-sync store (nothing synced yet?)")));
    }
    let current: Option<i32> = client.query_one(&format!("SELECT max(version) FROM {table}"), &[]).await?.try_get(0)?;
    newer_refused(schema, current.unwrap_or(0))
}

/// Refuses a schema migrated by a newer aurinko-sync.
fn newer_refused(schema: &str, current: i32) -> Result<(), StoreError> {
    let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > latest {
        return Err(refused(format!(
            "schema {schema} was written by a newer aurinko-sync (migration {current}; this one knows {latest})"
        )));
    }
    Ok(())
}

/// A statement written for SQLite (`?1`, `?2`, ...) with PostgreSQL's
/// parameters (`$1`, `$2`, ...): the statements both stores share are
/// written once, as constants beside their SQLite use.
pub(super) fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A failure to set the store up: the same every time.
fn refused(message: String) -> StoreError {
    StoreError::Pg { class: ErrorClass::Permanent, message }
}

/// A PostgreSQL error as one line: the server's message and its code, or
/// what happened to the connection.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Whether a PostgreSQL failure may pass: a lost or refused connection, a
/// server shutting down or out of room, a serialisation conflict. A
/// statement the server refuses (a schema that does not fit, a constraint)
/// fails the same way every time.
pub(super) fn class(e: &tokio_postgres::Error) -> ErrorClass {
    let Some(code) = e.code() else {
        // No answer from the server: the connection failed (transient), or
        // a value could not be sent or read (the same every time).
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        return if e.is_closed() || io { ErrorClass::Transient } else { ErrorClass::Permanent };
    };
    let transient_class = ["08", "53", "57", "58"].iter().any(|c| code.code().starts_with(c));
    if transient_class || *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        StoreError::Pg { class: class(&e), message: describe(&e) }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Pg { class: ErrorClass::Transient, message: format!("no connection: {other}") },
        }
    }
}

impl Backend for Postgres {
    fn begin(&self, now: DateTime<Utc>) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(self.block_on(write::Batch::begin(self, now))?))
    }

    fn write_each(&self, writes: &[&Write], now: DateTime<Utc>) -> Vec<Result<CommitStats, StoreError>> {
        self.block_on(write::each(self, writes, now))
    }

    fn apply_change(&self, change: &Change, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.block_on(change::apply(self, change, now))
    }

    fn load_state(&self, key: &CollectionKey) -> Result<Option<SyncState>, StoreError> {
        self.block_on(async { read::load_state(&self.client().await?, key).await })
    }

    fn resync_requested(&self, key: &CollectionKey) -> Result<i64, StoreError> {
        self.block_on(async { read::resync_requested(&self.client().await?, key).await })
    }

    fn schedule(&self, key: &CollectionKey) -> Result<Schedule, StoreError> {
        self.block_on(read::schedule(self, key))
    }

    fn live_collections(&self, account: &str) -> Result<Vec<CollectionKey>, StoreError> {
        self.block_on(read::live_collections(self, account))
    }

    fn account_for_id(&self, aurinko_id: i64) -> Result<Option<String>, StoreError> {
        self.block_on(read::account_for_id(self, aurinko_id))
    }

    fn aliased(&self, account: &str, kind: Kind) -> Result<Option<String>, StoreError> {
        self.block_on(read::aliased(self, account, kind))
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        self.block_on(read::check_writable(self))
    }

    fn report(&self) -> Result<Report, StoreError> {
        self.block_on(read::report(self))
    }

    fn events(&self, account: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.block_on(read::events(self, account))
    }

    fn instances(&self, account: &str) -> Result<Vec<StoredInstance>, StoreError> {
        self.block_on(read::instances(self, account))
    }

    fn runs(&self, limit: u32) -> Result<Vec<StoredRun>, StoreError> {
        self.block_on(read::runs(self, limit))
    }

    fn records(&self, account: &str, kind: Kind) -> Result<Vec<StoredRecord>, StoreError> {
        self.block_on(read::records(self, account, kind))
    }

    fn request_resync(&self, filter: &ResyncFilter, now: DateTime<Utc>) -> Result<Vec<CollectionKey>, StoreError> {
        self.block_on(operator::request_resync(self, filter, now))
    }

    fn account_rows(&self, account: &str, configured: bool) -> Result<AccountRows, StoreError> {
        self.block_on(operator::account_rows(self, account, configured))
    }

    fn join_fleet(&self, fences: Arc<Fences>) -> Result<&dyn Fleet, StoreError> {
        self.install_fences(fences)?;
        Ok(self)
    }

    fn fleet(&self) -> Result<&dyn Fleet, StoreError> {
        self.fences()?;
        Ok(self)
    }

    fn reset_account(&self, account: &str, configured: bool, now: DateTime<Utc>) -> Result<AccountRows, StoreError> {
        self.block_on(operator::reset_account(self, account, configured, now))
    }
}
