//! What discovery lists: calendars, task lists and mail folders, each read
//! leniently from its record (the fields the store types, the record kept
//! whole in `raw`).

use serde::Deserialize;
use serde_json::value::RawValue;

/// The parts of a `Calendar` the sync needs; the record is kept whole in `raw`.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub id: String,
    pub name: Option<String>,
    pub primary: bool,
    pub access_role: Option<String>,
    pub raw: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalendarFields {
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    primary: Option<bool>,
    #[serde(default)]
    access_role: Option<String>,
}

impl Calendar {
    /// `None` for a record without an id, which cannot be synced.
    pub fn from_raw(raw: &RawValue) -> Option<Calendar> {
        let fields: CalendarFields = object_fields(raw)?;
        let id = fields.id.filter(|id| !id.is_empty())?;
        Some(Calendar {
            id,
            name: fields.name.as_deref().map(shown),
            primary: fields.primary.unwrap_or(false),
            access_role: fields.access_role.as_deref().map(shown),
            raw: raw.get().to_string(),
        })
    }
}

/// A name or label as it may be stored and shown: made inert. Ids are kept
/// as sent (they address requests); the raw record keeps everything.
fn shown(s: &str) -> String {
    super::text::inert(s).into_owned()
}

/// A listed record's fields, read only from a JSON object: serde would
/// also read a struct from an array, position by position.
fn object_fields<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Option<T> {
    if !raw.get().trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// The parts of a `TaskList` the sync needs; the record is kept whole in `raw`.
#[derive(Debug, Clone)]
pub struct TaskList {
    pub id: String,
    pub title: Option<String>,
    pub default_list: bool,
    pub raw: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskListFields {
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    default_list: Option<bool>,
}

impl TaskList {
    /// `None` for a record without an id, which cannot be synced.
    pub fn from_raw(raw: &RawValue) -> Option<TaskList> {
        let fields: TaskListFields = object_fields(raw)?;
        let id = fields.id.filter(|id| !id.is_empty())?;
        Some(TaskList {
            id,
            title: fields.title.as_deref().map(shown),
            default_list: fields.default_list.unwrap_or(false),
            raw: raw.get().to_string(),
        })
    }
}

/// An `EmailFolderInfo`: the fields the `folders` table types, and the
/// record whole in `raw`.
#[derive(Debug, Clone)]
pub struct EmailFolder {
    pub id: String,
    pub name: Option<String>,
    pub full_name: Option<String>,
    pub is_folder: Option<bool>,
    pub is_label: Option<bool>,
    pub parent_id: Option<String>,
    /// The well-known role (`inbox`, `sent`, `trash`, ...).
    pub sys_label: Option<String>,
    pub raw: String,
}

impl EmailFolder {
    /// `None` for a record that is not an object with a non-empty string
    /// id; a field of another type than the spec's is left empty.
    pub fn from_raw(raw: &RawValue) -> Option<EmailFolder> {
        let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
        let object = value.as_object()?;
        let id = object.get("id")?.as_str().filter(|id| !id.is_empty())?.to_string();
        let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let label = |key: &str| object.get(key).and_then(|v| v.as_str()).map(shown);
        let flag = |key: &str| object.get(key).and_then(|v| v.as_bool());
        Some(EmailFolder {
            id,
            name: label("name"),
            full_name: label("fullName"),
            is_folder: flag("isFolder"),
            is_label: flag("isLabel"),
            parent_id: text("parentId"),
            sys_label: label("sysLabel"),
            raw: raw.get().to_string(),
        })
    }
}

/// One account of the app as `GET /am/accounts` lists it (`ApiAccountOutDto`):
/// the fields that decide whether to sync it and that `state` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAccount {
    pub id: i64,
    pub service_type: Option<String>,
    pub email: Option<String>,
    /// "The account is always active in the current API version"; `false`
    /// is still honoured.
    pub active: Option<bool>,
    /// `active`, `invalid` or `dead` (spec `TokenStatus`).
    pub token_status: Option<String>,
}

/// The prefix of the local name of an account the app discovered; its
/// Aurinko id follows (`aurinko-1042`).
pub const DISCOVERED_PREFIX: &str = "aurinko-";

/// The local name (in the store, logs and `state`) of the account the app
/// discovered with Aurinko id `id`.
pub fn discovered_name(id: i64) -> String {
    format!("{DISCOVERED_PREFIX}{id}")
}

/// The longest text kept of a listed account's field; longer is cut.
const MAX_ACCOUNT_TEXT: usize = 320;

impl AppAccount {
    /// `None` for a record that is not an object with a positive integer id
    /// (as a number or a numeric string); a field of another type than the
    /// spec's is left empty.
    pub fn from_raw(raw: &RawValue) -> Option<AppAccount> {
        let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
        let object = value.as_object()?;
        let id = match object.get("id")? {
            serde_json::Value::Number(n) => n.as_i64()?,
            serde_json::Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        if id <= 0 {
            return None;
        }
        let text = |key: &str| {
            object.get(key).and_then(|v| v.as_str()).map(|s| {
                let end = s.char_indices().nth(MAX_ACCOUNT_TEXT).map_or(s.len(), |(i, _)| i);
                shown(&s[..end])
            })
        };
        Some(AppAccount {
            id,
            service_type: text("serviceType"),
            email: text("email"),
            active: object.get("active").and_then(|v| v.as_bool()),
            token_status: text("tokenStatus"),
        })
    }

    /// Why the app does not sync this account now, or `None` when it does:
    /// only an active token (the spec's `tokenStatus`) is worth a request.
    /// A listing without a status is taken at its word that the account is
    /// connected; a refused request says otherwise soon enough.
    pub fn not_syncable(&self) -> Option<String> {
        if self.active == Some(false) {
            return Some("inactive".to_string());
        }
        match self.token_status.as_deref() {
            None | Some("active") => None,
            Some(status) => Some(format!("token {status}")),
        }
    }
}
