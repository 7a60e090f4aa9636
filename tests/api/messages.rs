//! Messages in the user's terms: what is wrong and where, in words, never
//! the Rust types the program was filling.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app, text};
use crate::recorder::{Intercept, Recorder};

/// What serde or the OS would have said instead.
const PROGRAM_TERMS: [&str; 6] =
    ["expected struct", "expected i64", "invalid type", "Raw", "entity not found", "os error"];

fn assert_plain(stderr: &str, what: &str, says: &[&str]) {
    for term in PROGRAM_TERMS {
        assert!(!stderr.contains(term), "{what}: {term:?} in {stderr}");
    }
    for words in says {
        assert!(stderr.contains(words), "{what}: no {words:?} in {stderr}");
    }
}

/// The binary as a user the OS checks permissions for: as root (the
/// tests' usual user, for whom permission bits do not apply) it runs as
/// `nobody`, which needs the app's directory open to others; otherwise as
/// this user.
fn as_unprivileged(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut command = app.command(args);
    if crate::sys::is_root() {
        std::fs::set_permissions(app.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&app.config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        command.uid(65534).gid(65534);
    }
    command
}

/// A file only root (or, as another user, nobody) may read or write.
fn forbidden(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_and_file_errors_say_what_is_wrong_in_words() {
    let app = spawn_app(Setup::default()).await;
    let base = app.server.base_url();
    let account = "[[accounts]]\nname = \"work\"\ntoken_env = \"TEST_TOKEN_WORK\"\n";
    let missing_token = app.dir.path().join("no-such.token");
    let under_a_file = app.config_path.join("store.db");
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "a number given as text",
            format!("[api]\nbase_url = \"{base}\"\n[sync]\npoll_interval_secs = \"soon\"\n{account}"),
            vec!["line 4".into(), "poll_interval_secs".into(), "is not a whole number".into()],
        ),
        (
            "a table given as a number",
            format!("[api]\nbase_url = \"{base}\"\n{account}email = 5\n"),
            vec!["line 6".into(), "email = 5".into(), "is not a table".into()],
        ),
        (
            "a missing token file",
            format!(
                "[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"work\"\ntoken_file = \"{}\"\n",
                missing_token.display()
            ),
            vec!["accounts[0].token_file".into(), format!("no such file: {}", missing_token.display())],
        ),
        (
            "a store under a regular file",
            format!("[api]\nbase_url = \"{base}\"\n[store]\npath = \"{}\"\n{account}", under_a_file.display()),
            vec![format!("not a directory: {} is a file", app.config_path.display())],
        ),
    ];
    for (what, config, says) in cases {
        std::fs::write(&app.config_path, config).unwrap();
        let out = app.catch_up().await;
        assert_exit(&out, 2);
        assert_plain(&text(&out.stderr), what, &says.iter().map(String::as_str).collect::<Vec<_>>());
    }

    // Permissions, checked by the OS for a user other than root.
    let token = app.dir.path().join("work.token");
    std::fs::write(&token, app.token("work")).unwrap();
    forbidden(&token);
    std::fs::write(
        &app.config_path,
        format!("[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"work\"\ntoken_file = \"{}\"\n", token.display()),
    )
    .unwrap();
    let out = as_unprivileged(&app, &["run", "--catch-up"]).output().await.unwrap();
    assert_exit(&out, 2);
    assert_plain(&text(&out.stderr), "an unreadable token file", &[&format!("permission denied: {}", token.display())]);

    // The store exists and is the user's own; its directory is not
    // writable, so SQLite could not make its -wal and -shm.
    let store_dir = app.dir.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    let store = store_dir.join("s.db");
    std::fs::write(&store, "").unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    if crate::sys::is_root() {
        std::os::unix::fs::chown(&store, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(&store_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::write(
        &app.config_path,
        format!("[api]\nbase_url = \"{base}\"\n[store]\npath = \"{}/s.db\"\n{account}", store_dir.display()),
    )
    .unwrap();
    let out = as_unprivileged(&app, &["run", "--catch-up"]).output().await.unwrap();
    assert_exit(&out, 2);
    assert_plain(
        &text(&out.stderr),
        "an unwritable store directory",
        &[&format!("permission denied: {} (", store_dir.display())],
    );
    assert!(app.requests().is_empty(), "nothing was requested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_a_wrong_typed_field_names_the_endpoint_and_the_field() {
    let app =
        spawn_app(Setup { accounts: vec![("work", vec![("cal-good", 30), ("cal-bad", 30)])], ..Setup::default() })
            .await;
    let intercept: Intercept = Arc::new(|method: &Method, uri: &Uri, _: &HeaderMap| {
        (method == Method::GET && uri.path() == "/v1/calendars/cal-bad/sync/updated").then(|| {
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(r#"{"records":[],"nextDeltaToken":5}"#.into())
                .unwrap()
        })
    });
    let proxy = Recorder::spawn_intercepting(&app.server.base_url(), Some(intercept)).await;
    app.edit_config(&app.server.base_url(), &proxy.base_url());
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    let failed = stderr.lines().find(|l| l.contains("cal-bad")).unwrap_or_default();
    eprintln!("{failed}");
    assert_plain(failed, "a wrong-typed field", &["sync_updated", "field nextDeltaToken", "5 is not text"]);
    assert!(text(&out.stdout).contains("work/cal-good"), "the other calendar syncs: {}", text(&out.stdout));
}
