//! The per-collection series of `/metrics`, rendered from the health
//! snapshot at each scrape rather than registered with the recorder: a
//! registered series lives as long as the process, so a calendar removed
//! upstream would keep reporting a growing lag forever. Rendered from the
//! snapshot, a collection's series leave with it.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::formatting::{sanitize_label_value, write_type_line};

use super::health::CollectionHealth;
use crate::sync::CollectionKey;

type Series = fn(&CollectionHealth, DateTime<Utc>) -> Option<f64>;

/// Name, Prometheus type, and value (none: no sample for that collection).
const SERIES: [(&str, &str, Series); 5] = [
    ("aurinko_sync_lag_seconds", "gauge", |c, now| {
        c.last_success.map(|at| (now - at).num_milliseconds() as f64 / 1000.0)
    }),
    ("aurinko_sync_records_upserted_total", "counter", |c, _| Some(c.counts.upserted as f64)),
    ("aurinko_sync_records_deleted_total", "counter", |c, _| Some(c.counts.deleted as f64)),
    ("aurinko_sync_reprovisions_total", "counter", |c, _| Some(c.counts.reprovisions as f64)),
    ("aurinko_sync_pages_without_delta_token_total", "counter", |c, _| Some(c.counts.pages_without_delta_token as f64)),
];

/// The collections' series and the totals over them, in the text format.
pub fn render(collections: &BTreeMap<CollectionKey, CollectionHealth>, now: DateTime<Utc>) -> String {
    let mut text = String::new();
    for (name, kind, value) in SERIES {
        write_type_line(&mut text, name, None, None, kind);
        for (key, c) in collections {
            if let Some(value) = value(c, now) {
                let _ = writeln!(
                    text,
                    "{name}{{account=\"{}\",kind=\"{}\",collection=\"{}\"}} {value}",
                    sanitize_label_value(&key.account),
                    key.kind.as_str(),
                    sanitize_label_value(&key.id)
                );
            }
        }
        text.push('\n');
    }
    let failing = collections.values().filter(|c| c.failing).count();
    for (name, value) in
        [("aurinko_sync_failing_collections", failing), ("aurinko_sync_collections", collections.len())]
    {
        write_type_line(&mut text, name, None, None, "gauge");
        let _ = writeln!(text, "{name} {value}\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Kind;

    #[test]
    fn label_values_are_escaped_and_a_collection_never_synced_has_no_lag() {
        let now = Utc::now();
        let synced = CollectionHealth { last_success: Some(now - chrono::Duration::seconds(3)), ..Default::default() };
        let collections = BTreeMap::from([
            (CollectionKey::listed("work", Kind::Calendar, "a\"b\\c\nd"), synced),
            (
                CollectionKey::listed("work", Kind::Calendar, "new"),
                CollectionHealth { failing: true, ..Default::default() },
            ),
        ]);
        let text = render(&collections, now);
        assert!(
            text.contains(r#"aurinko_sync_lag_seconds{account="work",kind="calendar",collection="a\"b\\c\nd"} 3"#),
            "{text}"
        );
        assert!(!text.contains(r#"aurinko_sync_lag_seconds{account="work",kind="calendar",collection="new"}"#));
        assert!(
            text.contains(r#"aurinko_sync_records_upserted_total{account="work",kind="calendar",collection="new"} 0"#)
        );
        assert!(text.contains("aurinko_sync_failing_collections 1\n") && text.contains("aurinko_sync_collections 2\n"));
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 7);
    }
}
