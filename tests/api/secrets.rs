//! Secrets appear nowhere, in no form: neither account tokens nor the
//! webhook signing secret, raw, encoded or in pieces (see `secret_forms.rs`),
//! in stdout, stderr (human and JSON logs at trace level), `state` (text and
//! JSON), or any file the product writes; and the database files are
//! private. The secrets hold `+/=%"` and spaces and come from environment
//! variables and from files, each kind both ways (two tests); the run goes
//! through every fault, the daemon with the webhook receiver (signed and
//! badly signed requests), `subscribe`, a token refused with 401, and
//! `state`, each command with its exit code checked. `auth add`'s output,
//! trace log and the configuration it writes are searched the same way for
//! the token it receives and the app's client secret (`auth_add.rs`).

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use aurinko_fake::{FakeOptions, Faults, WebhookFaults};
use aurinko_sync::store::Store;

use crate::helpers::{APP_CLIENT_ID, Account, Setup, TestApp, assert_exit, spawn_app, text};
use crate::secret_forms::{Search, Secret};
use crate::webhooks::{notification, post, sign_with};

/// Where each secret comes from.
#[derive(Clone, Copy)]
struct Sources {
    work_token_in_file: bool,
    home_token_in_file: bool,
    signing_secret_in_file: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_the_environment_and_files_never_reach_output_logs_state_or_files() {
    hunt(Sources { work_token_in_file: false, home_token_in_file: true, signing_secret_in_file: true }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_files_and_the_environment_never_reach_output_logs_state_or_files() {
    hunt(Sources { work_token_in_file: true, home_token_in_file: false, signing_secret_in_file: false }).await;
}

/// A fresh secret: random alphanumerics around `+/=%"` (and a space, which
/// a signing secret may hold and a token may not: no header value can), so
/// that every piece of it is mostly random (see `secret_forms.rs`).
pub fn secret(space: bool) -> String {
    let mut out = String::new();
    for (i, fixed) in ["+/", "=%\"", if space { " " } else { "" }, "=", ""].iter().enumerate() {
        let random = RandomState::new().hash_one(i);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        out.extend((0..6).map(|k| alphabet[((random >> (6 * k)) % 62) as usize] as char));
        out.push_str(fixed);
    }
    out
}

/// A private file holding `secret`, with a trailing newline as editors write.
fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

struct Hunt {
    app: TestApp,
    sources: Sources,
    signing_secret: String,
}

impl Hunt {
    /// The binary with the secrets only where the configuration takes them
    /// from: a token read from a file is in no environment variable.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.app.command(args);
        cmd.env("RUST_LOG", "trace");
        if self.sources.work_token_in_file {
            cmd.env_remove("TEST_TOKEN_WORK");
        }
        if self.sources.home_token_in_file {
            cmd.env_remove("TEST_TOKEN_HOME");
        }
        if self.sources.signing_secret_in_file {
            cmd.env_remove("TEST_SIGNING_SECRET");
        } else {
            cmd.env("TEST_SIGNING_SECRET", &self.signing_secret);
        }
        cmd
    }

    async fn run(&self, args: &[&str], code: i32) -> Output {
        let out = self.command(args).output().await.expect("binary runs");
        assert_exit(&out, code);
        out
    }

    /// Every file under the data directory but the secrets given to it.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        files_under(self.app.dir.path(), &["work.token", "home.token", "signing.secret"])
    }
}

/// Fails naming every place (up to three per haystack) where a form of one
/// of `secrets` shows.
pub fn assert_no_leaks(haystack: &[(String, Vec<u8>)], secrets: &[Secret]) {
    let search = Search::new(secrets);
    let leaks: Vec<String> = haystack
        .iter()
        .flat_map(|(what, bytes)| search.find(bytes).into_iter().take(3).map(move |found| format!("{what}: {found}")))
        .collect();
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}

/// Every file under `dir` (its path and bytes) but those named in `given`.
fn files_under(dir: &Path, given: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if !given.iter().any(|g| path.file_name().is_some_and(|n| n == *g)) {
                // A -wal or -shm may go between listing and reading.
                if let Ok(bytes) = std::fs::read(&path) {
                    found.push((path.display().to_string(), bytes));
                }
            }
        }
    }
    found
}

async fn hunt(sources: Sources) {
    let setup = Setup {
        accounts: vec![],
        options: FakeOptions { page_size: 10, ..FakeOptions::default() },
        webhook: true,
        ..Setup::default()
    };
    let mut app = spawn_app(setup).await;
    let tokens = [("work", "w-1", 80, secret(false)), ("home", "h-1", 40, secret(false))];
    for (name, calendar, events, token) in &tokens {
        app.fake.add_account(name, token);
        app.fake.add_calendar(token, calendar, &format!("Calendar {calendar}"), true);
        app.fake.generate_events(token, calendar, *events);
        let env = format!("TEST_TOKEN_{}", name.to_uppercase());
        app.accounts.push(Account { name, token: token.clone(), env });
    }
    let signing_secret = secret(true);
    app.fake.set_signing_secret(&signing_secret);
    std::fs::write(&app.config_path, app.config_text("poll_interval_secs = 1\n")).unwrap();
    let dir = app.dir.path().to_path_buf();
    if sources.work_token_in_file {
        secret_file(&dir, "work.token", &tokens[0].3);
        app.edit_config("token_env = \"TEST_TOKEN_WORK\"", "token_file = \"work.token\"");
    }
    if sources.home_token_in_file {
        secret_file(&dir, "home.token", &tokens[1].3);
        app.edit_config("token_env = \"TEST_TOKEN_HOME\"", "token_file = \"home.token\"");
    }
    if sources.signing_secret_in_file {
        secret_file(&dir, "signing.secret", &signing_secret);
        app.edit_config("signing_secret_env = \"TEST_SIGNING_SECRET\"", "signing_secret_file = \"signing.secret\"");
    }
    let hunt = Hunt { app, sources, signing_secret };
    let app = &hunt.app;

    // Catch-ups through every fault kind, in human and JSON logs; the
    // secrets as they are work (the fake accepts only the exact tokens).
    app.fake.set_faults(Faults { rate: 0.2, kinds: vec![] });
    let mut outputs = vec![hunt.run(&["run", "--catch-up"], 0).await];
    outputs.push(hunt.run(&["--log-format", "json", "run", "--catch-up"], 0).await);
    app.assert_store_equals_truth("work");
    app.assert_store_equals_truth("home");

    // The daemon with its webhook receiver; `subscribe` once it says where
    // it listens.
    let daemon = app.start_daemon(hunt.command(&["run"])).await;
    outputs.push(hunt.run(&["subscribe"], 0).await);

    // A notification signed with the secret and one signed with another.
    let now = chrono::Utc::now().timestamp();
    let body = notification(app, "w-1");
    let signed = |secret: &str| {
        [
            ("X-Aurinko-Request-Timestamp", now.to_string()),
            ("X-Aurinko-Signature", sign_with(secret, now, &body)),
            ("Content-Type", "application/json".to_string()),
        ]
    };
    assert_eq!(post(app, &signed(&hunt.signing_secret), body.clone()).await, 200, "a signed notification");
    assert_eq!(post(app, &signed("not the secret"), body.clone()).await, 401, "a badly signed one");

    // The fake's own notifications, some badly signed, for mutations; then
    // a token refused with 401.
    app.fake.set_webhook_faults(WebhookFaults { bad_signature: 0.3, stale_timestamp: 0.2, duplicates: 1 });
    app.fake.mutate_random(app.token("work"), 10);
    app.fake.kill_token(app.token("home"));
    let home_refused = || {
        Store::open_read_only(&app.db_path)
            .and_then(|s| s.report())
            .is_ok_and(|r| r.accounts.iter().any(|a| a.name == "home" && a.auth_error.is_some()))
    };
    app.wait_for(Duration::from_secs(30), "the mutations and the refusal", || {
        app.store_matches_truth("work") && home_refused()
    })
    .await;
    assert!(app.fake.wait_webhooks_idle(Duration::from_secs(30)).await, "the fake's notifications were delivered");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let path = app.dir.path().join(format!("store.db{suffix}"));
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} while the daemon runs", path.display());
        }
    }
    let mut haystack: Vec<(String, Vec<u8>)> =
        hunt.files().into_iter().map(|(path, bytes)| (format!("{path} while the daemon runs"), bytes)).collect();
    daemon.terminate();
    let daemon = daemon.wait_with_output().await;
    assert_exit(&daemon, 0);
    outputs.push(daemon);

    // The refused token on the command line, and what `state` shows.
    outputs.push(hunt.run(&["run", "--catch-up"], 1).await);
    outputs.push(hunt.run(&["state"], 0).await);
    outputs.push(hunt.run(&["state", "--json"], 0).await);

    // Tokens the configuration refuses (a space), from either source: an
    // error that names the key, not the token.
    let spaced = [secret(true), secret(true)];
    for ((account, in_file), token) in
        [("work", sources.work_token_in_file), ("home", sources.home_token_in_file)].into_iter().zip(&spaced)
    {
        let mut cmd = hunt.command(&["run", "--catch-up"]);
        if in_file {
            secret_file(&dir, &format!("{account}.token"), token);
        } else {
            cmd.env(format!("TEST_TOKEN_{}", account.to_uppercase()), token);
        }
        let out = cmd.output().await.expect("binary runs");
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains("token contains spaces"), "{}", text(&out.stderr));
        outputs.push(out);
    }

    for (i, out) in outputs.into_iter().enumerate() {
        haystack.push((format!("stdout {i}"), out.stdout));
        haystack.push((format!("stderr {i}"), out.stderr));
    }
    haystack.extend(hunt.files());
    let all_text: String = haystack.iter().map(|(_, b)| text(b)).collect();
    // What must have happened for the search to mean something.
    for (what, seen) in [
        ("trace logging", all_text.contains("TRACE") && all_text.contains("\"level\":\"TRACE\"")),
        ("the bad signature logged", all_text.contains("webhook request refused")),
        ("the refused token logged", all_text.contains("token refused")),
        ("the account in `state`", all_text.contains("account home: token refused")),
    ] {
        assert!(seen, "{what}");
    }
    let secrets = [
        Secret::new("the work token", &tokens[0].3),
        Secret::new("the home token", &tokens[1].3),
        Secret::new("the signing secret", &hunt.signing_secret),
        Secret::new("the refused work token", &spaced[0]),
        Secret::new("the refused home token", &spaced[1]),
    ];
    assert_no_leaks(&haystack, &secrets);
}

/// App mode: the app's client secret, from the environment and from a file,
/// through every fault, the daemon, `state`, and a wrong secret (refused,
/// 401), is nowhere in any form; nor is the `Authorization` header's
/// encoding of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_secret_never_reaches_output_logs_state_or_files() {
    let setup = Setup {
        accounts: vec![("work", vec![("w-1", 60)]), ("home", vec![("h-1", 30)])],
        options: FakeOptions { page_size: 10, ..FakeOptions::default() },
        sync_extra: "poll_interval_secs = 1\ndiscovery_interval_secs = 1\n",
        app: true,
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let app_secret = secret(true);
    app.fake.set_app_credentials(APP_CLIENT_ID, &app_secret);
    let dir = app.dir.path().to_path_buf();
    let run = |args: &[&str], secret: Option<&str>| {
        let mut cmd = app.command(args);
        cmd.env("RUST_LOG", "trace");
        match secret {
            Some(secret) => cmd.env("TEST_APP_SECRET", secret),
            None => cmd.env_remove("TEST_APP_SECRET"),
        };
        cmd
    };
    let mut outputs = Vec::new();
    let mut check = |out: Output, code: i32| {
        assert_exit(&out, code);
        outputs.push(out);
    };

    // From the environment, through every fault kind, in both log formats.
    app.fake.set_faults(Faults { rate: 0.2, kinds: vec![] });
    check(run(&["run", "--catch-up"], Some(&app_secret)).output().await.unwrap(), 0);
    check(run(&["--log-format", "json", "run", "--catch-up"], Some(&app_secret)).output().await.unwrap(), 0);
    app.fake.set_faults(Faults { rate: 0.0, kinds: vec![] });
    app.assert_store_equals_truth("work");

    // From a file, in the daemon, while an account changes.
    secret_file(&dir, "app.secret", &app_secret);
    app.edit_config("client_secret_env = \"TEST_APP_SECRET\"", "client_secret_file = \"app.secret\"");
    let daemon = app.start_daemon(run(&["run"], None)).await;
    app.fake.mutate_random(app.token("work"), 10);
    app.wait_for(Duration::from_secs(30), "the daemon's sync", || app.store_matches_truth("work")).await;
    daemon.terminate();
    check(daemon.wait_with_output().await, 0);

    // A wrong secret: refused by Aurinko, one line, exit 1.
    let wrong = secret(true);
    secret_file(&dir, "app.secret", &wrong);
    let out = run(&["run", "--catch-up"], None).output().await.unwrap();
    assert!(text(&out.stderr).contains("account list") && text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    check(out, 1);
    check(run(&["state"], None).output().await.unwrap(), 0);
    check(run(&["state", "--json"], None).output().await.unwrap(), 0);

    let mut haystack = files_under(&dir, &["app.secret"]);
    for (i, out) in outputs.into_iter().enumerate() {
        haystack.push((format!("stdout {i}"), out.stdout));
        haystack.push((format!("stderr {i}"), out.stderr));
    }
    let all_text: String = haystack.iter().map(|(_, b)| text(b)).collect();
    assert!(
        all_text.contains("TRACE") && all_text.contains("app_accounts"),
        "trace logs of app requests were searched"
    );
    use base64::Engine as _;
    // The header's base64 from the first group holding a byte of the secret
    // (the client id before it is no secret).
    let basic = |secret: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{APP_CLIENT_ID}:{secret}"));
        encoded[(APP_CLIENT_ID.len() + 1) / 3 * 4..].to_string()
    };
    let secrets = [
        Secret::new("the app secret", &app_secret),
        Secret::new("the wrong app secret", &wrong),
        Secret::new("the Authorization header", &basic(&app_secret)),
        Secret::new("the wrong Authorization header", &basic(&wrong)),
    ];
    assert_no_leaks(&haystack, &secrets);
}
