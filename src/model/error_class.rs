//! What a failed request means for the sync: the class the HTTP boundary
//! gives every error, so that the machine decides from it alone.

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
