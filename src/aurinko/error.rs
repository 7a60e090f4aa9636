//! Error classification, done once at the HTTP boundary.
//!
//! The machine decides what to do from the class alone, never from strings,
//! so this file is the only place that reads status codes and error codes.

use std::fmt;

/// What an error means for the sync, not where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Worth retrying after a pause: 5xx, 408, 429, timeouts, reset
    /// connections, bodies that do not decode.
    Transient,
    /// The delta or page token is no longer valid: 410, or a 4xx whose body
    /// carries `token.notValid`, `syncToken.expired` or "Page token is
    /// invalid" anywhere, nested provider errors included.
    ExpiredToken,
    /// The account token is missing, dead or cannot be refreshed (401).
    Auth,
    /// 404 on a collection's endpoint: the collection may be gone, or the
    /// token may not see it (Aurinko answers 404 for both). Only the machine
    /// can tell what it means for the collection.
    NotFound,
    /// Anything else: retrying the same request cannot help.
    Permanent,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::ExpiredToken => "expired_token",
            ErrorClass::Auth => "auth",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Permanent => "permanent",
        }
    }

    pub fn is_retryable(self) -> bool {
        self == ErrorClass::Transient
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    Subscriptions,
    Folders,
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
            Endpoint::Subscriptions => "subscriptions",
            Endpoint::Folders => "folders",
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
