//! Webhooks: subscriptions (`/v1/subscriptions`), the notification URL validation handshake, and
//! signed change notifications sent to the subscribers after every mutation made through the
//! fake's public API.
//!
//! Signing follows the Webhooks tag of the spec: headers `X-Aurinko-Request-Timestamp` (Unix
//! seconds) and `X-Aurinko-Signature`, the lowercase hex HMAC-SHA256, keyed with the app's signing
//! secret, of `"v0:" + timestamp + ":"` followed by the raw body. The handshake
//! (`POST {notificationUrl}?validationToken=...`, empty `text/plain` body) is signed the same way.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::data::{Change, Data};
use super::error::ApiError;
use super::generate;
use super::reply::{Reply, percent_decode};
use super::subscription::{Draft, Pending, Target};
use super::{FakeAurinko, Shared};

pub(crate) const TIMESTAMP_HEADER: &str = "X-Aurinko-Request-Timestamp";
pub(crate) const SIGNATURE_HEADER: &str = "X-Aurinko-Signature";

/// How long the fake waits for a subscriber: the handshake's documented 30 s, also used for
/// notifications.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Age of a notification with a stale timestamp.
const STALE_SECS: i64 = 3600;

/// Default page size of `GET /v1/subscriptions` (spec: `limit` default 50).
const DEFAULT_LIMIT: usize = 50;

/// Misbehaviour of the notification sender, to exercise a receiver's checks.
#[derive(Clone, Debug, Default)]
pub struct WebhookFaults {
    /// Fraction (0.0..=1.0) of notifications sent with a wrong signature.
    pub bad_signature: f64,
    /// Fraction of notifications stamped one hour in the past (correctly signed for that time).
    pub stale_timestamp: f64,
    /// Each notification is re-sent this many extra times, same body, timestamp and signature.
    pub duplicates: u32,
}

/// One notification POST as sent, and how the receiver answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub subscription: i64,
    /// The resource as subscribed (e.g. `/calendars/primary/events`).
    pub resource: String,
    /// The receiver's status; `None` on a transport error or timeout.
    pub status: Option<u16>,
    /// False when the [`WebhookFaults::bad_signature`] fault hit this notification.
    pub signature_ok: bool,
    /// True for the extra copies of [`WebhookFaults::duplicates`].
    pub duplicate: bool,
    /// True when the timestamp was an hour old ([`WebhookFaults::stale_timestamp`]).
    pub stale: bool,
    /// The raw JSON body sent.
    pub body: String,
}

#[derive(Debug)]
struct Subscription {
    id: i64,
    account: usize,
    resource: String,
    target: Target,
    notification_url: String,
    active: bool,
    fail_since: Option<DateTime<Utc>>,
    fail_description: Option<String>,
    filters: Vec<String>,
}

/// An int64 id as the spec types it, or as a string as the docs show it.
fn id_json(id: i64, as_string: bool) -> Value {
    if as_string { Value::String(id.to_string()) } else { Value::from(id) }
}

impl Subscription {
    /// `SubscriptionResponse`, its `id` a string with `string_ids`. `failSince` and
    /// `failDescription` are strings in the spec, not nullable: a healthy subscription omits them.
    fn json(&self, string_ids: bool) -> Value {
        let mut body = json!({
            "id": id_json(self.id, string_ids),
            "resource": self.resource,
            "notificationUrl": self.notification_url,
            "active": self.active,
            "disabledByBilling": false,
            "filters": self.filters,
        });
        if let Some(since) = self.fail_since {
            body["failSince"] = json!(generate::timestamp(since));
        }
        if let Some(description) = &self.fail_description {
            body["failDescription"] = json!(description);
        }
        body
    }
}

/// The webhook state behind the fake's lock.
pub(crate) struct Webhooks {
    secret: String,
    faults: WebhookFaults,
    /// Separate from the other RNGs so that webhook faults change nothing else.
    rng: StdRng,
    next_id: i64,
    /// In creation order, which is increasing id order.
    subscriptions: Vec<Subscription>,
    deliveries: Vec<Delivery>,
    /// Notifications handed to a delivery task and not yet answered.
    in_flight: usize,
    /// Created on first use, inside a runtime.
    http: Option<reqwest::Client>,
    /// Ids in notifications and subscription answers sent as strings.
    string_ids: bool,
}

/// One signed notification ready to be POSTed (plus its duplicates).
#[derive(Debug)]
struct Outgoing {
    subscription: i64,
    resource: String,
    url: String,
    body: Vec<u8>,
    timestamp: i64,
    signature: String,
    signature_ok: bool,
    stale: bool,
    copies: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification<'a> {
    subscription: Value,
    resource: &'a str,
    account_id: Value,
    payloads: Vec<Payload<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    id: &'a str,
    change_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lifecycle<'a> {
    subscription: Value,
    resource: &'a str,
    account_id: Value,
    lifecycle_event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// The account id Aurinko would report (`ApiAccountOutDto.id`, notifications' `accountId`).
pub(crate) fn account_id(account: usize) -> i64 {
    1000 + account as i64
}

/// Lowercase hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub(crate) fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn roll(rng: &mut StdRng, fraction: f64) -> bool {
    let p = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    p > 0.0 && rng.random_bool(p)
}

impl Webhooks {
    pub fn new(seed: u64) -> Self {
        Self {
            secret: String::new(),
            faults: WebhookFaults::default(),
            rng: StdRng::seed_from_u64(seed ^ 0x0eb0_0c5e_0eb0_0c5e),
            // Beyond 32 bits, so a client that narrows ids breaks visibly.
            next_id: 87_665_448_354,
            subscriptions: Vec::new(),
            deliveries: Vec::new(),
            in_flight: 0,
            http: None,
            string_ids: false,
        }
    }

    fn http(&mut self) -> reqwest::Client {
        self.http
            .get_or_insert_with(|| {
                crate::http_client::builder()
                    .timeout(TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }

    fn find(&self, account: usize, id: i64) -> Option<&Subscription> {
        self.subscriptions.iter().find(|sub| sub.id == id && sub.account == account)
    }

    fn find_mut(&mut self, account: usize, id: i64) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|sub| sub.id == id && sub.account == account)
    }

    /// Signs `body` for `sub`, rolling the signature and timestamp faults.
    fn outgoing(&mut self, sub: (i64, &str, &str), body: Vec<u8>) -> Outgoing {
        let (subscription, resource, url) = sub;
        let stale = roll(&mut self.rng, self.faults.stale_timestamp);
        let bad = roll(&mut self.rng, self.faults.bad_signature);
        let timestamp = Utc::now().timestamp() - if stale { STALE_SECS } else { 0 };
        let signature = if bad {
            // A well-formed signature under another key.
            sign(format!("not-{}", self.secret).as_bytes(), timestamp, &body)
        } else {
            sign(self.secret.as_bytes(), timestamp, &body)
        };
        Outgoing {
            subscription,
            resource: resource.to_string(),
            url: url.to_string(),
            body,
            timestamp,
            signature,
            signature_ok: !bad,
            stale,
            copies: self.faults.duplicates,
        }
    }

    /// Records the outcome of one POST; with `track`, updates the subscription's failure state.
    fn record(&mut self, out: &Outgoing, duplicate: bool, result: &Result<u16, String>, track: bool) {
        self.deliveries.push(Delivery {
            subscription: out.subscription,
            resource: out.resource.clone(),
            status: result.as_ref().ok().copied(),
            signature_ok: out.signature_ok,
            duplicate,
            stale: out.stale,
            body: String::from_utf8_lossy(&out.body).into_owned(),
        });
        let Some(sub) = self.subscriptions.iter_mut().find(|sub| sub.id == out.subscription).filter(|_| track) else {
            return;
        };
        match result {
            Ok(status) if (200..300).contains(status) => {
                sub.fail_since = None;
                sub.fail_description = None;
            }
            failed => {
                sub.fail_since.get_or_insert_with(Utc::now);
                sub.fail_description = Some(match failed {
                    Ok(status) => format!("Notification endpoint answered HTTP {status}"),
                    Err(error) => format!("Notification endpoint unreachable: {error}"),
                });
            }
        }
    }
}

impl Shared {
    /// Drains the data journal and turns each change into one notification per matching active
    /// subscription.
    fn collect_notifications(&mut self) -> Vec<Outgoing> {
        let changes = self.data.take_changes();
        if changes.is_empty() || !self.webhooks.subscriptions.iter().any(|sub| sub.active) {
            return Vec::new();
        }
        let mut matches: Vec<(i64, String, String, i64)> = Vec::new();
        let mut out = Vec::new();
        let string_ids = self.webhooks.string_ids;
        for Change { store, id, change } in &changes {
            matches.clear();
            for sub in self.webhooks.subscriptions.iter().filter(|sub| sub.active) {
                let watched = match sub.target {
                    Target::Store(watched) => Some(watched),
                    Target::Primary => {
                        self.data.resolve_calendar(sub.account, "primary").map(|index| self.data.calendar_store(index))
                    }
                    Target::DefaultTaskList => self
                        .data
                        .resolve_task_list(sub.account, "default")
                        .map(|index| self.data.task_list_store(index)),
                };
                if watched == Some(*store) {
                    let account = account_id(sub.account);
                    matches.push((sub.id, sub.resource.clone(), sub.notification_url.clone(), account));
                }
            }
            for (sub_id, resource, url, account) in &matches {
                let body = serde_json::to_vec(&Notification {
                    subscription: id_json(*sub_id, string_ids),
                    resource,
                    account_id: id_json(*account, string_ids),
                    payloads: vec![Payload { id, change_type: change.as_str() }],
                })
                .unwrap_or_default();
                out.push(self.webhooks.outgoing((*sub_id, resource, url), body));
            }
        }
        out
    }

    /// `GET /v1/subscriptions`.
    pub(crate) fn subscriptions_page(
        &self,
        account: usize,
        limit: Option<&str>,
        offset: Option<&str>,
        include_inactive: Option<&str>,
    ) -> Result<(Vec<u8>, usize), ApiError> {
        let limit = match limit {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => match text.parse::<i32>() {
                Ok(n) if n > 0 => n as usize,
                _ => return Err(ApiError::bad_request("limit must be a positive integer")),
            },
        };
        let offset = match offset {
            None | Some("") => 0,
            Some(text) => match text.parse::<i32>() {
                Ok(n) if n >= 0 => n as usize,
                _ => return Err(ApiError::bad_request("offset must be a non-negative integer")),
            },
        };
        let include_inactive = match include_inactive {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::bad_request("includeInactive must be true or false")),
        };
        let all: Vec<&Subscription> = self
            .webhooks
            .subscriptions
            .iter()
            .filter(|sub| sub.account == account && (include_inactive || sub.active))
            .collect();
        let string_ids = self.webhooks.string_ids;
        let records: Vec<Value> = all.iter().skip(offset).take(limit).map(|sub| sub.json(string_ids)).collect();
        let count = records.len();
        let body = json!({
            "offset": offset,
            "totalSize": all.len(),
            "done": offset + count >= all.len(),
            "records": records,
        });
        Ok((serde_json::to_vec(&body).unwrap_or_default(), count))
    }

    /// `GET /v1/subscriptions/{id}`.
    pub(crate) fn subscription_json(&self, account: usize, id: i64) -> Result<Vec<u8>, ApiError> {
        let sub = self.webhooks.find(account, id).ok_or_else(subscription_not_found)?;
        Ok(serde_json::to_vec(&sub.json(self.webhooks.string_ids)).unwrap_or_default())
    }

    /// `DELETE /v1/subscriptions/{id}`.
    pub(crate) fn delete_subscription(&mut self, account: usize, id: i64) -> Result<(), ApiError> {
        let subs = &mut self.webhooks.subscriptions;
        let index =
            subs.iter().position(|sub| sub.id == id && sub.account == account).ok_or_else(subscription_not_found)?;
        subs.remove(index);
        Ok(())
    }

    /// Validates a `SubscriptionRequest` body; the subscription is created after the handshake.
    pub(crate) fn subscription_draft(&self, account: usize, body: &[u8]) -> Result<Draft, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|_| ApiError::bad_request("Request body must be a JSON object"))?;
        let object = value.as_object().ok_or_else(|| ApiError::bad_request("Request body must be a JSON object"))?;
        let text = |key: &str| match object.get(key) {
            None | Some(Value::Null) => Err(ApiError::bad_request(format!("{key} is required"))),
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
            Some(_) => Err(ApiError::bad_request(format!("{key} must be a non-empty string"))),
        };
        let resource = text("resource")?;
        let notification_url = text("notificationUrl")?;
        let filters = match object.get("filters") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some("withoutDrafts") => Ok("withoutDrafts".to_string()),
                    _ => Err(ApiError::bad_request("filters may only contain withoutDrafts")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ApiError::bad_request("filters must be an array")),
        };
        match reqwest::Url::parse(&notification_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return Err(ApiError::bad_request("notificationUrl must be an absolute http(s) URL")),
        }
        let target = resolve_resource(&self.data, account, &resource)
            .ok_or_else(|| ApiError::bad_request(format!("Unsupported resource: {resource}")))?;
        Ok(Draft { account, resource, target, notification_url, filters })
    }

    /// Logs and answers a `POST /v1/subscriptions` once its handshake is over.
    fn finish_subscription(&mut self, pending: Pending, handshake: Result<(), String>) -> Reply {
        let Pending { draft, mut record, request_id } = pending;
        let reply = match handshake {
            Err(reason) => Reply::error(
                &ApiError::bad_request(format!("Notification URL validation failed: {reason}")),
                &request_id,
            ),
            Ok(()) => {
                let id = self.webhooks.next_id;
                self.webhooks.next_id += 1;
                let sub = Subscription {
                    id,
                    account: draft.account,
                    resource: draft.resource,
                    target: draft.target,
                    notification_url: draft.notification_url,
                    active: true,
                    fail_since: None,
                    fail_description: None,
                    filters: draft.filters,
                };
                let body = serde_json::to_vec(&sub.json(self.webhooks.string_ids)).unwrap_or_default();
                self.webhooks.subscriptions.push(sub);
                record.records = 1;
                Reply::json(200, body)
            }
        };
        record.status = reply.status;
        self.log.push(record);
        reply
    }
}

/// Counts a delivery task's notifications out of `in_flight`, also when the task is dropped.
struct InFlight {
    fake: FakeAurinko,
    left: usize,
}

impl InFlight {
    fn done(&mut self, n: usize) {
        let n = n.min(self.left);
        self.left -= n;
        self.fake.with(|s| s.webhooks.in_flight = s.webhooks.in_flight.saturating_sub(n));
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.done(self.left);
    }
}

pub(crate) fn subscription_not_found() -> ApiError {
    ApiError::new(404, "notFound", "Subscription not found")
}

/// `/calendars/{id}/events` (a live calendar of the account, or `primary`), `/email/messages`,
/// `/contacts`, `/tasklists/{id}/tasks` (a live task list, or `default`).
fn resolve_resource(data: &Data, account: usize, resource: &str) -> Option<Target> {
    match resource {
        "/email/messages" => return Some(Target::Store(data.email_store(account))),
        "/contacts" => return Some(Target::Store(data.contacts_store(account))),
        _ => {}
    }
    if let Some(id) = resource.strip_prefix("/tasklists/").and_then(|rest| rest.strip_suffix("/tasks")) {
        if id == "default" {
            return data.resolve_task_list(account, "default").map(|_| Target::DefaultTaskList);
        }
        let list = data
            .resolve_task_list(account, id)
            .or_else(|| percent_decode(id, false).and_then(|decoded| data.resolve_task_list(account, &decoded)))?;
        return Some(Target::Store(data.task_list_store(list)));
    }
    let id = resource.strip_prefix("/calendars/")?.strip_suffix("/events")?;
    if id.is_empty() {
        return None;
    }
    if id == "primary" {
        return data.resolve_calendar(account, "primary").map(|_| Target::Primary);
    }
    let calendar = data
        .resolve_calendar(account, id)
        .or_else(|| percent_decode(id, false).and_then(|decoded| data.resolve_calendar(account, &decoded)))?;
    Some(Target::Store(data.calendar_store(calendar)))
}

/// POSTs `body` with the signature headers; the status, or the transport error.
async fn post(
    http: &reqwest::Client,
    url: reqwest::Url,
    content_type: &'static str,
    body: Vec<u8>,
    timestamp: i64,
    signature: &str,
) -> Result<u16, String> {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    // Drain the body so the connection can be reused; its content does not matter.
    let _ = response.bytes().await;
    Ok(status)
}

/// The validation handshake: `POST {url}?validationToken={token}`, which must answer 200 with the
/// token as its body within 30 s.
async fn handshake(http: &reqwest::Client, secret: &str, url: &str) -> Result<(), String> {
    let mut url = reqwest::Url::parse(url).map_err(|error| error.to_string())?;
    let token = {
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes);
        hex::encode(bytes)
    };
    url.query_pairs_mut().append_pair("validationToken", &token);
    let timestamp = Utc::now().timestamp();
    let signature = sign(secret.as_bytes(), timestamp, b"");
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(Vec::new())
        .send()
        .await
        .map_err(|error| format!("request failed: {error}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("endpoint answered HTTP {status}"));
    }
    let body = response.text().await.map_err(|error| format!("reading the answer failed: {error}"))?;
    if body.trim() != token {
        return Err("endpoint did not echo the validation token".to_string());
    }
    Ok(())
}

impl FakeAurinko {
    /// Runs a public mutation, then notifies the matching subscriptions (asynchronously, when
    /// called inside a tokio runtime; without one nothing is sent).
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut Shared) -> R) -> R {
        let runtime = tokio::runtime::Handle::try_current().ok();
        let (result, batch) = self.with(|s| {
            let result = f(s);
            // Drained even without a runtime, so skipped changes are never replayed later.
            let outgoing = s.collect_notifications();
            let batch = (runtime.is_some() && !outgoing.is_empty()).then(|| {
                s.webhooks.in_flight += outgoing.len();
                (s.webhooks.http(), outgoing)
            });
            (result, batch)
        });
        if let (Some(runtime), Some((http, outgoing))) = (runtime, batch) {
            let mut guard = InFlight { fake: self.clone(), left: outgoing.len() };
            runtime.spawn(async move {
                for out in outgoing {
                    let _ = guard.fake.deliver(&http, &out, true).await;
                    guard.done(1);
                }
            });
        }
        result
    }

    /// Sends one notification and its duplicates; the first POST's outcome. With `track`, the
    /// outcomes update the subscription's failure state.
    async fn deliver(&self, http: &reqwest::Client, out: &Outgoing, track: bool) -> Result<u16, String> {
        let url = reqwest::Url::parse(&out.url).map_err(|error| error.to_string());
        let mut first = None;
        for copy in 0..=out.copies {
            let result = match &url {
                Ok(url) => {
                    post(http, url.clone(), "application/json", out.body.clone(), out.timestamp, &out.signature).await
                }
                Err(error) => Err(error.clone()),
            };
            self.with(|s| s.webhooks.record(out, copy > 0, &result, track));
            first.get_or_insert(result);
        }
        first.unwrap_or_else(|| Err("not sent".to_string()))
    }

    /// Completes a `POST /v1/subscriptions`: handshake, then create (or 400) and log.
    pub(crate) async fn complete_subscription(&self, pending: Pending) -> Reply {
        let (http, secret) = self.with(|s| (s.webhooks.http(), s.webhooks.secret.clone()));
        let outcome = handshake(&http, &secret, &pending.draft.notification_url).await;
        self.with(|s| s.finish_subscription(pending, outcome))
    }

    /// The app's signing secret, which keys every signature (empty until set).
    pub fn set_signing_secret(&self, secret: &str) {
        self.with(|s| s.webhooks.secret = secret.to_string());
    }

    pub fn set_webhook_faults(&self, faults: WebhookFaults) {
        self.with(|s| s.webhooks.faults = faults);
    }

    /// Sends the ids of notifications (`subscription`, `accountId`) and of subscription answers
    /// (`id`) as strings, as Aurinko's docs show them, instead of the spec's integers.
    pub fn set_string_ids(&self, on: bool) {
        self.with(|s| s.webhooks.string_ids = on);
    }

    /// Every notification POST so far (duplicates included), in the order they were answered.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.with(|s| s.webhooks.deliveries.clone())
    }

    pub fn clear_deliveries(&self) {
        self.with(|s| s.webhooks.deliveries.clear());
    }

    /// Waits until every notification handed to a delivery task has been answered (or failed);
    /// false when `timeout` passed first.
    pub async fn wait_webhooks_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.with(|s| s.webhooks.in_flight) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// All subscriptions of the account of `token`, inactive ones included, as
    /// `SubscriptionResponse` JSON, in id order.
    pub fn subscriptions(&self, token: &str) -> Vec<Value> {
        self.with(|s| {
            let Some(account) = s.data.account_by_token(token) else {
                return Vec::new();
            };
            let string_ids = s.webhooks.string_ids;
            s.webhooks
                .subscriptions
                .iter()
                .filter(|sub| sub.account == account)
                .map(|sub| sub.json(string_ids))
                .collect()
        })
    }

    /// Marks a subscription inactive: it gets no more notifications and `GET /v1/subscriptions`
    /// lists it only with `includeInactive=true`. False when the account has no such subscription.
    pub fn deactivate_subscription(&self, token: &str, id: i64) -> bool {
        self.with(|s| {
            let Some(account) = s.data.account_by_token(token) else {
                return false;
            };
            s.webhooks.find_mut(account, id).map(|sub| sub.active = false).is_some()
        })
    }

    /// Posts a signed lifecycle notification `{subscription, resource, accountId, lifecycleEvent}`
    /// (plus `error` for `"error"`) to the subscription's URL, subject to the webhook faults.
    /// `"error"` also sets the subscription's `failSince`/`failDescription`, `"active"` clears
    /// them and reactivates it. Returns the receiver's status (`None` for an unknown subscription
    /// or a transport error).
    pub async fn send_lifecycle(&self, token: &str, subscription: i64, event: &str) -> Option<u16> {
        const ERROR: &str = "Active token is missing";
        let (http, out) = self.with(|s| {
            let account = s.data.account_by_token(token)?;
            let sub = s.webhooks.find_mut(account, subscription)?;
            match event {
                "error" => {
                    sub.fail_since.get_or_insert_with(Utc::now);
                    sub.fail_description = Some(ERROR.to_string());
                }
                "active" => {
                    sub.active = true;
                    sub.fail_since = None;
                    sub.fail_description = None;
                }
                _ => {}
            }
            let (resource, url) = (sub.resource.clone(), sub.notification_url.clone());
            let string_ids = s.webhooks.string_ids;
            let body = serde_json::to_vec(&Lifecycle {
                subscription: id_json(subscription, string_ids),
                resource: &resource,
                account_id: id_json(account_id(account), string_ids),
                lifecycle_event: event,
                error: (event == "error").then_some(ERROR),
            })
            .unwrap_or_default();
            let out = s.webhooks.outgoing((subscription, &resource, &url), body);
            Some((s.webhooks.http(), out))
        })?;
        // The delivery's outcome must not change the state the event announced.
        self.deliver(&http, &out, false).await.ok()
    }

    /// `ApiAccountOutDto.id` of the account of `token`.
    pub fn account_id(&self, token: &str) -> Option<i64> {
        self.with(|s| s.data.account_by_token(token).map(account_id))
    }
}
