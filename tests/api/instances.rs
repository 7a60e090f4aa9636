//! `event_instances` after a real sync: every series of the fake's
//! calendars expanded (its weekly rule worked out here, by hand), each
//! exception in the slot it took, every single event once; and the
//! "next week" query of state/README.md, run as written.

use std::collections::BTreeSet;

use aurinko_sync::model::CollectionKey;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;

use crate::helpers::{Setup, StoreAt, StoreKind, assert_exit, spawn_app_on};

/// (calendar, event id, start in the store's text form, modified)
type Instance = (String, String, String, bool);

/// An `EventDateTime` as the store writes it: UTC with milliseconds, or
/// the date of an all-day one.
fn store_time(v: &Value) -> String {
    if let Some(t) = v["dateTime"].as_str() {
        let t = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        return t.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    NaiveDate::parse_from_str(v["dateOnly"].as_str().unwrap(), "%Y-%m-%d").unwrap().to_string()
}

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["dateTime"].as_str().unwrap()).unwrap().with_timezone(&Utc)
}

on_each_store!(
    every_series_is_its_instances_and_every_exception_takes_its_slot,
    every_series_is_its_instances_and_every_exception_takes_its_slot_on_postgresql,
    instances_on
);

async fn instances_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(Setup::default(), kind, test).await else { return };
    assert_exit(&app.catch_up().await, 0);
    let (masters, exceptions) = assert_instances_equal_the_truth(&app);
    assert!(masters > 0 && exceptions > 0, "the fake's calendars hold series with exceptions");

    // Changes keep them in step: the fake's mutations (new, changed and
    // deleted events, exceptions among them) and a second catch-up.
    let token = app.token("work").to_string();
    app.fake.mutate_random(&token, 60);
    assert_exit(&app.catch_up().await, 0);
    assert_instances_equal_the_truth(&app);
}

/// The store's instances against the truth's, worked out here; returns how
/// many masters and exceptions the truth holds.
fn assert_instances_equal_the_truth(app: &crate::helpers::TestApp) -> (usize, usize) {
    let truth = app.truth_content("work");
    let mut expected: BTreeSet<Instance> = BTreeSet::new();
    let (mut masters, mut exceptions) = (0, 0);
    for (calendar, id, _, record) in &truth {
        let window = app
            .read_store(|s| s.load_state(&CollectionKey::calendar("work", calendar)))
            .unwrap()
            .and_then(|s| s.window)
            .expect("a synced calendar has its window");
        match record["recurrenceType"].as_str() {
            Some("master") => {
                masters += 1;
                // The fake's series: `RRULE:FREQ=WEEKLY;COUNT=n` in zones
                // without daylight saving, so a slot is the start plus
                // whole weeks, in UTC.
                let rule = record["recurrence"]["ical"]["rules"][0].as_str().unwrap();
                let count: i64 = rule.strip_prefix("RRULE:FREQ=WEEKLY;COUNT=").unwrap().parse().unwrap();
                let (start, end) = (instant(&record["start"]), instant(&record["end"]));
                let taken: BTreeSet<String> = truth
                    .iter()
                    .filter(|(c, _, _, r)| c == calendar && r["occurrenceInfo"]["masterId"].as_str() == Some(id))
                    .map(|(_, _, _, r)| store_time(&r["occurrenceInfo"]["originalStart"]))
                    .collect();
                for week in 0..count {
                    let slot = start + Duration::weeks(week);
                    let text = slot.to_rfc3339_opts(SecondsFormat::Millis, true);
                    let overlaps = slot + (end - start) > window.time_min && slot < window.time_max;
                    if overlaps && !taken.contains(&text) {
                        expected.insert((calendar.clone(), id.clone(), text, false));
                    }
                }
            }
            Some("occurrence") => {
                exceptions += 1;
                let cancelled =
                    record["occurrenceInfo"]["type"] == "deleted" || record["meetingInfo"]["canceled"] == true;
                if !cancelled {
                    let modified = record["occurrenceInfo"]["type"].as_str() != Some("regular");
                    expected.insert((calendar.clone(), id.clone(), store_time(&record["start"]), modified));
                }
            }
            _ => {
                expected.insert((calendar.clone(), id.clone(), store_time(&record["start"]), false));
            }
        }
    }
    let stored: Vec<Instance> = app
        .read_store(|s| s.instances("work"))
        .unwrap()
        .into_iter()
        .map(|i| (i.calendar_id, i.event_id, i.start_time.unwrap_or_default(), i.modified))
        .collect();
    let stored_set: BTreeSet<Instance> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), stored_set.len(), "each instance once");
    let missing: Vec<_> = expected.difference(&stored_set).collect();
    let extra: Vec<_> = stored_set.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}\nextra {extra:?}");
    (masters, exceptions)
}

/// The query state/README.md gives for "what meetings do I have next
/// week", run as written on a synced store: exactly the instances starting
/// between next Monday and the Monday after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_next_week_query_lists_next_weeks_instances() {
    let Some(app) = spawn_app_on(Setup::default(), StoreKind::Sqlite, "next_week").await else { return };
    assert_exit(&app.catch_up().await, 0);
    let StoreAt::Sqlite(path) = &app.store_at else { unreachable!() };
    let readme = include_str!("../../state/README.md");
    let start = readme.find("-- What meetings do I have next week?").expect("the README has the query");
    let query = &readme[start..start + readme[start..].find("```").unwrap()];
    let conn = rusqlite::Connection::open(path).unwrap();
    let listed: Vec<(String, String)> = conn
        .prepare(query)
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(3)?.unwrap_or_default())))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let monday: String = conn.query_row("SELECT date('now', 'weekday 1')", [], |r| r.get(0)).unwrap();
    let next: String = conn.query_row("SELECT date('now', 'weekday 1', '+7 days')", [], |r| r.get(0)).unwrap();
    let mut expected: Vec<String> = app
        .read_store(|s| s.instances("work"))
        .unwrap()
        .into_iter()
        .filter_map(|i| i.start_time.zip(i.start_local))
        .filter(|(start, _)| *start >= monday && *start < next)
        .map(|(_, local)| local)
        .collect();
    assert!(!expected.is_empty(), "the fake has events next week");
    let mut listed: Vec<String> = listed.into_iter().map(|(local, _)| local).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
}

on_each_store!(
    with_keep_deleted_deleted_events_stay_marked_and_out_of_reads,
    with_keep_deleted_deleted_events_stay_marked_and_out_of_reads_on_postgresql,
    keep_deleted_on
);

/// `sync.keep_deleted = true` with the real binary: events deleted upstream
/// stay, marked, while the store's live rows equal the truth.
async fn keep_deleted_on(kind: StoreKind, test: &str) {
    let Some(app) = spawn_app_on(Setup::default(), kind, test).await else { return };
    app.edit_config("[sync]\n", "[sync]\nkeep_deleted = true\n");
    assert_exit(&app.catch_up().await, 0);
    let token = app.token("work").to_string();
    let gone: Vec<(String, String)> = app.truth("work").into_iter().take(5).map(|(c, id, _)| (c, id)).collect();
    for (calendar, id) in &gone {
        assert!(app.fake.delete_event(&token, calendar, id));
    }
    assert_exit(&app.catch_up().await, 0);
    app.assert_store_equals_truth("work");
    let query = "SELECT calendar_id || ' ' || event_id FROM events WHERE deleted_at IS NOT NULL ORDER BY 1";
    let marked: Vec<String> = match &app.store_at {
        StoreAt::Sqlite(path) => rusqlite::Connection::open(path)
            .unwrap()
            .prepare(query)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect(),
        StoreAt::Postgres { schema, .. } => {
            let server = app.postgres.as_ref().unwrap();
            let query = query.replace("FROM events", &format!("FROM {schema}.events"));
            tokio::task::block_in_place(|| server.psql(&query)).lines().map(str::to_string).collect()
        }
    };
    let mut gone: Vec<String> = gone.iter().map(|(c, id)| format!("{c} {id}")).collect();
    gone.sort();
    assert_eq!(marked, gone, "exactly the deleted events are kept, marked");
    assert!(
        app.read_store(|s| s.instances("work"))
            .unwrap()
            .iter()
            .all(|i| !gone.contains(&format!("{} {}", i.calendar_id, i.event_id))),
        "event_instances leaves them out"
    );
}
