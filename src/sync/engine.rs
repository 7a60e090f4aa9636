//! The engine: accounts, calendar discovery and bounded concurrency around
//! the per-calendar driver. `run --catch-up`, the daemon, `demo` and the
//! tests all go through [`Engine::catch_up`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::driver::{PassContext, PassReport, run_pass};
use super::machine::{Commit, Finish, ReadyPolicy};
use super::progress::Progress;
use super::state::{Phase, SyncState, Window};
use crate::aurinko::{AccountClient, Api, ApiError, Calendar, ErrorClass};
use crate::config::{AccountConfig, CalendarSelection, Config};
use crate::store::{CollectionKey, KIND_CALENDAR, PageRecords, Store};

pub struct Engine {
    config: Config,
    store: Arc<Store>,
    accounts: Vec<(AccountConfig, AccountClient)>,
    pub progress: Progress,
}

/// How one collection fared in a catch-up.
#[derive(Debug, Clone)]
pub struct CollectionResult {
    pub key: CollectionKey,
    pub name: Option<String>,
    pub report: PassReport,
}

impl CollectionResult {
    pub fn succeeded(&self) -> bool {
        matches!(self.report.finish, Some(Finish::CaughtUp | Finish::Removed))
    }
}

#[derive(Debug, Default)]
pub struct CatchUpReport {
    pub results: Vec<CollectionResult>,
}

impl CatchUpReport {
    pub fn all_succeeded(&self) -> bool {
        self.results.iter().all(CollectionResult::succeeded)
    }
}

impl Engine {
    pub fn new(config: Config, store: Arc<Store>) -> Result<Engine, String> {
        let api = Api::new(&config.api)?;
        let accounts = config.accounts.iter().map(|a| (a.clone(), api.account(a.token.clone()))).collect();
        Ok(Engine { config, store, accounts, progress: Progress::default() })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Brings every configured calendar to the end of its delta, accounts
    /// in parallel and at most `sync.concurrency` calendars at a time.
    pub async fn catch_up(&self, cancel: &CancellationToken) -> CatchUpReport {
        let limit = Arc::new(Semaphore::new(self.config.sync.concurrency));
        let window = Window::around(Utc::now(), self.config.sync.window_past_days, self.config.sync.window_future_days);
        let per_account = self.accounts.iter().map(|(account, client)| {
            let limit = limit.clone();
            async move { self.catch_up_account(account, client, window, limit, cancel).await }
        });
        let mut results: Vec<CollectionResult> =
            futures_util::future::join_all(per_account).await.into_iter().flatten().collect();
        results.sort_by(|a, b| a.key.cmp(&b.key));
        CatchUpReport { results }
    }

    async fn catch_up_account(
        &self,
        account: &AccountConfig,
        client: &AccountClient,
        window: Window,
        limit: Arc<Semaphore>,
        cancel: &CancellationToken,
    ) -> Vec<CollectionResult> {
        let calendars = match self.discover(account, client).await {
            Ok(calendars) => calendars,
            Err(e) => return self.account_failed(account, &e).await,
        };
        self.record_auth(&account.name, None).await;
        // An auth failure in one calendar stops the others of the account.
        let account_cancel = cancel.child_token();
        let mut tasks = JoinSet::new();
        for (calendar_id, name) in calendars {
            let key = CollectionKey::calendar(&account.name, &calendar_id);
            let ctx = Task {
                key,
                name,
                client: client.clone(),
                store: self.store.clone(),
                window,
                ready: self.ready_policy(),
                cancel: account_cancel.clone(),
                progress: self.progress.clone(),
            };
            let limit = limit.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
                ctx.run().await
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let result = match joined {
                Ok(result) => result,
                Err(e) => {
                    tracing::error!(account = %account.name, "calendar task failed: {e}");
                    continue;
                }
            };
            if let Some(Finish::Failed { class: ErrorClass::Auth, message }) = &result.report.finish {
                account_cancel.cancel();
                self.record_auth(&account.name, Some(message)).await;
            }
            results.push(result);
        }
        // Calendars stopped because the account's token was refused say so.
        if account_cancel.is_cancelled() && !cancel.is_cancelled() {
            for r in results.iter_mut().filter(|r| r.report.finish.is_none()) {
                r.report.finish = Some(Finish::Failed {
                    class: ErrorClass::Auth,
                    message: "stopped: the account's token was refused".into(),
                });
                self.record_outcome(r).await;
            }
        }
        results
    }

    /// Which calendars to sync for an account, as `(id, name)`. Records what
    /// discovery saw, and removes calendars that disappeared from it.
    async fn discover(
        &self,
        account: &AccountConfig,
        client: &AccountClient,
    ) -> Result<Vec<(String, Option<String>)>, ApiError> {
        let found = client.list_calendars().await?;
        let store = self.store.clone();
        let name = account.name.clone();
        let saved = found.clone();
        blocking(move || store.save_calendars(&name, &saved, Utc::now())).await;
        let selected: Vec<(String, Option<String>)> = match &account.calendars {
            CalendarSelection::All => found.iter().map(|c| (c.id.clone(), c.name.clone())).collect(),
            CalendarSelection::Listed(ids) => {
                let mut selected = Vec::new();
                for id in ids {
                    let calendar = if id == "primary" {
                        match found.iter().find(|c| c.primary) {
                            Some(c) => Some(c.clone()),
                            None => Some(client.get_calendar("primary").await?),
                        }
                    } else {
                        found.iter().find(|c| &c.id == id).cloned()
                    };
                    match calendar {
                        Some(Calendar { id, name, .. }) => selected.push((id, name)),
                        // Not listed (a shared calendar, say): sync it anyway;
                        // a 404 will mark it removed.
                        None => selected.push((id.clone(), None)),
                    }
                }
                selected.sort();
                selected.dedup_by(|a, b| a.0 == b.0);
                selected
            }
        };
        if account.calendars == CalendarSelection::All {
            self.purge_vanished(&account.name, &found).await;
        }
        Ok(selected)
    }

    /// Calendars synced before but missing from discovery are gone: their
    /// events are removed and their state marked removed.
    async fn purge_vanished(&self, account: &str, found: &[Calendar]) {
        let present: BTreeSet<&str> = found.iter().map(|c| c.id.as_str()).collect();
        let store = self.store.clone();
        let known = match store.report() {
            Ok(report) => report.collections,
            Err(e) => {
                tracing::error!(account, "cannot read the store: {e}");
                return;
            }
        };
        for c in known.into_iter().filter(|c| {
            c.account == account
                && c.kind == KIND_CALENDAR
                && c.phase != Phase::Removed.as_str()
                && !present.contains(c.id.as_str())
        }) {
            let key = CollectionKey::calendar(account, &c.id);
            let mut state = store.load_state(&key).ok().flatten().unwrap_or_default();
            state.phase = Phase::Removed;
            state.updated = Default::default();
            state.deleted = Default::default();
            state.reconciling = false;
            let commit = Commit { state, sweep_below: None, purge: true };
            let store = store.clone();
            tracing::info!(calendar = %key, "calendar no longer listed by Aurinko: removing its events");
            blocking(move || store.commit(&key, &commit, &PageRecords::None, Utc::now()).map(drop)).await;
        }
    }

    async fn account_failed(&self, account: &AccountConfig, e: &ApiError) -> Vec<CollectionResult> {
        tracing::error!(account = %account.name, class = %e.class, "calendar discovery failed: {e}");
        if e.class == ErrorClass::Auth {
            self.record_auth(&account.name, Some(&e.to_string())).await;
        }
        let report = PassReport {
            finish: Some(Finish::Failed { class: e.class, message: format!("discovery failed: {e}") }),
            stats: Default::default(),
            pages: 0,
            rejected: 0,
            duration: Duration::ZERO,
        };
        // Report every calendar the store knows for the account, or the
        // account itself when it never synced.
        let known: Vec<String> = self
            .store
            .report()
            .map(|r| {
                r.collections
                    .into_iter()
                    .filter(|c| c.account == account.name && c.phase != Phase::Removed.as_str())
                    .map(|c| c.id)
                    .collect()
            })
            .unwrap_or_default();
        let ids = if known.is_empty() { vec!["*".to_string()] } else { known };
        let mut results = Vec::new();
        for id in ids {
            let result = CollectionResult {
                key: CollectionKey::calendar(&account.name, &id),
                name: None,
                report: report.clone(),
            };
            if id != "*" {
                self.record_outcome(&result).await;
            }
            results.push(result);
        }
        results
    }

    async fn record_auth(&self, account: &str, error: Option<&str>) {
        let store = self.store.clone();
        let account = account.to_string();
        let error = error.map(str::to_string);
        blocking(move || store.record_account_auth(&account, error.as_deref(), Utc::now())).await;
    }

    async fn record_outcome(&self, result: &CollectionResult) {
        record_outcome(&self.store, result).await;
    }

    fn ready_policy(&self) -> ReadyPolicy {
        let api = &self.config.api;
        ReadyPolicy { first_delay: api.backoff_base * 2, max_delay: api.backoff_max, timeout: api.ready_timeout }
    }
}

/// One calendar's pass, owned so it can run as a task.
struct Task {
    key: CollectionKey,
    name: Option<String>,
    client: AccountClient,
    store: Arc<Store>,
    window: Window,
    ready: ReadyPolicy,
    cancel: CancellationToken,
    progress: Progress,
}

impl Task {
    async fn run(self) -> CollectionResult {
        let store = self.store.clone();
        let key = self.key.clone();
        let state = match tokio::task::spawn_blocking(move || store.load_state(&key)).await {
            Ok(Ok(state)) => state.unwrap_or_else(SyncState::new),
            Ok(Err(e)) => return self.failed(format!("cannot load state: {e}")),
            Err(e) => return self.failed(format!("cannot load state: {e}")),
        };
        let ctx = PassContext {
            key: &self.key,
            client: &self.client,
            store: &self.store,
            window: self.window,
            ready: self.ready,
            cancel: &self.cancel,
            progress: &self.progress,
        };
        let report = run_pass(ctx, state).await;
        let result = CollectionResult { key: self.key.clone(), name: self.name.clone(), report };
        let r = &result.report;
        match &r.finish {
            Some(Finish::CaughtUp) => tracing::info!(
                collection = %self.key,
                upserted = r.stats.upserted,
                unchanged = r.stats.unchanged,
                deleted = r.stats.deleted,
                swept = r.stats.swept,
                pages = r.pages,
                duration_ms = r.duration.as_millis() as u64,
                "caught up"
            ),
            Some(Finish::Removed) => tracing::info!(collection = %self.key, "gone upstream: events purged"),
            Some(Finish::Failed { class, message }) => {
                tracing::warn!(collection = %self.key, class = %class, "sync failed: {message}")
            }
            None => tracing::info!(collection = %self.key, "stopped"),
        }
        if r.finish.is_some() {
            record_outcome(&self.store, &result).await;
        }
        result
    }

    fn failed(&self, message: String) -> CollectionResult {
        CollectionResult {
            key: self.key.clone(),
            name: self.name.clone(),
            report: PassReport {
                finish: Some(Finish::Failed { class: ErrorClass::Permanent, message }),
                stats: Default::default(),
                pages: 0,
                rejected: 0,
                duration: Duration::ZERO,
            },
        }
    }
}

async fn record_outcome(store: &Arc<Store>, result: &CollectionResult) {
    let error = match &result.report.finish {
        Some(Finish::Failed { class, message }) => Some((class.as_str().to_string(), message.clone())),
        _ => None,
    };
    let store = store.clone();
    let key = result.key.clone();
    blocking(move || {
        let error = error.as_ref().map(|(c, m)| (c.as_str(), m.as_str()));
        store.record_outcome(&key, error, None, Utc::now())
    })
    .await;
}

/// Runs a store call on the blocking pool; a failure is logged, since the
/// bookkeeping it does must not stop the sync itself.
async fn blocking<E: std::fmt::Display + Send + 'static>(f: impl FnOnce() -> Result<(), E> + Send + 'static) {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("store: {e}"),
        Err(e) => tracing::error!("store task: {e}"),
    }
}
