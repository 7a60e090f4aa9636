//! `[store]`: one SQLite file (`path`, the default) or a PostgreSQL
//! database (`url`), never both. PostgreSQL's password comes from
//! `password_file` or `password_env`, else from the password file libpq
//! would read (`PGPASSFILE`, `~/.pgpass`).

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, non_empty, positive, read_secret};

#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The embedded default: one SQLite file.
    Sqlite {
        path: PathBuf,
        /// A cap on the database size; writes beyond it fail like a full disk.
        max_size_bytes: Option<u64>,
    },
    /// A PostgreSQL database, for many accounts and several instances.
    Postgres(PostgresConfig),
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// The connection URL as configured; it holds no password (one there
    /// is refused, so the URL can be shown).
    pub url: String,
    /// From `password_file` or `password_env`; without either, the server
    /// must not ask for one (trust, peer or certificate authentication).
    pub password: Option<SecretString>,
    /// The schema the tables live in, so they can sit beside an
    /// application's own.
    pub schema: String,
}

impl StoreConfig {
    /// The SQLite file, for a SQLite store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            StoreConfig::Sqlite { path, .. } => Some(path),
            StoreConfig::Postgres(_) => None,
        }
    }
}

impl PostgresConfig {
    /// A PostgreSQL store named on the command line (`store copy --to`),
    /// checked as `[store]` is: relative paths from the working directory,
    /// the password from the file or variable named.
    pub fn from_flags(
        url: String,
        password_file: Option<String>,
        password_env: Option<String>,
        schema: Option<String>,
    ) -> Result<PostgresConfig, ConfigError> {
        let raw = RawStore { url: Some(url), password_file, password_env, schema, ..RawStore::default() };
        match validate_store(raw, &|var| std::env::var(var).ok(), true, Path::new(""))? {
            StoreConfig::Postgres(pg) => Ok(pg),
            StoreConfig::Sqlite { .. } => Err(ConfigError::at("--to", "expected a postgresql:// URL")),
        }
    }
}

/// The schema when none is configured.
pub const DEFAULT_SCHEMA: &str = "public";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    path: Option<String>,
    max_size_mb: Option<i64>,
    url: Option<String>,
    password_file: Option<String>,
    password_env: Option<String>,
    schema: Option<String>,
}

pub(super) fn validate_store(
    raw: RawStore,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: bool,
    dir: &Path,
) -> Result<StoreConfig, ConfigError> {
    let path = non_empty("store.path", raw.path)?;
    let Some(url) = non_empty("store.url", raw.url)? else {
        for (key, set) in [
            ("store.password_file", raw.password_file.is_some()),
            ("store.password_env", raw.password_env.is_some()),
            ("store.schema", raw.schema.is_some()),
        ] {
            if set {
                return Err(ConfigError::at(key, "applies to PostgreSQL only: set store.url"));
            }
        }
        return Ok(StoreConfig::Sqlite {
            path: dir.join(path.unwrap_or_else(|| "aurinko-sync.db".into())),
            max_size_bytes: match raw.max_size_mb {
                None => None,
                Some(mb) => Some(u64::from(positive("store.max_size_mb", Some(mb), 0)?) * 1024 * 1024),
            },
        });
    };
    if path.is_some() {
        return Err(ConfigError::at("store", "set path (SQLite) or url (PostgreSQL), not both"));
    }
    if raw.max_size_mb.is_some() {
        return Err(ConfigError::at("store.max_size_mb", "applies to SQLite only"));
    }
    let parsed = check_url(&url)?;
    let password = match (raw.password_env, raw.password_file) {
        (None, None) if resolve => password_from_pgpass(&parsed, env).map(SecretString::from),
        (None, None) => None,
        (var, file) => {
            let secret = read_secret("store.password_env", "store.password_file", var, file, env, resolve, dir)?;
            Some(SecretString::from(secret))
        }
    };
    let schema = match non_empty("store.schema", raw.schema)? {
        None => DEFAULT_SCHEMA.to_string(),
        Some(schema) if is_identifier(&schema) => schema,
        Some(schema) => {
            return Err(ConfigError::at(
                "store.schema",
                format!(
                    "expected a lowercase name of letters, digits and _ (at most 63, not starting with a digit), got \
                     {schema:?}"
                ),
            ));
        }
    };
    Ok(StoreConfig::Postgres(PostgresConfig { url, password, schema }))
}

/// The password file's password for the URL's host, port, database and
/// user (see `pgpass`): libpq's behaviour when no password is given.
fn password_from_pgpass(url: &tokio_postgres::Config, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let host = match url.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.as_str(),
        // libpq matches a connection through a socket as `localhost`.
        _ => "localhost",
    };
    let target = super::pgpass::Target {
        host,
        port: url.get_ports().first().copied().unwrap_or(5432),
        database: url.get_dbname().unwrap_or_default(),
        user: url.get_user().unwrap_or_default(),
    };
    super::pgpass::lookup(&super::pgpass::path(env)?, &target)
}

/// A PostgreSQL URL the driver accepts, with no password in it. Errors
/// never repeat the URL: it may hold one.
fn check_url(url: &str) -> Result<tokio_postgres::Config, ConfigError> {
    if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
        return Err(ConfigError::at("store.url", "expected a URL like postgresql://user@host:5432/dbname"));
    }
    let parsed: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        ConfigError::at("store.url", format!("not a valid PostgreSQL URL ({e})"))
    })?;
    if parsed.get_password().is_some() {
        return Err(ConfigError::at(
            "store.url",
            "holds a password: put it in store.password_file or store.password_env, which stay out of the \
             configuration and the logs",
        ));
    }
    if parsed.get_dbname().is_none() {
        return Err(ConfigError::at("store.url", "names no database: postgresql://user@host:5432/dbname"));
    }
    Ok(parsed)
}

/// A schema name that needs no quoting: it is written into statements.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::super::Config;
    use super::*;

    const ACCOUNT: &str = "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\n";

    fn parse(store: &str) -> Result<Config, ConfigError> {
        let env = |var: &str| match var {
            "TOKEN" => Some("t".to_string()),
            "PGPW" => Some("s3cret\n".to_string()),
            _ => None,
        };
        Config::parse(&format!("[store]\n{store}\n{ACCOUNT}"), env)
    }

    #[test]
    fn a_url_selects_postgresql_with_its_password_and_schema() {
        let c = parse(
            "url = \"postgresql://sync@db:5432/aurinko?sslmode=require\"\npassword_env = \"PGPW\"\nschema = \"sync\"",
        )
        .unwrap();
        let StoreConfig::Postgres(pg) = c.store else { panic!("not PostgreSQL") };
        assert_eq!(pg.url, "postgresql://sync@db:5432/aurinko?sslmode=require");
        assert_eq!(pg.password.map(|p| p.expose_secret().to_string()).as_deref(), Some("s3cret"));
        assert_eq!(pg.schema, "sync");
        let StoreConfig::Postgres(pg) = parse("url = \"postgres://sync@db/aurinko\"").unwrap().store else {
            panic!("not PostgreSQL")
        };
        assert_eq!((pg.password.is_none(), pg.schema.as_str()), (true, DEFAULT_SCHEMA));
    }

    #[test]
    fn without_a_password_key_the_password_file_is_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "db:5432:aurinko:sync:from-pgpass\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.display().to_string();
        let env = |var: &str| match var {
            "TOKEN" => Some("t".to_string()),
            "PGPASSFILE" => Some(path.clone()),
            _ => None,
        };
        let text = format!("[store]\nurl = \"postgresql://sync@db:5432/aurinko\"\n{ACCOUNT}");
        let StoreConfig::Postgres(pg) = Config::parse(&text, env).unwrap().store else { panic!("not PostgreSQL") };
        assert_eq!(pg.password.map(|p| p.expose_secret().to_string()).as_deref(), Some("from-pgpass"));
        let text = text.replace("sync@", "other@");
        let StoreConfig::Postgres(pg) = Config::parse(&text, env).unwrap().store else { panic!("not PostgreSQL") };
        assert!(pg.password.is_none(), "no line for that user");
    }

    #[test]
    fn a_path_or_nothing_selects_sqlite() {
        assert!(matches!(parse("path = \"x.db\"").unwrap().store, StoreConfig::Sqlite { .. }));
        assert!(matches!(parse("").unwrap().store, StoreConfig::Sqlite { .. }));
    }

    #[test]
    fn mistakes_are_one_line_that_names_the_key_and_never_the_password() {
        for (store, key) in [
            ("path = \"x.db\"\nurl = \"postgresql://u@h/d\"", "store:"),
            ("url = \"postgresql://u:hunter2@h/d\"", "store.url:"),
            ("url = \"postgresql://u:hunter2@h/d?sslmode=bogus\"", "store.url:"),
            ("url = \"mysql://u@h/d\"", "store.url:"),
            ("url = \"postgresql://u@h/d\"\nmax_size_mb = 10", "store.max_size_mb:"),
            ("url = \"postgresql://u@h/d\"\npassword_env = \"PGPW\"\npassword_file = \"p\"", "store.password_env:"),
            ("url = \"postgresql://u@h/d\"\npassword_env = \"UNSET\"", "store.password_env:"),
            ("url = \"postgresql://u@h/d\"\nschema = \"Bad-Name\"", "store.schema:"),
            ("url = \"postgresql://u@h/d\"\nschema = \"pg_catalog\"", "store.schema:"),
            ("path = \"x.db\"\npassword_env = \"PGPW\"", "store.password_env:"),
            ("schema = \"sync\"", "store.schema:"),
        ] {
            let message = parse(store).unwrap_err().to_string();
            assert!(message.starts_with(key), "{store:?}: {message}");
            assert!(!message.contains("hunter2") && !message.contains('\n'), "{store:?}: {message}");
        }
    }
}
