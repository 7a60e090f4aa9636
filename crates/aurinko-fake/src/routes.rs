//! HTTP surface: one axum fallback handler that parses the request itself, so the fake decides
//! every status code and body (JSON errors even for unknown paths and wrong methods), applies
//! latency, faults and rate limits in a fixed order, and logs every request.
//!
//! Order per request: configured latency → fault roll (a fault replaces the answer; nothing of
//! the handler runs, so a faulted `POST /sync` provisions nothing) → per-token rate limit →
//! authentication → routing → handler.
//!
//! `POST /v1/subscriptions` is the one two-step request: the handler validates it under the lock,
//! the notification URL handshake runs outside it, and the subscription is created (and the
//! request logged) afterwards.

use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::DateTime;

use super::app::{ACCOUNT_ID_HEADER, Caller, Credentials};
use super::data::Kind;
use super::error::ApiError;
use super::log::{Endpoint, RequestRecord};
use super::reply::{Reply, ReplyBody, percent_decode};
use super::subscription::Pending;
use super::tokens::{BodyType, Stream};
use super::webhooks::subscription_not_found;
use super::{Collection, DAY_MS, FakeAurinko, FaultKind, Shared};

/// Largest request body read; longer ones count as unreadable.
const MAX_BODY: usize = 1 << 20;

/// What a proxy in front of Aurinko answers for [`FaultKind::BadGateway`].
const BAD_GATEWAY_PAGE: &[u8] = b"<html><head><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1></center></body></html>\n";

pub(crate) fn router(fake: FakeAurinko) -> Router {
    Router::new().fallback(entry).with_state(fake)
}

async fn entry(State(fake): State<FakeAurinko>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let body = axum::body::to_bytes(body, MAX_BODY).await.ok();
    let latency = fake.with(|state| state.options.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let request = Request::parse(&method, &uri, &headers, body);
    fake.wait_if_held(request.calendar_id.as_deref(), request.endpoint == Endpoint::SyncUpdated).await;
    let (fault, latency_fault, stall) = fake.with(|state| {
        let options = &state.options;
        let fault = match options.fault_scope.covers(request.endpoint, request.logged_param("pageToken").is_some()) {
            true => options.faults.choose(&mut state.fault_rng, &mut state.fault_round),
            false => None,
        };
        (fault, options.latency_fault, options.stall)
    });
    if fault == Some(FaultKind::Latency) && !latency_fault.is_zero() {
        tokio::time::sleep(latency_fault).await;
    }
    // A stall is logged when it begins, so the log keeps the order in which requests arrived.
    let answer = fake.with(|state| state.answer(&request, fault));
    if fault == Some(FaultKind::Stall) {
        // A client that times out hangs up, and hyper drops this future before the count.
        tokio::time::sleep(stall).await;
        fake.with(|state| state.stalls_waited_out += 1);
    }
    match answer {
        Answer::Ready(reply) => reply.into_response(),
        Answer::Handshake(pending) => fake.complete_subscription(*pending).await.into_response(),
    }
}

/// What [`Shared::answer`] decided.
enum Answer {
    /// Answered and logged.
    Ready(Reply),
    /// A valid `POST /v1/subscriptions`, waiting for its handshake; not logged yet.
    Handshake(Box<Pending>),
}

/// What the handler needs from an HTTP request, parsed without failing.
pub(crate) struct Request {
    method: Method,
    path: String,
    endpoint: Endpoint,
    /// Calendar id from the path, percent-decoded.
    calendar_id: Option<String>,
    /// The collection the path addresses (a calendar by the id as written); `None` for
    /// `GET /calendars` and unknown paths.
    collection: Option<Collection>,
    /// `None` when the query string is not valid percent-encoding.
    query: Option<Vec<(String, String)>>,
    credentials: Credentials,
    user_agent: Option<String>,
    /// `/v1/subscriptions/{id}`: the id segment as written; `None` for `/v1/subscriptions`.
    subscription_id: Option<String>,
    /// `/v1/auth/token/{code}`: the code, percent-decoded.
    auth_code: Option<String>,
    content_type: Option<String>,
    /// `None` when it could not be read (or was too long).
    body: Option<Bytes>,
}

impl Request {
    fn parse(method: &Method, uri: &Uri, headers: &HeaderMap, body: Option<Bytes>) -> Self {
        let path = uri.path().to_string();
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let sync = |rest: &[&str]| match rest {
            ["sync"] => Some(Endpoint::SyncStart),
            ["sync", "updated"] => Some(Endpoint::SyncUpdated),
            ["sync", "deleted"] => Some(Endpoint::SyncDeleted),
            _ => None,
        };
        let subscription_id = match segments.as_slice() {
            ["v1", "subscriptions", id] if !id.is_empty() => Some(id.to_string()),
            _ => None,
        };
        let auth_code = match segments.as_slice() {
            ["v1", "auth", "token", code] => percent_decode(code, false),
            _ => None,
        };
        // The id in the path of a calendar or a task list, and which of the two it names.
        let (endpoint, raw_id, collection) = match segments.as_slice() {
            ["v1", "account"] => (Endpoint::Account, None, None),
            ["v1", "auth", "authorize"] => (Endpoint::Authorize, None, None),
            ["v1", "auth", "token", code] if !code.is_empty() => (Endpoint::AuthToken, None, None),
            ["v1", "am", "accounts"] => (Endpoint::AppAccounts, None, None),
            ["v1", "email", "folders"] => (Endpoint::Folders, None, None),
            ["v1", "subscriptions"] => (Endpoint::Subscriptions, None, None),
            ["v1", "subscriptions", id] if !id.is_empty() => (Endpoint::Subscriptions, None, None),
            ["v1", "calendars"] => (Endpoint::ListCalendars, None, None),
            ["v1", "calendars", id] => (Endpoint::GetCalendar, Some((*id, Listed::Calendar)), None),
            ["v1", "calendars", id, rest @ ..] if sync(rest).is_some() => {
                (sync(rest).unwrap_or(Endpoint::Other), Some((*id, Listed::Calendar)), None)
            }
            ["v1", "tasklists"] => (Endpoint::ListTaskLists, None, None),
            ["v1", "tasklists", id] => (Endpoint::GetTaskList, Some((*id, Listed::TaskList)), None),
            ["v1", "tasklists", id, rest @ ..] if sync(rest).is_some() => {
                (sync(rest).unwrap_or(Endpoint::Other), Some((*id, Listed::TaskList)), None)
            }
            ["v1", "email", rest @ ..] if sync(rest).is_some() => {
                (sync(rest).unwrap_or(Endpoint::Other), None, Some(Collection::Email))
            }
            ["v1", "contacts", rest @ ..] if sync(rest).is_some() => {
                (sync(rest).unwrap_or(Endpoint::Other), None, Some(Collection::Contacts))
            }
            _ => (Endpoint::Other, None, None),
        };
        let listed_id = raw_id.map(|(id, listed)| (percent_decode(id, false), listed));
        let (endpoint, calendar_id, collection) = match listed_id {
            Some((Some(id), Listed::Calendar)) if !id.is_empty() => {
                (endpoint, Some(id.clone()), Some(Collection::Calendar(id)))
            }
            Some((Some(id), Listed::TaskList)) if !id.is_empty() => (endpoint, None, Some(Collection::Tasks(id))),
            Some(_) => (Endpoint::Other, None, None),
            None => (endpoint, None, collection),
        };
        let text = |name| headers.get(name).and_then(|value: &header::HeaderValue| value.to_str().ok());
        let credentials = Credentials::parse(text(header::AUTHORIZATION.as_str()), text(ACCOUNT_ID_HEADER));
        Self {
            method: method.clone(),
            path,
            endpoint,
            calendar_id,
            collection,
            query: parse_query(uri.query().unwrap_or("")),
            credentials,
            user_agent: text(header::USER_AGENT.as_str()).map(|ua| ua.chars().take(200).collect()),
            subscription_id,
            auth_code,
            content_type: headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).map(str::to_string),
            body,
        }
    }

    /// The methods the path allows, as the `Allow` header lists them.
    fn allow(&self) -> &'static str {
        match self.endpoint {
            Endpoint::SyncStart => "POST",
            // `GET` is the spec's deprecated form of the exchange.
            Endpoint::AuthToken => "GET, POST",
            Endpoint::Subscriptions if self.subscription_id.is_none() => "GET, POST",
            Endpoint::Subscriptions => "GET, DELETE",
            _ => "GET",
        }
    }

    /// The single value of a query parameter; a repeated parameter is a 400.
    fn param(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let query = self.query.as_ref().ok_or_else(|| ApiError::bad_request("Malformed query string"))?;
        let mut values = query.iter().filter(|(key, _)| key == name);
        let first = values.next().map(|(_, value)| value.as_str());
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!("Parameter {name} given more than once")));
        }
        Ok(first)
    }

    /// Like [`Request::param`], for logging: never fails.
    fn logged_param(&self, name: &str) -> Option<String> {
        self.query.as_ref()?.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone())
    }
}

/// The listed collections a path can name by id.
#[derive(Clone, Copy)]
enum Listed {
    Calendar,
    TaskList,
}

impl Shared {
    /// Answers one request and logs it (a subscription waiting for its handshake is logged once
    /// it is answered).
    fn answer(&mut self, request: &Request, fault: Option<FaultKind>) -> Answer {
        let request_id = self.next_request_id();
        let account = self.account_named(&request.credentials);
        let mut record = RequestRecord {
            account: account.map(|index| self.data.account(index).name.clone()),
            user_agent: request.user_agent.clone(),
            method: request.method.to_string(),
            path: request.path.clone(),
            endpoint: request.endpoint,
            calendar_id: request.calendar_id.clone(),
            collection: request.collection.clone(),
            delta_token: request.logged_param("deltaToken"),
            page_token: request.logged_param("pageToken"),
            start_params: match request.endpoint {
                Endpoint::SyncStart | Endpoint::Authorize => request.query.clone().unwrap_or_default(),
                _ => Vec::new(),
            },
            status: 0,
            fault,
            next_page_token: None,
            next_delta_token: None,
            records: 0,
            at: Instant::now(),
        };
        let reply = match fault {
            Some(FaultKind::InternalError) => {
                Reply::error(&ApiError::new(500, "internalError", "Internal Server Error"), &request_id)
            }
            Some(FaultKind::Unavailable) => {
                Reply::error(&ApiError::new(503, "serviceUnavailable", "Service Unavailable"), &request_id)
            }
            Some(FaultKind::UnavailableRetryAfter) => {
                Reply::error(&ApiError::new(503, "serviceUnavailable", "Service Unavailable"), &request_id)
                    .with_header(header::RETRY_AFTER, self.options.retry_after_secs.to_string())
            }
            Some(FaultKind::TooManyRequestsSeconds) => Reply::error(&too_many_requests(), &request_id)
                .with_header(header::RETRY_AFTER, self.options.retry_after_secs.to_string()),
            Some(FaultKind::RequestTimeout) => {
                Reply::error(&ApiError::new(408, "requestTimeout", "Request Timeout"), &request_id)
                    .with_header(header::RETRY_AFTER, self.options.retry_after_secs.to_string())
            }
            Some(FaultKind::BadGateway) => {
                Reply { status: 502, body: ReplyBody::Html(BAD_GATEWAY_PAGE.to_vec()), headers: Vec::new() }
            }
            Some(FaultKind::GatewayTimeout) => {
                Reply::error(&ApiError::new(504, "gatewayTimeout", "Gateway Timeout"), &request_id)
            }
            Some(FaultKind::TooManyRequestsDate) => {
                let ahead = match self.options.retry_after_secs {
                    0 => 0,
                    secs => secs.saturating_add(1),
                };
                let at = SystemTime::now() + Duration::from_secs(ahead);
                Reply::error(&too_many_requests(), &request_id)
                    .with_header(header::RETRY_AFTER, httpdate::fmt_http_date(at))
            }
            Some(FaultKind::ResetConnection | FaultKind::Stall) => {
                Reply { status: 200, body: ReplyBody::Reset, headers: Vec::new() }
            }
            Some(FaultKind::TruncatedBody) => {
                // GETs are free of side effects, so the real answer can be computed and cut; a
                // POST must not provision, so it gets a stand-in body.
                let full = if request.method == Method::GET {
                    let mut scratch = record.clone();
                    match self.route(request, &mut scratch, &request_id) {
                        Reply { body: ReplyBody::Json(bytes), .. } => bytes,
                        _ => Vec::new(),
                    }
                } else {
                    br#"{"ready":false}"#.to_vec()
                };
                let mut cut = full;
                cut.truncate(cut.len() / 2);
                Reply::json(200, cut)
            }
            None | Some(FaultKind::Latency) => {
                // Per token, as Aurinko limits an account: an app's requests for an account
                // count against that account.
                let key = match (request.credentials.bearer(), account) {
                    (Some(token), _) => Some(token.to_string()),
                    (None, Some(index)) => Some(format!("\0app\0{index}")),
                    (None, None) => None,
                };
                let limited = match (self.options.rate_limit_per_sec, key) {
                    (Some(per_sec), Some(key)) => !self.limiter.admit(&key, per_sec, Instant::now()),
                    _ => false,
                };
                if limited {
                    Reply::error(&too_many_requests(), &request_id).with_header(header::RETRY_AFTER, "1".to_string())
                } else {
                    self.route(request, &mut record, &request_id)
                }
            }
        };
        let Reply { status, body, headers } = reply;
        let body = match body {
            ReplyBody::Handshake(draft) => {
                return Answer::Handshake(Box::new(Pending { draft: *draft, record, request_id }));
            }
            body => body,
        };
        record.status = match fault {
            Some(kind) if kind.leaves_no_answer() => RequestRecord::NO_ANSWER,
            _ => status,
        };
        self.log.push(record);
        Answer::Ready(Reply { status, body, headers })
    }

    fn route(&mut self, request: &Request, record: &mut RequestRecord, request_id: &str) -> Reply {
        match self.dispatch(request, record) {
            Ok(reply) => reply,
            Err(error) if error.status == 405 => {
                Reply::error(&error, request_id).with_header(header::ALLOW, request.allow().to_string())
            }
            Err(error) => Reply::error(&error, request_id),
        }
    }

    fn dispatch(&mut self, request: &Request, record: &mut RequestRecord) -> Result<Reply, ApiError> {
        // The OAuth flow comes before an account exists: its requests carry no account's
        // credentials (`authorize` none at all, the exchange the app's alone).
        if matches!(request.endpoint, Endpoint::Authorize | Endpoint::AuthToken) {
            if !request.allow().split(", ").any(|allowed| allowed == request.method.as_str()) {
                return Err(ApiError::new(
                    405,
                    "methodNotAllowed",
                    format!("Method {} is not allowed here", request.method),
                ));
            }
            return match request.endpoint {
                Endpoint::Authorize => self.authorize(|name| request.param(name).map(|v| v.map(str::to_string))),
                _ => self.exchange_code(&request.credentials, request.auth_code.as_deref()),
            };
        }
        let caller = self.authenticate(&request.credentials)?;
        if request.endpoint == Endpoint::AppAccounts {
            // The app's own request: an account's token may not list the app's accounts.
            if !matches!(request.credentials, Credentials::App { .. }) {
                return Err(ApiError::new(401, "unauthorized", "App credentials required"));
            }
            if request.method != Method::GET {
                return Err(ApiError::new(
                    405,
                    "methodNotAllowed",
                    format!("Method {} is not allowed here", request.method),
                ));
            }
            let page_size = self.options.page_size;
            let (body, records) = self.accounts_page(request.param("limit")?, request.param("offset")?, page_size)?;
            record.records = records;
            return Ok(Reply::json(200, body));
        }
        let Caller::Account(account) = caller else {
            return Err(ApiError::new(401, "unauthorized", "X-Aurinko-Account-Id is required"));
        };
        if request.endpoint == Endpoint::Other {
            return Err(ApiError::new(404, "notFound", "Not found"));
        }
        if !request.allow().split(", ").any(|allowed| allowed == request.method.as_str()) {
            return Err(ApiError::new(
                405,
                "methodNotAllowed",
                format!("Method {} is not allowed here", request.method),
            ));
        }
        match request.endpoint {
            Endpoint::Account => {
                for name in ["pingProvider", "includeProviderAuth"] {
                    match request.param(name)? {
                        None | Some("") | Some("true") | Some("false") => {}
                        Some(_) => return Err(ApiError::bad_request(format!("{name} must be true or false"))),
                    }
                }
                return Ok(Reply::json(200, self.account_json(account)));
            }
            Endpoint::Subscriptions => return self.subscriptions(request, account, record),
            Endpoint::Folders => {
                let (body, records, next_page_token) = self.folders_page(request.param("pageToken")?)?;
                record.records = records;
                record.next_page_token = next_page_token;
                return Ok(Reply::json(200, body));
            }
            _ => {}
        }
        let page_size = self.options.page_size.max(1);
        if request.endpoint == Endpoint::ListCalendars {
            let with_shared = match request.param("withShared")? {
                None | Some("") | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(ApiError::bad_request("withShared must be true or false")),
            };
            match request.param("mode")? {
                None | Some("") | Some("user") | Some("group") => {}
                Some(_) => return Err(ApiError::bad_request("mode must be user or group")),
            }
            let page = self.data.calendars_page(account, request.param("pageToken")?, page_size, with_shared)?;
            record.records = page.records;
            record.next_page_token = page.next_page_token;
            return Ok(Reply::json(200, page.body));
        }
        if request.endpoint == Endpoint::ListTaskLists {
            let page = self.data.task_lists_page(account, request.param("pageToken")?, page_size)?;
            record.records = page.records;
            record.next_page_token = page.next_page_token;
            return Ok(Reply::json(200, page.body));
        }
        let store = match &request.collection {
            Some(Collection::Calendar(path_id)) => {
                let calendar = self.data.resolve_calendar(account, path_id).ok_or_else(ApiError::calendar_not_found)?;
                let id = self.data.calendar_id(calendar).to_string();
                record.calendar_id = Some(id.clone());
                record.collection = Some(Collection::Calendar(id));
                if request.endpoint == Endpoint::GetCalendar {
                    return Ok(Reply::json(200, self.data.calendar_json(calendar)));
                }
                self.data.calendar_store(calendar)
            }
            Some(Collection::Tasks(path_id)) => {
                // `default` is an alias of webhook resources only, not of paths.
                let list = self
                    .data
                    .resolve_task_list(account, path_id)
                    .filter(|&index| self.data.task_list_id(index) == path_id)
                    .ok_or_else(ApiError::task_list_not_found)?;
                if request.endpoint == Endpoint::GetTaskList {
                    return Ok(Reply::json(200, self.data.task_list_json(list)));
                }
                self.data.task_list_store(list)
            }
            Some(Collection::Email) => self.data.email_store(account),
            Some(Collection::Contacts) => self.data.contacts_store(account),
            None => return Err(ApiError::new(404, "notFound", "Not found")),
        };
        if self.data.sync_not_found(store) {
            return Err(ApiError::new(404, "notFound", "Not found"));
        }
        if self.data.delta_refused(store) && request.endpoint != Endpoint::SyncStart {
            return Err(ApiError::bad_request("Invalid request"));
        }
        match request.endpoint {
            Endpoint::SyncStart => {
                let (time_min, time_max, body) = match self.data.store_kind(store) {
                    Kind::Calendar => {
                        let time_min = required_time(request, "timeMin")?;
                        let time_max = required_time(request, "timeMax")?;
                        if time_min >= time_max {
                            return Err(ApiError::bad_request("timeMin must be smaller than timeMax"));
                        }
                        // "Milliseconds may be provided but are ignored" for timeMax.
                        (time_min, time_max.div_euclid(1000) * 1000, BodyType::Omitted)
                    }
                    Kind::Email => {
                        let body = match request.param("bodyType")? {
                            None | Some("") => BodyType::Omitted,
                            Some("html") => BodyType::Html,
                            Some("text") => BodyType::Text,
                            Some(_) => return Err(ApiError::bad_request("bodyType must be html or text")),
                        };
                        let time_min = match request.param("daysWithin")? {
                            None | Some("") => i64::MIN,
                            Some(text) => match text.parse::<i32>() {
                                Ok(days) if days > 0 => {
                                    chrono::Utc::now().timestamp_millis() - i64::from(days) * DAY_MS
                                }
                                _ => return Err(ApiError::bad_request("daysWithin must be a positive integer")),
                            },
                        };
                        (time_min, i64::MAX, body)
                    }
                    Kind::Contacts => (i64::MIN, i64::MAX, BodyType::Omitted),
                    Kind::Tasks => {
                        // Completed tasks whose `completed` is before the date are skipped; one
                        // completed exactly then is kept (the filter's lower bound is exclusive).
                        let time_min = match request.param("skipCompletedBeforeDate")? {
                            None => i64::MIN,
                            Some(_) => required_time(request, "skipCompletedBeforeDate")? - 1,
                        };
                        (time_min, i64::MAX, BodyType::Omitted)
                    }
                };
                let body = match self.data.provision(account, store, time_min, time_max, body) {
                    None => serde_json::json!({ "ready": false }),
                    Some((updated, deleted)) => serde_json::json!({
                        "syncUpdatedToken": updated,
                        "syncDeletedToken": deleted,
                        "ready": true,
                    }),
                };
                Ok(Reply::json(200, serde_json::to_vec(&body).unwrap_or_default()))
            }
            Endpoint::SyncUpdated | Endpoint::SyncDeleted => {
                let stream = if request.endpoint == Endpoint::SyncUpdated { Stream::Updated } else { Stream::Deleted };
                let page = self.data.sync_page(
                    account,
                    store,
                    stream,
                    request.param("deltaToken")?,
                    request.param("pageToken")?,
                    page_size,
                )?;
                record.records = page.records;
                record.next_page_token = page.next_page_token;
                record.next_delta_token = page.next_delta_token;
                Ok(Reply::json(200, page.body))
            }
            Endpoint::GetCalendar
            | Endpoint::ListCalendars
            | Endpoint::GetTaskList
            | Endpoint::ListTaskLists
            | Endpoint::Account
            | Endpoint::AppAccounts
            | Endpoint::Subscriptions
            | Endpoint::Folders
            | Endpoint::Authorize
            | Endpoint::AuthToken
            | Endpoint::Other => Err(ApiError::new(404, "notFound", "Not found")),
        }
    }

    /// `/v1/subscriptions` (list, create) and `/v1/subscriptions/{id}` (get, delete).
    fn subscriptions(
        &mut self,
        request: &Request,
        account: usize,
        record: &mut RequestRecord,
    ) -> Result<Reply, ApiError> {
        let Some(raw_id) = &request.subscription_id else {
            if request.method == Method::POST {
                let media_type = request.content_type.as_deref().and_then(|value| value.split(';').next());
                if !media_type.is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json")) {
                    return Err(ApiError::new(415, "unsupportedMediaType", "Content-Type must be application/json"));
                }
                let body =
                    request.body.as_ref().ok_or_else(|| ApiError::bad_request("Request body could not be read"))?;
                return Ok(Reply::handshake(self.subscription_draft(account, body)?));
            }
            let (body, records) = self.subscriptions_page(
                account,
                request.param("limit")?,
                request.param("offset")?,
                request.param("includeInactive")?,
            )?;
            record.records = records;
            return Ok(Reply::json(200, body));
        };
        let id = percent_decode(raw_id, false)
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(subscription_not_found)?;
        if request.method == Method::DELETE {
            self.delete_subscription(account, id)?;
            return Ok(Reply::empty(200));
        }
        record.records = 1;
        Ok(Reply::json(200, self.subscription_json(account, id)?))
    }
}

fn too_many_requests() -> ApiError {
    ApiError::new(429, "tooManyRequests", "Too Many Requests")
}

/// A required RFC 3339 timestamp with offset, in milliseconds since the Unix epoch.
fn required_time(request: &Request, name: &str) -> Result<i64, ApiError> {
    let text = request
        .param(name)?
        .filter(|text| !text.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("Parameter {name} is required")))?;
    DateTime::parse_from_rfc3339(text).map(|at| at.timestamp_millis()).map_err(|_| {
        ApiError::bad_request(format!("Parameter {name} must be an RFC 3339 timestamp with a time zone offset"))
    })
}

/// `application/x-www-form-urlencoded` pairs; `None` on bad percent-encoding or bad UTF-8.
fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(key, true)?, percent_decode(value, true)?))
        })
        .collect()
}
