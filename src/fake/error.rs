//! `ApiRequestFailed` errors, the body every failing Aurinko response carries.

use serde_json::json;

/// An error answer: HTTP status plus the `code` and `message` of an `ApiRequestFailed` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "badRequest", message)
    }

    /// The 400 the official Java client recognises as "drop this token" (`token.notValid`).
    pub fn token_not_valid(message: impl Into<String>) -> Self {
        Self::new(400, "token.notValid", message)
    }

    /// Spec response `ResourceExpiredError`, verbatim.
    pub fn sync_token_expired() -> Self {
        Self::new(410, "syncToken.expired", "syncToken expired.")
    }

    /// Spec example `missingToken`.
    pub fn unauthorized() -> Self {
        Self::new(401, "unauthorized", "unauthorized")
    }

    /// Spec example `deadToken`.
    pub fn token_dead() -> Self {
        Self::new(401, "token.dead", "Not authorized")
    }

    pub fn calendar_not_found() -> Self {
        Self::new(404, "notFound", "Calendar not found")
    }

    /// JSON body `{code, message, requestId}`.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "code": self.code,
            "message": self.message,
            "requestId": request_id,
        }))
        .unwrap_or_default()
    }
}
