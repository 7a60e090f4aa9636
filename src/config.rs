//! The TOML configuration file: parsing, validation and token loading.
//!
//! Everything that can be wrong with a configuration is found here, before the
//! first request: unknown keys, missing or empty tokens, malformed URLs, numbers
//! that make no sense, duplicate account names. Each problem is one line that
//! names the key, so an operator can fix it without reading the source.

mod app;
mod connect;
#[cfg(test)]
mod documented;
mod fleet;
mod pgpass;
mod secret_file;
mod selection;
mod store;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

pub use app::AppConfig;
use app::{RawApp, validate_app};
pub use connect::{ConnectSettings, connect_settings};
pub use fleet::{FleetConfig, check_instance_id, default_instance_id};
use fleet::{RawFleet, validate_fleet};
use secrecy::SecretString;
pub use selection::{CalendarSelection, EmailConfig, Selection, TasksConfig};
use selection::{RawEmail, RawSelection, validate_selection};
use serde::Deserialize;
pub use store::{DEFAULT_SCHEMA, PostgresConfig, StoreConfig};
use store::{RawStore, validate_store};

pub use crate::model::BodyType;
use crate::model::DISCOVERED_PREFIX;

/// A configuration problem. `Display` is one line naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn at(key: impl AsRef<str>, problem: impl AsRef<str>) -> Self {
        ConfigError(format!("{}: {}", key.as_ref(), problem.as_ref()))
    }
}

/// The validated configuration the rest of the program works from.
#[derive(Debug, Clone)]
pub struct Config {
    pub api: ApiConfig,
    pub store: StoreConfig,
    pub sync: SyncConfig,
    pub server: ServerConfig,
    /// Push notifications from Aurinko; `None` when not configured.
    pub webhook: Option<WebhookConfig>,
    /// The app's credentials, and whether it discovers its accounts.
    pub app: Option<AppConfig>,
    /// Several instances sharing the accounts (PostgreSQL only).
    pub fleet: Option<FleetConfig>,
    /// The configured accounts (app mode adds those it discovers at run time).
    pub accounts: Vec<AccountConfig>,
}

/// The webhook receiver on the `[server]` listener.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The path notifications are posted to, e.g. `/aurinko/webhook`.
    pub path: String,
    /// The Aurinko app's signing secret (not its client secret).
    pub signing_secret: SecretString,
    /// How far a request's timestamp may be from now.
    pub tolerance: Duration,
    /// The URL Aurinko posts to (through a reverse proxy); `subscribe` needs it.
    pub public_url: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("path", &self.path)
            .field("signing_secret", &"[redacted]")
            .field("tolerance", &self.tolerance)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// The daemon's optional HTTP listener for `/healthz`, `/metrics` and the
/// webhook.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Option<std::net::SocketAddr>,
    /// Connections open at once, at most; lowered at start to half the
    /// process's file-descriptor limit (see `service::fd_budget`).
    pub max_connections: usize,
    /// Whether the listener also speaks HTTP/2 (h2c). Off by default: a
    /// reverse proxy or a scraper speaks HTTP/1.1, and every HTTP/2 stream
    /// is one more request an unauthenticated peer can hold open.
    pub http2: bool,
    /// A request head must arrive within this of connecting or of the
    /// previous response, and a request must be answered within it.
    pub timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http2: false,
            timeout: Duration::from_secs(DEFAULT_SERVER_TIMEOUT_SECS.into()),
        }
    }
}

/// The default of `server.timeout_secs`.
const DEFAULT_SERVER_TIMEOUT_SECS: u32 = 30;

/// The default of `server.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Base URL including the `/v1` prefix, without a trailing slash.
    pub base_url: String,
    /// Client-side limit per account; Aurinko's own limit is shared by the app.
    pub requests_per_second: u32,
    /// Attempts per request before a transient error becomes the calendar's error.
    pub max_attempts: u32,
    /// First retry delay; later ones double, with full jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Whole-request timeout, so a stalled connection is a transient error.
    pub timeout: Duration,
    /// How long a provisioning may answer `ready: false` before the calendar fails.
    pub ready_timeout: Duration,
    /// The most bytes one response body may hold once decoded (gzip
    /// included); a larger answer fails its request.
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub window_past_days: u32,
    pub window_future_days: u32,
    pub poll_interval: Duration,
    /// How many calendars sync at the same time.
    pub concurrency: usize,
    /// Daemon: how often calendar lists are refreshed.
    pub discovery_interval: Duration,
    /// Daemon: the longest pause between attempts of a failing collection.
    pub max_retry_interval: Duration,
    /// Daemon: the first passes start at random within this (and within
    /// `poll_interval`), so many collections do not start in step.
    pub first_pass_spread: Duration,
    /// Records deleted upstream stay in the store, marked `deleted_at`.
    pub keep_deleted: bool,
    /// How long the history of runs is kept.
    pub runs_keep_days: u32,
    /// Daemon: the passes of this long make one run in the history.
    pub run_batch: Duration,
}

#[derive(Clone)]
pub struct AccountConfig {
    pub name: String,
    pub credential: Credential,
    /// What to sync.
    pub sync: Selection,
}

/// How requests for an account authenticate.
#[derive(Clone)]
pub enum Credential {
    /// The account's own access token (`Authorization: Bearer`).
    Token(SecretString),
    /// The app's credentials (`[app]`) acting for the account with this
    /// Aurinko id (HTTP Basic and `X-Aurinko-Account-Id`).
    App { account_id: i64 },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token(_) => f.write_str("Token([redacted])"),
            Credential::App { account_id } => write!(f, "App {{ account_id: {account_id} }}"),
        }
    }
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("name", &self.name)
            .field("credential", &self.credential)
            .field("sync", &self.sync)
            .finish()
    }
}

// ---- The file as written ------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    server: RawServer,
    webhook: Option<RawWebhook>,
    app: Option<RawApp>,
    fleet: Option<RawFleet>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    path: Option<String>,
    signing_secret_env: Option<String>,
    signing_secret_file: Option<String>,
    tolerance_secs: Option<i64>,
    public_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    max_connections: Option<i64>,
    http2: Option<bool>,
    timeout_secs: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApi {
    base_url: Option<String>,
    requests_per_second: Option<i64>,
    max_attempts: Option<i64>,
    backoff_base_ms: Option<i64>,
    backoff_max_ms: Option<i64>,
    timeout_secs: Option<i64>,
    ready_timeout_secs: Option<i64>,
    max_response_mib: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSync {
    window_past_days: Option<i64>,
    window_future_days: Option<i64>,
    poll_interval_secs: Option<i64>,
    concurrency: Option<i64>,
    discovery_interval_secs: Option<i64>,
    max_retry_interval_secs: Option<i64>,
    first_pass_spread_secs: Option<i64>,
    keep_deleted: Option<bool>,
    runs_keep_days: Option<i64>,
    run_batch_secs: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Option<String>,
    token_env: Option<String>,
    token_file: Option<String>,
    /// Instead of a token: the app's credentials act for this Aurinko account.
    account_id: Option<i64>,
    /// See [`RawSelection`], whose keys these are (serde cannot flatten
    /// into a table that refuses unknown keys).
    calendars: Option<toml::Value>,
    email: Option<RawEmail>,
    contacts: Option<bool>,
    tasks: Option<toml::Value>,
    shared_calendars: Option<bool>,
}

pub const DEFAULT_BASE_URL: &str = "https://api.aurinko.io/v1";

impl Config {
    /// Reads and validates the file at `path`, resolving tokens from the
    /// environment or from files. Relative paths in it (`store.path`,
    /// `token_file`, `signing_secret_file`) are relative to its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, &|var| std::env::var(var).ok(), true)
    }

    /// Reads the file for commands that only need the store (`state`): the
    /// same validation, but tokens are not required, since an operator
    /// inspecting the store need not hold them.
    pub fn load_without_tokens(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, &|_| None, false)
    }

    fn load_with(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        resolve_tokens: bool,
    ) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Self::parse_with(&text, env, resolve_tokens, dir)
            .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses configuration text; `env` looks up environment variables so
    /// tests need not touch the process environment. Relative paths stay
    /// relative to the working directory: there is no file to be next to.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Self::parse_with(text, &env, true, Path::new(""))
    }

    /// `dir` is where relative paths in the text start from.
    fn parse_with(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        resolve_tokens: bool,
        dir: &Path,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| describe_toml_error(text, e))?;
        let api = validate_api(raw.api)?;
        let store = validate_store(raw.store, env, resolve_tokens, dir)?;
        let sync = SyncConfig {
            window_past_days: positive("sync.window_past_days", raw.sync.window_past_days, 30)?,
            window_future_days: positive("sync.window_future_days", raw.sync.window_future_days, 365)?,
            poll_interval: Duration::from_secs(
                positive("sync.poll_interval_secs", raw.sync.poll_interval_secs, 60)?.into(),
            ),
            concurrency: positive("sync.concurrency", raw.sync.concurrency, 4)? as usize,
            discovery_interval: Duration::from_secs(
                positive("sync.discovery_interval_secs", raw.sync.discovery_interval_secs, 300)?.into(),
            ),
            max_retry_interval: Duration::from_secs(
                positive("sync.max_retry_interval_secs", raw.sync.max_retry_interval_secs, 3600)?.into(),
            ),
            first_pass_spread: Duration::from_secs(
                non_negative("sync.first_pass_spread_secs", raw.sync.first_pass_spread_secs, 10)?.into(),
            ),
            keep_deleted: raw.sync.keep_deleted.unwrap_or(false),
            runs_keep_days: positive("sync.runs_keep_days", raw.sync.runs_keep_days, 30)?,
            run_batch: Duration::from_secs(positive("sync.run_batch_secs", raw.sync.run_batch_secs, 900)?.into()),
        };
        let server = ServerConfig {
            listen: match non_empty("server.listen", raw.server.listen)? {
                None => None,
                Some(addr) => Some(addr.parse().map_err(|_| {
                    ConfigError::at("server.listen", format!("expected an address like 127.0.0.1:9464, got {addr:?}"))
                })?),
            },
            max_connections: positive(
                "server.max_connections",
                raw.server.max_connections,
                DEFAULT_MAX_CONNECTIONS as u32,
            )? as usize,
            http2: raw.server.http2.unwrap_or(false),
            timeout: Duration::from_secs(
                positive("server.timeout_secs", raw.server.timeout_secs, DEFAULT_SERVER_TIMEOUT_SECS)?.into(),
            ),
        };
        let webhook = match raw.webhook {
            None => None,
            Some(w) => Some(validate_webhook(w, &server, env, resolve_tokens, dir)?),
        };
        let app = match raw.app {
            None => None,
            Some(a) => Some(validate_app(a, env, resolve_tokens, dir)?),
        };
        let fleet = match raw.fleet {
            None => None,
            Some(f) => Some(validate_fleet(f, &store)?),
        };
        let discovers = app.as_ref().is_some_and(|a| a.discover.is_some());
        if raw.accounts.is_empty() && !discovers {
            return Err(ConfigError::at("accounts", "no [[accounts]] configured (nor [app] accounts = \"aurinko\")"));
        }
        let mut accounts: Vec<AccountConfig> = Vec::with_capacity(raw.accounts.len());
        // A set, not a scan of the accounts so far: 100,000 accounts would
        // take minutes to compare pairwise.
        let mut names = HashSet::with_capacity(raw.accounts.len());
        for (i, account) in raw.accounts.into_iter().enumerate() {
            let account = validate_account(i, account, app.as_ref(), env, resolve_tokens, dir)?;
            if discovers && account.name.starts_with(DISCOVERED_PREFIX) {
                return Err(ConfigError::at(
                    format!("accounts[{i}].name"),
                    format!("names starting with {DISCOVERED_PREFIX:?} are those of discovered accounts"),
                ));
            }
            if !names.insert(account.name.clone()) {
                return Err(ConfigError::at(
                    format!("accounts[{i}].name"),
                    format!("duplicate account name {:?}", account.name),
                ));
            }
            accounts.push(account);
        }
        Ok(Config { api, store, sync, server, webhook, app, fleet, accounts })
    }
}

fn describe_toml_error(text: &str, e: toml::de::Error) -> ConfigError {
    // toml's Display spans several lines (a source excerpt). One line with
    // the line number and the offending line names the key just as well.
    let message = crate::user_terms::serde_message(e.message(), crate::user_terms::Document::Toml).replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            ConfigError(format!("line {line_no} ({line}): {message}"))
        }
        None => ConfigError(format!("invalid configuration: {message}")),
    }
}

fn validate_api(raw: RawApi) -> Result<ApiConfig, ConfigError> {
    let base_url = non_empty("api.base_url", raw.base_url)?.unwrap_or_else(|| DEFAULT_BASE_URL.into());
    let parsed = reqwest::Url::parse(&base_url)
        .map_err(|e| ConfigError::at("api.base_url", format!("not a valid URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ConfigError::at("api.base_url", "must be an http:// or https:// URL with a host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::at("api.base_url", "must not carry a query or fragment"));
    }
    let ms = |key, v, default| positive(key, v, default).map(|n| Duration::from_millis(n.into()));
    let secs = |key, v, default| positive(key, v, default).map(|n| Duration::from_secs(n.into()));
    let api = ApiConfig {
        base_url: base_url.trim_end_matches('/').to_string(),
        requests_per_second: positive("api.requests_per_second", raw.requests_per_second, 10)?,
        max_attempts: positive("api.max_attempts", raw.max_attempts, 6)?,
        backoff_base: ms("api.backoff_base_ms", raw.backoff_base_ms, 500)?,
        backoff_max: ms("api.backoff_max_ms", raw.backoff_max_ms, 30_000)?,
        timeout: secs("api.timeout_secs", raw.timeout_secs, 60)?,
        ready_timeout: secs("api.ready_timeout_secs", raw.ready_timeout_secs, 300)?,
        max_response_bytes: (positive("api.max_response_mib", raw.max_response_mib, 64)? as usize)
            .saturating_mul(1 << 20),
    };
    if api.backoff_max < api.backoff_base {
        return Err(ConfigError::at("api.backoff_max_ms", "must not be below api.backoff_base_ms"));
    }
    Ok(api)
}

fn validate_account(
    i: usize,
    raw: RawAccount,
    app: Option<&AppConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    resolve_tokens: bool,
    dir: &Path,
) -> Result<AccountConfig, ConfigError> {
    let key = |field: &str| format!("accounts[{i}].{field}");
    let name = non_empty(&key("name"), raw.name)?.ok_or_else(|| ConfigError::at(key("name"), "missing"))?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(ConfigError::at(key("name"), "use letters, digits, '-', '_' or '.' only"));
    }
    let credential = match raw.account_id {
        Some(_) if raw.token_env.is_some() || raw.token_file.is_some() => {
            return Err(ConfigError::at(key("account_id"), "set account_id (with [app]) or a token, not both"));
        }
        Some(_) if app.is_none() => {
            return Err(ConfigError::at(key("account_id"), "acts with the app's credentials: [app] is missing"));
        }
        Some(id) if id <= 0 => return Err(ConfigError::at(key("account_id"), format!("must be positive, got {id}"))),
        Some(account_id) => Credential::App { account_id },
        None => {
            let token = read_secret(
                &key("token_env"),
                &key("token_file"),
                raw.token_env,
                raw.token_file,
                env,
                resolve_tokens,
                dir,
            )?;
            if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
                // A header value cannot hold these; say so without echoing the token.
                return Err(ConfigError::at(key("token"), "the token contains spaces or control characters"));
            }
            Credential::Token(SecretString::from(token))
        }
    };
    let selection = RawSelection {
        calendars: raw.calendars,
        email: raw.email,
        contacts: raw.contacts,
        tasks: raw.tasks,
        shared_calendars: raw.shared_calendars,
    };
    let sync = validate_selection(&format!("accounts[{i}]"), selection)?;
    Ok(AccountConfig { name, credential, sync })
}

/// Reads a secret from an environment variable or a file (relative to
/// `dir`), trimmed. With `resolve` false (for `state`), only the shape is
/// checked. Errors name the key and never the value.
fn read_secret(
    env_key: &str,
    file_key: &str,
    var: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: bool,
    dir: &Path,
) -> Result<String, ConfigError> {
    match (var, file) {
        (Some(_), Some(_)) => Err(ConfigError::at(env_key, format!("set {env_key} or {file_key}, not both"))),
        (None, None) => Err(ConfigError::at(env_key, format!("missing (or {file_key})"))),
        _ if !resolve => Ok(String::new()),
        (Some(var), None) => {
            if var.is_empty() {
                return Err(ConfigError::at(env_key, "empty variable name"));
            }
            let value = env(&var).unwrap_or_default();
            let value = value.trim();
            if value.is_empty() {
                return Err(ConfigError::at(env_key, format!("environment variable {var} is not set or empty")));
            }
            if value.len() > secret_file::MAX_SECRET_BYTES {
                return Err(ConfigError::at(
                    env_key,
                    format!("environment variable {var} is longer than {} KiB", secret_file::MAX_SECRET_BYTES / 1024),
                ));
            }
            Ok(value.to_string())
        }
        (None, Some(file)) => secret_file::read(file_key, &dir.join(file)),
    }
}

fn validate_webhook(
    raw: RawWebhook,
    server: &ServerConfig,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: bool,
    dir: &Path,
) -> Result<WebhookConfig, ConfigError> {
    if server.listen.is_none() {
        return Err(ConfigError::at("webhook", "needs [server] listen: notifications arrive on that listener"));
    }
    let path = non_empty("webhook.path", raw.path)?.unwrap_or_else(|| "/aurinko/webhook".into());
    if !path.starts_with('/') || path.contains(['?', '#']) || matches!(path.as_str(), "/healthz" | "/metrics") {
        return Err(ConfigError::at("webhook.path", format!("expected a path like /aurinko/webhook, got {path:?}")));
    }
    let secret = read_secret(
        "webhook.signing_secret_env",
        "webhook.signing_secret_file",
        raw.signing_secret_env,
        raw.signing_secret_file,
        env,
        resolve,
        dir,
    )?;
    let public_url = match non_empty("webhook.public_url", raw.public_url)? {
        None => None,
        Some(url) => {
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| ConfigError::at("webhook.public_url", format!("not a valid URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::at("webhook.public_url", "must be an http:// or https:// URL with a host"));
            }
            Some(url)
        }
    };
    Ok(WebhookConfig {
        path,
        signing_secret: SecretString::from(secret),
        tolerance: Duration::from_secs(positive("webhook.tolerance_secs", raw.tolerance_secs, 300)?.into()),
        public_url,
    })
}

fn non_empty(key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ConfigError::at(key, "must not be empty")),
        other => Ok(other),
    }
}

/// Like [`positive`], but 0 is allowed.
fn non_negative(key: &str, value: Option<i64>, default: u32) -> Result<u32, ConfigError> {
    match value {
        Some(v) if v < 0 => Err(ConfigError::at(key, format!("must be 0 or more, got {v}"))),
        Some(0) => Ok(0),
        other => positive(key, other, default),
    }
}

fn positive(key: &str, value: Option<i64>, default: u32) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v <= 0 => Err(ConfigError::at(key, format!("must be a positive number, got {v}"))),
        Some(v) => u32::try_from(v).map_err(|_| ConfigError::at(key, format!("{v} is too large"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(var: &str) -> Option<String> {
        (var == "TOKEN").then(|| "secret-token".to_string())
    }

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, env).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = "[[accounts]]\nname = \"work\"\ntoken_env = \"TOKEN\"\n";

    #[test]
    fn defaults_apply_to_a_minimal_file() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.api.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.api.requests_per_second, 10);
        assert_eq!(c.sync.window_past_days, 30);
        assert_eq!(c.sync.window_future_days, 365);
        assert_eq!(c.sync.first_pass_spread, Duration::from_secs(10));
        assert_eq!(c.store.sqlite_path(), Some(Path::new("aurinko-sync.db")));
        assert_eq!(c.accounts[0].sync.calendars, CalendarSelection::All);
        assert!(matches!(&c.accounts[0].credential, Credential::Token(t) if t.expose_secret() == "secret-token"));
    }

    #[test]
    fn the_first_pass_spread_may_be_zero() {
        let c = parse(&format!("[sync]\nfirst_pass_spread_secs = 0\n{MINIMAL}")).unwrap();
        assert_eq!(c.sync.first_pass_spread, Duration::ZERO);
    }

    #[test]
    fn each_bad_value_names_its_key_on_one_line() {
        let cases = [
            ("[api]\nbogus = 1\n", "bogus"),
            ("[api]\nbase_url = \"not a url\"\n", "api.base_url"),
            ("[api]\nrequests_per_second = 0\n", "api.requests_per_second"),
            ("[api]\nrequests_per_second = \"fast\"\n", "requests_per_second"),
            ("[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\ncalendars = [1]\n", "accounts[0].calendars"),
            ("[sync]\nwindow_past_days = -3\n", "sync.window_past_days"),
            ("[sync]\nfirst_pass_spread_secs = -1\n", "sync.first_pass_spread_secs"),
            ("[server]\nlisten = \"localhost\"\n", "server.listen"),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            ("[server]\ntimeout_secs = 0\n", "server.timeout_secs"),
            ("[server]\nhttp2 = \"yes\"\n", "http2"),
            ("[[accounts]]\nname = \"a\"\ntoken_env = \"MISSING\"\n", "accounts[0].token_env"),
            ("[[accounts]]\nname = \"a\"\n", "accounts[0].token_env"),
            ("[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\ncalendars = \"some\"\n", "accounts[0].calendars"),
            ("[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\ncalendars = [\"..\"]\n", "accounts[0].calendars"),
            (
                "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\ncalendars = [\"x\", \".\"]\n",
                "accounts[0].calendars",
            ),
            ("[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\nextra = 1\n", "extra"),
            (
                "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\n[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\n",
                "accounts[1].name",
            ),
            ("", "accounts"),
        ];
        for (text, key) in cases {
            let text = if text.contains("[[accounts]]") || text.is_empty() {
                text.to_string()
            } else {
                format!("{text}{MINIMAL}")
            };
            let err = parse(&text).expect_err(&text);
            assert!(err.contains(key), "{text:?} gave {err:?}, expected it to name {key}");
            assert!(!err.contains('\n'), "multi-line error: {err:?}");
            assert!(!err.contains("secret-token"));
        }
    }

    #[test]
    fn email_and_contacts_are_off_by_default_and_configurable() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!((c.accounts[0].sync.email, c.accounts[0].sync.contacts), (None, false));
        let text = "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\ncalendars = []\nemail = { days_within = 30, body = \"html\" }\ncontacts = true\n";
        let c = parse(text).unwrap();
        let a = &c.accounts[0].sync;
        assert_eq!(a.calendars, CalendarSelection::Listed(vec![]));
        assert_eq!(a.email, Some(EmailConfig { days_within: Some(30), body: Some(BodyType::Html) }));
        assert!(a.contacts);
        let c = parse("[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\nemail = {}\n").unwrap();
        assert_eq!(c.accounts[0].sync.email, Some(EmailConfig { days_within: None, body: None }));
        assert!(!c.accounts[0].sync.shared_calendars, "off by default");
        let c = parse("[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\nshared_calendars = true\n").unwrap();
        assert!(c.accounts[0].sync.shared_calendars);
    }

    #[test]
    fn bad_email_and_contacts_settings_name_their_key() {
        let account = "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\n";
        let cases = [
            ("email = { days_within = 0 }\n", "accounts[0].email.days_within"),
            ("email = { body = \"rtf\" }\n", "accounts[0].email.body"),
            ("email = { folders = 1 }\n", "folders"),
            ("contacts = \"yes\"\n", "contacts"),
            ("shared_calendars = 1\n", "shared_calendars"),
            ("calendars = []\ncontacts = true\nshared_calendars = true\n", "accounts[0].shared_calendars"),
            ("calendars = []\n", "accounts[0].calendars"),
        ];
        for (line, key) in cases {
            let err = parse(&format!("{account}{line}")).expect_err(line);
            assert!(err.contains(key), "{line:?} gave {err:?}");
        }
    }

    #[test]
    fn tasks_are_off_by_default_and_configurable() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.accounts[0].sync.tasks, None);
        let account = "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\ncalendars = []\n";
        let tasks = |line: &str| parse(&format!("{account}{line}")).map(|c| c.accounts[0].sync.tasks);
        assert_eq!(tasks("tasks = true\n").unwrap(), Some(TasksConfig { completed_within_days: None }));
        assert_eq!(tasks("tasks = {}\n").unwrap(), Some(TasksConfig { completed_within_days: None }));
        assert_eq!(
            tasks("tasks = { completed_within_days = 90 }\n").unwrap(),
            Some(TasksConfig { completed_within_days: Some(90) })
        );
        let err = tasks("tasks = false\n").unwrap_err();
        assert!(err.contains("accounts[0].calendars") && err.contains("nothing to sync"), "{err}");
    }

    #[test]
    fn bad_task_settings_name_their_key_on_one_line() {
        let account = "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\n";
        let cases = [
            ("tasks = \"yes\"\n", "accounts[0].tasks"),
            ("tasks = [1]\n", "accounts[0].tasks"),
            ("tasks = { completed_within_days = 0 }\n", "accounts[0].tasks.completed_within_days"),
            ("tasks = { completed_within_days = -5 }\n", "accounts[0].tasks.completed_within_days"),
            ("tasks = { completed_within_days = \"30\" }\n", "accounts[0].tasks.completed_within_days"),
            ("tasks = { completed_within_days = 99999999999 }\n", "accounts[0].tasks.completed_within_days"),
            ("tasks = { days = 3 }\n", "accounts[0].tasks.days"),
        ];
        for (line, key) in cases {
            let err = parse(&format!("{account}{line}")).expect_err(line);
            assert!(err.contains(key), "{line:?} gave {err:?}");
            assert!(!err.contains('\n'), "multi-line error: {err:?}");
        }
    }

    #[test]
    fn the_webhook_needs_a_listener_and_a_secret() {
        let listen = "[server]\nlisten = \"127.0.0.1:9464\"\n";
        let ok = format!(
            "{listen}[webhook]\nsigning_secret_env = \"TOKEN\"\npublic_url = \"https://x.example/hook\"\n{MINIMAL}"
        );
        let c = parse(&ok).unwrap();
        let w = c.webhook.unwrap();
        assert_eq!((w.path.as_str(), w.tolerance.as_secs()), ("/aurinko/webhook", 300));
        assert!(!format!("{w:?}").contains("secret-token"));
        let cases = [
            (format!("[webhook]\nsigning_secret_env = \"TOKEN\"\n{MINIMAL}"), "webhook"),
            (format!("{listen}[webhook]\npath = \"/aurinko/webhook\"\n{MINIMAL}"), "webhook.signing_secret_env"),
            (format!("{listen}[webhook]\nsigning_secret_env = \"NOPE\"\n{MINIMAL}"), "webhook.signing_secret_env"),
            (format!("{listen}[webhook]\nsigning_secret_env = \"TOKEN\"\npath = \"hook\"\n{MINIMAL}"), "webhook.path"),
            (
                format!("{listen}[webhook]\nsigning_secret_env = \"TOKEN\"\ntolerance_secs = 0\n{MINIMAL}"),
                "webhook.tolerance_secs",
            ),
            (
                format!("{listen}[webhook]\nsigning_secret_env = \"TOKEN\"\npublic_url = \"ftp://x\"\n{MINIMAL}"),
                "webhook.public_url",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).expect_err(&text);
            assert!(err.contains(key), "{text:?} gave {err:?}");
            assert!(!err.contains("secret-token"));
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../deploy/aurinko-sync.toml");
        let c = Config::parse_with(text, &|_| None, false, Path::new("")).unwrap();
        assert_eq!(c.accounts[0].name, "work");
        assert_eq!(c.api.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.accounts[0].sync.tasks, None);
    }

    #[test]
    fn relative_paths_start_from_the_configuration_files_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        std::fs::write(dir.path().join("conf/work.token"), "file-token\n").unwrap();
        std::fs::write(dir.path().join("conf/hook.secret"), "hook-secret").unwrap();
        let config = dir.path().join("conf/aurinko-sync.toml");
        let listen = "[server]\nlisten = \"127.0.0.1:9464\"\n[webhook]\nsigning_secret_file = \"hook.secret\"\n";
        let account = "[[accounts]]\nname = \"a\"\ntoken_file = \"work.token\"\n";
        std::fs::write(&config, format!("[store]\npath = \"data/s.db\"\n{listen}{account}")).unwrap();
        let c = Config::load(&config).unwrap();
        assert_eq!(c.store.sqlite_path(), Some(dir.path().join("conf/data/s.db").as_path()));
        assert!(matches!(&c.accounts[0].credential, Credential::Token(t) if t.expose_secret() == "file-token"));
        assert_eq!(c.webhook.unwrap().signing_secret.expose_secret(), "hook-secret");
        std::fs::write(&config, format!("[store]\npath = \"/var/lib/x.db\"\n{account}")).unwrap();
        assert_eq!(Config::load(&config).unwrap().store.sqlite_path(), Some(Path::new("/var/lib/x.db")));
        std::fs::write(&config, account).unwrap();
        assert_eq!(
            Config::load(&config).unwrap().store.sqlite_path(),
            Some(dir.path().join("conf/aurinko-sync.db").as_path()),
            "the default"
        );
    }

    #[test]
    fn the_duplicate_of_an_account_name_is_named_among_many() {
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("[[accounts]]\nname = \"a{i}\"\ntoken_env = \"TOKEN\"\n"));
        }
        assert_eq!(parse(&text).unwrap().accounts.len(), 1000);
        text.push_str("[[accounts]]\nname = \"a517\"\ntoken_env = \"TOKEN\"\n");
        assert_eq!(parse(&text).unwrap_err(), "accounts[1000].name: duplicate account name \"a517\"");
    }

    #[test]
    fn a_secret_in_a_variable_is_bounded_like_one_in_a_file() {
        let long = "t".repeat(secret_file::MAX_SECRET_BYTES + 1);
        let err = Config::parse(MINIMAL, |_| Some(long.clone())).unwrap_err().to_string();
        assert_eq!(err, "accounts[0].token_env: environment variable TOKEN is longer than 64 KiB");
    }

    #[test]
    fn calendar_lists_and_primary_alias() {
        let text = "[[accounts]]\nname = \"a\"\ntoken_env = \"TOKEN\"\ncalendars = [\"primary\", \"cal-2\"]\n";
        let c = parse(text).unwrap();
        assert_eq!(c.accounts[0].sync.calendars, CalendarSelection::Listed(vec!["primary".into(), "cal-2".into()]));
    }

    const APP: &str = "[app]\nclient_id = \"app-id\"\nclient_secret_env = \"TOKEN\"\n";

    #[test]
    fn app_mode_needs_no_accounts_entry_and_takes_its_template() {
        let c = parse(&format!("{APP}accounts = \"aurinko\"\n[app.each_account]\ncontacts = true\ncalendars = []\n"))
            .unwrap();
        assert!(c.accounts.is_empty());
        let app = c.app.as_ref().unwrap();
        assert_eq!(app.client_id, "app-id");
        assert!(!app.purge_removed_accounts);
        let template = app.discover.as_ref().unwrap();
        assert!(template.contacts);
        assert_eq!(template.calendars, CalendarSelection::Listed(vec![]));
        // Without a template every account syncs its calendars, as an entry does.
        let c = parse(&format!("{APP}accounts = \"aurinko\"\n")).unwrap();
        assert_eq!(c.app.unwrap().discover.unwrap().calendars, CalendarSelection::All);
        // The secret is in no Debug output.
        assert!(!format!("{:?}", parse(&format!("{APP}{MINIMAL}")).unwrap()).contains("secret-token"));
        // An entry may act through the app's credentials instead of a token.
        let c = parse(&format!("{APP}[[accounts]]\nname = \"a\"\naccount_id = 1042\n")).unwrap();
        assert!(matches!(c.accounts[0].credential, Credential::App { account_id: 1042 }));
    }

    #[test]
    fn each_bad_app_setting_names_its_key() {
        let cases = [
            ("[app]\nclient_secret_env = \"TOKEN\"\naccounts = \"aurinko\"\n", "app.client_id"),
            ("[app]\nclient_id = \"a:b\"\nclient_secret_env = \"TOKEN\"\naccounts = \"aurinko\"\n", "app.client_id"),
            ("[app]\nclient_id = \"a\"\naccounts = \"aurinko\"\n", "app.client_secret_env"),
            (
                "[app]\nclient_id = \"a\"\nclient_secret_env = \"MISSING\"\naccounts = \"aurinko\"\n",
                "app.client_secret_env",
            ),
            (&format!("{APP}accounts = \"every\"\n"), "app.accounts"),
            (&format!("{APP}[app.each_account]\ncontacts = true\n{MINIMAL}"), "app.each_account"),
            (
                &format!("{APP}accounts = \"aurinko\"\n[app.each_account]\ncalendars = 3\n"),
                "app.each_account.calendars",
            ),
            (
                &format!("{APP}accounts = \"aurinko\"\n[app.each_account]\ncalendars = []\n"),
                "app.each_account.calendars",
            ),
            (APP, "accounts"),
            ("[[accounts]]\nname = \"a\"\naccount_id = 5\n", "accounts[0].account_id"),
            (
                &format!("{APP}[[accounts]]\nname = \"a\"\naccount_id = 5\ntoken_env = \"TOKEN\"\n"),
                "accounts[0].account_id",
            ),
            (&format!("{APP}[[accounts]]\nname = \"a\"\naccount_id = 0\n"), "accounts[0].account_id"),
            (
                &format!("{APP}accounts = \"aurinko\"\n[[accounts]]\nname = \"aurinko-7\"\ntoken_env = \"TOKEN\"\n"),
                "accounts[0].name",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(key) || err.contains(&format!("{key}:")), "{text:?}: {err}");
            assert!(!err.contains('\n') && !err.contains("secret-token"), "{err}");
        }
    }
}
