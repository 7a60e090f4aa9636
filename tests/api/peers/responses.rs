//! The API side as a hostile peer: answers without end, and text and ids
//! meant to escape where they are put. A recording proxy stands between the
//! real binary and the fake, answering the hostile requests itself and
//! passing every other one on, so the other collections sync as usual.

use std::io::Read;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurinko_fake::Collection;
use aurinko_sync::store::Store;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app, text};
use crate::recorder::{Intercept, Recorder};
use crate::webhooks::post_signed;

/// `api.max_response_mib` in these tests: small, so a bounded run is quick.
const CAP_MIB: u64 = 16;
/// How far above the cap the binary's peak RSS may go (its own baseline,
/// the good calendar's pages, allocator slack).
const RSS_MARGIN_MIB: u64 = 64;
/// A run whose RSS passes this is killed: the bug is shown, the machine
/// kept.
const KILL_AT_MIB: u64 = 1024;
const MIB: u64 = 1 << 20;

/// The app with `calendars` in the fake, and the binary pointed at a
/// proxy that answers `intercept`'s requests itself.
async fn app_behind(calendars: Vec<(&'static str, usize)>, intercept: Intercept) -> (TestApp, Recorder) {
    let app = spawn_app(Setup { accounts: vec![("work", calendars)], ..Setup::default() }).await;
    let proxy = Recorder::spawn_intercepting(&app.server.base_url(), Some(intercept)).await;
    app.edit_config(&app.server.base_url(), &proxy.base_url());
    app.edit_config("[api]\n", &format!("[api]\nmax_response_mib = {CAP_MIB}\n"));
    (app, proxy)
}

/// Answers the first page of `cal-bad`'s updated stream with `reply`.
fn on_bad_page(reply: fn() -> Response) -> Intercept {
    Arc::new(move |method: &Method, uri: &Uri, _: &HeaderMap| {
        (method == Method::GET && uri.path() == "/v1/calendars/cal-bad/sync/updated").then(reply)
    })
}

/// Runs the binary to its end; its output and its peak RSS (`VmHWM`,
/// polled from `/proc` until it exits: the high-water mark keeps a peak
/// between two polls). `ru_maxrss` would not do: a child spawned with
/// `CLONE_VM` inherits this process's peak at `exec`. A run growing past
/// [`KILL_AT_MIB`] or lasting a minute is killed, so a planted bug fails
/// the test instead of exhausting the machine.
async fn run_measured(app: &TestApp, args: &[&str]) -> (Output, u64) {
    let mut command = app.command(args).into_std();
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("binary starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("child waits") {
            break status;
        }
        peak = peak.max(proc_status_bytes(child.id(), "VmHWM:").unwrap_or(0));
        if peak > KILL_AT_MIB * MIB || started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let output = Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
    (output, peak)
}

/// A `kB` field of a running process's `/proc/PID/status`, in bytes.
pub(super) fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    super::proc_status(pid, field).map(|kib| kib * 1024)
}

/// A catch-up behind `reply` on `cal-bad`'s first page: `cal-bad` fails
/// with an error naming the cap, asked once (refused as permanent, not
/// retried), `cal-good` equals the truth, and the peak RSS stays within
/// the cap plus a margin; the error says `how` the body was found too
/// large. Returns the peak.
async fn bounded_against(reply: fn() -> Response, how: &str) -> u64 {
    let calendars = vec![("cal-good", 120), ("cal-bad", 30)];
    let (app, proxy) = app_behind(calendars, on_bad_page(reply)).await;
    let (out, peak) = run_measured(&app, &["run", "--catch-up"]).await;
    let stderr = text(&out.stderr);
    eprintln!("peak RSS {} MiB", peak / MIB);
    assert_eq!(out.status.code(), Some(1), "exit 1 for the failed calendar: {:?}\n{stderr}", out.status);
    assert!(
        peak < (CAP_MIB + RSS_MARGIN_MIB) * MIB,
        "peak RSS {} MiB, over the cap of {CAP_MIB} MiB plus {RSS_MARGIN_MIB} MiB",
        peak / MIB
    );
    let failed = stderr.lines().find(|l| l.starts_with("failed") && l.contains("cal-bad")).unwrap_or_default();
    assert!(
        failed.contains("permanent: sync_updated: response body refused: larger than api.max_response_mib = 16 MiB")
            && failed.contains(how),
        "cal-bad fails naming the limit: {stderr}"
    );
    let asked = proxy.exchanges().iter().filter(|e| e.path.ends_with("cal-bad/sync/updated")).count();
    assert_eq!(asked, 1, "an oversized answer is not asked for again within the run");
    app.assert_collection_equals_truth("work", &Collection::Calendar("cal-good".into()), None);
    let state = app.state_json().await;
    let bad = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == "cal-bad").expect("cal-bad in state");
    assert!(bad["last_error"].as_str().unwrap_or_default().contains("max_response_mib"), "{bad}");
    peak
}

/// 64 KiB of `{` and spaces: the start of a JSON object that never closes.
fn filler() -> Bytes {
    let mut chunk = vec![b' '; 64 << 10];
    chunk[0] = b'{';
    Bytes::from(chunk)
}

/// `n` chunks of filler, then the stream ends (or never, for `usize::MAX`).
fn filler_stream(n: usize) -> Body {
    let chunk = filler();
    Body::from_stream(futures_util::stream::iter((0..n).map(move |_| Ok::<_, std::io::Error>(chunk.clone()))))
}

/// A success whose `Content-Length` says 2 GiB, and a body that keeps to it.
fn two_gib_announced() -> Response {
    let chunks = (2 * 1024 * MIB / (64 << 10)) as usize;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, (2 * 1024 * MIB).to_string())
        .body(filler_stream(chunks))
        .unwrap()
}

/// A chunked success body that never ends.
fn endless_chunked() -> Response {
    Response::builder().header(header::CONTENT_TYPE, "application/json").body(filler_stream(usize::MAX)).unwrap()
}

/// A valid gzip body of about 4 MiB that decodes to 4 GiB of zeros: one
/// MiB of zeros compressed with a sync flush (byte-aligned, referring to
/// nothing before it) repeated 4,096 times, a final empty block and the
/// trailer with the true CRC and size.
fn gzip_bomb() -> Response {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    const REPEATS: u32 = 4096;
    let zeros = vec![0u8; MIB as usize];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(8 << 10);
    deflate.compress_vec(&zeros, &mut block, FlushCompress::Full).unwrap();
    assert_eq!(deflate.total_in(), MIB, "the whole MiB compressed in one call");
    let mut block_crc = Crc::new();
    block_crc.update(&zeros);
    let mut crc = Crc::new();
    for _ in 0..REPEATS {
        crc.combine(&block_crc);
    }
    let header = Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut trailer = vec![0x03, 0x00];
    trailer.extend(crc.sum().to_le_bytes());
    trailer.extend(crc.amount().to_le_bytes());
    let block = Bytes::from(block);
    let parts = std::iter::once(header)
        .chain(std::iter::repeat_n(block, REPEATS as usize))
        .chain(std::iter::once(Bytes::from(trailer)));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from_stream(futures_util::stream::iter(parts.map(Ok::<_, std::io::Error>))))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_body_announcing_2_gib_is_refused_unread() {
    bounded_against(two_gib_announced, "its Content-Length is 2147483648 bytes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_body_is_cut_at_the_cap() {
    bounded_against(endless_chunked, "did not end within that").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_cut_at_the_cap_counting_decoded_bytes() {
    bounded_against(gzip_bomb, "did not end within that, decompressed").await;
}

/// Calendar ids as Aurinko may list them, each with the one path segment
/// it must be sent as.
const ODD_IDS: [(&str, &str); 5] = [
    ("a/b", "a%2Fb"),
    ("%2e%2e", "%252e%252e"),
    ("?x=1#y", "%3Fx=1%23y"),
    ("with space", "with%20space"),
    ("kalenteri-äö", "kalenteri-%C3%A4%C3%B6"),
];

/// Listed ids that cannot be a path segment: the dot segments.
const DOT_IDS: [&str; 2] = [".", ".."];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_ids_are_sent_as_one_path_segment_and_dot_segments_are_refused() {
    let mut calendars = vec![("cal-1", 40)];
    calendars.extend(ODD_IDS.iter().map(|(id, _)| (*id, 30)));
    calendars.extend(DOT_IDS.iter().map(|id| (*id, 30)));
    let app = spawn_app(Setup { accounts: vec![("work", calendars)], ..Setup::default() }).await;
    let out = app.catch_up().await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the dot ids fail their calendars: {stderr}");

    let paths: Vec<String> = app.requests().into_iter().map(|r| r.path).collect();
    let segment_of =
        |path: &str| path.strip_prefix("/v1/calendars/").map(|rest| rest.split('/').next().unwrap().to_string());
    let sent: std::collections::BTreeSet<String> = paths.iter().filter_map(|p| segment_of(p)).collect();
    let expected: std::collections::BTreeSet<String> =
        ODD_IDS.iter().map(|(_, segment)| segment.to_string()).chain(["cal-1".to_string()]).collect();
    assert_eq!(sent, expected, "every calendar request names its calendar as one encoded segment: {paths:#?}");
    for (id, segment) in ODD_IDS.iter().map(|(id, s)| (*id, *s)).chain([("cal-1", "cal-1")]) {
        for leaf in ["sync", "sync/updated", "sync/deleted"] {
            let path = format!("/v1/calendars/{segment}/{leaf}");
            assert!(paths.contains(&path), "{id:?} was synced through {path}");
        }
        app.assert_collection_equals_truth("work", &Collection::Calendar(id.into()), None);
    }

    let state = app.state_json().await;
    for id in DOT_IDS {
        let line = stderr.lines().find(|l| l.starts_with(&format!("failed   work/{id} "))).unwrap_or_default();
        assert!(
            line.contains(&format!("permanent: sync_start: the id {id:?} cannot be a URL path segment")),
            "{id:?}: {stderr}"
        );
        let entry = state["collections"].as_array().unwrap().iter().find(|c| c["id"] == id).expect("in state");
        assert!(entry["last_error"].as_str().unwrap().contains("cannot be a URL path segment"), "{entry}");
    }
}

/// A calendar whose id and name carry terminal and log control.
const EVIL_ID: &str = "cal-\u{1b}[1mevil\u{202e}";
const EVIL_NAME: &str = "\u{1b}[31mEvil\r\nFORGED name line\u{9b}2J";

/// How many characters of Aurinko's message are kept (`client.rs`).
const MESSAGE_KEPT: usize = 200;
/// How many characters of the echoed token the cut leaves in the message.
const TOKEN_AT_THE_CUT: usize = 12;

/// The 400 every request about [`EVIL_ID`] gets: ESC sequences, a forged
/// log line after CR LF, a bidi override, and the bearer token it was sent,
/// placed so that cutting the message leaves a piece of it.
fn evil_error(headers: &HeaderMap) -> Response {
    let token = headers[header::AUTHORIZATION].to_str().unwrap().trim_start_matches("Bearer ");
    let start = "\u{1b}[31mred\u{1b}[0m\r\nFORGED 2026-11-30T00:00:00Z ERROR aurinko_sync: all is lost\u{202e} ";
    let pad = ".".repeat(MESSAGE_KEPT - TOKEN_AT_THE_CUT - start.chars().count());
    let body = serde_json::json!({
        "code": "bad\u{1b}[0m\r\nFORGED code line",
        "message": format!("{start}{pad}{token} echoed"),
        "requestId": "r-\u{1b}]0;title\u{7}",
    });
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// What must not appear raw in anything shown or stored.
fn assert_inert(what: &str, shown: &str, token: &str) {
    for bad in ['\u{1b}', '\r', '\u{202e}', '\u{9b}', '\u{7}'] {
        assert!(!shown.contains(bad), "{what} holds {bad:?} raw:\n{shown}");
    }
    assert!(!shown.contains(&token[..TOKEN_AT_THE_CUT]), "{what} holds (part of) the token:\n{shown}");
    let forged = shown.lines().find(|l| l.trim_start().starts_with("FORGED"));
    assert!(forged.is_none(), "{what} holds a forged line {forged:?}:\n{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_reaches_stderr_logs_state_and_the_store_escaped_and_without_the_token() {
    let intercept: Intercept = Arc::new(|_: &Method, uri: &Uri, headers: &HeaderMap| {
        uri.path().starts_with("/v1/calendars/cal-%1B").then(|| evil_error(headers))
    });
    let (app, _proxy) = app_behind(vec![("cal-good", 60), (EVIL_ID, 10)], intercept).await;
    let token = app.token("work").to_string();
    app.fake.add_calendar(&token, EVIL_ID, EVIL_NAME, false);

    for format in ["human", "json"] {
        let out = app
            .command(&["--log-format", format, "run", "--catch-up"])
            .env("RUST_LOG", "aurinko_sync=debug")
            .output()
            .await
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "the evil calendar fails: {stderr}");
        assert_inert(&format!("stderr with {format} logs"), &stderr, &token);
        let failed = stderr.lines().find(|l| l.starts_with("failed")).expect("a failure line");
        assert!(
            failed.contains("work/cal-\\u{1b}[1mevil\\u{202e} (\\u{1b}[31mEvil\\r\\nFORGED name line\\u{9b}2J)")
                && failed.contains("HTTP 400 bad\\u{1b}[0m\\r\\nFORGED code line: \\u{1b}[31mred")
                && failed.contains("\\u{202e} ...")
                && failed.contains("...[redacted]")
                && failed.ends_with("(requestId r-\\u{1b}]0;title\\u{7})"),
            "the failure is shown, escaped: {failed}"
        );
        if format == "json" {
            for line in stderr.lines().filter(|l| l.starts_with('{')) {
                serde_json::from_str::<serde_json::Value>(line).expect("every JSON log line is one JSON document");
            }
        }
    }
    app.assert_collection_equals_truth("work", &Collection::Calendar("cal-good".into()), None);

    // A row written before the client made text inert is shown inert too.
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let raw = format!("{EVIL_NAME} \r\nFORGED stored line");
    let updated =
        conn.execute("UPDATE sync_state SET last_error = ?1 WHERE collection_id = 'cal-good'", [&raw]).unwrap();
    assert_eq!(updated, 1);
    drop(conn);

    for args in [&["state"][..], &["state", "--wide"], &["state", "--check"]] {
        let state = app.run_binary(args).await;
        assert_inert(&args.join(" "), &text(&state.stdout), &token);
    }
    let json = app.run_binary(&["state", "--json"]).await;
    assert_inert("state --json", &text(&json.stdout), &token);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let collections = json["collections"].as_array().unwrap();
    let evil = collections.iter().find(|c| c["id"] == EVIL_ID).expect("the exact id");
    for field in ["name", "last_error"] {
        assert_inert(field, evil[field].as_str().unwrap(), &token);
    }
    let good = collections.iter().find(|c| c["id"] == "cal-good").unwrap();
    assert_inert("an old stored error", good["last_error"].as_str().unwrap(), &token);
    assert!(evil["last_error"].as_str().unwrap().contains("[redacted]"), "{evil}");

    let stored = Store::open_read_only(&app.db_path).unwrap().report().unwrap();
    let evil = stored.collections.iter().find(|c| c.id == EVIL_ID).expect("stored under its exact id");
    for (field, value) in [("name", &evil.name), ("last_error", &evil.last_error)] {
        let value = value.as_deref().unwrap_or_else(|| panic!("{field} stored"));
        assert_inert(&format!("the store's {field}"), value, &token);
        assert!(!value.contains('\n'), "the store's {field} is one line: {value:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_error_from_aurinko_is_logged_and_stored_escaped() {
    let setup = Setup { webhook: true, sync_extra: "poll_interval_secs = 3600\n", ..Setup::default() };
    let app = spawn_app(setup).await;
    let daemon = app.spawn_daemon().await;
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    assert_exit(&app.run_binary(&["subscribe"]).await, 0);
    let token = app.token("work").to_string();
    let subscription = &app.fake.subscriptions(&token)[0];
    let body = serde_json::json!({
        "subscription": subscription["id"],
        "resource": subscription["resource"],
        "accountId": app.fake.account_id(&token).unwrap(),
        "lifecycleEvent": "error",
        "error": "\u{1b}[31mgone\r\nFORGED 2026-11-30T00:00:00Z ERROR aurinko_sync: lost\u{202e}",
    });
    let now = chrono::Utc::now().timestamp();
    assert_eq!(post_signed(&app, now, serde_json::to_vec(&body).unwrap()).await, 200);

    let started = Instant::now();
    let status = loop {
        let state = app.state_json().await;
        let status = state["collections"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|c| c["subscription_status"].as_str().filter(|s| s.contains("FORGED")).map(str::to_string));
        if let Some(status) = status {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the lifecycle error reaches state: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_inert("state --json", &status, &token);
    assert_inert("state", &text(&app.run_binary(&["state", "--wide"]).await.stdout), &token);
    let stored = Store::open_read_only(&app.db_path).unwrap().report().unwrap();
    for c in &stored.collections {
        assert_inert("the stored subscription status", c.subscription_status.as_deref().unwrap_or(""), &token);
    }
    daemon.wait_for_line(0, Duration::from_secs(20), "the lifecycle event", |l| l.contains("FORGED")).await;
    let stderr = text(&daemon.kill_and_wait().await.stderr);
    assert!(stderr.contains("gone\\r\\nFORGED"), "the event is logged, escaped: {stderr}");
    assert_inert("the daemon's log", &stderr, &token);
}
