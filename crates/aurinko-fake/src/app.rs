//! App-level authentication (the spec's `AppAuth` with `AccountIdHeader`) and the app's account
//! list, `GET /v1/am/accounts` (operation `getAccounts`).
//!
//! An app acts for any of its accounts with HTTP Basic `client_id:secret` and the header
//! `X-Aurinko-Account-Id`; the fake accepts that beside an account's bearer token once
//! [`FakeAurinko::set_app_credentials`] has set the app's credentials, and refuses a wrong
//! secret as Aurinko does (401).

use base64::Engine as _;
use serde_json::json;

use super::data::TokenStatus;
use super::error::ApiError;
use super::webhooks::account_id;
use super::{FakeAurinko, Shared};

/// The header naming the account an app request acts for (spec `AccountIdHeader`).
pub const ACCOUNT_ID_HEADER: &str = "x-aurinko-account-id";

/// The page size `getAccounts` uses when the request gives none (the spec's default).
const DEFAULT_LIMIT: usize = 50;

/// The app's own credentials.
pub(crate) struct AppCredentials {
    client_id: String,
    secret: String,
}

impl AppCredentials {
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether Basic `id:secret` are these credentials.
    pub(crate) fn accepts(&self, id: &str, secret: &str) -> bool {
        id == self.client_id && secret == self.secret
    }
}

/// Who a request says it is, before anything is checked.
#[derive(Clone, Debug, Default)]
pub(crate) enum Credentials {
    #[default]
    None,
    Bearer(String),
    /// Basic `client_id:secret` as decoded (`None` when it was not valid base64 of `id:secret`),
    /// and the account id header as sent.
    App {
        basic: Option<(String, String)>,
        account: Option<String>,
    },
}

impl Credentials {
    /// From an `Authorization` header's value and the account id header.
    pub(crate) fn parse(authorization: Option<&str>, account: Option<&str>) -> Credentials {
        let Some((scheme, rest)) = authorization.and_then(|v| v.trim().split_once(' ')) else {
            return Credentials::None;
        };
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Credentials::Bearer(rest.to_string());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let basic = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.split_once(':').map(|(id, secret)| (id.to_string(), secret.to_string())));
            return Credentials::App { basic, account: account.map(str::to_string) };
        }
        Credentials::None
    }

    pub(crate) fn bearer(&self) -> Option<&str> {
        match self {
            Credentials::Bearer(token) => Some(token),
            _ => None,
        }
    }
}

/// Whom a request authenticated as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// An account, by its bearer token or by the app with the account id header.
    Account(usize),
    /// The app without an account (only `GET /v1/am/accounts` accepts it).
    App,
}

impl Shared {
    /// Checks a request's credentials; the error is what Aurinko answers.
    pub(crate) fn authenticate(&self, credentials: &Credentials) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::None => Err(ApiError::unauthorized()),
            Credentials::Bearer(token) => {
                let account = self.data.account_by_token(token).ok_or_else(ApiError::unauthorized)?;
                self.usable(account)
            }
            Credentials::App { basic, account } => {
                let app = self.app.as_ref().ok_or_else(ApiError::unauthorized)?;
                match basic {
                    Some((id, secret)) if *id == app.client_id && *secret == app.secret => {}
                    _ => return Err(ApiError::new(401, "unauthorized", "Invalid client credentials")),
                }
                let Some(header) = account else { return Ok(Caller::App) };
                let index = self
                    .account_by_header(header)
                    .ok_or_else(|| ApiError::new(401, "unauthorized", "Unknown account"))?;
                self.usable(index)
            }
        }
    }

    /// An account that may be acted for: connected, and with a token Aurinko can use.
    fn usable(&self, account: usize) -> Result<Caller, ApiError> {
        let data = self.data.account(account);
        if !data.connected {
            return Err(ApiError::unauthorized());
        }
        match data.status {
            // "With invalid tokens Aurinko will still try to access provider API" (spec
            // `TokenStatus`): the fake's provider answers.
            TokenStatus::Active | TokenStatus::Invalid => Ok(Caller::Account(account)),
            TokenStatus::Dead => Err(ApiError::token_dead()),
        }
    }

    /// The account a request would act for, for the log: checked only as far as naming it.
    pub(crate) fn account_named(&self, credentials: &Credentials) -> Option<usize> {
        match credentials {
            Credentials::None => None,
            Credentials::Bearer(token) => self.data.account_by_token(token),
            Credentials::App { account, .. } => account.as_deref().and_then(|id| self.account_by_header(id)),
        }
    }

    /// The account an `X-Aurinko-Account-Id` value names, if any.
    fn account_by_header(&self, header: &str) -> Option<usize> {
        let id = header.trim().parse::<i64>().ok()?;
        usize::try_from(id - account_id(0)).ok().filter(|&index| index < self.data.account_count())
    }

    /// `GET /v1/am/accounts`: the connected accounts by id, `limit` (at most the fake's page
    /// size) from `offset`. Returns the body and the number of records in it.
    pub(crate) fn accounts_page(
        &self,
        limit: Option<&str>,
        offset: Option<&str>,
        page_size: usize,
    ) -> Result<(Vec<u8>, usize), ApiError> {
        let number = |name: &str, text: Option<&str>, default: usize| match text {
            None | Some("") => Ok(default),
            Some(text) => text
                .parse::<i32>()
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| ApiError::bad_request(format!("{name} must be a non-negative integer"))),
        };
        let limit = number("limit", limit, DEFAULT_LIMIT)?.clamp(1, page_size.max(1));
        let offset = number("offset", offset, 0)?;
        let connected: Vec<usize> =
            (0..self.data.account_count()).filter(|&index| self.data.account(index).connected).collect();
        let records: Vec<serde_json::Value> = connected
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&index| serde_json::from_slice(&self.account_json(index)).unwrap_or_default())
            .collect();
        let count = records.len();
        let body = json!({
            "totalSize": connected.len(),
            "offset": offset,
            "done": offset + count >= connected.len(),
            "records": records,
        });
        Ok((serde_json::to_vec(&body).unwrap_or_default(), count))
    }
}

impl FakeAurinko {
    /// Lets the app with these credentials act for any account (HTTP Basic plus
    /// `X-Aurinko-Account-Id`) and list them (`GET /v1/am/accounts`); a wrong secret is refused.
    pub fn set_app_credentials(&self, client_id: &str, secret: &str) {
        let app = AppCredentials { client_id: client_id.to_string(), secret: secret.to_string() };
        self.with(|s| s.app = Some(app));
    }

    /// The account's `tokenStatus`, as the app's list shows it: `dead` makes every request of
    /// it answer 401 `token.dead`; with `invalid` Aurinko still tries the provider, whose
    /// answers the fake gives as usual.
    pub fn set_token_status(&self, token: &str, status: TokenStatus) {
        self.with(|s| s.data.set_token_status(token, status));
    }

    /// Disconnects the account from the app: it leaves `GET /v1/am/accounts`, and every request
    /// for it answers 401.
    pub fn disconnect_account(&self, token: &str) {
        self.with(|s| s.data.disconnect(token));
    }
}
