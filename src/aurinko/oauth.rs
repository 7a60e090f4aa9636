//! The account OAuth flow's two HTTP ends (spec tag Auth), kept at the HTTP boundary with the
//! rest: the `GET /auth/authorize` URL a browser is sent to, and the exchange of the code it
//! comes back with, `POST /auth/token/{code}` with the app's Basic credentials, whose
//! `AccountSaveResult` holds the new account's token. The flow itself (listener, files,
//! configuration) is `auth add`'s, in `cli::auth`.

use reqwest::{Method, Url};
use secrecy::SecretString;
use serde::Deserialize;

use super::client::{AccountClient, Api};
use super::error::{ApiError, Endpoint};
use crate::model::ErrorClass;

/// What `GET /auth/authorize` is asked for (`responseType=code` always).
pub struct AuthorizeRequest<'a> {
    pub client_id: &'a str,
    /// `Google`, `Office365`, `EWS` or `IMAP` (spec `ServiceTypeNonDaemon`).
    pub service_type: &'a str,
    /// Aurinko's scopes (`Calendar.Read`, ...), sent space separated.
    pub scopes: &'a [String],
    /// Where Aurinko sends the browser back with `code` and `state`.
    pub return_url: &'a str,
    /// Checked against what comes back, so a redirect someone else started is refused.
    pub state: &'a str,
}

/// The part of `AccountSaveResult` kept: the new account's id and access token.
pub struct Connected {
    pub account_id: Option<i64>,
    pub access_token: SecretString,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountSaveResult {
    #[serde(default)]
    account_id: Option<i64>,
    #[serde(default)]
    access_token: Option<String>,
}

impl Api {
    /// The URL of `GET {base}/auth/authorize` for `request`, to open in a browser.
    pub fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url, ApiError> {
        let mut url = self.url(Endpoint::Authorize, &["auth", "authorize"])?;
        url.query_pairs_mut()
            .append_pair("clientId", request.client_id)
            .append_pair("serviceType", request.service_type)
            .append_pair("scopes", &request.scopes.join(" "))
            .append_pair("responseType", "code")
            .append_pair("returnUrl", request.return_url)
            .append_pair("state", request.state);
        Ok(url)
    }
}

impl AccountClient {
    /// `POST /auth/token/{code}` with the app's credentials (the client from
    /// [`Api::app_client`]). One attempt: a code is single-use, so a retry after an answer
    /// that was lost could only be refused. A 401 (the app's credentials refused) is
    /// [`ErrorClass::Auth`]; an answer without a token is permanent.
    pub async fn exchange_code(&self, code: &str) -> Result<Connected, ApiError> {
        let url = self.api().url(Endpoint::AuthToken, &["auth", "token", code])?;
        let decode = |body: &[u8]| {
            let result: AccountSaveResult = super::client::decode_json(body)?;
            match result.access_token.filter(|t| !t.trim().is_empty()) {
                Some(token) => Ok(Connected { account_id: result.account_id, access_token: SecretString::from(token) }),
                None => Err("AccountSaveResult without an accessToken".to_string()),
            }
        };
        let result = self.attempt(Endpoint::AuthToken, Method::POST, url, None, &decode).await;
        result.map_err(|e| {
            // A body that did not decode is not worth retrying here either.
            let class =
                if e.class == ErrorClass::Transient && e.status == Some(200) { ErrorClass::Permanent } else { e.class };
            self.inert_error(ApiError { class, ..e })
        })
    }
}
