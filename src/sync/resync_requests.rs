//! A resync request (`aurinko-sync resync`) as the store keeps it and the
//! machine acts on it: both sides together, so this test lives above both.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::machine::{Pass, ReadyPolicy};
use crate::model::{CollectionKey, Commit, Cursor, Kind, Phase, RangeDays, SyncState};
use crate::store::{Backend, PageRecords, ResyncFilter, Store, Write, Writer};

fn idle(generation: i64) -> SyncState {
    SyncState {
        phase: Phase::Idle,
        generation,
        range: Some(RangeDays::Within(30)),
        updated: Cursor::at_delta("U".into()),
        deleted: Cursor::at_delta("D".into()),
        ..SyncState::new()
    }
}

async fn commit(writer: &Writer, key: &CollectionKey, commit: Commit) {
    let write = Write { key: key.clone(), commit: Some(commit), records: PageRecords::None, outcome: None };
    writer.write(write).await.unwrap();
}

/// The daemon's pass that was under way when the command ran (or the
/// state it keeps in memory) commits a state that knows nothing of the
/// request; the request survives it and is acted on once.
#[tokio::test]
async fn a_request_survives_the_commits_of_a_pass_in_flight_and_is_acted_on_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("s.db")).unwrap());
    let writer = Writer::start(store.clone());
    let key = CollectionKey::account_wide("work", Kind::Email);
    let other = CollectionKey::account_wide("home", Kind::Email);
    commit(&writer, &key, Commit::state_only(&idle(3))).await;
    commit(&writer, &other, Commit::state_only(&idle(1))).await;
    let filter = ResyncFilter { account: Some("work".into()), ..ResyncFilter::default() };
    assert_eq!(store.request_resync(&filter, Utc::now()).unwrap(), vec![key.clone()]);

    let in_flight = idle(3);
    commit(&writer, &key, Commit::state_only(&in_flight)).await;
    let requested = store.resync_requested(&key).unwrap();
    assert_eq!((requested, store.resync_requested(&other).unwrap()), (1, 0));

    let ready = ReadyPolicy::new(Duration::from_secs(1), Duration::from_secs(1));
    let mut pass = Pass::new(in_flight, None, ready);
    let started_over = pass.resync_if_requested(requested).expect("the request is pending");
    assert_eq!(started_over.state.phase, Phase::Provisioning);
    assert_eq!(started_over.state.updated, Cursor::default());
    commit(&writer, &key, started_over).await;
    let stored = writer.load(key.clone()).await.unwrap().unwrap();
    assert_eq!(stored.resync_handled, requested);
    let mut next = Pass::new(stored, None, ready);
    assert!(next.resync_if_requested(store.resync_requested(&key).unwrap()).is_none(), "acted on once");
}
