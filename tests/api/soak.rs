//! The soak: the daemon for minutes against the fake with continuous
//! mutations and 10% faults. At the end the store equals the truth and the
//! daemon's memory has not grown after warm-up. Run by `.ci/soak`
//! (`SOAK_SECS`, default 180).

use std::time::{Duration, Instant};

use aurinko_fake::{Collection, FakeOptions, Faults};

use crate::helpers::{Setup, assert_exit, spawn_app};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run with .ci/soak"]
async fn soak() {
    let secs: u64 = std::env::var("SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(180);
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 400), ("cal-2", 300), ("cal-3", 200)])],
        options: FakeOptions { page_size: 20, seed: 99, ..FakeOptions::default() },
        mail: Some((400, "{ days_within = 365, body = \"text\" }")),
        contacts: Some(200),
        sync_extra: "poll_interval_secs = 1\ndiscovery_interval_secs = 5\nmax_retry_interval_secs = 4\n",
        server: true,
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let fault_rate = std::env::var("SOAK_FAULT_RATE").ok().and_then(|s| s.parse().ok()).unwrap_or(0.10);
    app.fake.set_faults(Faults { rate: fault_rate, kinds: vec![] });
    // Its log goes to a file: a pipe nobody reads would fill and stall it.
    let log_path = app.dir.path().join("daemon.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let daemon = app
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(log))
        .spawn()
        .expect("daemon starts");
    let pid = daemon.id().unwrap();
    let token = app.token("work").to_string();
    let started = Instant::now();
    let total = Duration::from_secs(secs);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut round = 0u64;
    while started.elapsed() < total {
        match round % 3 {
            0 => app.fake.mutate_random(&token, 3),
            1 => app.fake.mutate_random_in(&token, &Collection::Email, 2),
            _ => app.fake.mutate_random_in(&token, &Collection::Contacts, 1),
        }
        round += 1;
        if started.elapsed() >= next_sample {
            samples.push((started.elapsed(), rss_kib(pid)));
            next_sample += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Quiet: no faults, no changes; the daemon must converge on its own.
    app.fake.set_faults(Faults::default());
    let quiet = Instant::now();
    while !(app.store_matches_truth("work") && matches_all(&app)) {
        if quiet.elapsed() > Duration::from_secs(60) {
            let state = app.state_json().await;
            eprintln!("no convergence within 60 s; state: {state}");
            let _ = std::fs::copy(&log_path, "/tmp/soak-daemon.log");
            app.assert_store_equals_truth("work");
            app.assert_collection_equals_truth("work", &Collection::Email, Some("text"));
            app.assert_collection_equals_truth("work", &Collection::Contacts, None);
            panic!("no convergence within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let converged = quiet.elapsed();
    let requests = app.requests();
    let faulted = requests.iter().filter(|r| r.fault.is_some()).count();
    let warm: Vec<u64> = samples.iter().filter(|(t, _)| *t >= total / 4 && *t < total / 2).map(|s| s.1).collect();
    let late: Vec<u64> = samples.iter().filter(|(t, _)| *t >= total * 3 / 4).map(|s| s.1).collect();
    let (warm_max, late_max) = (warm.iter().copied().max().unwrap_or(0), late.iter().copied().max().unwrap_or(0));
    println!(
        "soak: {secs}s, {round} mutation rounds, {} requests ({faulted} faulted), converged {converged:?} after the quiet start; \
         RSS KiB after warm-up max {warm_max}, last quarter max {late_max}; samples {:?}",
        requests.len(),
        samples.iter().map(|s| s.1).collect::<Vec<_>>()
    );
    assert!(warm_max > 0 && late_max > 0, "RSS was sampled");
    assert!(late_max <= warm_max + warm_max / 10 + 1024, "RSS grew after warm-up: {warm_max} -> {late_max} KiB");
    let pid = pid.to_string();
    tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(12), daemon.wait_with_output()).await.expect("stops").unwrap();
    assert_exit(&out, 0);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(!log.contains("panicked"), "no panic");
}

fn matches_all(app: &crate::helpers::TestApp) -> bool {
    let store = match aurinko_sync::store::Store::open_read_only(&app.db_path) {
        Ok(store) => store,
        Err(_) => return false,
    };
    let token = app.token("work");
    [
        (Collection::Email, aurinko_sync::model::Kind::Email, Some("text")),
        (Collection::Contacts, aurinko_sync::model::Kind::Contacts, None),
    ]
    .into_iter()
    .all(|(collection, kind, body)| {
        let stored: Vec<serde_json::Value> = store
            .records("work", kind)
            .unwrap_or_default()
            .iter()
            .filter_map(|r| serde_json::from_str(&r.raw).ok())
            .collect();
        stored == app.fake.truth_json(token, &collection, body)
    })
}
