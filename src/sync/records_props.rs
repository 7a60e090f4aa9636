use super::records::*;
use serde_json::value::RawValue;

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_string()).unwrap()
}

#[test]
fn probe() {
    println!("arr1 {:?}", parse_deleted(&raw(r#"["e1"]"#)));
    println!("dupid del {:?}", parse_deleted(&raw(r#"{"id":"a","id":"b"}"#)));
    println!("dupid ev {:?}", parse_event(&raw(r#"{"id":"a","id":"b"}"#)).map(|r| r.id));
    let deep = format!("{{\"id\":\"d\",\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    println!("deep ev {:?}", parse_event(&raw(&deep)).map(|r| r.id));
    println!("deep del {:?}", parse_deleted(&raw(&deep)));
    let page = format!("{{\"nextDeltaToken\":\"D\",\"records\":[{deep}]}}");
    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct P {
        #[serde(default)]
        next_page_token: Option<String>,
        #[serde(default)]
        next_delta_token: Option<String>,
        #[serde(default)]
        records: Option<Vec<Box<RawValue>>>,
    }
    println!("page {:?}", serde_json::from_str::<P>(&page).map(|p| p.records.map(|r| r.len())));
    println!("arr page {:?}", serde_json::from_str::<P>(r#"[null,"D2",[{"id":"x"}]]"#));
    println!("arr page short {:?}", serde_json::from_str::<P>(r#"["P2"]"#));
    for s in [
        "9999-12-31T23:00:00-02:00",
        "0000-01-01T00:30:00+01:00",
        "2026-06-30T23:59:60Z",
        "2026-01-01t10:00:00z",
        "2026-01-01 10:00:00Z",
    ] {
        println!(
            "{s} -> {:?}",
            parse_event(&raw(&format!(r#"{{"id":"x","start":{{"dateTime":"{s}"}}}}"#))).unwrap().text(1)
        );
    }
    for s in ["2026-1-5", "+12026-01-05", "2026-02-30", " 2026-01-05", "02026-01-05"] {
        println!(
            "{s} -> {:?}",
            parse_event(&raw(&format!(r#"{{"id":"x","start":{{"dateOnly":"{s}"}}}}"#))).unwrap().text(1)
        );
    }
    println!(
        "{:?}",
        parse_event(&raw(r#"{"id":"x","start":{"dateTime":null,"dateOnly":"2026-01-01"}}"#)).unwrap().flag(3)
    );
    println!(
        "{:?}",
        parse_event(&raw(r#"{"id":"x","start":{"dateTime":5,"dateOnly":"2026-01-01"}}"#)).unwrap().flag(3)
    );
    println!("{:?}", parse_event(&raw(r#"{"id":"x","start":{"dateOnly":5}}"#)).unwrap().flag(3));
}
