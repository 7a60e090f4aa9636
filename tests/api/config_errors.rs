//! Configuration errors: exit 2, one line naming the key, no request sent.

use crate::helpers::{Setup, assert_exit, spawn_app, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_configuration_error_exits_2_with_its_key_and_sends_nothing() {
    let app = spawn_app(Setup::default()).await;
    let base = app.server.base_url();
    let store = app.db_path.display().to_string();
    let empty_file = app.dir.path().join("empty-token");
    std::fs::write(&empty_file, "\n").unwrap();
    let account = "[[accounts]]\nname = \"work\"\ntoken_env = \"TEST_TOKEN_WORK\"\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("[api]\nbase_url = \"{base}\"\nspeed = 3\n{account}"), "speed"),
        (format!("[api]\nbase_url = \"not a url\"\n{account}"), "api.base_url"),
        (format!("[api]\nbase_url = \"{base}\"\nrequests_per_second = 0\n{account}"), "api.requests_per_second"),
        (
            format!("[api]\nbase_url = \"{base}\"\n[sync]\nwindow_future_days = -1\n{account}"),
            "sync.window_future_days",
        ),
        (format!("[api]\nbase_url = \"{base}\"\n[sync]\npoll_interval_secs = 0\n{account}"), "sync.poll_interval_secs"),
        (
            format!("[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"work\"\ntoken_env = \"NOT_SET_ANYWHERE\"\n"),
            "accounts[0].token_env",
        ),
        (
            format!(
                "[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"work\"\ntoken_file = \"{}\"\n",
                empty_file.display()
            ),
            "accounts[0].token_file",
        ),
        (format!("[api]\nbase_url = \"{base}\"\n{account}{account}"), "accounts[1].name"),
        (
            format!(
                "[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"work\"\ntoken_env = \"TEST_TOKEN_WORK\"\ncalendars = 5\n"
            ),
            "calendars",
        ),
        (format!("[api]\nbase_url = \"{base}\"\n[store]\npath = \"\"\n{account}"), "store.path"),
        (format!("[api]\nbase_url = \"{base}\"\n{account}tasks = \"yes\"\n"), "accounts[0].tasks"),
        (
            format!("[api]\nbase_url = \"{base}\"\n{account}tasks = {{ completed_within_days = 0 }}\n"),
            "accounts[0].tasks.completed_within_days",
        ),
        (format!("[api]\nbase_url = \"{base}\"\nmax_attempts = \"many\"\n{account}"), "max_attempts"),
        (
            format!("[api]\nbase_url = \"{base}\"\nbackoff_base_ms = 900\nbackoff_max_ms = 10\n{account}"),
            "api.backoff_max_ms",
        ),
        (format!("[api]\nbase_url = \"ftp://{}\"\n{account}", &base[7..]), "api.base_url"),
        (format!("[api]\nbase_url = \"{base}\"\n[surprise]\nx = 1\n{account}"), "surprise"),
        (format!("[api]\nbase_url = \"{base}\"\n[sync\n{account}"), "([sync)"),
        (format!("[api]\nbase_url = \"{base}\"\n[sync]\nconcurrency = 99999999999\n{account}"), "sync.concurrency"),
        (format!("[api]\nbase_url = \"{base}\"\n[store]\nmax_size_mb = 0\n{account}"), "store.max_size_mb"),
        (format!("[api]\nbase_url = \"{base}\"\n[server]\nlisten = \"everywhere\"\n{account}"), "server.listen"),
        (
            format!("[api]\nbase_url = \"{base}\"\n[webhook]\nsigning_secret_env = \"TEST_SIGNING_SECRET\"\n{account}"),
            "webhook",
        ),
        (
            format!(
                "[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"my work\"\ntoken_env = \"TEST_TOKEN_WORK\"\n"
            ),
            "accounts[0].name",
        ),
        (
            format!(
                "[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"w\"\ntoken_env = \"TEST_TOKEN_WORK\"\ntoken_file = \"/x\"\n"
            ),
            "accounts[0].token_env",
        ),
        (
            format!("[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"w\"\ntoken_file = \"/nonexistent/token\"\n"),
            "accounts[0].token_file",
        ),
        (
            format!(
                "[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"w\"\ntoken_env = \"TEST_TOKEN_WORK\"\ncalendars = [\"a\", \"a\"]\n"
            ),
            "accounts[0].calendars",
        ),
        (
            format!(
                "[api]\nbase_url = \"{base}\"\n[[accounts]]\nname = \"w\"\ntoken_env = \"TEST_TOKEN_WORK\"\nemail = {{ body = \"pdf\" }}\n"
            ),
            "accounts[0].email.body",
        ),
        (format!("[api]\nbase_url = \"{base}\"\naccounts = 5\n"), "accounts"),
    ];
    let mut messages = std::collections::HashSet::new();
    for (config, key) in cases {
        let config = config.replace("[api]", &format!("[store]\npath = \"{store}\"\n[api]")).replacen(
            &format!("[store]\npath = \"{store}\"\n[api]\nbase_url = \"{base}\"\n[store]"),
            &format!("[api]\nbase_url = \"{base}\"\n[store]"),
            1,
        );
        std::fs::write(&app.config_path, &config).unwrap();
        let out = app.catch_up().await;
        assert_exit(&out, 2);
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line for {key}: {stderr}");
        assert!(stderr.contains(key), "the error names {key}: {stderr}");
        assert!(!stderr.contains(app.token("work")));
        assert!(messages.insert(stderr.clone()), "each case has its own message: {stderr}");
    }
    assert!(app.requests().is_empty(), "no request was sent");
    assert!(!app.db_path.exists(), "no store was created");

    let out = app.run_binary(&["run", "--catch-up", "--no-such-flag"]).await;
    assert_exit(&out, 2);
    std::fs::remove_file(&app.config_path).unwrap();
    let out = app.catch_up().await;
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("cannot read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_not_a_database_exits_2_and_is_left_alone() {
    let app = spawn_app(Setup::default()).await;
    let junk = "not a database\n".repeat(100);
    std::fs::write(&app.db_path, &junk).unwrap();
    let out = app.catch_up().await;
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("not a usable SQLite database"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&app.db_path).unwrap(), junk);
    assert!(app.requests().is_empty());
}
