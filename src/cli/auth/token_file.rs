//! The new account's token on disk: a file only its owner may read (0600), in directories
//! only its owner may enter when `auth add` creates them (0700), never over a file already
//! there (it may hold another account's token).

use std::io::Write;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use super::entry::create_private;

/// Whether a token file may go to `path`: nothing is there yet.
pub fn check_free(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            Err(format!("{} already exists; remove it, or choose another place with --token-file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::user_terms::io_message(&e, path)),
    }
}

/// Writes `token` (and a newline) to a new file at `path`, creating its directories.
pub fn write(path: &Path, token: &SecretString) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write the token file: {}", crate::user_terms::io_message(&e, path));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(fail)?;
    }
    let mut file = create_private(path).map_err(fail)?;
    let written = file
        .write_all(token.expose_secret().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_token_is_private_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens/deep/work.token");
        check_free(&path).unwrap();
        write(&path, &SecretString::from("tok-1")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "tok-1\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("tokens")), 0o700);
        assert_eq!(mode(&dir.path().join("tokens/deep")), 0o700);
        assert!(check_free(&path).unwrap_err().contains("already exists"));
        assert!(write(&path, &SecretString::from("tok-2")).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "tok-1\n", "the first token stays");
    }
}
