//! Storage faults: another writer, a full disk, a damaged file.

use std::time::{Duration, Instant};

use aurinko_fake::{Endpoint, FakeOptions};

use crate::helpers::{Setup, TestApp, assert_exit, spawn_app, text};

fn integrity_ok(app: &TestApp) -> bool {
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).unwrap() == "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_locked_by_another_writer_is_waited_for_and_nothing_is_lost() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 20);
    let blocker = rusqlite::Connection::open(&app.db_path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let run = tokio::spawn({
        let mut cmd = app.command(&["run", "--catch-up"]);
        async move { cmd.output().await.unwrap() }
    });
    // The run fetches everything it can while the lock is held: each
    // calendar's deleted stream reaches its delta token.
    app.wait_for(Duration::from_secs(30), "the blocked run's pages", || {
        let requests = app.requests();
        ["cal-1", "cal-2"].iter().all(|c| {
            requests.iter().any(|r| {
                r.endpoint == Endpoint::SyncDeleted
                    && r.calendar_id.as_deref() == Some(*c)
                    && r.next_delta_token.is_some()
            })
        })
    })
    .await;
    // Then only its commits are left, and the lock stays another 3 s: the
    // stimulus, not a guess at when something happens. That is several
    // times what a run that does not wait needs to give up (its store
    // errors are retried with the fast test backoff, then it exits 1).
    let held = Instant::now();
    while !run.is_finished() && held.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!run.is_finished(), "the run waits for the lock");
    blocker.execute_batch("ROLLBACK").unwrap();
    let out = run.await.unwrap();
    assert_exit(&out, 0);
    app.assert_store_equals_truth("work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_calendar_corrupts_nothing_and_sync_resumes_with_room() {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 900), ("cal-2", 900)])],
        options: FakeOptions { page_size: 50, ..FakeOptions::default() },
        ..Setup::default()
    };
    let app = spawn_app(setup).await;
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let limited = config.replacen("[store]\n", "[store]\nmax_size_mb = 1\n", 1);
    std::fs::write(&app.config_path, &limited).unwrap();
    let out = app.catch_up().await;
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("full"), "the error says the store is full: {stderr}");
    assert!(integrity_ok(&app), "nothing is corrupted");
    let stored = app.stored("work").len();
    assert!(stored > 0 && stored < 1800, "{stored} stored before the disk filled");
    // Room again: the sync resumes where it stopped.
    std::fs::write(&app.config_path, config).unwrap();
    app.fake.clear_requests();
    crate::crash::catch_up_from_stored_tokens(&app).await;
    app.assert_store_equals_truth("work");
    crate::crash::assert_no_committed_page_refetched(&app.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_is_refused_with_exit_2_and_left_as_it_is() {
    let app = spawn_app(Setup::default()).await;
    assert_exit(&app.catch_up().await, 0);
    let mut bytes = std::fs::read(&app.db_path).unwrap();
    assert!(bytes.len() > 8 * 4096, "a store of several pages");
    // Keep the header and the schema page; scramble pages in the middle.
    for (i, b) in bytes[3 * 4096..6 * 4096].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(&app.db_path, &bytes).unwrap();
    app.fake.clear_requests();
    let out = app.catch_up().await;
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("damaged"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read(&app.db_path).unwrap(), bytes, "the file is not overwritten");
    assert!(app.requests().is_empty(), "nothing was fetched for a store that cannot take it");
    // A truncated file too.
    std::fs::write(&app.db_path, &bytes[..5 * 4096 + 100]).unwrap();
    assert_exit(&app.catch_up().await, 2);
}
