//! An Aurinko the service cannot reach, or whose discovery fails, is visible
//! from the first minute: `/healthz` answers 503 with the reason, `/metrics`
//! counts the account, `state` shows the error and since when; and all of it
//! clears once discovery works again.

use std::time::Duration;

use aurinko_fake::{Endpoint, FaultKind, FaultScope, Faults};

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app, text};
use crate::service::wait_for_get;
use crate::webhooks::wait_for_state;

fn daemon_setup() -> Setup {
    Setup { server: true, sync_extra: "discovery_interval_secs = 1\npoll_interval_secs = 3600\n", ..Setup::default() }
}

/// `state --json`'s entry for `account`, once `check` holds for it.
async fn wait_for_account(
    app: &TestApp,
    account: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let entry = |state: &serde_json::Value| {
        state["accounts"].as_array().and_then(|a| a.iter().find(|a| a["name"] == account)).cloned()
    };
    let state = wait_for_state(app, what, |state| entry(state).is_some_and(|a| check(&a))).await;
    entry(&state).expect("the account")
}

/// A loopback port that refuses connections: a socket bound to it but never
/// listening. Bound, the port cannot be taken by anything else meanwhile;
/// not listening, a connection to it is refused at once.
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bound to a free port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_cannot_connect_is_unhealthy_and_names_where_it_tried() {
    let app = spawn_app(daemon_setup()).await;
    let (_refusing, port) = refusing_port();
    app.edit_config(&app.server.base_url(), &format!("http://127.0.0.1:{port}/v1"));
    let refused = format!("calendars: cannot connect to 127.0.0.1:{port} (connection refused)");

    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(stderr.lines().any(|l| l.starts_with("failed") && l.contains(&refused)), "{stderr}");
    let first = wait_for_account(&app, "work", "a failed discovery", |a| a["discovery_failures"] == 1).await;
    let since = first["discovery_failing_since"].as_str().expect("since when").to_string();

    let daemon = app.spawn_daemon().await;
    let (_, health) = wait_for_get(&app, "/healthz", "503", |status, _| status == 503).await;
    assert!(health.contains(&refused), "{health}");
    let (_, metrics) = wait_for_get(&app, "/metrics", "the failing account", |_, body| {
        body.contains("\naurinko_sync_discovery_failing_accounts 1\n")
    })
    .await;
    assert!(metrics.contains("# HELP aurinko_sync_discovery_failing_accounts "), "{metrics}");
    assert!(metrics.contains("# TYPE aurinko_sync_discovery_failing_accounts gauge\n"), "{metrics}");

    // The catch-up's failure started the streak; the daemon's discoveries
    // (one a second) count on without moving its start.
    let later =
        wait_for_account(&app, "work", "three failed discoveries", |a| a["discovery_failures"].as_i64() >= Some(3))
            .await;
    assert_eq!(later["discovery_error"], refused.as_str(), "{later}");
    assert_eq!(later["discovery_error_class"], "transient");
    assert_eq!(later["discovery_failing_since"], since.as_str(), "the streak keeps its start");
    assert!(later["discovery_success_at"].is_null());

    let table = text(&app.run_binary(&["state", "--wide"]).await.stdout);
    let line = table.lines().find(|l| l.starts_with("work ")).unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("failing") && line.contains(&since) && line.contains(&refused), "{table}");
    // The default view: the failure right under the summary, the error whole.
    let table = text(&app.run_binary(&["state"]).await.stdout);
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("1 of 1 accounts and 0 of 0 collections failing"), "{table}");
    let failure = lines.next().unwrap();
    assert!(failure.starts_with(&format!("account work: discovery failing since {since} (")), "{table}");
    assert!(table.contains(&refused), "{table}");
    let line = table.lines().find(|l| l.starts_with("work ")).unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("failing") && line.contains(&since), "{table}");

    let token = app.token("work").to_string();
    let log = text(&daemon.kill_and_wait().await.stderr);
    for (what, output) in
        [("healthz", &health), ("metrics", &metrics), ("state", &table), ("log", &log), ("catch-up", &stderr)]
    {
        assert!(!output.contains(&token), "the token is in the {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_turns_200_again_once_discovery_works() {
    let app = spawn_app(daemon_setup()).await;
    app.fake.set_fault_scope(FaultScope::Endpoint(Endpoint::ListCalendars));
    app.fake.set_faults(Faults::new(1.0, [FaultKind::InternalError]));
    let _daemon = app.spawn_daemon().await;
    let (_, health) = wait_for_get(&app, "/healthz", "503", |status, _| status == 503).await;
    assert!(health.contains("work: calendars: HTTP 500"), "{health}");
    wait_for_get(&app, "/metrics", "the failing account", |_, body| {
        body.contains("\naurinko_sync_discovery_failing_accounts 1\n")
    })
    .await;
    wait_for_account(&app, "work", "the failure", |a| {
        a["discovery_error"].as_str().is_some_and(|e| e.contains("HTTP 500"))
    })
    .await;

    app.fake.set_faults(Faults::none());
    assert_eq!(wait_for_get(&app, "/healthz", "200", |status, _| status == 200).await.1, "ok\n");
    wait_for_get(&app, "/metrics", "no failing account", |_, body| {
        body.contains("\naurinko_sync_discovery_failing_accounts 0\n")
    })
    .await;
    let account = wait_for_account(&app, "work", "the recovery", |a| a["discovery_error"].is_null()).await;
    assert_eq!(account["discovery_failures"], 0, "{account}");
    assert!(account["discovery_failing_since"].is_null(), "{account}");
    assert!(account["discovery_success_at"].is_string(), "{account}");
    app.wait_for(Duration::from_secs(30), "the sync after the recovery", || app.store_matches_truth("work")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_from_get_calendars_says_base_url_usually_ends_with_v1() {
    let app = spawn_app(Setup::default()).await;
    let base = app.server.base_url();
    let root = base.strip_suffix("/v1").expect("the fake's base URL ends with /v1");
    app.edit_config(&base, root);
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let hint = "HTTP 404 Not Found from GET /calendars";
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("failed")
            && l.contains(hint)
            && l.contains("is api.base_url right? It usually ends with /v1")),
        "{stderr}"
    );
    let account = wait_for_account(&app, "work", "the failure", |a| a["discovery_error"].is_string()).await;
    assert!(account["discovery_error"].as_str().unwrap().contains(hint), "{account}");
    let table = text(&app.run_binary(&["state", "--wide"]).await.stdout);
    assert!(table.contains("It usually ends with /v1"), "{table}");
    // The default view wraps the error to 100 columns.
    let table = text(&app.run_binary(&["state"]).await.stdout);
    let joined = table.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    assert!(joined.contains("It usually ends with /v1"), "{table}");
}

/// One account whose token is refused does not make the service unhealthy
/// while another discovers; it is counted and shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_account_is_counted_while_the_other_keeps_healthz_200() {
    let setup = Setup { accounts: vec![("work", vec![("w-1", 20)]), ("home", vec![("h-1", 20)])], ..daemon_setup() };
    let app = spawn_app(setup).await;
    app.fake.kill_token(app.token("home"));
    let _daemon = app.spawn_daemon().await;
    wait_for_get(&app, "/metrics", "the refused account", |_, body| {
        body.contains("\naurinko_sync_discovery_failing_accounts 1\n")
    })
    .await;
    let home = wait_for_account(&app, "home", "the refused token", |a| a["discovery_error_class"] == "auth").await;
    assert!(home["discovery_error"].as_str().is_some_and(|e| e.starts_with("calendars: HTTP 401")), "{home}");
    wait_for_account(&app, "work", "a discovery", |a| a["discovery_success_at"].is_string()).await;
    let (status, body) = wait_for_get(&app, "/healthz", "an answer", |status, _| status != 0).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

/// Until the first discovery ends, the service answers 200 and says so: it
/// is alive and trying (README, "Health and metrics").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_200_while_the_first_discovery_is_under_way() {
    let app = spawn_app(daemon_setup()).await;
    // Each `GET /calendars` stalls past the client's 5 s timeout, ten
    // attempts: the first discovery takes more than 50 s.
    app.fake.set_stall(Duration::from_secs(30));
    app.fake.set_fault_scope(FaultScope::Endpoint(Endpoint::ListCalendars));
    app.fake.set_faults(Faults::new(1.0, [FaultKind::Stall]));
    let _daemon = app.spawn_daemon().await;
    let (status, body) = wait_for_get(&app, "/healthz", "an answer", |status, _| status != 0).await;
    assert_eq!((status, body.as_str()), (200, "ok: first discovery under way\n"));
    assert!(app.requests().iter().any(|r| r.endpoint == Endpoint::ListCalendars), "discovery has started");
}
