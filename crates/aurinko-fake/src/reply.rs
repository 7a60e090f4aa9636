//! A response before it becomes HTTP, and percent-decoding: what the router
//! and the webhook code both speak.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::error::ApiError;
use super::subscription::Draft;

/// A response before it becomes HTTP.
pub(crate) struct Reply {
    pub status: u16,
    pub body: ReplyBody,
    pub headers: Vec<(header::HeaderName, String)>,
}

pub(crate) enum ReplyBody {
    Json(Vec<u8>),
    /// An HTML page, as proxies answer errors.
    Html(Vec<u8>),
    /// No body and no `Content-Type` (the spec's body-less 200s, e.g. `DELETE`).
    Empty,
    /// Headers and then a body that fails at once: hyper aborts the connection.
    Reset,
    /// Not an answer yet: a subscription to create once its handshake succeeds.
    Handshake(Box<Draft>),
}

impl Reply {
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self { status, body: ReplyBody::Json(body), headers: Vec::new() }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Self { status, body: ReplyBody::Empty, headers: Vec::new() }
    }

    pub(crate) fn handshake(draft: Draft) -> Self {
        Self { status: 0, body: ReplyBody::Handshake(Box::new(draft)), headers: Vec::new() }
    }

    pub fn error(error: &ApiError, request_id: &str) -> Self {
        let mut reply = Self::json(error.status, error.body(request_id));
        if error.status == 401 {
            reply.headers.push((header::WWW_AUTHENTICATE, "Bearer".to_string()));
        }
        reply
    }

    pub(crate) fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn into_response(self) -> Response {
        let json = matches!(self.body, ReplyBody::Json(_) | ReplyBody::Reset);
        let html = matches!(self.body, ReplyBody::Html(_));
        let body = match self.body {
            ReplyBody::Json(bytes) | ReplyBody::Html(bytes) => Body::from(Bytes::from(bytes)),
            ReplyBody::Empty | ReplyBody::Handshake(_) => Body::empty(),
            ReplyBody::Reset => Body::from_stream(futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                ))
            })),
        };
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if json {
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        } else if html {
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// Percent-decoding; in a query (`plus_is_space`) `+` means a space, as form encoding says.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
