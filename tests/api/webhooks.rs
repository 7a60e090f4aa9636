//! Push-triggered sync: the receiver, its checks, coalescing, and
//! `subscribe`.

use std::time::{Duration, Instant};

use aurinko_sync::fake::{Endpoint, RequestRecord};
use hmac::{KeyInit, Mac};

use crate::helpers::{SIGNING_SECRET, Setup, TestApp, assert_exit, spawn_app, text};

pub(crate) fn webhook_setup() -> Setup {
    Setup { webhook: true, sync_extra: "poll_interval_secs = 3600\n", ..Setup::default() }
}

/// The daemon up, caught up, and subscribed.
pub(crate) async fn subscribed(app: &TestApp) -> tokio::process::Child {
    let daemon = app.spawn_daemon();
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let out = app.run_binary(&["subscribe"]).await;
    assert_exit(&out, 0);
    daemon
}

pub(crate) fn sign(timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) async fn post(app: &TestApp, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
    let client = reqwest::Client::new();
    let mut request = client.post(format!("http://{}/hook", app.listen.unwrap())).body(body);
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

/// Waits until the fake's notifications are delivered and the passes they
/// started are over: no request for 300 ms.
pub(crate) async fn quiesce(app: &TestApp) {
    assert!(app.fake.wait_webhooks_idle(Duration::from_secs(10)).await);
    let mut seen = app.requests().len();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = app.requests().len();
        if now == seen {
            return;
        }
        seen = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_hourly_poll_a_mutation_arrives_within_a_second_through_the_webhook() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    assert_eq!(app.fake.subscriptions(app.token("work")).len(), 2, "one subscription per calendar");
    let token = app.token("work").to_string();
    let mut latencies = Vec::new();
    for round in 0..5 {
        let victim = app.truth("work")[round * 7].1.clone();
        let calendar = app.truth("work")[round * 7].0.clone();
        assert!(app.fake.update_event(&token, &calendar, &victim));
        let took = app.wait_for(Duration::from_secs(5), "the webhook pass", || app.store_matches_truth("work")).await;
        assert!(took < Duration::from_secs(1), "took {took:?}");
        latencies.push(took);
    }
    latencies.sort();
    println!("mutation to store through the webhook: median {:?}, max {:?}", latencies[2], latencies[4]);
    assert!(app.fake.deliveries().iter().all(|d| d.status == Some(200)), "every delivery accepted");
}

pub(crate) async fn metrics(app: &TestApp) -> String {
    let url = format!("http://{}/metrics", app.listen.unwrap());
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_requests_are_refused_and_start_no_pass() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.requests().is_empty(),
        "no pass started: {:?}",
        app.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    // The handshake is answered with the token.
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("http://{}/hook?validationToken=abc123", app.listen.unwrap()))
        .header("Content-Type", "text/plain; charset=utf-8")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(answer.text().await.unwrap(), "abc123");
    // The service is undisturbed: a good notification starts a pass.
    assert_eq!(post_signed(&app, now, body).await, 200);
    app.wait_for(Duration::from_secs(5), "a pass", || passes(&app.requests(), "cal-1") == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validly_signed_notification_days_old_or_ahead_is_accepted_and_syncs() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.fake.clear_requests();
    let now = chrono::Utc::now().timestamp();
    // A redelivery keeps its original timestamp: three days old.
    assert_eq!(post_signed(&app, now - 3 * 86_400, notification(&app, "cal-1")).await, 200);
    app.wait_for(Duration::from_secs(5), "a pass for the old one", || passes(&app.requests(), "cal-1") == 1).await;
    // A sender's clock an hour ahead.
    assert_eq!(post_signed(&app, now + 3600, notification(&app, "cal-2")).await, 200);
    app.wait_for(Duration::from_secs(5), "a pass for the early one", || passes(&app.requests(), "cal-2") == 1).await;
    assert!(metrics(&app).await.contains("aurinko_sync_webhook_late_total 2"), "both counted as late");
    // Every change the fake sends an hour late arrives through the webhook.
    app.fake.set_webhook_faults(aurinko_sync::fake::WebhookFaults { stale_timestamp: 1.0, ..Default::default() });
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 5);
    app.wait_for(Duration::from_secs(5), "the late notifications' passes", || app.store_matches_truth("work")).await;
    assert!(app.fake.wait_webhooks_idle(Duration::from_secs(5)).await);
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
    app.wait_for(Duration::from_secs(5), "the webhook pass", || app.store_matches_truth("work")).await;
    assert!(app.fake.deliveries().iter().all(|d| d.body.contains("\"accountId\":\"") && d.status == Some(200)));
    // A lifecycle event with string ids is recorded.
    app.fake.send_lifecycle(&token, ids[0], "error").await;
    let recorded = |state: &serde_json::Value| {
        state["collections"].as_array().unwrap().iter().any(|c| {
            c["subscription_id"] == ids[0] && c["subscription_status"].as_str().is_some_and(|s| s.starts_with("error"))
        })
    };
    let mut seen = false;
    for _ in 0..50 {
        seen = recorded(&app.state_json().await);
        if seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the lifecycle event is in state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_notifications_causes_a_handful_of_passes() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 10);
    app.wait_for(Duration::from_secs(5), "the mutations", || app.store_matches_truth("work")).await;
    // The store can match after the first notification's pass; the others,
    // and the passes they start, must be over before counting.
    quiesce(&app).await;
    app.fake.clear_requests();
    let body = notification(&app, "cal-1");
    let now = chrono::Utc::now().timestamp();
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (url, body, signature) = (format!("http://{}/hook", app.listen.unwrap()), body.clone(), sign(now, &body));
        sends.spawn(async move {
            reqwest::Client::new()
                .post(url)
                .header("X-Aurinko-Request-Timestamp", now.to_string())
                .header("X-Aurinko-Signature", signature)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
    }
    let mut ok = 0;
    while let Some(status) = sends.join_next().await {
        ok += usize::from(status.unwrap() == 200);
    }
    assert_eq!(ok, 1000, "every notification was accepted");
    tokio::time::sleep(Duration::from_millis(500)).await;
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
    app.fake.set_webhook_faults(aurinko_sync::fake::WebhookFaults { duplicates: 3, ..Default::default() });
    app.fake.mutate_random(&token, 6);
    app.wait_for(Duration::from_secs(5), "the mutations", || app.store_matches_truth("work")).await;
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
    let mut status = String::new();
    for _ in 0..50 {
        status = status_of(&app.state_json().await);
        if status.starts_with("error") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(status.starts_with("error"), "{status}");
    app.fake.send_lifecycle(&token, subscription, "active").await;
    for _ in 0..50 {
        status = status_of(&app.state_json().await);
        if status == "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "active");
    assert!(text(&app.run_binary(&["state"]).await.stdout).contains("WEBHOOK"));
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
    let _daemon = app.spawn_daemon();
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let token = app.token("work").to_string();
    // A mailbox subscription made without the filter (by hand, or by an older version).
    let answer = reqwest::Client::new()
        .post(format!("{}/subscriptions", app.server.base_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"resource": "/email/messages", "notificationUrl": format!("http://{}/hook", app.listen.unwrap())}))
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
