//! `store copy`: the configured SQLite store into an empty PostgreSQL
//! store, so a deployment moves without a resync (see `store::Postgres::copy_from`).

use std::path::Path;

use secrecy::ExposeSecret;

use super::output::outln;
use super::{Exit, complain};
use crate::config::{Config, PostgresConfig};
use crate::store::{Postgres, Store};

pub fn copy(
    config_path: &Path,
    to: String,
    password_file: Option<String>,
    password_env: Option<String>,
    schema: Option<String>,
) -> Exit {
    let config = match Config::load_without_tokens(config_path) {
        Ok(config) => config,
        Err(e) => {
            complain(e);
            return Exit::Usage;
        }
    };
    let Some(path) = config.store.sqlite_path() else {
        complain("store copy: the configured store is PostgreSQL already; copy reads a SQLite store ([store] path)");
        return Exit::Usage;
    };
    let target = match PostgresConfig::from_flags(to, password_file, password_env, schema) {
        Ok(target) => target,
        Err(e) => {
            complain(format!("store copy: {e}"));
            return Exit::Usage;
        }
    };
    let copied = Store::open_read_only(path).and_then(|source| {
        let password = target.password.as_ref().map(|p| p.expose_secret());
        Postgres::open(&target.url, password, &target.schema)?.copy_from(&source)
    });
    let copied = match copied {
        Ok(copied) => copied,
        Err(e) => {
            complain(format!("store copy: nothing copied: {e}"));
            return Exit::Usage;
        }
    };
    outln!("copied {} into PostgreSQL (schema {}), in one transaction:", path.display(), target.schema);
    for (table, n) in &copied {
        outln!("  {table:<13} {n:>9} rows");
    }
    outln!(
        "next: stop the daemon, set [store] url = \"{}\" (and schema, password_file or password_env) instead of path, \
         and start it: the next pass continues from the copied tokens",
        target.url
    );
    Exit::Ok
}
