//! Response envelopes as the spec defines them, decoded leniently: fields
//! Aurinko may omit are `Option`, unknown fields are ignored, and records are
//! kept as raw JSON so the store can keep them exactly as sent.

use serde::Deserialize;
use serde_json::value::RawValue;

/// `SyncStatus`, the answer to `POST .../sync`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncStatus {
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub sync_updated_token: Option<String>,
    #[serde(default)]
    pub sync_deleted_token: Option<String>,
}

/// `EventsPage` / `DeletedPage` and their email and contacts siblings: the
/// same envelope around different records.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawSyncPage<'a> {
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub next_delta_token: Option<String>,
    /// Borrowed from the response body: each record is parsed from there
    /// straight into what the store takes, with no copy in between.
    #[serde(default, borrow)]
    pub records: Option<Vec<&'a RawValue>>,
}

/// `CalendarsPage`, `TaskListPage` and `EmailFolderInfoPage`: a page of a
/// listing, records kept raw. The spec gives `EmailFolderInfoPage` no
/// `nextPageToken`, but its operation takes a `pageToken`, so one is
/// followed when present.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListPage {
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub records: Option<Vec<Box<RawValue>>>,
}

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
    pub(crate) fn from_raw(raw: &RawValue) -> Option<Calendar> {
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
    crate::text::inert(s).into_owned()
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
    pub(crate) fn from_raw(raw: &RawValue) -> Option<TaskList> {
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
    pub(crate) fn from_raw(raw: &RawValue) -> Option<EmailFolder> {
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

/// Aurinko's `ApiRequestFailed` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiRequestFailed {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// The part of `ApiAccountOutDto` the service needs.
#[derive(Debug, Deserialize)]
pub(crate) struct AccountInfo {
    #[serde(default, deserialize_with = "optional_int_id")]
    pub id: Option<i64>,
}

/// `SubscriptionResponse`. The docs show `id` as a string once; both forms
/// are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(deserialize_with = "int_id")]
    pub id: i64,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub notification_url: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub fail_since: Option<String>,
    #[serde(default)]
    pub fail_description: Option<String>,
    /// `DataConsumerFilter`s; `None` when the answer leaves the field out.
    #[serde(default)]
    pub filters: Option<Vec<String>>,
}

/// `SubscriptionsPage`: offset paging.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionsPage {
    #[serde(default)]
    pub total_size: Option<i64>,
    #[serde(default)]
    pub done: Option<bool>,
    #[serde(default)]
    pub records: Option<Vec<Subscription>>,
}

/// An int64 id as the spec defines it, or the same number as a string, as
/// Aurinko's docs show subscription ids. Anything else is an error.
pub fn int_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Number(n) => Ok(n),
        NumberOrString::Text(t) => t.trim().parse().map_err(|_| serde::de::Error::custom("id is not an integer")),
    }
}

/// [`int_id`] for a field that may be missing or null.
pub fn optional_int_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "int_id")] i64);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(n)| n))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(i64),
    Text(String),
}
