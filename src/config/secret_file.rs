//! Reading a secret (`token_file`, `signing_secret_file`) from a file.
//!
//! The file is the operator's, but what the path leads to is not always what
//! was meant: a FIFO would block the start, `/dev/zero` would fill memory, a
//! huge file would become a huge header. So only a regular file is read
//! (see [`crate::regular_file`]), and at most [`MAX_SECRET_BYTES`] of it. A
//! file other users may read still works, with a warning that says how to
//! fix it: refusing it would stop a running setup at its next restart.

use std::io::Read;
use std::path::Path;

use super::ConfigError;
use crate::regular_file::{self, OpenError};

/// The largest secret accepted, from a file or a variable. Aurinko's tokens
/// and signing secrets are a few hundred bytes; 64 KiB is generous and still
/// fits in a request header.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// The file's content, trimmed. Errors name the key and the file, never the
/// content.
pub fn read(key: &str, path: &Path) -> Result<String, ConfigError> {
    let shown = path.display();
    let opened = regular_file::open(path).map_err(|e| match e {
        OpenError::Io(e) => ConfigError::at(key, crate::user_terms::io_message(&e, path)),
        OpenError::NotRegular(what) => {
            ConfigError::at(key, format!("{shown} is {what}; a secret must be in a regular file"))
        }
    })?;
    let mut bytes = Vec::new();
    opened
        .file
        .take(MAX_SECRET_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfigError::at(key, crate::user_terms::io_message(&e, path)))?;
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(ConfigError::at(
            key,
            format!("{shown} is larger than {} KiB; is it the right file?", MAX_SECRET_BYTES / 1024),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::at(key, format!("{shown} is not UTF-8 text")))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(ConfigError::at(key, format!("{shown} is empty")));
    }
    // Said only of a secret that is used: an error is enough otherwise.
    if let Some(mode) = regular_file::open_to_others(&opened.metadata) {
        tracing::warn!(
            "{key}: {shown} can be read or changed by group or others (mode {mode:03o}); `chmod 600 {shown}` makes it private"
        );
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(path: &Path) -> String {
        read("accounts[0].token_file", path).unwrap_err().to_string()
    }

    #[test]
    fn a_secret_is_trimmed_and_bounded_and_errors_name_key_and_file_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, " s3cr3t-token\n").unwrap();
        assert_eq!(read("k", &file).unwrap(), "s3cr3t-token");
        std::fs::write(&file, "x".repeat(MAX_SECRET_BYTES)).unwrap();
        assert_eq!(read("k", &file).unwrap().len(), MAX_SECRET_BYTES, "the bound itself is accepted");
        std::fs::write(&file, "s3cr3t-".repeat(MAX_SECRET_BYTES)).unwrap();
        let err = error(&file);
        assert!(err.starts_with("accounts[0].token_file: ") && err.contains("larger than 64 KiB"), "{err}");
        assert!(err.contains(&file.display().to_string()) && !err.contains("s3cr3t"), "{err}");
        std::fs::write(&file, [0xff, 0xfe, b's']).unwrap();
        assert!(error(&file).contains("not UTF-8"));
        std::fs::write(&file, " \n").unwrap();
        assert!(error(&file).contains("is empty"));
        let missing = dir.path().join("missing");
        assert!(error(&missing).ends_with(&format!("no such file: {}", missing.display())));
        assert!(error(dir.path()).contains("is a directory; a secret must be in a regular file"));
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_before_a_byte_is_read() {
        let err = error(Path::new("/dev/zero"));
        assert!(err.contains("/dev/zero is a character device"), "{err}");
    }
}
