//! Store tests on real SQLite files in a temporary directory.

use super::conformance::{commit, ids, key, now, parse, record_outcome, row, state};
use super::*;
use crate::model::Kind;

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

/// The WAL's pages and how many of them are in the database file, as
/// another connection sees them.
fn wal_frames(path: &std::path::Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| Ok((r.get(1)?, r.get(2)?))).unwrap()
}

/// A page of `count` events of about 4 KiB each: about a database page per
/// row, so the WAL grows by roughly `count` pages per commit.
fn page_of_large_events(from: usize, count: usize) -> PageRecords {
    let subject = "x".repeat(1900);
    PageRecords::Upserts(
        (from..from + count)
            .map(|i| parse(Kind::Calendar, &format!(r#"{{"id":"e{i}","subject":"{subject}","body":"{subject}"}}"#)))
            .collect(),
    )
}

#[test]
fn the_wal_is_copied_into_the_database_off_the_writers_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    // One commit of more than the background threshold, far below the
    // writer's own: only the checkpoint thread copies it.
    store.commit(&key(), &commit(state(1, None)), &page_of_large_events(0, 1_500), now()).unwrap();
    let (log, _) = wal_frames(&path);
    assert!(log > 1_000 && log < i64::from(checkpoint::WRITER_FRAMES), "{log} pages in the WAL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (log, copied) = wal_frames(&path);
        if copied == log {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "after 60 s, {copied} of {log} WAL pages copied");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The rows are where they were, through the writer's connection.
    assert_eq!(store.events("work").unwrap().len(), 1_500);
}

#[test]
fn a_writer_that_never_pauses_keeps_the_wal_bounded_without_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = Store::open(&path).unwrap();
    // Without the checkpoint thread, as if it could not keep up.
    drop(store.checkpoints.take());
    let (per_commit, commits) = (3_000, 8);
    let mut largest = 0;
    for n in 0..commits {
        store
            .commit(&key(), &commit(state(1, None)), &page_of_large_events(n * per_commit, per_commit), now())
            .unwrap();
        largest = largest.max(wal_frames(&path).0);
    }
    // Eight commits of about 3,000 pages each: 24,000 pages written, but
    // the WAL started over once it passed the writer's threshold.
    let bound = i64::from(checkpoint::WRITER_FRAMES) + 2 * per_commit as i64;
    assert!(largest > i64::from(checkpoint::WRITER_FRAMES) / 2, "{largest} pages at most: the test wrote too little");
    assert!(largest <= bound, "the WAL reached {largest} pages (bound {bound})");
    let wal = std::fs::metadata(dir.path().join("s.db-wal")).unwrap().len();
    assert!(wal <= checkpoint::WAL_LIMIT_BYTES + 2 * per_commit as u64 * 4096, "the WAL file is {wal} bytes");
}
