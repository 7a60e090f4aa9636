//! Hostile peers of the daemon's listener (`[server] listen`): floods of
//! large bodies, h2c streams, slowloris and idle connections under a low
//! file descriptor limit. Each test runs the real binary and reads its
//! memory from `/proc/<pid>/status`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::proc_status;
use crate::daemon::Daemon;
use crate::helpers::{Setup, TestApp, spawn_app};

/// The target: the daemon stays below this under every flood.
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// What "back to its baseline" allows after a flood: allocator slack.
const RSS_SLACK_KIB: u64 = 8 * 1024;
const MIB: usize = 1024 * 1024;

fn hook_setup() -> Setup {
    Setup { webhook: true, sync_extra: "poll_interval_secs = 1\n", ..Setup::default() }
}

/// A line of `/proc/<pid>/status` (see [`proc_status`]), 0 once it is gone.
fn status_kib(pid: u32, key: &str) -> u64 {
    proc_status(pid, key).unwrap_or(0)
}

/// The floods open 2,000 connections from this process: its soft
/// descriptor limit is raised to the hard one (as the daemon does).
fn enough_fds_for_a_flood() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    assert!(limit >= 4500, "the tests need 4,500 file descriptors for their floods, the hard limit allows {limit}");
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// `GET /healthz` on a fresh connection: the status, or 0 if none came
/// within `limit`.
async fn healthz(addr: SocketAddr, limit: Duration) -> u16 {
    let client = aurinko_sync::http_client::builder().pool_max_idle_per_host(0).timeout(limit).build().unwrap();
    client.get(format!("http://{addr}/healthz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Starts the daemon and waits for its first sync and a healthy listener;
/// returns the child and its resident memory then (the baseline).
async fn start(app: &TestApp, daemon: Daemon) -> (Daemon, u64) {
    app.wait_for(Duration::from_secs(20), "the first sync", || app.store_matches_truth("work")).await;
    let addr = app.listen();
    let started = Instant::now();
    while healthz(addr, Duration::from_secs(5)).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "/healthz never answered 200");
    }
    let baseline = status_kib(daemon.id(), "VmRSS:");
    (daemon, baseline)
}

/// Starts the daemon, with its descriptor limits set to `(soft, hard)` if
/// given (as systemd would, here through util-linux's `prlimit`); its stderr
/// is collected as it is written, so that however much it logs under a
/// flood it never blocks on a full pipe.
async fn run_daemon(app: &TestApp, fd_limits: Option<(u64, u64)>) -> Daemon {
    let command = match fd_limits {
        Some((soft, hard)) => {
            let nofile = format!("--nofile={soft}:{hard}");
            app.wrapped_command(&["prlimit", &nofile, "--"], &["run"])
        }
        None => app.command(&["run"]),
    };
    app.start_daemon(command).await
}

/// Polls until the daemon's resident memory is back within the slack of
/// `baseline`; returns it.
async fn settles_back(pid: u32, baseline: u64) -> u64 {
    let back = || status_kib(pid, "VmRSS:") <= baseline + RSS_SLACK_KIB;
    let started = Instant::now();
    while !back() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "RSS {} KiB stays above the baseline {baseline} KiB",
            status_kib(pid, "VmRSS:")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    status_kib(pid, "VmRSS:")
}

/// One raw HTTP/1.1 POST of `body` to the webhook, declared with
/// `Content-Length` or sent chunked; the answer's status, 0 if the
/// connection was closed without one.
async fn post_large(addr: SocketAddr, chunked: bool, body: Arc<Vec<u8>>) -> u16 {
    let Ok(stream) = TcpStream::connect(addr).await else { return 0 };
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let framing =
            if chunked { "Transfer-Encoding: chunked".to_string() } else { format!("Content-Length: {}", body.len()) };
        let head = format!("POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
        write.write_all(head.as_bytes()).await?;
        if chunked {
            for chunk in body.chunks(64 * 1024) {
                write.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                write.write_all(chunk).await?;
                write.write_all(b"\r\n").await?;
            }
            write.write_all(b"0\r\n\r\n").await?;
        } else {
            write.write_all(&body).await?;
        }
        std::io::Result::Ok(write)
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    let status = loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break 0,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.len() >= 12 {
            break std::str::from_utf8(&answer[9..12]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        }
    };
    writer.abort();
    status
}

/// Samples the daemon's resident memory until `stop`; returns the peak.
fn sample_rss(pid: u32, stop: CancellationToken) -> tokio::task::JoinHandle<u64> {
    sample_peak(pid, "VmRSS:", stop)
}

/// Samples a line of the daemon's `/proc/<pid>/status` until `stop`;
/// returns its peak.
fn sample_peak(pid: u32, key: &'static str, stop: CancellationToken) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.is_cancelled() {
            peak = peak.max(status_kib(pid, key));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        peak
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_bodies_keeps_memory_bounded_and_gives_it_back() {
    enough_fds_for_a_flood();
    let app = spawn_app(hook_setup()).await;
    let (daemon, baseline) = start(&app, run_daemon(&app, None).await).await;
    let pid = daemon.id();
    let addr = app.listen();

    // 2,000 connections at once, each sending a 1 MiB body: half declared
    // with Content-Length, half chunked (no length to refuse up front).
    let body = Arc::new(vec![b'x'; MIB]);
    let stop = CancellationToken::new();
    let sampler = sample_rss(pid, stop.clone());
    let flood: Vec<_> = (0..2000).map(|i| tokio::spawn(post_large(addr, i % 2 == 1, body.clone()))).collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for request in flood {
        *statuses.entry(request.await.unwrap()).or_default() += 1;
    }
    stop.cancel();
    let peak = sampler.await.unwrap().max(status_kib(pid, "VmHWM:"));
    eprintln!("body flood: baseline {baseline} KiB, peak {peak} KiB, answers {statuses:?}");
    let after = settles_back(pid, baseline).await;
    eprintln!("body flood: after {after} KiB");

    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB under the flood");
    // Refused as too large (413), timed out waiting for their turn (408), or
    // closed: never accepted.
    assert!(statuses.keys().all(|s| [0, 408, 413].contains(s)), "answers {statuses:?}");
    assert!(statuses.get(&413).is_some_and(|n| *n > 0), "some bodies refused as too large: {statuses:?}");
    assert_eq!(healthz(addr, Duration::from_secs(10)).await, 200);
}

/// 200 concurrent streams on one h2c connection (prior knowledge), each
/// posting a 1 MiB body to the webhook, half of them declaring its length;
/// the count of each status (0: the stream got none).
async fn h2c_flood(addr: SocketAddr) -> std::collections::BTreeMap<u16, usize> {
    let mut statuses = std::collections::BTreeMap::new();
    let Ok(tcp) = TcpStream::connect(addr).await else { return statuses };
    let Ok((client, connection)) = h2::client::handshake(tcp).await else { return statuses };
    tokio::spawn(connection);
    let body = bytes::Bytes::from(vec![b'x'; MIB]);
    let streams: Vec<_> = (0..200)
        .map(|i| {
            let (client, body) = (client.clone(), body.clone());
            tokio::spawn(async move {
                let mut request = axum::http::Request::post(format!("http://{addr}/hook"));
                if i % 2 == 0 {
                    request = request.header("content-length", body.len());
                }
                let request = request.body(()).unwrap();
                let Ok(mut client) = client.ready().await else { return 0 };
                let Ok((response, mut send)) = client.send_request(request, false) else { return 0 };
                let sending = tokio::spawn(async move {
                    let mut left = body;
                    while !left.is_empty() {
                        send.reserve_capacity(left.len());
                        match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                            Some(Ok(n)) if n > 0 => {
                                let chunk = left.split_to(n.min(left.len()));
                                if send.send_data(chunk, left.is_empty()).is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => return,
                        }
                    }
                });
                let status = response.await.map(|r| r.status().as_u16()).unwrap_or(0);
                sending.abort();
                status
            })
        })
        .collect();
    for stream in streams {
        *statuses.entry(stream.await.unwrap()).or_default() += 1;
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_is_refused_unless_configured() {
    let app = spawn_app(hook_setup()).await;
    let (daemon, baseline) = start(&app, run_daemon(&app, None).await).await;
    let pid = daemon.id();
    let statuses = h2c_flood(app.listen()).await;
    let peak = status_kib(pid, "VmHWM:");
    eprintln!("h2c, off: baseline {baseline} KiB, peak {peak} KiB, answers {statuses:?}");
    assert!(statuses.keys().all(|s| *s == 0), "HTTP/2 answered: {statuses:?}");
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    assert_eq!(healthz(app.listen(), Duration::from_secs(10)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_http2_on_200_streams_of_large_bodies_stay_bounded() {
    let app = spawn_app(hook_setup()).await;
    app.edit_config("[server]\n", "[server]\nhttp2 = true\n");
    let (daemon, baseline) = start(&app, run_daemon(&app, None).await).await;
    let pid = daemon.id();
    let stop = CancellationToken::new();
    let sampler = sample_rss(pid, stop.clone());
    let counts = h2c_flood(app.listen()).await;
    stop.cancel();
    let peak = sampler.await.unwrap().max(status_kib(pid, "VmHWM:"));
    eprintln!("h2c, on: baseline {baseline} KiB, peak {peak} KiB, answers {counts:?}");
    let after = settles_back(pid, baseline).await;
    eprintln!("h2c, on: after {after} KiB");
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB under 200 streams");
    assert!(counts.keys().all(|s| [0, 408, 413].contains(s)), "answers {counts:?}");
    assert!(counts.contains_key(&413), "HTTP/2 is served when configured: {counts:?}");
    assert_eq!(healthz(app.listen(), Duration::from_secs(10)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_fd_limit_is_raised_to_the_hard_limit_at_start() {
    let app = spawn_app(Setup { server: true, ..Setup::default() }).await;
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let hard = hard.min(4096);
    let daemon = run_daemon(&app, Some((hard / 4, hard))).await;
    let (daemon, _) = start(&app, daemon).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, [hard.to_string(), hard.to_string()], "{line}");
}

/// A slowloris peer: connects, sends part of a request head (or nothing,
/// if `idle`) and a header line every second, and connects again a second
/// after the daemon closes it, until `stop`. Counts its first connection
/// in `connected`.
async fn slowloris(addr: SocketAddr, idle: bool, connected: Arc<AtomicUsize>, stop: CancellationToken) {
    let mut first = true;
    while !stop.is_cancelled() {
        if let Ok(mut stream) = TcpStream::connect(addr).await {
            if std::mem::take(&mut first) {
                connected.fetch_add(1, Ordering::Relaxed);
            }
            let mut open = idle || stream.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\n").await.is_ok();
            let mut buf = [0u8; 256];
            while open {
                tokio::select! {
                    read = stream.read(&mut buf) => open = matches!(read, Ok(n) if n > 0),
                    () = tokio::time::sleep(Duration::from_secs(1)), if !idle => {
                        open = stream.write_all(b"X-Slow: 1\r\n").await.is_ok();
                    }
                    () = stop.cancelled() => return,
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_of_2000_connections_under_a_low_fd_limit_starves_neither_healthz_nor_sync() {
    enough_fds_for_a_flood();
    let app = spawn_app(hook_setup()).await;
    // systemd's default soft limit, here also the hard one: nothing to raise.
    let daemon = run_daemon(&app, Some((1024, 1024))).await;
    let (daemon, baseline) = start(&app, daemon).await;
    let pid = daemon.id();
    let addr = app.listen();

    let stop = CancellationToken::new();
    let connected = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> =
        (0..2000).map(|i| tokio::spawn(slowloris(addr, i % 2 == 0, connected.clone(), stop.clone()))).collect();
    // The flood is in: more connections than the daemon has descriptors,
    // and the listener's share (half of 1,024) taken.
    app.wait_for(Duration::from_secs(20), "the slowloris connected", || {
        connected.load(Ordering::Relaxed) >= 1100 && open_fds(pid) >= 500
    })
    .await;
    let mut answers = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let asked = Instant::now();
        answers.push(healthz(addr, Duration::from_secs(10)).await);
        slowest = slowest.max(asked.elapsed());
    }
    // Sync keeps working: a change upstream reaches the store.
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 5);
    let changed = Instant::now();
    while !app.store_matches_truth("work") && changed.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let synced = app.store_matches_truth("work").then(|| changed.elapsed());
    let fds = open_fds(pid);
    let peak = status_kib(pid, "VmHWM:");
    stop.cancel();
    for attacker in attackers {
        attacker.await.unwrap();
    }
    eprintln!(
        "slowloris: {fds} fds open, /healthz answers {answers:?} (slowest {slowest:?}), change synced after \
         {synced:?}, baseline {baseline} KiB, peak {peak} KiB"
    );
    let log = crate::helpers::text(&daemon.kill_and_wait().await.stderr);
    assert!(answers.iter().all(|a| *a == 200), "/healthz during the slowloris: {answers:?}");
    assert!(synced.is_some(), "no change synced during the slowloris");
    assert!(!log.contains("Too many open files"), "the daemon ran out of descriptors:\n{log}");
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

/// A webhook request whose body trickles in a byte a second, until the
/// daemon closes it or `stop`. Counts its connection in `connected`.
async fn slow_body(addr: SocketAddr, connected: Arc<AtomicUsize>, stop: CancellationToken) {
    let Ok(mut stream) = TcpStream::connect(addr).await else { return };
    connected.fetch_add(1, Ordering::Relaxed);
    let head = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n";
    let mut open = stream.write_all(head).await.is_ok();
    let mut buf = [0u8; 256];
    while open {
        tokio::select! {
            read = stream.read(&mut buf) => open = matches!(read, Ok(n) if n > 0),
            () = tokio::time::sleep(Duration::from_secs(1)) => open = stream.write_all(b" ").await.is_ok(),
            () = stop.cancelled() => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_webhook_bodies_filling_the_cap_do_not_keep_healthz_out() {
    let app = spawn_app(hook_setup()).await;
    // A small cap, so that 200 connections fill it: 32 bodies being read,
    // the other requests queued for their turn.
    app.edit_config("[server]\n", "[server]\nmax_connections = 64\n");
    let (daemon, _) = start(&app, run_daemon(&app, None).await).await;
    let addr = app.listen();
    let stop = CancellationToken::new();
    let connected = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..200).map(|_| tokio::spawn(slow_body(addr, connected.clone(), stop.clone()))).collect();
    app.wait_for(Duration::from_secs(20), "the slow bodies connected", || connected.load(Ordering::Relaxed) >= 200)
        .await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(healthz(addr, Duration::from_secs(10)).await);
    }
    let peak = status_kib(daemon.id(), "VmHWM:");
    stop.cancel();
    for sender in senders {
        sender.await.unwrap();
    }
    eprintln!("slow bodies: /healthz answers {answers:?}, peak {peak} KiB");
    assert!(answers.iter().all(|a| *a == 200), "/healthz while slow bodies fill the cap: {answers:?}");
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_and_stalled_connections_are_closed_by_the_daemon() {
    let app = spawn_app(hook_setup()).await;
    // The default is 30 s; the test needs not wait that long.
    app.edit_config("[server]\n", "[server]\ntimeout_secs = 3\n");
    let (_daemon, _) = start(&app, run_daemon(&app, None).await).await;
    let addr = app.listen();
    let limit = Duration::from_secs(20);

    // Reads until the daemon closes the connection; what it said meanwhile.
    async fn until_closed(mut stream: TcpStream, limit: Duration) -> Option<String> {
        let mut said = Vec::new();
        let mut buf = [0u8; 512];
        tokio::time::timeout(limit, async {
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                said.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .ok()?;
        Some(String::from_utf8_lossy(&said).into_owned())
    }
    let idle = TcpStream::connect(addr).await.unwrap();
    let mut slow_head = TcpStream::connect(addr).await.unwrap();
    slow_head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut stalled_body = TcpStream::connect(addr).await.unwrap();
    stalled_body.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\":").await.unwrap();
    let mut kept_alive = TcpStream::connect(addr).await.unwrap();
    kept_alive.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();

    let started = Instant::now();
    let (idle, slow_head, stalled_body, kept_alive) = tokio::join!(
        until_closed(idle, limit),
        until_closed(slow_head, limit),
        until_closed(stalled_body, limit),
        until_closed(kept_alive, limit),
    );
    eprintln!("idle connections closed within {:?}", started.elapsed());
    assert_eq!(idle.as_deref(), Some(""), "an idle connection is closed");
    assert!(slow_head.is_some(), "a request head that never ends is cut off");
    let stalled_body = stalled_body.expect("a stalled body is cut off");
    assert!(stalled_body.starts_with("HTTP/1.1 408"), "a stalled body gets 408: {stalled_body:?}");
    let kept_alive = kept_alive.expect("an idle keep-alive connection is closed");
    assert!(kept_alive.starts_with("HTTP/1.1 200"), "{kept_alive:?}");
}

/// The daemon's threads at most: the runtime's 32 blocking threads, its own
/// thread, the store's writer and a few more (signal handling, the timer of
/// the writer).
const MAX_THREADS: u64 = 32 + 8;

/// Every `/healthz` holds a blocking thread while it waits for the store's
/// probe, which answers one at a time and, while another process holds the
/// write lock, only after a second: 300 requests at once must queue for a
/// bounded pool, not start a thread each (tokio's default allows 512, far
/// past the units' `TasksMax=64`, where thread creation fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_requests_stuck_on_a_locked_store_keep_the_threads_bounded() {
    enough_fds_for_a_flood();
    let app = spawn_app(Setup { server: true, ..Setup::default() }).await;
    let daemon = run_daemon(&app, None).await;
    let (daemon, _) = start(&app, daemon).await;
    let pid = daemon.id();
    let addr = app.listen();

    let lock = rusqlite::Connection::open(&app.db_path).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let stop = CancellationToken::new();
    let sampler = sample_peak(pid, "Threads:", stop.clone());
    // Each waits until its client gives up: the store answers one a second.
    let flood: Vec<_> = (0..300).map(|_| tokio::spawn(healthz(addr, Duration::from_secs(5)))).collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for request in flood {
        *statuses.entry(request.await.unwrap()).or_default() += 1;
    }
    stop.cancel();
    let peak = sampler.await.unwrap();
    lock.execute_batch("ROLLBACK").unwrap();
    eprintln!("healthz against a locked store: peak {peak} threads, answers {statuses:?}");
    assert!(peak <= MAX_THREADS, "the daemon ran {peak} threads under the flood");
    // 503 for those the probe reached within their client's patience, no
    // answer for the rest: never healthy while the store takes no writes.
    assert!(!statuses.contains_key(&200), "a locked store was reported healthy: {statuses:?}");
    let started = Instant::now();
    while healthz(addr, Duration::from_secs(5)).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "/healthz never recovered once the lock was released");
    }
    drop(daemon);
}
