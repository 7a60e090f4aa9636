//! Opening the configured store: a SQLite file or a PostgreSQL database.
//! Both block (SQLite checks its file, PostgreSQL connects and migrates):
//! call them off the async runtime.

use std::path::Path;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::config::{FleetConfig, StoreConfig};
use crate::store::{Backend, Postgres, Store, StoreError};

/// The store for writing: the daemon, `run --catch-up`, `resync`, `reset`.
/// A fleet instance's PostgreSQL connections end a transaction idle for a
/// third of a lease (see [`Postgres::open_for_fleet`]).
/// With `keep_deleted` (`sync.keep_deleted`) deletions mark rows instead.
pub(super) fn for_writing(
    config: &StoreConfig,
    fleet: Option<&FleetConfig>,
    keep_deleted: bool,
) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(match config {
        StoreConfig::Sqlite { path, max_size_bytes } => {
            Arc::new(Store::open_limited(path, *max_size_bytes)?.keeping_deleted(keep_deleted))
        }
        StoreConfig::Postgres(pg) => {
            let password = pg.password.as_ref().map(|p| p.expose_secret());
            let store = match fleet {
                Some(fleet) => Postgres::open_for_fleet(&pg.url, password, &pg.schema, fleet.lease / 3)?,
                None => Postgres::open(&pg.url, password, &pg.schema)?,
            };
            Arc::new(store.keeping_deleted(keep_deleted))
        }
    })
}

/// The store for reading only (`state`); `db` names a SQLite file instead
/// of the configured store.
pub(super) fn for_reading(config: &StoreConfig) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(match config {
        StoreConfig::Sqlite { path, .. } => sqlite_for_reading(path)?,
        StoreConfig::Postgres(pg) => {
            Arc::new(Postgres::open_read_only(&pg.url, pg.password.as_ref().map(|p| p.expose_secret()), &pg.schema)?)
        }
    })
}

pub(super) fn sqlite_for_reading(path: &Path) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(Arc::new(Store::open_read_only(path)?))
}
