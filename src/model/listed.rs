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
