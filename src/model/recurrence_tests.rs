//! Hand-computed cases: each expected instant was worked out from the
//! calendar and the zone's rules, not from the code.

use super::*;
use serde_json::json;

fn window(min: &str, max: &str) -> Window {
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    Window { time_min: t(min), time_max: t(max) }
}

fn wide() -> Window {
    window("2026-01-01T00:00:00Z", "2029-01-01T00:00:00Z")
}

fn starts(e: &Expansion) -> Vec<&str> {
    e.slots.iter().map(|s| s.start.as_str()).collect()
}

fn locals(e: &Expansion) -> Vec<&str> {
    e.slots.iter().map(|s| s.start_local.as_str()).collect()
}

fn none() -> BTreeSet<String> {
    BTreeSet::new()
}

#[test]
fn weekly_across_the_end_of_daylight_saving_keeps_the_wall_clock() {
    // New York leaves daylight saving on Sunday 2026-11-01: 10:00 EDT is
    // 14:00Z before, 10:00 EST is 15:00Z after.
    let master = json!({
        "id": "m", "recurrenceType": "master",
        "start": {"dateTime": "2026-10-20T10:00:00-04:00", "timezone": "America/New_York"},
        "end": {"dateTime": "2026-10-20T11:00:00-04:00", "timezone": "America/New_York"},
        "recurrence": {"ical": {"rules": ["RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=4"]}}
    });
    let e = expand(&master, &wide(), &none());
    assert_eq!(e.unreadable, None);
    assert_eq!(
        starts(&e),
        [
            "2026-10-20T14:00:00.000Z",
            "2026-10-27T14:00:00.000Z",
            "2026-11-03T15:00:00.000Z",
            "2026-11-10T15:00:00.000Z"
        ]
    );
    assert_eq!(
        locals(&e),
        ["2026-10-20T10:00:00", "2026-10-27T10:00:00", "2026-11-03T10:00:00", "2026-11-10T10:00:00"]
    );
    assert_eq!(e.slots[2].end, "2026-11-03T16:00:00.000Z");
    assert_eq!(e.slots[2].end_local, "2026-11-03T11:00:00");
    assert_eq!(e.slots[0].time_zone.as_deref(), Some("America/New_York"));
}

#[test]
fn monthly_second_tuesday_from_a_simple_pattern() {
    // Second Tuesdays of 2026: Jan 13, Feb 10, Mar 10, Apr 14. Berlin is
    // UTC+1 until Sunday 2026-03-29, UTC+2 after.
    let master = json!({
        "id": "m", "recurrenceType": "master",
        "start": {"dateTime": "2026-01-13T09:00:00+01:00", "timezone": "Europe/Berlin"},
        "end": {"dateTime": "2026-01-13T09:30:00+01:00", "timezone": "Europe/Berlin"},
        "recurrence": {"original": "simple", "simple": {
            "pattern": {"frequency": "monthlyRelative", "interval": 1, "daysOfWeek": ["tuesday"], "instance": "second"},
            "range": {"type": "byCount", "count": 4}
        }}
    });
    let e = expand(&master, &wide(), &none());
    assert_eq!(e.unreadable, None);
    assert_eq!(
        starts(&e),
        [
            "2026-01-13T08:00:00.000Z",
            "2026-02-10T08:00:00.000Z",
            "2026-03-10T08:00:00.000Z",
            "2026-04-14T07:00:00.000Z"
        ]
    );
    assert!(locals(&e).iter().all(|l| l.ends_with("T09:00:00")), "{:?}", locals(&e));
}

#[test]
fn yearly_all_day_until_a_date() {
    let master = json!({
        "id": "m", "recurrenceType": "master",
        "start": {"dateOnly": "2026-03-15"}, "end": {"dateOnly": "2026-03-16"},
        "recurrence": {"simple": {
            "pattern": {"frequency": "yearly", "interval": 1, "monthOfYear": 3, "dayOfMonth": 15},
            "range": {"type": "byDate", "recurrenceEnd": "2028-03-15"}
        }}
    });
    let e = expand(&master, &window("2026-01-01T00:00:00Z", "2031-01-01T00:00:00Z"), &none());
    assert_eq!(e.unreadable, None);
    assert_eq!(starts(&e), ["2026-03-15", "2027-03-15", "2028-03-15"]);
    assert!(e.slots.iter().all(|s| s.all_day));
    assert_eq!(e.slots[1].end, "2027-03-16");
}

#[test]
fn an_until_in_the_rule_ends_the_series_and_exdates_remove_slots() {
    let master = json!({
        "id": "m",
        "start": {"dateTime": "2026-11-03T09:00:00Z", "timezone": "UTC"},
        "end": {"dateTime": "2026-11-03T09:15:00Z", "timezone": "UTC"},
        "recurrence": {"ical": {"rules": [
            "RRULE:FREQ=DAILY;UNTIL=20261107T235959Z",
            "EXDATE:20261105T090000Z"
        ]}}
    });
    let e = expand(&master, &wide(), &none());
    assert_eq!(e.unreadable, None);
    assert_eq!(
        starts(&e),
        [
            "2026-11-03T09:00:00.000Z",
            "2026-11-04T09:00:00.000Z",
            "2026-11-06T09:00:00.000Z",
            "2026-11-07T09:00:00.000Z"
        ]
    );
}

#[test]
fn pattern_exclusions_and_exceptions_take_their_slots() {
    // Mondays and Wednesdays 08:00 UTC from Monday 2026-11-02, six times:
    // Nov 2, 4, 9, 11, 16, 18. Nov 4 is excluded by the pattern; Nov 9 was
    // moved (an exception record holds it), Nov 16 cancelled (likewise).
    let master = json!({
        "id": "m",
        "start": {"dateTime": "2026-11-02T08:00:00Z", "timezone": "Etc/UTC"},
        "end": {"dateTime": "2026-11-02T09:00:00Z", "timezone": "Etc/UTC"},
        "recurrence": {"simple": {
            "pattern": {"frequency": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"], "weekStart": "monday"},
            "range": {"type": "byCount", "count": 6, "patternExclusions": [{"dateTime": "2026-11-04T08:00:00Z"}]}
        }}
    });
    let taken: BTreeSet<String> =
        ["2026-11-09T08:00:00.000Z", "2026-11-16T08:00:00.000Z"].iter().map(|s| s.to_string()).collect();
    let e = expand(&master, &wide(), &taken);
    assert_eq!(starts(&e), ["2026-11-02T08:00:00.000Z", "2026-11-11T08:00:00.000Z", "2026-11-18T08:00:00.000Z"]);
}

#[test]
fn only_instances_overlapping_the_window_and_an_unbounded_series_stops_at_its_end() {
    // Daily 23:00-01:00 UTC, no end: the one starting the evening before
    // the window overlaps it; the window's last day's ends after it.
    let master = json!({
        "id": "m",
        "start": {"dateTime": "2026-01-01T23:00:00Z"},
        "end": {"dateTime": "2026-01-02T01:00:00Z"},
        "recurrence": {"ical": {"rules": ["FREQ=DAILY"]}}
    });
    let e = expand(&master, &window("2026-06-10T00:00:00Z", "2026-06-12T00:00:00Z"), &none());
    assert_eq!(starts(&e), ["2026-06-09T23:00:00.000Z", "2026-06-10T23:00:00.000Z", "2026-06-11T23:00:00.000Z"]);
    assert!(!e.limited);
}

#[test]
fn a_rule_without_end_at_a_high_frequency_is_bounded() {
    let master = json!({
        "id": "m",
        "start": {"dateTime": "2026-01-01T00:00:00Z"}, "end": {"dateTime": "2026-01-01T00:00:01Z"},
        "recurrence": {"ical": {"rules": ["RRULE:FREQ=SECONDLY"]}}
    });
    let e = expand(&master, &wide(), &none());
    assert_eq!(e.slots.len(), usize::from(MAX_INSTANCES));
    assert!(e.limited);
}

#[test]
fn an_unreadable_rule_leaves_the_master_once_at_its_start() {
    for recurrence in [
        json!({"ical": {"rules": ["RRULE:FREQ=NEVERLY"]}}),
        json!({"ical": {"rules": "not a list"}}),
        json!({"simple": {"pattern": {"frequency": "weekly", "daysOfWeek": ["someday"]}}}),
        json!({}),
    ] {
        let master = json!({
            "id": "m",
            "start": {"dateTime": "2026-11-03T09:00:00+02:00", "timezone": "Europe/Helsinki"},
            "end": {"dateTime": "2026-11-03T10:00:00+02:00"},
            "recurrence": recurrence
        });
        let e = expand(&master, &wide(), &none());
        assert!(e.unreadable.is_some(), "{recurrence}");
        assert_eq!(starts(&e), ["2026-11-03T07:00:00.000Z"], "{recurrence}");
        assert_eq!(locals(&e), ["2026-11-03T09:00:00"]);
    }
}

#[test]
fn local_times_of_a_single_event() {
    let event = json!({
        "start": {"dateTime": "2026-07-01T06:00:00Z", "timezone": "Asia/Tokyo"},
        "end": {"dateTime": "2026-07-01T07:30:00Z", "timezone": "Asia/Tokyo"}
    });
    let l = local_times(&event);
    assert_eq!(l.time_zone.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(l.start.as_deref(), Some("2026-07-01T15:00:00"));
    assert_eq!(l.end.as_deref(), Some("2026-07-01T16:30:00"));
    // A zone chrono-tz does not know: the time as sent, in its own offset.
    let odd = json!({"start": {"dateTime": "2026-07-01T08:00:00-07:00", "timezone": "Pacific Standard Time"}});
    let l = local_times(&odd);
    assert_eq!(l.time_zone.as_deref(), Some("Pacific Standard Time"));
    assert_eq!(l.start.as_deref(), Some("2026-07-01T08:00:00"));
    assert_eq!(l.end, None);
    let all_day = json!({"start": {"dateOnly": "2026-07-01"}, "end": {"dateOnly": "2026-07-02"}});
    assert_eq!(local_times(&all_day).start.as_deref(), Some("2026-07-01"));
}

#[test]
fn an_occurrence_names_its_master_and_slot() {
    let occurrence = json!({"occurrenceInfo": {"masterId": "m1", "type": "modified",
        "originalStart": {"dateTime": "2026-11-09T10:00:00+02:00"}}});
    assert_eq!(
        occurrence_info(occurrence.get("occurrenceInfo")),
        (Some("m1".into()), Some("2026-11-09T08:00:00.000Z".into()))
    );
}

#[test]
fn an_all_day_series_with_a_date_until_and_a_timed_one_with_a_local_until() {
    // Google writes an all-day series' UNTIL as a date.
    let master = json!({
        "id": "m",
        "start": {"dateOnly": "2026-03-02"}, "end": {"dateOnly": "2026-03-03"},
        "recurrence": {"ical": {"rules": ["RRULE:FREQ=WEEKLY;UNTIL=20260316"]}}
    });
    let e = expand(&master, &wide(), &none());
    assert_eq!(e.unreadable, None);
    assert_eq!(starts(&e), ["2026-03-02", "2026-03-09", "2026-03-16"]);
    // EXDATE in the series' zone.
    let master = json!({
        "id": "m",
        "start": {"dateTime": "2026-03-02T09:00:00+01:00", "timezone": "Europe/Paris"},
        "end": {"dateTime": "2026-03-02T10:00:00+01:00", "timezone": "Europe/Paris"},
        "recurrence": {"ical": {"rules": ["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;TZID=Europe/Paris:20260309T090000"]}}
    });
    let e = expand(&master, &wide(), &none());
    assert_eq!(e.unreadable, None);
    assert_eq!(starts(&e), ["2026-03-02T08:00:00.000Z", "2026-03-16T08:00:00.000Z"]);
}

#[test]
fn the_local_format_parsed_once_is_the_format_string_itself() {
    let parsed: Vec<Item<'_>> = chrono::format::StrftimeItems::new(LOCAL_FORMAT).collect();
    assert_eq!(parsed, LOCAL_ITEMS.to_vec());
    // And it writes what the string writes, far years and leap seconds too.
    for text in ["2026-11-27T10:00:00+02:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:60Z"] {
        let t = DateTime::parse_from_rfc3339(text).unwrap();
        assert_eq!(t.format_with_items(LOCAL_ITEMS.iter()).to_string(), t.format(LOCAL_FORMAT).to_string());
    }
}

#[test]
fn an_event_date_time_reads_text_fields_and_leaves_others_out() {
    let value = json!({"dateTime": "2026-11-27T10:00:00Z", "dateOnly": 7, "timezone": null});
    let read = EventDateTime::of(Some(&value)).unwrap();
    assert_eq!(read.date_time.as_deref(), Some("2026-11-27T10:00:00Z"));
    assert_eq!((read.date_only, read.timezone), (None, None));
    assert_eq!(EventDateTime::of(Some(&json!(["2026-11-27"]))), None);
}
