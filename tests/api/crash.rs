//! SIGKILL during a long first sync, several times, then a clean run.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aurinko_fake::{Collection, Endpoint, FakeOptions, RequestRecord};
use aurinko_sync::model::{Kind, Phase, Stream, SyncState};
use aurinko_sync::store::CollectionKey;
use aurinko_sync::sync::WRITES_IN_FLIGHT;

use crate::helpers::{Setup, StoreKind, TestApp, assert_exit, spawn_app, spawn_app_on};
use crate::model_audit::{asked, held};

/// Pages are fetched while those before them are written, with at most
/// `WRITES_IN_FLIGHT` writes in flight: page T is committed before the
/// request for the page `WRITES_IN_FLIGHT + 1` after it is sent. So a
/// successful request for token T after a request for that page would be a
/// refetch of a committed page.
pub fn assert_no_committed_page_refetched(requests: &[RequestRecord]) {
    type Key = (Option<Collection>, Endpoint, String);
    let mut next_of: HashMap<Key, String> = HashMap::new();
    for r in requests.iter().filter(|r| r.status == 200) {
        let Some(token) = r.page_token.clone().or(r.delta_token.clone()) else { continue };
        // A delta token whose answer is itself (nothing changed since) may
        // be asked again by the next pass: that is a new question, not a
        // committed page fetched twice.
        if let Some(next) = r.next_page_token.clone().or(r.next_delta_token.clone()).filter(|n| *n != token) {
            next_of.insert((r.collection.clone(), r.endpoint, token), next);
        }
    }
    let after = |key: &Key| next_of.get(key).map(|next| (key.0.clone(), key.1, next.clone()));
    let mut requested: HashSet<Key> = HashSet::new();
    for r in requests {
        let Some(token) = r.page_token.clone().or(r.delta_token.clone()) else { continue };
        let key = (r.collection.clone(), r.endpoint, token);
        if r.status == 200
            && let Some(later) = (0..=WRITES_IN_FLIGHT).try_fold(key.clone(), |page, _| after(&page))
        {
            assert!(!requested.contains(&later), "page {key:?} was fetched again after it was committed");
        }
        requested.insert(key);
    }
}

/// Where the store left each collection of every account of `app`: its key
/// and stored state (phase and both streams' cursors), read after the run
/// that wrote them has ended.
pub fn stored_positions(app: &TestApp) -> Vec<(CollectionKey, SyncState)> {
    if !app.store_at.exists() {
        return Vec::new();
    }
    let read = app.read_store(|store| {
        let mut positions = Vec::new();
        for account in &app.accounts {
            for key in store.live_collections(account.name)? {
                let state = store.load_state(&key)?.expect("a live collection has a state");
                positions.push((key, state));
            }
        }
        Ok(positions)
    });
    match read {
        Ok(positions) => positions,
        // PostgreSQL before the first run has created the tables.
        Err(e) if e.to_string().contains("holds no aurinko-sync store") => Vec::new(),
        Err(e) => panic!("the store opens: {e}"),
    }
}

/// The fake's name for a collection of the store.
fn fake_collection(key: &CollectionKey) -> Collection {
    match key.kind {
        Kind::Calendar => Collection::Calendar(key.id.clone()),
        Kind::Email => Collection::Email,
        Kind::Contacts => Collection::Contacts,
        Kind::Tasks => Collection::Tasks(key.id.clone()),
    }
}

fn endpoint_of(stream: Stream) -> Endpoint {
    match stream {
        Stream::Updated => Endpoint::SyncUpdated,
        Stream::Deleted => Endpoint::SyncDeleted,
    }
}

/// Asserts that a run (its `requests` only) began each collection exactly
/// where the store said, as read before the run: a stored page token is the
/// first request of its stream (an interrupted drain goes on from the page
/// after the last committed one, never from its delta token), a drained
/// stream is first asked with its stored delta token, and only a collection
/// stored before its provisioning was ready starts with `POST .../sync`.
/// With `all`, every stored collection must have been asked (a run that
/// finished); otherwise collections the run did not reach before it was
/// killed are not checked. Returns how many streams were checked.
pub fn assert_resumed_from_stored_tokens(
    stored: &[(CollectionKey, SyncState)],
    requests: &[RequestRecord],
    all: bool,
) -> usize {
    let mut checked = 0;
    for (key, state) in stored {
        let collection = fake_collection(key);
        let account = Some(key.account.as_str());
        let sync = [Endpoint::SyncStart, Endpoint::SyncUpdated, Endpoint::SyncDeleted];
        let of_collection: Vec<&RequestRecord> = requests
            .iter()
            .filter(|r| r.account.as_deref() == account && r.collection.as_ref() == Some(&collection))
            .filter(|r| sync.contains(&r.endpoint))
            .collect();
        let Some(first) = of_collection.first() else {
            assert!(!all, "{key} ({:?}) was not synced by a run that finished", state.phase);
            continue;
        };
        if !matches!(state.phase, Phase::Updated | Phase::Deleted | Phase::Idle) {
            assert_eq!(first.endpoint, Endpoint::SyncStart, "{key} was stored as {:?}", state.phase);
            checked += 1;
            continue;
        }
        // Nothing in these tests expires or rolls: a collection that had
        // tokens keeps them.
        assert!(
            of_collection.iter().all(|r| r.endpoint != Endpoint::SyncStart),
            "{key} was provisioned again though its tokens were stored ({:?})",
            state.phase
        );
        for stream in [Stream::Updated, Stream::Deleted] {
            let expected = held(state, stream);
            let first_of_stream = of_collection.iter().find(|r| r.endpoint == endpoint_of(stream));
            match first_of_stream {
                Some(r) => {
                    assert_eq!(
                        asked(r),
                        expected,
                        "the first {stream:?} request of {key} (stored as {:?}) used another token than the stored one",
                        state.phase
                    );
                    checked += 1;
                }
                None => assert!(!all, "{key}: its {stream:?} stream was not asked by a run that finished"),
            }
        }
    }
    checked
}

/// Where the next run's requests will start in the fake's log, once every
/// connection of the runs before (killed ones too) is closed: a request a
/// killed run sent just before it died may be answered, and logged, after
/// it is gone.
pub async fn log_position_after_earlier_runs(app: &TestApp) -> usize {
    app.wait_for(Duration::from_secs(30), "the earlier runs' connections to close", || {
        app.server.open_connections() == 0
    })
    .await;
    app.requests().len()
}

/// `run --catch-up` to the end, asserting it exits 0 and resumes every
/// collection from the tokens stored before it.
pub async fn catch_up_from_stored_tokens(app: &TestApp) {
    let stored = stored_positions(app);
    let from = log_position_after_earlier_runs(app).await;
    assert_exit(&app.catch_up().await, 0);
    assert_resumed_from_stored_tokens(&stored, &app.requests()[from..], true);
}

/// Successful answers after which a run of `passes` collections at once has
/// certainly committed pages: the writer keeps a transaction open while
/// passes send pages (group commit) and commits at the latest once every
/// pass has `WRITES_IN_FLIGHT` pages at it; a few more for discovery and
/// provisioning. Killed sooner, a run may leave nothing to resume from.
pub fn answers_to_a_commit(passes: usize) -> usize {
    passes * WRITES_IN_FLIGHT + 10
}

/// Starts `run --catch-up` `rounds` times and kills each with SIGKILL once
/// it has had `pages` more successful answers (see [`answers_to_a_commit`]). Each run after the first is
/// checked to resume from the tokens the one before left in the store.
/// Returns how many runs were killed before they finished. `state` must
/// work while each run writes.
pub async fn kill_repeatedly(app: &TestApp, rounds: usize, pages: usize) -> usize {
    let mut kills = 0;
    for _ in 0..rounds {
        let stored = stored_positions(app);
        let from = log_position_after_earlier_runs(app).await;
        let before = app.requests().iter().filter(|r| r.status == 200).count();
        let mut child = app.command(&["run", "--catch-up"]).spawn().expect("binary starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while app.requests().iter().filter(|r| r.status == 200).count() < before + pages {
            assert!(Instant::now() < deadline, "no progress");
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if child.try_wait().unwrap().is_none() {
            let state = app.state_json().await;
            assert!(state["collections"].as_array().is_some_and(|c| !c.is_empty()), "{state}");
            child.kill().await.expect("SIGKILL");
            kills += 1;
        }
        log_position_after_earlier_runs(app).await;
        let checked = assert_resumed_from_stored_tokens(&stored, &app.requests()[from..], false);
        assert!(stored.is_empty() || checked > 0, "a run after a kill asked for no stored stream");
    }
    kills
}

/// How many records the fake served on a stream's pages up to `token`: the
/// answer that handed `token` out, the one that handed out the token it
/// was asked with, and so on back to the provisioning's delta token.
fn served_up_to(requests: &[RequestRecord], collection: &Collection, endpoint: Endpoint, token: &str) -> usize {
    let handed_out: HashMap<&str, (&str, usize)> = requests
        .iter()
        .filter(|r| r.status == 200 && r.endpoint == endpoint && r.collection.as_ref() == Some(collection))
        .filter_map(|r| {
            let asked = r.page_token.as_deref().or(r.delta_token.as_deref())?;
            let next = r.next_page_token.as_deref().or(r.next_delta_token.as_deref())?;
            (next != asked).then_some((next, (asked, r.records)))
        })
        .collect();
    let (mut served, mut at, mut steps) = (0, token, 0);
    while let Some(&(asked, records)) = handed_out.get(at) {
        served += records;
        at = asked;
        steps += 1;
        assert!(steps <= handed_out.len(), "the pages of {collection:?} form a loop");
    }
    served
}

/// Asserts that each calendar of `account` holds exactly the events of the
/// pages up to its stored `/sync/updated` token: no rows without their
/// token, no token without its rows. (Nothing is deleted in these tests, so
/// the deleted stream adds nothing.) Returns the events stored.
pub fn assert_rows_match_tokens(app: &TestApp, account: &str) -> usize {
    let requests = app.requests();
    let positions = stored_positions(app);
    let stored = app.stored(account);
    let mut total = 0;
    for calendar_id in app.fake.calendar_ids(app.token(account)) {
        let key = CollectionKey::calendar(account, &calendar_id);
        let rows = stored.iter().filter(|(c, _, _)| *c == calendar_id).count();
        let expected = match positions.iter().find(|(k, _)| *k == key) {
            Some((_, state)) if matches!(state.phase, Phase::Updated | Phase::Deleted | Phase::Idle) => {
                let token = state.updated.page_token.as_ref().or(state.updated.delta_token.as_ref()).expect("a token");
                served_up_to(&requests, &Collection::Calendar(calendar_id.clone()), Endpoint::SyncUpdated, token)
            }
            _ => 0,
        };
        assert_eq!(
            rows, expected,
            "{key} holds {rows} events, but the pages up to its stored token brought {expected}"
        );
        total += rows;
    }
    total
}

on_each_store!(
    sigkill_during_a_long_first_sync_loses_nothing_and_refetches_no_committed_page,
    sigkill_during_a_long_first_sync_loses_nothing_and_refetches_no_committed_page_on_postgresql,
    sigkill_on
);

async fn sigkill_on(kind: StoreKind, test: &str) {
    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 2400), ("cal-2", 2400), ("cal-3", 1600)])],
        options: FakeOptions { page_size: 10, latency: Duration::from_millis(4), ..FakeOptions::default() },
        ..Setup::default()
    };
    let Some(app) = spawn_app_on(setup, kind, test).await else { return };
    let kills = kill_repeatedly(&app, 4, answers_to_a_commit(3)).await;
    assert!(kills >= 3, "the sync was interrupted several times ({kills})");
    let stored_before = app.stored("work").len();
    assert!(stored_before > 0 && stored_before < app.truth("work").len(), "killed mid-way: {stored_before} stored");

    catch_up_from_stored_tokens(&app).await;
    app.assert_store_equals_truth("work");
    let requests = app.requests();
    assert_no_committed_page_refetched(&requests);
    let starts = requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, 3, "each calendar provisioned once, never again after a kill");
}

#[cfg(debug_assertions)]
on_each_store!(
    a_crash_between_a_pages_rows_and_its_token_commits_neither,
    a_crash_between_a_pages_rows_and_its_token_commits_neither_on_postgresql,
    crash_between_rows_and_token_on
);

/// The failpoint (`src/store/failpoint.rs`, debug builds only) kills the
/// binary with SIGKILL between a page's rows and its token, at both points,
/// mid-way through the drains of three calendars whose pages share the
/// writer's transactions.
#[cfg(debug_assertions)]
async fn crash_between_rows_and_token_on(kind: StoreKind, test: &str) {
    use std::os::unix::process::ExitStatusExt;

    let setup = Setup {
        accounts: vec![("work", vec![("cal-1", 1500), ("cal-2", 1500), ("cal-3", 1000)])],
        options: FakeOptions { page_size: 10, ..FakeOptions::default() },
        ..Setup::default()
    };
    let Some(app) = spawn_app_on(setup, kind, test).await else { return };
    let mut stored = 0;
    // Late enough that the writer has committed pages before (see
    // `answers_to_a_commit`); the crash then hits an open transaction
    // holding many pages.
    let nth = 3 * WRITES_IN_FLIGHT + 8;
    for point in [format!("after-rows:{nth}"), format!("before-token:{nth}")] {
        let positions = stored_positions(&app);
        let from = log_position_after_earlier_runs(&app).await;
        let out = app.command(&["run", "--catch-up"]).env("AURINKO_SYNC_FAILPOINT", &point).output().await.unwrap();
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "killed at {point}: {:?}", out.status);
        log_position_after_earlier_runs(&app).await;
        assert_resumed_from_stored_tokens(&positions, &app.requests()[from..], false);
        let now = assert_rows_match_tokens(&app, "work");
        assert!(now > stored, "the run killed at {point} committed pages before ({now} events)");
        stored = now;
    }
    assert!(stored < app.truth("work").len(), "killed mid-way: {stored} stored");

    catch_up_from_stored_tokens(&app).await;
    app.assert_store_equals_truth("work");
    assert_eq!(assert_rows_match_tokens(&app, "work"), app.truth("work").len());
    let requests = app.requests();
    assert_no_committed_page_refetched(&requests);
    let starts = requests.iter().filter(|r| r.endpoint == Endpoint::SyncStart && r.status == 200).count();
    assert_eq!(starts, 3, "each calendar provisioned once, never again after a crash");
}

/// A kept-back write (the state after an empty page that ends a stream,
/// stored with the next write of its collection: `Pass::may_keep_back`) is
/// what a crash may lose. The failpoint kills the binary as that write
/// lands: the run before stored the updated stream's page, and the deleted
/// stream's empty page was answered but its state kept back. The next run
/// resumes from exactly the stored tokens, asks that empty page again, and
/// loses nothing.
#[cfg(debug_assertions)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_as_a_kept_back_write_lands_loses_nothing() {
    use std::os::unix::process::ExitStatusExt;

    let setup = Setup { accounts: vec![("work", vec![("cal-1", 30)])], ..Setup::default() };
    let app = spawn_app(setup).await;
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let (_, changed, _) = app.truth("work").into_iter().next().expect("an event");
    assert!(app.fake.update_event(&token, "cal-1", &changed));
    let positions = stored_positions(&app);
    let from = log_position_after_earlier_runs(&app).await;
    // The run's state writes: the updated page with the change (1st), then
    // the deleted stream's empty last page, kept back and stored with the
    // pass's outcome (2nd).
    let out =
        app.command(&["run", "--catch-up"]).env("AURINKO_SYNC_FAILPOINT", "before-token:2").output().await.unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{:?}", out.status);
    log_position_after_earlier_runs(&app).await;
    let killed_run = app.requests()[from..].to_vec();
    let deleted_asked = killed_run.iter().filter(|r| r.endpoint == Endpoint::SyncDeleted && r.status == 200).count();
    assert_eq!(deleted_asked, 1, "the deleted stream's empty page was answered before the kill");
    let (_, state) = stored_positions(&app).into_iter().next().expect("cal-1 is stored");
    assert_eq!(state.phase, Phase::Deleted, "the updated page is stored, the kept-back state is not");
    assert_ne!(state.updated, positions[0].1.updated, "the updated stream moved on");
    assert_eq!(state.deleted, positions[0].1.deleted, "the deleted stream's kept-back move was lost");

    catch_up_from_stored_tokens(&app).await;
    app.assert_store_equals_truth("work");
    assert_no_committed_page_refetched(&app.requests());
}
