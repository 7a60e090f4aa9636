//! The store's behaviour, held to the same tests on each backend: SQLite
//! always, PostgreSQL on a private server where its binaries are installed
//! (see `private-postgres`; under `CI=true` they must be).

use chrono::{TimeZone, Utc};
use private_postgres::PrivatePostgres;
use serde_json::value::RawValue;

use super::*;
use crate::model::{Commit, Cursor, ErrorClass, Kind, Phase, Row, Sweep, SyncState, Window};

/// Runs `test` on a fresh SQLite store, then on a fresh PostgreSQL store.
pub(super) fn on_each_backend(name: &str, test: impl Fn(&dyn Backend)) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("s.db")).unwrap();
    eprintln!("{name}: SQLite");
    test(&sqlite);
    if let Some(server) = PrivatePostgres::start(name) {
        let pg = Postgres::open(&server.url(), None, "public").unwrap();
        eprintln!("{name}: PostgreSQL");
        test(&pg);
    }
}

/// A page's records and the state after them, in a transaction of their own.
pub(super) fn put(
    store: &dyn Backend,
    key: &CollectionKey,
    commit: &Commit,
    records: PageRecords,
    now: chrono::DateTime<Utc>,
) -> Result<CommitStats, StoreError> {
    let write = Write { key: key.clone(), commit: Some(commit.clone()), records, outcome: None };
    store.write_each(&[&write], now).remove(0)
}

pub(super) fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

pub(super) fn key() -> CollectionKey {
    CollectionKey::calendar("work", "cal-1")
}

pub(super) fn row(id: &str, etag: &str) -> Row {
    parse(Kind::Calendar, &format!(r#"{{"id":"{id}","etag":"{etag}","subject":"subject {id}"}}"#))
}

pub(super) fn parse(kind: Kind, json: &str) -> Row {
    kind.parse_record(&RawValue::from_string(json.to_string()).unwrap()).unwrap()
}

pub(super) fn state(generation: i64, page: Option<&str>) -> SyncState {
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

pub(super) fn commit(state: SyncState) -> Commit {
    Commit { state, sweep: None, purge: false, reprovision: None }
}

pub(super) fn ids(store: &dyn Backend) -> Vec<(String, Option<String>)> {
    store.events("work").unwrap().into_iter().map(|e| (e.event_id, e.etag)).collect()
}

/// Records how a pass of `key()` ended, in a transaction of its own.
pub(super) fn record_outcome(store: &dyn Backend, error: Option<(&str, &str)>) -> Result<CommitStats, StoreError> {
    let outcome = Outcome { error: error.map(|(c, m)| (c.to_string(), m.to_string())), next_attempt: None };
    let write = Write { key: key(), commit: None, records: PageRecords::None, outcome: Some(outcome) };
    store.write_each(&[&write], now()).remove(0)
}

/// An event `id` from `start` to `end` (RFC 3339 date-times, or dates for an
/// all-day event), or without times.
pub(super) fn event(id: &str, times: Option<(&str, &str)>) -> Row {
    let when =
        |t: &str| if t.len() == 10 { format!(r#"{{"dateOnly":"{t}"}}"#) } else { format!(r#"{{"dateTime":"{t}"}}"#) };
    let times = times.map(|(s, e)| format!(r#","start":{},"end":{}"#, when(s), when(e))).unwrap_or_default();
    parse(Kind::Calendar, &format!(r#"{{"id":"{id}","etag":"1"{times}}}"#))
}

#[test]
fn a_page_and_its_token_are_stored_together_and_reload() {
    on_each_backend("a_page_and_its_token_are_stored_together_and_reload", |store| {
        assert_eq!(store.load_state(&key()).unwrap(), None);
        let s = state(1, Some("P1"));
        let stats =
            put(store, &key(), &commit(s.clone()), PageRecords::Upserts(vec![row("a", "1"), row("b", "1")]), now())
                .unwrap();
        assert_eq!(stats.upserted, 2);
        assert_eq!(store.load_state(&key()).unwrap(), Some(s));
        assert_eq!(ids(store), vec![("a".into(), Some("1".into())), ("b".into(), Some("1".into()))]);
    });
}

#[test]
fn an_unchanged_etag_is_not_rewritten_and_a_new_one_is() {
    on_each_backend("an_unchanged_etag_is_not_rewritten_and_a_new_one_is", |store| {
        let c = commit(state(1, None));
        put(store, &key(), &c, PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
        let stats = put(store, &key(), &c, PageRecords::Upserts(vec![row("a", "1"), row("b", "1")]), now()).unwrap();
        assert_eq!((stats.upserted, stats.unchanged), (1, 1));
        let stats = put(store, &key(), &c, PageRecords::Upserts(vec![row("a", "2")]), now()).unwrap();
        assert_eq!((stats.upserted, stats.unchanged), (1, 0));
        assert_eq!(ids(store)[0], ("a".into(), Some("2".into())));
        // The same etag with other content: rewritten all the same.
        let changed = parse(Kind::Calendar, r#"{"id":"a","etag":"2","subject":"changed"}"#);
        let stats = put(store, &key(), &c, PageRecords::Upserts(vec![changed]), now()).unwrap();
        assert_eq!((stats.upserted, stats.unchanged), (1, 0));
        assert_eq!(store.events("work").unwrap()[0].subject.as_deref(), Some("changed"));
    });
}

#[test]
fn deletes_sweeps_and_purges_remove_rows() {
    on_each_backend("deletes_sweeps_and_purges_remove_rows", |store| {
        let rows = vec![row("a", "1"), row("b", "1"), row("c", "1")];
        put(store, &key(), &commit(state(1, None)), PageRecords::Upserts(rows), now()).unwrap();
        // A new generation sees only a and b, then sweeps.
        put(store, &key(), &commit(state(2, None)), PageRecords::Upserts(vec![row("a", "1"), row("b", "1")]), now())
            .unwrap();
        assert_eq!(ids(store).len(), 3, "nothing is removed before the sweep");
        let sweep = Commit { sweep: Some(Sweep { below: 2, window: None }), ..commit(state(2, None)) };
        let stats = put(store, &key(), &sweep, PageRecords::None, now()).unwrap();
        assert_eq!(stats.swept, 1);
        let stats =
            put(store, &key(), &commit(state(2, None)), PageRecords::Deletes(vec!["a".into(), "zz".into()]), now())
                .unwrap();
        assert_eq!(stats.deleted, 1, "an id never seen deletes nothing");
        assert_eq!(ids(store), vec![("b".into(), Some("1".into()))]);
        let purge = Commit { purge: true, ..commit(state(2, None)) };
        put(store, &key(), &purge, PageRecords::None, now()).unwrap();
        assert!(ids(store).is_empty());
    });
}

#[test]
fn outcomes_count_consecutive_failures_and_a_success_resets_them() {
    on_each_backend("outcomes_count_consecutive_failures_and_a_success_resets_them", |store| {
        record_outcome(store, Some(("transient", "HTTP 503"))).unwrap();
        record_outcome(store, Some(("transient", "HTTP 503"))).unwrap();
        let report = store.report().unwrap();
        assert_eq!(report.collections[0].consecutive_failures, 2);
        assert_eq!(report.collections[0].last_error.as_deref(), Some("HTTP 503"));
        record_outcome(store, None).unwrap();
        let report = store.report().unwrap();
        assert_eq!(report.collections[0].consecutive_failures, 0);
        assert_eq!(report.collections[0].last_error, None);
        assert!(report.collections[0].last_success_at.is_some());
    });
}

#[test]
fn messages_without_etags_are_rewritten_only_when_their_json_changes() {
    on_each_backend("messages_without_etags_are_rewritten_only_when_their_json_changes", |store| {
        let key = CollectionKey::account_wide("work", Kind::Email);
        let c = commit(state(1, None));
        let m1 = parse(Kind::Email, r#"{"id":"m1","subject":"Hi","sysLabels":["unread"]}"#);
        let m1_read = parse(Kind::Email, r#"{"id":"m1","subject":"Hi","sysLabels":[]}"#);
        put(store, &key, &c, PageRecords::Upserts(vec![m1.clone()]), now()).unwrap();
        let stats = put(store, &key, &c, PageRecords::Upserts(vec![m1]), now()).unwrap();
        assert_eq!((stats.upserted, stats.unchanged), (0, 1));
        let stats = put(store, &key, &c, PageRecords::Upserts(vec![m1_read]), now()).unwrap();
        assert_eq!((stats.upserted, stats.unchanged), (1, 0));
        let stored = store.records("work", Kind::Email).unwrap();
        assert_eq!(stored.len(), 1);
        // PostgreSQL's jsonb keeps the JSON, not its spacing.
        let raw: serde_json::Value = serde_json::from_str(&stored[0].raw).unwrap();
        assert_eq!(raw["sysLabels"], serde_json::json!([]));
        let stats = put(store, &key, &c, PageRecords::Deletes(vec!["m1".into()]), now()).unwrap();
        assert_eq!(stats.deleted, 1);
        assert!(store.records("work", Kind::Email).unwrap().is_empty());
    });
}

#[test]
fn kinds_keep_to_their_own_tables_and_sweeps() {
    on_each_backend("kinds_keep_to_their_own_tables_and_sweeps", |store| {
        let contacts = CollectionKey::account_wide("work", Kind::Contacts);
        let c1 = parse(Kind::Contacts, r#"{"id":"c1","etag":"1","name":{"displayName":"Ann"}}"#);
        put(store, &contacts, &commit(state(1, None)), PageRecords::Upserts(vec![c1]), now()).unwrap();
        put(store, &key(), &commit(state(1, None)), PageRecords::Upserts(vec![row("c1", "1")]), now()).unwrap();
        // A sweep of the contacts' next generation leaves the calendar alone.
        let sweep = Commit { sweep: Some(Sweep { below: 2, window: None }), ..commit(state(2, None)) };
        assert_eq!(put(store, &contacts, &sweep, PageRecords::None, now()).unwrap().swept, 1);
        assert!(store.records("work", Kind::Contacts).unwrap().is_empty());
        assert_eq!(store.records("work", Kind::Calendar).unwrap().len(), 1);
        let report = store.report().unwrap();
        let counts: Vec<(String, i64)> = report.collections.iter().map(|c| (c.kind.clone(), c.records)).collect();
        assert_eq!(counts, vec![("calendar".to_string(), 1), ("contacts".to_string(), 0)]);
    });
}

/// The sweep ending a reconciling pass removes only rows the new initial
/// pass could have returned: inside the window, not within a day of its
/// edges, with readable times. `state` counts the rows wholly outside.
#[test]
fn a_sweep_removes_only_rows_inside_the_provisioned_window() {
    on_each_backend("a_sweep_removes_only_rows_inside_the_provisioned_window", |store| {
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
        put(store, &key(), &commit(state(1, None)), PageRecords::Upserts(rows), now()).unwrap();
        let window = Window::around(now(), 30, 365);
        let sweep = Commit { sweep: Some(Sweep { below: 2, window: Some(window) }), ..commit(state(2, None)) };
        assert_eq!(put(store, &key(), &sweep, PageRecords::None, now()).unwrap().swept, 3);
        let kept: Vec<String> = ids(store).into_iter().map(|(id, _)| id).collect();
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
        put(store, &email, &commit(mail_state(1)), PageRecords::Upserts(messages), now()).unwrap();
        let sweep = Commit { sweep: Some(Sweep { below: 2, window: Some(mail_window) }), ..commit(mail_state(2)) };
        assert_eq!(put(store, &email, &sweep, PageRecords::None, now()).unwrap().swept, 2);
        let kept: Vec<String> = store.records("work", Kind::Email).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(kept, ["old", "undated"]);
        let report = store.report().unwrap();
        let mail = report.collections.iter().find(|c| c.kind == "email").unwrap();
        assert_eq!(mail.outside_window, Some(1), "older than the cutoff");
    });
}

/// Tasks: a task list's initial pass covers every open task and those
/// completed after `skipCompletedBeforeDate`; the sweep keeps the tasks
/// completed before it, and `state` counts them as outside.
#[test]
fn a_task_sweep_keeps_tasks_completed_before_the_skip_date() {
    on_each_backend("a_task_sweep_keeps_tasks_completed_before_the_skip_date", |store| {
        let list = CollectionKey::listed("work", Kind::Tasks, "list-1");
        let task = |id: &str, completed: Option<&str>| {
            let completed =
                completed.map(|t| format!(r#","status":"completed","completed":"{t}""#)).unwrap_or_default();
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
        put(store, &list, &commit(tasks_state(1)), PageRecords::Upserts(tasks), now()).unwrap();
        let sweep = Commit { sweep: Some(Sweep { below: 2, window: Some(window) }), ..commit(tasks_state(2)) };
        assert_eq!(put(store, &list, &sweep, PageRecords::None, now()).unwrap().swept, 2, "open and done-recently");
        let kept: Vec<String> = store.records("work", Kind::Tasks).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(kept, ["done-long-ago", "done-near-the-cutoff", "done-oddly"]);
        let report = store.report().unwrap();
        let tasks = report.collections.iter().find(|c| c.kind == "tasks").unwrap();
        assert_eq!(tasks.outside_window, Some(1), "completed before the cutoff");
        // `tasks = true`: no window, every task the new pass did not see goes.
        let everything = Commit { sweep: Some(Sweep { below: 3, window: None }), ..commit(tasks_state(3)) };
        assert_eq!(put(store, &list, &everything, PageRecords::None, now()).unwrap().swept, 3);
    });
}

fn calendar(id: &str, primary: bool) -> crate::model::Calendar {
    crate::model::Calendar {
        id: id.into(),
        name: Some(format!("Calendar {id}")),
        primary,
        access_role: Some("owner".into()),
        raw: format!(r#"{{"id":"{id}"}}"#),
    }
}

/// Discovery's lists, account health, account ids and subscriptions: what
/// the daemon writes besides pages, read back the same way from each store.
#[test]
fn bookkeeping_changes_read_back_alike() {
    on_each_backend("bookkeeping_changes_read_back_alike", |store| {
        let at = |s: i64| now() + chrono::Duration::seconds(s);
        let apply = |change: Change, s: i64| store.apply_change(&change, at(s)).unwrap();
        let calendars = vec![calendar("cal-1", false), calendar("cal-2", true)];
        assert!(apply(Change::Calendars { account: "work".into(), calendars }, 0));
        assert_eq!(store.aliased("work", Kind::Calendar).unwrap().as_deref(), Some("cal-2"));
        let lists = vec![crate::model::TaskList {
            id: "list-1".into(),
            title: Some("Errands".into()),
            default_list: true,
            raw: r#"{"id":"list-1"}"#.into(),
        }];
        apply(Change::TaskLists { account: "work".into(), lists }, 0);
        assert_eq!(store.aliased("work", Kind::Tasks).unwrap().as_deref(), Some("list-1"));
        let folder = |id: &str| crate::model::EmailFolder {
            id: id.into(),
            name: Some(id.into()),
            full_name: None,
            is_folder: Some(true),
            is_label: None,
            parent_id: None,
            sys_label: Some("inbox".into()),
            raw: format!(r#"{{"id":"{id}","name":"a\u0000b"}}"#),
        };
        apply(Change::Folders { account: "work".into(), folders: vec![folder("f1"), folder("f2")] }, 0);
        apply(Change::Folders { account: "work".into(), folders: vec![folder("f1")] }, 1);

        // A discovery failure streak keeps its start and counts; a success ends it.
        let failure = |m: &str| Some((ErrorClass::Transient, m.to_string()));
        apply(Change::Discovery { account: "work".into(), failure: failure("cannot connect") }, 0);
        apply(Change::Discovery { account: "work".into(), failure: failure("HTTP 503") }, 60);
        let account = || store.report().unwrap().accounts.into_iter().find(|a| a.name == "work").unwrap();
        let a = account();
        assert_eq!((a.discovery_error.as_deref(), a.discovery_failures), (Some("HTTP 503"), 2));
        assert_eq!(a.discovery_failing_since, Some(write::timestamp(at(0))));
        apply(Change::Discovery { account: "work".into(), failure: None }, 120);
        let a = account();
        assert_eq!((a.discovery_error, a.discovery_failing_since, a.discovery_failures), (None, None, 0));
        assert_eq!(a.discovery_success_at, Some(write::timestamp(at(120))));

        // A refused token, kept from its first sighting, then cleared.
        apply(Change::AccountAuth { account: "work".into(), error: Some("HTTP 401".into()) }, 0);
        apply(Change::AccountAuth { account: "work".into(), error: Some("HTTP 401 again".into()) }, 30);
        let a = account();
        assert_eq!((a.auth_error.as_deref(), a.auth_error_at), (Some("HTTP 401 again"), Some(write::timestamp(at(0)))));
        apply(Change::AccountAuth { account: "work".into(), error: None }, 60);
        assert_eq!(account().auth_error, None);

        apply(Change::AccountId { account: "work".into(), aurinko_id: 77 }, 0);
        assert_eq!(store.account_for_id(77).unwrap().as_deref(), Some("work"));
        assert_eq!(store.account_for_id(78).unwrap(), None);

        // Subscriptions replace what was known; lifecycle events change one.
        let key = CollectionKey::calendar("work", "cal-2");
        put(store, &key, &commit(state(1, None)), PageRecords::None, now()).unwrap();
        let subscription = |id: i64| StoredSubscription {
            id,
            resource: "/calendars/cal-2/events".into(),
            key: key.clone(),
            notification_url: "https://example.test/hook".into(),
            active: true,
            fail_since: None,
            fail_description: None,
        };
        let subscriptions = vec![subscription(5), subscription(6)];
        apply(Change::Subscriptions { account: "work".into(), aurinko_id: 78, subscriptions }, 0);
        assert_eq!(store.account_for_id(78).unwrap().as_deref(), Some("work"), "the id comes with them");
        apply(
            Change::Subscriptions { account: "work".into(), aurinko_id: 78, subscriptions: vec![subscription(6)] },
            1,
        );
        let lifecycle = |id: i64, event: &str| Change::Lifecycle {
            account: "work".into(),
            subscription: id,
            event: event.into(),
            error: Some("delivery failed".into()),
        };
        assert!(!apply(lifecycle(5, "error"), 2), "subscription 5 was replaced");
        assert!(apply(lifecycle(6, "error"), 2));
        let report = store.report().unwrap();
        let cal = report.collections.iter().find(|c| c.id == "cal-2").unwrap();
        assert_eq!(cal.name.as_deref(), Some("Calendar cal-2"));
        assert_eq!(
            (cal.subscription_id, cal.subscription_status.as_deref()),
            (Some(6), Some("error: delivery failed"))
        );
    });
}

/// `resync` marks collections and counts requests; `reset` drops an
/// account's data, keeping a configured account's collections to start over.
#[test]
fn resync_and_reset_do_the_same_on_each_store() {
    on_each_backend("resync_and_reset_do_the_same_on_each_store", |store| {
        let work = key();
        let home = CollectionKey::calendar("home", "cal-9");
        for k in [&work, &home] {
            put(store, k, &commit(state(3, Some("P"))), PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
        }
        let filter = ResyncFilter { account: Some("work".into()), ..ResyncFilter::default() };
        assert_eq!(store.request_resync(&filter, now()).unwrap(), vec![work.clone()]);
        assert_eq!(store.resync_requested(&work).unwrap(), 1);
        assert_eq!(store.resync_requested(&home).unwrap(), 0);
        let everything = store.request_resync(&ResyncFilter::default(), now()).unwrap();
        assert_eq!(everything, vec![home.clone(), work.clone()]);

        let rows = store.account_rows("work", true).unwrap();
        assert_eq!(
            (rows.tables.iter().find(|(t, _)| *t == "events").map(|(_, n)| *n), rows.collections_reset),
            (Some(1), 1)
        );
        store.reset_account("work", true, now()).unwrap();
        let fresh = store.load_state(&work).unwrap().expect("a configured account's collection stays");
        assert_eq!((fresh.phase, fresh.updated.delta_token, fresh.generation), (Phase::New, None, 3));
        assert_eq!(store.resync_requested(&work).unwrap(), 3, "a reset is a resync request too");
        assert!(store.events("work").unwrap().is_empty());

        store.reset_account("home", false, now()).unwrap();
        assert_eq!(store.load_state(&home).unwrap(), None, "nothing stays of an account no longer configured");
        assert!(store.account_rows("home", false).unwrap().is_empty());
        assert_eq!(store.events("work").unwrap().len() + store.events("home").unwrap().len(), 0);
    });
}

/// Odd but valid JSON: a NUL, lone surrogate halves, a proper pair, keys
/// that differ only by escapes. Every store keeps the record (PostgreSQL
/// with U+FFFD where it refuses a character), and etags still skip it.
#[test]
fn records_with_odd_escapes_are_kept() {
    on_each_backend("records_with_odd_escapes_are_kept", |store| {
        let odd = r#"{"id":"odd","etag":"1","subject":"nul \u0000 half \ud800 other \udc00 pair \ud83d\ude00","k\u0000":true}"#;
        let rows = vec![parse(Kind::Calendar, odd), row("plain", "1")];
        let c = commit(state(1, None));
        assert_eq!(put(store, &key(), &c, PageRecords::Upserts(rows), now()).unwrap().upserted, 2);
        let again = put(store, &key(), &c, PageRecords::Upserts(vec![parse(Kind::Calendar, odd)]), now()).unwrap();
        assert_eq!((again.upserted, again.unchanged), (0, 1));
        let stored = store.records("work", Kind::Calendar).unwrap();
        assert_eq!(stored.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["odd", "plain"]);
        assert!(stored[0].raw.contains("pair"), "{}", stored[0].raw);
    });
}

/// `event_instances`, written page by page as a sync would: a weekly
/// series in New York across the end of daylight saving (window from
/// 2026-10-28 12:00Z, so its first two weeks lie before it), a moved and a
/// cancelled occurrence in a later page, a single and an all-day event.
#[test]
fn recurring_series_become_instances_that_follow_their_exceptions() {
    on_each_backend("recurring_series_become_instances_that_follow_their_exceptions", |store| {
        let c = commit(state(1, None));
        let zone = r#""timezone":"America/New_York""#;
        let master = parse(
            Kind::Calendar,
            &format!(
                r#"{{"id":"m1","etag":"1","recurrenceType":"master","subject":"Weekly",
                "start":{{"dateTime":"2026-10-20T10:00:00-04:00",{zone}}},"end":{{"dateTime":"2026-10-20T10:30:00-04:00",{zone}}},
                "recurrence":{{"ical":{{"rules":["RRULE:FREQ=WEEKLY;COUNT=6"]}}}}}}"#
            ),
        );
        let single = event("s1", Some(("2026-11-28T09:00:00Z", "2026-11-28T10:00:00Z")));
        let all_day = event("d1", Some(("2026-12-01", "2026-12-02")));
        put(store, &key(), &c, PageRecords::Upserts(vec![master, single, all_day]), now()).unwrap();
        let seen = |store: &dyn Backend| -> Vec<(String, String, Option<String>, bool)> {
            store
                .instances("work")
                .unwrap()
                .into_iter()
                .map(|i| (i.event_id, i.start_time.unwrap_or_default(), i.start_local, i.modified))
                .collect()
        };
        let slot = |day: &str, hour: &str, local: &str| {
            (
                "m1".to_string(),
                format!("2026-11-{day}T{hour}:00:00.000Z"),
                Some(format!("2026-11-{day}T{local}")),
                false,
            )
        };
        let singles = vec![
            ("s1".to_string(), "2026-11-28T09:00:00.000Z".to_string(), Some("2026-11-28T09:00:00".to_string()), false),
            ("d1".to_string(), "2026-12-01".to_string(), Some("2026-12-01".to_string()), false),
        ];
        let mut expected = vec![
            slot("03", "15", "10:00:00"),
            slot("10", "15", "10:00:00"),
            slot("17", "15", "10:00:00"),
            slot("24", "15", "10:00:00"),
        ];
        expected.extend(singles.clone());
        assert_eq!(seen(store), expected, "the series in its zone, inside the window");

        let occurrence = |id: &str, kind: &str, original: &str, start: &str| {
            parse(
                Kind::Calendar,
                &format!(
                    r#"{{"id":"{id}","etag":"1","recurrenceType":"occurrence","subject":"Weekly",
                    "start":{{"dateTime":"{start}",{zone}}},"end":{{"dateTime":"{start}",{zone}}},
                    "occurrenceInfo":{{"type":"{kind}","masterId":"m1","originalStart":{{"dateTime":"{original}"}}}}}}"#
                ),
            )
        };
        let moved = occurrence("o1", "modified", "2026-11-10T15:00:00Z", "2026-11-11T11:00:00-05:00");
        let cancelled = occurrence("o2", "deleted", "2026-11-17T15:00:00Z", "2026-11-17T10:00:00-05:00");
        put(store, &key(), &c, PageRecords::Upserts(vec![moved, cancelled]), now()).unwrap();
        let mut expected = vec![
            slot("03", "15", "10:00:00"),
            ("o1".to_string(), "2026-11-11T16:00:00.000Z".to_string(), Some("2026-11-11T11:00:00".to_string()), true),
            slot("24", "15", "10:00:00"),
        ];
        expected.extend(singles.clone());
        assert_eq!(seen(store), expected, "the moved one in its new place, the cancelled one gone");

        // The exception deleted upstream: the rule's slot comes back.
        put(store, &key(), &c, PageRecords::Deletes(vec!["o1".into()]), now()).unwrap();
        let mut expected =
            vec![slot("03", "15", "10:00:00"), slot("10", "15", "10:00:00"), slot("24", "15", "10:00:00")];
        expected.extend(singles.clone());
        assert_eq!(seen(store), expected);

        // The master deleted: none of its slots stay.
        put(store, &key(), &c, PageRecords::Deletes(vec!["m1".into()]), now()).unwrap();
        assert_eq!(seen(store), singles);

        // A reconciling pass that sees only the master again sweeps the
        // rest, and the master's slots are back without the cancelled one's
        // record.
        let master_again = parse(
            Kind::Calendar,
            &format!(
                r#"{{"id":"m1","etag":"2","recurrenceType":"master","subject":"Weekly",
                "start":{{"dateTime":"2026-10-20T10:00:00-04:00",{zone}}},"end":{{"dateTime":"2026-10-20T10:30:00-04:00",{zone}}},
                "recurrence":{{"ical":{{"rules":["RRULE:FREQ=WEEKLY;COUNT=6"]}}}}}}"#
            ),
        );
        let next = commit(state(2, None));
        put(store, &key(), &next, PageRecords::Upserts(vec![master_again]), now()).unwrap();
        let sweep = Commit { sweep: Some(Sweep { below: 2, window: None }), ..next.clone() };
        put(store, &key(), &sweep, PageRecords::None, now()).unwrap();
        assert_eq!(
            seen(store),
            vec![
                slot("03", "15", "10:00:00"),
                slot("10", "15", "10:00:00"),
                slot("17", "15", "10:00:00"),
                slot("24", "15", "10:00:00")
            ]
        );

        let purge = Commit { purge: true, ..next };
        put(store, &key(), &purge, PageRecords::None, now()).unwrap();
        assert!(seen(store).is_empty());
    });
}

/// `sync.keep_deleted`: deletions, sweeps and purges mark rows instead of
/// removing them; reads and views leave marked rows out; a record that
/// comes back, even unchanged, is live again. `marked` counts the events
/// the store holds marked.
fn keeping_deleted(store: &dyn Backend, marked: &dyn Fn() -> (i64, i64)) {
    let master = parse(
        Kind::Calendar,
        r#"{"id":"m1","etag":"1","recurrenceType":"master","start":{"dateTime":"2026-12-01T09:00:00Z"},
            "end":{"dateTime":"2026-12-01T10:00:00Z"},"recurrence":{"ical":{"rules":["RRULE:FREQ=DAILY;COUNT=3"]}}}"#,
    );
    let first = commit(state(1, None));
    let rows = vec![row("a", "1"), row("b", "1"), row("c", "1"), master];
    put(store, &key(), &first, PageRecords::Upserts(rows), now()).unwrap();
    let instances = |store: &dyn Backend| store.instances("work").unwrap().len();
    assert_eq!(instances(store), 3 + 3);

    let stats = put(store, &key(), &first, PageRecords::Deletes(vec!["a".into()]), now()).unwrap();
    assert_eq!(stats.deleted, 1);
    let live = |store: &dyn Backend| ids(store).into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(live(store), ["b", "c", "m1"]);
    assert_eq!(marked(), (1, 4), "(marked, rows): a stays, marked");
    assert_eq!(instances(store), 2 + 3);

    // Back, unchanged: live again.
    let stats = put(store, &key(), &first, PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
    assert_eq!(stats.upserted, 1);
    assert_eq!(live(store), ["a", "b", "c", "m1"]);
    assert_eq!(marked(), (0, 4));

    put(store, &key(), &first, PageRecords::Deletes(vec!["m1".into()]), now()).unwrap();
    assert_eq!(instances(store), 3, "a marked master's slots are gone");

    // A reconciling pass that saw only b marks a and c (m1 already is).
    let second = commit(state(2, None));
    put(store, &key(), &second, PageRecords::Upserts(vec![row("b", "1")]), now()).unwrap();
    let sweep = Commit { sweep: Some(Sweep { below: 2, window: None }), ..second.clone() };
    let stats = put(store, &key(), &sweep, PageRecords::None, now()).unwrap();
    assert_eq!(stats.swept, 2);
    assert_eq!(live(store), ["b"]);
    assert_eq!(marked(), (3, 4));

    let purge = Commit { purge: true, ..second };
    let stats = put(store, &key(), &purge, PageRecords::None, now()).unwrap();
    assert_eq!(stats.swept, 1);
    assert!(live(store).is_empty() && instances(store) == 0);
    assert_eq!(marked(), (4, 4), "nothing was removed");
    assert_eq!(store.report().unwrap().collections.iter().map(|c| c.records).sum::<i64>(), 0, "state counts live rows");
}

#[test]
fn with_keep_deleted_rows_are_marked_not_removed_and_reads_leave_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let sqlite = Store::open(&path).unwrap().keeping_deleted(true);
    let read = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { read.query_row(sql, [], |r| r.get(0)).unwrap() };
    let marked =
        || (count("SELECT count(*) FROM events WHERE deleted_at IS NOT NULL"), count("SELECT count(*) FROM events"));
    keeping_deleted(&sqlite, &marked);
    let name = "with_keep_deleted_rows_are_marked_not_removed_and_reads_leave_them_out";
    if let Some(server) = PrivatePostgres::start(name) {
        let pg = Postgres::open(&server.url(), None, "public").unwrap().keeping_deleted(true);
        let count = |sql: &str| -> i64 { server.psql(sql).parse().unwrap() };
        let marked = || {
            (count("SELECT count(*) FROM events WHERE deleted_at IS NOT NULL"), count("SELECT count(*) FROM events"))
        };
        keeping_deleted(&pg, &marked);
    }
}

/// Runs: stored with their collections, read back newest first with the
/// collections' counts added up and the failed ones named; a run older
/// than `keep_days` goes when a newer one is stored.
#[test]
fn runs_are_kept_for_their_days_and_read_back_alike() {
    use crate::model::{PassOutcome, RunCollection, RunMode, RunRecord};
    on_each_backend("runs_are_kept_for_their_days_and_read_back_alike", |store| {
        let collection = |id: &str, upserted: u64, outcome: PassOutcome, error: Option<&str>| RunCollection {
            key: CollectionKey::calendar("work", id),
            passes: 1,
            upserted,
            deleted: 1,
            swept: 0,
            pages: 2,
            requests: 3,
            outcome,
            error: error.map(str::to_string),
        };
        let run = |days_ago: i64, collections: Vec<RunCollection>| RunRecord {
            mode: RunMode::CatchUp,
            instance: None,
            started: now() - chrono::Duration::days(days_ago) - chrono::Duration::seconds(5),
            ended: now() - chrono::Duration::days(days_ago),
            passes: collections.len() as u64 + 1,
            pages: 9,
            requests: 11,
            collections,
            keep_days: 30,
        };
        let old = run(40, vec![collection("cal-1", 7, PassOutcome::Ok, None)]);
        assert!(store.apply_change(&Change::Run(old), now()).unwrap());
        assert_eq!(store.runs(10).unwrap().len(), 1);
        let new = run(
            0,
            vec![
                collection("cal-1", 5, PassOutcome::Ok, None),
                collection("cal-2", 0, PassOutcome::Failed, Some("boom")),
            ],
        );
        store.apply_change(&Change::Run(new), now()).unwrap();
        let runs = store.runs(10).unwrap();
        assert_eq!(runs.len(), 1, "the 40-day-old run went: {runs:?}");
        let r = &runs[0];
        assert_eq!(
            (r.mode.as_str(), r.outcome.as_str(), r.passes, r.pages, r.requests),
            ("catch-up", "failed", 3, 9, 11)
        );
        assert_eq!((r.collections, r.upserted, r.deleted, r.swept), (2, 5, 2, 0));
        assert_eq!(r.ended_at, "2026-11-27T12:00:00Z");
        assert_eq!(r.started_at, "2026-11-27T11:59:55Z");
        assert_eq!(r.failed, vec![("work".into(), "calendar".into(), "cal-2".into(), Some("boom".into()))]);
    });
}
