//! The webhook receiver: Aurinko's URL validation handshake, signature
//! checks, and notifications turned into nudges.
//!
//! A request is trusted only with a valid `X-Aurinko-Signature`: lowercase
//! hex HMAC-SHA256, keyed with the app's signing secret, over
//! `v0:{X-Aurinko-Request-Timestamp}:{raw body}`, compared in constant time.
//! Nothing a request carries is trusted beyond "this collection may have
//! changed": the pass it triggers reads the changes from the delta stream.
//!
//! A validly signed request is never answered 401, whatever its age: Aurinko
//! redelivers notifications with their original timestamp and signature, and
//! a refusal marks the subscription as failing. Replaying one can do no more
//! than start a delta pass, which is coalesced with any other, so an old one
//! still nudges; beyond `tolerance_secs` it is only counted as late. The
//! same notification again within a few minutes (same signature) is answered
//! 200 and changes nothing (`replay`). A signed body that cannot be read is
//! answered 200 too (Aurinko cannot fix it by sending it again), logged and
//! counted. Refusals are counted and their log lines rate-limited
//! (`refusals`).
//!
//! Every reply is inert text: `text/plain; charset=utf-8` with
//! `X-Content-Type-Options: nosniff`, and the validation handshake echoes
//! its token only if it is a plain token ([`is_plain_token`]), so the
//! listener cannot be made to serve markup or control characters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::nudge::Nudges;
use super::refusals::Refusals;
use super::replay::ReplayFilter;
use crate::aurinko::{int_id, optional_int_id};
use crate::model::{CollectionKey, Kind};
use crate::store::Signal;
use crate::store::{Backend, Change, Writer};

/// Notifications larger than this are refused with 413. Aurinko's are small
/// JSON (ids and a few payload records): a few KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// How much of an unreadable notification the log line shows.
const LOGGED_BODY: usize = 200;

/// The longest validation token echoed.
pub const MAX_VALIDATION_TOKEN: usize = 512;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Clone)]
pub struct Receiver {
    secret: SecretString,
    /// Signed longer ago than this (or in the future by more), a
    /// notification counts as late: still accepted, still a nudge.
    tolerance: Duration,
    nudges: Arc<Nudges>,
    /// For reads (which account, which alias); writes go to `writer`.
    store: Arc<dyn Backend>,
    writer: Writer,
    replays: Arc<ReplayFilter>,
    refusals: Arc<Refusals>,
}

/// A notification (`subscription`, `resource`, `accountId`, `payloads`,
/// `lifecycleEvent`, `error`). Payloads are not read: they only say that
/// something changed, which the delta stream tells exactly. The spec types
/// the ids as integers, the docs show them as strings: both are read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    #[serde(default, deserialize_with = "optional_int_id")]
    subscription: Option<i64>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(deserialize_with = "int_id")]
    account_id: i64,
    #[serde(default)]
    lifecycle_event: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

pub async fn receive(
    State(receiver): State<Receiver>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut response = match body {
        Ok(body) => receiver.answer(&query, &headers, &body).await,
        // Over `MAX_BODY` (413), or a body the peer did not finish sending.
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            receiver.refuse(rejection.status(), "oversized")
        }
        Err(rejection) => receiver.refuse(rejection.status(), "unreadable_body"),
    };
    response.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A plain-text reply.
fn plain(status: StatusCode, text: String) -> Response {
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

fn count(outcome: &'static str) {
    metrics::counter!("aurinko_sync_webhook_requests_total", "outcome" => outcome).increment(1);
}

/// Whether a validation token may be echoed: 1 to [`MAX_VALIDATION_TOKEN`]
/// bytes of ASCII letters, digits, space and `-._~+/=:`. That covers the
/// challenges' usual forms (random alphanumerics, UUIDs, hex, base64 and
/// base64url, JWT-like dotted strings, Graph-style "Validation: ..."
/// sentences) and leaves out markup (`<>&"'`), control characters and
/// anything non-ASCII.
pub fn is_plain_token(token: &str) -> bool {
    (1..=MAX_VALIDATION_TOKEN).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b" -._~+/=:".contains(&b))
}

/// A request whose signature checked out.
struct Signed {
    /// The time it claims to have been signed at (Unix seconds; `None` when
    /// the header is not a number, which the signature covers like any
    /// other byte).
    at: Option<i64>,
    signature: [u8; 32],
}

impl Receiver {
    pub fn new(
        secret: SecretString,
        tolerance: Duration,
        nudges: Arc<Nudges>,
        store: Arc<dyn Backend>,
        writer: Writer,
    ) -> Receiver {
        Receiver { secret, tolerance, nudges, store, writer, replays: Arc::default(), refusals: Arc::default() }
    }

    async fn answer(&self, query: &HashMap<String, String>, headers: &HeaderMap, body: &Bytes) -> Response {
        let signed = headers.contains_key("x-aurinko-signature");
        if let Some(token) = query.get("validationToken") {
            if !is_plain_token(token) {
                return self.refuse(StatusCode::BAD_REQUEST, "bad_validation_token");
            }
            // The handshake echoes the token. If Aurinko signs it, the
            // signature must be good; an unsigned challenge is answered too,
            // as the docs leave open whether it is signed.
            if signed && let Err(why) = self.verify(headers, body) {
                return self.refuse(StatusCode::UNAUTHORIZED, why);
            }
            count("validation");
            return plain(StatusCode::OK, token.clone());
        }
        let signed = match self.verify(headers, body) {
            Ok(signed) => signed,
            Err(why) => return self.refuse(StatusCode::UNAUTHORIZED, why),
        };
        if !self.replays.first_seen(signed.signature, Instant::now()) {
            tracing::debug!("notification seen moments ago (a redelivery or a replay): nothing to do");
            count("duplicate");
            return plain(StatusCode::OK, String::new());
        }
        let notification: Notification = match serde_json::from_slice(body) {
            Ok(n) => n,
            Err(e) => {
                let why = if e.is_data() { "bad_notification" } else { "bad_json" };
                let excerpt = String::from_utf8_lossy(&body[..body.len().min(LOGGED_BODY)]).into_owned();
                // Debug formatting escapes control characters and quotes.
                tracing::warn!(reason = why, error = %e, body = ?excerpt, "signed webhook request not understood; answered 200");
                count(why);
                return plain(StatusCode::OK, String::new());
            }
        };
        if self.is_late(signed.at) {
            tracing::debug!(signed_at = ?signed.at, "late notification (a redelivery?): syncing anyway");
            metrics::counter!("aurinko_sync_webhook_late_total").increment(1);
        }
        self.handle(notification).await;
        plain(StatusCode::OK, String::new())
    }

    fn refuse(&self, status: StatusCode, why: &'static str) -> Response {
        self.refusals.record(status, why);
        plain(status, format!("{why}\n"))
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Signed, &'static str> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let (Some(timestamp), Some(signature)) = (header("x-aurinko-request-timestamp"), header("x-aurinko-signature"))
        else {
            return Err("unsigned");
        };
        let signature = hex::decode(signature).map_err(|_| "bad_signature")?;
        let mut mac =
            HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes()).map_err(|_| "bad_signature")?;
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac.verify_slice(&signature).map_err(|_| "bad_signature")?;
        let signature = signature.try_into().map_err(|_| "bad_signature")?;
        Ok(Signed { at: timestamp.parse().ok(), signature })
    }

    /// Signed further from now than `tolerance` (or at no readable time).
    fn is_late(&self, signed_at: Option<i64>) -> bool {
        signed_at.is_none_or(|at| Utc::now().timestamp().abs_diff(at) > self.tolerance.as_secs())
    }

    async fn handle(&self, n: Notification) {
        let Some(account) = self.account(n.account_id).await else {
            tracing::warn!(account_id = n.account_id, "notification for an account this service does not sync");
            count("unknown_account");
            return;
        };
        if let (Some(event), Some(subscription)) = (&n.lifecycle_event, n.subscription) {
            // Aurinko's words: escaped before they are logged or stored.
            let (event, error) = (
                crate::model::text::inert(event).into_owned(),
                n.error.as_deref().map(|e| crate::model::text::inert(e).into_owned()),
            );
            let shown_error = error.as_deref().unwrap_or("-");
            tracing::info!(account = %account, subscription, event = %event, error = %shown_error, "subscription lifecycle event");
            let change = Change::Lifecycle { account: account.clone(), subscription, event, error };
            let recorded = self.writer.change(change).await;
            if !matches!(recorded, Ok(true)) {
                tracing::warn!(subscription, "lifecycle event for a subscription the store does not know");
            }
            count("lifecycle");
            return;
        }
        let Some(key) = self.collection(&account, n.resource.as_deref().unwrap_or_default()).await else {
            tracing::debug!(resource = ?n.resource, "notification for a resource this service does not sync");
            count("unknown_resource");
            return;
        };
        if self.nudges.nudge(&key) {
            tracing::debug!(collection = %key, "notification: syncing now");
            count("nudged");
        } else if self.forward(&key).await {
            tracing::debug!(collection = %key, "notification: passed to the fleet");
            count("forwarded");
        } else {
            count("not_synced");
        }
    }

    /// In a fleet, a notification for a collection another instance may
    /// hold goes to every instance (`NOTIFY`); its holder syncs it. False
    /// outside a fleet, or when the signal could not be sent.
    async fn forward(&self, key: &CollectionKey) -> bool {
        let (store, signal) = (self.store.clone(), Signal::Nudge(key.clone()));
        let sent = tokio::task::spawn_blocking(move || store.fleet().and_then(|fleet| fleet.publish(&signal))).await;
        matches!(sent, Ok(Ok(())))
    }

    async fn account(&self, aurinko_id: i64) -> Option<String> {
        if let Some(name) = self.nudges.account(aurinko_id) {
            return Some(name);
        }
        let store = self.store.clone();
        let name = tokio::task::spawn_blocking(move || store.account_for_id(aurinko_id)).await.ok()?.ok()??;
        self.nudges.learn_account(aurinko_id, &name);
        Some(name)
    }

    /// `/calendars/{id}/events` (or `primary`), `/email/messages`,
    /// `/contacts`, `/tasklists/{id}/tasks` (or `default`).
    async fn collection(&self, account: &str, resource: &str) -> Option<CollectionKey> {
        let resource = resource.trim_end_matches('/');
        match resource {
            "/email/messages" => return Some(CollectionKey::account_wide(account, Kind::Email)),
            "/contacts" => return Some(CollectionKey::account_wide(account, Kind::Contacts)),
            _ => {}
        }
        let (kind, id, alias) = if let Some(rest) = resource.strip_prefix("/calendars/") {
            (Kind::Calendar, rest.strip_suffix("/events")?, "primary")
        } else {
            (Kind::Tasks, resource.strip_prefix("/tasklists/")?.strip_suffix("/tasks")?, "default")
        };
        // An id may hold a `/` (Graph ids are base64): the resource is
        // `subscribe`'s own, and the fixed prefix and suffix bound the id.
        if id.is_empty() {
            return None;
        }
        let id = if id == alias {
            let (store, account) = (self.store.clone(), account.to_string());
            tokio::task::spawn_blocking(move || store.aliased(&account, kind)).await.ok()?.ok()??
        } else {
            id.to_string()
        };
        Some(CollectionKey::listed(account, kind, &id))
    }
}
