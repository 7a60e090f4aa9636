//! The store: what the sync needs from one ([`Backend`]), its only write
//! path (the [`Writer`] thread), and two backends behind them: SQLite
//! ([`Store`], the embedded default) and PostgreSQL ([`Postgres`]).
//!
//! - `backend`: the trait a second backend implements, and SQLite's
//!   implementation of it.
//! - `writer`: the thread every write goes through, in the order sent; it
//!   groups pages into one open transaction.
//! - `write`: a page with its token in one transaction, outcomes, lists;
//!   `change`: the bookkeeping writes (`Change`).
//! - `instances`: the slots of recurring series behind `event_instances`,
//!   kept in step with the events a write touches.
//! - `runs`: the history of runs (`state --runs`).
//! - `read`, `resync`, `subscriptions`, `discovery`, `folders`,
//!   `app_accounts`: the rest of SQLite's SQL, by table; `range`: date
//!   columns as SQL compares them.
//! - `fleet`: what a fleet of instances needs (leases, heartbeats, the
//!   fencing every commit checks, signals between instances); PostgreSQL
//!   implements it, SQLite refuses it.
//! - `files`: opening the file safely (mode 0600, no FIFOs, not someone
//!   else's database); `failpoint`: the tests' crash points.
//! - `checkpoint`: the thread that copies the WAL into the database file,
//!   so the writer never stops for it.
//! - `postgres`: the PostgreSQL backend, with its own module map.
//! - `conformance` (tests): the behaviour both backends are held to.
//!
//! Everything SQLite-specific (pragmas, SQL, transactions) stays in this
//! module and PostgreSQL's in `postgres`. One connection writes, behind a mutex: SQLite allows one writer
//! at a time anyway, and a single connection lets every page and its token
//! share one `BEGIN IMMEDIATE` transaction.

mod app_accounts;
mod backend;
mod change;
mod checkpoint;
mod discovery;
mod failpoint;
mod files;
mod fleet;
mod folders;
mod instances;
mod postgres;
mod range;
mod read;
mod resync;
mod runs;
mod subscriptions;
mod write;
mod writer;

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

pub use crate::model::CollectionKey;
use crate::model::ErrorClass;
pub use app_accounts::REMOVED_FROM_APP;
pub use backend::{Backend, Transaction};
pub use change::Change;
use checkpoint::Checkpointer;
pub use checkpoint::WRITER_FRAMES;
pub use fleet::{Fences, Fleet, FleetView, Signal};
pub use postgres::{Copied, Postgres};
pub use read::{
    AccountReport, CollectionReport, InstanceReport, Report, Schedule, StoredEvent, StoredInstance, StoredRecord,
};
pub use resync::{AccountRows, ResyncFilter};
pub use runs::StoredRun;
pub use subscriptions::StoredSubscription;
use write::OpenBatch;
pub use write::{CommitStats, Outcome, PageRecords, Write};
pub use writer::{Answer, BatchStats, Chain, Writer};

/// Schema migrations, in order; each file under `state/` is applied once.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../state/0001_initial.sql")),
    M::up(include_str!("../../state/0002_email_and_contacts.sql")),
    M::up(include_str!("../../state/0003_webhooks.sql")),
    M::up(include_str!("../../state/0004_reprovisioning.sql")),
    M::up(include_str!("../../state/0005_tasks.sql")),
    M::up(include_str!("../../state/0006_mail_folders.sql")),
    M::up(include_str!("../../state/0007_account_discovery.sql")),
    M::up(include_str!("../../state/0008_resync.sql")),
    M::up(include_str!("../../state/0009_events_by_time.sql")),
    M::up(include_str!("../../state/0010_app_accounts.sql")),
    M::up(include_str!("../../state/0011_lease_epoch.sql")),
    M::up(include_str!("../../state/0012_keep_deleted.sql")),
    M::up(include_str!("../../state/0013_event_instances.sql")),
    M::up(include_str!("../../state/0014_child_views.sql")),
    M::up(include_str!("../../state/0015_runs.sql")),
];

/// The writing connection's page cache. SQLite's default (2 MiB) is smaller
/// than the index pages one 10,000-row transaction dirties, so pages were
/// spilled to the WAL and read back mid-transaction: 16 MiB took the
/// benchmark's full sync from 33k to 47k rows/s (and its peak RSS from 41
/// to 56 MiB). It fills only as far as the store is large.
pub const PAGE_CACHE_KIB: u32 = 16 * 1024;

/// How long a write waits for another writer (another process holding the
/// lock) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a health probe waits for the write lock.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: not written, an earlier write of {0} in the same transaction failed")]
    AfterFailure(String),
    /// What this store cannot do (a fleet on SQLite).
    #[error("store: {0}")]
    Unsupported(String),
    /// A fleet instance's id is held by another process whose heartbeat is
    /// younger than a lease.
    #[error(
        "store: instance id {0} is in use by a live instance (its heartbeat is younger than fleet.lease_secs): \
         give each instance its own id (run --instance)"
    )]
    InstanceIdInUse(String),
    /// A commit of a fleet instance refused: another instance holds the
    /// account's lease now (fencing). Nothing of the commit is stored.
    #[error("store: the lease on account {0} is held by another instance now: the commit was refused (fenced)")]
    Fenced(String),
    /// A PostgreSQL failure, classified where it happened (see `postgres::class`).
    #[error("store (PostgreSQL): {message}")]
    Pg { class: ErrorClass, message: String },
}

impl StoreError {
    /// Whether the failed operation is worth retrying. A full disk, a busy
    /// or locked file, an I/O error or a file made read-only can pass (the
    /// operator frees room, the other writer finishes); a damaged file, a
    /// schema that does not fit or a refused statement will fail the same
    /// way every time, and retrying only hides it.
    pub fn class(&self) -> ErrorClass {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                DatabaseBusy
                | DatabaseLocked
                | DiskFull
                | SystemIoFailure
                | OutOfMemory
                | ReadOnly
                | CannotOpen
                | FileLockingProtocolFailed => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
            StoreError::Sqlite(_) | StoreError::Open { .. } => ErrorClass::Permanent,
            // Refused only because an earlier write failed: that one says.
            StoreError::AfterFailure(_) => ErrorClass::Transient,
            // Not the collection's fault: the instance stops the account.
            StoreError::Fenced(_) => ErrorClass::Transient,
            StoreError::Unsupported(_) | StoreError::InstanceIdInUse(_) => ErrorClass::Permanent,
            StoreError::Pg { class, .. } => *class,
        }
    }
}

/// A write the writer could not do, and whether it is worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WriteError {
    pub class: ErrorClass,
    pub message: String,
}

impl WriteError {
    /// The writer has stopped (the service is ending): worth retrying with
    /// the next start.
    pub(crate) fn stopped() -> WriteError {
        WriteError { class: ErrorClass::Transient, message: "the store writer has stopped".into() }
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> WriteError {
        WriteError { class: e.class(), message: e.to_string() }
    }
}

pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection for health checks, with a short busy timeout, so
    /// a probe never waits behind a long write and never blocks one.
    probe: Option<Mutex<Connection>>,
    /// `sync.keep_deleted`: deletions, sweeps and purges mark rows
    /// (`deleted_at`) instead of removing them.
    keep_deleted: bool,
    /// Copies the WAL into the database file off the writer's thread (see
    /// `checkpoint`); `None` for a read-only store.
    checkpoints: Option<Checkpointer>,
}

impl Store {
    /// Opens the store for writing, creating it (mode 0600, directories
    /// 0700) and applying migrations. An existing store and its side files
    /// are made 0600 first. A path that is not a regular file, or a file
    /// that is not an aurinko-sync database, is an error and left untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_limited(path, None)
    }

    /// [`open`](Store::open) with a size cap: past `max_bytes` writes fail
    /// as on a full disk (the collection errors, nothing is corrupted) until
    /// the store is reopened with more room.
    pub fn open_limited(path: &Path, max_bytes: Option<u64>) -> Result<Store, StoreError> {
        let fail = |message: String| StoreError::Open { path: path.to_path_buf(), message };
        files::prepare_for_writing(path).map_err(fail)?;
        let mut conn = Connection::open(path).map_err(|e| fail(unusable(path, &e)))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail(e.to_string()))?;
        // Every kind's statements plus the state's stay prepared.
        conn.set_prepared_statement_cache_capacity(64);
        // The first read of the header happens here: a file that is not a
        // database, or somebody else's, fails before anything is written.
        check_foreign(&conn, path).map_err(fail)?;
        // Damage found now is a clear refusal; found mid-sync it would be a
        // string of failed commits. quick_check reads every page once.
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| fail(format!("damaged: {e}; the file is left as it is")))?;
        if check != "ok" {
            return Err(fail(format!("damaged: {check}; the file is left as it is")));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| fail(format!("cannot switch to WAL ({e})")))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(format!("cannot switch to WAL (journal mode is {mode})")));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{PAGE_CACHE_KIB};"
        ))
        .map_err(|e| fail(e.to_string()))?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn).map_err(|e| fail(format!("migration failed: {e}")))?;
        if let Some(max_bytes) = max_bytes {
            let page_size: i64 =
                conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
            let pages = (max_bytes / page_size.max(512) as u64).max(1);
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(|e| fail(e.to_string()))?;
        }
        let probe = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        probe.busy_timeout(PROBE_TIMEOUT).map_err(|e| fail(e.to_string()))?;
        let checkpoints = Checkpointer::start(path).map_err(fail)?;
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
            checkpoint::WRITER_FRAMES,
            checkpoint::WAL_LIMIT_BYTES
        ))
        .map_err(|e| fail(e.to_string()))?;
        Ok(Store {
            conn: Mutex::new(conn),
            probe: Some(Mutex::new(probe)),
            keep_deleted: false,
            checkpoints: Some(checkpoints),
        })
    }

    /// Opens an existing store without writing to it, for `state`. Safe
    /// while the daemon writes: WAL readers see the last committed state.
    /// Changes no file mode (see [`files::reading_source`]).
    ///
    /// Creates no file: SQLite would create the `-wal` and `-shm` of a store
    /// no process has open, and leave them behind. Without a `-wal` every
    /// commit is in the database file, so it is read as immutable then; a
    /// writer starting meanwhile writes to its new `-wal`, which is not read.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let fail = |message: String| StoreError::Open { path: path.to_path_buf(), message };
        let source = files::reading_source(path).map_err(fail)?;
        let conn = Connection::open_with_flags(
            source,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| fail(unusable(path, &e)))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail(e.to_string()))?;
        let version: i64 =
            conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| fail(unusable(path, &e)))?;
        if version == 0 {
            return Err(fail("not an aurinko-sync store (no schema)".into()));
        }
        if version as usize > MIGRATIONS.len() {
            return Err(fail(format!("written by a newer aurinko-sync (schema {version})")));
        }
        // Reading never migrates; the report reads every migration's columns.
        if (version as usize) < MIGRATIONS.len() {
            return Err(fail(format!(
                "written by an older aurinko-sync (schema {version} of {}); `aurinko-sync run` upgrades it",
                MIGRATIONS.len()
            )));
        }
        Ok(Store { conn: Mutex::new(conn), probe: None, keep_deleted: false, checkpoints: None })
    }

    /// With `on` (`sync.keep_deleted`), records deleted upstream, swept by
    /// a reconciling pass or gone with their collection stay, marked with
    /// `deleted_at`; the views and the reads leave them out.
    pub fn keeping_deleted(mut self, on: bool) -> Store {
        self.keep_deleted = on;
        self
    }

    /// Whether a write could start now: takes the write lock and lets it go
    /// at once. Fails when another writer holds the store for longer than a
    /// second, or the file cannot be written.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let Some(probe) = &self.probe else {
            return Err(StoreError::Sqlite(rusqlite::Error::InvalidQuery));
        };
        let probe = probe.lock().unwrap_or_else(|p| p.into_inner());
        probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").map_err(|e| {
            // A failed BEGIN leaves no transaction; a failed ROLLBACK would.
            let _ = probe.execute_batch("ROLLBACK");
            StoreError::Sqlite(e)
        })
    }

    fn conn(&self) -> Held<'_> {
        // A panic while holding the lock cannot leave a transaction open:
        // rusqlite rolls back on drop. The connection is still usable.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let changes = conn.total_changes();
        Held { conn, checkpoints: self.checkpoints.as_ref(), changes }
    }
}

/// The store's connection, held: once it goes, a commit made through it
/// nudges the checkpoint thread (every commit path passes here).
struct Held<'a> {
    conn: MutexGuard<'a, Connection>,
    checkpoints: Option<&'a Checkpointer>,
    /// The connection's count of changed rows when taken.
    changes: u64,
}

impl Deref for Held<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(checkpoints) = self.checkpoints
            && self.conn.is_autocommit()
            && self.conn.total_changes() != self.changes
        {
            checkpoints.nudge();
        }
    }
}

/// Refuses a database that holds tables but not ours: migrating it would
/// write into somebody else's file.
fn check_foreign(conn: &Connection, path: &Path) -> Result<(), String> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| unusable(path, &e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", [], |r| r.get(0))
        .map_err(|e| unusable(path, &e))?;
    if version == 0 && tables > 0 {
        return Err("holds tables but is not an aurinko-sync store; refusing to touch it".into());
    }
    if version as usize > MIGRATIONS.len() {
        return Err(format!("written by a newer aurinko-sync (schema {version})"));
    }
    Ok(())
}

/// Why SQLite could not use the file, in words. It says "unable to open
/// database file" for a directory it cannot make its side files in, and
/// "file is not a database" for a damaged file or another format: the
/// first is a matter of permissions, and said so.
fn unusable(path: &Path, e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode::{CannotOpen, PermissionDenied, ReadOnly};
    match e.sqlite_error_code() {
        Some(CannotOpen | ReadOnly | PermissionDenied) => {
            files::permission_problem(path).unwrap_or_else(|| format!("cannot open ({e})"))
        }
        _ => format!("not a usable SQLite database: damaged, or not SQLite ({e}); the file is left as it is"),
    }
}

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod schema_documented;
#[cfg(test)]
mod tests;
