//! `spawn_app`: a fake Aurinko on a loopback port, a temporary directory with
//! a configuration and a store path, and ways to run the real binary or the
//! engine against them.

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use aurinko_fake::{Collection, FakeAurinko, FakeOptions, FakeServer, RequestRecord};
use aurinko_sync::config::Config;
use aurinko_sync::model::Kind;
use aurinko_sync::store::{Backend, Postgres, Store, StoreError};
use aurinko_sync::sync::{CatchUpReport, Engine};
use private_postgres::PrivatePostgres;
use tokio_util::sync::CancellationToken;

use crate::daemon::Daemon;

pub struct Account {
    pub name: &'static str,
    pub token: String,
    pub env: String,
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub fake: FakeAurinko,
    pub server: FakeServer,
    pub accounts: Vec<Account>,
    pub config_path: PathBuf,
    /// The SQLite store's file (unused with PostgreSQL).
    pub db_path: PathBuf,
    /// Where the store is: the SQLite file, or a schema of a private
    /// PostgreSQL.
    pub store_at: StoreAt,
    /// The private PostgreSQL, when the test runs on it (kept running for
    /// the app's life; several apps may share one, each in its schema).
    pub postgres: Option<Arc<PrivatePostgres>>,
    /// Lines added to every `[[accounts]]` entry.
    account_extra: String,
    /// Whether the daemon has a listener (`[server] listen`, on port 0).
    has_listener: bool,
    /// Where the last daemon started said its listener is.
    listen: std::sync::Mutex<Option<std::net::SocketAddr>>,
    webhook: bool,
    /// App mode: the accounts are discovered, not configured.
    app_mode: bool,
}

/// What the fake holds at the start: per account, calendars with events.
pub struct Setup {
    pub accounts: Vec<(&'static str, Vec<(&'static str, usize)>)>,
    pub options: FakeOptions,
    /// Extra lines appended to the `[sync]` table.
    pub sync_extra: &'static str,
    /// Every account's mailbox: messages in the fake, and the `email`
    /// setting (e.g. `{ days_within = 365, body = "text" }`).
    pub mail: Option<(usize, &'static str)>,
    /// Every account's address book: contacts in the fake; synced when set.
    pub contacts: Option<usize>,
    /// Every account's task lists (the first is the default) with their
    /// tasks in the fake, and the `tasks` setting (e.g. `true`); synced
    /// when set.
    pub tasks: Option<(Vec<(&'static str, usize)>, &'static str)>,
    /// Give the daemon a `[server] listen` address, on loopback port 0.
    pub server: bool,
    /// Configure the webhook receiver at `/hook` on that listener (implies
    /// `server`), with the fake signing notifications with [`SIGNING_SECRET`].
    pub webhook: bool,
    /// App mode: the fake accepts the app's credentials ([`APP_CLIENT_ID`],
    /// [`APP_SECRET`]) and the configuration has `[app] accounts =
    /// "aurinko"` instead of `[[accounts]]`; each account's store name is
    /// then `aurinko-<id>` (see [`TestApp::local_name`]).
    pub app: bool,
}

/// Which store a test's app keeps its data in: the conformance tests run
/// on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// Where an app's store is, to open it the way the product does.
#[derive(Debug, Clone)]
pub enum StoreAt {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl StoreAt {
    /// Opens the store for writing, as `run` does. Blocks: off a runtime.
    pub fn open(&self) -> Result<Arc<dyn Backend>, StoreError> {
        Ok(match self {
            StoreAt::Sqlite(path) => Arc::new(Store::open(path)?),
            StoreAt::Postgres { url, schema } => Arc::new(Postgres::open(url, None, schema)?),
        })
    }

    /// Opens the store for reading, as `state` does. Blocks: off a runtime.
    pub fn open_read_only(&self) -> Result<Arc<dyn Backend>, StoreError> {
        Ok(match self {
            StoreAt::Sqlite(path) => Arc::new(Store::open_read_only(path)?),
            StoreAt::Postgres { url, schema } => Arc::new(Postgres::open_read_only(url, None, schema)?),
        })
    }

    /// The `[store]` lines of the configuration.
    fn config_lines(&self) -> String {
        match self {
            StoreAt::Sqlite(path) => format!("path = \"{}\"", path.display()),
            StoreAt::Postgres { url, schema } => format!("url = \"{url}\"\nschema = \"{schema}\""),
        }
    }

    /// Whether there is a store to open yet (a SQLite file is created by
    /// the first run; a PostgreSQL schema is asked for).
    pub fn exists(&self) -> bool {
        match self {
            StoreAt::Sqlite(path) => path.exists(),
            StoreAt::Postgres { .. } => true,
        }
    }
}

/// The webhook signing secret tests share with the fake.
pub const SIGNING_SECRET: &str = "whsec-T3ST-S3CR3T-signing";

/// The app's credentials in app mode: a secret with the characters that
/// encodings change (`+/=%"` and a space).
pub const APP_CLIENT_ID: &str = "test-app-client";
pub const APP_SECRET: &str = "app-S3CR3T +/=%\"-Basic";
pub const APP_SECRET_ENV: &str = "TEST_APP_SECRET";

impl Default for Setup {
    fn default() -> Self {
        Setup {
            accounts: vec![("work", vec![("cal-1", 120), ("cal-2", 80)])],
            options: FakeOptions { page_size: 25, ..FakeOptions::default() },
            sync_extra: "",
            mail: None,
            contacts: None,
            tasks: None,
            server: false,
            webhook: false,
            app: false,
        }
    }
}

pub async fn spawn_app(setup: Setup) -> TestApp {
    spawn_app_with(setup, None).await
}

/// [`spawn_app`] with its store on `kind`; `None` when the test must be
/// skipped (PostgreSQL's binaries are missing outside CI: said loudly).
pub async fn spawn_app_on(setup: Setup, kind: StoreKind, test: &str) -> Option<TestApp> {
    let postgres = match kind {
        StoreKind::Sqlite => None,
        StoreKind::Postgres => Some(Arc::new(tokio::task::block_in_place(|| PrivatePostgres::start(test))?)),
    };
    Some(spawn_app_with(setup, postgres.map(|server| (server, "public".to_string()))).await)
}

/// [`spawn_app`] with its store in `schema` of a running private
/// PostgreSQL, which other apps may share.
pub async fn spawn_app_in(setup: Setup, server: Arc<PrivatePostgres>, schema: &str) -> TestApp {
    spawn_app_with(setup, Some((server, schema.to_string()))).await
}

async fn spawn_app_with(setup: Setup, postgres: Option<(Arc<PrivatePostgres>, String)>) -> TestApp {
    let fake = FakeAurinko::new(setup.options);
    let mut accounts = Vec::new();
    for (i, (name, calendars)) in setup.accounts.iter().enumerate() {
        let token = format!("tok-{name}-{i}-S3CR3T-{}", std::process::id());
        fake.add_account(name, &token);
        for (j, (calendar, events)) in calendars.iter().enumerate() {
            fake.add_calendar(&token, calendar, &format!("Calendar {calendar}"), j == 0);
            fake.generate_events(&token, calendar, *events);
        }
        if let Some((messages, _)) = setup.mail {
            fake.generate(&token, &Collection::Email, messages);
        }
        if let Some(contacts) = setup.contacts {
            fake.generate(&token, &Collection::Contacts, contacts);
        }
        for (j, (list, tasks)) in setup.tasks.iter().flat_map(|(lists, _)| lists).enumerate() {
            fake.add_task_list(&token, list, &format!("List {list}"), j == 0);
            fake.generate(&token, &Collection::Tasks(list.to_string()), *tasks);
        }
        accounts.push(Account { name, token, env: format!("TEST_TOKEN_{}", name.to_uppercase()) });
    }
    let server = fake.spawn(([127, 0, 0, 1], 0).into()).await.expect("fake binds");
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("store.db");
    let store_at = match &postgres {
        Some((server, schema)) => StoreAt::Postgres { url: server.url(), schema: schema.clone() },
        None => StoreAt::Sqlite(db_path.clone()),
    };
    let config_path = dir.path().join("aurinko-sync.toml");
    let mut account_extra = String::new();
    if let Some((_, email)) = setup.mail {
        account_extra.push_str(&format!("email = {email}\n"));
    }
    if setup.contacts.is_some() {
        account_extra.push_str("contacts = true\n");
    }
    if let Some((_, tasks)) = &setup.tasks {
        account_extra.push_str(&format!("tasks = {tasks}\n"));
    }
    if setup.webhook {
        fake.set_signing_secret(SIGNING_SECRET);
    }
    if setup.app {
        fake.set_app_credentials(APP_CLIENT_ID, APP_SECRET);
    }
    let app = TestApp {
        dir,
        fake,
        server,
        accounts,
        config_path,
        db_path,
        store_at,
        postgres: postgres.map(|(server, _)| server),
        account_extra,
        has_listener: setup.server || setup.webhook,
        listen: std::sync::Mutex::new(None),
        webhook: setup.webhook,
        app_mode: setup.app,
    };
    std::fs::write(&app.config_path, app.config_text(setup.sync_extra)).expect("config written");
    app
}

impl TestApp {
    /// A configuration for the fake with fast retries, so fault tests finish
    /// in seconds, and first passes that start at once.
    pub fn config_text(&self, sync_extra: &str) -> String {
        let store = self.store_at.config_lines();
        let mut text = format!(
            "[api]\nbase_url = \"{}\"\nrequests_per_second = 2000\nmax_attempts = 10\nbackoff_base_ms = 5\nbackoff_max_ms = 100\ntimeout_secs = 5\nready_timeout_secs = 20\n\n[store]\n{store}\n\n[sync]\nconcurrency = 4\nfirst_pass_spread_secs = 0\n{sync_extra}\n",
            self.server.base_url(),
        );
        if self.has_listener {
            text.push_str("[server]\nlisten = \"127.0.0.1:0\"\n\n");
            if self.webhook {
                // The port is known once the daemon has bound it; `spawn_daemon`
                // writes it into `public_url` for `subscribe`.
                let addr = self.listen.lock().unwrap().map_or("127.0.0.1:0".to_string(), |a| a.to_string());
                text.push_str(&format!(
                    "[webhook]\npath = \"/hook\"\nsigning_secret_env = \"TEST_SIGNING_SECRET\"\npublic_url = \"http://{addr}/hook\"\n\n"
                ));
            }
        }
        if self.app_mode {
            text.push_str(&format!(
                "[app]\nclient_id = \"{APP_CLIENT_ID}\"\nclient_secret_env = \"{APP_SECRET_ENV}\"\naccounts = \"aurinko\"\n\n[app.each_account]\n{}\n",
                self.account_extra
            ));
            return text;
        }
        for a in &self.accounts {
            text.push_str(&format!(
                "[[accounts]]\nname = \"{}\"\ntoken_env = \"{}\"\n{}",
                a.name, a.env, self.account_extra
            ));
        }
        text
    }

    /// The name the store, logs and `state` know `account` by: the
    /// configured name, or in app mode `aurinko-<its Aurinko id>`.
    pub fn local_name(&self, account: &str) -> String {
        match self.app_mode {
            true => aurinko_sync::model::discovered_name(self.fake.account_id(self.token(account)).expect("known")),
            false => account.to_string(),
        }
    }

    /// Rewrites the configuration file with `from` replaced by `to`.
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config_path).unwrap();
        assert!(text.contains(from), "{from:?} is in the configuration");
        std::fs::write(&self.config_path, text.replacen(from, to, 1)).unwrap();
    }

    pub fn token(&self, account: &str) -> &str {
        &self.account(account).token
    }

    fn account(&self, name: &str) -> &Account {
        self.accounts.iter().find(|a| a.name == name).expect("known account")
    }

    /// Runs the real binary with the app's configuration and tokens.
    pub async fn run_binary(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("binary runs")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.wrapped_command(&[], args)
    }

    /// [`command`](Self::command), started through `wrapper` (a program and
    /// its arguments, such as `prlimit --nofile=...`) that execs the binary
    /// in its own process, so the child's pid is still the daemon's.
    pub fn wrapped_command(&self, wrapper: &[&str], args: &[&str]) -> tokio::process::Command {
        let binary = env!("CARGO_BIN_EXE_aurinko-sync");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(rest).arg(binary);
                cmd
            }
            None => tokio::process::Command::new(binary),
        };
        cmd.arg("--config").arg(&self.config_path).args(args).current_dir(self.dir.path());
        cmd.env_remove("RUST_LOG").env_remove("AURINKO_SYNC_CONFIG");
        for a in &self.accounts {
            cmd.env(&a.env, &a.token);
        }
        cmd.env("TEST_SIGNING_SECRET", SIGNING_SECRET);
        cmd.env(APP_SECRET_ENV, APP_SECRET);
        cmd.kill_on_drop(true);
        cmd
    }

    /// Starts the daemon (`run`); it is killed when dropped. With a
    /// listener, waits until the daemon says where it is (see `listen`).
    pub async fn spawn_daemon(&self) -> Daemon {
        self.start_daemon(self.command(&["run"])).await
    }

    /// `spawn_daemon` with a command of the caller's (`command(&["run"])`
    /// with more settings).
    pub async fn start_daemon(&self, command: tokio::process::Command) -> Daemon {
        let daemon = Daemon::start(command);
        if self.has_listener {
            let addr = daemon.listening_address().await;
            let old = self.listen.lock().unwrap().replace(addr);
            if self.webhook {
                let old = old.map_or("127.0.0.1:0".to_string(), |a| a.to_string());
                self.edit_config(
                    &format!("public_url = \"http://{old}/hook\""),
                    &format!("public_url = \"http://{addr}/hook\""),
                );
            }
        }
        daemon
    }

    /// The listener's address, as the last daemon started reported it.
    pub fn listen(&self) -> std::net::SocketAddr {
        self.listen.lock().unwrap().expect("a daemon with a listener was started")
    }

    /// Polls `check` every 20 ms until it holds or `limit` passes; returns
    /// how long it took.
    pub async fn wait_for(
        &self,
        limit: std::time::Duration,
        what: &str,
        check: impl Fn() -> bool,
    ) -> std::time::Duration {
        let started = std::time::Instant::now();
        while !check() {
            assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        started.elapsed()
    }

    /// Whether the store exists and its events of `account` equal the truth,
    /// identity and content (see [`TestApp::stored_content`]).
    pub fn store_matches_truth(&self, account: &str) -> bool {
        self.store_at.exists()
            && self
                .read_store(|s| s.records(&self.local_name(account), Kind::Calendar))
                .is_ok_and(|records| content_of(records) == self.truth_content(account))
    }

    /// Runs `read` on the app's store, opened for reading as `state` opens
    /// it. PostgreSQL's store blocks on a runtime of its own, which cannot
    /// run inside the test's: then the calls leave the test's runtime
    /// (the test must be `multi_thread`, or outside any runtime).
    pub fn read_store<T>(&self, read: impl FnOnce(&dyn Backend) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match &self.store_at {
            StoreAt::Postgres { .. } => tokio::task::block_in_place(|| read(&*self.store_at.open_read_only()?)),
            StoreAt::Sqlite(_) => read(&*self.store_at.open_read_only()?),
        }
    }

    pub async fn catch_up(&self) -> Output {
        self.run_binary(&["run", "--catch-up"]).await
    }

    /// The engine in this process, for tests that look at its report.
    pub async fn catch_up_in_process(&self) -> CatchUpReport {
        let text = std::fs::read_to_string(&self.config_path).unwrap();
        let config = Config::parse(&text, |var| match var {
            APP_SECRET_ENV => Some(APP_SECRET.to_string()),
            _ => self.accounts.iter().find(|a| a.env == var).map(|a| a.token.clone()),
        })
        .expect("valid config");
        let store = match self.store_at {
            StoreAt::Postgres { .. } => tokio::task::block_in_place(|| self.store_at.open()),
            StoreAt::Sqlite(_) => self.store_at.open(),
        }
        .expect("store opens");
        let engine = Engine::new(config, store).expect("engine");
        engine.catch_up(&CancellationToken::new()).await
    }

    /// The store's events of an account as (calendar, id, etag).
    pub fn stored(&self, account: &str) -> Vec<(String, String, Option<String>)> {
        self.read_store(|s| s.events(&self.local_name(account)))
            .expect("store exists")
            .into_iter()
            .map(|e| (e.calendar_id, e.event_id, e.etag))
            .collect()
    }

    pub fn truth(&self, account: &str) -> Vec<(String, String, Option<String>)> {
        self.fake.truth(self.token(account)).into_iter().map(|e| (e.calendar_id, e.id, Some(e.etag))).collect()
    }

    /// The store's events of an account as (calendar, id, etag, raw JSON):
    /// content as well as identity, so a wrong record under the right etag
    /// is seen.
    pub fn stored_content(&self, account: &str) -> Vec<EventContent> {
        content_of(self.read_store(|s| s.records(&self.local_name(account), Kind::Calendar)).expect("store exists"))
    }

    /// The fake's live events of an account as (calendar, id, etag, the JSON
    /// it serves now), in the store's order.
    pub fn truth_content(&self, account: &str) -> Vec<EventContent> {
        let token = self.token(account);
        let mut calendars: Vec<String> = self.fake.truth(token).into_iter().map(|e| e.calendar_id).collect();
        calendars.dedup();
        calendars
            .into_iter()
            .flat_map(|calendar| {
                let served = self.fake.truth_json(token, &Collection::Calendar(calendar.clone()), None);
                served.into_iter().map(move |v| {
                    let id = v["id"].as_str().expect("the fake's events have ids").to_string();
                    let etag = v["etag"].as_str().map(str::to_string);
                    (calendar.clone(), id, etag, v)
                })
            })
            .collect()
    }

    pub fn assert_store_equals_truth(&self, account: &str) {
        let stored = self.stored_content(account);
        let truth = self.truth_content(account);
        assert!(!truth.is_empty(), "the fake holds events for {account}");
        if stored != truth {
            let key = |e: &EventContent| (e.0.clone(), e.1.clone(), e.2.clone());
            let (s, t): (Vec<_>, Vec<_>) = (stored.iter().map(key).collect(), truth.iter().map(key).collect());
            let missing: Vec<_> = t.iter().filter(|k| !s.contains(k)).take(5).collect();
            let extra: Vec<_> = s.iter().filter(|k| !t.contains(k)).take(5).collect();
            let differing: Vec<_> = stored
                .iter()
                .filter(|e| t.contains(&key(e)) && !truth.contains(e))
                .filter_map(|e| truth.iter().find(|x| key(x) == key(e)).map(|x| (key(e), fields_differing(&e.3, &x.3))))
                .take(3)
                .collect();
            panic!(
                "store differs from the truth for {account}: {} stored, {} true; missing {missing:?}; extra {extra:?}; \
                 same etag, other content {differing:?}",
                stored.len(),
                truth.len()
            );
        }
    }

    /// Compares one mailbox, address book, calendar or task list with the fake, record by record
    /// and field by field (the raw JSON as stored against the JSON the fake
    /// serves now). `body` is the configured email body type.
    pub fn assert_collection_equals_truth(&self, account: &str, collection: &Collection, body: Option<&str>) {
        let (kind, scope) = match collection {
            Collection::Calendar(id) => (Kind::Calendar, id.as_str()),
            Collection::Email => (Kind::Email, "email"),
            Collection::Contacts => (Kind::Contacts, "contacts"),
            Collection::Tasks(id) => (Kind::Tasks, id.as_str()),
        };
        let stored: Vec<(String, serde_json::Value)> = self
            .read_store(|s| s.records(&self.local_name(account), kind))
            .expect("store exists")
            .into_iter()
            .filter(|r| r.collection_id == scope)
            .map(|r| (r.id, serde_json::from_str(&r.raw).expect("raw is JSON")))
            .collect();
        let truth: Vec<(String, serde_json::Value)> = self
            .fake
            .truth_json(self.token(account), collection, body)
            .into_iter()
            .map(|v| (v["id"].as_str().unwrap().to_string(), v))
            .collect();
        assert!(!truth.is_empty(), "the fake holds {collection:?} records for {account}");
        if stored != truth {
            let ids = |v: &[(String, serde_json::Value)]| v.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
            let (s, t) = (ids(&stored), ids(&truth));
            let missing: Vec<_> = t.iter().filter(|id| !s.contains(id)).take(5).collect();
            let extra: Vec<_> = s.iter().filter(|id| !t.contains(id)).take(5).collect();
            let differing: Vec<_> = stored.iter().filter(|r| t.contains(&r.0) && !truth.contains(r)).take(2).collect();
            panic!(
                "{collection:?} of {account} differs: {} stored, {} true; missing {missing:?}; extra {extra:?}; differing {differing:?}",
                stored.len(),
                truth.len()
            );
        }
    }

    pub async fn state_json(&self) -> serde_json::Value {
        let out = self.run_binary(&["state", "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "state --json: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("state --json prints JSON")
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.fake.requests()
    }
}

/// One calendar event: calendar, id, etag, and the record as JSON.
pub type EventContent = (String, String, Option<String>, serde_json::Value);

/// Stored calendar rows as [`EventContent`], their raw text parsed.
fn content_of(records: Vec<aurinko_sync::store::StoredRecord>) -> Vec<EventContent> {
    records
        .into_iter()
        .map(|r| (r.collection_id, r.id, r.etag, serde_json::from_str(&r.raw).expect("raw is JSON")))
        .collect()
}

/// The top-level fields in which two records differ, with both values.
pub fn fields_differing(stored: &serde_json::Value, truth: &serde_json::Value) -> Vec<String> {
    let (Some(s), Some(t)) = (stored.as_object(), truth.as_object()) else {
        return vec![format!("{stored} / {truth}")];
    };
    let keys: std::collections::BTreeSet<&String> = s.keys().chain(t.keys()).collect();
    keys.into_iter()
        .filter(|k| s.get(*k) != t.get(*k))
        .map(|k| format!("{k}: stored {:?}, true {:?}", s.get(k), t.get(k)))
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a run exited with `code`, showing its output if not.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}
