//! What an operator reads: the daemon's log at the default level (idle
//! passes say nothing, a pass that changed something says so once, a stop
//! once) and a catch-up's results, each printed once.

use std::time::Duration;

use crate::helpers::{Setup, assert_exit, spawn_app, text};
use crate::webhooks::passes;

const CALENDARS: [&str; 2] = ["cal-1", "cal-2"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_logs_no_line_per_pass_one_per_change_and_its_stop_once() {
    let app = spawn_app(Setup { sync_extra: "poll_interval_secs = 1\n", ..Setup::default() }).await;
    let daemon = app.spawn_daemon().await;
    let limit = Duration::from_secs(30);
    for calendar in CALENDARS {
        daemon.wait_for_line(0, limit, "the first pass", |l| l.contains("caught up") && l.contains(calendar)).await;
    }
    // Two idle passes of each calendar: the third poll starting means the
    // second ended, and logged whatever it logs.
    let quiet_from = daemon.lines().len();
    app.fake.clear_requests();
    app.wait_for(limit, "two idle passes of each calendar", || {
        let requests = app.requests();
        CALENDARS.iter().all(|c| passes(&requests, c) >= 3)
    })
    .await;
    let idle: Vec<String> = daemon.lines().into_iter().skip(quiet_from).collect();
    assert!(idle.is_empty(), "idle passes logged at the default level:\n{}", idle.join("\n"));

    let token = app.token("work").to_string();
    let changed_from = daemon.lines().len();
    app.fake.create_event(&token, "cal-2");
    daemon.wait_for_line(changed_from, limit, "the change", |l| l.contains("caught up") && l.contains("cal-2")).await;
    // Two more passes of cal-2 after the change: the pass that stored it
    // logged one line, those after it none.
    app.fake.clear_requests();
    app.wait_for(limit, "two passes after the change", || passes(&app.requests(), "cal-2") >= 3).await;
    let changed: Vec<String> = daemon.lines().into_iter().skip(changed_from).collect();
    assert_eq!(changed.len(), 1, "one line for the pass that changed something:\n{}", changed.join("\n"));
    assert!(changed[0].contains(" INFO ") && changed[0].contains("upserted=1"), "{}", changed[0]);

    daemon.terminate();
    let out = daemon.wait_with_output().await;
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    for once in ["stop requested", "finishing commits under way", "stopped"] {
        let times = stderr.lines().filter(|l| l.contains(once)).count();
        assert_eq!(times, 1, "{once:?} logged {times} times:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_off_a_terminal_prints_each_result_once() {
    let app = spawn_app(Setup { contacts: Some(30), ..Setup::default() }).await;
    // cal-2 fails: its summary line goes to stderr, once.
    app.fake.set_sync_not_found(app.token("work"), &aurinko_fake::Collection::Calendar("cal-2".into()), true);
    let out = app.catch_up().await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for (collection, on_stdout) in [("work/cal-1", true), ("work/contacts", true), ("work/cal-2", false)] {
        let mentions = |s: &str| s.lines().filter(|l| l.contains(collection)).count();
        let (out_lines, err_lines) = (mentions(&stdout), mentions(&stderr));
        let expected = if on_stdout { (1, 0) } else { (0, 1) };
        assert_eq!(
            (out_lines, err_lines),
            expected,
            "{collection}: lines on (stdout, stderr)\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_failure_is_logged_once() {
    let app = spawn_app(Setup::default()).await;
    // Nothing listens on port 9 (discard): every connection is refused.
    app.edit_config(&app.server.base_url(), "http://127.0.0.1:9/v1");
    app.edit_config("max_attempts = 10", "max_attempts = 2");
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    let logged = stderr.lines().filter(|l| l.contains("discovery failed") && !l.starts_with("failed")).count();
    assert_eq!(logged, 1, "one log line for the failed calendar discovery:\n{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("failed")).count(), 1, "and one summary line:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_sets_the_levels_and_a_value_it_cannot_read_is_said_once() {
    let app = spawn_app(Setup::default()).await;
    let catch_up = |rust_log: &'static str| {
        let mut cmd = app.command(&["run", "--catch-up"]);
        cmd.env("RUST_LOG", rust_log);
        async move { cmd.output().await.expect("binary runs") }
    };
    let levels = |stderr: &str, level: &str| stderr.lines().filter(|l| l.contains(level)).count();

    let out = catch_up("aurinko_sync=debug").await;
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(levels(&stderr, " DEBUG ") > 0, "aurinko_sync=debug shows debug lines:\n{stderr}");

    let out = catch_up("warn").await;
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert_eq!(levels(&stderr, " INFO ") + levels(&stderr, " DEBUG "), 0, "warn hides info and debug:\n{stderr}");

    let out = catch_up("aurinko_sync=loud").await;
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    let said = stderr.lines().filter(|l| l.contains("RUST_LOG is not a list")).count();
    assert_eq!(said, 1, "one warning for a RUST_LOG it cannot read:\n{stderr}");
    assert_eq!(levels(&stderr, " DEBUG "), 0, "and the default levels:\n{stderr}");
}
