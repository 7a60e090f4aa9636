//! The PostgreSQL password file (`PGPASSFILE`, else `~/.pgpass`), as libpq
//! reads it, for a `[store] url` configured without `password_file` or
//! `password_env`: each line `host:port:database:user:password`, `*`
//! matching anything, `\:` and `\\` escaping, `#` starting a comment; the
//! first line that matches gives the password. Like libpq, a file that group
//! or others may read is not used (with a warning saying why).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::regular_file;

/// What a password line is matched against.
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password file to read: `PGPASSFILE`, else `.pgpass` in `HOME`.
pub fn path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match env("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(file) => Some(PathBuf::from(file)),
        None => env("HOME").filter(|h| !h.is_empty()).map(|home| Path::new(&home).join(".pgpass")),
    }
}

/// The password the file at `path` holds for `target`, if it exists, is
/// private and has a matching line. Reading problems only mean no password.
pub fn lookup(path: &Path, target: &Target<'_>) -> Option<String> {
    let opened = regular_file::open(path).ok()?;
    if let Some(mode) = regular_file::open_to_others(&opened.metadata) {
        tracing::warn!("{}: not used, group or others can read it (mode {mode:03o}); `chmod 600` it", path.display());
        return None;
    }
    let mut text = String::new();
    opened.file.take(super::secret_file::MAX_SECRET_BYTES as u64).read_to_string(&mut text).ok()?;
    text.lines().find_map(|line| matching(line, target))
}

/// The password of `line` if it matches `target`.
fn matching(line: &str, target: &Target<'_>) -> Option<String> {
    if line.trim_start().starts_with('#') {
        return None;
    }
    let fields = split(line);
    let [host, port, database, user, password] = fields.as_slice() else { return None };
    let port_text = target.port.to_string();
    let matches = |pattern: &String, value: &str| pattern == "*" || pattern == value;
    (matches(host, target.host)
        && matches(port, &port_text)
        && matches(database, target.database)
        && matches(user, target.user))
    .then(|| password.clone())
}

/// The `:`-separated fields of a line, with `\:` and `\\` unescaped; the
/// last field takes the rest of the line.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().into_iter().for_each(|f| f.extend(chars.next())),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().into_iter().for_each(|f| f.push(c)),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target<'static> {
        Target { host: "db.internal", port: 5432, database: "aurinko", user: "sync" }
    }

    #[test]
    fn the_first_matching_line_gives_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:aurinko:sync:nope\ndb.internal:*:aurinko:sync:pa\\:ss\\\\word\n*:*:*:*:fallback\n",
        )
        .unwrap();
        set_mode(&file, 0o600);
        assert_eq!(lookup(&file, &target()).as_deref(), Some("pa:ss\\word"));
        let other = Target { user: "someone", ..target() };
        assert_eq!(lookup(&file, &other).as_deref(), Some("fallback"));
    }

    #[test]
    fn a_file_others_can_read_or_a_missing_one_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "*:*:*:*:secret\n").unwrap();
        set_mode(&file, 0o644);
        assert_eq!(lookup(&file, &target()), None);
        assert_eq!(lookup(&dir.path().join("missing"), &target()), None);
    }

    #[test]
    fn pgpassfile_comes_first_then_home() {
        let env = |var: &str| match var {
            "HOME" => Some("/home/sync".to_string()),
            _ => None,
        };
        assert_eq!(path(&env), Some(PathBuf::from("/home/sync/.pgpass")));
        let env = |var: &str| Some(format!("/etc/{var}"));
        assert_eq!(path(&env), Some(PathBuf::from("/etc/PGPASSFILE")));
    }

    fn set_mode(file: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}
