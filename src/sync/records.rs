//! From raw records to rows: the typed columns people query, next to the
//! record exactly as Aurinko sent it.
//!
//! Parsing is lenient by design: a field of an unexpected type is treated as
//! absent rather than failing the page, because the raw JSON is kept whole
//! and nothing is lost. Only a record without an id cannot be stored.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;
use serde_json::value::RawValue;

/// One calendar event ready for the `events` table.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event_id: String,
    pub etag: Option<String>,
    pub subject: Option<String>,
    /// RFC 3339 UTC for timed events, `YYYY-MM-DD` for all-day ones.
    pub start: Option<String>,
    pub end: Option<String>,
    pub all_day: bool,
    pub last_modified: Option<String>,
    pub ical_uid: Option<String>,
    pub recurrence_type: Option<String>,
    pub raw: String,
}

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub &'static str);

/// Reads an `Event` record.
pub fn parse_event(raw: &RawValue) -> Result<EventRow, Rejected> {
    let value: Value = serde_json::from_str(raw.get()).map_err(|_| Rejected("not JSON"))?;
    let object = value.as_object().ok_or(Rejected("not an object"))?;
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
    let event_id = text("id").filter(|id| !id.is_empty()).ok_or(Rejected("no id"))?;
    let (start, start_all_day) = event_time(object.get("start"));
    let (end, _) = event_time(object.get("end"));
    Ok(EventRow {
        event_id,
        etag: text("etag"),
        subject: text("subject"),
        start,
        end,
        all_day: start_all_day,
        last_modified: text("lastModifiedTime").map(|t| normalise_instant(&t)),
        // The spec spells it `iCalUid` on Event and `iCalUId` elsewhere.
        ical_uid: text("iCalUid").or_else(|| text("iCalUId")),
        recurrence_type: text("recurrenceType"),
        raw: raw.get().to_string(),
    })
}

/// Reads a `DeletedRecord` (`{id, timestamp}`; email adds fields we ignore).
pub fn parse_deleted(raw: &RawValue) -> Result<String, Rejected> {
    #[derive(serde::Deserialize)]
    struct Deleted {
        id: Option<Value>,
    }
    let deleted: Deleted = serde_json::from_str(raw.get()).map_err(|_| Rejected("not an object"))?;
    match deleted.id {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(Rejected("no id")),
    }
}

/// An `EventDateTime`: `dateTime` for timed events, `dateOnly` for all-day
/// ones. Returns the normalised value and whether it was date-only.
fn event_time(value: Option<&Value>) -> (Option<String>, bool) {
    let Some(object) = value.and_then(Value::as_object) else { return (None, false) };
    if let Some(dt) = object.get("dateTime").and_then(Value::as_str) {
        return (Some(normalise_instant(dt)), false);
    }
    if let Some(d) = object.get("dateOnly").and_then(Value::as_str) {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").map(|d| d.to_string()).unwrap_or_else(|_| d.to_string());
        return (Some(date), true);
    }
    (None, false)
}

/// RFC 3339 in UTC with a `Z`, so text comparison orders instants. A value
/// that does not parse is kept as sent.
fn normalise_instant(s: &str) -> String {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    #[test]
    fn a_timed_event_gets_utc_columns_and_keeps_its_raw_text() {
        let text = r#"{"id":"e1","etag":"\"7\"","subject":"Standup","start":{"dateTime":"2026-11-27T10:00:00+02:00","timezone":"Europe/Helsinki"},"end":{"dateTime":"2026-11-27T10:15:00+02:00"},"lastModifiedTime":"2026-11-20T08:00:00.123Z","iCalUId":"uid-1","x-extra":[1,2]}"#;
        let row = parse_event(&raw(text)).unwrap();
        assert_eq!(row.event_id, "e1");
        assert_eq!(row.start.as_deref(), Some("2026-11-27T08:00:00Z"));
        assert_eq!(row.end.as_deref(), Some("2026-11-27T08:15:00Z"));
        assert!(!row.all_day);
        assert_eq!(row.last_modified.as_deref(), Some("2026-11-20T08:00:00.123Z"));
        assert_eq!(row.ical_uid.as_deref(), Some("uid-1"));
        assert_eq!(row.raw, text);
    }

    #[test]
    fn a_date_only_event_is_all_day() {
        let row = parse_event(&raw(r#"{"id":"e2","start":{"dateOnly":"2026-12-24"},"end":{"dateOnly":"2026-12-25"}}"#))
            .unwrap();
        assert!(row.all_day);
        assert_eq!(row.start.as_deref(), Some("2026-12-24"));
        assert_eq!(row.end.as_deref(), Some("2026-12-25"));
    }

    #[test]
    fn odd_but_valid_records_are_kept_and_idless_ones_rejected() {
        let row = parse_event(&raw(r#"{"id":"e3","subject":null,"start":"tomorrow","etag":5}"#)).unwrap();
        assert_eq!((row.subject, row.start, row.etag), (None, None, None));
        assert_eq!(parse_event(&raw(r#"{"subject":"x"}"#)), Err(Rejected("no id")));
        assert_eq!(parse_event(&raw(r#"[1]"#)), Err(Rejected("not an object")));
        assert_eq!(parse_event(&raw(r#"{"id":""}"#)), Err(Rejected("no id")));
    }

    #[test]
    fn deleted_records_yield_their_ids() {
        assert_eq!(parse_deleted(&raw(r#"{"id":"x","timestamp":"2026-01-01T00:00:00Z"}"#)), Ok("x".into()));
        assert_eq!(parse_deleted(&raw(r#"{"id":7}"#)), Err(Rejected("no id")));
        assert_eq!(parse_deleted(&raw(r#"null"#)), Err(Rejected("not an object")));
    }
}
