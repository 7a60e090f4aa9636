//! The daemon (`run`): polling, discovery, graceful stop, systemd
//! notifications, health and metrics.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aurinko_fake::{Endpoint, FakeOptions, RequestRecord};

use crate::crash::{assert_no_committed_page_refetched, catch_up_from_stored_tokens};
use crate::helpers::{Setup, TestApp, assert_exit, spawn_app};
use crate::webhooks::{pass_start, passes, wait_for_passes, wait_for_state};

fn daemon_setup(sync: &'static str) -> Setup {
    Setup { sync_extra: sync, server: true, ..Setup::default() }
}

pub(crate) async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", app.listen());
    // Through the product's builder: it installs rustls's provider, which a
    // bare `reqwest::get` needs someone to have done first.
    let client = aurinko_sync::http_client::builder().build().expect("a client");
    match client.get(&url).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// Polls `get(path)` until `check` holds for its answer; returns it.
pub(crate) async fn wait_for_get(
    app: &TestApp,
    path: &str,
    what: &str,
    check: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let started = Instant::now();
    loop {
        let (status, body) = get(app, path).await;
        if check(status, &body) {
            return (status, body);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{path} never showed {what}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_reaches_the_store_within_two_poll_intervals() {
    let app = spawn_app(daemon_setup("poll_interval_secs = 2\n")).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let token = app.token("work").to_string();
    for _ in 0..2 {
        // By its second poll of each calendar since the change, it is
        // stored; and the first of those polls starts within two intervals
        // of the change, on the fake's clock (a busy machine delays the
        // daemon's timers by milliseconds, not seconds).
        app.fake.clear_requests();
        let changed = Instant::now();
        app.fake.mutate_random(&token, 5);
        app.wait_for(Duration::from_secs(30), "the mutation", || app.store_matches_truth("work")).await;
        let requests = app.requests();
        for calendar in ["cal-1", "cal-2"] {
            let polls = passes(&requests, calendar);
            assert!(polls <= 2, "{calendar}: stored after {polls} polls, more than two poll intervals");
            let first = requests.iter().find(|r| {
                r.endpoint == Endpoint::SyncUpdated
                    && r.delta_token.is_some()
                    && r.calendar_id.as_deref() == Some(calendar)
            });
            let after = first.map(|r| r.at.saturating_duration_since(changed));
            assert!(
                after.is_some_and(|a| a <= Duration::from_secs(4)),
                "{calendar}: first poll {after:?} after the change"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendars_added_upstream_are_picked_up_and_removed_ones_purged() {
    let app = spawn_app(daemon_setup("poll_interval_secs = 1\ndiscovery_interval_secs = 1\n")).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let token = app.token("work").to_string();
    app.fake.add_calendar(&token, "cal-new", "New", false);
    app.fake.generate_events(&token, "cal-new", 30);
    app.wait_for(Duration::from_secs(30), "the new calendar", || {
        app.store_matches_truth("work") && app.stored("work").iter().any(|(c, _, _)| c == "cal-new")
    })
    .await;
    app.fake.remove_calendar(&token, "cal-1");
    app.wait_for(Duration::from_secs(30), "the purge", || {
        app.store_matches_truth("work") && !app.stored("work").iter().any(|(c, _, _)| c == "cal-1")
    })
    .await;
    let purged = Instant::now();
    let state = app.state_json().await;
    let cal1 = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-1").unwrap().clone();
    assert_eq!(cal1["phase"], "removed");
    // Its actor stopped: no pass of it starts after the purge, nor any
    // request once a pass under way then has ended. Counted in the other
    // calendar's polls (every second, as cal-1's were): once two of them
    // have ended, a pass of cal-1 under way at the purge has ended too;
    // over three more, a running actor would have polled.
    let cal1_requests = || app.requests().iter().filter(|r| r.path.contains("/cal-1/")).count();
    let cal2 = |r: &RequestRecord| r.calendar_id.as_deref() == Some("cal-2");
    let seen = passes(&app.requests(), "cal-2");
    wait_for_passes(&app, "two more polls of cal-2", seen + 2, cal2).await;
    let before = cal1_requests();
    wait_for_passes(&app, "three more polls of cal-2", seen + 5, cal2).await;
    assert_eq!(cal1_requests(), before, "requests for the removed calendar");
    let started_after =
        app.requests().into_iter().filter(|r| r.at > purged && r.path.contains("/cal-1/") && pass_start(r));
    assert_eq!(started_after.count(), 0, "passes of the removed calendar started after its purge");
}

/// A calendar removed upstream while a pass of it is under way: its actor
/// is stopped, and only once it has (every write of its pass sent to the
/// writer, or never sent) are its records purged. Purged first, a commit
/// of that pass landing after the purge would bring rows back and mark the
/// calendar live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_calendar_is_purged_only_after_its_actor_has_stopped() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 200), ("cal-2", 20)])],
        options: FakeOptions { page_size: 10, ..FakeOptions::default() },
        ..daemon_setup("poll_interval_secs = 1\ndiscovery_interval_secs = 1\n")
    };
    let app = spawn_app(setup).await;
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(30), "the first sync", || app.store_matches_truth("work")).await;
    // The next page request of cal-1 waits: a pass of it is under way.
    let hold = app.fake.hold_next_page("cal-1");
    tokio::time::timeout(Duration::from_secs(30), hold.arrived()).await.expect("a pass of cal-1 asks for a page");
    let skip = daemon.lines().len();
    app.fake.remove_calendar(app.token("work"), "cal-1");
    let about_cal1 = |l: &str, what: &str| l.contains("cal-1") && l.contains(what);
    daemon
        .wait_for_line(skip, Duration::from_secs(30), "the purge of cal-1", |l| about_cal1(l, "removing its records"))
        .await;
    let lines: Vec<String> = daemon.lines().into_iter().skip(skip).collect();
    let stopping = lines.iter().position(|l| about_cal1(l, "stopping its actor"));
    let purging = lines.iter().position(|l| about_cal1(l, "removing its records"));
    assert!(
        stopping.is_some() && stopping < purging,
        "the actor of cal-1 must be stopped before its purge:\n{}",
        lines.join("\n")
    );
    // The held request was given up by the stopped pass, never answered.
    app.wait_for(Duration::from_secs(30), "the held request to be given up", || hold.abandoned()).await;
    hold.release();
    // The purge holds through the next discoveries and polls of cal-2.
    let cal2 = |r: &RequestRecord| r.calendar_id.as_deref() == Some("cal-2");
    let seen = passes(&app.requests(), "cal-2");
    wait_for_passes(&app, "two more polls of cal-2", seen + 2, cal2).await;
    let state = app.state_json().await;
    let cal1 = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-1").unwrap().clone();
    assert_eq!(cal1["phase"], "removed", "{cal1}");
    assert!(!app.stored("work").iter().any(|(c, _, _)| c == "cal-1"), "rows of the removed calendar");
    assert!(app.store_matches_truth("work"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_sync_exits_0_within_10_s_and_loses_nothing() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 1500), ("cal-2", 1500)])],
        options: FakeOptions { page_size: 10, latency: Duration::from_millis(5), ..FakeOptions::default() },
        ..daemon_setup("")
    };
    let app = spawn_app(setup).await;
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "some pages", || {
        app.requests().iter().filter(|r| r.status == 200).count() > 40
    })
    .await;
    let stopped = Instant::now();
    daemon.terminate();
    // The daemon's stop budget adds up to 9.5 s (`service::STOP_GRACE`);
    // waiting longer shows how late it was instead of only that it was.
    let out = tokio::time::timeout(Duration::from_secs(30), daemon.wait_with_output()).await.expect("exits");
    assert!(stopped.elapsed() < Duration::from_secs(10), "took {:?}", stopped.elapsed());
    assert_exit(&out, 0);
    let stored = app.stored("work").len();
    assert!(stored > 0 && stored < 3000, "stopped mid-sync ({stored} stored)");
    catch_up_from_stored_tokens(&app).await;
    app.assert_store_equals_truth("work");
    assert_no_committed_page_refetched(&app.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_status_watchdog_and_stopping() {
    let app = spawn_app(Setup::default()).await;
    let socket_path = app.dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut cmd = app.command(&["run"]);
    cmd.env("NOTIFY_SOCKET", &socket_path).env("WATCHDOG_USEC", "1000000");
    let daemon = cmd.spawn().unwrap();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen.contains_key("READY")
        && seen.contains_key("WATCHDOG")
        && seen.get("STATUS").is_some_and(|s| s.contains("2 collections")))
    {
        let n = tokio::time::timeout_at(deadline.into(), socket.recv(&mut buf)).await.expect("notifications").unwrap();
        for line in String::from_utf8_lossy(&buf[..n]).lines() {
            if let Some((k, v)) = line.split_once('=') {
                seen.insert(k.to_string(), v.to_string());
            }
        }
    }
    assert_eq!(seen["READY"], "1");
    assert_eq!(seen["WATCHDOG"], "1");
    crate::sys::signal(daemon.id().expect("running"), crate::sys::Sig::TERM);
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf)).await.expect("STOPPING").unwrap();
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            break;
        }
    }
    let out = daemon.wait_with_output().await.unwrap();
    assert_exit(&out, 0);
}

/// Parses Prometheus text: every sample line is `name{labels} value`.
pub(crate) fn parse_metrics(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (series.to_string(), HashMap::new()),
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name: {line}");
        samples.push((name, labels, value));
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_count_the_work_done() {
    let app = spawn_app(daemon_setup("poll_interval_secs = 3600\n")).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    // Scrape until both calendars' passes are counted (the last commit and
    // the counters are a moment apart).
    let sum = |samples: &[(String, HashMap<String, String>, f64)], name: &str| -> f64 {
        samples.iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| v).sum()
    };
    let (_, text) = wait_for_get(&app, "/metrics", "both passes counted", |status, text| {
        status == 200 && sum(&parse_metrics(text), "aurinko_sync_passes_total") >= 2.0
    })
    .await;
    let samples = parse_metrics(&text);
    let events = app.truth("work").len() as f64;
    assert_eq!(sum(&samples, "aurinko_sync_records_upserted_total"), events);
    assert_eq!(sum(&samples, "aurinko_sync_requests_total"), app.requests().len() as f64);
    assert_eq!(sum(&samples, "aurinko_sync_failing_collections"), 0.0);
    // One lag per account and kind: the largest of its collections.
    let lags: Vec<_> = samples.iter().filter(|(n, _, _)| n == "aurinko_sync_lag_seconds").collect();
    assert_eq!(lags.len(), 1);
    for (_, labels, lag) in lags {
        assert_eq!((labels["account"].as_str(), labels["kind"].as_str()), ("work", "calendar"));
        assert!(*lag >= 0.0 && *lag < 60.0, "{lag}");
    }
    assert!(samples.iter().all(|(_, labels, _)| labels.values().all(|v| v.len() < 100)), "bounded labels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_forget_a_calendar_removed_upstream() {
    let app = spawn_app(daemon_setup("poll_interval_secs = 1\ndiscovery_interval_secs = 1\n")).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let value = |samples: &[(String, HashMap<String, String>, f64)], name: &str| {
        samples.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| *v)
    };
    let calendar_lag = |samples: &[(String, HashMap<String, String>, f64)]| {
        samples.iter().any(|(n, labels, _)| n == "aurinko_sync_lag_seconds" && labels["kind"] == "calendar")
    };
    wait_for_get(&app, "/metrics", "both calendars running", |_, text| {
        let samples = parse_metrics(text);
        value(&samples, "aurinko_sync_collections") == Some(2.0) && calendar_lag(&samples)
    })
    .await;
    app.fake.remove_calendar(app.token("work"), "cal-1");
    let (_, text) = wait_for_get(&app, "/metrics", "cal-1 forgotten", |_, text| {
        value(&parse_metrics(text), "aurinko_sync_collections") == Some(1.0)
    })
    .await;
    let samples = parse_metrics(&text);
    assert!(calendar_lag(&samples), "the other calendar keeps the lag: {text}");
    assert!(samples.iter().all(|(_, labels, _)| !labels.contains_key("collection")), "{text}");
}

/// The label values each label may take: closed sets, and the configured
/// account names.
fn allowed_label_value(label: &str, value: &str) -> bool {
    let word = |v: &str| !v.is_empty() && v.len() <= 32 && v.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    match label {
        "account" => value == "work",
        "kind" => ["calendar", "email", "contacts", "tasks"].contains(&value),
        "result" => ["caught_up", "failed", "removed", "stopped"].contains(&value),
        "status" => value == "error" || (value.len() == 3 && value.bytes().all(|b| b.is_ascii_digit())),
        "endpoint" | "outcome" | "reason" => word(value),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_prometheus_conventions() {
    let setup = Setup {
        mail: Some((20, "{ days_within = 365 }")),
        contacts: Some(10),
        tasks: Some((vec![("list-1", 10)], "true")),
        ..daemon_setup("poll_interval_secs = 3600\n")
    };
    let app = spawn_app(setup).await;
    let _daemon = app.spawn_daemon().await;
    // Every collection's first pass counted: two calendars, the mailbox,
    // the address book, the task list.
    let (_, text) = wait_for_get(&app, "/metrics", "every first pass", |status, text| {
        let passes =
            parse_metrics(text).iter().filter(|(n, _, _)| n == "aurinko_sync_passes_total").map(|s| s.2).sum::<f64>();
        status == 200 && passes >= 5.0
    })
    .await;
    let (mut help, mut types) = (HashMap::new(), HashMap::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, words) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(!words.trim().is_empty(), "empty help: {line}");
            help.insert(name.to_string(), words.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("no type: {line}"));
            types.insert(name.to_string(), kind.to_string());
        }
    }
    let samples = parse_metrics(&text);
    assert!(samples.len() > 20, "a full scrape: {text}");
    for (name, labels, _) in &samples {
        assert!(help.contains_key(name), "{name} has no # HELP:\n{text}");
        let kind = types.get(name).unwrap_or_else(|| panic!("{name} has no # TYPE:\n{text}"));
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}: counters, and only they, end in _total"
        );
        for unit in ["_ms", "_millis", "_milliseconds", "_mib", "_kib", "_mb", "_minutes", "_hours"] {
            assert!(!name.contains(unit), "{name}: base units (seconds, bytes)");
        }
        for (label, value) in labels {
            assert!(allowed_label_value(label, value), "{name}: label {label}={value:?} is not from a closed set");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_turns_503_while_the_store_cannot_be_written() {
    let app = spawn_app(daemon_setup("poll_interval_secs = 3600\n")).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    wait_for_get(&app, "/healthz", "200", |status, _| status == 200).await;
    // Another writer holds the store.
    let blocker = rusqlite::Connection::open(&app.db_path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store not writable"), "{body}");
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(get(&app, "/healthz").await.0, 200);
}

/// The collection's sync requests in `requests` (not discovery).
fn sync_requests(requests: &[aurinko_fake::RequestRecord]) -> Vec<&aurinko_fake::RequestRecord> {
    requests.iter().filter(|r| r.collection.is_some() && r.endpoint != aurinko_fake::Endpoint::Other).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_collection_backs_off_and_a_restart_keeps_the_pause() {
    const ATTEMPTS: usize = 10; // `max_attempts` in the tests' configuration
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 30)])],
        ..daemon_setup("poll_interval_secs = 2\nmax_retry_interval_secs = 30\n")
    };
    let app = spawn_app(setup).await;
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let from = app.requests().len();
    app.fake.set_faults(aurinko_fake::Faults { rate: 1.0, kinds: vec![aurinko_fake::FaultKind::Unavailable] });
    // Each failed pass is `ATTEMPTS` refused requests. The pauses after the
    // first and second failures are 2 and 4 poll intervals (4 s and 8 s,
    // ±10%): measured on the fake's clock from the last attempt of a pass to
    // the first of the next, they can only come out longer on a busy
    // machine, never shorter. Polling on, or not doubling, comes out shorter.
    let failed = || -> Vec<std::time::Instant> {
        sync_requests(&app.requests()[from..]).iter().filter(|r| r.status == 503).map(|r| r.at).collect()
    };
    app.wait_for(Duration::from_secs(40), "two failed passes", || failed().len() >= 2 * ATTEMPTS).await;
    let attempts = failed();
    let first_pause = attempts[ATTEMPTS] - attempts[ATTEMPTS - 1];
    assert!(first_pause >= Duration::from_millis(3600), "paused {first_pause:?} after the first failure, not 4 s");
    // The outcome is stored a moment after the pass (with others' writes).
    let cal1 = |state: &serde_json::Value| {
        state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-1").unwrap().clone()
    };
    let state =
        wait_for_state(&app, "two failures", |state| cal1(state)["consecutive_failures"].as_i64() >= Some(2)).await;
    let cal = cal1(&state);
    assert!(cal["last_error"].as_str().unwrap().contains("503"), "{cal}");
    daemon.terminate();
    assert_exit(&daemon.wait_with_output().await, 0);
    let second_failure = attempts[2 * ATTEMPTS - 1];

    // A restart honours the stored pause (8 s ±10% from the second failure)
    // instead of starting at once, as a first pass would (the tests start
    // first passes without a spread). The faults stop before it, so that
    // nothing but the pause delays its first pass; it then recovers.
    app.fake.set_faults(aurinko_fake::Faults::default());
    app.fake.mutate_random(app.token("work"), 3);
    let from = app.requests().len();
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(40), "recovery", || app.store_matches_truth("work")).await;
    let resumed = sync_requests(&app.requests()[from..])[0].at;
    let second_pause = resumed - second_failure;
    // The store keeps the next attempt to the second: up to 1 s earlier.
    assert!(
        second_pause >= Duration::from_millis(6200),
        "the restarted daemon retried {second_pause:?} after the second failure, not 8 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_stops_its_account_and_the_other_keeps_syncing() {
    let setup = Setup {
        accounts: vec![("work", vec![("w-1", 40)]), ("home", vec![("h-1", 30)])],
        ..daemon_setup("poll_interval_secs = 1\n")
    };
    let app = spawn_app(setup).await;
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || {
        app.store_matches_truth("work") && app.store_matches_truth("home")
    })
    .await;
    app.fake.kill_token(app.token("home"));
    let state_says_refused = || {
        aurinko_sync::store::Store::open_read_only(&app.db_path)
            .and_then(|s| s.report())
            .is_ok_and(|r| r.accounts.iter().any(|a| a.name == "home" && a.auth_error.is_some()))
    };
    app.wait_for(Duration::from_secs(30), "the refusal in the store", state_says_refused).await;
    // The refused account sends nothing more; the other goes on. Counted in
    // the other account's polls (every second, as home's were): once two
    // have ended since, home's requests under way at the refusal are over;
    // over three more, home would have polled if it went on.
    let work = |r: &RequestRecord| r.calendar_id.as_deref() == Some("w-1");
    let seen = passes(&app.requests(), "w-1");
    wait_for_passes(&app, "two more polls of work", seen + 2, work).await;
    app.fake.clear_requests();
    app.fake.mutate_random(app.token("work"), 4);
    app.wait_for(Duration::from_secs(30), "work keeps syncing", || app.store_matches_truth("work")).await;
    let seen = passes(&app.requests(), "w-1");
    wait_for_passes(&app, "three more polls of work", seen + 3, work).await;
    assert!(app.requests().iter().all(|r| r.account.as_deref() != Some("home")), "home was left alone");
    daemon.terminate();
    let out = daemon.wait_with_output().await;
    assert_exit(&out, 0);
    let log = crate::helpers::text(&out.stderr);
    assert!(log.contains("home") && log.contains("token refused"), "{log}");
}
