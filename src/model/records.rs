//! From raw records to rows: the typed columns people query, next to the
//! record exactly as Aurinko sent it.
//!
//! Parsing is lenient by design: a field of an unexpected type is treated as
//! absent rather than failing the page, because the raw JSON is kept whole
//! and nothing is lost. Only a record without an id cannot be stored.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::recurrence::{self, EventDateTime};

/// One record ready for its kind's table: the typed columns in the order
/// the kind's [`Table`](super::Table) names them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub etag: Option<String>,
    pub fields: Vec<Field>,
    pub raw: String,
}

/// A typed column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Text(Option<String>),
    Flag(bool),
}

impl Row {
    /// The text of the field at `index`, for tests and displays.
    pub fn text(&self, index: usize) -> Option<&str> {
        match self.fields.get(index) {
            Some(Field::Text(t)) => t.as_deref(),
            _ => None,
        }
    }

    pub fn flag(&self, index: usize) -> Option<bool> {
        match self.fields.get(index) {
            Some(Field::Flag(f)) => Some(*f),
            _ => None,
        }
    }
}

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub &'static str);

/// A record as a JSON object, with lenient accessors. Only the top level
/// is split into fields (later duplicates win, as in a JSON object read
/// into a map); a field is parsed when a column asks for it, so deep or
/// large parts of a record cost nothing and never make it unreadable.
pub struct Record<'a> {
    fields: Fields<'a>,
    raw: &'a str,
}

/// An element of a page's `records`, split into its top-level fields while
/// the page is decoded, so that a record is scanned once, not once for the
/// page and again for its fields (a sixth of a full sync's parsing). Its
/// text is then found from where those fields lie in the body
/// ([`PageRecord::in_body`]).
#[derive(Debug)]
pub struct PageRecord<'a>(Option<Fields<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for PageRecord<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PageRecordVisitor)
    }
}

impl<'a> PageRecord<'a> {
    /// The record, its text found in `body` (the text the page was decoded
    /// from): it runs from the `{` before its first field's name to the `}`
    /// after its last value. `None` when the fields cannot say where that
    /// is (no field, or a first name spelled with escapes, which is then
    /// not borrowed from the body): the caller reads the page the other way.
    pub fn in_body(self, body: &'a str) -> Option<Result<Record<'a>, Rejected>> {
        let Some(fields) = self.0 else { return Some(Err(Rejected("not an object"))) };
        let offset = |text: &str| (text.as_ptr() as usize).checked_sub(body.as_ptr() as usize);
        let (Cow::Borrowed(name), _) = fields.0.first()? else { return None };
        let opening = body.get(..offset(name)?)?.strip_suffix('"')?.trim_end_matches(JSON_SPACE);
        let start = opening.strip_suffix('{')?.len();
        let last = fields.0.last()?.1.get();
        let end = offset(last)? + last.len();
        let closing = body.get(end..)?.trim_start_matches(JSON_SPACE).strip_prefix('}')?;
        let raw = body.get(start..body.len() - closing.len())?;
        Some(Ok(Record { fields, raw }))
    }
}

/// What JSON allows between tokens.
const JSON_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

struct PageRecordVisitor;

impl<'de> Visitor<'de> for PageRecordVisitor {
    type Value = PageRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<PageRecord<'de>, M::Error> {
        FieldsVisitor(RECORD_FIELDS).visit_map(map).map(|fields| PageRecord(Some(fields)))
    }

    // Anything else is not a record: skipped as a whole (a list as the
    // page's decoding skipped it before, to any depth), and rejected.
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<PageRecord<'de>, S::Error> {
        while seq.next_element::<&'de RawValue>()?.is_some() {}
        Ok(PageRecord(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<PageRecord<'de>, E> {
        Ok(PageRecord(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<PageRecord<'de>, E> {
        Ok(PageRecord(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<PageRecord<'de>, E> {
        Ok(PageRecord(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<PageRecord<'de>, E> {
        Ok(PageRecord(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<PageRecord<'de>, E> {
        Ok(PageRecord(None))
    }

    fn visit_unit<E>(self) -> Result<PageRecord<'de>, E> {
        Ok(PageRecord(None))
    }
}

/// A record's top-level fields in the order they came, names borrowed
/// from the record unless they hold escapes. A full sync parses every
/// record, and a map of owned names was a third of that time; a record has
/// a few dozen fields, so a search from the end (the last duplicate wins)
/// is as quick as a lookup.
#[derive(Debug)]
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(name, _)| name == key).map(|(_, value)| *value)
    }

    /// A nested object's fields, room made for `expected` of them.
    fn nested(raw: &'a RawValue, expected: usize) -> Option<Fields<'a>> {
        let mut json = serde_json::Deserializer::from_str(raw.get());
        let fields = json.deserialize_map(FieldsVisitor(expected)).ok()?;
        json.end().ok()?;
        Some(fields)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor(RECORD_FIELDS))
    }
}

/// Room for a record's fields: serde_json does not say how many come, and
/// a record has a few dozen.
const RECORD_FIELDS: usize = 32;

/// Makes [`Fields`], with room for this many to begin with.
struct FieldsVisitor(usize);

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(self.0));
        while let Some(entry) = map.next_entry::<Name<'de>, &'de RawValue>()? {
            fields.push((entry.0.0, entry.1));
        }
        Ok(Fields(fields))
    }
}

/// A string value's text, borrowed when the JSON spells it without
/// escapes; `None` for any other value.
fn text_of<'a>(value: &'a RawValue) -> Option<Cow<'a, str>> {
    serde_json::from_str::<Name<'a>>(value.get()).ok().map(|n| n.0)
}

/// A field's name: borrowed when the JSON spells it without escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(name)))
    }

    fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(name.to_string())))
    }
}

impl<'a> Record<'a> {
    /// The record's text, exactly as sent.
    pub fn as_sent(&self) -> &'a str {
        self.raw
    }

    /// Splits a record into its top-level fields.
    pub fn parse(raw: &'a RawValue) -> Result<Record<'a>, Rejected> {
        let fields: Fields<'a> = serde_json::from_str(raw.get()).map_err(|_| Rejected("not an object"))?;
        Ok(Record { fields, raw: raw.get() })
    }

    fn text(&self, key: &str) -> Option<String> {
        self.text_ref(key).map(Cow::into_owned)
    }

    /// [`text`](Record::text), borrowed from the record when it can be.
    fn text_ref(&self, key: &str) -> Option<Cow<'a, str>> {
        self.fields.get(key).and_then(text_of)
    }

    /// A nested field as a JSON value; `None` when absent or unreadable.
    fn value(&self, key: &str) -> Option<Value> {
        self.fields.get(key).and_then(|v| serde_json::from_str(v.get()).ok())
    }

    /// An `EventDateTime` field, read as [`value`](Record::value) would
    /// read it but without building a map (two per event in a full sync).
    fn date_time(&self, key: &str) -> Option<EventDateTime<'a>> {
        // `dateTime` and `timezone`, or `dateOnly`: room for three.
        let object = Fields::nested(self.fields.get(key)?, 3)?;
        let text = |key: &str| object.get(key).and_then(text_of);
        Some(EventDateTime { date_time: text("dateTime"), date_only: text("dateOnly"), timezone: text("timezone") })
    }

    fn id(&self) -> Result<String, Rejected> {
        self.text("id").filter(|id| !id.is_empty()).ok_or(Rejected("no id"))
    }

    fn instant(&self, key: &str) -> Option<String> {
        self.text_ref(key).map(|t| normalise_instant(&t))
    }

    fn row(self, id: String, etag: Option<String>, fields: Vec<Field>) -> Row {
        Row { id, etag, fields, raw: self.raw.to_string() }
    }
}

/// Reads an `Event`.
pub fn parse_event(raw: &RawValue) -> Result<Row, Rejected> {
    event_row(Record::parse(raw)?)
}

/// [`parse_event`] of a record already split.
pub fn event_row(r: Record<'_>) -> Result<Row, Rejected> {
    let id = r.id()?;
    let start_value = r.date_time("start");
    let end_value = r.date_time("end");
    let (start, all_day) = event_time(start_value.as_ref());
    let (end, _) = event_time(end_value.as_ref());
    let local = recurrence::local_times_of(start_value.as_ref(), end_value.as_ref());
    let (master_id, original_start) = recurrence::occurrence_info(r.value("occurrenceInfo").as_ref());
    let fields = vec![
        Field::Text(r.text("subject")),
        Field::Text(start),
        Field::Text(end),
        Field::Flag(all_day),
        Field::Text(r.instant("lastModifiedTime")),
        // The spec spells it `iCalUid` on Event and `iCalUId` elsewhere.
        Field::Text(r.text("iCalUid").or_else(|| r.text("iCalUId"))),
        Field::Text(r.text("recurrenceType")),
        Field::Text(local.time_zone),
        Field::Text(local.start),
        Field::Text(local.end),
        Field::Text(master_id),
        Field::Text(original_start),
    ];
    let etag = r.text("etag");
    Ok(r.row(id, etag, fields))
}

/// Reads an `EmailMessage`. Messages carry no etag.
pub fn parse_message(raw: &RawValue) -> Result<Row, Rejected> {
    message_row(Record::parse(raw)?)
}

/// [`parse_message`] of a record already split.
pub fn message_row(r: Record<'_>) -> Result<Row, Rejected> {
    let id = r.id()?;
    let from = r.value("from");
    let from_text = |key: &str| from.as_ref().and_then(|f| f.get(key)).and_then(Value::as_str).map(str::to_string);
    let labels_value = r.value("sysLabels");
    let labels: Option<Vec<&str>> =
        labels_value.as_ref().and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect());
    let fields = vec![
        Field::Text(r.text("threadId")),
        Field::Text(r.text("folderId")),
        Field::Text(r.text("internetMessageId")),
        Field::Text(r.text("subject")),
        Field::Text(from_text("address")),
        Field::Text(from_text("name")),
        Field::Text(r.instant("receivedAt")),
        Field::Text(labels.map(|l| Value::from(l).to_string())),
        Field::Flag(r.value("hasAttachments").and_then(|v| v.as_bool()).unwrap_or(false)),
    ];
    Ok(r.row(id, None, fields))
}

/// Reads a `Contact`.
pub fn parse_contact(raw: &RawValue) -> Result<Row, Rejected> {
    contact_row(Record::parse(raw)?)
}

/// [`parse_contact`] of a record already split.
pub fn contact_row(r: Record<'_>) -> Result<Row, Rejected> {
    let id = r.id()?;
    let name_value = r.value("name");
    let name = name_value.as_ref().and_then(Value::as_object);
    let name_text = |key: &str| name.and_then(|n| n.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty());
    let display_name = name_text("displayName").map(str::to_string).or_else(|| {
        let parts: Vec<&str> = ["givenName", "familyName"].into_iter().filter_map(name_text).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let emails_value = r.value("emailAddresses");
    let emails: Option<Vec<&str>> = emails_value
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.get("address").and_then(Value::as_str)).collect());
    let fields = vec![Field::Text(display_name), Field::Text(emails.map(|e| Value::from(e).to_string()))];
    let etag = r.text("etag");
    Ok(r.row(id, etag, fields))
}

/// Reads a `Task`. `due` and `completed` are date-times in the spec; they
/// are normalised like every instant.
pub fn parse_task(raw: &RawValue) -> Result<Row, Rejected> {
    task_row(Record::parse(raw)?)
}

/// [`parse_task`] of a record already split.
pub fn task_row(r: Record<'_>) -> Result<Row, Rejected> {
    let id = r.id()?;
    let fields = vec![
        Field::Text(r.text("title")),
        Field::Text(r.text("status")),
        Field::Text(r.instant("due")),
        Field::Text(r.instant("completed")),
        Field::Text(r.text("parentId")),
    ];
    let etag = r.text("etag");
    Ok(r.row(id, etag, fields))
}

/// Reads a deleted record: `DeletedRecord {id, timestamp}`, or email's
/// `DeletedEmailMessage`, which adds `folderId` and `internetMessageId`.
/// Only the id matters: the row it names is removed wherever it is.
pub fn parse_deleted(raw: &RawValue) -> Result<String, Rejected> {
    Record::parse(raw)?.id()
}

/// [`parse_deleted`] of a record already split.
pub fn deleted_id(r: Record<'_>) -> Result<String, Rejected> {
    r.id()
}

/// An `EventDateTime`: `dateTime` for timed events, `dateOnly` for all-day
/// ones. Returns the normalised value and whether it was date-only.
fn event_time(value: Option<&EventDateTime>) -> (Option<String>, bool) {
    let Some(value) = value else { return (None, false) };
    if let Some(dt) = value.date_time.as_deref() {
        return (Some(normalise_instant(dt)), false);
    }
    if let Some(d) = value.date_only.as_deref() {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").map(|d| d.to_string()).unwrap_or_else(|_| d.to_string());
        return (Some(date), true);
    }
    (None, false)
}

/// RFC 3339 in UTC with milliseconds and a `Z` (`2026-11-27T08:00:00.000Z`):
/// one fixed width, so text comparison orders instants. A value that does
/// not parse, or falls outside years 0000-9999 in UTC, is kept as sent.
fn normalise_instant(s: &str) -> String {
    match DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)) {
        Ok(t) if (0..=9999).contains(&t.year()) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        _ => s.to_string(),
    }
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
        assert_eq!(row.id, "e1");
        assert_eq!(row.etag.as_deref(), Some("\"7\""));
        assert_eq!(row.text(0), Some("Standup"));
        assert_eq!(row.text(1), Some("2026-11-27T08:00:00.000Z"));
        assert_eq!(row.text(2), Some("2026-11-27T08:15:00.000Z"));
        assert_eq!(row.flag(3), Some(false));
        assert_eq!(row.text(4), Some("2026-11-20T08:00:00.123Z"));
        assert_eq!(row.text(5), Some("uid-1"));
        assert_eq!(row.raw, text);
    }

    #[test]
    fn field_names_spelled_with_escapes_are_the_same_names() {
        // `\u0069d` is `id`, `subj\u0065ct` is `subject`: names with escapes
        // cannot be borrowed from the text, and must still be found; the
        // later of two spellings of a name wins.
        let row = parse_event(&raw(r#"{"\u0069d":"e9","subject":"first","subj\u0065ct":"second"}"#)).unwrap();
        assert_eq!(row.id, "e9");
        assert_eq!(row.text(0), Some("second"));
        assert_eq!(parse_event(&raw(r#"[{"id":"e1"}]"#)), Err(Rejected("not an object")));
    }

    #[test]
    fn a_date_only_event_is_all_day() {
        let row = parse_event(&raw(r#"{"id":"e2","start":{"dateOnly":"2026-12-24"},"end":{"dateOnly":"2026-12-25"}}"#))
            .unwrap();
        assert_eq!(row.flag(3), Some(true));
        assert_eq!(row.text(1), Some("2026-12-24"));
        assert_eq!(row.text(2), Some("2026-12-25"));
    }

    #[test]
    fn odd_but_valid_records_are_kept_and_idless_ones_rejected() {
        let row = parse_event(&raw(r#"{"id":"e3","subject":null,"start":"tomorrow","etag":5}"#)).unwrap();
        assert_eq!((row.text(0), row.text(1), row.etag.as_deref()), (None, None, None));
        assert_eq!(parse_event(&raw(r#"{"subject":"x"}"#)), Err(Rejected("no id")));
        assert_eq!(parse_event(&raw(r#"[1]"#)), Err(Rejected("not an object")));
        assert_eq!(parse_event(&raw(r#"{"id":""}"#)), Err(Rejected("no id")));
        assert_eq!(parse_message(&raw(r#"{"id":7}"#)), Err(Rejected("no id")));
        assert_eq!(parse_contact(&raw(r#""text""#)), Err(Rejected("not an object")));
    }

    #[test]
    fn a_message_gets_its_columns() {
        let text = r#"{"id":"m1","threadId":"t1","folderId":"f1","internetMessageId":"<a@b>","subject":"Hi","from":{"name":"Ann","address":"ann@example.com"},"receivedAt":"2026-11-27T10:00:00+01:00","sysLabels":["inbox","unread",3],"hasAttachments":true}"#;
        let row = parse_message(&raw(text)).unwrap();
        assert_eq!(row.etag, None);
        let texts: Vec<Option<&str>> = (0..8).map(|i| row.text(i)).collect();
        assert_eq!(
            texts,
            vec![
                Some("t1"),
                Some("f1"),
                Some("<a@b>"),
                Some("Hi"),
                Some("ann@example.com"),
                Some("Ann"),
                Some("2026-11-27T09:00:00.000Z"),
                Some(r#"["inbox","unread"]"#)
            ]
        );
        assert_eq!(row.flag(8), Some(true));
        let bare = parse_message(&raw(r#"{"id":"m2","from":"nobody"}"#)).unwrap();
        assert_eq!((bare.text(4), bare.text(7), bare.flag(8)), (None, None, Some(false)));
    }

    #[test]
    fn a_contact_gets_a_display_name_and_its_addresses() {
        let row = parse_contact(&raw(
            r#"{"id":"c1","etag":"e","name":{"displayName":"Ann Lee"},"emailAddresses":[{"address":"a@x"},{"name":"no address"},{"address":"b@x"}]}"#,
        ))
        .unwrap();
        assert_eq!(row.text(0), Some("Ann Lee"));
        assert_eq!(row.text(1), Some(r#"["a@x","b@x"]"#));
        let composed = parse_contact(&raw(r#"{"id":"c2","name":{"givenName":"Bo","familyName":"Ek"}}"#)).unwrap();
        assert_eq!(composed.text(0), Some("Bo Ek"));
        let nameless = parse_contact(&raw(r#"{"id":"c3","name":null}"#)).unwrap();
        assert_eq!((nameless.text(0), nameless.text(1)), (None, None));
    }

    #[test]
    fn a_task_gets_its_columns() {
        let text = r#"{"id":"t1","etag":"e1","title":"File taxes","status":"completed","due":"2026-04-30T00:00:00+02:00","completed":"2026-04-29T17:05:00.5Z","parentId":"t0","importance":"high","links":[]}"#;
        let row = parse_task(&raw(text)).unwrap();
        assert_eq!((row.id.as_str(), row.etag.as_deref()), ("t1", Some("e1")));
        let texts: Vec<Option<&str>> = (0..5).map(|i| row.text(i)).collect();
        assert_eq!(
            texts,
            vec![
                Some("File taxes"),
                Some("completed"),
                Some("2026-04-29T22:00:00.000Z"),
                Some("2026-04-29T17:05:00.500Z"),
                Some("t0")
            ]
        );
        assert_eq!(row.raw, text);
        let bare = parse_task(&raw(r#"{"id":"t2","title":7,"due":"soon","status":null}"#)).unwrap();
        assert_eq!((bare.text(0), bare.text(1), bare.text(2), bare.text(4)), (None, None, Some("soon"), None));
        assert_eq!(parse_task(&raw(r#"{"title":"x"}"#)), Err(Rejected("no id")));
    }

    #[test]
    fn deleted_records_yield_their_ids() {
        assert_eq!(parse_deleted(&raw(r#"{"id":"x","timestamp":"2026-01-01T00:00:00Z"}"#)), Ok("x".into()));
        assert_eq!(
            parse_deleted(&raw(
                r#"{"id":"m","folderId":"f","internetMessageId":"<i>","timestamp":"2026-01-01T00:00:00Z"}"#
            )),
            Ok("m".into())
        );
        assert_eq!(parse_deleted(&raw(r#"{"id":7}"#)), Err(Rejected("no id")));
        assert_eq!(parse_deleted(&raw(r#"null"#)), Err(Rejected("not an object")));
    }
}
