//! Recurring events as the instances people read: a series master's rule
//! expanded over the sync window, in the series' time zone, less the slots
//! its exceptions (modified or cancelled occurrences, exclusions) take; and
//! every event's local wall-clock times.
//!
//! Aurinko sends a master's recurrence either as iCalendar lines
//! (`recurrence.ical.rules`, RFC 5545, with `recurrenceStart`) or as a
//! `recurrence.simple` pattern and range (with `patternExclusions`); both
//! become one RFC 5545 rule set here, expanded by the `rrule` crate. The
//! store calls [`expand`] at commit time for the masters a page touched.
//!
//! Instants are the store's text form (`normalise_instant`: UTC, millis,
//! `Z`), all-day slots are dates; local times are `YYYY-MM-DDTHH:MM:SS` in
//! the event's zone (an IANA name; a zone chrono-tz does not know leaves
//! the time as sent).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::format::{Item, Numeric, Pad};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

use super::state::Window;

/// No series yields more instances than this in one window: a hostile or
/// odd rule (`FREQ=SECONDLY`) stays bounded in time and rows.
pub const MAX_INSTANCES: u16 = 5_000;

const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
/// [`LOCAL_FORMAT`] parsed once: a full sync formats two local times per
/// event, and parsing the format string each time showed in its profile.
const LOCAL_ITEMS: [Item<'static>; 11] = [
    Item::Numeric(Numeric::Year, Pad::Zero),
    Item::Literal("-"),
    Item::Numeric(Numeric::Month, Pad::Zero),
    Item::Literal("-"),
    Item::Numeric(Numeric::Day, Pad::Zero),
    Item::Literal("T"),
    Item::Numeric(Numeric::Hour, Pad::Zero),
    Item::Literal(":"),
    Item::Numeric(Numeric::Minute, Pad::Zero),
    Item::Literal(":"),
    Item::Numeric(Numeric::Second, Pad::Zero),
];

/// The length of a local time in years 0-9999.
const LOCAL_LENGTH: usize = "YYYY-MM-DDTHH:MM:SS".len();

/// An `EventDateTime`'s fields that are text (others read as absent),
/// borrowed from the record where it spells them without escapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDateTime<'a> {
    pub date_time: Option<Cow<'a, str>>,
    pub date_only: Option<Cow<'a, str>>,
    pub timezone: Option<Cow<'a, str>>,
}

impl<'a> EventDateTime<'a> {
    /// `None` unless `value` is an object.
    pub fn of(value: Option<&'a Value>) -> Option<EventDateTime<'a>> {
        let object = value?.as_object()?;
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(Cow::Borrowed);
        Some(EventDateTime { date_time: text("dateTime"), date_only: text("dateOnly"), timezone: text("timezone") })
    }
}

/// One occurrence a rule generated, not replaced by an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The slot's start as the rule generates it: what an exception's
    /// `occurrenceInfo.originalStart` names.
    pub original_start: String,
    pub start: String,
    pub end: String,
    pub start_local: String,
    pub end_local: String,
    pub time_zone: Option<String>,
    pub all_day: bool,
}

/// A master's instances in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub slots: Vec<Slot>,
    /// The rule could not be read: the master stands for itself, once, at
    /// its own start (`slots` holds that one), and this says why.
    pub unreadable: Option<String>,
    /// [`MAX_INSTANCES`] cut the expansion short.
    pub limited: bool,
}

/// An event's zone and local start and end, for its row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalTimes {
    pub time_zone: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
}

/// The zone an `EventDateTime` names, if chrono-tz knows it.
fn zone_of(value: Option<&EventDateTime>) -> Option<chrono_tz::Tz> {
    value?.timezone.as_deref()?.parse().ok()
}

/// The local wall-clock text of an `EventDateTime`: its date for an all-day
/// one; a `dateTime` in `zone` when given, else in its own offset.
fn local_text(value: Option<&EventDateTime>, zone: Option<chrono_tz::Tz>) -> Option<String> {
    let value = value?;
    if let Some(text) = value.date_time.as_deref() {
        let t = DateTime::parse_from_rfc3339(text).ok()?;
        // Written into a string of the right size at once.
        let mut local = String::with_capacity(LOCAL_LENGTH);
        let _ = match zone {
            Some(zone) => write!(local, "{}", t.with_timezone(&zone).format_with_items(LOCAL_ITEMS.iter())),
            None => write!(local, "{}", t.format_with_items(LOCAL_ITEMS.iter())),
        };
        return Some(local);
    }
    let date = value.date_only.as_deref()?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().map(|d| d.to_string())
}

/// The zone and local times of an event record (`start`, `end`). The zone
/// is the start's `timezone` (else the end's), as sent.
pub fn local_times(event: &Value) -> LocalTimes {
    local_times_of(EventDateTime::of(event.get("start")).as_ref(), EventDateTime::of(event.get("end")).as_ref())
}

/// [`local_times`] from the record's `start` and `end`.
pub fn local_times_of(start: Option<&EventDateTime>, end: Option<&EventDateTime>) -> LocalTimes {
    let named = |v: Option<&EventDateTime>| v.and_then(|v| v.timezone.as_deref()).map(str::to_string);
    let zone = zone_of(start).or_else(|| zone_of(end));
    LocalTimes {
        time_zone: named(start).or_else(|| named(end)),
        start: local_text(start, zone),
        end: local_text(end, zone),
    }
}

/// `occurrenceInfo.masterId` and the normalised `originalStart`, from an
/// occurrence record's `occurrenceInfo`.
pub fn occurrence_info(info: Option<&Value>) -> (Option<String>, Option<String>) {
    let master = info.and_then(|i| i.get("masterId")).and_then(Value::as_str).map(str::to_string);
    let original = info.and_then(|i| i.get("originalStart")).and_then(|v| normalised_time(Some(v)));
    (master, original)
}

/// An `EventDateTime` in the store's text form: the instant in UTC, or the
/// date of an all-day one.
pub fn normalised_time(value: Option<&Value>) -> Option<String> {
    let object = value?.as_object()?;
    if let Some(text) = object.get("dateTime").and_then(Value::as_str) {
        let t = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
        return Some(instant_text(t));
    }
    let date = object.get("dateOnly").and_then(Value::as_str)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().map(|d| d.to_string())
}

fn instant_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A series' first start and its zone: timed (an instant, and the zone its
/// wall clock runs in) or all-day (a date).
enum First {
    Timed { at: DateTime<Utc>, zone: chrono_tz::Tz, named: Option<String> },
    AllDay(NaiveDate),
}

fn first_of(value: Option<&Value>, fallback_zone: Option<&Value>) -> Option<First> {
    let object = value?.as_object()?;
    if let Some(text) = object.get("dateTime").and_then(Value::as_str) {
        let at = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
        let zone =
            zone_of(EventDateTime::of(value).as_ref()).or_else(|| zone_of(EventDateTime::of(fallback_zone).as_ref()));
        let named = zone.map(|z| z.name().to_string());
        return Some(First::Timed { at, zone: zone.unwrap_or(chrono_tz::UTC), named });
    }
    let date = object.get("dateOnly").and_then(Value::as_str)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().map(First::AllDay)
}

/// Expands a series master over `window`. `taken` holds the original
/// starts of its exception records (modified, cancelled or listed
/// occurrences), whose slots they replace or remove.
pub fn expand(master: &Value, window: &Window, taken: &BTreeSet<String>) -> Expansion {
    match try_expand(master, window, taken) {
        Ok(expansion) => expansion,
        Err(why) => Expansion { slots: itself(master).into_iter().collect(), unreadable: Some(why), limited: false },
    }
}

/// The master as its own one instance, for a rule that cannot be read.
fn itself(master: &Value) -> Option<Slot> {
    let start = normalised_time(master.get("start"))?;
    let local = local_times(master);
    Some(Slot {
        original_start: start.clone(),
        end: normalised_time(master.get("end")).unwrap_or_else(|| start.clone()),
        start,
        start_local: local.start.unwrap_or_default(),
        end_local: local.end.unwrap_or_default(),
        time_zone: local.time_zone,
        all_day: master.get("start").and_then(|s| s.get("dateTime")).is_none(),
    })
}

fn try_expand(master: &Value, window: &Window, taken: &BTreeSet<String>) -> Result<Expansion, String> {
    let recurrence = master.get("recurrence").ok_or("no recurrence")?;
    let ical = recurrence.get("ical").filter(|v| v.is_object());
    let simple = recurrence.get("simple").filter(|v| v.is_object());
    // recurrenceStart, when it carries a time, is the series' DTSTART.
    let starts_at = ical
        .and_then(|i| i.get("recurrenceStart"))
        .filter(|s| s.get("dateTime").is_some() || s.get("dateOnly").is_some())
        .or_else(|| master.get("start"));
    let first = first_of(starts_at, master.get("start")).ok_or("no readable start")?;
    let length = match (&first, master.get("end")) {
        (First::Timed { at, .. }, Some(end)) => match first_of(Some(end), None) {
            Some(First::Timed { at: end, .. }) => end - *at,
            _ => Duration::zero(),
        },
        (First::AllDay(start), Some(end)) => match first_of(Some(end), None) {
            Some(First::AllDay(end)) => end - *start,
            _ => Duration::days(1),
        },
        (First::AllDay(_), None) => Duration::days(1),
        _ => Duration::zero(),
    };
    if length < Duration::zero() || length > Duration::days(366) {
        return Err("an end before its start, or a year long".into());
    }
    let mut lines = Vec::new();
    let mut excluded = BTreeSet::new();
    if let Some(ical) = ical {
        let rules = ical.get("rules").and_then(Value::as_array).ok_or("ical without rules")?;
        for rule in rules {
            let rule = rule.as_str().ok_or("a rule that is not text")?.trim();
            if rule.contains('\n') || rule.contains('\r') {
                return Err("a rule spanning lines".into());
            }
            if rule.starts_with("FREQ=") {
                lines.push(format!("RRULE:{}", utc_until(rule, &first)));
            } else if rule.starts_with("RRULE") || rule.starts_with("EXRULE") {
                lines.push(utc_until(rule, &first));
            } else if rule.starts_with("EXDATE") || rule.starts_with("RDATE") {
                lines.push(rule.to_string());
            } // DTSTART and anything else: the start comes from the record.
        }
    } else if let Some(simple) = simple {
        lines.push(simple_rule(simple, &first)?);
        let exclusions = simple.get("range").and_then(|r| r.get("patternExclusions")).and_then(Value::as_array);
        excluded.extend(exclusions.into_iter().flatten().filter_map(|e| normalised_time(Some(e))));
    } else {
        return Err("neither ical nor simple".into());
    }
    if !lines.iter().any(|l| l.starts_with("RRULE") || l.starts_with("RDATE")) {
        return Err("no RRULE".into());
    }
    let dtstart = match &first {
        First::Timed { at, zone, .. } => {
            format!("DTSTART;TZID={}:{}", zone.name(), at.with_timezone(zone).format("%Y%m%dT%H%M%S"))
        }
        First::AllDay(date) => format!("DTSTART:{}T000000Z", date.format("%Y%m%d")),
    };
    let text = format!("{dtstart}\n{}", lines.join("\n"));
    let set: rrule::RRuleSet = text.parse().map_err(|e: rrule::RRuleError| format!("{e}"))?;
    // Instances overlapping the window: those starting up to one length
    // before it.
    let after = window.time_min - length - Duration::seconds(1);
    let before = window.time_max;
    let set = set.after(after.with_timezone(&rrule::Tz::UTC)).before(before.with_timezone(&rrule::Tz::UTC));
    let result = set.all(MAX_INSTANCES);
    let mut slots = Vec::with_capacity(result.dates.len());
    for date in result.dates {
        let at = date.with_timezone(&Utc);
        let slot = match &first {
            First::Timed { zone, named, .. } => {
                let end = at + length;
                Slot {
                    original_start: instant_text(at),
                    start: instant_text(at),
                    end: instant_text(end),
                    start_local: at.with_timezone(zone).format(LOCAL_FORMAT).to_string(),
                    end_local: end.with_timezone(zone).format(LOCAL_FORMAT).to_string(),
                    time_zone: named.clone(),
                    all_day: false,
                }
            }
            First::AllDay(_) => {
                let day = at.date_naive();
                let end = day + length;
                Slot {
                    original_start: day.to_string(),
                    start: day.to_string(),
                    end: end.to_string(),
                    start_local: day.to_string(),
                    end_local: end.to_string(),
                    time_zone: None,
                    all_day: true,
                }
            }
        };
        if slot.end.as_str() <= instant_or_date(window.time_min, slot.all_day).as_str()
            || taken.contains(&slot.original_start)
            || excluded.contains(&slot.original_start)
        {
            continue;
        }
        slots.push(slot);
    }
    Ok(Expansion { slots, unreadable: None, limited: result.limited })
}

/// A rule's `UNTIL` in UTC, as the expansion needs it: RFC 5545 lets it be
/// a date (an all-day series' last day, as Google writes it) or a local
/// time; both are read in the series' zone (the whole last day counts).
fn utc_until(rule: &str, first: &First) -> String {
    let parts: Vec<String> = rule
        .split(';')
        .map(|part| {
            let Some(value) = part.strip_prefix("UNTIL=") else { return part.to_string() };
            let local = if value.len() == 8 {
                NaiveDate::parse_from_str(value, "%Y%m%d").ok().and_then(|d| d.and_hms_opt(23, 59, 59))
            } else if !value.ends_with('Z') {
                NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").ok()
            } else {
                None
            };
            let Some(local) = local else { return part.to_string() };
            let utc = match first {
                First::Timed { zone, .. } => {
                    zone.from_local_datetime(&local).latest().map(|t| t.with_timezone(&Utc)).unwrap_or(local.and_utc())
                }
                First::AllDay(_) => local.and_utc(),
            };
            format!("UNTIL={}", utc.format("%Y%m%dT%H%M%SZ"))
        })
        .collect();
    parts.join(";")
}

fn instant_or_date(t: DateTime<Utc>, all_day: bool) -> String {
    if all_day { t.date_naive().to_string() } else { instant_text(t) }
}

/// A `recurrence.simple` pattern and range as one RFC 5545 `RRULE` line.
fn simple_rule(simple: &Value, first: &First) -> Result<String, String> {
    let pattern = simple.get("pattern").ok_or("simple without a pattern")?;
    let text = |key: &str| pattern.get(key).and_then(Value::as_str);
    let number = |key: &str| pattern.get(key).and_then(Value::as_u64);
    let days = || -> Result<Vec<&'static str>, String> {
        let list = pattern.get("daysOfWeek").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        list.iter().map(|d| weekday(d.as_str().unwrap_or_default())).collect()
    };
    let ordinal = || -> Result<i32, String> {
        match text("instance").unwrap_or("first") {
            "first" => Ok(1),
            "second" => Ok(2),
            "third" => Ok(3),
            "fourth" => Ok(4),
            "last" => Ok(-1),
            other => Err(format!("instance {other:?}")),
        }
    };
    let mut parts = Vec::new();
    let frequency = text("frequency").ok_or("a pattern without a frequency")?;
    let relative_days = || -> Result<String, String> {
        let n = ordinal()?;
        let days = days()?;
        if days.is_empty() {
            return Err("a relative pattern without days".into());
        }
        Ok(days.iter().map(|d| format!("{n}{d}")).collect::<Vec<_>>().join(","))
    };
    match frequency {
        "daily" => parts.push("FREQ=DAILY".to_string()),
        "weekly" => {
            parts.push("FREQ=WEEKLY".to_string());
            let days = days()?;
            if !days.is_empty() {
                parts.push(format!("BYDAY={}", days.join(",")));
            }
        }
        "monthly" => {
            parts.push("FREQ=MONTHLY".to_string());
            if let Some(day) = number("dayOfMonth") {
                parts.push(format!("BYMONTHDAY={day}"));
            }
        }
        "monthlyRelative" => {
            parts.push("FREQ=MONTHLY".to_string());
            parts.push(format!("BYDAY={}", relative_days()?));
        }
        "yearly" => {
            parts.push("FREQ=YEARLY".to_string());
            if let Some(month) = number("monthOfYear") {
                parts.push(format!("BYMONTH={month}"));
            }
            if let Some(day) = number("dayOfMonth") {
                parts.push(format!("BYMONTHDAY={day}"));
            }
        }
        "yearlyRelative" => {
            parts.push("FREQ=YEARLY".to_string());
            if let Some(month) = number("monthOfYear") {
                parts.push(format!("BYMONTH={month}"));
            }
            parts.push(format!("BYDAY={}", relative_days()?));
        }
        other => return Err(format!("frequency {other:?}")),
    }
    if let Some(interval) = number("interval").filter(|i| *i > 1) {
        parts.push(format!("INTERVAL={}", interval.min(u16::MAX.into())));
    }
    match text("weekStart") {
        Some("sunday") => parts.push("WKST=SU".into()),
        Some("monday") => parts.push("WKST=MO".into()),
        _ => {}
    }
    let range = simple.get("range");
    match range.and_then(|r| r.get("type")).and_then(Value::as_str) {
        Some("byCount") => {
            let count = range.and_then(|r| r.get("count")).and_then(Value::as_u64).ok_or("byCount without a count")?;
            parts.push(format!("COUNT={}", count.min(u32::MAX.into())));
        }
        Some("byDate") => {
            let end =
                range.and_then(|r| r.get("recurrenceEnd")).and_then(Value::as_str).ok_or("byDate without an end")?;
            let end = NaiveDate::parse_from_str(end, "%Y-%m-%d").map_err(|_| "an end that is not a date")?;
            // The last day counts whole, in the series' zone.
            let last = end.and_hms_opt(23, 59, 59).unwrap_or(NaiveDateTime::MIN);
            let until = match first {
                First::Timed { zone, .. } => zone
                    .from_local_datetime(&last)
                    .latest()
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(|| last.and_utc()),
                First::AllDay(_) => last.and_utc(),
            };
            parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
        }
        _ => {}
    }
    Ok(format!("RRULE:{}", parts.join(";")))
}

fn weekday(day: &str) -> Result<&'static str, String> {
    Ok(match day {
        "monday" => "MO",
        "tuesday" => "TU",
        "wednesday" => "WE",
        "thursday" => "TH",
        "friday" => "FR",
        "saturday" => "SA",
        "sunday" => "SU",
        other => return Err(format!("day {other:?}")),
    })
}

#[cfg(test)]
#[path = "recurrence_tests.rs"]
mod tests;
