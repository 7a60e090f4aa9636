//! The Aurinko HTTP client: an account's bearer token or the app's
//! credentials acting for it, retries with full jitter, the per-account rate
//! limit, and decoding of the sync envelopes.
//!
//! Every request goes through [`AccountClient::call`], which is the one place
//! where an HTTP outcome becomes an [`ApiError`] with its class.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::value::RawValue;
use tokio_retry::RetryIf;
use tokio_retry::strategy::{ExponentialBackoff, jitter};

use super::error::{
    ApiError, Endpoint, classify, classify_transport, classify_undecodable, describe_status, describe_transport, peer,
    truncate,
};
use super::politeness::{Politeness, parse_retry_after};
use super::wire::{
    AccountInfo, AccountsPage, ApiRequestFailed, ListPage, RawSyncPage, Subscription, SubscriptionsPage, SyncStatus,
    WholeSyncPage,
};
use crate::config::{ApiConfig, AppConfig, Credential};
use crate::model::text::{inert, redact};
use crate::model::{AppAccount, Calendar, EmailFolder, ErrorClass, Provision, Record, Rejected, TaskList, TokenRef};
use crate::user_terms::Document;

/// The most pages a listing is followed for: a server handing out fresh
/// page tokens forever must not hold discovery up.
const MAX_LIST_PAGES: usize = 1000;

/// Error bodies are read only this far; a proxy's HTML page is not useful.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The most pages of the app's account list followed: 1,000,000 accounts.
const MAX_ACCOUNT_PAGES: usize = 10_000;

/// Accounts asked for per page of `GET /am/accounts`.
const ACCOUNTS_PER_PAGE: usize = 100;

/// The header naming the account an app request acts for (the spec's
/// `AccountIdHeader`; not `X-Aurinko-AccountId`).
const ACCOUNT_ID_HEADER: &str = "X-Aurinko-Account-Id";

/// The shared HTTP side: one connection pool for every account.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    config: ApiConfig,
    app: Option<Arc<AppCredentials>>,
}

/// The app's client id and secret (`[app]`).
struct AppCredentials {
    client_id: String,
    secret: SecretString,
    /// `base64(client_id:secret)` as the `Authorization` header carries it:
    /// redacted like the secret wherever a server echoes it.
    encoded: SecretString,
}

/// How a client's requests authenticate.
#[derive(Clone)]
enum Auth {
    Bearer(SecretString),
    /// The app's credentials, for one account (`X-Aurinko-Account-Id`) or,
    /// without one, for the app's own requests (its account list).
    App {
        app: Arc<AppCredentials>,
        account_id: Option<i64>,
    },
}

/// A client bound to one account: its credentials and its politeness budget.
#[derive(Clone)]
pub struct AccountClient {
    api: Arc<Api>,
    /// The local account name, for metrics labels.
    account: Arc<str>,
    auth: Auth,
    politeness: Arc<Politeness>,
}

/// One page of a delta stream. A page token means more pages follow; a last
/// page carries the next delta token, or (the spec does not promise it)
/// neither token: the machine decides what that means.
#[derive(Debug)]
pub struct SyncPage<R> {
    pub next_page_token: Option<String>,
    pub next_delta_token: Option<String>,
    /// Each record as the caller's parser made it.
    pub records: Vec<R>,
}

impl Api {
    /// `instance` (a fleet's) is named in the `User-Agent`, so the other
    /// side can tell the instances apart.
    pub fn new(config: &ApiConfig, app: Option<&AppConfig>, instance: Option<&str>) -> Result<Arc<Api>, String> {
        let base = Url::parse(&format!("{}/", config.base_url)).map_err(|e| format!("api.base_url: {e}"))?;
        let http = crate::http_client::builder()
            .user_agent(match instance {
                Some(id) => format!("aurinko-sync/{} (instance {id})", env!("CARGO_PKG_VERSION")),
                None => concat!("aurinko-sync/", env!("CARGO_PKG_VERSION")).to_string(),
            })
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let app = app.map(|app| {
            use base64::Engine as _;
            let pair = format!("{}:{}", app.client_id, app.client_secret.expose_secret());
            Arc::new(AppCredentials {
                client_id: app.client_id.clone(),
                secret: app.client_secret.clone(),
                encoded: SecretString::from(base64::engine::general_purpose::STANDARD.encode(pair)),
            })
        });
        Ok(Arc::new(Api { http, base, config: config.clone(), app }))
    }

    /// A client for the account `name`, with its own politeness budget.
    /// `Credential::App` needs the app's credentials (`[app]`).
    pub fn account(self: &Arc<Self>, name: &str, credential: &Credential) -> Result<AccountClient, String> {
        let auth = match credential {
            Credential::Token(token) => Auth::Bearer(token.clone()),
            Credential::App { account_id } => {
                let app = self.app.clone().ok_or_else(|| format!("account {name}: [app] credentials are missing"))?;
                Auth::App { app, account_id: Some(*account_id) }
            }
        };
        Ok(self.client(name, auth))
    }

    /// The client for the app's own requests (its account list), when the
    /// configuration has `[app]`; `label` names it in metrics.
    pub fn app_client(self: &Arc<Self>, label: &str) -> Option<AccountClient> {
        let app = self.app.clone()?;
        Some(self.client(label, Auth::App { app, account_id: None }))
    }

    fn client(self: &Arc<Self>, name: &str, auth: Auth) -> AccountClient {
        AccountClient {
            api: self.clone(),
            account: name.into(),
            auth,
            politeness: Arc::new(Politeness::new(self.config.requests_per_second)),
        }
    }

    /// Exponential backoff doubling from the configured base, capped, with
    /// full jitter; its length bounds the attempts per request.
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let half_base = (self.config.backoff_base.as_millis() as u64 / 2).max(1);
        ExponentialBackoff::from_millis(2)
            .factor(half_base)
            .max_delay(self.config.backoff_max)
            .map(jitter)
            .take(self.config.max_attempts.saturating_sub(1) as usize)
    }

    /// The URL of `segments` under the base, each one percent-encoded as
    /// one path segment (`/`, `\\`, `%`, `?`, `#`, spaces and non-ASCII
    /// included, by the `url` crate). An id that cannot be a segment is
    /// refused rather than sent: `.` and `..` are dot segments (the `url`
    /// crate skips them, and a server or proxy normalising the path would
    /// climb with them even percent-encoded), and an empty one would make
    /// `//`. The request fails as permanent, so only the collection that
    /// holds such an id fails.
    pub(super) fn url(&self, endpoint: Endpoint, segments: &[&str]) -> Result<Url, ApiError> {
        if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            return Err(ApiError {
                class: ErrorClass::Permanent,
                endpoint,
                status: None,
                code: None,
                message: format!("the id \"{}\" cannot be a URL path segment; nothing was requested", inert(bad)),
            });
        }
        let mut url = self.base.clone();
        url.path_segments_mut().expect("http base URLs have a path").pop_if_empty().extend(segments);
        Ok(url)
    }
}

impl AccountClient {
    /// The shared side this client sends through.
    pub(super) fn api(&self) -> &Api {
        &self.api
    }

    /// `GET /calendars`, following `nextPageToken` to the end; with
    /// `with_shared`, calendars shared with the user are listed too.
    pub async fn list_calendars(&self, with_shared: bool) -> Result<Vec<Calendar>, ApiError> {
        let query: &[(&str, &str)] = if with_shared { &[("withShared", "true")] } else { &[] };
        self.list_all(Endpoint::ListCalendars, &["calendars"], query, Calendar::from_raw).await
    }

    /// `GET /tasklists`, following `nextPageToken` to the end.
    pub async fn list_task_lists(&self) -> Result<Vec<TaskList>, ApiError> {
        self.list_all(Endpoint::ListTaskLists, &["tasklists"], &[], TaskList::from_raw).await
    }

    /// A token-paged listing to its end, every page with `query`; records
    /// without an id are skipped. A page token seen before ends it; a
    /// listing still going after [`MAX_LIST_PAGES`] pages is an error (not
    /// a short list, which would make calendars look removed).
    async fn list_all<T>(
        &self,
        endpoint: Endpoint,
        path: &[&str],
        query: &[(&str, &str)],
        record: impl Fn(&RawValue) -> Option<T>,
    ) -> Result<Vec<T>, ApiError> {
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut url = self.api.url(endpoint, path)?;
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            if let Some(token) = &page_token {
                url.query_pairs_mut().append_pair("pageToken", token);
            }
            let page: ListPage = self.call(endpoint, Method::GET, url, decode_json).await?;
            all.extend(page.records.unwrap_or_default().iter().filter_map(|r| record(r)));
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if seen.insert(next.clone()) => page_token = Some(next),
                _ => return Ok(all),
            }
        }
        Err(ApiError {
            class: ErrorClass::Permanent,
            endpoint,
            status: None,
            code: None,
            message: format!("the listing did not end after {MAX_LIST_PAGES} pages"),
        })
    }

    /// `GET /email/folders`, following `nextPageToken` to the end.
    pub async fn list_folders(&self) -> Result<Vec<EmailFolder>, ApiError> {
        self.list_all(Endpoint::Folders, &["email", "folders"], &[], EmailFolder::from_raw).await
    }

    /// `GET /calendars/{id}`; `id` may be the alias `primary`.
    pub async fn get_calendar(&self, id: &str) -> Result<Calendar, ApiError> {
        let url = self.api.url(Endpoint::GetCalendar, &["calendars", id])?;
        self.call(Endpoint::GetCalendar, Method::GET, url, |body| {
            let raw: Box<RawValue> = decode_json(body)?;
            Calendar::from_raw(&raw).ok_or_else(|| "calendar without an id".to_string())
        })
        .await
    }

    /// `GET {root}`: answers `Ok` while the collection exists. Used after a
    /// 404 on its sync endpoints, to tell a removed collection from one the
    /// token may not sync; the body does not matter.
    pub async fn get_collection(&self, root: &[&str]) -> Result<(), ApiError> {
        let url = self.api.url(Endpoint::GetCollection, root)?;
        self.call(Endpoint::GetCollection, Method::GET, url, |_| Ok(())).await
    }

    /// `POST {root}/sync` with the collection's start parameters.
    pub async fn start_sync(&self, root: &[&str], params: &[(&str, String)]) -> Result<Provision, ApiError> {
        let mut url = self.api.url(Endpoint::SyncStart, &[root, &["sync"]].concat())?;
        url.query_pairs_mut().extend_pairs(params);
        self.call(Endpoint::SyncStart, Method::POST, url, |body| {
            let status: SyncStatus = decode_json(body)?;
            match (status.ready, status.sync_updated_token, status.sync_deleted_token) {
                (Some(true), Some(updated), Some(deleted)) if !updated.is_empty() && !deleted.is_empty() => {
                    Ok(Provision::Ready { updated_token: updated, deleted_token: deleted })
                }
                (Some(true), _, _) => Err("ready without both delta tokens".to_string()),
                _ => Ok(Provision::NotReady),
            }
        })
        .await
    }

    /// One page of `{root}/sync/updated` or `{root}/sync/deleted`: the first
    /// request of a drain carries the delta token, follow-ups the page token
    /// alone.
    pub async fn sync_page<R>(
        &self,
        root: &[&str],
        endpoint: Endpoint,
        token: TokenRef<'_>,
        record: impl Fn(Result<Record<'_>, Rejected>) -> R,
    ) -> Result<SyncPage<R>, ApiError> {
        let leaf = match endpoint {
            Endpoint::SyncDeleted => "deleted",
            _ => "updated",
        };
        let mut url = self.api.url(endpoint, &[root, &["sync", leaf]].concat())?;
        match token {
            TokenRef::Delta(t) => url.query_pairs_mut().append_pair("deltaToken", t),
            TokenRef::Page(t) => url.query_pairs_mut().append_pair("pageToken", t),
        };
        self.call(endpoint, Method::GET, url, |body| sync_page_of(body, &record)).await
    }

    /// `GET /account`: the account's numeric id, which webhook
    /// notifications use to name it.
    pub async fn account_id(&self) -> Result<i64, ApiError> {
        let url = self.api.url(Endpoint::Account, &["account"])?;
        self.call(Endpoint::Account, Method::GET, url, |body| {
            let account: AccountInfo = decode_json(body)?;
            account.id.ok_or_else(|| "account without an id".to_string())
        })
        .await
    }

    /// `GET /am/accounts` (the app's client only), following its offset
    /// paging to the end: every account the app has connected, each id once.
    /// Records without a usable id are skipped.
    pub async fn list_app_accounts(&self) -> Result<Vec<AppAccount>, ApiError> {
        let mut all: Vec<AppAccount> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut offset = 0usize;
        for _ in 0..MAX_ACCOUNT_PAGES {
            let mut url = self.api.url(Endpoint::AppAccounts, &["am", "accounts"])?;
            url.query_pairs_mut()
                .append_pair("limit", &ACCOUNTS_PER_PAGE.to_string())
                .append_pair("offset", &offset.to_string());
            let page: AccountsPage = self.call(Endpoint::AppAccounts, Method::GET, url, decode_json).await?;
            let records = page.records.unwrap_or_default();
            let count = records.len();
            offset += count;
            all.extend(records.iter().filter_map(|r| AppAccount::from_raw(r)).filter(|a| ids.insert(a.id)));
            let total = page.total_size.map(|t| t.max(0) as usize);
            if count == 0 || page.done == Some(true) || total.is_some_and(|t| offset >= t) {
                return Ok(all);
            }
        }
        tracing::warn!(
            accounts = all.len(),
            "the app's account list goes on past {MAX_ACCOUNT_PAGES} pages; syncing those listed"
        );
        Ok(all)
    }

    /// `GET /subscriptions`, following its offset paging to the end,
    /// inactive subscriptions included.
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, ApiError> {
        const LIMIT: usize = 50;
        let mut all: Vec<Subscription> = Vec::new();
        loop {
            let mut url = self.api.url(Endpoint::Subscriptions, &["subscriptions"])?;
            url.query_pairs_mut()
                .append_pair("limit", &LIMIT.to_string())
                .append_pair("offset", &all.len().to_string())
                .append_pair("includeInactive", "true");
            let page: SubscriptionsPage = self.call(Endpoint::Subscriptions, Method::GET, url, decode_json).await?;
            let mut records = page.records.unwrap_or_default();
            for record in &mut records {
                record.fail_description = record.fail_description.as_deref().map(|d| inert(d).into_owned());
            }
            let count = records.len();
            all.extend(records);
            let total = page.total_size.map(|t| t.max(0) as usize);
            if count == 0 || page.done == Some(true) || total.is_some_and(|t| all.len() >= t) {
                return Ok(all);
            }
        }
    }

    /// `POST /subscriptions` with the `DataConsumerFilter`s to apply (left
    /// out of the request when there are none). Aurinko checks the URL (its
    /// validation handshake) before answering, so the receiver must be up.
    pub async fn create_subscription(
        &self,
        resource: &str,
        notification_url: &str,
        filters: &[&str],
    ) -> Result<Subscription, ApiError> {
        let url = self.api.url(Endpoint::Subscriptions, &["subscriptions"])?;
        let mut body = serde_json::json!({ "resource": resource, "notificationUrl": notification_url });
        if !filters.is_empty() {
            body["filters"] = serde_json::json!(filters);
        }
        self.call_with(Endpoint::Subscriptions, Method::POST, url, Some(&body), decode_json).await
    }

    /// `DELETE /subscriptions/{id}`.
    pub async fn delete_subscription(&self, id: i64) -> Result<(), ApiError> {
        let url = self.api.url(Endpoint::Subscriptions, &["subscriptions", &id.to_string()])?;
        self.call(Endpoint::Subscriptions, Method::DELETE, url, |_| Ok(())).await
    }

    /// Sends a request with retries. Transient failures (including bodies
    /// that `decode` rejects) are retried with backoff; other classes return
    /// at once.
    async fn call<T>(
        &self,
        endpoint: Endpoint,
        method: Method,
        url: Url,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        self.call_with(endpoint, method, url, None, decode).await
    }

    /// [`call`](Self::call) with an optional JSON body.
    async fn call_with<T>(
        &self,
        endpoint: Endpoint,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        let decode = &decode;
        RetryIf::start(
            self.api.backoff(),
            || self.attempt(endpoint, method.clone(), url.clone(), body, decode),
            |e: &ApiError| e.class.is_retryable(),
        )
        .await
        .map_err(|e| self.inert_error(e))
    }

    /// An error as it may be logged, shown and stored: server text in it
    /// (Aurinko's message and code, what a decoder quoted from a body) made
    /// inert, and the account's token redacted wherever a server echoed it.
    pub(super) fn inert_error(&self, e: ApiError) -> ApiError {
        let clean = |s: &str| inert(&self.redacted(s)).into_owned();
        ApiError { message: clean(&e.message), code: e.code.as_deref().map(clean), ..e }
    }

    /// `s` without this client's secrets: the token, or the app's secret
    /// and its `Authorization` encoding.
    fn redacted(&self, s: &str) -> String {
        match &self.auth {
            Auth::Bearer(token) => redact(s, token.expose_secret()).into_owned(),
            Auth::App { app, .. } => {
                let s = redact(s, app.encoded.expose_secret());
                redact(&s, app.secret.expose_secret()).into_owned()
            }
        }
    }

    pub(super) async fn attempt<T>(
        &self,
        endpoint: Endpoint,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        decode: &impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        self.politeness.wait_turn().await;
        let peer = peer(&url);
        let transport = |e: reqwest::Error| ApiError {
            class: classify_transport(&e),
            endpoint,
            status: e.status().map(|s| s.as_u16()),
            code: None,
            message: describe_transport(&e, &peer),
        };
        let mut request = self.api.http.request(method, url).header(reqwest::header::ACCEPT, "application/json");
        request = match &self.auth {
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
            Auth::App { app, account_id } => {
                let request = request.basic_auth(&app.client_id, Some(app.secret.expose_secret()));
                match account_id {
                    Some(id) => request.header(ACCOUNT_ID_HEADER, id.to_string()),
                    None => request,
                }
            }
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            self.count(endpoint, "error");
            transport(e)
        })?;
        let status = response.status();
        tracing::debug!(endpoint = endpoint.as_str(), status = status.as_u16(), "aurinko response");
        self.count(endpoint, status.as_str());
        if status == StatusCode::TOO_MANY_REQUESTS {
            metrics::counter!("aurinko_sync_rate_limited_total", "account" => self.account.to_string()).increment(1);
        }
        if status.is_success() {
            let limit = self.api.config.max_response_bytes;
            let body = read_success_body(response, endpoint, limit, transport).await?;
            return decode(&body).map_err(|why| ApiError {
                class: classify_undecodable(),
                endpoint,
                status: Some(status.as_u16()),
                code: None,
                message: format!("response body did not decode: {why}"),
            });
        }
        // Retry-After is documented for 429 and 408, and proxies send it
        // with 503; wherever it comes, the whole account waits it out.
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT
        ) {
            let delay = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            if let Some(delay) = delay {
                self.politeness.pause_for(delay);
            }
        }
        let body = read_error_body(response).await;
        let failed: Option<ApiRequestFailed> = serde_json::from_slice(&body).ok();
        // The server's words are redacted before they are cut, so that no
        // part of an echoed token survives the cut; `call_with` escapes them.
        let words = |s: &str, max| truncate(&self.redacted(s), max).to_string();
        let code = failed.as_ref().and_then(|f| f.code.as_deref()).map(|c| words(c, 64));
        let class = classify(status.as_u16(), &body, endpoint);
        let text = failed.as_ref().and_then(|f| f.message.as_deref()).map(|m| words(m, 200));
        let request_id = failed.as_ref().and_then(|f| f.request_id.as_deref()).map(|id| words(id, 64));
        let message = describe_status(status, endpoint, code.as_deref(), text.as_deref(), request_id.as_deref());
        Err(ApiError { class, endpoint, status: Some(status.as_u16()), code, message })
    }
}

impl AccountClient {
    /// Counts a request by endpoint and outcome (an HTTP status, or `error`
    /// for a transport failure). Labels are bounded: no ids.
    fn count(&self, endpoint: Endpoint, status: &str) {
        metrics::counter!(
            "aurinko_sync_requests_total",
            "account" => self.account.to_string(),
            "endpoint" => endpoint.as_str(),
            "status" => status.to_string()
        )
        .increment(1);
    }
}

/// Decodes an envelope. Every Aurinko answer is a JSON object; serde would
/// also read a struct from an array, position by position, so anything but
/// an object is refused first.
/// [`decode_object`] for owned types: as a plain function it can be passed
/// where a decoder must take a body of any lifetime.
pub(super) fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    decode_object(body)
}

/// Decodes a sync page, each record handed to `record` split into its
/// fields (or rejected as no record).
fn sync_page_of<R>(body: &[u8], record: impl Fn(Result<Record<'_>, Rejected>) -> R) -> Result<SyncPage<R>, String> {
    let tokens =
        |page: Option<String>, delta: Option<String>| (page.filter(|t| !t.is_empty()), delta.filter(|t| !t.is_empty()));
    // Without `decode_object`'s path tracking, which would copy the name
    // of every field of every record: a page that does not decode is read
    // again the other way, and its error comes from there. Decoded, its
    // strings are text; the rest of a body is ASCII.
    // (A struct also decodes from a JSON array: only an object is a page.)
    let one_pass = is_object(body)
        .then(|| serde_json::from_slice::<RawSyncPage<'_>>(body).ok())
        .flatten()
        .zip(std::str::from_utf8(body).ok())
        .and_then(|(page, text)| {
            let placed: Option<Vec<_>> =
                page.records.unwrap_or_default().into_iter().map(|r| r.in_body(text)).collect();
            placed.map(|placed| (tokens(page.next_page_token, page.next_delta_token), placed))
        });
    let ((next_page_token, next_delta_token), records) = match one_pass {
        Some((tokens, placed)) => (tokens, placed.into_iter().map(record).collect()),
        // The page read the other way: its records whole, then split one
        // by one (and a body that is no page gets its error from here).
        None => {
            let page: WholeSyncPage<'_> = decode_object(body)?;
            let records = page.records.unwrap_or_default().into_iter().map(|raw| record(Record::parse(raw))).collect();
            (tokens(page.next_page_token, page.next_delta_token), records)
        }
    };
    Ok(SyncPage { next_page_token, next_delta_token, records })
}

/// Whether a body begins as a JSON object does.
fn is_object(body: &[u8]) -> bool {
    body.trim_ascii_start().first() == Some(&b'{')
}

/// Decodes a JSON object, possibly borrowing from `body`.
fn decode_object<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    if !is_object(body) {
        return Err("not a JSON object".to_string());
    }
    let in_words = |e: &serde_json::Error| crate::user_terms::serde_message(&e.to_string(), Document::Json);
    let mut json = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|e| match e.path().to_string().as_str() {
        "." => in_words(e.inner()),
        field => format!("field {field}: {}", in_words(e.inner())),
    })?;
    // Only whitespace may follow the object, as `serde_json::from_slice` requires.
    json.end().map_err(|e| in_words(&e))?;
    Ok(value)
}

/// Reads a body as it streams in into `body`, stopping at `limit` bytes;
/// whether it ended within them. reqwest decodes gzip on the way, so the
/// bytes counted are the decoded ones: a small compressed body cannot
/// expand without bound. Every body the client reads goes through here.
async fn read_up_to(
    response: &mut reqwest::Response,
    limit: usize,
    body: &mut Vec<u8>,
) -> Result<bool, reqwest::Error> {
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(false);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(true)
}

/// A success body, whole, or the error saying it is larger than `limit`: a
/// `Content-Length` above it is refused before anything is read.
async fn read_success_body(
    mut response: reqwest::Response,
    endpoint: Endpoint,
    limit: usize,
    transport: impl FnOnce(reqwest::Error) -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let status = response.status();
    let announced = response.content_length();
    if let Some(length) = announced.filter(|&l| l > limit as u64) {
        return Err(too_large(endpoint, status, limit, &format!("its Content-Length is {length} bytes")));
    }
    let mut body = Vec::with_capacity(announced.map_or(0, |l| l as usize));
    match read_up_to(&mut response, limit, &mut body).await {
        Ok(true) => Ok(body),
        Ok(false) => Err(too_large(endpoint, status, limit, "it did not end within that, decompressed")),
        Err(e) => Err(transport(e)),
    }
}

/// The start of an error body (what names the error is there); what was
/// read before the body broke off counts as it stands.
async fn read_error_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let _ended_or_cut = read_up_to(&mut response, MAX_ERROR_BODY, &mut body).await;
    body
}

/// The error for a success body over `api.max_response_mib`. Permanent,
/// not transient: a server that sends an oversized answer will most likely
/// send it again, so retrying at once only repeats the download; the
/// collection fails this pass with the reason, and the next pass asks
/// again.
fn too_large(endpoint: Endpoint, status: StatusCode, limit: usize, how: &str) -> ApiError {
    ApiError {
        class: ErrorClass::Permanent,
        endpoint,
        status: Some(status.as_u16()),
        code: None,
        message: format!("response body refused: larger than api.max_response_mib = {} MiB ({how})", limit >> 20),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
