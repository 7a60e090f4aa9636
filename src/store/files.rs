//! The store's files on disk: the database and SQLite's `-wal`, `-shm` and
//! `-journal` beside it.
//!
//! They hold everyone's mail, so they are private (0600, directories made
//! for them 0700) whether this run created them or found them, and each is
//! a regular file before SQLite opens it: SQLite would happily open
//! `/dev/null` or a FIFO and create its journal next to it. A file that is
//! open to others and cannot be made private (somebody else's) is refused.
//!
//! SQLite gives the files it creates later the mode and owner of the
//! database file, so making the database private covers them too.

use std::fs::{DirBuilder, OpenOptions};
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

use crate::regular_file::{self, OpenError};
use crate::user_terms;

/// What SQLite may keep beside the database.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// For a writer: creates the database file (0600, its missing directories
/// 0700) if it is not there, refuses anything but regular files, and makes
/// the database and its side files private.
pub fn prepare_for_writing(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| directory_error(dir, &e))?;
    }
    create_private(path)?;
    let database = regular_file::open(path).map_err(|e| describe(path, None, e))?;
    make_private(path, None, &database)?;
    for side in side_files(path)? {
        match regular_file::open(&side) {
            Ok(opened) => make_private(&side, Some(&side), &opened)?,
            Err(OpenError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(describe(path, Some(&side), e)),
        }
    }
    check_writable(path)
}

/// For `state`, which only reads: the database must exist and be a regular
/// file. Modes are left alone, since a reader may be somebody else (root,
/// an operator) looking at the service's files; the next `run` fixes them.
///
/// Returns the `file:` URI to open it read-only with; `immutable` when no
/// `-wal` or `-journal` is beside it (see `Store::open_read_only`).
pub fn reading_source(path: &Path) -> Result<PathBuf, String> {
    regular_file::open(path).map(drop).map_err(|e| match e {
        OpenError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => directory_error(dir, &e),
            _ => "does not exist yet (run `aurinko-sync run --catch-up` first)".to_string(),
        },
        e => describe(path, None, e),
    })?;
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve the path: {e}"))?;
    // A `-journal` (a store not yet in WAL mode, a crash's hot journal)
    // must be read too: the database file alone is not the whole truth.
    let in_use = ["-wal", "-journal"].iter().any(|suffix| {
        let mut side = real.clone().into_os_string();
        side.push(suffix);
        std::fs::symlink_metadata(side).is_ok()
    });
    // Everything but unreserved characters and `/` is escaped: `?`, `#` and
    // `%` would end or change the path.
    const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let escaped = percent_encode(real.as_os_str().as_encoded_bytes(), ESCAPED);
    Ok(PathBuf::from(format!("file://{escaped}?mode=ro{}", if in_use { "" } else { "&immutable=1" })))
}

/// Why the store's directory cannot be made or used, in words: the nearest
/// existing part of the path being a file is "not a directory", which
/// `mkdir` reports as "File exists".
fn directory_error(dir: &Path, e: &std::io::Error) -> String {
    let existing = dir.ancestors().find(|a| !a.as_os_str().is_empty() && a.symlink_metadata().is_ok());
    match existing {
        Some(part) if !part.is_dir() => format!("not a directory: {} is a file", part.display()),
        _ if e.kind() == std::io::ErrorKind::NotFound => format!("no such directory: {}", dir.display()),
        _ => user_terms::io_message(e, dir),
    }
}

/// For a store SQLite could not open: the permission it lacked, if that
/// was it (the database unreadable, or its directory unwritable so the
/// `-wal` and `-shm` cannot be made).
pub fn permission_problem(path: &Path) -> Option<String> {
    if let Err(e) = OpenOptions::new().read(true).open(path)
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        return Some(user_terms::io_message(&e, path));
    }
    check_writable(path).err()
}

/// The database and its directory must be writable: SQLite would otherwise
/// open the file read-only, or fail to create its `-wal` and `-shm`, and
/// report either as an unusable database. Checked with the effective ids,
/// as the open will be (root passes, except on a read-only file system).
fn check_writable(path: &Path) -> Result<(), String> {
    OpenOptions::new().write(true).open(path).map_err(|e| user_terms::io_message(&e, path))?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use rustix::fs::{Access, AtFlags, CWD, accessat};
        if let Err(e) = accessat(CWD, dir, Access::WRITE_OK | Access::EXEC_OK, AtFlags::EACCESS) {
            let e = std::io::Error::from(e);
            return Err(format!(
                "{} (SQLite keeps its -wal and -shm files beside the store, so the directory must be writable)",
                user_terms::io_message(&e, dir)
            ));
        }
    }
    Ok(())
}

/// Creates the database with mode 0600 unless it exists.
fn create_private(path: &Path) -> Result<(), String> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(user_terms::io_message(&e, path)),
    }
}

/// The side files SQLite would use: it resolves symlinks and keeps them
/// beside the file the link leads to.
fn side_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve the path: {e}"))?;
    Ok(SIDE_FILES
        .iter()
        .map(|suffix| {
            let mut side = real.clone().into_os_string();
            side.push(suffix);
            side.into()
        })
        .collect())
}

/// Sets mode 0600 on a file open to group or others, through the open file
/// (`fchmod`), so it is the file that was checked. `side` names a side
/// file in the error; `None` is the database itself, which the error names
/// already.
fn make_private(path: &Path, side: Option<&Path>, opened: &regular_file::Opened) -> Result<(), String> {
    let Some(mode) = regular_file::open_to_others(&opened.metadata) else { return Ok(()) };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        opened.file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            format!(
                "{}is open to group or others (mode {mode:03o}) and cannot be made private ({e}); run as its owner, or `chmod 600` it",
                prefix(side)
            )
        })?;
        tracing::info!("store file {} was mode {mode:03o}; made it 0600", path.display());
    }
    #[cfg(not(unix))]
    let _ = (path, side, mode);
    Ok(())
}

/// `path` is the database; `side` names a side file when it is one.
fn describe(path: &Path, side: Option<&Path>, e: OpenError) -> String {
    match e {
        OpenError::Io(e) => user_terms::io_message(&e, side.unwrap_or(path)),
        OpenError::NotRegular(what) => {
            format!("{}is {what}, not a regular file; refusing to use it for the store", prefix(side))
        }
    }
}

fn prefix(side: Option<&Path>) -> String {
    side.map(|p| format!("{} ", p.display())).unwrap_or_default()
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn existing_files_open_to_others_are_made_private_and_new_directories_are_0700() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/s.db");
        prepare_for_writing(&path).unwrap();
        for made in [dir.path().join("a"), dir.path().join("a/b")] {
            assert_eq!(mode(&made), 0o700, "{}", made.display());
        }
        assert_eq!(mode(&path), 0o600);
        let sides: Vec<PathBuf> = SIDE_FILES.iter().map(|s| dir.path().join(format!("a/b/s.db{s}"))).collect();
        for file in std::iter::once(&path).chain(&sides) {
            std::fs::write(file, "").unwrap();
            chmod(file, 0o644);
        }
        prepare_for_writing(&path).unwrap();
        for file in std::iter::once(&path).chain(&sides) {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }

    #[test]
    fn side_files_are_found_beside_the_file_a_symlink_leads_to() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.db");
        std::fs::write(&real, "").unwrap();
        std::fs::write(dir.path().join("real.db-wal"), "").unwrap();
        chmod(&dir.path().join("real.db-wal"), 0o644);
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        prepare_for_writing(&link).unwrap();
        assert_eq!(mode(&dir.path().join("real.db-wal")), 0o600);
    }

    #[test]
    fn a_path_that_is_not_a_regular_file_is_refused_and_nothing_is_created_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.db");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o666)).unwrap();
        let fifo_mode = mode(&fifo);
        let err = prepare_for_writing(&fifo).unwrap_err();
        assert!(err.contains("is a FIFO, not a regular file"), "{err}");
        assert!(reading_source(&fifo).unwrap_err().contains("is a FIFO"));
        let err = prepare_for_writing(dir.path()).unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        // A side file that is not a regular file stops the open as well.
        let path = dir.path().join("s.db");
        std::os::unix::fs::symlink("/dev/null", dir.path().join("s.db-journal")).unwrap();
        let err = prepare_for_writing(&path).unwrap_err();
        assert!(err.contains("s.db-journal is a character device"), "{err}");
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        names.sort();
        assert_eq!(names, ["fifo.db", "s.db", "s.db-journal"]);
        assert_eq!(mode(&fifo), fifo_mode, "the FIFO's mode is not changed");
    }

    #[test]
    fn reading_changes_no_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        assert!(reading_source(&path).unwrap_err().contains("does not exist yet"));
        std::fs::write(&path, "").unwrap();
        chmod(&path, 0o644);
        reading_source(&path).unwrap();
        assert_eq!(mode(&path), 0o644);
    }
}
