//! See `peers/mod.rs`. The webhook side: what an unauthenticated peer can
//! make the validation reply say, what a replayed notification costs, and
//! what a flood of refused requests leaves in the log.

use std::time::{Duration, Instant};

use super::responses::proc_status_bytes;
use crate::helpers::{TestApp, spawn_app};
use crate::service::{get, parse_metrics};
use crate::webhooks::{metrics, notification, passes, post_signed, quiesce, sign, subscribed, webhook_setup};

/// A client that fails a request the daemon does not answer instead of
/// waiting for ever.
fn client() -> reqwest::Client {
    aurinko_sync::http_client::builder().timeout(Duration::from_secs(15)).build().unwrap()
}

/// The value of one sample of `/metrics`, 0 when absent.
fn sample(text: &str, name: &str, label: (&str, &str)) -> f64 {
    parse_metrics(text)
        .into_iter()
        .filter(|(n, labels, _)| n == name && labels.get(label.0).map(String::as_str) == Some(label.1))
        .map(|(_, _, v)| v)
        .sum()
}

async fn wait_healthy(app: &TestApp) {
    let started = Instant::now();
    while get(app, "/healthz").await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "/healthz never answered 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn validate(client: &reqwest::Client, app: &TestApp, token: &str) -> reqwest::Response {
    client
        .post(format!("http://{}/hook", app.listen()))
        .query(&[("validationToken", token)])
        .header("Content-Type", "text/plain; charset=utf-8")
        .send()
        .await
        .expect("the listener answers")
}

fn assert_inert(answer: &reqwest::Response, token: &str) {
    let header = |name: &str| answer.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header("content-type").as_deref(), Some("text/plain; charset=utf-8"), "{token:?}");
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{token:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_token_is_echoed_only_when_it_is_a_plain_token() {
    let app = spawn_app(webhook_setup()).await;
    let _daemon = app.spawn_daemon().await;
    wait_healthy(&app).await;
    let client = client();
    let plain = [
        "abc123",
        "3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f8091ab",
        "q0X+/a9Zb1Y2==",
        "dGVzdA_-.~",
        "Validation: Testing client application reachability for subscription Request-Id: 7a5b",
        &"k".repeat(512),
    ];
    for token in plain {
        let answer = validate(&client, &app, token).await;
        assert_eq!(answer.status().as_u16(), 200, "{token:?}");
        assert_inert(&answer, token);
        assert_eq!(answer.text().await.unwrap(), token, "echoed exactly");
    }
    let hostile = [
        "<script>alert(1)</script>".to_string(),
        "\"'><img src=x onerror=alert(1)>".to_string(),
        "a".repeat(10 * 1024),
        "k".repeat(513),
        "abc\x1b[31mred".to_string(),
        "abc\r\nSet-Cookie: session=1".to_string(),
        "abc\0def".to_string(),
        "t\u{f6}k\u{e9}n".to_string(),
        "a&amp;b".to_string(),
        String::new(),
    ];
    for token in &hostile {
        let answer = validate(&client, &app, token).await;
        assert_eq!(answer.status().as_u16(), 400, "{token:?}");
        assert_inert(&answer, token);
        let body = answer.text().await.unwrap();
        assert!(token.is_empty() || !body.contains(token.as_str()), "not echoed: {body:?}");
        assert!(!body.contains('<') && !body.contains('\x1b'), "{body:?}");
    }
    let counted = metrics(&app).await;
    let refused = sample(&counted, "aurinko_sync_webhook_refused_total", ("reason", "bad_validation_token"));
    assert_eq!(refused, hostile.len() as f64, "{counted}");
    assert_eq!(sample(&counted, "aurinko_sync_webhook_requests_total", ("outcome", "validation")), plain.len() as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_replayed_hundreds_of_times_causes_one_pass() {
    const REPLAYS: usize = 400;
    let app = spawn_app(webhook_setup()).await;
    let _daemon = subscribed(&app).await;
    quiesce(&app).await;
    app.fake.clear_requests();
    // One captured notification, sent again and again, each after the
    // previous answer: with an hourly poll, the baseline is no pass at all.
    let body = notification(&app, "cal-1");
    let at = chrono::Utc::now().timestamp();
    let client = client();
    let started = Instant::now();
    for _ in 0..REPLAYS {
        let status = client
            .post(format!("http://{}/hook", app.listen()))
            .header("X-Aurinko-Request-Timestamp", at.to_string())
            .header("X-Aurinko-Signature", sign(at, &body))
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        assert_eq!(status, 200, "a validly signed notification is never refused");
    }
    let took = started.elapsed();
    app.wait_for(Duration::from_secs(5), "the first one's pass", || passes(&app.requests(), "cal-1") >= 1).await;
    quiesce(&app).await;
    let count = passes(&app.requests(), "cal-1");
    println!("one notification replayed {REPLAYS} times in {took:?} caused {count} passes");
    assert!(count <= 2, "{count} passes for {REPLAYS} replays");
    let counted = metrics(&app).await;
    let duplicates = sample(&counted, "aurinko_sync_webhook_requests_total", ("outcome", "duplicate"));
    assert!(duplicates >= (REPLAYS - 2) as f64, "{counted}");
    // A new notification (another timestamp, so another signature) still
    // starts a pass at once.
    assert_eq!(post_signed(&app, at + 1, body).await, 200);
    app.wait_for(Duration::from_secs(5), "the new notification's pass", || passes(&app.requests(), "cal-1") > count)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_signatures_is_counted_and_logged_a_few_times() {
    const BAD: usize = 600;
    let app = spawn_app(webhook_setup()).await;
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let before = daemon.lines().len();
    let url = format!("http://{}/hook", app.listen());
    let body = notification(&app, "cal-1");
    let at = chrono::Utc::now().timestamp();
    let client = client();
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..BAD {
        // Wrong signatures, and every tenth request unsigned.
        let mut request = client.post(&url).header("Content-Type", "application/json").body(body.clone());
        if i % 10 != 0 {
            request = request
                .header("X-Aurinko-Request-Timestamp", at.to_string())
                .header("X-Aurinko-Signature", sign(at + 1 + i as i64, &body));
        }
        sends.spawn(async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) });
        if sends.len() >= 16 {
            assert_eq!(sends.join_next().await.unwrap().unwrap(), 401);
        }
    }
    while let Some(status) = sends.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    let took = started.elapsed();
    // A last refusal of another kind is logged at once; once it shows, every
    // line the flood caused has been read.
    let answer = client.post(format!("{url}?validationToken=%3Cscript%3E")).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    daemon
        .wait_for_line(before, Duration::from_secs(20), "the last refusal", |l| l.contains("bad_validation_token"))
        .await;
    let lines: Vec<String> = daemon.lines()[before..].to_vec();
    let refusals = lines.iter().filter(|l| l.contains("refused")).count();
    println!("{BAD} refused requests in {took:?} wrote {refusals} log lines: {lines:#?}");
    assert!(refusals <= 12, "{refusals} lines for {BAD} refusals");
    let counted = metrics(&app).await;
    let refused = |reason| sample(&counted, "aurinko_sync_webhook_refused_total", ("reason", reason));
    assert_eq!(refused("bad_signature"), (BAD - BAD / 10) as f64, "{counted}");
    assert_eq!(refused("unsigned"), (BAD / 10) as f64, "{counted}");
    assert_eq!(refused("bad_validation_token"), 1.0, "{counted}");
    // Undisturbed: healthy, small, and a good notification still syncs.
    assert_eq!(get(&app, "/healthz").await.0, 200);
    let rss = proc_status_bytes(daemon.id(), "VmRSS:").expect("VmRSS in /proc");
    assert!(rss < 64 << 20, "VmRSS {} KiB after the flood", rss >> 10);
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 3);
    let calendars = ["cal-1", "cal-2"];
    for calendar in calendars {
        assert_eq!(post_signed(&app, chrono::Utc::now().timestamp(), notification(&app, calendar)).await, 200);
    }
    app.wait_for(Duration::from_secs(10), "the notified passes", || app.store_matches_truth("work")).await;
}
