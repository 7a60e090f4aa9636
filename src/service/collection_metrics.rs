//! The series of `/metrics` computed from the health snapshot at each
//! scrape rather than registered with the recorder: the lag, and how many
//! collections run and fail. A registered gauge lives as long as the
//! process, so a calendar removed upstream would keep reporting a growing
//! lag forever; computed from the snapshot, it counts only what runs now.
//!
//! Labels are the account (bounded by the configuration) and the kind: a
//! collection id is not bounded (an account may hold any number of
//! calendars, each a series for as long as Prometheus keeps it), so the
//! lag is the largest of the kind's collections, the one an alert is about.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::formatting::{sanitize_label_value, write_help_line, write_type_line};

use super::health::CollectionHealth;
use crate::model::{CollectionKey, Kind};

const LAG: &str = "aurinko_sync_lag_seconds";
const LAG_HELP: &str =
    "Seconds since the collection of this account and kind that caught up longest ago last caught up.";

/// The lag per account and kind, and the collection gauges, in the text format.
pub fn render(collections: &BTreeMap<CollectionKey, CollectionHealth>, now: DateTime<Utc>) -> String {
    let mut lag: BTreeMap<(&str, Kind), f64> = BTreeMap::new();
    for (key, c) in collections {
        // A collection never synced has no lag yet, as before its first pass.
        if let Some(at) = c.last_success {
            let seconds = (now - at).num_milliseconds() as f64 / 1000.0;
            let slot = lag.entry((key.account.as_str(), key.kind)).or_insert(seconds);
            *slot = slot.max(seconds);
        }
    }
    let mut text = String::new();
    write_help_line(&mut text, LAG, None, None, LAG_HELP);
    write_type_line(&mut text, LAG, None, None, "gauge");
    for ((account, kind), seconds) in lag {
        let _ = writeln!(
            text,
            "{LAG}{{account=\"{}\",kind=\"{}\"}} {seconds}",
            sanitize_label_value(account),
            kind.as_str()
        );
    }
    text.push('\n');
    let failing = collections.values().filter(|c| c.failing).count();
    for (name, help, value) in [
        ("aurinko_sync_failing_collections", "Collections whose last pass failed.", failing),
        ("aurinko_sync_collections", "Collections the service runs.", collections.len()),
    ] {
        write_help_line(&mut text, name, None, None, help);
        write_type_line(&mut text, name, None, None, "gauge");
        let _ = writeln!(text, "{name} {value}\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_largest_of_a_kinds_collections_and_label_values_are_escaped() {
        let now = Utc::now();
        let synced =
            |secs| CollectionHealth { last_success: Some(now - chrono::Duration::seconds(secs)), ..Default::default() };
        let collections = BTreeMap::from([
            (CollectionKey::listed("a\"b\\c\nd", Kind::Calendar, "cal-1"), synced(3)),
            (CollectionKey::listed("a\"b\\c\nd", Kind::Calendar, "cal-2"), synced(7)),
            (
                CollectionKey::listed("work", Kind::Calendar, "new"),
                CollectionHealth { failing: true, ..Default::default() },
            ),
        ]);
        let text = render(&collections, now);
        assert!(text.contains(r#"aurinko_sync_lag_seconds{account="a\"b\\c\nd",kind="calendar"} 7"#), "{text}");
        assert!(!text.contains(r#"account="work""#), "a collection never synced has no lag: {text}");
        assert!(!text.contains("cal-"), "no collection id is a label: {text}");
        assert!(text.contains("aurinko_sync_failing_collections 1\n") && text.contains("aurinko_sync_collections 3\n"));
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP")).count(), 3);
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 3);
    }
}
