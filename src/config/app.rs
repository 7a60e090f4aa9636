//! `[app]`: the app's own credentials, with which it acts for any account it
//! has connected (HTTP Basic `client_id:secret` and `X-Aurinko-Account-Id`),
//! and `accounts = "aurinko"`: sync every account `GET /v1/am/accounts`
//! lists, each as `[app.each_account]` says.

use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;

use super::selection::{RawSelection, Selection, validate_selection};
use super::{ConfigError, non_empty, read_secret};

#[derive(Clone)]
pub struct AppConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    /// `accounts = "aurinko"`: every account the app lists is synced with
    /// this selection; `None`: only the `[[accounts]]` entries.
    pub discover: Option<Selection>,
    /// An account that leaves the app's list (disconnected) has its rows
    /// deleted; by default they are kept, and `state` shows it stopped.
    pub purge_removed_accounts: bool,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("discover", &self.discover)
            .field("purge_removed_accounts", &self.purge_removed_accounts)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<String>,
    /// `"aurinko"` or `"configured"`.
    accounts: Option<String>,
    purge_removed_accounts: Option<bool>,
    each_account: Option<RawSelection>,
}

pub(super) fn validate_app(
    raw: RawApp,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: bool,
    dir: &Path,
) -> Result<AppConfig, ConfigError> {
    let client_id =
        non_empty("app.client_id", raw.client_id)?.ok_or_else(|| ConfigError::at("app.client_id", "missing"))?;
    if client_id.contains(':') || client_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        // HTTP Basic joins id and secret with ':'; the id cannot hold one.
        return Err(ConfigError::at("app.client_id", "must not contain ':', spaces or control characters"));
    }
    let secret = read_secret(
        "app.client_secret_env",
        "app.client_secret_file",
        raw.client_secret_env,
        raw.client_secret_file,
        env,
        resolve,
        dir,
    )?;
    if secret.chars().any(char::is_control) {
        return Err(ConfigError::at("app.client_secret", "the secret contains control characters"));
    }
    let discover = match raw.accounts.as_deref() {
        None | Some("configured") => {
            if raw.each_account.is_some() {
                return Err(ConfigError::at(
                    "app.each_account",
                    "is the template of discovered accounts: set app.accounts = \"aurinko\"",
                ));
            }
            None
        }
        Some("aurinko") => Some(validate_selection("app.each_account", raw.each_account.unwrap_or_default())?),
        Some(other) => {
            return Err(ConfigError::at(
                "app.accounts",
                format!("expected \"aurinko\" (every account of the app) or \"configured\", got {other:?}"),
            ));
        }
    };
    Ok(AppConfig {
        client_id,
        client_secret: SecretString::from(secret),
        discover,
        purge_removed_accounts: raw.purge_removed_accounts.unwrap_or(false),
    })
}
