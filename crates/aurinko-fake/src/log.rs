//! The request log: what the fake received and answered, for tests and benchmarks to assert on
//! (refetched pages, retries after faults, requests per endpoint). Tokens never appear in it:
//! the account is recorded by name.

use super::{Collection, FaultKind};

/// The API operation a request addressed. The sync operations of every collection share the
/// `Sync*` variants; [`RequestRecord::collection`] tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /v1/calendars` (operation `calendars`).
    ListCalendars,
    /// `GET /v1/calendars/{id}` (operation `calendarById`).
    GetCalendar,
    /// `GET /v1/tasklists` (operation `taskListsList`).
    ListTaskLists,
    /// `GET /v1/tasklists/{id}` (operation `taskList`).
    GetTaskList,
    /// `POST /v1/calendars/{id}/sync`, `POST /v1/email/sync`, `POST /v1/contacts/sync`,
    /// `POST /v1/tasklists/{id}/sync` (operations `calSyncStart`, `emailSyncStart`,
    /// `contSyncStart`, `taskSyncStart`).
    SyncStart,
    /// `GET .../sync/updated` (operations `calSyncUpdated`, `emailSyncUpdated`, `contSyncUpdated`,
    /// `taskSyncUpdated`).
    SyncUpdated,
    /// `GET .../sync/deleted` (operations `calSyncDeleted`, `emailSyncDeleted`, `contSyncDeleted`,
    /// `taskSyncDeleted`).
    SyncDeleted,
    /// `GET /v1/account` (operation `getMyAccount`).
    Account,
    /// `GET /v1/am/accounts` (operation `getAccounts`): the app's accounts.
    AppAccounts,
    /// `/v1/subscriptions` and `/v1/subscriptions/{id}`: list (`GET`, operation
    /// `getSubscriptions`), create (`POST`, `subscribe`), get (`GET .../{id}`, `getSubscription`)
    /// and delete (`DELETE .../{id}`, `unsubscribe`); [`RequestRecord::method`] and
    /// [`RequestRecord::path`] tell them apart.
    Subscriptions,
    /// `GET /v1/email/folders` (operation `folders`).
    Folders,
    /// `GET /v1/auth/authorize` (operation `authorize`): the start of the account OAuth flow.
    Authorize,
    /// `POST /v1/auth/token/{code}` (operation `authCodeExchange`; `GET`, the deprecated
    /// `getAccessTokenByCode`, too).
    AuthToken,
    /// Anything else (answered 404 or 405).
    Other,
}

/// One request as received, and how it was answered.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// Account name (never the token); `None` when the token was missing or unknown.
    pub account: Option<String>,
    /// The `User-Agent` the client sent (at most 200 bytes of it): tells the instances of a
    /// fleet apart.
    pub user_agent: Option<String>,
    pub method: String,
    /// Path without the query, e.g. `/v1/calendars/cal-1/sync/updated`.
    pub path: String,
    pub endpoint: Endpoint,
    /// The calendar addressed: the real id when the path's id (or `primary`) resolved to a live
    /// calendar of the account, otherwise the id as written in the path. `None` for email and
    /// contacts.
    pub calendar_id: Option<String>,
    /// The collection addressed: `Calendar(id)` for the per-calendar endpoints (id as in
    /// `calendar_id`), `Tasks(id)` for the per-task-list ones (the id as written in the path),
    /// `Email` and `Contacts` for theirs; `None` for `GET /calendars`, `GET /tasklists`, the
    /// account and subscription endpoints and unknown paths.
    pub collection: Option<Collection>,
    /// `deltaToken` and `pageToken` query parameters as sent.
    pub delta_token: Option<String>,
    pub page_token: Option<String>,
    /// The query parameters of a `POST .../sync` as sent, decoded (`timeMin`, `daysWithin`,
    /// `skipCompletedBeforeDate`, ...), and of a `GET /v1/auth/authorize` (`clientId`,
    /// `scopes`, `returnUrl`, `state`, ...); empty for other requests.
    pub start_params: Vec<(String, String)>,
    /// The HTTP status answered, or [`RequestRecord::NO_ANSWER`] when a fault left the client
    /// nothing to use (a reset connection, a body cut short): a filter on 200 sees only answers
    /// a client could use, and `fault` tells which fault it was.
    pub status: u16,
    /// The injected fault, if any (rate-limit 429s are not faults).
    pub fault: Option<FaultKind>,
    /// Tokens and record count of a successful page (sync pages and `GET /calendars`); for the
    /// subscription endpoints, the number of subscriptions answered.
    pub next_page_token: Option<String>,
    pub next_delta_token: Option<String>,
    pub records: usize,
    /// When the request was received (after the configured latency), for assertions on the
    /// spacing of retries.
    pub at: std::time::Instant,
}

impl RequestRecord {
    /// The logged status of a faulted exchange that gave the client no usable answer; not an
    /// HTTP status, so it never matches one.
    pub const NO_ANSWER: u16 = 0;
}
