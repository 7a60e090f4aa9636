//! Push-triggered sync: the receiver, its checks, coalescing, and
//! `subscribe`.

use std::time::{Duration, Instant};

use aurinko_fake::{Collection, Endpoint, RequestRecord};
use hmac::{KeyInit, Mac};

use crate::daemon::Daemon;
use crate::helpers::{SIGNING_SECRET, Setup, TestApp, assert_exit, spawn_app, text};

pub(crate) fn webhook_setup() -> Setup {
    Setup { webhook: true, sync_extra: "poll_interval_secs = 3600\n", ..Setup::default() }
}

/// The daemon up (its listener bound: `spawn_daemon` waits for its
/// address), caught up, and subscribed.
pub(crate) async fn subscribed(app: &TestApp) -> Daemon {
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let out = app.run_binary(&["subscribe"]).await;
    assert_exit(&out, 0);
    daemon
}

pub(crate) fn sign(timestamp: i64, body: &[u8]) -> String {
    sign_with(SIGNING_SECRET, timestamp, body)
}

/// Aurinko's signature of a notification: HMAC-SHA256 of `v0:{timestamp}:{body}`, in hex.
pub(crate) fn sign_with(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) async fn post(app: &TestApp, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
    let client = aurinko_sync::http_client::builder().build().unwrap();
    let mut request = client.post(format!("http://{}/hook", app.listen())).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

pub(crate) async fn post_signed(app: &TestApp, timestamp: i64, body: Vec<u8>) -> u16 {
    let headers = [
        ("X-Aurinko-Request-Timestamp", timestamp.to_string()),
        ("X-Aurinko-Signature", sign(timestamp, &body)),
        ("Content-Type", "application/json".to_string()),
    ];
    post(app, &headers, body).await
}

pub(crate) fn notification(app: &TestApp, calendar: &str) -> Vec<u8> {
    let account_id = app.fake.account_id(app.token("work")).expect("the fake has an account id");
    serde_json::to_vec(&serde_json::json!({
        "subscription": 1,
        "resource": format!("/calendars/{calendar}/events"),
        "accountId": account_id,
        "payloads": [{"id": "x", "changeType": "updated"}],
    }))
    .unwrap()
}

/// Passes started for a calendar: each begins with a delta-token request
/// to `/sync/updated`.
pub(crate) fn passes(requests: &[RequestRecord], calendar: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.endpoint == Endpoint::SyncUpdated && r.delta_token.is_some())
        .filter(|r| r.calendar_id.as_deref() == Some(calendar))
        .count()
}

/// Whether `r` starts a pass: a provisioning, or a first delta-token
/// request to `/sync/updated`.
pub(crate) fn pass_start(r: &RequestRecord) -> bool {
    r.endpoint == Endpoint::SyncStart || (r.endpoint == Endpoint::SyncUpdated && r.page_token.is_none())
}

/// Whether every pass started for a calendar in `requests` has ended.
pub(crate) fn passes_ended(requests: &[RequestRecord], calendar: &str) -> bool {
    let (started, ended) = pass_counts(requests, |r| r.calendar_id.as_deref() == Some(calendar));
    started == ended
}

/// Passes started and ended of the collection whose requests `of` picks: a
/// pass starts with a delta-token request to `/sync/updated` and ends when
/// both its streams reached a page with the next delta token.
pub(crate) fn pass_counts(requests: &[RequestRecord], of: impl Fn(&RequestRecord) -> bool) -> (usize, usize) {
    let of = &of;
    let on = |endpoint: Endpoint| requests.iter().filter(move |r| r.endpoint == endpoint && of(r));
    let ends = |endpoint: Endpoint| on(endpoint).filter(|r| r.next_delta_token.is_some()).count();
    let started = on(Endpoint::SyncUpdated).filter(|r| r.delta_token.is_some() && r.page_token.is_none()).count();
    (started, ends(Endpoint::SyncUpdated).min(ends(Endpoint::SyncDeleted)))
}

/// Waits until at least `at_least` passes of the collection whose requests
/// `of` picks have started, and every pass started has ended.
pub(crate) async fn wait_for_passes(app: &TestApp, what: &str, at_least: usize, of: impl Fn(&RequestRecord) -> bool) {
    app.wait_for(Duration::from_secs(30), what, || {
        let (started, ended) = pass_counts(&app.requests(), &of);
        started >= at_least && started == ended
    })
    .await;
}

/// Waits until the fake's notifications are answered and every pass
/// started for the app's calendars has ended. (A notification answered
/// during a pass may still start one more right after it: counts taken now
/// can only be short of that one, never include a stray.)
pub(crate) async fn quiesce(app: &TestApp) {
    assert!(app.fake.wait_webhooks_idle(Duration::from_secs(30)).await, "the fake's deliveries never finished");
    let calendars: Vec<String> = app.truth("work").into_iter().map(|(c, _, _)| c).collect();
    app.wait_for(Duration::from_secs(30), "the passes to end", || {
        let requests = app.requests();
        calendars.iter().all(|c| passes_ended(&requests, c))
    })
    .await;
}

/// Polls `state --json` until `check` holds; returns that state.
pub(crate) async fn wait_for_state(
    app: &TestApp,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let state = app.state_json().await;
        if check(&state) {
            return state;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "state never showed {what}: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_hourly_poll_a_mutation_arrives_within_seconds_through_the_webhook() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    assert_eq!(app.fake.subscriptions(app.token("work")).len(), 2, "one subscription per calendar");
    let token = app.token("work").to_string();
    let mut latencies = Vec::new();
    for round in 0..5 {
        let victim = app.truth("work")[round * 7].1.clone();
        let calendar = app.truth("work")[round * 7].0.clone();
        assert!(app.fake.update_event(&token, &calendar, &victim));
        let took = app.wait_for(Duration::from_secs(30), "the webhook pass", || app.store_matches_truth("work")).await;
        // With an hourly poll only the notification can bring the change.
        // The usual figure is tens of milliseconds (printed below); the
        // bound catches a nudge that waits seconds without guessing how
        // busy the machine is.
        assert!(took < Duration::from_secs(5), "took {took:?}");
        latencies.push(took);
    }
    latencies.sort();
    println!("mutation to store through the webhook: median {:?}, max {:?}", latencies[2], latencies[4]);
    assert!(app.fake.deliveries().iter().all(|d| d.status == Some(200)), "every delivery accepted");
}

pub(crate) async fn metrics(app: &TestApp) -> String {
    let url = format!("http://{}/metrics", app.listen());
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_requests_are_refused_and_start_no_pass() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    quiesce(&app).await;
    app.fake.clear_requests();
    let now = chrono::Utc::now().timestamp();
    let body = notification(&app, "cal-1");
    let json = ("Content-Type", "application/json".to_string());
    // No signature.
    assert_eq!(post(&app, std::slice::from_ref(&json), body.clone()).await, 401);
    // A wrong signature (signed over another body).
    let wrong =
        [("X-Aurinko-Request-Timestamp", now.to_string()), ("X-Aurinko-Signature", sign(now, b"{}")), json.clone()];
    assert_eq!(post(&app, &wrong, body.clone()).await, 401);
    // Not hex.
    let garbage =
        [("X-Aurinko-Request-Timestamp", now.to_string()), ("X-Aurinko-Signature", "zz".into()), json.clone()];
    assert_eq!(post(&app, &garbage, body.clone()).await, 401);
    // Over 1 MiB.
    let mut big = b"{\"pad\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1024 * 1024 + 10));
    big.extend(b"\"}");
    assert_eq!(post_signed(&app, now, big).await, 413);
    // Signed, but not JSON, or not a notification: 200 (a refusal would mark
    // the subscription failing, and sending it again cannot fix it), counted.
    assert_eq!(post_signed(&app, now, b"{not json\x1b[31m".to_vec()).await, 200);
    assert_eq!(post_signed(&app, now, b"[1,2]".to_vec()).await, 200);
    let counted = metrics(&app).await;
    for outcome in ["bad_json", "bad_notification"] {
        assert!(counted.contains(&format!("outcome=\"{outcome}\"")), "{outcome} counted: {counted}");
    }
    for reason in ["unsigned", "bad_signature", "oversized"] {
        assert!(counted.contains(&format!("reason=\"{reason}\"")), "{reason} counted: {counted}");
    }
    // A good notification for the other calendar, after them all: a pass
    // any of them started for cal-1 (nudged before its answer, so before
    // this one) would show by the time this one's pass has ended.
    assert_eq!(post_signed(&app, now, notification(&app, "cal-2")).await, 200);
    app.wait_for(Duration::from_secs(30), "cal-2's pass", || {
        let requests = app.requests();
        passes(&requests, "cal-2") == 1 && passes_ended(&requests, "cal-2")
    })
    .await;
    assert!(
        app.requests().iter().all(|r| r.calendar_id.as_deref() == Some("cal-2")),
        "no pass started for cal-1: {:?}",
        app.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    // The handshake is answered with the token.
    let client = aurinko_sync::http_client::builder().build().unwrap();
    let answer = client
        .post(format!("http://{}/hook?validationToken=abc123", app.listen()))
        .header("Content-Type", "text/plain; charset=utf-8")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(answer.text().await.unwrap(), "abc123");
    // The service is undisturbed: a good notification starts a pass.
    assert_eq!(post_signed(&app, now, body).await, 200);
    app.wait_for(Duration::from_secs(30), "a pass", || passes(&app.requests(), "cal-1") == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validly_signed_notification_days_old_or_ahead_is_accepted_and_syncs() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    quiesce(&app).await;
    app.fake.clear_requests();
    let now = chrono::Utc::now().timestamp();
    // A redelivery keeps its original timestamp: three days old.
    assert_eq!(post_signed(&app, now - 3 * 86_400, notification(&app, "cal-1")).await, 200);
    app.wait_for(Duration::from_secs(30), "a pass for the old one", || passes(&app.requests(), "cal-1") == 1).await;
    // A sender's clock an hour ahead.
    assert_eq!(post_signed(&app, now + 3600, notification(&app, "cal-2")).await, 200);
    app.wait_for(Duration::from_secs(30), "a pass for the early one", || passes(&app.requests(), "cal-2") == 1).await;
    assert!(metrics(&app).await.contains("aurinko_sync_webhook_late_total 2"), "both counted as late");
    // Every change the fake sends an hour late arrives through the webhook.
    app.fake.set_webhook_faults(aurinko_fake::WebhookFaults { stale_timestamp: 1.0, ..Default::default() });
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 5);
    app.wait_for(Duration::from_secs(30), "the late notifications' passes", || app.store_matches_truth("work")).await;
    assert!(app.fake.wait_webhooks_idle(Duration::from_secs(30)).await);
    let deliveries = app.fake.deliveries();
    assert!(!deliveries.is_empty() && deliveries.iter().all(|d| d.stale && d.status == Some(200)), "{deliveries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_sent_as_strings_in_subscriptions_and_notifications_are_understood() {
    let app = spawn_app(webhook_setup()).await;
    app.fake.set_string_ids(true);
    let _daemon = subscribed(&app).await;
    let token = app.token("work").to_string();
    let ids: Vec<i64> =
        app.fake.subscriptions(&token).iter().map(|s| s["id"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(ids.len(), 2, "created from answers with string ids");
    let out = app.run_binary(&["subscribe"]).await;
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("2 kept, 0 created, 0 deleted"), "{}", text(&out.stdout));
    // A change notified with a string subscription and account id syncs.
    let (calendar, victim, _) = app.truth("work")[3].clone();
    assert!(app.fake.update_event(&token, &calendar, &victim));
    app.wait_for(Duration::from_secs(30), "the webhook pass", || app.store_matches_truth("work")).await;
    assert!(app.fake.deliveries().iter().all(|d| d.body.contains("\"accountId\":\"") && d.status == Some(200)));
    // A lifecycle event with string ids is recorded.
    app.fake.send_lifecycle(&token, ids[0], "error").await;
    let recorded = |state: &serde_json::Value| {
        state["collections"].as_array().unwrap().iter().any(|c| {
            c["subscription_id"] == ids[0] && c["subscription_status"].as_str().is_some_and(|s| s.starts_with("error"))
        })
    };
    wait_for_state(&app, "the lifecycle event", recorded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_notifications_causes_a_handful_of_passes() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(30), "the first sync", || app.store_matches_truth("work")).await;
    // Changes made before subscribing send no notification: with an hourly
    // poll, only the burst's passes can bring them, and nothing else runs.
    let token = app.token("work").to_string();
    app.fake.mutate_random_in(&token, &Collection::Calendar("cal-1".into()), 10);
    assert!(!app.store_matches_truth("work"), "the changes are not stored yet");
    assert_exit(&app.run_binary(&["subscribe"]).await, 0);
    quiesce(&app).await;
    app.fake.clear_requests();
    let body = notification(&app, "cal-1");
    let now = chrono::Utc::now().timestamp();
    let signature = sign(now, &body);
    let client = aurinko_sync::http_client::builder().build().unwrap();
    let url = format!("http://{}/hook", app.listen());
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let request = client
            .post(&url)
            .header("X-Aurinko-Request-Timestamp", now.to_string())
            .header("X-Aurinko-Signature", &signature)
            .header("Content-Type", "application/json")
            .body(body.clone());
        sends.spawn(async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) });
    }
    let mut ok = 0;
    while let Some(status) = sends.join_next().await {
        ok += usize::from(status.unwrap() == 200);
    }
    assert_eq!(ok, 1000, "every notification was accepted");
    app.wait_for(Duration::from_secs(30), "the burst's passes to bring the changes and end", || {
        app.store_matches_truth("work") && passes_ended(&app.requests(), "cal-1")
    })
    .await;
    let count = passes(&app.requests(), "cal-1");
    println!("1000 notifications in {:?} caused {count} passes", started.elapsed());
    assert!((1..=5).contains(&count), "{count} passes");
    assert_eq!(passes(&app.requests(), "cal-2"), 0, "other calendars are not disturbed");
    app.assert_store_equals_truth("work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_and_lifecycle_events_are_harmless_and_recorded() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    let token = app.token("work").to_string();
    app.fake.set_webhook_faults(aurinko_fake::WebhookFaults { duplicates: 3, ..Default::default() });
    app.fake.mutate_random(&token, 6);
    app.wait_for(Duration::from_secs(30), "the mutations", || app.store_matches_truth("work")).await;
    assert!(app.fake.deliveries().iter().any(|d| d.duplicate), "redeliveries happened");

    let subscription = app.fake.subscriptions(&token)[0]["id"].as_i64().unwrap();
    app.fake.send_lifecycle(&token, subscription, "error").await;
    let status_of = |state: &serde_json::Value| {
        state["collections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["subscription_id"] == subscription)
            .map(|c| c["subscription_status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    wait_for_state(&app, "the error status", |state| status_of(state).starts_with("error")).await;
    app.fake.send_lifecycle(&token, subscription, "active").await;
    wait_for_state(&app, "the active status", |state| status_of(state) == "active").await;
    assert!(text(&app.run_binary(&["state", "--wide"]).await.stdout).contains("WEBHOOK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_run_twice_creates_nothing_the_second_time() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    let token = app.token("work").to_string();
    let first: Vec<i64> = app.fake.subscriptions(&token).iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(first.len(), 2);
    let out = app.run_binary(&["subscribe"]).await;
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("2 kept, 0 created, 0 deleted"), "{}", text(&out.stdout));
    let second: Vec<i64> = app.fake.subscriptions(&token).iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(first, second);
    // A deactivated one is replaced; one for a removed calendar is deleted.
    app.fake.deactivate_subscription(&token, first[0]);
    app.fake.remove_calendar(&token, "cal-2");
    let out = app.run_binary(&["subscribe"]).await;
    assert_exit(&out, 0);
    let active: Vec<_> = app
        .fake
        .subscriptions(&token)
        .into_iter()
        .filter(|s| s["active"] == true)
        .map(|s| s["resource"].clone())
        .collect();
    assert_eq!(active, vec![serde_json::json!("/calendars/cal-1/events")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_without_a_public_url_is_a_usage_error() {
    let app = spawn_app(Setup::default()).await;
    let out = app.run_binary(&["subscribe"]).await;
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("webhook.public_url"));
    assert!(app.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_asks_the_mailbox_for_without_drafts_and_replaces_one_without() {
    let setup = Setup { mail: Some((20, "{ days_within = 365 }")), ..webhook_setup() };
    let app = spawn_app(setup).await;
    let _daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let token = app.token("work").to_string();
    // A mailbox subscription made without the filter (by hand, or by an older version).
    let answer = aurinko_sync::http_client::builder().build().unwrap()
        .post(format!("{}/subscriptions", app.server.base_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"resource": "/email/messages", "notificationUrl": format!("http://{}/hook", app.listen())}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let out = app.run_binary(&["subscribe"]).await;
    assert_exit(&out, 0);
    assert!(text(&out.stdout).contains("0 kept, 3 created, 1 deleted"), "{}", text(&out.stdout));
    let filters = |resource: &str| {
        let subs = app.fake.subscriptions(&token);
        let found: Vec<_> = subs.iter().filter(|s| s["resource"] == resource).map(|s| s["filters"].clone()).collect();
        assert_eq!(found.len(), 1, "one subscription for {resource}");
        found[0].clone()
    };
    assert_eq!(filters("/email/messages"), serde_json::json!(["withoutDrafts"]));
    assert_eq!(filters("/calendars/cal-1/events"), serde_json::json!([]));
    let out = app.run_binary(&["subscribe"]).await;
    assert!(text(&out.stdout).contains("3 kept, 0 created, 0 deleted"), "{}", text(&out.stdout));
}
