//! What only PostgreSQL has: migrations shared by instances, a schema of
//! its own, typed columns, a server that goes away and comes back.

use std::sync::Arc;

use private_postgres::PrivatePostgres;

use super::super::conformance::{commit, key, now, put, record_outcome, row, state};
use super::super::{Backend, PageRecords};
use super::Postgres;
use crate::model::ErrorClass;

#[test]
fn instances_opening_together_migrate_once() {
    let Some(server) = PrivatePostgres::start("instances_opening_together_migrate_once") else { return };
    let url = Arc::new(server.url());
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Postgres::open(&url, None, "public").map(drop))
        })
        .collect();
    for handle in opened {
        handle.join().unwrap().unwrap();
    }
    // Each migration once.
    let versions = server.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM public.schema_migrations");
    assert_eq!(versions, (1..=super::MIGRATIONS.len()).map(|v| v.to_string()).collect::<Vec<_>>().join(","));
}

#[test]
fn the_tables_live_in_the_configured_schema_with_typed_columns() {
    let Some(server) = PrivatePostgres::start("the_tables_live_in_the_configured_schema_with_typed_columns") else {
        return;
    };
    server.psql("CREATE TABLE public.events (mine text)");
    let store = Postgres::open(&server.url(), None, "sync").unwrap();
    put(&store, &key(), &commit(state(1, None)), PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
    let types = server.psql(
        "SELECT column_name || ' ' || data_type FROM information_schema.columns
         WHERE table_schema = 'sync' AND table_name = 'events'
           AND column_name IN ('raw', 'start_time', 'all_day', 'generation') ORDER BY column_name",
    );
    assert_eq!(types, "all_day boolean\ngeneration bigint\nraw jsonb\nstart_time timestamp with time zone");
    assert_eq!(server.psql("SELECT raw->>'subject' FROM sync.events"), "subject a", "queryable in place");
    assert_eq!(server.psql("SELECT count(*) FROM public.events"), "0", "the application's table is left alone");
}

#[test]
fn reading_only_refuses_a_schema_without_a_store_and_never_writes() {
    let Some(server) = PrivatePostgres::start("reading_only_refuses_a_schema_without_a_store_and_never_writes") else {
        return;
    };
    let err = Postgres::open_read_only(&server.url(), None, "public").err().expect("refused").to_string();
    assert!(err.contains("holds no aurinko-sync store"), "{err}");
    assert_eq!(server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0", "nothing created");
    let writer = Postgres::open(&server.url(), None, "public").unwrap();
    put(&writer, &key(), &commit(state(1, None)), PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
    let reader = Postgres::open_read_only(&server.url(), None, "public").unwrap();
    assert_eq!(reader.report().unwrap().collections[0].records, 1);
    let refused = record_outcome(&reader, None).expect_err("a read-only store takes no write");
    assert_eq!(refused.class(), ErrorClass::Permanent, "{refused}");
}

#[test]
fn a_schema_of_a_newer_aurinko_sync_is_refused() {
    let Some(server) = PrivatePostgres::start("a_schema_of_a_newer_aurinko_sync_is_refused") else { return };
    drop(Postgres::open(&server.url(), None, "public").unwrap());
    server.psql("INSERT INTO public.schema_migrations (version) VALUES (999)");
    for opened in
        [Postgres::open(&server.url(), None, "public"), Postgres::open_read_only(&server.url(), None, "public")]
    {
        let err = opened.err().expect("refused").to_string();
        assert!(err.contains("newer aurinko-sync"), "{err}");
    }
}

/// A database that goes away fails the store's calls as transient, and the
/// store reconnects once it is back: nothing to restart.
#[test]
fn a_lost_server_is_transient_and_the_store_reconnects() {
    let Some(server) = PrivatePostgres::start("a_lost_server_is_transient_and_the_store_reconnects") else { return };
    let store = Postgres::open(&server.url(), None, "public").unwrap();
    put(&store, &key(), &commit(state(1, Some("P1"))), PageRecords::Upserts(vec![row("a", "1")]), now()).unwrap();
    server.stop();
    let lost = put(&store, &key(), &commit(state(1, Some("P2"))), PageRecords::None, now()).expect_err("no server");
    assert_eq!(lost.class(), ErrorClass::Transient, "{lost}");
    assert_eq!(store.check_writable().err().map(|e| e.class()), Some(ErrorClass::Transient));
    server.restart();
    put(&store, &key(), &commit(state(1, Some("P2"))), PageRecords::None, now()).unwrap();
    assert_eq!(store.load_state(&key()).unwrap().unwrap().updated.page_token.as_deref(), Some("P2"));
}

#[test]
fn a_password_is_sent_and_never_shown() {
    let Some(server) = PrivatePostgres::start("a_password_is_sent_and_never_shown") else { return };
    server.psql("CREATE ROLE sync LOGIN PASSWORD 'hunter2-secret'");
    server.psql("GRANT CREATE ON DATABASE postgres TO sync");
    // The private server trusts everyone; `sync` must give its password.
    let hba = server.psql("SHOW hba_file");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all sync 127.0.0.1/32 scram-sha-256\n{rules}")).unwrap();
    server.psql("SELECT pg_reload_conf()");
    let url = server.url().replace("postgres@", "sync@");
    let refused = Postgres::open(&url, Some("wrong-hunter3"), "mine").err().expect("a wrong password is refused");
    let message = refused.to_string();
    assert!(message.contains("password authentication failed"), "{message}");
    assert!(!message.contains("hunter"), "{message}");
    assert_eq!(refused.class(), ErrorClass::Permanent, "{message}");
    let store = Postgres::open(&url, Some("hunter2-secret"), "mine").unwrap();
    store.check_writable().unwrap();
}

/// "The same tables and columns": every table of a fresh SQLite store has
/// its twin in PostgreSQL, column for column, and nothing more; views too.
#[test]
fn the_tables_and_columns_are_sqlites() {
    let Some(server) = PrivatePostgres::start("the_tables_and_columns_are_sqlites") else { return };
    drop(Postgres::open(&server.url(), None, "public").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    drop(super::super::Store::open(&dir.path().join("s.db")).unwrap());
    let mut columns: Vec<String> = sqlite
        .prepare(
            "SELECT m.name || '.' || c.name FROM sqlite_master m, pragma_table_info(m.name) c
             WHERE m.type IN ('table', 'view') ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    columns.sort();
    let mut pg: Vec<String> = server
        .psql(
            "SELECT table_name || '.' || column_name FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name != 'schema_migrations'
               AND table_name NOT LIKE 'fleet\\_%'",
        )
        .lines()
        .map(str::to_string)
        .collect();
    pg.sort();
    assert_eq!(pg, columns);
}

/// `sslmode=require` means TLS with a certificate the system trusts: a
/// server without TLS is refused, and so is one whose certificate nobody
/// vouches for (self-signed); never a silent plain connection.
#[test]
fn tls_is_required_and_verified_when_the_url_asks_for_it() {
    let Some(server) = PrivatePostgres::start("tls_is_required_and_verified_when_the_url_asks_for_it") else { return };
    let url = format!("{}?sslmode=require", server.url());
    let plain = Postgres::open(&url, None, "public").err().expect("no TLS on the server").to_string();
    assert!(plain.contains("TLS") || plain.contains("SSL"), "{plain}");

    let data = server.psql("SHOW data_directory");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-keyout", &format!("{data}/server.key"), "-out", &format!("{data}/server.crt")])
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let owned = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "chmod 600 {data}/server.key && if [ \"$(id -u)\" = 0 ]; then chown postgres: {data}/server.key {data}/server.crt; fi"
        ))
        .status()
        .expect("sh runs");
    assert!(owned.success());
    server.psql("ALTER SYSTEM SET ssl = on");
    server.psql("SELECT pg_reload_conf()");
    let untrusted = Postgres::open(&url, None, "public").err().expect("a self-signed certificate").to_string();
    assert!(untrusted.to_lowercase().contains("certificate"), "{untrusted}");
    // Asking for no TLS still connects, in plain text, as asked.
    Postgres::open(&format!("{}?sslmode=disable", server.url()), None, "public").unwrap();
}

/// A server reached through its Unix socket: the socket's directory as the
/// URL's host, percent-encoded, as libpq and tokio-postgres take it.
#[test]
fn a_unix_socket_url_connects() {
    let Some(server) = PrivatePostgres::start("a_unix_socket_url_connects") else { return };
    let dir = server.socket_dir().display().to_string().replace('/', "%2F");
    let url = format!("postgresql://postgres@{dir}:{}/postgres", server.port());
    let store = Postgres::open(&url, None, "public").unwrap();
    store.check_writable().unwrap();
}

/// Fencing: a commit under a lease that another instance has taken over is
/// refused in its transaction, and its account reported lost; a commit in
/// flight when the lease expires holds the takeover off until it ends, so it
/// never lands after it.
#[test]
fn a_commit_under_a_lease_taken_over_is_refused() {
    use super::super::{Fences, Fleet, StoreError, Write};

    let Some(server) = PrivatePostgres::start("a_commit_under_a_lease_taken_over_is_refused") else { return };
    let lease = std::time::Duration::from_secs(1);
    let join = |instance: &str| {
        let store = Postgres::open(&server.url(), None, "public").unwrap();
        let (fences, lost) = Fences::new(instance);
        store.join_fleet(Arc::new(fences)).unwrap().register("host", 1, "test", lease).unwrap();
        (store, lost)
    };
    fn fleet(s: &Postgres) -> &dyn Fleet {
        s
    }
    let (a, mut a_lost) = join("a");
    let (b, _) = join("b");
    let account = vec![key().account.clone()];
    fleet(&a).add_accounts(&account).unwrap();
    let page = |token: &str| commit(state(1, Some(token)));
    let epoch = || server.psql("SELECT coalesce(lease_epoch::text, '-') FROM sync_state");

    // A second process under a live id is refused.
    let (c, _) = Fences::new("a");
    let other = Postgres::open(&server.url(), None, "public").unwrap();
    let err = other.join_fleet(Arc::new(c)).unwrap().register("host", 2, "test", lease).unwrap_err();
    assert!(err.to_string().contains("instance id a is in use"), "{err}");

    assert_eq!(fleet(&a).claim(&account, 1, lease).unwrap(), vec![(account[0].clone(), 1)]);
    assert_eq!(fleet(&b).claim(&account, 1, lease).unwrap(), vec![], "held by a");
    put(&a, &key(), &page("p1"), PageRecords::Upserts(vec![row("e1", "v1")]), now()).unwrap();
    assert_eq!(epoch(), "1");

    // A's commit is open (its lease row locked) when the lease expires: b
    // cannot take the account over until it ends.
    let mut open = a.begin(now()).unwrap();
    let write = Write {
        key: key(),
        commit: Some(page("p2")),
        records: PageRecords::Upserts(vec![row("e2", "v1")]),
        outcome: None,
    };
    open.apply(&write).unwrap();
    let expired = || server.psql("SELECT (expires_at < now())::text FROM fleet_leases") == "true";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !expired() {
        assert!(std::time::Instant::now() < deadline, "the lease expires");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(fleet(&b).claim(&account, 1, lease).unwrap(), vec![], "skipped while a commits under it");
    open.commit().unwrap();
    assert_eq!(fleet(&b).claim(&account, 1, lease).unwrap(), vec![(account[0].clone(), 2)]);

    // Now a's commits are refused, in the batch and alone, and the account
    // is reported lost; b's go through.
    let mut open = a.begin(now()).unwrap();
    let err = open.apply(&write).unwrap_err();
    assert!(matches!(err, StoreError::Fenced(ref account) if account == "work"), "{err}");
    drop(open);
    assert_eq!(a_lost.try_recv().unwrap(), "work");
    let err = put(&a, &key(), &page("p3"), PageRecords::Upserts(vec![row("e3", "v1")]), now()).unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    assert_eq!(server.psql("SELECT count(*) FROM events WHERE event_id = 'e3'"), "0");
    put(&b, &key(), &page("p4"), PageRecords::Upserts(vec![row("e4", "v1")]), now()).unwrap();
    assert_eq!(epoch(), "2");

    // A clean stop hands the lease over at once.
    fleet(&b).leave().unwrap();
    assert_eq!(fleet(&a).claim(&account, 1, lease).unwrap(), vec![(account[0].clone(), 3)]);
    assert_eq!(server.psql("SELECT count(*) FROM fleet_instances"), "1");
}

/// A fleet instance paused in the middle of a commit (its lease rows
/// locked) does not hold the takeover off: the server ends its idle
/// transaction, and the commit fails when it wakes.
#[test]
fn a_commit_left_idle_does_not_hold_a_takeover_off() {
    use super::super::{Fences, Fleet, Write};

    let Some(server) = PrivatePostgres::start("a_commit_left_idle_does_not_hold_a_takeover_off") else { return };
    let lease = std::time::Duration::from_secs(1);
    let join = |instance: &str| {
        let idle = std::time::Duration::from_millis(300);
        let store = Postgres::open_for_fleet(&server.url(), None, "public", idle).unwrap();
        store.join_fleet(Arc::new(Fences::new(instance).0)).unwrap().register("host", 1, "test", lease).unwrap();
        store
    };
    let (a, b) = (join("a"), join("b"));
    fn fleet(s: &Postgres) -> &dyn Fleet {
        s
    }
    let account = vec![key().account.clone()];
    fleet(&a).add_accounts(&account).unwrap();
    assert_eq!(fleet(&a).claim(&account, 1, lease).unwrap().len(), 1);
    let mut open = a.begin(now()).unwrap();
    let write = Write {
        key: key(),
        commit: Some(commit(state(1, Some("p1")))),
        records: PageRecords::Upserts(vec![row("e1", "v1")]),
        outcome: None,
    };
    open.apply(&write).unwrap();
    // a sleeps with its lease row locked; b claims once the lease is out
    // and the server has ended a's transaction.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fleet(&b).claim(&account, 1, lease).unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "b takes the account over");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(open.commit().is_err(), "a's commit, ended by the server, is not stored");
    assert_eq!(server.psql("SELECT count(*) FROM events"), "0");
}

/// The child views (`event_attendees`, `message_recipients`,
/// `contact_emails`): the lists of the stored JSON as rows, entries that are
/// not objects and lists that are not arrays left out; PostgreSQL's read
/// the same as SQLite's.
#[test]
fn the_child_views_list_what_lives_in_lists_alike_on_both_stores() {
    use super::super::conformance::parse;
    use crate::model::{CollectionKey, Kind};
    let write = |store: &dyn Backend| {
        let c = commit(state(1, None));
        let events = vec![
            parse(
                Kind::Calendar,
                r#"{"id":"e1","meetingInfo":{"attendees":[
                    {"emailAddress":{"address":"ann@example.com","name":"Ann"},"response":"accepted","type":"required"},
                    {"emailAddress":{"address":"bob@example.com"},"type":"optional"},
                    "not an attendee"]}}"#,
            ),
            parse(Kind::Calendar, r#"{"id":"e2","meetingInfo":{"attendees":{"emailAddress":"not a list"}}}"#),
        ];
        put(store, &key(), &c, PageRecords::Upserts(events), now()).unwrap();
        let message = parse(
            Kind::Email,
            r#"{"id":"m1","to":[{"address":"to@example.com","name":"To"}],"cc":[{"address":"cc@example.com"},7],"bcc":"x"}"#,
        );
        let mail = CollectionKey::account_wide("work", Kind::Email);
        put(store, &mail, &c, PageRecords::Upserts(vec![message]), now()).unwrap();
        let contact = parse(
            Kind::Contacts,
            r#"{"id":"c1","etag":"1","emailAddresses":[{"address":"sam@example.com","type":"work"},{"address":"s@example.org"}]}"#,
        );
        let contacts = CollectionKey::account_wide("work", Kind::Contacts);
        put(store, &contacts, &c, PageRecords::Upserts(vec![contact]), now()).unwrap();
    };
    const QUERIES: [&str; 3] = [
        "SELECT event_id || '|' || coalesce(address, '') || '|' || coalesce(name, '') || '|' || coalesce(response, '')
           || '|' || coalesce(type, '') FROM event_attendees WHERE account = 'work' ORDER BY 1",
        "SELECT message_id || '|' || field || '|' || coalesce(address, '') || '|' || coalesce(name, '')
           FROM message_recipients WHERE account = 'work' ORDER BY 1",
        "SELECT contact_id || '|' || coalesce(address, '') || '|' || coalesce(name, '') || '|' || coalesce(type, '')
           FROM contact_emails WHERE account = 'work' ORDER BY 1",
    ];
    let dir = tempfile::tempdir().unwrap();
    let sqlite = super::super::Store::open(&dir.path().join("s.db")).unwrap();
    write(&sqlite);
    let read = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    let sqlite_rows: Vec<Vec<String>> = QUERIES
        .iter()
        .map(|q| read.prepare(q).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect())
        .collect();
    assert_eq!(
        sqlite_rows,
        [
            vec!["e1|ann@example.com|Ann|accepted|required", "e1|bob@example.com|||optional"],
            vec!["m1|cc|cc@example.com|", "m1|to|to@example.com|To"],
            vec!["c1|s@example.org||", "c1|sam@example.com||work"],
        ]
    );
    let Some(server) = PrivatePostgres::start("the_child_views_list_what_lives_in_lists_alike_on_both_stores") else {
        return;
    };
    write(&Postgres::open(&server.url(), None, "public").unwrap());
    for (query, expected) in QUERIES.iter().zip(&sqlite_rows) {
        let pg: Vec<String> = server.psql(query).lines().map(str::to_string).collect();
        assert_eq!(&pg, expected, "{query}");
    }
}
