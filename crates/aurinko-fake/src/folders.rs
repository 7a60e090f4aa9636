//! `GET /v1/email/folders` (operation `folders`): the `EmailFolderInfo`s of every folder the
//! generated messages are filed in ([`super::mail::FOLDERS`]), plus a parent label that holds no
//! message, in pages of the configured size. The spec's `EmailFolderInfoPage` has no
//! `nextPageToken`; the fake sends one when more pages follow, which the operation's `pageToken`
//! parameter implies.

use serde_json::{Value, json};

use super::Shared;
use super::error::ApiError;
use super::mail::FOLDERS;

/// `(id, name, fullName, isFolder, isLabel, parentId, sysLabel)`.
type Folder = (&'static str, &'static str, &'static str, bool, bool, Option<&'static str>, Option<&'static str>);

const EXTRA: [Folder; 1] = [("Label_7700", "Projects", "Projects", false, true, None, None)];

/// Every folder, in a fixed order: Gmail's system labels, a nested user label, an Outlook folder.
fn all() -> Vec<Folder> {
    let mut folders: Vec<Folder> = FOLDERS
        .iter()
        .map(|&(kind, id)| match (kind, id) {
            ("inbox", _) => (id, "Inbox", "Inbox", false, true, None, Some("inbox")),
            ("sent", _) => (id, "Sent", "Sent", false, true, None, Some("sent")),
            ("draft", _) => (id, "Drafts", "Drafts", false, true, None, Some("draft")),
            ("trash", _) => (id, "Trash", "Trash", false, true, None, Some("trash")),
            (_, "Label_7712") => (id, "Ärchive 2024", "Projects/Ärchive 2024", false, true, Some("Label_7700"), None),
            _ => (id, "Archive", "Archive", true, false, None, None),
        })
        .collect();
    folders.extend(EXTRA);
    folders
}

fn record(&(id, name, full_name, is_folder, is_label, parent_id, sys_label): &Folder) -> Value {
    let mut record = json!({
        "id": id,
        "name": name,
        "fullName": full_name,
        "isFolder": is_folder,
        "isLabel": is_label,
    });
    if let Some(parent) = parent_id {
        record["parentId"] = json!(parent);
    }
    if let Some(label) = sys_label {
        record["sysLabel"] = json!(label);
    }
    record
}

impl Shared {
    /// One page of `GET /v1/email/folders`: the body, its record count and its next page token.
    pub(crate) fn folders_page(&self, page_token: Option<&str>) -> Result<(Vec<u8>, usize, Option<String>), ApiError> {
        if self.folders_failing {
            return Err(ApiError::new(500, "internalError", "Internal Server Error"));
        }
        let offset = match page_token.filter(|token| !token.is_empty()) {
            None => 0,
            Some(token) => token
                .strip_prefix("folders.")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| ApiError::token_not_valid("Page token is invalid"))?,
        };
        let folders = all();
        let records: Vec<Value> = folders.iter().skip(offset).take(self.options.page_size.max(1)).map(record).collect();
        let end = offset + records.len();
        let next = (end < folders.len()).then(|| format!("folders.{end}"));
        let mut body = json!({ "length": records.len(), "records": records });
        if let Some(next) = &next {
            body["nextPageToken"] = json!(next);
        }
        let count = body["length"].as_u64().unwrap_or_default() as usize;
        Ok((serde_json::to_vec(&body).unwrap_or_default(), count, next))
    }
}
