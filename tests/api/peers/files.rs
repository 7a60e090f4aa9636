//! Files that are not what they seem: secrets files that are FIFOs, devices,
//! directories, huge or readable by others; store paths that are not
//! regular files, or existing stores open to others; relative paths read
//! from another working directory. All against the real binary.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app, text};

/// How long a refused start may take before the test calls it hung (a FIFO
/// blocks `open` for ever without the fix).
const HUNG: Duration = Duration::from_secs(20);

/// A refusal reads next to nothing: the binary's whole peak stays small.
const MAX_RSS_MIB: u64 = 64;

/// A finished child with its exit code, stderr and peak memory.
struct Finished {
    code: Option<i32>,
    stderr: String,
    max_rss_mib: u64,
}

/// Runs the command to its end, or kills it after [`HUNG`] and fails.
///
/// The peak is the child's `VmHWM`, sampled every few milliseconds until it
/// exits (the high-water mark only grows, so the last sample is the best).
/// Not `wait4`'s `ru_maxrss`: a child started by `vfork` inherits the
/// parent's high-water mark at `exec`, so it would report this test
/// process's size.
async fn run_measured(mut cmd: std::process::Command) -> Finished {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary starts");
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            bytes
        });
        let started = Instant::now();
        let mut peak_kib = 0;
        let status = loop {
            peak_kib = peak_kib.max(super::proc_status(child.id(), "VmHWM:").unwrap_or(0));
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > HUNG {
                let _ = child.kill();
                let _ = child.wait();
                panic!("still running after {HUNG:?} (peak RSS {} MiB): hung", peak_kib / 1024);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Finished { code: status.code(), stderr: text(&reader.join().unwrap()), max_rss_mib: peak_kib / 1024 }
    })
    .await
    .unwrap()
}

/// `run --catch-up` with the account's token read from `path`.
async fn catch_up_with_token_file(app: &TestApp, path: &Path) -> Finished {
    app.edit_config("token_env = \"TEST_TOKEN_WORK\"", &format!("token_file = \"{}\"", path.display()));
    let finished = run_measured(app.command(&["run", "--catch-up"]).into_std()).await;
    app.edit_config(&format!("token_file = \"{}\"", path.display()), "token_env = \"TEST_TOKEN_WORK\"");
    finished
}

fn mkfifo(path: &Path) {
    crate::sys::mkfifo(path, 0o600);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    crate::sys::is_root()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_that_is_a_fifo_a_device_or_a_directory_is_refused_at_once() {
    let app = spawn_app(Setup::default()).await;
    let fifo = app.dir.path().join("token.fifo");
    mkfifo(&fifo);
    let cases = [
        (fifo.clone(), "a FIFO"),
        (PathBuf::from("/dev/zero"), "a character device"),
        (app.dir.path().to_path_buf(), "a directory"),
    ];
    for (path, what) in cases {
        let run = catch_up_with_token_file(&app, &path).await;
        let expected =
            format!("accounts[0].token_file: {} is {what}; a secret must be in a regular file", path.display());
        assert_eq!(run.code, Some(2), "{}: {}", path.display(), run.stderr);
        assert!(run.stderr.contains(&expected), "{}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(run.max_rss_mib < MAX_RSS_MIB, "{}: peak RSS {} MiB", path.display(), run.max_rss_mib);
    }
    assert!(app.requests().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_secret_file_of_dev_zero_is_refused_at_once() {
    let app = spawn_app(Setup { webhook: true, ..Setup::default() }).await;
    app.edit_config("signing_secret_env = \"TEST_SIGNING_SECRET\"", "signing_secret_file = \"/dev/zero\"");
    let run = run_measured(app.command(&["run"]).into_std()).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("webhook.signing_secret_file: /dev/zero is a character device"), "{}", run.stderr);
    assert!(run.max_rss_mib < MAX_RSS_MIB, "peak RSS {} MiB", run.max_rss_mib);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_token_file_is_refused_without_being_read_into_memory() {
    let app = spawn_app(Setup::default()).await;
    let huge = app.dir.path().join("huge.token");
    // Sparse: a gigabyte of zeros that takes no disk.
    std::fs::File::create(&huge).unwrap().set_len(1 << 30).unwrap();
    chmod(&huge, 0o600);
    let run = catch_up_with_token_file(&app, &huge).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("accounts[0].token_file: {} is larger than 64 KiB", huge.display())),
        "{}",
        run.stderr
    );
    assert!(run.max_rss_mib < MAX_RSS_MIB, "peak RSS {} MiB", run.max_rss_mib);
    assert!(app.requests().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_open_to_others_works_with_a_warning_naming_the_chmod_that_fixes_it() {
    let app = spawn_app(Setup::default()).await;
    let file = app.dir.path().join("work.token");
    std::fs::write(&file, format!("{}\n", app.token("work"))).unwrap();
    chmod(&file, 0o644);
    let run = catch_up_with_token_file(&app, &file).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let warning = format!(
        "accounts[0].token_file: {shown} can be read or changed by group or others (mode 644); `chmod 600 {shown}` makes it private",
        shown = file.display()
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    assert!(run.stderr.contains("WARN"), "a warning, not an error: {}", run.stderr);
    assert!(!run.stderr.contains(app.token("work")), "the token is never shown");
    // Private, and reached through a symlink: no warning.
    chmod(&file, 0o600);
    let link = app.dir.path().join("link.token");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let run = catch_up_with_token_file(&app, &link).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("chmod"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_store_and_its_side_files_open_to_others_are_made_private() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    // A reader holding the store open keeps its -wal and -shm in place.
    let reader = rusqlite::Connection::open(&app.db_path).unwrap();
    let _: i64 = reader.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    let files: Vec<PathBuf> =
        ["", "-wal", "-shm"].iter().map(|s| app.dir.path().join(format!("store.db{s}"))).collect();
    for file in &files {
        chmod(file, 0o644);
    }
    app.fake.mutate_random(app.token("work"), 5);
    assert_exit(&app.catch_up().await, 0);
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    drop(reader);
    app.assert_store_equals_truth("work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_path_that_is_not_a_regular_file_is_refused_before_sqlite_touches_it() {
    let app = spawn_app(Setup::default()).await;
    let fifo = app.dir.path().join("store.fifo");
    mkfifo(&fifo);
    let mut cases = vec![(fifo, "a FIFO")];
    if is_root() {
        // A /dev/null of our own, so a regression cannot litter /dev.
        let null = app.dir.path().join("null");
        crate::sys::dev_null(&null);
        cases.push((null, "a character device"));
    } else {
        eprintln!("not root: the device case needs mknod; the FIFO case runs");
    }
    let db = app.db_path.display().to_string();
    for (path, what) in cases {
        app.edit_config(&db, &path.display().to_string());
        let (before, mode_before) = (names_in(app.dir.path()), mode(&path));
        for args in [&["run", "--catch-up"][..], &["run"], &["state"]] {
            let run = run_measured(app.command(args).into_std()).await;
            assert_eq!(run.code, Some(2), "{args:?} on {what}: {}", run.stderr);
            let expected = format!("store {}: is {what}, not a regular file", path.display());
            assert!(run.stderr.contains(&expected), "{args:?}: {}", run.stderr);
        }
        assert_eq!(names_in(app.dir.path()), before, "nothing was created beside {what}");
        assert_eq!(mode(&path), mode_before, "{what} untouched");
        app.edit_config(&path.display().to_string(), &db);
    }
    assert!(app.requests().is_empty(), "nothing was fetched without a store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_open_to_others_that_cannot_be_made_private_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to run the binary as another user (nobody) against a root-owned store");
        return;
    }
    let on_path = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(name).is_file())
    };
    if !on_path("setpriv") {
        eprintln!("skipped: needs setpriv (util-linux) to run the binary as nobody");
        return;
    }
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    // The store is root's and readable by all; nobody cannot chmod it.
    chmod(app.dir.path(), 0o755);
    chmod(&app.db_path, 0o644);
    chmod(&app.config_path, 0o644);
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_aurinko-sync"), "--config"])
        .arg(&app.config_path)
        .args(["run", "--catch-up"])
        .current_dir(app.dir.path())
        .env_remove("RUST_LOG")
        .env("TEST_TOKEN_WORK", app.token("work"));
    let run = run_measured(cmd).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let expected =
        format!("store {}: is open to group or others (mode 644) and cannot be made private", app.db_path.display());
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert_eq!(mode(&app.db_path), 0o644);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_are_read_from_the_configuration_files_directory() {
    let app = spawn_app(Setup::default()).await;
    let conf = app.dir.path().join("conf");
    let elsewhere = app.dir.path().join("elsewhere");
    std::fs::create_dir(&conf).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    let token = conf.join("work.token");
    std::fs::write(&token, app.token("work")).unwrap();
    chmod(&token, 0o600);
    let config = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace(&app.db_path.display().to_string(), "data/store.db")
        .replace("token_env = \"TEST_TOKEN_WORK\"", "token_file = \"work.token\"");
    std::fs::write(conf.join("aurinko-sync.toml"), config).unwrap();
    // A relative --config, from a sibling directory, without a token variable.
    let run = |args: &'static [&'static str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_aurinko-sync"))
            .args(["--config", "../conf/aurinko-sync.toml"])
            .args(args)
            .current_dir(&elsewhere)
            .env_remove("RUST_LOG")
            .env_remove("AURINKO_SYNC_CONFIG")
            .output()
    };
    let out = run(&["run", "--catch-up"]).await.unwrap();
    assert_exit(&out, 0);
    let store = conf.join("data/store.db");
    assert_eq!(mode(&conf.join("data")), 0o700, "the directory made for the store");
    assert_eq!(mode(&store), 0o600);
    assert!(names_in(&elsewhere).is_empty(), "nothing in the working directory: {:?}", names_in(&elsewhere));
    let out = run(&["state", "--json"]).await.unwrap();
    assert_exit(&out, 0);
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["collections"].as_array().map(Vec::len), Some(2), "{state}");
}

/// The figure for the README: how long validating 100,000 accounts takes
/// (the last one a duplicate, so validation runs to the end and fails).
/// Timing is printed, not asserted: `cargo test --release --test api
/// validating_100k -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure, not a check"]
async fn validating_100k_accounts() {
    let app = spawn_app(Setup::default()).await;
    let mut config = std::fs::read_to_string(&app.config_path).unwrap();
    for i in 0..100_000 {
        config.push_str(&format!("[[accounts]]\nname = \"account-{i}\"\ntoken_env = \"TEST_TOKEN_WORK\"\n"));
    }
    config.push_str("[[accounts]]\nname = \"account-0\"\ntoken_env = \"TEST_TOKEN_WORK\"\n");
    std::fs::write(&app.config_path, config).unwrap();
    let started = Instant::now();
    let run = run_measured(app.command(&["state"]).into_std()).await;
    let elapsed = started.elapsed();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("accounts[100001].name: duplicate account name"), "{}", run.stderr);
    println!("validating 100,001 accounts: {:.2} s, peak RSS {} MiB", elapsed.as_secs_f64(), run.max_rss_mib);
}
