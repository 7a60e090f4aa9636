//! A sync page's records split in the page's one pass equal the records
//! read whole and split after, whatever the page holds and however it is
//! spelled.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::model::Kind;

/// What a record became: its text and row, or why it was rejected.
type Outcome = Result<(String, Result<crate::model::Row, Rejected>), Rejected>;

fn outcome(record: Result<Record<'_>, Rejected>) -> Outcome {
    record.map(|r| (r.as_sent().to_string(), Kind::Calendar.row_of(r)))
}

/// The page read the other way: its records whole, each split after.
fn reference(body: &[u8]) -> Vec<Outcome> {
    let whole: WholeSyncPage<'_> = decode_object(body).unwrap();
    whole.records.unwrap_or_default().into_iter().map(|raw| outcome(Record::parse(raw))).collect()
}

fn one_pass(body: &[u8]) -> Vec<Outcome> {
    sync_page_of(body, outcome).unwrap().records
}

/// Names as records carry them, and some that need escapes.
fn name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec!["id", "etag", "subject", "start", "end", "iCalUid", "recurrenceType"])
            .prop_map(str::to_string),
        1 => prop::sample::select(vec!["q\"k", "t\tk", "b\\k", "é", ""]).prop_map(str::to_string),
        1 => "\\PC{0,6}",
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!({"dateTime": "2026-11-27T10:00:00+02:00", "timezone": "Europe/Helsinki"})),
        Just(json!({"dateOnly": "2026-11-27"})),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec((name(), inner), 0..4).prop_map(|f| Value::Object(f.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A record (an object, perhaps without an id) or something else.
fn element() -> BoxedStrategy<Value> {
    let record = prop::collection::vec((name(), value()), 0..6).prop_map(|fields| {
        let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
        object.entry("id").or_insert_with(|| Value::from("e1"));
        Value::Object(object)
    });
    prop_oneof![6 => record, 1 => value()].boxed()
}

/// The page spelled compactly, pretty, or with odd spaces between records.
fn body() -> BoxedStrategy<String> {
    prop::collection::vec(element(), 0..5)
        .prop_flat_map(|records| {
            let page = json!({"records": records.clone(), "nextDeltaToken": "D"});
            let spaced = format!(
                "{{ \"records\" :\t[{}\r\n]\n, \"nextDeltaToken\":\"D\" }}",
                records
                    .iter()
                    .map(|r| format!("\n\t {} \r", serde_json::to_string(r).unwrap()))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            prop::sample::select(vec![
                serde_json::to_string(&page).unwrap(),
                serde_json::to_string_pretty(&page).unwrap(),
                spaced,
            ])
        })
        .boxed()
}

proptest! {
    #[test]
    fn records_split_in_one_pass_equal_records_read_whole(body in body()) {
        prop_assert_eq!(one_pass(body.as_bytes()), reference(body.as_bytes()));
    }
}

#[test]
fn a_record_that_cannot_be_placed_sends_the_page_the_other_way() {
    // A first name with an escape is not borrowed from the body; an empty
    // object has no field to place it by.
    for body in [
        r#"{"records":[{"id":"a","x":1}, {"q\"k":1,"id":"b"} ,{} , 7],"nextDeltaToken":"D"}"#,
        "{\"records\":[ {}, { \"id\" : \"c\" } ]}",
        // Too large a number for the one pass (not for the other).
        r#"{"records":[{"id":"a"}, 1e400, -1e999],"nextPageToken":"P"}"#,
    ] {
        let got = one_pass(body.as_bytes());
        assert_eq!(got, reference(body.as_bytes()), "{body}");
        let page = sync_page_of(body.as_bytes(), outcome).unwrap();
        let whole: WholeSyncPage<'_> = decode_object(body.as_bytes()).unwrap();
        assert_eq!((page.next_page_token, page.next_delta_token), (whole.next_page_token, whole.next_delta_token));
        assert!(got.iter().any(Result::is_ok), "{body}");
    }
    let got = one_pass(br#"{"records":[ {"id":"a"} , {"id":"b","n":[1,{"}":"{"}]}	]}"#);
    let texts: Vec<&str> = got.iter().map(|o| o.as_ref().unwrap().0.as_str()).collect();
    assert_eq!(texts, [r#"{"id":"a"}"#, r#"{"id":"b","n":[1,{"}":"{"}]}"#]);
}

#[test]
fn a_body_that_is_no_page_gets_the_error_it_got_before() {
    for body in [r#"[null, "D", [{"id": "a"}]]"#, r#"{"records": {"id": "a"}}"#, "{\"records\": []} x", "7"] {
        let error = sync_page_of(body.as_bytes(), outcome).map(|p| p.records).unwrap_err();
        assert_eq!(error, decode_object::<WholeSyncPage<'_>>(body.as_bytes()).unwrap_err(), "{body}");
    }
}
