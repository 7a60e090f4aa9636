//! The schema a fresh store has, held to `state/README.md`, and the query
//! plans the README promises.

use super::*;

const STATE_README: &str = include_str!("../../state/README.md");

/// A fresh store with every migration applied.
fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("fresh.db")).unwrap();
    (dir, store)
}

/// Every table of the store and its columns, as SQLite reports them.
fn tables_and_columns(conn: &Connection) -> Vec<(String, Vec<String>)> {
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let names: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    names
        .into_iter()
        .map(|table| {
            let mut info = conn.prepare("SELECT name FROM pragma_table_info(?1)").unwrap();
            let columns = info.query_map([&table], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            (table, columns)
        })
        .collect()
}

/// The part of the README about `table`: from the heading that names it to
/// the next heading.
fn section<'a>(readme: &'a str, table: &str) -> Option<&'a str> {
    let heading = format!("## `{table}`");
    let start = readme.find(&heading)?;
    let rest = &readme[start + heading.len()..];
    Some(&rest[..rest.find("\n## ").unwrap_or(rest.len())])
}

#[test]
fn every_table_and_column_of_a_fresh_store_is_in_state_readme() {
    let (_dir, store) = fresh();
    let tables = tables_and_columns(&store.conn());
    assert!(tables.len() >= 9, "a fresh store has its tables: {tables:?}");
    let mut missing = Vec::new();
    for (table, columns) in &tables {
        let Some(text) = section(STATE_README, table) else {
            missing.push(format!("table {table} (no heading \"## `{table}`\")"));
            continue;
        };
        for column in columns {
            if !text.contains(&format!("`{column}`")) {
                missing.push(format!("{table}.{column}"));
            }
        }
    }
    assert!(missing.is_empty(), "state/README.md does not document: {}", missing.join(", "));
}

#[test]
fn a_date_range_across_calendars_uses_an_index() {
    let (_dir, store) = fresh();
    let conn = store.conn();
    let mut plan = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT account, calendar_id, subject, start_time FROM events \
             WHERE start_time >= ?1 AND start_time < ?2 ORDER BY start_time",
        )
        .unwrap();
    let steps: Vec<String> =
        plan.query_map(["2026-11-30", "2026-12-07"], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
    let plan = steps.join("; ");
    assert!(plan.contains("USING INDEX events_by_time (start_time>? AND start_time<?)"), "plan: {plan}");
    assert!(!plan.contains("TEMP B-TREE"), "the order comes from the index, not a sort: {plan}");
    assert!(section(STATE_README, "events").unwrap().contains("`events_by_time`"), "state/README.md names the index");
}
