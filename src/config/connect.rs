//! What `auth add` reads of a configuration file before it adds an account to it: the API's
//! settings and the app's credentials. The file may have no account yet (that is what the
//! command is for), and the tokens of those it has need not be at hand, so the rest of the
//! file is not resolved here; the whole file, the new entry in it, is validated as `state`
//! validates it before anything is written ([`Config::check_without_tokens`]).

use std::path::Path;

use serde::Deserialize;

use super::app::{RawApp, validate_app};
use super::{ApiConfig, AppConfig, Config, ConfigError, RawApi, describe_toml_error, validate_api};

/// The settings the OAuth flow needs.
pub struct ConnectSettings {
    pub api: ApiConfig,
    /// `[app]`, its secret read; `None` when the file has none.
    pub app: Option<AppConfig>,
}

/// The tables read; the others are left for the full validation.
#[derive(Deserialize)]
struct RawConnect {
    #[serde(default)]
    api: RawApi,
    app: Option<RawApp>,
}

/// `[api]` and `[app]` of `text` (a configuration in `dir`; empty when there is no file
/// yet), the app's secret resolved through `env`.
pub fn connect_settings(
    text: &str,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ConnectSettings, ConfigError> {
    let raw: RawConnect = toml::from_str(text).map_err(|e| describe_toml_error(text, e))?;
    let api = validate_api(raw.api)?;
    let app = match raw.app {
        None => None,
        Some(app) => Some(validate_app(app, env, true, dir)?),
    };
    Ok(ConnectSettings { api, app })
}

impl Config {
    /// Validates configuration text as `state` reads it (tokens and secrets not read);
    /// relative paths in it start from `dir`.
    pub fn check_without_tokens(text: &str, dir: &Path) -> Result<(), ConfigError> {
        Self::parse_with(text, &|_| None, false, dir).map(|_| ())
    }
}
