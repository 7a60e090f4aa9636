//! Error classification, done once at the HTTP boundary.
//!
//! The machine decides what to do from the class alone, never from strings,
//! so this file is the only place that reads status codes and error codes.

use reqwest::Url;

use crate::model::ErrorClass;

/// Which kind of request failed; it decides what a 404 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ListCalendars,
    GetCalendar,
    /// `GET {root}` of a collection: whether it still exists after a 404.
    GetCollection,
    ListTaskLists,
    SyncStart,
    SyncUpdated,
    SyncDeleted,
    Account,
    /// `GET /am/accounts`: the app's account list.
    AppAccounts,
    Subscriptions,
    Folders,
    /// `GET /auth/authorize`: only ever a URL for a browser, never requested here.
    Authorize,
    /// `POST /auth/token/{code}`: the OAuth code's exchange for an account token.
    AuthToken,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ListCalendars => "calendars",
            Endpoint::GetCalendar => "calendar",
            Endpoint::GetCollection => "collection",
            Endpoint::ListTaskLists => "tasklists",
            Endpoint::SyncStart => "sync_start",
            Endpoint::SyncUpdated => "sync_updated",
            Endpoint::SyncDeleted => "sync_deleted",
            Endpoint::Account => "account",
            Endpoint::AppAccounts => "app_accounts",
            Endpoint::Subscriptions => "subscriptions",
            Endpoint::Folders => "folders",
            Endpoint::Authorize => "auth_authorize",
            Endpoint::AuthToken => "auth_token",
        }
    }

    /// Endpoints under a collection's root, where a 404 is about the
    /// collection.
    fn is_collection_scoped(self) -> bool {
        matches!(
            self,
            Endpoint::GetCalendar
                | Endpoint::GetCollection
                | Endpoint::SyncStart
                | Endpoint::SyncUpdated
                | Endpoint::SyncDeleted
        )
    }
}

/// A failed request, already classified. The message never contains the
/// account token: it is built from the status, Aurinko's error body and the
/// transport error without its URL.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{endpoint}: {message}", endpoint = endpoint.as_str())]
pub struct ApiError {
    pub class: ErrorClass,
    pub endpoint: Endpoint,
    pub status: Option<u16>,
    /// Aurinko's `code` from the error body, when there was one.
    pub code: Option<String>,
    pub message: String,
}

/// Classifies an HTTP error response from its status and its body (as
/// read, at most 16 KiB).
pub fn classify(status: u16, body: &[u8], endpoint: Endpoint) -> ErrorClass {
    match status {
        401 => ErrorClass::Auth,
        410 => ErrorClass::ExpiredToken,
        408 | 429 => ErrorClass::Transient,
        400..=499 if names_an_expired_token(body) => ErrorClass::ExpiredToken,
        404 if endpoint.is_collection_scoped() => ErrorClass::NotFound,
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// Classifies a request that got no usable HTTP answer: one that could not even be built (a
/// bad URL) is permanent; a timeout (`api.timeout_secs`), a refused or reset connection and a
/// body that broke off are transient.
pub fn classify_transport(error: &reqwest::Error) -> ErrorClass {
    if error.is_builder() { ErrorClass::Permanent } else { ErrorClass::Transient }
}

/// Where a request went, as `host:port`: all a transport error names of its URL. The path
/// and query hold ids and sync tokens, and the URL crate keeps any user info; none of it is
/// needed to find a wrong address or a closed port.
pub fn peer(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// What went wrong with a request that got no usable answer from `peer`, in the operator's
/// terms: "cannot connect to 127.0.0.1:9 (connection refused)".
pub fn describe_transport(error: &reqwest::Error, peer: &str) -> String {
    let reason = transport_reason(error);
    if error.is_connect() {
        format!("cannot connect to {peer} ({reason})")
    } else if error.is_timeout() {
        format!("no answer from {peer} within api.timeout_secs ({reason})")
    } else if error.is_body() || error.is_decode() {
        format!("the answer from {peer} broke off ({reason})")
    } else {
        format!("request to {peer} failed ({reason})")
    }
}

/// The innermost cause, which is the one that names the trouble ("connection refused",
/// "failed to lookup address information: ..."), without a URL: reqwest's own text holds
/// one, its sources do not.
fn transport_reason(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut innermost: Option<&(dyn std::error::Error + 'static)> = None;
    let mut source = error.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => return "timed out".into(),
                _ => {}
            }
        }
        innermost = Some(s);
        source = s.source();
    }
    match innermost {
        Some(s) => truncate(&s.to_string(), 200).to_string(),
        None if error.is_timeout() => "timed out".into(),
        None => "no detail".into(),
    }
}

/// A failed HTTP answer's message: the status, Aurinko's `code`, `message` and `requestId`
/// (already redacted and cut by the caller). A 404 on `GET /calendars`, which Aurinko answers
/// to any valid token, most likely means a wrong base URL: the message says so first, so that
/// a shortened display still shows it.
pub fn describe_status(
    status: reqwest::StatusCode,
    endpoint: Endpoint,
    code: Option<&str>,
    text: Option<&str>,
    request_id: Option<&str>,
) -> String {
    let mut details = code.unwrap_or_default().to_string();
    if let Some(text) = text {
        if !details.is_empty() {
            details.push_str(": ");
        }
        details.push_str(text);
    }
    if let Some(id) = request_id {
        details.push_str(&format!(" (requestId {id})"));
    }
    let details = details.trim_start();
    if status == reqwest::StatusCode::NOT_FOUND && endpoint == Endpoint::ListCalendars {
        let mut message =
            "HTTP 404 Not Found from GET /calendars: is api.base_url right? It usually ends with /v1".to_string();
        if !details.is_empty() {
            message.push_str(&format!(" (Aurinko said {details})"));
        }
        return message;
    }
    let mut message = format!("HTTP {}", status.as_u16());
    if !details.is_empty() {
        message.push_str(&format!(" {details}"));
    }
    message
}

/// `s` cut to at most `max` characters.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Classifies a success answer whose body does not decode (cut short, not the JSON expected):
/// transient, as the next answer is likely whole.
pub fn classify_undecodable() -> ErrorClass {
    ErrorClass::Transient
}

/// What Aurinko says when it no longer accepts a delta or page token, as
/// lowercase text: a `code` (`token.notValid`, `syncToken.expired`) or a
/// message.
const EXPIRED_TOKEN_MARKERS: [&str; 3] = ["token.notvalid", "synctoken.expired", "page token is invalid"];

/// How deep into nested errors the markers are looked for. Aurinko wraps
/// the provider's error (`originalError`, which has its own `error`,
/// `innerError`, ...), so the marker may sit a few levels down.
const MAX_ERROR_DEPTH: usize = 32;

/// Whether the body names an expired token anywhere: in any string of the
/// JSON document (codes, messages, at any depth up to [`MAX_ERROR_DEPTH`]),
/// or, for a body that is not JSON (cut at the size limit, a proxy's page),
/// anywhere in its text.
fn names_an_expired_token(body: &[u8]) -> bool {
    let marked = |text: &str| {
        let text = text.to_ascii_lowercase();
        EXPIRED_TOKEN_MARKERS.iter().any(|m| text.contains(m))
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => any_string(&value, MAX_ERROR_DEPTH, &marked),
        Err(_) => marked(&String::from_utf8_lossy(body)),
    }
}

fn any_string(value: &serde_json::Value, depth: usize, test: &impl Fn(&str) -> bool) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => test(s),
        _ if depth == 0 => false,
        Value::Array(items) => items.iter().any(|v| any_string(v, depth - 1, test)),
        Value::Object(fields) => fields.values().any(|v| any_string(v, depth - 1, test)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    fn body(code: &str, message: &str) -> Vec<u8> {
        serde_json::json!({ "code": code, "message": message, "requestId": "r" }).to_string().into_bytes()
    }

    #[test]
    fn statuses_map_to_classes() {
        let e = Endpoint::SyncUpdated;
        assert_eq!(classify(500, b"", e), Transient);
        assert_eq!(classify(502, b"<html>bad gateway</html>", e), Transient);
        assert_eq!(classify(503, b"", e), Transient);
        assert_eq!(classify(429, b"", e), Transient);
        assert_eq!(classify(408, &body("requestTimeout", "Request Timeout"), e), Transient);
        assert_eq!(classify(504, &body("gatewayTimeout", "Gateway Timeout"), e), Transient);
        for endpoint in [Endpoint::SyncStart, Endpoint::SyncDeleted, Endpoint::ListCalendars, Endpoint::GetCollection] {
            for status in [408, 429, 500, 502, 503, 504] {
                assert_eq!(classify(status, b"", endpoint), Transient, "{status} on {endpoint:?}");
            }
        }
        assert_eq!(classify(410, &body("syncToken.expired", "syncToken expired."), e), ExpiredToken);
        assert_eq!(classify(410, b"", e), ExpiredToken);
        assert_eq!(classify(400, &body("token.notValid", "Delta token is invalid"), e), ExpiredToken);
        assert_eq!(classify(400, &body("badRequest", "Page token is invalid"), e), ExpiredToken);
        assert_eq!(classify(400, &body("badRequest", "timeMin is required"), e), Permanent);
        assert_eq!(classify(401, &body("token.dead", "Not authorized"), e), Auth);
        assert_eq!(classify(404, &body("badRequest", "Not found"), e), NotFound);
        assert_eq!(classify(404, b"", Endpoint::GetCollection), NotFound);
        assert_eq!(classify(404, b"", Endpoint::ListCalendars), Permanent);
        assert_eq!(classify(404, b"", Endpoint::ListTaskLists), Permanent);
        assert_eq!(classify(404, b"", Endpoint::Subscriptions), Permanent);
        assert_eq!(classify(403, b"", e), Permanent);
        assert_eq!(classify(412, b"", e), Permanent);
    }

    /// The base-URL hint comes with a 404 on `GET /calendars` only, first,
    /// so that a display cut short still shows it.
    #[test]
    fn a_404_listing_calendars_hints_at_the_base_url() {
        let not_found = reqwest::StatusCode::NOT_FOUND;
        let hint = "HTTP 404 Not Found from GET /calendars: is api.base_url right? It usually ends with /v1";
        assert_eq!(describe_status(not_found, Endpoint::ListCalendars, None, None, None), hint);
        assert_eq!(
            describe_status(not_found, Endpoint::ListCalendars, Some("notFound"), Some("Not found"), Some("r1")),
            format!("{hint} (Aurinko said notFound: Not found (requestId r1))")
        );
        for endpoint in [Endpoint::ListTaskLists, Endpoint::GetCalendar, Endpoint::SyncUpdated, Endpoint::Folders] {
            assert_eq!(describe_status(not_found, endpoint, Some("notFound"), None, None), "HTTP 404 notFound");
        }
        let unavailable = reqwest::StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(describe_status(unavailable, Endpoint::ListCalendars, None, Some("down"), None), "HTTP 503 down");
    }

    /// The markers count wherever the body carries them: a provider's
    /// error nested in `originalError`, `error`, `innerError`, arrays, any
    /// case; a body that is not JSON is searched as text.
    #[test]
    fn an_expired_token_is_recognised_anywhere_in_the_body() {
        let e = Endpoint::SyncDeleted;
        let bodies = [
            (
                r#"{"code":"badRequest","message":"Provider error","originalError":{"code":"syncToken.expired"}}"#,
                ExpiredToken,
            ),
            (
                r#"{"code":"badRequest","originalError":{"error":{"code":"Bad","innerError":{"code":"token.notValid"}}}}"#,
                ExpiredToken,
            ),
            (
                r#"{"code":"badRequest","originalError":{"error":{"errors":[{"a":1},{"message":"Page token is invalid."}]}}}"#,
                ExpiredToken,
            ),
            (
                r#"{"code":"badRequest","error":{"innerError":{"innerError":{"message":"SYNCTOKEN.EXPIRED: start over"}}}}"#,
                ExpiredToken,
            ),
            (r#"not JSON at all, but: syncToken.expired"#, ExpiredToken),
            (r#"{"code":"badRequest","originalError":{"error":{"message":"Page token is invalid"#, ExpiredToken),
            (r#"{"code":"badRequest","originalError":{"error":{"message":"Page token is inva"#, Permanent),
            (
                r#"{"code":"badRequest","originalError":{"error":{"code":"invalidArgument","message":"bad"}}}"#,
                Permanent,
            ),
        ];
        for (body, class) in bodies {
            assert_eq!(classify(400, body.as_bytes(), e), class, "{body}");
        }
        // A marker does not turn other statuses into an expiry.
        let marked = body("syncToken.expired", "syncToken expired.");
        assert_eq!(classify(401, &marked, e), Auth);
        assert_eq!(classify(429, &marked, e), Transient);
        assert_eq!(classify(503, &marked, e), Transient);
        // Deeper than the bound, it is not looked for.
        let mut deep = serde_json::json!({"code": "syncToken.expired"});
        for _ in 0..MAX_ERROR_DEPTH {
            deep = serde_json::json!({ "innerError": deep });
        }
        assert_eq!(classify(400, deep.to_string().as_bytes(), e), Permanent);
        let mut reachable = serde_json::json!({"code": "syncToken.expired"});
        for _ in 0..MAX_ERROR_DEPTH - 1 {
            reachable = serde_json::json!({ "innerError": reachable });
        }
        assert_eq!(classify(400, reachable.to_string().as_bytes(), e), ExpiredToken);
    }
}
