//! `ApiRequestFailed` errors, the body every failing Aurinko response carries.

use serde_json::{Value, json};

/// How the fake refuses a delta or page token of an older epoch (after `expire_tokens`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpiredAnswer {
    /// 410 `syncToken.expired`, as the spec documents.
    #[default]
    Gone,
    /// 400 `badRequest` with the provider's error in `originalError`, and `syncToken.expired`
    /// only deep inside it (`originalError.error.innerError.code`).
    Nested,
    /// 400 `badRequest` with no marker at all: to a client, a permanent failure like any other.
    Unmarked,
}

/// An error answer: HTTP status plus the `code` and `message` of an `ApiRequestFailed` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The provider's error Aurinko passes through, when there is one.
    pub original_error: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), original_error: None }
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

    /// A token of an older epoch, refused the way `answer` says.
    pub fn expired(answer: ExpiredAnswer) -> Self {
        match answer {
            ExpiredAnswer::Gone => Self::sync_token_expired(),
            ExpiredAnswer::Nested => Self {
                original_error: Some(json!({
                    "error": {
                        "code": "InvalidRequest",
                        "message": "The request could not be completed.",
                        "innerError": { "code": "syncToken.expired", "date": "2026-11-27T12:00:00" }
                    }
                })),
                ..Self::bad_request("Provider request failed")
            },
            ExpiredAnswer::Unmarked => Self::bad_request("Invalid request"),
        }
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

    pub fn task_list_not_found() -> Self {
        Self::new(404, "notFound", "Task list not found")
    }

    /// JSON body `{code, message, requestId}`, with `originalError` when there is one.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        let mut body = json!({
            "code": self.code,
            "message": self.message,
            "requestId": request_id,
        });
        if let Some(original) = &self.original_error {
            body["originalError"] = original.clone();
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
