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
    /// The delta or page token is no longer valid (410, or 400
    /// `token.notValid` / "Page token is invalid").
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
    SyncStart,
    SyncUpdated,
    SyncDeleted,
    Account,
    Subscriptions,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ListCalendars => "calendars",
            Endpoint::GetCalendar => "calendar",
            Endpoint::GetCollection => "collection",
            Endpoint::SyncStart => "sync_start",
            Endpoint::SyncUpdated => "sync_updated",
            Endpoint::SyncDeleted => "sync_deleted",
            Endpoint::Account => "account",
            Endpoint::Subscriptions => "subscriptions",
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

/// Classifies an HTTP error response. `code` and `message` come from
/// Aurinko's `ApiRequestFailed` body when it decoded.
pub fn classify(status: u16, code: Option<&str>, message: Option<&str>, endpoint: Endpoint) -> ErrorClass {
    let bad_token = code.is_some_and(|c| c == "token.notValid" || c == "syncToken.expired")
        || message.is_some_and(|m| m.contains("Page token is invalid"));
    match status {
        401 => ErrorClass::Auth,
        410 => ErrorClass::ExpiredToken,
        400 if bad_token => ErrorClass::ExpiredToken,
        404 if endpoint.is_collection_scoped() => ErrorClass::NotFound,
        408 | 429 => ErrorClass::Transient,
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    #[test]
    fn statuses_map_to_classes() {
        let e = Endpoint::SyncUpdated;
        assert_eq!(classify(500, None, None, e), Transient);
        assert_eq!(classify(502, None, None, e), Transient);
        assert_eq!(classify(503, None, None, e), Transient);
        assert_eq!(classify(429, None, None, e), Transient);
        assert_eq!(classify(408, None, None, e), Transient);
        assert_eq!(classify(410, Some("syncToken.expired"), None, e), ExpiredToken);
        assert_eq!(classify(400, Some("token.notValid"), None, e), ExpiredToken);
        assert_eq!(classify(400, Some("badRequest"), Some("Page token is invalid"), e), ExpiredToken);
        assert_eq!(classify(400, Some("badRequest"), Some("timeMin is required"), e), Permanent);
        assert_eq!(classify(401, Some("token.dead"), None, e), Auth);
        assert_eq!(classify(404, Some("badRequest"), None, e), NotFound);
        assert_eq!(classify(404, None, None, Endpoint::GetCollection), NotFound);
        assert_eq!(classify(404, None, None, Endpoint::ListCalendars), Permanent);
        assert_eq!(classify(404, None, None, Endpoint::Subscriptions), Permanent);
        assert_eq!(classify(403, None, None, e), Permanent);
        assert_eq!(classify(412, None, None, e), Permanent);
    }
}
