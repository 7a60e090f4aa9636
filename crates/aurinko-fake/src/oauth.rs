//! The account OAuth flow (spec tag Auth): `GET /v1/auth/authorize` (operation `authorize`)
//! and `POST /v1/auth/token/{code}` (operation `authCodeExchange`; the deprecated `GET`
//! `getAccessTokenByCode` too), so that a client's `auth add` runs end to end on loopback.
//!
//! Here, to keep that flow testable without a browser, the user consents at once: `authorize`
//! answers 303 to `returnUrl` with `code` and `state` (and `status=success`). With
//! [`FakeAurinko::set_consent_denied`] it redirects with the refusal instead. The spec does not
//! shape the refused callback; the fake sends what OAuth 2 (RFC 6749, 4.1.2.1) does, `error`
//! and `error_description`, beside `status=error` and `state`.
//!
//! A code is single-use and bound to the app that asked for it. Exchanging it with the app's
//! Basic credentials (401 when wrong) creates a new account, whose `accessToken` then works on
//! every data endpoint: a primary calendar with [`FakeAurinko::set_authorized_events`] events
//! (20 by default).

use std::collections::HashMap;

use rand::Rng;
use serde_json::json;

use super::app::Credentials;
use super::error::ApiError;
use super::reply::Reply;
use super::webhooks::account_id;
use super::{FakeAurinko, Shared};

/// The service types an account flow may ask for (spec `ServiceTypeNonDaemon`, those with
/// mailboxes).
const SERVICE_TYPES: [&str; 4] = ["Google", "Office365", "EWS", "IMAP"];

/// Aurinko's scopes (spec `Scope`).
const SCOPES: [&str; 11] = [
    "Calendar.Read",
    "Calendar.ReadWrite",
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.Send",
    "Mail.Drafts",
    "Mail.All",
    "Contacts.Read",
    "Contacts.ReadWrite",
    "Tasks.Read",
    "Tasks.ReadWrite",
];

/// The longest `returnUrl` or `state` accepted.
const MAX_PARAM: usize = 2048;

/// The flow's state: codes handed out and not yet exchanged, and the knobs.
#[derive(Default)]
pub(crate) struct OAuth {
    /// Code -> the authorization it stands for.
    codes: HashMap<String, Authorization>,
    /// Every authorization asked for, in order (for assertions).
    log: Vec<Authorization>,
    deny: bool,
    /// Events in a new account's primary calendar; `None`: the default.
    events: Option<usize>,
    /// Accounts created by an exchange so far.
    created: usize,
}

/// One `GET /v1/auth/authorize` as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub client_id: String,
    pub service_type: String,
    /// The `scopes` parameter split on spaces.
    pub scopes: Vec<String>,
    pub return_url: String,
    pub state: Option<String>,
}

/// Events in an authorized account's calendar unless set.
const DEFAULT_EVENTS: usize = 20;

impl Shared {
    /// `GET /v1/auth/authorize`, its query parameters read through `param`: needs no
    /// credentials (spec `security: []`).
    pub(crate) fn authorize(
        &mut self,
        param: impl Fn(&str) -> Result<Option<String>, ApiError>,
    ) -> Result<Reply, ApiError> {
        let required = |name: &str| {
            param(name)?
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ApiError::bad_request(format!("Parameter {name} is required")))
        };
        let client_id = required("clientId")?;
        if self.app.as_ref().is_none_or(|app| app.client_id() != client_id) {
            return Err(ApiError::bad_request("Unknown clientId"));
        }
        let service_type = required("serviceType")?;
        if !SERVICE_TYPES.contains(&service_type.as_str()) {
            return Err(ApiError::bad_request(format!("Unsupported serviceType {service_type}")));
        }
        let scopes: Vec<String> =
            param("scopes")?.unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
        if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return Err(ApiError::bad_request(format!("Unknown scope {bad}")));
        }
        match param("responseType")?.as_deref() {
            None | Some("") | Some("code") => {}
            Some(_) => return Err(ApiError::bad_request("The fake supports responseType=code only")),
        }
        let return_url = required("returnUrl")?;
        let parsed = reqwest::Url::parse(&return_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && return_url.len() <= MAX_PARAM)
            .ok_or_else(|| ApiError::bad_request("returnUrl must be an http(s) URL"))?;
        let state = param("state")?;
        if state.as_ref().is_some_and(|s| s.len() > MAX_PARAM) {
            return Err(ApiError::bad_request("state is too long"));
        }
        let authorization = Authorization { client_id, service_type, scopes, return_url, state: state.clone() };
        self.oauth.log.push(authorization.clone());
        let mut location = parsed;
        {
            let mut query = location.query_pairs_mut();
            if self.oauth.deny {
                query
                    .append_pair("status", "error")
                    .append_pair("error", "access_denied")
                    .append_pair("error_description", "The user did not grant access");
            } else {
                let code = format!("code-{:016x}", rand::random::<u64>());
                query.append_pair("code", &code).append_pair("status", "success");
                self.oauth.codes.insert(code, authorization);
            }
            if let Some(state) = &state {
                query.append_pair("state", state);
            }
        }
        Ok(Reply::empty(303).with_header(axum::http::header::LOCATION, location.to_string()))
    }

    /// `POST /v1/auth/token/{code}` with the app's Basic credentials: the new account's
    /// `AccountSaveResult`.
    pub(crate) fn exchange_code(&mut self, credentials: &Credentials, code: Option<&str>) -> Result<Reply, ApiError> {
        let app = self.app.as_ref().ok_or_else(ApiError::unauthorized)?;
        let client_id = match credentials {
            Credentials::App { basic: Some((id, secret)), .. } if app.accepts(id, secret) => id.clone(),
            _ => return Err(ApiError::new(401, "unauthorized", "Invalid client credentials")),
        };
        let code = code.unwrap_or_default();
        match self.oauth.codes.get(code) {
            Some(authorization) if authorization.client_id == client_id => {}
            _ => return Err(ApiError::bad_request("Invalid or expired code")),
        }
        self.oauth.codes.remove(code);
        self.oauth.created += 1;
        let name = format!("authorized-{}", self.oauth.created);
        // Random throughout, as a real token is: a client's leak checks look for any piece of it.
        let token: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(40).map(char::from).collect();
        self.data.add_account(&name, &token);
        let calendar = format!("cal-{name}");
        self.data.add_calendar(&token, &calendar, "Calendar", true);
        let events = self.oauth.events.unwrap_or(DEFAULT_EVENTS);
        if let Some(store) = self.data.store_of(&token, &super::Collection::Calendar(calendar)) {
            self.data.generate(store, events);
        }
        let index = self.data.account_by_token(&token).unwrap_or_default();
        let body = json!({
            "accountId": account_id(index),
            "accessToken": token,
            "userId": format!("user-{name}"),
        });
        Ok(Reply::json(200, serde_json::to_vec(&body).unwrap_or_default()))
    }
}

impl FakeAurinko {
    /// While `denied`, `GET /v1/auth/authorize` redirects with the user's refusal
    /// (`error=access_denied`) instead of a code.
    pub fn set_consent_denied(&self, denied: bool) {
        self.with(|s| s.oauth.deny = denied);
    }

    /// Events generated in the primary calendar of each account an exchange creates.
    pub fn set_authorized_events(&self, events: usize) {
        self.with(|s| s.oauth.events = Some(events));
    }

    /// Every `GET /v1/auth/authorize` that got past its checks, in order.
    pub fn authorizations(&self) -> Vec<Authorization> {
        self.with(|s| s.oauth.log.clone())
    }

    /// Codes handed out and not exchanged yet.
    pub fn pending_codes(&self) -> usize {
        self.with(|s| s.oauth.codes.len())
    }
}
