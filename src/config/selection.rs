//! What to sync for an account: calendars (all or listed), the mailbox, the
//! address book, task lists. The same keys serve an `[[accounts]]` entry and
//! `[app.each_account]`, the template of accounts the app discovers.

use serde::Deserialize;

use super::{BodyType, ConfigError, positive};

/// Which calendars of an account to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSelection {
    All,
    /// Calendar ids as configured; `primary` is resolved through discovery.
    Listed(Vec<String>),
}

/// Email sync settings (`email = { days_within = 30, body = "text" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailConfig {
    /// Only messages received within this many days are loaded initially.
    pub days_within: Option<u32>,
    /// Message bodies as text or HTML; `None` leaves bodies out.
    pub body: Option<BodyType>,
}

/// Task sync settings (`tasks = true`, or `tasks = { completed_within_days = 90 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TasksConfig {
    /// Completed tasks whose completion lies further back than this many
    /// days are left out of the initial load; `None` loads every task.
    pub completed_within_days: Option<u32>,
}

/// What to sync for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub calendars: CalendarSelection,
    /// `None`: the mailbox is not synced.
    pub email: Option<EmailConfig>,
    pub contacts: bool,
    /// `None`: task lists are not synced.
    pub tasks: Option<TasksConfig>,
    /// Discovery lists calendars shared with the user too (`withShared=true`).
    pub shared_calendars: bool,
}

/// The selection's keys as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelection {
    /// `"all"` or a list of ids; checked by hand so a wrong shape gets a
    /// message naming the key rather than serde's "no variant matched".
    pub calendars: Option<toml::Value>,
    pub email: Option<RawEmail>,
    pub contacts: Option<bool>,
    /// `true`, `false` or `{ completed_within_days = N }`; checked by hand
    /// like `calendars`.
    pub tasks: Option<toml::Value>,
    pub shared_calendars: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmail {
    pub days_within: Option<i64>,
    pub body: Option<String>,
}

/// Checks a selection; `prefix` names where it is (`accounts[0]`,
/// `app.each_account`) in errors.
pub(super) fn validate_selection(prefix: &str, raw: RawSelection) -> Result<Selection, ConfigError> {
    let key = |field: &str| format!("{prefix}.{field}");
    let expected = "expected \"all\" or a list of calendar ids";
    let calendars = match raw.calendars {
        None => CalendarSelection::All,
        Some(toml::Value::String(k)) if k == "all" => CalendarSelection::All,
        Some(toml::Value::Array(items)) if items.is_empty() => CalendarSelection::Listed(Vec::new()),
        Some(toml::Value::Array(items)) => {
            let ids = items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(id) => Ok(id),
                    other => Err(ConfigError::at(key("calendars"), format!("{expected}, got {other}"))),
                })
                .collect::<Result<Vec<String>, ConfigError>>()?;
            if let Some(bad) = ids.iter().find(|id| id.trim().is_empty()) {
                return Err(ConfigError::at(key("calendars"), format!("empty calendar id {bad:?}")));
            }
            // Ids are path segments of requests, and these two are dot
            // segments ("this", "the parent"): see `Api::url`.
            if let Some(bad) = ids.iter().find(|id| matches!(id.as_str(), "." | "..")) {
                return Err(ConfigError::at(
                    key("calendars"),
                    format!("calendar id {bad:?} cannot be a URL path segment"),
                ));
            }
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            if unique.len() != ids.len() {
                return Err(ConfigError::at(key("calendars"), "a calendar id is listed twice"));
            }
            CalendarSelection::Listed(ids)
        }
        Some(other) => return Err(ConfigError::at(key("calendars"), format!("{expected}, got {other}"))),
    };
    let email = match raw.email {
        None => None,
        Some(e) => {
            let days_within = match e.days_within {
                None => None,
                Some(days) => Some(positive(&key("email.days_within"), Some(days), 0)?),
            };
            let body = match e.body.as_deref() {
                None => None,
                Some("text") => Some(BodyType::Text),
                Some("html") => Some(BodyType::Html),
                Some(other) => {
                    return Err(ConfigError::at(
                        key("email.body"),
                        format!("expected \"text\" or \"html\", got {other:?}"),
                    ));
                }
            };
            Some(EmailConfig { days_within, body })
        }
    };
    let contacts = raw.contacts.unwrap_or(false);
    let tasks = validate_tasks(&key("tasks"), raw.tasks)?;
    if calendars == CalendarSelection::Listed(Vec::new()) && email.is_none() && !contacts && tasks.is_none() {
        return Err(ConfigError::at(
            key("calendars"),
            "nothing to sync: no calendars, no email, no contacts, no tasks",
        ));
    }
    let shared_calendars = raw.shared_calendars.unwrap_or(false);
    if shared_calendars && calendars == CalendarSelection::Listed(Vec::new()) {
        return Err(ConfigError::at(key("shared_calendars"), "lists calendars, but `calendars = []` syncs none"));
    }
    Ok(Selection { calendars, email, contacts, tasks, shared_calendars })
}

/// `tasks = true | false | { completed_within_days = N }`.
fn validate_tasks(key: &str, value: Option<toml::Value>) -> Result<Option<TasksConfig>, ConfigError> {
    let expected = "expected true, false or { completed_within_days = N }";
    match value {
        None | Some(toml::Value::Boolean(false)) => Ok(None),
        Some(toml::Value::Boolean(true)) => Ok(Some(TasksConfig { completed_within_days: None })),
        Some(toml::Value::Table(table)) => {
            let mut days = None;
            for (name, v) in table {
                let field = format!("{key}.{name}");
                match (name.as_str(), v) {
                    ("completed_within_days", toml::Value::Integer(n)) => days = Some(positive(&field, Some(n), 0)?),
                    ("completed_within_days", other) => {
                        return Err(ConfigError::at(field, format!("expected a number of days, got {other}")));
                    }
                    _ => return Err(ConfigError::at(field, "unknown key")),
                }
            }
            Ok(Some(TasksConfig { completed_within_days: days }))
        }
        Some(other) => Err(ConfigError::at(key, format!("{expected}, got {other}"))),
    }
}
