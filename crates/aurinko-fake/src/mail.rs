//! Deterministic, varied, spec-valid email messages (`EmailMessage`) and how they are served.
//!
//! Like the events, messages come in the shapes different providers produce: Gmail, Graph and
//! IMAP-style ids, threads with and without a `threadId` (then listed in `omitted`), optional
//! subjects, senders without a name, `raw` addresses, recipients lists present, empty or absent,
//! and now and then a field the spec does not know. There is no `etag` (the schema has none): a
//! change shows in `lastModifiedTime` and in the content, usually `sysLabels`.
//!
//! The body is kept aside in both forms and only put into the record when a page is served, in
//! the form the provisioning's `bodyType` asked for; without one, `omitted` lists `"body"`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use super::generate::{BASE64URL, HEX, chars, email, pick, timestamp};
use super::tokens::BodyType;

/// Both forms of a message's body; the record never contains `body` itself.
#[derive(Clone, Debug)]
pub(crate) struct Bodies {
    pub html: String,
    pub text: String,
}

/// A message as stored by the fake.
#[derive(Clone, Debug)]
pub(crate) struct GeneratedMessage {
    pub id: String,
    pub received: DateTime<Utc>,
    pub record: Map<String, Value>,
    pub bodies: Bodies,
}

/// How far back generated messages go, so that `daysWithin` of 7 or 30 leaves some out.
pub(crate) const SPREAD_DAYS: i64 = 62;

const SUBJECTS: [&str; 18] = [
    "Quarterly numbers",
    "Invoice #4711",
    "Ünïcödé façade — résumé attached",
    "\"Quoted\" subject with 'single' quotes",
    "件名: 来週の打ち合わせ",
    "Привет из Москвы",
    "🎉 You're invited! 🚀",
    "Backslash \\ path C:\\temp\\new",
    "<script>alert(1)</script> & friends",
    "   padded subject   ",
    "Lunch?",
    "Your order has shipped",
    "Weekly newsletter – issue 42",
    "Re: Re: Fwd: the thread that never ends",
    "Tab\tseparated",
    "مرحبا بالعالم",
    "",
    "Action required: verify your account",
];

const PEOPLE: [(&str, &str); 9] = [
    ("Anna Virtanen", "anna@example.com"),
    ("Ben O'Neil", "ben.oneil@example.org"),
    ("Zoë Ünal", "zoe@example.net"),
    ("山田太郎", "taro.yamada@example.jp"),
    ("Smith, John", "john.smith@example.co.uk"),
    ("\"The Boss\"", "boss@example.com"),
    ("", "no-name@example.com"),
    ("Newsletter", "news+weekly@lists.example.com"),
    ("Ольга Иванова", "olga@example.ru"),
];

const LINES: [&str; 6] = [
    "Please find the numbers below.",
    "Can we move the meeting to Thursday?",
    "Ünïcödé everywhere: café, naïve, 東京, 😀.",
    "Use <b>bold</b> & \"quotes\" carefully.",
    "Line with a backslash \\ and a tab\there.",
    "Thanks!",
];

pub(crate) const FOLDERS: [(&str, &str); 6] = [
    ("inbox", "INBOX"),
    ("sent", "SENT"),
    ("draft", "DRAFT"),
    ("trash", "TRASH"),
    ("archive", "Label_7712"),
    ("archive", "AAMkAGI2TG93AAAuAAAAAAD0ZgSP-FolderXy_AQBvHg6AAA="),
];

/// A message id in one of the shapes providers use.
pub(crate) fn message_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..3) {
        // Gmail: 16 hex digits.
        0 => format!("18{}", chars(rng, HEX, 14)),
        // Graph: long base64url-like with padding.
        1 => format!("AAMkAGI2NGVh{}AAA=", chars(rng, BASE64URL, 120)),
        // IMAP through Aurinko: folder and UID.
        _ => format!("imap-{}-{}", chars(rng, HEX, 8), rng.random_range(1..1_000_000)),
    }
}

fn address(rng: &mut StdRng) -> Value {
    let (name, addr) = *pick(rng, &PEOPLE);
    let mut value = email(name, addr);
    if rng.random_bool(0.2)
        && let Value::Object(map) = &mut value
    {
        let raw = if name.is_empty() { addr.to_string() } else { format!("{name} <{addr}>") };
        map.insert("raw".into(), json!(raw));
    }
    value
}

fn addresses(rng: &mut StdRng, min: usize, max: usize) -> Value {
    let count = rng.random_range(min..=max);
    Value::Array((0..count).map(|_| address(rng)).collect())
}

fn subject(rng: &mut StdRng) -> Option<String> {
    if rng.random_bool(0.08) {
        return None;
    }
    let base = *pick(rng, &SUBJECTS);
    Some(match rng.random_range(0..10) {
        0 => format!("Re: {base}"),
        1 => format!("Fwd: {base}"),
        2 => format!("{base} #{}", rng.random_range(1..500)),
        3 if rng.random_bool(0.1) => format!("{} {base}", "Very long subject".repeat(20)),
        _ => base.to_string(),
    })
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn bodies(rng: &mut StdRng, sender: &str) -> Bodies {
    let lines: Vec<&str> = (0..rng.random_range(1..4)).map(|_| *pick(rng, &LINES)).collect();
    let sender = if sender.is_empty() { "Someone" } else { sender };
    let text = format!("Hi,\r\n\r\n{}\r\n\r\n— {sender}\r\n", lines.join("\r\n"));
    let paragraphs: String = lines.iter().map(|line| format!("<p>{}</p>", escape_html(line))).collect();
    let html = format!(
        "<html><head><meta charset=\"utf-8\"></head><body><p>Hi,</p>{paragraphs}<p>— {}</p></body></html>",
        escape_html(sender)
    );
    Bodies { html, text }
}

fn snippet(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(100).collect()
}

/// One message. Generated messages were received during the last [`SPREAD_DAYS`] days before
/// `anchor`; a created one (`received: Some(now)`) has just arrived in the inbox.
pub(crate) fn message(
    rng: &mut StdRng,
    anchor: DateTime<Utc>,
    id: String,
    received: Option<DateTime<Utc>>,
) -> GeneratedMessage {
    let fresh = received.is_some();
    let received = received.unwrap_or_else(|| {
        let millis = rng.random_range(0..SPREAD_DAYS * 86_400_000);
        anchor - Duration::milliseconds(millis)
    });
    let folder = if fresh {
        "inbox"
    } else {
        *pick(rng, &["inbox", "inbox", "inbox", "inbox", "inbox", "inbox", "sent", "sent", "draft", "trash", "archive"])
    };
    let folder_id = {
        let candidates: Vec<&str> = FOLDERS.iter().filter(|(kind, _)| *kind == folder).map(|(_, id)| *id).collect();
        *pick(rng, &candidates)
    };
    let mut labels: Vec<&str> = Vec::new();
    match folder {
        "inbox" => {
            labels.push("inbox");
            if fresh || rng.random_bool(0.4) {
                labels.push("unread");
            }
        }
        "trash" => labels.push("trash"),
        "sent" => labels.push("sent"),
        "draft" => labels.push("draft"),
        _ => {}
    }
    if folder != "draft" && rng.random_bool(0.1) {
        labels.push("flagged");
    }
    if rng.random_bool(0.2) {
        labels.push("important");
    }

    let mut r = Map::new();
    r.insert("id".into(), json!(id));
    let mut omitted: Vec<&str> = Vec::new();
    if rng.random_bool(0.1) {
        omitted.push("threadId");
    } else if rng.random_bool(0.5) {
        r.insert("threadId".into(), json!(id));
    } else {
        r.insert("threadId".into(), json!(format!("thr-{:04}", rng.random_range(0..300))));
    }
    r.insert("folderId".into(), json!(folder_id));
    r.insert("internetMessageId".into(), json!(format!("<{}.{}@mail.example.com>", chars(rng, HEX, 24), id.len())));
    let created = received + Duration::milliseconds(rng.random_range(0..3000));
    let modified = if fresh || rng.random_bool(0.6) {
        created
    } else {
        let span = (anchor - created).num_milliseconds().max(1);
        created + Duration::milliseconds(rng.random_range(0..span))
    };
    r.insert("createdTime".into(), json!(timestamp(created)));
    r.insert("lastModifiedTime".into(), json!(timestamp(modified)));
    if folder != "draft" {
        let sent = received - Duration::seconds(rng.random_range(0..600));
        let format = if rng.random_bool(0.3) { SecondsFormat::Secs } else { SecondsFormat::Millis };
        r.insert("sentAt".into(), json!(sent.to_rfc3339_opts(format, true)));
    }
    r.insert("receivedAt".into(), json!(timestamp(received)));
    let subject = subject(rng);
    if let Some(subject) = &subject {
        r.insert("subject".into(), json!(subject));
    }
    let from = address(rng);
    let sender = from.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    r.insert("from".into(), from);
    match rng.random_range(0..10) {
        0 => {}
        1 => {
            r.insert("to".into(), json!([]));
        }
        _ => {
            r.insert("to".into(), addresses(rng, 1, 4));
        }
    }
    if rng.random_bool(0.4) {
        r.insert("cc".into(), addresses(rng, 0, 3));
    }
    if folder == "sent" && rng.random_bool(0.2) {
        r.insert("bcc".into(), addresses(rng, 1, 2));
    }
    if rng.random_bool(0.05) {
        r.insert("replyTo".into(), addresses(rng, 1, 1));
    }
    r.insert("sysLabels".into(), json!(labels));
    if rng.random_bool(0.2) {
        const KEYWORDS: [&[&str]; 3] = [&["$label1"], &["Work", "Ünïcode"], &[]];
        let keywords = *pick(rng, &KEYWORDS);
        r.insert("keywords".into(), json!(keywords));
    }
    if folder == "inbox" && rng.random_bool(0.5) {
        r.insert(
            "sysClassifications".into(),
            json!([pick(rng, &["personal", "social", "promotions", "updates", "forums"])]),
        );
    }
    if rng.random_bool(0.3) {
        r.insert("sensitivity".into(), json!(pick(rng, &["normal", "normal", "private", "personal", "confidential"])));
    }
    if rng.random_bool(0.03) {
        r.insert("meetingMessageMethod".into(), json!(pick(rng, &["request", "reply", "cancel", "counter", "other"])));
    }
    let has_attachments = rng.random_bool(0.2);
    r.insert("hasAttachments".into(), json!(has_attachments));
    if has_attachments {
        omitted.push("attachments");
    }
    let bodies = bodies(rng, &sender);
    r.insert("bodySnippet".into(), json!(snippet(&bodies.text)));
    if subject.as_deref().is_some_and(|s| s.starts_with("Re:")) {
        let parent = format!("<{}@mail.example.com>", chars(rng, HEX, 16));
        r.insert("inReplyTo".into(), json!(parent));
        r.insert("references".into(), json!(parent));
    }
    if rng.random_bool(0.3) {
        r.insert("webLink".into(), json!(format!("https://mail.example.com/mail/u/0/#all/{}", chars(rng, HEX, 16))));
    }
    if rng.random_bool(0.05) {
        r.insert("nativeProperties".into(), json!({ "X-GM-THRID": format!("{}", rng.random_range(1u64..u64::MAX)) }));
    }
    if !omitted.is_empty() {
        r.insert("omitted".into(), json!(omitted));
    }
    if rng.random_bool(0.08) {
        // Fields beyond the spec appear in real responses; clients must ignore them.
        r.insert("x-extra".into(), json!({ "source": "fake", "flags": [1, 2, 3], "nested": { "ok": true } }));
    }
    GeneratedMessage { id, received, record: r, bodies }
}

/// An update as a mail client causes it: read/unread always flips, sometimes the flag too.
pub(crate) fn update(rng: &mut StdRng, record: &mut Map<String, Value>, modified: DateTime<Utc>) {
    let mut labels: Vec<Value> = record.get("sysLabels").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut toggle = |label: &str| match labels.iter().position(|l| l == label) {
        Some(at) => {
            labels.remove(at);
        }
        None => labels.push(json!(label)),
    };
    toggle("unread");
    if rng.random_bool(0.3) {
        toggle("flagged");
    }
    record.insert("sysLabels".into(), Value::Array(labels));
    record.insert("lastModifiedTime".into(), json!(timestamp(modified)));
}

/// The record as served to a provisioning with `body`.
pub(crate) fn render(record: &Map<String, Value>, bodies: &Bodies, body: BodyType) -> Map<String, Value> {
    let mut out = record.clone();
    match body {
        BodyType::Html => {
            out.insert("body".into(), json!(bodies.html));
        }
        BodyType::Text => {
            out.insert("body".into(), json!(bodies.text));
        }
        BodyType::Omitted => {
            let omitted = out.entry("omitted").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = omitted {
                list.push(json!("body"));
            }
        }
    }
    out
}
