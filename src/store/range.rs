//! Where rows lie against a provisioned window, in SQL: the reconciling
//! sweep removes only rows inside it, and `state` counts those outside.
//!
//! Record times are fixed-width RFC 3339 text in UTC (or `YYYY-MM-DD` dates),
//! so text order is time order. A value that is missing or not such a time
//! (kept as sent) is neither inside nor outside: nothing is known of it.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::Range;

/// What a stored time looks like: `YYYY-MM-DD`, possibly followed by a time.
const TIME_SHAPE: &str = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*";

/// True for rows inside the window from `min` to `max` (SQL expressions):
/// ending after its start (or without an end, where the range says that
/// lies inside) and, for ranges with an end, starting before its end, both
/// exclusive as the spec's `timeMin` and `timeMax`.
pub(super) fn inside(range: &Range, min: &str, max: &str) -> String {
    let mut condition = format!("{0} GLOB '{TIME_SHAPE}' AND {0} > {min}", range.end);
    if range.empty_end_inside {
        condition = format!("({0} IS NULL OR ({condition}))", range.end);
    }
    if let Some(start) = range.start {
        condition.push_str(&format!(" AND {start} GLOB '{TIME_SHAPE}' AND {start} < {max}"));
    }
    condition
}

/// True for rows wholly outside the window: ended by its start, or (for
/// ranges with an end) starting at or after its end.
pub(super) fn outside(range: &Range, min: &str, max: &str) -> String {
    let mut condition = format!("({0} GLOB '{TIME_SHAPE}' AND {0} <= {min})", range.end);
    if let Some(start) = range.start {
        condition.push_str(&format!(" OR ({start} GLOB '{TIME_SHAPE}' AND {start} >= {max})"));
    }
    format!("({condition})")
}

/// An instant written as record times are.
pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// SQL turning a stored window bound (`2026-11-27T12:00:00Z`) into the form
/// of record times, so the two compare as text.
pub(super) fn as_record_time(column: &str) -> String {
    format!("strftime('%Y-%m-%dT%H:%M:%fZ', {column})")
}
