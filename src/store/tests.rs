//! Store tests on real SQLite files in a temporary directory.

use chrono::{TimeZone, Utc};

use super::*;
use serde_json::value::RawValue;

use crate::model::{Commit, Cursor, Kind, Phase, Row, Sweep, SyncState, Window};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn key() -> CollectionKey {
    CollectionKey::calendar("work", "cal-1")
}

fn row(id: &str, etag: &str) -> Row {
    parse(Kind::Calendar, &format!(r#"{{"id":"{id}","etag":"{etag}","subject":"subject {id}"}}"#))
}

fn parse(kind: Kind, json: &str) -> Row {
    kind.parse_record(&RawValue::from_string(json.to_string()).unwrap()).unwrap()
}

fn state(generation: i64, page: Option<&str>) -> SyncState {
    SyncState {
        phase: Phase::Updated,
        window: Some(Window::around(now(), 30, 365)),
        generation,
        reconciling: false,
        updated: Cursor { delta_token: Some("U".into()), page_token: page.map(str::to_string) },
        deleted: Cursor::at_delta("D".into()),
        ..SyncState::new()
    }
}

fn commit(state: SyncState) -> Commit {
    Commit { state, sweep: None, purge: false, reprovision: None }
}

fn ids(store: &Store) -> Vec<(String, Option<String>)> {
    store.events("work").unwrap().into_iter().map(|e| (e.event_id, e.etag)).collect()
}

#[test]
fn a_page_and_its_token_are_stored_together_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    assert_eq!(store.load_state(&key()).unwrap(), None);
    let s = state(1, Some("P1"));
    let stats = store
        .commit(&key(), &commit(s.clone()), &PageRecords::Upserts(vec![row("a", "1"), row("b", "1")]), now())
        .unwrap();
    assert_eq!(stats.upserted, 2);
    assert_eq!(store.load_state(&key()).unwrap(), Some(s));
    assert_eq!(ids(&store), vec![("a".into(), Some("1".into())), ("b".into(), Some("1".into()))]);
}

#[test]
fn an_unchanged_etag_is_not_rewritten_and_a_new_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let c = commit(state(1, None));
    store.commit(&key(), &c, &PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
    let stats = store.commit(&key(), &c, &PageRecords::Upserts(vec![row("a", "1"), row("b", "1")]), now()).unwrap();
    assert_eq!((stats.upserted, stats.unchanged), (1, 1));
    let stats = store.commit(&key(), &c, &PageRecords::Upserts(vec![row("a", "2")]), now()).unwrap();
    assert_eq!((stats.upserted, stats.unchanged), (1, 0));
    assert_eq!(ids(&store)[0], ("a".into(), Some("2".into())));
    // The same etag with other content: rewritten all the same.
    let changed = parse(Kind::Calendar, r#"{"id":"a","etag":"2","subject":"changed"}"#);
    let stats = store.commit(&key(), &c, &PageRecords::Upserts(vec![changed]), now()).unwrap();
    assert_eq!((stats.upserted, stats.unchanged), (1, 0));
    assert_eq!(store.events("work").unwrap()[0].subject.as_deref(), Some("changed"));
}

#[test]
fn deletes_sweeps_and_purges_remove_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let rows = vec![row("a", "1"), row("b", "1"), row("c", "1")];
    store.commit(&key(), &commit(state(1, None)), &PageRecords::Upserts(rows), now()).unwrap();
    // A new generation sees only a and b, then sweeps.
    store
        .commit(&key(), &commit(state(2, None)), &PageRecords::Upserts(vec![row("a", "1"), row("b", "1")]), now())
        .unwrap();
    assert_eq!(ids(&store).len(), 3, "nothing is removed before the sweep");
    let sweep = Commit { sweep: Some(Sweep { below: 2, window: None }), ..commit(state(2, None)) };
    let stats = store.commit(&key(), &sweep, &PageRecords::None, now()).unwrap();
    assert_eq!(stats.swept, 1);
    let stats = store
        .commit(&key(), &commit(state(2, None)), &PageRecords::Deletes(vec!["a".into(), "zz".into()]), now())
        .unwrap();
    assert_eq!(stats.deleted, 1, "an id never seen deletes nothing");
    assert_eq!(ids(&store), vec![("b".into(), Some("1".into()))]);
    let purge = Commit { purge: true, ..commit(state(2, None)) };
    store.commit(&key(), &purge, &PageRecords::None, now()).unwrap();
    assert!(ids(&store).is_empty());
}

#[test]
fn a_failed_commit_leaves_neither_rows_nor_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    store.commit(&key(), &commit(state(1, Some("P1"))), &PageRecords::None, now()).unwrap();
    // Another connection holds the write lock; our commit must fail whole.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    store.conn().busy_timeout(std::time::Duration::from_millis(50)).unwrap();
    let result = store.commit(&key(), &commit(state(1, Some("P2"))), &PageRecords::Upserts(vec![row("a", "1")]), now());
    assert!(result.is_err());
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(store.load_state(&key()).unwrap().unwrap().updated.page_token.as_deref(), Some("P1"));
    assert!(ids(&store).is_empty());
}

/// Records how a pass of `key()` ended, in a transaction of its own.
fn record_outcome(store: &Store, error: Option<(&str, &str)>) -> Result<CommitStats, StoreError> {
    let outcome = Outcome { error: error.map(|(c, m)| (c.to_string(), m.to_string())), next_attempt: None };
    let write = Write { key: key(), commit: None, records: PageRecords::None, outcome: Some(outcome) };
    store.write_each([&write], now()).remove(0)
}

#[test]
fn outcomes_count_consecutive_failures_and_a_success_resets_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    record_outcome(&store, Some(("transient", "HTTP 503"))).unwrap();
    record_outcome(&store, Some(("transient", "HTTP 503"))).unwrap();
    let report = store.report().unwrap();
    assert_eq!(report.collections[0].consecutive_failures, 2);
    assert_eq!(report.collections[0].last_error.as_deref(), Some("HTTP 503"));
    record_outcome(&store, None).unwrap();
    let report = store.report().unwrap();
    assert_eq!(report.collections[0].consecutive_failures, 0);
    assert_eq!(report.collections[0].last_error, None);
    assert!(report.collections[0].last_success_at.is_some());
}

#[cfg(unix)]
#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    store.commit(&key(), &commit(state(1, None)), &PageRecords::None, now()).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("s.db{suffix}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let text = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let err = Store::open(&path).err().expect("refused").to_string();
    assert!(err.contains("not a usable SQLite database"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn somebody_elses_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path).unwrap().execute_batch("CREATE TABLE mine (x)").unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).err().expect("refused").to_string();
    assert!(err.contains("not an aurinko-sync store"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn the_read_only_view_sees_commits_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let writer = Store::open(&path).unwrap();
    writer.commit(&key(), &commit(state(1, None)), &PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.report().unwrap().collections[0].records, 1);
    writer.commit(&key(), &commit(state(1, None)), &PageRecords::Upserts(vec![row("b", "1")]), now()).unwrap();
    assert_eq!(reader.report().unwrap().collections[0].records, 2);
    assert!(record_outcome(&reader, None).is_err());
    assert!(Store::open_read_only(&dir.path().join("missing.db")).is_err());
}

#[test]
fn reading_a_closed_store_creates_no_file_and_an_older_schema_is_not_migrated() {
    let dir = tempfile::tempdir().unwrap();
    // `?`, `#` and `%` would change a `file:` URI if they were not escaped.
    let path = dir.path().join("odd ?x=1#y %41 näme.db");
    let writer = Store::open(&path).unwrap();
    writer.commit(&key(), &commit(state(1, None)), &PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
    drop(writer);
    let files = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    let before = files();
    assert_eq!(before.len(), 1, "the writer's side files are gone once it closed: {before:?}");
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.report().unwrap().collections[0].records, 1);
    drop(reader);
    assert_eq!(files(), before);
    let older = MIGRATIONS.len() as i64 - 1;
    Connection::open(&path).unwrap().pragma_update(None, "user_version", older).unwrap();
    let err = Store::open_read_only(&path).err().unwrap().to_string();
    assert!(err.contains(&format!("older aurinko-sync (schema {older} of")), "{err}");
    let version: i64 = Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, older);
}

#[test]
fn messages_without_etags_are_rewritten_only_when_their_json_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let key = CollectionKey::account_wide("work", Kind::Email);
    let c = commit(state(1, None));
    let m1 = parse(Kind::Email, r#"{"id":"m1","subject":"Hi","sysLabels":["unread"]}"#);
    let m1_read = parse(Kind::Email, r#"{"id":"m1","subject":"Hi","sysLabels":[]}"#);
    store.commit(&key, &c, &PageRecords::Upserts(vec![m1.clone()]), now()).unwrap();
    let stats = store.commit(&key, &c, &PageRecords::Upserts(vec![m1]), now()).unwrap();
    assert_eq!((stats.upserted, stats.unchanged), (0, 1));
    let stats = store.commit(&key, &c, &PageRecords::Upserts(vec![m1_read]), now()).unwrap();
    assert_eq!((stats.upserted, stats.unchanged), (1, 0));
    let stored = store.records("work", Kind::Email).unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].raw.contains(r#""sysLabels":[]"#));
    let stats = store.commit(&key, &c, &PageRecords::Deletes(vec!["m1".into()]), now()).unwrap();
    assert_eq!(stats.deleted, 1);
    assert!(store.records("work", Kind::Email).unwrap().is_empty());
}

#[test]
fn kinds_keep_to_their_own_tables_and_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let contacts = CollectionKey::account_wide("work", Kind::Contacts);
    let c1 = parse(Kind::Contacts, r#"{"id":"c1","etag":"1","name":{"displayName":"Ann"}}"#);
    store.commit(&contacts, &commit(state(1, None)), &PageRecords::Upserts(vec![c1]), now()).unwrap();
    store.commit(&key(), &commit(state(1, None)), &PageRecords::Upserts(vec![row("c1", "1")]), now()).unwrap();
    // A sweep of the contacts' next generation leaves the calendar alone.
    let sweep = Commit { sweep: Some(Sweep { below: 2, window: None }), ..commit(state(2, None)) };
    assert_eq!(store.commit(&contacts, &sweep, &PageRecords::None, now()).unwrap().swept, 1);
    assert!(store.records("work", Kind::Contacts).unwrap().is_empty());
    assert_eq!(store.records("work", Kind::Calendar).unwrap().len(), 1);
    let report = store.report().unwrap();
    let counts: Vec<(String, i64)> = report.collections.iter().map(|c| (c.kind.clone(), c.records)).collect();
    assert_eq!(counts, vec![("calendar".to_string(), 1), ("contacts".to_string(), 0)]);
}

/// An event `id` from `start` to `end` (RFC 3339 date-times, or dates for an
/// all-day event), or without times.
fn event(id: &str, times: Option<(&str, &str)>) -> Row {
    let when =
        |t: &str| if t.len() == 10 { format!(r#"{{"dateOnly":"{t}"}}"#) } else { format!(r#"{{"dateTime":"{t}"}}"#) };
    let times = times.map(|(s, e)| format!(r#","start":{},"end":{}"#, when(s), when(e))).unwrap_or_default();
    parse(Kind::Calendar, &format!(r#"{{"id":"{id}","etag":"1"{times}}}"#))
}

/// The sweep ending a reconciling pass removes only rows the new initial
/// pass could have returned: inside the window, not within a day of its
/// edges, with readable times. `state` counts the rows wholly outside.
#[test]
fn a_sweep_removes_only_rows_inside_the_provisioned_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    // The window: 2026-10-28T12:00Z .. 2027-11-27T12:00Z.
    let rows = vec![
        event("before", Some(("2026-09-01T10:00:00Z", "2026-09-01T11:00:00Z"))),
        event("ends-at-the-start", Some(("2026-10-28T11:00:00Z", "2026-10-28T12:00:00Z"))),
        event("near-the-start", Some(("2026-10-28T13:00:00Z", "2026-10-28T14:00:00Z"))),
        event("inside", Some(("2026-12-01T10:00:00+02:00", "2026-12-01T11:00:00+02:00"))),
        event("inside-all-day", Some(("2026-12-24", "2026-12-26"))),
        event("across-the-start", Some(("2026-10-01T00:00:00Z", "2026-11-30T00:00:00Z"))),
        event("near-the-end", Some(("2027-11-27T00:00:00Z", "2027-11-27T01:00:00Z"))),
        event("after", Some(("2028-01-01T10:00:00Z", "2028-01-01T11:00:00Z"))),
        event("no-times", None),
        parse(Kind::Calendar, r#"{"id":"odd-times","start":{"dateTime":"soon"},"end":{"dateTime":"later"}}"#),
    ];
    store.commit(&key(), &commit(state(1, None)), &PageRecords::Upserts(rows), now()).unwrap();
    let window = Window::around(now(), 30, 365);
    let sweep = Commit { sweep: Some(Sweep { below: 2, window: Some(window) }), ..commit(state(2, None)) };
    assert_eq!(store.commit(&key(), &sweep, &PageRecords::None, now()).unwrap().swept, 3);
    let kept: Vec<String> = ids(&store).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        kept,
        ["after", "before", "ends-at-the-start", "near-the-end", "near-the-start", "no-times", "odd-times"]
    );
    let report = store.report().unwrap();
    assert_eq!(report.collections[0].outside_window, Some(3), "before, ends-at-the-start and after");

    // Mail: the range is open towards the future.
    let email = CollectionKey::account_wide("work", Kind::Email);
    let message = |id: &str, at: Option<&str>| {
        let at = at.map(|t| format!(r#","receivedAt":"{t}""#)).unwrap_or_default();
        parse(Kind::Email, &format!(r#"{{"id":"{id}"{at}}}"#))
    };
    let messages = vec![
        message("old", Some("2026-06-01T08:00:00Z")),
        message("recent", Some("2026-11-20T08:00:00Z")),
        message("after-the-provisioning", Some("2026-11-28T08:00:00Z")),
        message("undated", None),
    ];
    let mail_window = Window { time_min: now() - chrono::Duration::days(30), time_max: now() };
    let mail_state = |generation| SyncState { window: Some(mail_window), ..state(generation, None) };
    store.commit(&email, &commit(mail_state(1)), &PageRecords::Upserts(messages), now()).unwrap();
    let sweep = Commit { sweep: Some(Sweep { below: 2, window: Some(mail_window) }), ..commit(mail_state(2)) };
    assert_eq!(store.commit(&email, &sweep, &PageRecords::None, now()).unwrap().swept, 2);
    let kept: Vec<String> = store.records("work", Kind::Email).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(kept, ["old", "undated"]);
    let report = store.report().unwrap();
    let mail = report.collections.iter().find(|c| c.kind == "email").unwrap();
    assert_eq!(mail.outside_window, Some(1), "older than the cutoff");
}

/// Tasks: a task list's initial pass covers every open task and those
/// completed after `skipCompletedBeforeDate`; the sweep keeps the tasks
/// completed before it, and `state` counts them as outside.
#[test]
fn a_task_sweep_keeps_tasks_completed_before_the_skip_date() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let list = CollectionKey::listed("work", Kind::Tasks, "list-1");
    let task = |id: &str, completed: Option<&str>| {
        let completed = completed.map(|t| format!(r#","status":"completed","completed":"{t}""#)).unwrap_or_default();
        parse(Kind::Tasks, &format!(r#"{{"id":"{id}","etag":"1"{completed}}}"#))
    };
    let tasks = vec![
        task("open", None),
        task("done-long-ago", Some("2026-01-05T09:00:00Z")),
        task("done-near-the-cutoff", Some("2026-10-28T18:00:00+02:00")),
        task("done-recently", Some("2026-11-20T09:00:00Z")),
        task("done-oddly", Some("last week")),
    ];
    // completed_within_days = 30: the cutoff is 2026-10-28T12:00Z.
    let window = Window { time_min: now() - chrono::Duration::days(30), time_max: now() };
    let tasks_state = |generation| SyncState { window: Some(window), ..state(generation, None) };
    store.commit(&list, &commit(tasks_state(1)), &PageRecords::Upserts(tasks), now()).unwrap();
    let sweep = Commit { sweep: Some(Sweep { below: 2, window: Some(window) }), ..commit(tasks_state(2)) };
    assert_eq!(store.commit(&list, &sweep, &PageRecords::None, now()).unwrap().swept, 2, "open and done-recently");
    let kept: Vec<String> = store.records("work", Kind::Tasks).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(kept, ["done-long-ago", "done-near-the-cutoff", "done-oddly"]);
    let report = store.report().unwrap();
    let tasks = report.collections.iter().find(|c| c.kind == "tasks").unwrap();
    assert_eq!(tasks.outside_window, Some(1), "completed before the cutoff");
    // `tasks = true`: no window, every task the new pass did not see goes.
    let everything = Commit { sweep: Some(Sweep { below: 3, window: None }), ..commit(tasks_state(3)) };
    assert_eq!(store.commit(&list, &everything, &PageRecords::None, now()).unwrap().swept, 3);
}

/// A write that fails says whether to retry it: a full store may have room
/// again, a damaged one or a refused statement fails the same way each time.
#[test]
fn a_full_store_is_worth_retrying_and_a_damaged_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open_limited(&path, Some(256 * 1024)).unwrap();
    let big = |i: usize| parse(Kind::Calendar, &format!(r#"{{"id":"e{i}","subject":"{}"}}"#, "x".repeat(4000)));
    let full = (0..200)
        .find_map(|i| store.commit(&key(), &commit(state(1, None)), &PageRecords::Upserts(vec![big(i)]), now()).err())
        .expect("a 256 KiB store fills up");
    assert!(full.to_string().contains("full"), "{full}");
    assert_eq!(full.class(), ErrorClass::Transient, "{full}");
    assert_eq!(WriteError::from(full).class, ErrorClass::Transient);
    drop(store);

    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[2 * 4096..4 * 4096] {
        *b = 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let damaged = Store::open(&path).err().expect("a damaged store is refused");
    assert_eq!(damaged.class(), ErrorClass::Permanent, "{damaged}");

    let corrupt = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        None,
    ));
    assert_eq!(corrupt.class(), ErrorClass::Permanent);
    let schema = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        Some("no such column: etag".into()),
    ));
    assert_eq!(schema.class(), ErrorClass::Permanent);
}
