//! A fake Aurinko API server for tests, benchmarks and the `demo` command.
//!
//! It serves, over real HTTP and as the official OpenAPI spec describes them:
//! - calendars: `GET /v1/calendars`, `GET /v1/calendars/{id}`, `POST /v1/calendars/{id}/sync`
//!   and `GET /v1/calendars/{id}/sync/{updated,deleted}`;
//! - email: `POST /v1/email/sync?daysWithin=&bodyType=` and `GET /v1/email/sync/{updated,deleted}`
//!   (`EmailMessagesPage`, `EmailDeletedPage`);
//! - contacts: `POST /v1/contacts/sync` and `GET /v1/contacts/sync/{updated,deleted}`
//!   (`ContactsPage`, `DeletedPage`);
//! - tasks: `GET /v1/tasklists` (`TaskListPage`), `GET /v1/tasklists/{id}`,
//!   `POST /v1/tasklists/{id}/sync?skipCompletedBeforeDate=` and
//!   `GET /v1/tasklists/{id}/sync/{updated,deleted}` (`SyncTasksPage`, `DeletedPage`);
//! - `GET /v1/account` (`ApiAccountOutDto`);
//! - the account OAuth flow: `GET /v1/auth/authorize` (consent given at once, or refused on
//!   request) and `POST /v1/auth/token/{code}` (`AccountSaveResult`, a new account);
//! - `GET /v1/email/folders` (`EmailFolderInfoPage`), the folders the messages are filed in;
//! - webhooks: `GET`/`POST /v1/subscriptions` and `GET`/`DELETE /v1/subscriptions/{id}`, with the
//!   notification URL validation handshake, and signed notifications to the subscribers after
//!   every change made through this type's mutation methods.
//!
//! It is strict where real Aurinko is strict (required parameters, RFC 3339 windows, `daysWithin`
//! a positive integer, `bodyType` `html` or `text`, `skipCompletedBeforeDate` RFC 3339 with an
//! offset, exactly one of `deltaToken`/`pageToken`,
//! tokens bound to their account, collection, stream and epoch). Faults, latency and a rate
//! limit can be switched on to exercise a client's error handling, and every request is logged
//! for assertions.
//!
//! Every account has a mailbox and an address book (empty until generated) besides its
//! calendars; each is a [`Collection`] with its own change log, tombstones and tokens, and each
//! provisioning goes through `not_ready_polls` `ready:false` answers. Email specifics: the
//! initial updated pass reports the live messages received within `daysWithin` days of the
//! `POST` (all without it), later deltas every changed message; messages carry `body` in the
//! provisioning's `bodyType` (kept in its tokens), or list `"body"` in `omitted` without one.
//! Task specifics: task lists come and go like calendars; the initial updated pass leaves out
//! tasks completed before `skipCompletedBeforeDate`, later deltas report every changed task.
//!
//! Module map:
//! - `data`: accounts, calendars, the per-collection stores and change logs, and the paging logic;
//! - `generate`: the varied, seeded event and calendar records; `mail`: messages; `contacts`:
//!   contacts; `tasks`: tasks and task lists;
//! - `tokens`: the opaque, stateless delta and page tokens;
//! - `faults`: injected failures ([`Faults`], [`FaultKind`]); `limits`: the per-token rate limit;
//! - `routes`: the axum handler; `reply`: a response before it becomes HTTP; `error`:
//!   `ApiRequestFailed` bodies; `log`: the request log ([`RequestRecord`]);
//! - `account`: `GET /v1/account`; `oauth`: the account OAuth flow (`GET /v1/auth/authorize`,
//!   `POST /v1/auth/token/{code}`), whose exchange creates an account; `webhooks`: subscriptions, handshake, notifications
//!   ([`WebhookFaults`], [`Delivery`]); `subscription`: a subscription request waiting for its
//!   handshake (the router hands it to the webhook code; neither imports the other's internals);
//! - `hold`: a page request held until a test releases it ([`PageHold`]);
//! - `http_client`: the client for webhook deliveries.
//!
//! A crate of its own (`crates/aurinko-fake`): aurinko-sync's tests and benchmark use it as a
//! dev-dependency, and its `demo` and `fake` commands through the default-on `fake` feature, so a
//! build without that feature carries no test server.

mod account;
mod app;
mod connections;
mod contacts;
mod data;
mod error;
mod faults;
mod folders;
mod generate;
mod hold;
mod http_client;
mod limits;
mod log;
mod mail;
mod oauth;
mod reply;
mod routes;
mod subscription;
mod tasks;
mod tokens;
mod webhooks;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_app;
#[cfg(test)]
mod tests_collections;
#[cfg(test)]
mod tests_oauth;
#[cfg(test)]
mod tests_tasks;
#[cfg(test)]
mod tests_webhooks;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use app::ACCOUNT_ID_HEADER;
pub use data::TokenStatus;
pub use error::ExpiredAnswer;
pub use faults::{FaultKind, FaultScope, Faults};
pub use hold::PageHold;
pub use log::{Endpoint, RequestRecord};
pub use oauth::Authorization;
pub use webhooks::{Delivery, WebhookFaults};

use data::Data;
use limits::RateLimiter;
use tokens::BodyType;

/// How the fake behaves; every field can also be changed later through a setter.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Records per page for every `/sync/updated`, `/sync/deleted` and `/calendars` (minimum 1).
    pub page_size: usize,
    /// Each provisioning (`POST .../sync`) answers `ready:false` this many times per collection
    /// before `ready:true`; the next `POST` after a ready answer starts over.
    pub not_ready_polls: u32,
    /// Injected failures.
    pub faults: Faults,
    /// Which requests they may hit (default every request).
    pub fault_scope: FaultScope,
    /// Added before every response.
    pub latency: Duration,
    /// Requests per second per account token; beyond it, 429 with `Retry-After: 1`.
    pub rate_limit_per_sec: Option<u32>,
    /// The delay the faults with a `Retry-After` announce ([`FaultKind::announces_retry_after`]):
    /// `Retry-After: {retry_after_secs}`, or for [`FaultKind::TooManyRequestsDate`] an HTTP-date
    /// `retry_after_secs + 1` s ahead (now when 0), so at least `retry_after_secs` once cut to
    /// whole seconds. Default 1; 0 lets fast tests skip the pause.
    pub retry_after_secs: u64,
    /// Extra delay of a [`FaultKind::Latency`] fault (default [`FaultKind::LATENCY`], 300 ms).
    pub latency_fault: Duration,
    /// How long a [`FaultKind::Stall`] holds the request before dropping the connection
    /// (default [`FaultKind::STALL`], 2 s).
    pub stall: Duration,
    /// Makes generated data, tokens and fault choices repeatable.
    pub seed: u64,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            page_size: 100,
            not_ready_polls: 0,
            faults: Faults::default(),
            fault_scope: FaultScope::Every,
            latency: Duration::ZERO,
            rate_limit_per_sec: None,
            retry_after_secs: 1,
            latency_fault: FaultKind::LATENCY,
            stall: FaultKind::STALL,
            seed: 0,
        }
    }
}

/// Ground truth for assertions: one live event of a live calendar.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TruthEvent {
    pub calendar_id: String,
    pub id: String,
    pub etag: String,
    pub subject: Option<String>,
}

/// One synchronisable collection of an account: a calendar (by id, or the alias `primary`), the
/// mailbox, the address book, or a task list (by id, or the alias `default`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    Calendar(String),
    Email,
    Contacts,
    Tasks(String),
}

/// Ground truth for assertions: one live record of a collection.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TruthRecord {
    pub id: String,
    /// `etag` for events, contacts and tasks, `lastModifiedTime` for messages (which have no
    /// etag).
    pub version: String,
    /// Messages only: `receivedAt`, exactly as served (RFC 3339, UTC, milliseconds).
    pub received_at: Option<String>,
}

/// Everything behind the fake's one lock.
pub(crate) struct Shared {
    options: FakeOptions,
    data: Data,
    /// Separate from the data RNG so that turning faults on does not change the data.
    fault_rng: StdRng,
    /// What is left of the current round of fault kinds ([`Faults::kinds`]).
    fault_round: Vec<FaultKind>,
    limiter: RateLimiter,
    log: Vec<RequestRecord>,
    requests_seen: u64,
    /// [`FaultKind::Stall`]s that ran their whole length: the client waited them out instead
    /// of timing out (hyper drops a request's handler when its client hangs up).
    stalls_waited_out: usize,
    webhooks: webhooks::Webhooks,
    /// `GET /v1/email/folders` answers 500.
    folders_failing: bool,
    /// The request to hold (see [`FakeAurinko::hold_next_page`]).
    held: Option<hold::Held>,
    /// Set by [`FakeAurinko::set_app_credentials`]: app requests are accepted.
    app: Option<app::AppCredentials>,
    /// The account OAuth flow: codes handed out, and its knobs.
    oauth: oauth::OAuth,
}

impl Shared {
    /// A UUID-shaped, repeatable request id for error bodies.
    fn next_request_id(&mut self) -> String {
        self.requests_seen += 1;
        let seed = self.options.seed;
        let a = tokens::fnv1a(seed, &self.requests_seen.to_be_bytes());
        let b = tokens::fnv1a(a, &seed.to_be_bytes());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48 & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

/// The fake Aurinko: data, behaviour knobs and request log; cheap to clone (shared state).
///
/// Every record mutation method (`generate*`, `create*`, `update*`, `delete*`, `mutate_random*`)
/// also notifies the matching active webhook subscriptions: one signed notification per changed
/// record, sent from a spawned task when called inside a tokio runtime (see
/// [`FakeAurinko::deliveries`] and [`FakeAurinko::wait_webhooks_idle`]).
#[derive(Clone)]
pub struct FakeAurinko {
    shared: Arc<Mutex<Shared>>,
}

impl Default for FakeAurinko {
    fn default() -> Self {
        Self::new(FakeOptions::default())
    }
}

impl FakeAurinko {
    pub fn new(options: FakeOptions) -> Self {
        let shared = Shared {
            data: Data::new(options.seed, options.not_ready_polls),
            fault_rng: StdRng::seed_from_u64(options.seed ^ 0xfa17_fa17_fa17_fa17),
            fault_round: Vec::new(),
            limiter: RateLimiter::default(),
            log: Vec::new(),
            requests_seen: 0,
            stalls_waited_out: 0,
            webhooks: webhooks::Webhooks::new(options.seed),
            folders_failing: false,
            held: None,
            app: None,
            oauth: oauth::OAuth::default(),
            options,
        };
        Self { shared: Arc::new(Mutex::new(shared)) }
    }

    /// Runs `f` under the lock; never held across an await.
    fn with<R>(&self, f: impl FnOnce(&mut Shared) -> R) -> R {
        let mut guard = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Adds an account reachable with `token`; `name` is what the request log shows.
    pub fn add_account(&self, name: &str, token: &str) {
        self.with(|s| s.data.add_account(name, token));
    }

    /// Adds a calendar to the account of `token` (no-op for an unknown token). Marking it
    /// primary makes it the target of the `primary` alias and unmarks the previous one.
    pub fn add_calendar(&self, token: &str, calendar_id: &str, name: &str, primary: bool) {
        self.with(|s| s.data.add_calendar(token, calendar_id, name, primary));
    }

    /// Marks a calendar as shared with the user: `GET /calendars` lists it only with
    /// `withShared=true`; its other endpoints answer as for any calendar. False when the account
    /// has no such calendar.
    pub fn set_calendar_shared(&self, token: &str, calendar_id: &str, shared: bool) -> bool {
        self.with(|s| s.data.set_calendar_shared(token, calendar_id, shared))
    }

    /// Adds `count` seeded, varied events (singles, all-day, series with occurrences).
    pub fn generate_events(&self, token: &str, calendar_id: &str, count: usize) {
        self.generate(token, &Collection::Calendar(calendar_id.to_string()), count);
    }

    /// Creates one event and returns its id (empty when the calendar does not exist).
    pub fn create_event(&self, token: &str, calendar_id: &str) -> String {
        self.create(token, &Collection::Calendar(calendar_id.to_string()))
    }

    /// Creates a timed event from `start` to `end`, whenever that is (for instance long before
    /// any window a client would provision with), and returns its id (empty when the calendar
    /// does not exist).
    pub fn create_event_at(
        &self,
        token: &str,
        calendar_id: &str,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let collection = Collection::Calendar(calendar_id.to_string());
        self.mutate(|s| s.data.store_of(token, &collection).and_then(|store| s.data.create_event_at(store, start, end)))
            .unwrap_or_default()
    }

    /// New etag, later `lastModifiedTime`, different subject; false when there is no such event.
    pub fn update_event(&self, token: &str, calendar_id: &str, event_id: &str) -> bool {
        self.update(token, &Collection::Calendar(calendar_id.to_string()), event_id)
    }

    /// Deletes the event, leaving a tombstone for `/sync/deleted`.
    pub fn delete_event(&self, token: &str, calendar_id: &str, event_id: &str) -> bool {
        self.delete(token, &Collection::Calendar(calendar_id.to_string()), event_id)
    }

    /// `count` seeded random creates, updates and deletes over the account's live calendars
    /// (calendars only; see [`FakeAurinko::mutate_random_in`] for the others).
    pub fn mutate_random(&self, token: &str, count: usize) {
        self.mutate(|s| s.data.mutate_random(token, count));
    }

    /// Adds `count` seeded, varied records to a collection (no-op for an unknown token or a
    /// missing calendar): events as [`FakeAurinko::generate_events`]; messages received over the
    /// last ~60 days (about half of them more than 30 days ago); contacts.
    pub fn generate(&self, token: &str, collection: &Collection, count: usize) {
        self.mutate(|s| {
            if let Some(store) = s.data.store_of(token, collection) {
                s.data.generate(store, count);
            }
        });
    }

    /// Creates one record now and returns its id (empty when the collection does not exist). A
    /// created message has just arrived: `receivedAt` now, in the inbox, unread.
    pub fn create(&self, token: &str, collection: &Collection) -> String {
        self.mutate(|s| s.data.store_of(token, collection).map(|store| s.data.create(store))).unwrap_or_default()
    }

    /// Changes a live record: later `lastModifiedTime` and different content (events: new etag
    /// and subject; messages: `unread` flips, sometimes `flagged`; contacts: new etag and notes).
    /// False when there is no such record.
    pub fn update(&self, token: &str, collection: &Collection, id: &str) -> bool {
        self.mutate(|s| s.data.store_of(token, collection).is_some_and(|store| s.data.update(store, id)))
    }

    /// Changes a live event's subject or contact's notes without a new etag or
    /// `lastModifiedTime` (a provider may do that); the next delta reports the record. False when
    /// there is no such record, or for messages (which have no etag).
    pub fn update_keeping_etag(&self, token: &str, collection: &Collection, id: &str) -> bool {
        self.mutate(|s| s.data.store_of(token, collection).is_some_and(|store| s.data.update_keeping_etag(store, id)))
    }

    /// Deletes a live record, leaving a tombstone for `/sync/deleted`.
    pub fn delete(&self, token: &str, collection: &Collection, id: &str) -> bool {
        self.mutate(|s| s.data.store_of(token, collection).is_some_and(|store| s.data.delete(store, id)))
    }

    /// `count` seeded random changes in one collection: about 40 % creates, 40 % updates, 20 %
    /// deletes (creates while it is empty).
    pub fn mutate_random_in(&self, token: &str, collection: &Collection, count: usize) {
        self.mutate(|s| {
            if let Some(store) = s.data.store_of(token, collection) {
                s.data.mutate_random_in(store, count);
            }
        });
    }

    /// The calendar disappears from `GET /calendars` and its endpoints answer 404.
    pub fn remove_calendar(&self, token: &str, calendar_id: &str) {
        self.with(|s| s.data.remove_calendar(token, calendar_id));
    }

    /// While `on`, the collection's sync endpoints (`POST .../sync`, `.../sync/updated`,
    /// `.../sync/deleted`) answer 404 `notFound`, as Aurinko does when the token may not read
    /// the collection (a mailbox or an address book cannot be deleted). A calendar stays listed
    /// and `GET /calendars/{id}` still answers 200.
    pub fn set_sync_not_found(&self, token: &str, collection: &Collection, on: bool) {
        self.with(|s| {
            if let Some(store) = s.data.store_of(token, collection) {
                s.data.set_sync_not_found(store, on);
            }
        });
    }

    /// While `on`, every delta request of the collection (`.../sync/updated`, `.../sync/deleted`),
    /// whatever its token, answers 400 `badRequest` with nothing saying the token expired: a
    /// permanent failure to a client. Provisioning (`POST .../sync`) still works.
    pub fn set_delta_refused(&self, token: &str, collection: &Collection, on: bool) {
        self.with(|s| {
            if let Some(store) = s.data.store_of(token, collection) {
                s.data.set_delta_refused(store, on);
            }
        });
    }

    /// Adds a task list to the account of `token` (no-op for an unknown token), or revives and
    /// renames one with that id. Marking it the default makes it the target of the `default`
    /// alias and unmarks the previous one.
    pub fn add_task_list(&self, token: &str, task_list_id: &str, title: &str, default: bool) {
        self.with(|s| s.data.add_task_list(token, task_list_id, title, default));
    }

    /// The task list disappears from `GET /tasklists` and its endpoints answer 404.
    pub fn remove_task_list(&self, token: &str, task_list_id: &str) {
        self.with(|s| s.data.remove_task_list(token, task_list_id));
    }

    /// Ids of the account's live task lists, in `GET /tasklists` order.
    pub fn task_list_ids(&self, token: &str) -> Vec<String> {
        self.with(|s| s.data.task_list_ids(token))
    }

    /// The tasks of a list that a fresh provisioning with `skipCompletedBeforeDate` set to
    /// `skip_completed_before` reports on its first pass (every open task, and the completed
    /// ones completed at or after it), sorted by id.
    pub fn truth_tasks_since(
        &self,
        token: &str,
        task_list_id: &str,
        skip_completed_before: chrono::DateTime<chrono::Utc>,
    ) -> Vec<TruthRecord> {
        let range = (skip_completed_before.timestamp_millis() - 1, i64::MAX);
        let collection = Collection::Tasks(task_list_id.to_string());
        self.with(|s| s.data.store_of(token, &collection).map(|store| s.data.truth_records(store, range)))
            .unwrap_or_default()
    }

    /// Every delta and page token issued so far for this account (calendars, email and
    /// contacts) answers 410 `syncToken.expired` (or as [`FakeAurinko::set_expired_answer`] says).
    pub fn expire_tokens(&self, token: &str) {
        self.with(|s| s.data.expire_tokens(token));
    }

    /// While `on`, the last page of every `/sync/updated` and `/sync/deleted` drain carries
    /// neither `nextDeltaToken` nor `nextPageToken` (the spec does not promise a delta token).
    pub fn set_omit_next_delta_token(&self, on: bool) {
        self.with(|s| s.data.omit_next_delta_token = on);
    }

    /// How tokens expired by [`FakeAurinko::expire_tokens`] are refused (410 by default).
    pub fn set_expired_answer(&self, answer: ExpiredAnswer) {
        self.with(|s| s.data.expired_answer = answer);
    }

    /// Every request with this token answers 401 `token.dead`, whatever the collection.
    pub fn kill_token(&self, token: &str) {
        self.with(|s| s.data.kill_token(token));
    }

    /// Makes `GET /v1/email/folders` answer 500 every time (or serve again).
    pub fn set_folders_failing(&self, failing: bool) {
        self.with(|s| s.folders_failing = failing);
    }

    pub fn set_faults(&self, faults: Faults) {
        self.with(|s| {
            s.options.faults = faults;
            s.fault_round.clear();
        });
    }

    /// See [`FakeOptions::fault_scope`].
    pub fn set_fault_scope(&self, scope: FaultScope) {
        self.with(|s| s.options.fault_scope = scope);
    }

    pub fn set_page_size(&self, n: usize) {
        self.with(|s| s.options.page_size = n.max(1));
    }

    /// Also restarts the count for provisionings already in progress.
    pub fn set_not_ready_polls(&self, n: u32) {
        self.with(|s| {
            s.options.not_ready_polls = n;
            s.data.set_not_ready_polls(n);
        });
    }

    pub fn set_latency(&self, d: Duration) {
        self.with(|s| s.options.latency = d);
    }

    pub fn set_rate_limit(&self, per_sec: Option<u32>) {
        self.with(|s| s.options.rate_limit_per_sec = per_sec);
    }

    /// See [`FakeOptions::retry_after_secs`].
    pub fn set_retry_after_secs(&self, secs: u64) {
        self.with(|s| s.options.retry_after_secs = secs);
    }

    /// See [`FakeOptions::latency_fault`].
    pub fn set_latency_fault(&self, d: Duration) {
        self.with(|s| s.options.latency_fault = d);
    }

    /// See [`FakeOptions::stall`].
    pub fn set_stall(&self, d: Duration) {
        self.with(|s| s.options.stall = d);
    }

    /// Live events of the account's live calendars, sorted by `(calendar_id, id)`.
    pub fn truth(&self, token: &str) -> Vec<TruthEvent> {
        self.with(|s| s.data.truth(token))
    }

    /// Live records of one collection, sorted by id, with their version (etag, or
    /// `lastModifiedTime` for messages) and, for messages, `receivedAt`. Empty for an unknown
    /// token or a missing calendar.
    pub fn truth_records(&self, token: &str, collection: &Collection) -> Vec<TruthRecord> {
        self.with(|s| s.data.store_of(token, collection).map(|store| s.data.truth_records(store, (i64::MIN, i64::MAX))))
            .unwrap_or_default()
    }

    /// The messages of the account's mailbox received within the last `days` days (by the same
    /// rule `POST /email/sync?daysWithin=` applies: `receivedAt` later than now minus `days`),
    /// sorted by id: what a fresh provisioning with that `daysWithin` reports on its first pass.
    pub fn truth_records_within(&self, token: &str, days: u32) -> Vec<TruthRecord> {
        let cutoff = data::now_millis().timestamp_millis() - i64::from(days) * DAY_MS;
        self.with(|s| {
            s.data.store_of(token, &Collection::Email).map(|store| s.data.truth_records(store, (cutoff, i64::MAX)))
        })
        .unwrap_or_default()
    }

    /// Live records of one collection, sorted by id, each as the exact JSON the fake would
    /// serve now. `body_type` matters for messages only: `Some("html")` or `Some("text")` as a
    /// provisioning with that `bodyType` gets them, anything else as one without (no `body`,
    /// `"body"` in `omitted`).
    pub fn truth_json(&self, token: &str, collection: &Collection, body_type: Option<&str>) -> Vec<serde_json::Value> {
        let body = match body_type {
            Some("html") => BodyType::Html,
            Some("text") => BodyType::Text,
            _ => BodyType::Omitted,
        };
        self.with(|s| s.data.store_of(token, collection).map(|store| s.data.truth_json(store, body)))
            .unwrap_or_default()
    }

    /// Ids of the account's live calendars, in `GET /calendars` order.
    pub fn calendar_ids(&self, token: &str) -> Vec<String> {
        self.with(|s| s.data.calendar_ids(token))
    }

    /// Every request received so far, in the order they were answered.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.with(|s| s.log.clone())
    }

    pub fn clear_requests(&self) {
        self.with(|s| s.log.clear());
    }

    /// How many [`FaultKind::Stall`]s the client waited out to the end rather than giving up
    /// first: 0 when every stall was a client timeout.
    pub fn stalls_waited_out(&self) -> usize {
        self.with(|s| s.stalls_waited_out)
    }

    /// Binds `addr` (port 0 picks a free port) and serves in a tokio task.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (listener, open) = connections::Counted::new(listener);
        let stop = CancellationToken::new();
        let serve =
            axum::serve(listener, routes::router(self.clone())).with_graceful_shutdown(stop.clone().cancelled_owned());
        let task = tokio::spawn(async move { serve.await });
        Ok(FakeServer { addr, stop, task: Some(task), open })
    }

    /// A ready-made data set: account `demo` with `calendars` calendars (the first primary,
    /// ids in Google and Office 365 shapes) of `events_per_calendar` generated events each,
    /// `events_per_calendar` messages, `min(events_per_calendar, 300)` contacts, and two task
    /// lists of `min(events_per_calendar, 200)` tasks each.
    pub fn demo(events_per_calendar: usize, calendars: usize, seed: u64) -> (Self, String) {
        let fake = Self::new(FakeOptions { seed, ..FakeOptions::default() });
        let token = format!("demo-token-{seed}");
        fake.add_account("demo", &token);
        for n in 0..calendars {
            let (id, name) = match n {
                0 => ("demo@example.com".to_string(), "Demo".to_string()),
                n if n % 3 == 1 => (
                    format!("c_{:016x}{n}@group.calendar.google.com", tokens::fnv1a(seed, &n.to_be_bytes())),
                    format!("Équipe {n} 🗓"),
                ),
                n if n % 3 == 2 => (
                    format!("AAMkADk0ZjU{:x}-{n}_AAA=", tokens::fnv1a(seed, &n.to_be_bytes())),
                    format!("Team \"{n}\""),
                ),
                n => (format!("cal-{n}"), format!("Calendar {n}")),
            };
            fake.add_calendar(&token, &id, &name, n == 0);
            fake.generate_events(&token, &id, events_per_calendar);
        }
        fake.generate(&token, &Collection::Email, events_per_calendar);
        fake.generate(&token, &Collection::Contacts, events_per_calendar.min(300));
        for (id, title, default) in [("demo-tasks", "Tasks", true), ("demo-errands", "Errands ✓", false)] {
            fake.add_task_list(&token, id, title, default);
            fake.generate(&token, &Collection::Tasks(id.to_string()), events_per_calendar.min(200));
        }
        (fake, token)
    }
}

pub(crate) const DAY_MS: i64 = 86_400_000;

/// A running fake server; stops on [`FakeServer::shutdown`] or when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
    open: Arc<AtomicUsize>,
}

impl FakeServer {
    /// `http://HOST:PORT/v1`, the base URL a client is configured with.
    pub fn base_url(&self) -> String {
        let host = match self.addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
            ip if ip.is_unspecified() => "[::1]".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        format!("http://{host}:{}/v1", self.addr.port())
    }

    /// How many client connections the server holds open. Zero after a
    /// client process has ended means every request it sent has been
    /// answered and logged, or dropped unanswered: none can be logged later.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), then returns.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
