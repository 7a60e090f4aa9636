//! `auth add`, end to end: the real binary against the fake Aurinko's OAuth flow. The test
//! plays the browser: it reads the authorize address the command prints, requests it, and
//! follows (or, to forge, rewrites) the redirect back to the command's loopback listener. A
//! connected account's token file is private, its entry joins a configuration whose comments
//! stay, and the next catch-up syncs it; every refusal is one line on stderr, its exit code,
//! and nothing written.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::helpers::{APP_CLIENT_ID, Account, Setup, TestApp, spawn_app, text};
use crate::secret_forms::Secret;
use crate::secrets::{assert_no_leaks, secret};

/// The variable the test configuration's `[app]` reads the client secret from.
const SECRET_ENV: &str = "TEST_AUTH_CLIENT_SECRET";

/// How long the command may take to print its address, or to end: generous bounds for a
/// loaded machine, never waited out when things work.
const PATIENCE: Duration = Duration::from_secs(60);

struct AuthApp {
    app: TestApp,
    /// The configuration as written before `auth add`.
    original: String,
    /// The app's client secret, random like a real one.
    client_secret: String,
}

/// The fake with one account (`work`) and the app's credentials, and a configuration with
/// comments, that account and `[app]`.
async fn auth_app() -> AuthApp {
    let app = spawn_app(Setup::default()).await;
    let client_secret = secret(false);
    app.fake.set_app_credentials(APP_CLIENT_ID, &client_secret);
    let original = format!(
        "# The team's sync settings: this comment stays.\n{}\n# The Aurinko app that connects mailboxes.\n[app]\nclient_id = \"{APP_CLIENT_ID}\"  # from the dashboard\nclient_secret_env = \"{SECRET_ENV}\"\n",
        app.config_text("")
    );
    std::fs::write(&app.config_path, &original).unwrap();
    AuthApp { app, original, client_secret }
}

/// A child `auth add`, its stdout read line by line as it comes.
struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdout: String,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
}

pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl AuthApp {
    fn start(&self, args: &[&str]) -> Running {
        self.start_with(args, &self.client_secret, false)
    }

    /// `auth add` with `args`, the app's secret as given, logging at trace level when
    /// `trace` (else errors alone are on stderr).
    fn start_with(&self, args: &[&str], client_secret: &str, trace: bool) -> Running {
        self.start_env(args, client_secret, trace, &[])
    }

    /// [`start_with`](Self::start_with), with `env` set too.
    fn start_env(&self, args: &[&str], client_secret: &str, trace: bool, env: &[(&str, &str)]) -> Running {
        let mut cmd = self.app.command(&[&["auth", "add"], args].concat());
        if trace {
            cmd.env("RUST_LOG", "trace");
        }
        cmd.env(SECRET_ENV, client_secret);
        Running::spawn(cmd, env)
    }

    fn token_path(&self, name: &str) -> PathBuf {
        self.app.dir.path().join(format!("tokens/{name}.token"))
    }

    /// The configuration is as it was, and no token file, directory or temporary file is
    /// left.
    fn assert_nothing_written(&self) {
        assert_eq!(std::fs::read_to_string(&self.app.config_path).unwrap(), self.original, "configuration unchanged");
        let files: Vec<String> = std::fs::read_dir(self.app.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["aurinko-sync.toml"], "nothing else written");
    }
}

/// Runs `auth add` from `cmd` (the binary with its arguments) and plays the browser: the
/// address it prints is requested, and the redirect followed back to its listener. How it
/// ended.
pub async fn authorize_in_browser(cmd: tokio::process::Command) -> Ended {
    let mut run = Running::spawn(cmd, &[]);
    let url = run.authorize_url().await;
    let response = browser().get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "the listener answers the browser");
    run.finish().await
}

impl Running {
    /// Starts `cmd` without the app's credentials in the environment and without a desktop
    /// (so no browser is started), its output piped.
    /// `env`: variables set after that (the app's credentials, for a test of them).
    fn spawn(mut cmd: tokio::process::Command, env: &[(&str, &str)]) -> Running {
        cmd.env_remove("AURINKO_CLIENT_ID")
            .env_remove("AURINKO_CLIENT_SECRET")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("auth add starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes).await;
            bytes
        });
        Running { child, lines, stdout: String::new(), stderr }
    }

    /// The authorize address, the first line of stdout that is one.
    async fn authorize_url(&mut self) -> String {
        loop {
            let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
                .await
                .expect("the address is printed in time")
                .expect("stdout readable");
            let Some(line) = line else { panic!("auth add ended without an address; stdout:\n{}", self.stdout) };
            self.stdout.push_str(&line);
            self.stdout.push('\n');
            if line.starts_with("http") {
                return line;
            }
        }
    }

    /// Writes the pasted address to stdin and closes it.
    async fn paste(&mut self, address: &str) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(format!("{address}\n").as_bytes()).await.unwrap();
        drop(stdin);
    }

    /// Waits for the command to end; its whole output.
    async fn finish(self) -> Ended {
        tokio::time::timeout(PATIENCE, self.finish_now()).await.expect("auth add ends in time")
    }

    async fn finish_now(mut self) -> Ended {
        while let Some(line) = self.lines.next_line().await.unwrap() {
            self.stdout.push_str(&line);
            self.stdout.push('\n');
        }
        let status = self.child.wait().await.unwrap();
        let stderr = text(&self.stderr.await.unwrap());
        Ended { code: status.code(), stdout: self.stdout, stderr }
    }
}

impl Ended {
    /// Exit `code`, and stderr one line naming `words`.
    fn assert_refused(&self, code: i32, words: &str) {
        assert_eq!(self.code, Some(code), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {:?}", self.stderr);
        assert!(lines[0].starts_with("aurinko-sync: auth add: "), "{}", lines[0]);
        assert!(lines[0].contains(words), "{:?} should say {words:?}", lines[0]);
    }
}

/// A client like a browser: redirects followed.
fn browser() -> reqwest::Client {
    aurinko_sync::http_client::builder().timeout(PATIENCE).build().unwrap()
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    aurinko_sync::http_client::builder().timeout(PATIENCE).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Where the fake redirects the browser to, without going there.
async fn redirect_of(url: &str) -> reqwest::Url {
    let response = no_redirects().get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    reqwest::Url::parse(location).unwrap()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_connects_an_account_the_next_catch_up_syncs() {
    let mut t = auth_app().await;
    let mut run = t.start_with(&["mine", "--service", "google"], &t.client_secret, true);
    let url = run.authorize_url().await;
    // What a browser asks for besides the callback changes nothing: a 404, and the wait goes on.
    let return_url = reqwest::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "returnUrl")
        .map(|(_, v)| v.into_owned())
        .expect("a returnUrl");
    for unrelated in ["/favicon.ico", "/callback", "/callback?keep=1", "/"] {
        let stray = return_url.replace("/callback", unrelated);
        assert_eq!(browser().get(&stray).send().await.unwrap().status().as_u16(), 404, "{stray}");
    }
    // Connections held open without a request (more than the listener keeps) cannot keep
    // the browser out.
    let listener_addr = reqwest::Url::parse(&return_url).unwrap().socket_addrs(|| None).unwrap()[0];
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(listener_addr).await.unwrap());
    }
    let response = browser().get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "the listener answers the browser");
    let callback = response.url().clone();
    drop(idle);
    let ended = run.finish().await;
    assert_eq!(ended.code, Some(0), "stdout:\n{}\nstderr:\n{}", ended.stdout, ended.stderr);

    // What the fake was asked for.
    let asked = t.app.fake.authorizations();
    assert_eq!(asked.len(), 1);
    let port = callback.port().unwrap();
    assert_eq!(asked[0].return_url, format!("http://127.0.0.1:{port}/callback"));
    assert_eq!(
        (asked[0].service_type.as_str(), asked[0].scopes.clone()),
        ("Google", vec!["Calendar.Read".to_string()])
    );
    assert_eq!(asked[0].client_id, APP_CLIENT_ID);
    assert_eq!(t.app.fake.pending_codes(), 0, "the code was exchanged");

    // The token file: private, in a private directory, holding the new account's token.
    let token_path = t.token_path("mine");
    let token = std::fs::read_to_string(&token_path).unwrap().trim().to_string();
    assert!(t.app.fake.account_id(&token).is_some(), "the file holds the token the fake handed out");
    #[cfg(unix)]
    {
        assert_eq!(mode(&token_path), 0o600);
        assert_eq!(mode(token_path.parent().unwrap()), 0o700);
    }

    // The configuration: as it was, comments and all, with the entry after the others.
    let config = std::fs::read_to_string(&t.app.config_path).unwrap();
    let id = t.app.fake.account_id(&token).unwrap();
    let added = format!(
        "\n# Connected with `aurinko-sync auth add` (Google, Aurinko account {id}).\n[[accounts]]\nname = \"mine\"\ntoken_file = \"tokens/mine.token\"\ncalendars = \"all\"\n"
    );
    assert!(config.contains(&added), "the entry:\n{config}");
    assert_eq!(config.replacen(&added, "", 1), t.original, "the old text stays as written");
    assert!(config.find(&added) < config.find("[app]"), "the entry joins the others:\n{config}");
    let parsed: toml::Table = toml::from_str(&config).unwrap();
    let accounts = parsed["accounts"].as_array().unwrap();
    let entry = accounts.last().unwrap();
    assert_eq!(entry["name"].as_str(), Some("mine"));
    assert_eq!(entry["token_file"].as_str(), Some("tokens/mine.token"));
    assert_eq!(entry["calendars"].as_str(), Some("all"));
    assert_eq!(parsed["app"]["client_id"].as_str(), Some(APP_CLIENT_ID), "[app] is still [app]");

    // Neither the token nor the client secret shows anywhere, in any form.
    let secrets = [Secret::new("account token", &token), Secret::new("client secret", &t.client_secret)];
    let haystack = [
        ("stdout".to_string(), ended.stdout.into_bytes()),
        ("stderr (trace)".to_string(), ended.stderr.into_bytes()),
        ("configuration".to_string(), config.into_bytes()),
    ];
    assert_no_leaks(&haystack, &secrets);

    // The next catch-up syncs the new account beside the old one.
    t.app.accounts.push(Account { name: "mine", token: token.clone(), env: "TEST_TOKEN_MINE".to_string() });
    let out = t.app.command(&["run", "--catch-up"]).env(SECRET_ENV, &t.client_secret).output().await.unwrap();
    crate::helpers::assert_exit(&out, 0);
    t.app.assert_store_equals_truth("mine");
    t.app.assert_store_equals_truth("work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_no_browser_takes_the_pasted_redirect_and_configures_what_the_scopes_allow() {
    let t = auth_app().await;
    let mut run = t.start(&["pasted", "--service", "IMAP", "--no-browser", "--scopes", "Calendar.Read,Contacts.Read"]);
    let url = run.authorize_url().await;
    let redirect = redirect_of(&url).await;
    assert_eq!(redirect.as_str().split('?').next(), Some("http://127.0.0.1/callback"));
    // An edit made while the command waits is kept.
    let edited = format!("{}# Edited while auth add waited.\n", t.original);
    std::fs::write(&t.app.config_path, &edited).unwrap();
    run.paste(redirect.as_str()).await;
    let ended = run.finish().await;
    assert_eq!(ended.code, Some(0), "stdout:\n{}\nstderr:\n{}", ended.stdout, ended.stderr);
    let asked = t.app.fake.authorizations();
    assert_eq!(asked[0].scopes, ["Calendar.Read", "Contacts.Read"]);
    assert_eq!(asked[0].service_type, "IMAP");
    let token = std::fs::read_to_string(t.token_path("pasted")).unwrap().trim().to_string();
    assert!(t.app.fake.account_id(&token).is_some());
    let config = std::fs::read_to_string(&t.app.config_path).unwrap();
    assert!(config.contains("# Edited while auth add waited.\n"), "{config}");
    let parsed: toml::Table = toml::from_str(&config).unwrap();
    let entry = parsed["accounts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((entry["name"].as_str(), entry["contacts"].as_bool()), (Some("pasted"), Some(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_denied_consent_fails_and_writes_nothing() {
    let t = auth_app().await;
    t.app.fake.set_consent_denied(true);
    let mut run = t.start(&["mine", "--service", "Office365"]);
    let url = run.authorize_url().await;
    assert_eq!(browser().get(&url).send().await.unwrap().status().as_u16(), 200);
    run.finish().await.assert_refused(1, "access was not granted (Aurinko said: access_denied");
    t.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_wrong_secret_is_a_configuration_error_and_writes_nothing() {
    let t = auth_app().await;
    let mut run = t.start_with(&["mine", "--service", "Google"], &secret(false), false);
    let url = run.authorize_url().await;
    assert_eq!(browser().get(&url).send().await.unwrap().status().as_u16(), 200);
    run.finish().await.assert_refused(2, "Aurinko refused the app's credentials (HTTP 401");
    assert_eq!(t.app.fake.pending_codes(), 1, "the code was offered and refused");
    t.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_state_mismatch_is_refused_before_the_code_is_used() {
    let t = auth_app().await;
    let mut run = t.start(&["mine", "--service", "Google"]);
    let url = run.authorize_url().await;
    // A genuine code, under a state the command did not send.
    let mut forged = redirect_of(&url).await;
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { "forged".to_string() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(browser().get(forged).send().await.unwrap().status().as_u16(), 200);
    run.finish().await.assert_refused(1, "state does not match");
    assert_eq!(t.app.fake.pending_codes(), 1, "the code was never exchanged");
    t.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_port_taken_is_said_before_the_browser_is_sent() {
    let t = auth_app().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let run = t.start(&["mine", "--service", "Google", "--port", &port]);
    let ended = run.finish().await;
    ended.assert_refused(2, &format!("port {port} on 127.0.0.1 is taken"));
    assert!(!ended.stdout.contains("http"), "no address printed: {}", ended.stdout);
    assert!(t.app.fake.authorizations().is_empty());
    t.assert_nothing_written();
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_timeout_and_a_taken_name_write_nothing() {
    let t = auth_app().await;
    // Nobody comes back within the second allowed.
    let mut run = t.start(&["mine", "--service", "Google", "--timeout", "1"]);
    run.authorize_url().await;
    run.finish().await.assert_refused(1, "no answer from the browser within 1 s");
    t.assert_nothing_written();
    // A name already configured is refused before anything is asked.
    let run = t.start(&["work", "--service", "Google"]);
    let ended = run.finish().await;
    ended.assert_refused(2, "an account named \"work\" is already configured");
    assert!(t.app.fake.authorizations().is_empty());
    t.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_takes_the_app_s_credentials_from_the_environment() {
    let t = auth_app().await;
    // A configuration without [app]: the credentials come from the environment alone.
    let without_app = t.app.config_text("");
    std::fs::write(&t.app.config_path, &without_app).unwrap();
    let env = [("AURINKO_CLIENT_ID", APP_CLIENT_ID), ("AURINKO_CLIENT_SECRET", t.client_secret.as_str())];
    let mut run = t.start_env(&["envy", "--service", "EWS"], "unused", true, &env);
    let url = run.authorize_url().await;
    assert_eq!(browser().get(&url).send().await.unwrap().status().as_u16(), 200);
    let ended = run.finish().await;
    assert_eq!(ended.code, Some(0), "stdout:\n{}\nstderr:\n{}", ended.stdout, ended.stderr);
    let token = std::fs::read_to_string(t.token_path("envy")).unwrap().trim().to_string();
    assert!(t.app.fake.account_id(&token).is_some());
    let config = std::fs::read_to_string(&t.app.config_path).unwrap();
    assert!(config.starts_with(&without_app), "{config}");
    let secrets = [Secret::new("account token", &token), Secret::new("client secret", &t.client_secret)];
    let haystack = [
        ("stdout".to_string(), ended.stdout.into_bytes()),
        ("stderr (trace)".to_string(), ended.stderr.into_bytes()),
        ("configuration".to_string(), config.into_bytes()),
    ];
    assert_no_leaks(&haystack, &secrets);
    // One of the two alone is refused before anything is asked.
    let run = t.start_env(&["other", "--service", "EWS"], "unused", false, &env[..1]);
    run.finish().await.assert_refused(2, "AURINKO_CLIENT_ID is set but AURINKO_CLIENT_SECRET is not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_add_refuses_a_configuration_in_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("missing/aurinko-sync.toml");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurinko-sync"));
    cmd.arg("--config").arg(&config).args(["auth", "add", "first", "--service", "Google"]).current_dir(dir.path());
    cmd.env_remove("RUST_LOG").kill_on_drop(true);
    let credentials = [("AURINKO_CLIENT_ID", "app-id"), ("AURINKO_CLIENT_SECRET", "app-secret")];
    let ended = Running::spawn(cmd, &credentials).finish().await;
    ended.assert_refused(2, "the configuration's directory");
    assert!(!ended.stdout.contains("http"), "nothing asked: {}", ended.stdout);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}
