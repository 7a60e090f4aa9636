//! Every command ends quietly when the reader of its output has gone
//! (`aurinko-sync demo | head`): no panic, no backtrace, its usual exit code.

use std::io::BufRead;
use std::process::{Output, Stdio};
use std::time::Duration;

use aurinko_fake::Collection;

use crate::helpers::{Setup, TestApp, spawn_app, text};
use crate::webhooks::{subscribed, webhook_setup};

/// A pipe nobody reads: every write to it fails with a broken pipe.
fn closed() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer.into()
}

fn assert_quiet(what: &str, out: &Output, code: i32) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{what}: {stderr}");
    assert_eq!(out.status.code(), Some(code), "{what}: exit status {:?}\nstderr:\n{stderr}", out.status);
}

/// `args` with stdout closed (and stderr too when `stderr_closed`).
async fn run_closed(app: &TestApp, args: &[&str], stderr_closed: bool) -> Output {
    let_closed(app.command(args), stderr_closed).await
}

/// Runs `cmd` with stdout closed, and stderr too when `stderr_closed`
/// (`output()` would pipe both again).
async fn let_closed(mut cmd: tokio::process::Command, stderr_closed: bool) -> Output {
    cmd.stdin(Stdio::null()).stdout(closed()).stderr(if stderr_closed { closed() } else { Stdio::piped() });
    let child = cmd.spawn().expect("binary starts");
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("ends").expect("waited")
}

/// Reads the first line of stdout, closes the pipe, and waits.
async fn first_line_then_close(mut cmd: tokio::process::Command, then: impl FnOnce(u32)) -> (String, Output) {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(std::fs::File::from(stdout.into_owned_fd().expect("a pipe")));
    let line = tokio::task::spawn_blocking(move || {
        reader.read_line(&mut line).expect("a first line");
        line
    })
    .await
    .unwrap();
    then(child.id().expect("running"));
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("ends");
    (line, out.expect("waited"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_piped_into_head_ends_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let demo = |db: &str| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurinko-sync"));
        cmd.args(["demo", "--events", "200", "--calendars", "2", "--db", db]).current_dir(dir.path());
        cmd.env_remove("RUST_LOG").kill_on_drop(true);
        cmd
    };
    let (line, out) = first_line_then_close(demo("head.db"), drop).await;
    assert!(line.starts_with("Fake Aurinko on"), "{line}");
    assert_quiet("demo | head -1", &out, 0);

    assert_quiet("demo with stdout closed", &let_closed(demo("closed.db"), false).await, 0);
    assert_quiet("demo with stdout and stderr closed", &let_closed(demo("closed-too.db"), true).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_ends_quietly_when_its_output_is_closed() {
    let app = spawn_app(Setup::default()).await;
    assert_quiet("run --catch-up", &run_closed(&app, &["run", "--catch-up"], false).await, 0);
    let db = app.db_path.to_str().unwrap();
    for args in [
        &["state"][..],
        &["state", "--json"],
        &["state", "--wide"],
        &["state", "--check"],
        &["state", "--db", db],
        &["--help"],
        &["state", "--help"],
        &["--version"],
    ] {
        assert_quiet(&args.join(" "), &run_closed(&app, args, false).await, 0);
        assert_quiet(&args.join(" "), &run_closed(&app, args, true).await, 0);
    }
    // Errors on a closed stderr, and the log of a failing pass.
    assert_quiet("a usage error", &run_closed(&app, &["state", "--bogus"], true).await, 2);
    assert_quiet("a missing store", &run_closed(&app, &["state", "--db", "missing.db"], true).await, 2);
    app.fake.set_delta_refused(app.token("work"), &Collection::Calendar("cal-1".into()), true);
    assert_quiet("a failing catch-up", &run_closed(&app, &["run", "--catch-up"], true).await, 1);
    let mut logging = app.command(&["run", "--catch-up"]);
    logging.env("RUST_LOG", "debug");
    assert_quiet("a catch-up logging at debug", &let_closed(logging, true).await, 1);
    assert_quiet("state --check, failing", &run_closed(&app, &["state", "--check"], true).await, 1);
    assert_quiet("reset without --yes", &run_closed(&app, &["reset", "--account", "work"], true).await, 2);
    assert_quiet("resync", &run_closed(&app, &["resync"], false).await, 0);
    assert_quiet("reset", &run_closed(&app, &["reset", "--account", "work", "--yes"], false).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_subscribe_and_the_fake_end_quietly_without_readers() {
    // The daemon logs every pass on stderr, which nobody reads.
    let app = spawn_app(Setup::default()).await;
    let mut cmd = app.command(&["run"]);
    cmd.stdin(Stdio::null()).stdout(closed()).stderr(closed());
    let mut daemon = cmd.spawn().expect("daemon starts");
    let started = std::time::Instant::now();
    while !app.store_matches_truth("work") {
        if let Some(status) = daemon.try_wait().unwrap() {
            panic!("the daemon ended before its first pass: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for the first pass");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crate::sys::signal(daemon.id().unwrap(), crate::sys::Sig::TERM);
    let out = tokio::time::timeout(Duration::from_secs(30), daemon.wait_with_output()).await.unwrap().unwrap();
    assert_quiet("run", &out, 0);

    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    assert_quiet("subscribe", &run_closed(&app, &["subscribe"], false).await, 0);

    let mut fake = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurinko-sync"));
    fake.args(["fake", "--listen", "127.0.0.1:0", "--events", "10"]).kill_on_drop(true);
    let interrupt = |pid: u32| crate::sys::signal(pid, crate::sys::Sig::INT);
    let (line, out) = first_line_then_close(fake, interrupt).await;
    assert!(line.starts_with("Fake Aurinko serving"), "{line}");
    assert_quiet("fake", &out, 0);
}
