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
pub(super) fn for_writing(config: &StoreConfig, fleet: Option<&FleetConfig>) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(match config {
        StoreConfig::Sqlite { path, max_size_bytes } => Arc::new(Store::open_limited(path, *max_size_bytes)?),
        StoreConfig::Postgres(pg) => {
            let password = pg.password.as_ref().map(|p| p.expose_secret());
            match fleet {
                Some(fleet) => Arc::new(Postgres::open_for_fleet(&pg.url, password, &pg.schema, fleet.lease / 3)?),
                None => Arc::new(Postgres::open(&pg.url, password, &pg.schema)?),
            }
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
