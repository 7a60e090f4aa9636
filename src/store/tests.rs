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
