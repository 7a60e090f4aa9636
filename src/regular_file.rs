//! Opening a path that must be a regular file: a secret (`token_file`,
//! `signing_secret_file`) or the store.
//!
//! A path may name something else: a FIFO, whose `open` waits for a writer
//! that never comes; `/dev/zero`, which never ends; `/dev/null`, next to
//! which SQLite would create its journal. So the path is opened without
//! blocking and without becoming a controlling terminal, and the kind is
//! read from the opened file (`fstat`), not from a separate `stat` that a
//! swap between the two calls could fool. A symlink is followed: systemd's
//! credentials and hand-made setups point at regular files that way, and
//! what counts is what the link leads to.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::path::Path;

/// Why a path could not be used as a regular file.
#[derive(Debug)]
pub enum OpenError {
    /// Opening failed (not found, permission denied, ...).
    Io(std::io::Error),
    /// The path leads to something else; names what, e.g. "a FIFO".
    NotRegular(&'static str),
}

/// An existing regular file, opened for reading, with its metadata.
pub struct Opened {
    pub file: File,
    pub metadata: Metadata,
}

/// Opens an existing path for reading and refuses anything but a regular file.
pub fn open(path: &Path) -> Result<Opened, OpenError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK | libc::O_NOCTTY);
    let file = options.open(path).map_err(OpenError::Io)?;
    let metadata = file.metadata().map_err(OpenError::Io)?;
    if !metadata.is_file() {
        return Err(OpenError::NotRegular(kind(metadata.file_type())));
    }
    Ok(Opened { file, metadata })
}

/// The permission bits when group or others have any access, e.g. `0o644`;
/// `None` when the file is private to its owner.
pub fn open_to_others(metadata: &Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

fn kind(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() { "a directory" } else { "not a regular file" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_and_links_to_them_open_and_the_rest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "x").unwrap();
        assert!(open(&file).is_ok());
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert!(open(&link).is_ok(), "a symlink to a regular file is fine");
            let fifo = dir.path().join("fifo");
            rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
            // Opening it must not wait for a writer.
            assert!(matches!(open(&fifo), Err(OpenError::NotRegular("a FIFO"))));
            assert!(matches!(open(Path::new("/dev/zero")), Err(OpenError::NotRegular("a character device"))));
        }
        assert!(matches!(open(dir.path()), Err(OpenError::NotRegular("a directory"))));
        assert!(
            matches!(open(&dir.path().join("missing")), Err(OpenError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound)
        );
    }

    #[cfg(unix)]
    #[test]
    fn modes_open_to_group_or_others_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "x").unwrap();
        for (mode, open) in [(0o600, None), (0o400, None), (0o640, Some(0o640)), (0o604, Some(0o604))] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(open_to_others(&std::fs::metadata(&file).unwrap()), open, "{mode:o}");
        }
    }
}
