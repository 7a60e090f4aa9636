//! The new `[[accounts]]` entry, added to the operator's configuration file with `toml_edit`
//! so that every comment, blank line and key order in it stays as written, and the file
//! replaced in one step (a temporary file renamed over it, with the old file's mode), so a
//! crash leaves the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

/// What the new entry syncs, from the scopes it was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syncs {
    pub calendars: bool,
    pub email: bool,
    pub contacts: bool,
    pub tasks: bool,
}

/// Days of mail a new entry loads at first (`email = { days_within = ... }`).
const EMAIL_DAYS: i64 = 30;

/// The header of a configuration `auth add` starts.
const NEW_FILE_HEADER: &str = "# aurinko-sync configuration, started by `aurinko-sync auth add`.\n\
# Every key is described in the README (Configuration) and in deploy/aurinko-sync.toml.\n";

/// The entry as it goes in.
pub struct Entry<'a> {
    pub name: &'a str,
    /// As written in the file: relative to the file's directory, or absolute.
    pub token_file: &'a str,
    pub syncs: Syncs,
    /// Said in the comment above the entry.
    pub service: &'a str,
    pub account_id: Option<i64>,
}

/// `text` (empty for a file not there yet) with `entry` appended to its `[[accounts]]`; an
/// error when the name is taken or the file is not TOML.
pub fn add(text: &str, entry: &Entry<'_>) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let first = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        format!("the configuration is not valid TOML: {first}")
    })?;
    let accounts = doc.entry("accounts").or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    let Some(accounts) = accounts.as_array_of_tables_mut() else {
        return Err("`accounts` is not written as [[accounts]] tables; add the entry by hand".to_string());
    };
    if accounts.iter().any(|t| t.get("name").and_then(Item::as_str) == Some(entry.name)) {
        return Err(format!("an account named {:?} is already configured; choose another name", entry.name));
    }
    let mut table = Table::new();
    table["name"] = value(entry.name);
    table["token_file"] = value(entry.token_file);
    let syncs = entry.syncs;
    table["calendars"] = match syncs.calendars {
        true => value("all"),
        false => value(toml_edit::Array::new()),
    };
    if syncs.email {
        let mut email = InlineTable::new();
        email.insert("days_within", EMAIL_DAYS.into());
        table["email"] = value(email);
    }
    if syncs.contacts {
        table["contacts"] = value(true);
    }
    if syncs.tasks {
        table["tasks"] = value(true);
    }
    let id = entry.account_id.map(|id| format!(", Aurinko account {id}")).unwrap_or_default();
    let lead = if text.trim().is_empty() { NEW_FILE_HEADER.to_string() } else { String::new() };
    table
        .decor_mut()
        .set_prefix(format!("{lead}\n# Connected with `aurinko-sync auth add` ({}{id}).\n", entry.service));
    accounts.push(table);
    let mut out = doc.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Replaces (or creates) `path` with `text`: a private temporary file beside it, synced,
/// given the old file's mode (0600 for a new file), renamed over it. A symlink is followed,
/// so the file it points to is the one replaced.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(crate::user_terms::io_message(&e, path)),
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mode = std::fs::metadata(&target).ok().map(|m| permissions_mode(&m));
    let file_name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.{:016x}.tmp", rand::random::<u64>()));
    let written = (|| {
        let mut file = create_private(&temp)?;
        file.write_all(text.as_bytes())?;
        if let Some(mode) = mode {
            set_mode(&file, mode)?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, &target)?;
        // The rename itself is durable once the directory is.
        if let Ok(dir) = std::fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write the configuration: {}", crate::user_terms::io_message(&e, &target))
    })
}

/// A new file only this user may read or write.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(unix)]
fn permissions_mode(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn permissions_mode(_: &std::fs::Metadata) -> u32 {
    0
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &std::fs::File, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry<'_> {
        Entry {
            name,
            token_file: "tokens/x.token",
            syncs: Syncs { calendars: true, email: false, contacts: false, tasks: false },
            service: "Google",
            account_id: Some(1003),
        }
    }

    #[test]
    fn the_entry_is_added_after_the_others_keeping_comments_and_layout() {
        let head = "# my settings\n[api]\nbase_url = \"http://x/v1\"  # the fake\n\n[[accounts]]\n# old one\nname = \"home\"\ntoken_env = \"T\"\n";
        let tail = "\n[app]\nclient_id = \"c\"\n";
        let out = add(&format!("{head}{tail}"), &entry("work")).unwrap();
        let added = "\n# Connected with `aurinko-sync auth add` (Google, Aurinko account 1003).\n[[accounts]]\nname = \"work\"\ntoken_file = \"tokens/x.token\"\ncalendars = \"all\"\n";
        assert_eq!(out, format!("{head}{added}{tail}"), "the old text stays as written, the entry joins the others");
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["accounts"].as_array().unwrap().len(), 2);
        assert_eq!(parsed["app"]["client_id"].as_str(), Some("c"), "[app] is still [app]");
        // Without any entry yet, it goes at the end.
        let out = add(tail, &entry("work")).unwrap();
        assert_eq!(out, format!("{tail}{added}"));
    }

    #[test]
    fn a_taken_name_or_a_broken_file_changes_nothing() {
        let text = "[[accounts]]\nname = \"work\"\ntoken_env = \"T\"\n";
        assert!(add(text, &entry("work")).unwrap_err().contains("already configured"));
        assert!(add("[[accounts]\n", &entry("work")).unwrap_err().starts_with("the configuration is not valid TOML"));
        assert!(add("accounts = [{ name = \"a\" }]\n", &entry("work")).unwrap_err().contains("by hand"));
    }

    #[test]
    fn a_new_file_gets_a_header_and_the_entry_syncs_what_was_granted() {
        let mut e = entry("work");
        e.syncs = Syncs { calendars: false, email: true, contacts: true, tasks: true };
        let out = add("", &e).unwrap();
        assert!(out.starts_with(NEW_FILE_HEADER), "{out}");
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        let account = &parsed["accounts"][0];
        assert_eq!(account["calendars"].as_array().map(Vec::len), Some(0));
        assert_eq!(account["email"]["days_within"].as_integer(), Some(EMAIL_DAYS));
        assert_eq!((account["contacts"].as_bool(), account["tasks"].as_bool()), (Some(true), Some(true)));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_replaced_with_its_mode_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        let fresh = dir.path().join("fresh.toml");
        write_atomically(&fresh, "x\n").unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file is left");
    }
}
