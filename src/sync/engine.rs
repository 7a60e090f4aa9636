//! The engine: accounts, discovery (calendars, task lists) and bounded concurrency around
//! the per-collection driver. `run --catch-up`, the daemon, `demo` and the
//! tests all go through [`Engine::catch_up`].

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::driver::{PassContext, PassReport, run_pass};
use super::machine::{Finish, ReadyPolicy, removal};
use super::progress::Progress;
use super::run_log::RunLog;
use crate::aurinko::{AccountClient, Api, ApiError};
use crate::config::{AccountConfig, CalendarSelection, Config, Credential, Selection};
use crate::model::{
    AppAccount, Calendar, Collection, CollectionKey, ErrorClass, Kind, RunMode, Start, SyncState, discovered_name,
};
use crate::store::{Backend, Change, Outcome, PageRecords, Write, Writer};

pub struct Engine {
    config: Config,
    store: Arc<dyn Backend>,
    writer: Writer,
    api: Arc<Api>,
    accounts: Vec<(AccountConfig, AccountClient)>,
    /// With `[app] accounts = "aurinko"`: the app's own client (its account
    /// list) and what to sync for each account it lists.
    app: Option<(AccountClient, Selection)>,
    /// Discoveries (an account's calendar, task list and folder lists) at
    /// once, in a catch-up and in the daemon: a thousand accounts starting
    /// together do not list their calendars all at once.
    discovering: Semaphore,
    pub progress: Progress,
    /// The run being gathered (`runs`): a catch-up's passes, or the
    /// daemon's since its last batch.
    runs: RunLog,
}

/// Discoveries at once, per `sync.concurrency`.
const DISCOVERIES_PER_CONCURRENCY: usize = 4;

/// What the app's account list said, once recorded in the store.
#[derive(Default)]
pub struct AppListing {
    /// The accounts to sync now, each with its client, as configured ones.
    pub syncable: Vec<(AccountConfig, AccountClient)>,
    /// The listed accounts the app does not sync now (a token that is not
    /// active), by local name, with why.
    pub stopped: Vec<(String, String)>,
    /// Every account listed, as listed.
    pub listed: Vec<AppAccount>,
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

    fn failed(key: CollectionKey, name: Option<String>, class: ErrorClass, message: String) -> CollectionResult {
        let report = PassReport { finish: Some(Finish::Failed { class, message }), ..PassReport::default() };
        CollectionResult { key, name, report }
    }

    pub fn auth_failure(&self) -> Option<&str> {
        match &self.report.finish {
            Some(Finish::Failed { class: ErrorClass::Auth, message }) => Some(message),
            _ => None,
        }
    }
}

/// What to sync for one account right now.
#[derive(Default)]
pub struct Plan {
    pub collections: Vec<Collection>,
    /// Collections that failed before starting (discovery errors).
    pub failed: Vec<CollectionResult>,
    /// Listed kinds (calendars, task lists) whose list is complete: their
    /// discovery succeeded or the account does not sync them, so their
    /// collections missing from `collections` are gone.
    pub complete: Vec<Kind>,
    /// The first listing (calendars, task lists, mail folders) that failed,
    /// after the client's retries: the account's discovery failed. Stored
    /// with the account, and read by the daemon's health.
    pub discovery_error: Option<ApiError>,
    /// Collections the store knows that a complete listing no longer names:
    /// gone. Nothing is removed while planning: whoever runs the plan stops
    /// their passes first, then [`Engine::purge`]s them, so no commit of a
    /// pass still under way can land after the purge and bring them back.
    pub vanished: Vec<CollectionKey>,
}

/// What discovery found of a listed kind.
struct Listed {
    /// The collections to sync, as `(id, name)`.
    selected: Vec<(String, Option<String>)>,
    /// See [`Plan::vanished`].
    vanished: Vec<CollectionKey>,
}

impl Plan {
    pub fn auth_refused(&self) -> Option<&str> {
        self.failed.iter().find_map(CollectionResult::auth_failure)
    }

    /// Whether the plan lists every live collection of `kind`; always true
    /// for account-wide kinds.
    pub fn is_complete(&self, kind: Kind) -> bool {
        kind.listing().is_none() || self.complete.contains(&kind)
    }

    /// Whether every listed kind's discovery succeeded.
    pub fn all_complete(&self) -> bool {
        Kind::LISTED.iter().all(|k| self.is_complete(*k))
    }
}

#[derive(Debug, Default)]
pub struct CatchUpReport {
    pub results: Vec<CollectionResult>,
    /// The app's account list could not be read: its accounts were not synced.
    pub app_error: Option<String>,
    /// Accounts the app lists but does not sync (local name, why).
    pub app_stopped: Vec<(String, String)>,
}

impl CatchUpReport {
    pub fn all_succeeded(&self) -> bool {
        self.app_error.is_none() && self.results.iter().all(CollectionResult::succeeded)
    }
}

impl Engine {
    pub fn new(config: Config, store: Arc<dyn Backend>) -> Result<Engine, String> {
        let instance = config.fleet.as_ref().map(|f| f.instance.as_str());
        let api = Api::new(&config.api, config.app.as_ref(), instance)?;
        let accounts = config
            .accounts
            .iter()
            .map(|a| Ok((a.clone(), api.account(&a.name, &a.credential)?)))
            .collect::<Result<_, String>>()?;
        let app = config.app.as_ref().and_then(|app| {
            let template = app.discover.clone()?;
            Some((api.app_client("app")?, template))
        });
        let writer = Writer::start(store.clone());
        let discovering = Semaphore::new(config.sync.concurrency * DISCOVERIES_PER_CONCURRENCY);
        Ok(Engine {
            config,
            store,
            writer,
            api,
            accounts,
            app,
            discovering,
            progress: Progress::default(),
            runs: RunLog::new(Utc::now()),
        })
    }

    /// Whether the app's accounts are discovered (`[app] accounts = "aurinko"`).
    pub fn discovers_app_accounts(&self) -> bool {
        self.app.is_some()
    }

    /// Lists the app's accounts; `None` when the configuration does not
    /// discover them. Nothing is stored: see [`record_app_listing`](Self::record_app_listing).
    pub async fn list_app_accounts(&self) -> Option<Result<AppListing, ApiError>> {
        let (client, template) = self.app.as_ref()?;
        let listed = match client.list_app_accounts().await {
            Ok(listed) => listed,
            Err(e) => return Some(Err(e)),
        };
        let mut listing = AppListing::default();
        for account in &listed {
            let name = discovered_name(account.id);
            if let Some(why) = account.not_syncable() {
                listing.stopped.push((name, why));
                continue;
            }
            let credential = Credential::App { account_id: account.id };
            let Ok(client) = self.api.account(&name, &credential) else { continue };
            listing.syncable.push((AccountConfig { name, credential, sync: template.clone() }, client));
        }
        listing.listed = listed;
        Some(Ok(listing))
    }

    /// Stores what a listing said: every account's entry, those no longer
    /// listed marked removed (and, with `purge_removed_accounts`, their
    /// rows deleted). Call it once nothing of a removed account runs, so no
    /// commit of theirs can land after the purge.
    pub async fn record_app_listing(&self, listing: &AppListing) {
        let purge_removed = self.config.app.as_ref().is_some_and(|a| a.purge_removed_accounts);
        self.change(Change::AppAccounts { listed: listing.listed.clone(), purge_removed }).await;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.store
    }

    /// Sends a bookkeeping write to the writer; a failure is logged, since
    /// the bookkeeping must not stop the sync itself.
    pub(super) async fn change(&self, change: Change) {
        if let Err(e) = self.writer.change(change).await {
            tracing::error!("store: {e}");
        }
    }

    /// The single writer every write goes through.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The run being gathered: the daemon adds each pass.
    pub fn runs(&self) -> &RunLog {
        &self.runs
    }

    /// Ends the run gathered so far and stores it (nothing when it holds no
    /// pass); runs older than `sync.runs_keep_days` go. A failure to store
    /// it is logged: the history is not worth failing a sync for.
    pub async fn end_run(&self, mode: RunMode) {
        let instance = self.config.fleet.as_ref().map(|f| f.instance.clone());
        let Some(run) = self.runs.end(mode, instance, self.config.sync.runs_keep_days, Utc::now()) else { return };
        if let Err(e) = self.writer.change(Change::Run(run)).await {
            tracing::warn!("the run's history was not stored: {e}");
        }
    }

    /// The configured accounts with their clients.
    pub fn accounts(&self) -> &[(AccountConfig, AccountClient)] {
        &self.accounts
    }

    /// Brings every configured collection to the end of its delta, accounts
    /// in parallel and at most `sync.concurrency` collections at a time.
    /// With app discovery, the accounts the app lists are synced too, each
    /// as `[app.each_account]` says.
    pub async fn catch_up(&self, cancel: &CancellationToken) -> CatchUpReport {
        let mut report = CatchUpReport::default();
        let discovered = match self.list_app_accounts().await {
            None => Vec::new(),
            Some(Ok(listing)) => {
                // Nothing runs yet: removed accounts may be purged at once.
                self.record_app_listing(&listing).await;
                report.app_stopped = listing.stopped;
                listing.syncable
            }
            Some(Err(e)) => {
                tracing::error!("the app's account list failed: {e}");
                report.app_error = Some(e.to_string());
                Vec::new()
            }
        };
        let limit = Arc::new(Semaphore::new(self.config.sync.concurrency));
        let per_account = self.accounts.iter().chain(&discovered).map(|(account, client)| {
            let limit = limit.clone();
            async move { self.catch_up_account(account, client, limit, cancel).await }
        });
        report.results = futures_util::future::join_all(per_account).await.into_iter().flatten().collect();
        report.results.sort_by(|a, b| a.key.cmp(&b.key));
        for result in &report.results {
            self.runs.record(result);
        }
        report
    }

    async fn catch_up_account(
        &self,
        account: &AccountConfig,
        client: &AccountClient,
        limit: Arc<Semaphore>,
        cancel: &CancellationToken,
    ) -> Vec<CollectionResult> {
        let plan = self.plan(account, client).await;
        // No pass of this run has started yet: nothing can undo the purge.
        self.purge(&plan.vanished).await;
        let mut results = plan.failed;
        if results.iter().any(|r| r.auth_failure().is_some()) {
            return results;
        }
        let collections = plan.collections;
        // An auth failure in one collection stops the others of the account.
        let account_cancel = cancel.child_token();
        let mut tasks = JoinSet::new();
        for collection in collections {
            let task = self.task(collection, client, &account_cancel);
            let limit = limit.clone();
            let writer = self.writer.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
                let result = task.run().await;
                if result.report.finish.is_some() {
                    record_outcome(&writer, &result, None).await;
                }
                result
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => {
                    if let Some(message) = result.auth_failure() {
                        account_cancel.cancel();
                        self.record_auth(&account.name, Some(message)).await;
                    }
                    results.push(result);
                }
                Err(e) => tracing::error!(account = %account.name, "collection task failed: {e}"),
            }
        }
        if account_cancel.is_cancelled() && !cancel.is_cancelled() {
            // Collections stopped because the account's token was refused say so.
            for r in results.iter_mut().filter(|r| r.report.finish.is_none()) {
                *r = CollectionResult::failed(
                    r.key.clone(),
                    r.name.clone(),
                    ErrorClass::Auth,
                    "stopped: the account's token was refused".into(),
                );
                record_outcome(&self.writer, r, None).await;
            }
        } else if results.iter().any(CollectionResult::succeeded) {
            self.record_auth(&account.name, None).await;
        }
        results
    }

    /// Runs one pass of a collection, as a task of its own.
    pub fn task(&self, collection: Collection, client: &AccountClient, cancel: &CancellationToken) -> Task {
        Task {
            collection,
            client: client.clone(),
            writer: self.writer.clone(),
            ready: self.ready_policy(),
            known: None,
            cancel: cancel.clone(),
            progress: self.progress.clone(),
        }
    }

    /// Remembers how a pass ended and when the collection is due next,
    /// without waiting: the daemon's passes share transactions this way.
    pub fn record_outcome_later(&self, result: &CollectionResult, next_attempt: Option<chrono::DateTime<Utc>>) {
        self.writer.write_later(outcome_write(result, next_attempt));
    }

    /// The collections to sync for an account, and results for those that
    /// failed before starting (discovery errors).
    pub async fn plan(&self, account: &AccountConfig, client: &AccountClient) -> Plan {
        let mut plan = {
            let _permit = self.discovering.acquire().await.expect("the semaphore is never closed");
            self.discover_all(account, client).await
        };
        let failure = plan.discovery_error.as_ref().map(|e| (e.class, e.to_string()));
        self.change(Change::Discovery { account: account.name.clone(), failure }).await;
        if plan.auth_refused().is_some() {
            return plan;
        }
        if account.sync.contacts {
            plan.collections.push(Collection {
                key: CollectionKey::account_wide(&account.name, Kind::Contacts),
                name: None,
                start: Start::Contacts,
            });
        }
        plan
    }

    /// [`plan`](Engine::plan)'s listings: the listed kinds' collections,
    /// and mail's after a refresh of its folder list.
    async fn discover_all(&self, account: &AccountConfig, client: &AccountClient) -> Plan {
        let mut plan = Plan::default();
        for kind in Kind::LISTED {
            let Some(start) = self.listed_start(account, kind) else {
                plan.complete.push(kind);
                continue;
            };
            match self.discover(kind, account, client).await {
                Ok(Listed { selected: found, vanished }) => {
                    plan.vanished.extend(vanished);
                    self.record_auth(&account.name, None).await;
                    plan.complete.push(kind);
                    plan.collections.extend(found.into_iter().map(|(id, name)| Collection {
                        key: CollectionKey::listed(&account.name, kind, &id),
                        name,
                        start,
                    }));
                }
                Err(e) if e.class == ErrorClass::Auth => {
                    let failed = self.discovery_failed(account, kind, &e).await;
                    return Plan { failed, discovery_error: Some(e), ..Plan::default() };
                }
                Err(e) => {
                    // A flaky list does not stop the collections already known:
                    // they sync as before, and nothing is removed this time.
                    // One line for the failure: `discovery_failed` logs it
                    // when nothing is known to fall back on.
                    let known = self.known(&account.name, Some(kind)).await;
                    if known.is_empty() {
                        plan.failed.extend(self.discovery_failed(account, kind, &e).await);
                    } else {
                        tracing::warn!(
                            account = %account.name,
                            known = known.len(),
                            "{} discovery failed, syncing the ones already known: {e}",
                            kind.noun()
                        );
                    }
                    plan.collections.extend(known.into_iter().map(|key| Collection { name: None, key, start }));
                    plan.discovery_error.get_or_insert(e);
                }
            }
        }
        if let Some(email) = account.sync.email {
            if let Err(e) = self.refresh_folders(account, client).await {
                plan.discovery_error.get_or_insert(e);
            }
            plan.collections.push(Collection {
                key: CollectionKey::account_wide(&account.name, Kind::Email),
                name: None,
                start: Start::Email { days_within: email.days_within, body: email.body },
            });
        }
        plan
    }

    /// How the collections of a listed kind start for an account; `None`
    /// when the account does not sync that kind.
    fn listed_start(&self, account: &AccountConfig, kind: Kind) -> Option<Start> {
        match kind {
            Kind::Calendar if account.sync.calendars == CalendarSelection::Listed(Vec::new()) => None,
            Kind::Calendar => {
                let sync = &self.config.sync;
                Some(Start::Calendar { past_days: sync.window_past_days, future_days: sync.window_future_days })
            }
            Kind::Tasks => account.sync.tasks.map(|t| Start::Tasks { completed_within_days: t.completed_within_days }),
            Kind::Email | Kind::Contacts => None,
        }
    }

    /// Which collections of a listed kind to sync for an account, and which
    /// the store knows that disappeared from a complete listing. Records
    /// what discovery saw.
    async fn discover(&self, kind: Kind, account: &AccountConfig, client: &AccountClient) -> Result<Listed, ApiError> {
        let name = account.name.clone();
        let (selected, present, complete) = match kind {
            Kind::Tasks => {
                let found = client.list_task_lists().await?;
                let present: BTreeSet<String> = found.iter().map(|t| t.id.clone()).collect();
                let selected = unique(found.iter().map(|t| (t.id.clone(), t.title.clone())));
                self.change(Change::TaskLists { account: name, lists: found }).await;
                (selected, present, true)
            }
            _ => {
                let found = client.list_calendars(account.sync.shared_calendars).await?;
                let present: BTreeSet<String> = found.iter().map(|c| c.id.clone()).collect();
                self.change(Change::Calendars { account: name, calendars: found.clone() }).await;
                let selected = self.select_calendars(account, client, &found).await?;
                (selected, present, account.sync.calendars == CalendarSelection::All)
            }
        };
        let vanished = if complete { self.vanished(&account.name, kind, &present).await } else { Vec::new() };
        Ok(Listed { selected, vanished })
    }

    /// The calendars of `found` the account's selection names.
    async fn select_calendars(
        &self,
        account: &AccountConfig,
        client: &AccountClient,
        found: &[Calendar],
    ) -> Result<Vec<(String, Option<String>)>, ApiError> {
        let ids = match &account.sync.calendars {
            CalendarSelection::All => return Ok(unique(found.iter().map(|c| (c.id.clone(), c.name.clone())))),
            CalendarSelection::Listed(ids) => ids,
        };
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
        Ok(selected)
    }

    /// Collections of a listed kind synced before but missing from
    /// discovery: gone.
    async fn vanished(&self, account: &str, kind: Kind, present: &BTreeSet<String>) -> Vec<CollectionKey> {
        let known = self.known(account, Some(kind)).await;
        known.into_iter().filter(|key| !present.contains(&key.id)).collect()
    }

    /// Removes the rows of collections that are gone and marks their state
    /// removed. Call it once no pass of theirs runs (see [`Plan::vanished`]).
    ///
    /// Through the writer, after everything sent to it before: a pass of the
    /// collection that ended just before has its outcome (with its state)
    /// held there for up to a second; committed after the purge, it would
    /// bring the collection back as idle.
    pub async fn purge(&self, vanished: &[CollectionKey]) {
        for key in vanished {
            tracing::info!(collection = %key, "{} no longer listed by Aurinko: removing its records", key.kind.noun());
            let state = match self.writer.load(key.clone()).await {
                Ok(state) => state.unwrap_or_default(),
                Err(e) => {
                    tracing::error!(collection = %key, "store: {e}");
                    continue;
                }
            };
            let commit = removal(&state);
            let write = Write { key: key.clone(), commit: Some(commit), records: PageRecords::None, outcome: None };
            if let Err(e) = self.writer.write(write).await {
                tracing::error!(collection = %key, "store: {e}");
            }
        }
    }

    /// The collections of an account the store knows and has not removed.
    async fn known(&self, account: &str, kind: Option<Kind>) -> Vec<CollectionKey> {
        let name = account.to_string();
        match self.writer.read(move |store| store.live_collections(&name)).await {
            Ok(keys) => keys.into_iter().filter(|k| kind.is_none_or(|kind| k.kind == kind)).collect(),
            Err(e) => {
                tracing::error!(account, "cannot read the store: {e}");
                Vec::new()
            }
        }
    }

    /// Discovery of `kind` failed with nothing to fall back on, or with a
    /// refused token: with a refused token every collection of the account
    /// fails with it; otherwise (or when none is known yet) the kind's
    /// listing itself is reported.
    async fn discovery_failed(&self, account: &AccountConfig, kind: Kind, e: &ApiError) -> Vec<CollectionResult> {
        tracing::error!(account = %account.name, class = %e.class, "{} discovery failed: {e}", kind.noun());
        let message = format!("discovery failed: {e}");
        if e.class == ErrorClass::Auth {
            self.record_auth(&account.name, Some(&e.to_string())).await;
        }
        let known = if e.class == ErrorClass::Auth { self.known(&account.name, None).await } else { Vec::new() };
        let mut results = Vec::new();
        for key in known {
            let result = CollectionResult::failed(key, None, e.class, message.clone());
            record_outcome(&self.writer, &result, None).await;
            results.push(result);
        }
        if results.is_empty() {
            let key = CollectionKey::listed(&account.name, kind, "*");
            results.push(CollectionResult::failed(key, None, e.class, message));
        }
        results
    }

    /// Sets or clears an account's refused-token mark in the store.
    pub async fn record_auth(&self, account: &str, error: Option<&str>) {
        self.change(Change::AccountAuth { account: account.to_string(), error: error.map(str::to_string) }).await;
    }

    fn ready_policy(&self) -> ReadyPolicy {
        let api = &self.config.api;
        ReadyPolicy::new(api.backoff_max, api.ready_timeout)
    }
}

/// One collection's pass, owned so it can run as a task.
pub struct Task {
    collection: Collection,
    client: AccountClient,
    writer: Writer,
    ready: ReadyPolicy,
    /// The state the previous pass ended with, when the caller kept it.
    known: Option<SyncState>,
    cancel: CancellationToken,
    progress: Progress,
}

impl Task {
    /// Starts from `state` (what the previous pass of this collection ended
    /// with) instead of reading it from the store.
    pub fn resuming(mut self, state: Option<SyncState>) -> Task {
        self.known = state;
        self
    }

    /// Loads the stored state and runs one pass, inside a span naming the
    /// collection. The outcome is the caller's to record.
    pub async fn run(self) -> CollectionResult {
        let span = span(&self.collection.key);
        self.run_in(span).await
    }

    /// [`run`](Task::run) inside a span the caller keeps from pass to pass
    /// (making one formats its fields, which an idle pass would notice).
    pub async fn run_in(self, span: tracing::Span) -> CollectionResult {
        self.run_inner().instrument(span).await
    }

    async fn run_inner(self) -> CollectionResult {
        let key = self.collection.key.clone();
        let name = self.collection.name.clone();
        let loaded = match self.known.clone() {
            Some(state) => Ok(Some(state)),
            None => self.writer.load(key.clone()).await,
        };
        // Read every pass, also when the state is kept from the last one:
        // a resync may have been requested since.
        let requested = self.writer.resync_requested(key.clone()).await;
        let (state, requested) = match (loaded, requested) {
            (Ok(state), Ok(requested)) => (state.unwrap_or_else(SyncState::new), requested),
            (Err(e), _) | (_, Err(e)) => {
                return CollectionResult::failed(key, name, ErrorClass::Permanent, format!("cannot load state: {e}"));
            }
        };
        let ctx = PassContext {
            collection: &self.collection,
            client: &self.client,
            writer: &self.writer,
            ready: self.ready,
            cancel: &self.cancel,
            progress: &self.progress,
        };
        let report = run_pass(ctx, state, requested).await;
        CollectionResult { key, name, report }
    }
}

/// The span a collection's passes run in.
pub fn span(key: &CollectionKey) -> tracing::Span {
    tracing::info_span!("sync", account = %key.account, kind = %key.kind, collection = %crate::model::text::inert(&key.id))
}

/// The daemon's line for a pass: info when it changed something (or found
/// the collection gone), warn when it failed, debug when it was idle or
/// stopped, so a thousand quiet collections do not write a thousand journal
/// lines a minute. A catch-up does not log its passes: its summary lines
/// are their record.
pub fn log_pass(result: &CollectionResult) {
    let r = &result.report;
    let key = &result.key;
    let changed = r.stats.upserted + r.stats.deleted + r.stats.swept + r.reprovisions > 0;
    match &r.finish {
        Some(Finish::CaughtUp) if changed => tracing::info!(
            collection = %key,
            kind = %key.kind,
            upserted = r.stats.upserted,
            unchanged = r.stats.unchanged,
            deleted = r.stats.deleted,
            swept = r.stats.swept,
            pages = r.pages,
            duration_ms = r.duration.as_millis() as u64,
            "caught up"
        ),
        Some(Finish::CaughtUp) => tracing::debug!(
            collection = %key,
            unchanged = r.stats.unchanged,
            pages = r.pages,
            duration_ms = r.duration.as_millis() as u64,
            "caught up, nothing changed"
        ),
        Some(Finish::Removed) => tracing::info!(collection = %key, "gone upstream: records purged"),
        Some(Finish::Failed { class, message }) => {
            tracing::warn!(collection = %key, class = %class, "sync failed: {message}")
        }
        None => tracing::debug!(collection = %key, "stopped"),
    }
}

/// Stores how a pass ended, with the state it kept back, in one write.
async fn record_outcome(writer: &Writer, result: &CollectionResult, next_attempt: Option<chrono::DateTime<Utc>>) {
    if let Err(e) = writer.write(outcome_write(result, next_attempt)).await {
        tracing::error!(collection = %result.key, "cannot record the pass's outcome: {e}");
    }
}

fn outcome_write(result: &CollectionResult, next_attempt: Option<chrono::DateTime<Utc>>) -> Write {
    let error = match &result.report.finish {
        Some(Finish::Failed { class, message }) => Some((class.as_str().to_string(), message.clone())),
        _ => None,
    };
    Write {
        key: result.key.clone(),
        commit: result.report.pending.clone(),
        records: PageRecords::None,
        outcome: Some(Outcome { error, next_attempt }),
    }
}

/// `(id, name)` pairs in listing order, each id once: a collection listed
/// twice is synced once.
fn unique(listed: impl Iterator<Item = (String, Option<String>)>) -> Vec<(String, Option<String>)> {
    let mut seen = BTreeSet::new();
    listed.filter(|(id, _)| seen.insert(id.clone())).collect()
}
