//! Deterministic, varied, spec-valid contacts (`Contact`).
//!
//! Address books hold everything from complete cards to a bare e-mail address: the fake makes
//! contacts with a full structured name, with only a `displayName`, or with no name at all; zero
//! to three e-mail addresses; phone numbers, company, postal addresses and notes now and then.
//! An update changes `etag`, `lastModifiedTime` and `notes`.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use super::generate::{BASE64URL, HEX, chars, etag, pick, timestamp};

/// (given, middle, family, family-name-first, yomi given, yomi family)
type Name = (&'static str, &'static str, &'static str, bool, &'static str, &'static str);

const NAMES: [Name; 9] = [
    ("Anna", "", "Virtanen", false, "", ""),
    ("Ben", "", "O'Neil", false, "", ""),
    ("Zoë", "", "Ünal", false, "", ""),
    ("太郎", "", "山田", true, "タロウ", "ヤマダ"),
    ("María José", "", "García Márquez", false, "", ""),
    ("Ольга", "Петровна", "Иванова", false, "", ""),
    ("Jean-Luc", "", "Picard", false, "", ""),
    ("Seán", "Pádraig", "Ó Briain", false, "", ""),
    ("Li", "", "Wei", true, "", ""),
];

const COMPANIES: [&str; 5] = ["Acme Oy", "Ünïcorn GmbH", "株式会社サンプル", "\"Quotes\" & Co", "Example Corp."];

const DOMAINS: [&str; 5] = ["example.com", "example.org", "mail.example.net", "example.co.jp", "xn--exmple-cua.com"];

/// A contact id in one of the shapes providers use.
pub(crate) fn contact_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..3) {
        // Google People: "c" and a large decimal number.
        0 => format!("c{}", rng.random_range(1_000_000_000_000_000_000u64..u64::MAX)),
        // Graph: long base64url-like with padding.
        1 => format!("AAMkADk0ZjU{}AAA=", chars(rng, BASE64URL, 110)),
        // CardDAV-style UUID.
        _ => format!(
            "{}-{}-{}-{}-{}",
            chars(rng, HEX, 8),
            chars(rng, HEX, 4),
            chars(rng, HEX, 4),
            chars(rng, HEX, 4),
            chars(rng, HEX, 12)
        ),
    }
}

fn ascii_local(text: &str) -> String {
    let local: String = text
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => Some(c.to_ascii_lowercase()),
            ' ' | '-' | '\'' => Some('.'),
            _ => None,
        })
        .collect();
    // No leading, trailing or doubled dots: those make an invalid address.
    let parts: Vec<&str> = local.split('.').filter(|part| !part.is_empty()).collect();
    if parts.is_empty() { "contact".to_string() } else { parts.join(".") }
}

/// One contact. Generated contacts were created up to two years before `anchor`; a created one
/// (`created: Some(now)`) is brand new.
pub(crate) fn contact(
    rng: &mut StdRng,
    anchor: DateTime<Utc>,
    id: String,
    created: Option<DateTime<Utc>>,
) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("id".into(), json!(id));
    r.insert("etag".into(), json!(etag(rng)));
    let (created, modified) = match created {
        Some(at) => (at, at),
        None => {
            let created = anchor - Duration::minutes(rng.random_range(1440..730 * 1440));
            let span = (anchor - created).num_minutes().max(1);
            (created, created + Duration::minutes(rng.random_range(0..span)))
        }
    };
    r.insert("createdTime".into(), json!(timestamp(created)));
    r.insert("lastModifiedTime".into(), json!(timestamp(modified)));

    let (given, middle, family, family_first, yomi_given, yomi_family) = *pick(rng, &NAMES);
    let display = if family_first { format!("{family}{given}") } else { format!("{given} {family}") };
    let name_shape = rng.random_range(0..20);
    match name_shape {
        // Full structured name.
        0..=13 => {
            let mut name = Map::new();
            name.insert("displayName".into(), json!(display));
            name.insert("givenName".into(), json!(given));
            if !middle.is_empty() {
                name.insert("middleName".into(), json!(middle));
            }
            name.insert("familyName".into(), json!(family));
            if rng.random_bool(0.1) {
                name.insert("prefix".into(), json!(pick(rng, &["Dr.", "Ms.", "Mr.", "Prof."])));
            }
            if rng.random_bool(0.05) {
                name.insert("suffix".into(), json!(pick(rng, &["Jr.", "PhD", "III"])));
            }
            if !yomi_given.is_empty() {
                name.insert("yomiGivenName".into(), json!(yomi_given));
                name.insert("yomiFamilyName".into(), json!(yomi_family));
            }
            r.insert("name".into(), Value::Object(name));
        }
        // Only a display name.
        14..=16 => {
            r.insert("name".into(), json!({ "displayName": display }));
        }
        // No name at all.
        _ => {}
    }

    let local = ascii_local(&format!("{given} {family}"));
    let emails: Vec<Value> = (0..*pick(rng, &[0usize, 1, 1, 1, 2, 3]))
        .map(|n| {
            let mut e = Map::new();
            let domain = pick(rng, &DOMAINS);
            let address = if n == 0 { format!("{local}@{domain}") } else { format!("{local}{n}@{domain}") };
            e.insert("address".into(), json!(address));
            if rng.random_bool(0.4) {
                e.insert("name".into(), json!(display));
            }
            e.insert("type".into(), json!(pick(rng, &["work", "home", "other", "personal"])));
            Value::Object(e)
        })
        .collect();
    if !emails.is_empty() || rng.random_bool(0.3) {
        r.insert("emailAddresses".into(), Value::Array(emails));
    }
    if rng.random_bool(0.4) {
        let phones: Vec<Value> = (0..rng.random_range(1..=2))
            .map(|_| {
                let digits = format!("{}", rng.random_range(100_000_000u64..999_999_999));
                let mut p = Map::new();
                p.insert("number".into(), json!(format!("+358 {} {}", &digits[..2], &digits[2..])));
                p.insert("type".into(), json!(pick(rng, &["mobile", "work", "home", "other", "workFax", "main"])));
                if rng.random_bool(0.5) {
                    p.insert("canonicalForm".into(), json!(format!("+358{digits}")));
                }
                Value::Object(p)
            })
            .collect();
        r.insert("phoneNumbers".into(), Value::Array(phones));
    }
    if rng.random_bool(0.3) || name_shape >= 17 && rng.random_bool(0.5) {
        let mut company = Map::new();
        company.insert("name".into(), json!(pick(rng, &COMPANIES)));
        if rng.random_bool(0.5) {
            company.insert("jobTitle".into(), json!(pick(rng, &["Engineer", "CEO", "Développeuse", "営業"])));
        }
        if rng.random_bool(0.3) {
            company.insert("department".into(), json!("R&D"));
        }
        r.insert("company".into(), Value::Object(company));
    }
    if rng.random_bool(0.1) {
        r.insert("nickName".into(), json!(pick(rng, &["Annie", "Benji", "Z", "たろちゃん"])));
    }
    if rng.random_bool(0.1) {
        r.insert("fileAs".into(), json!(format!("{family}, {given}")));
    }
    if rng.random_bool(0.15) {
        let birthday = if rng.random_bool(0.8) {
            format!("{}-{:02}-{:02}", rng.random_range(1950..2005), rng.random_range(1..13), rng.random_range(1..29))
        } else {
            format!("--{:02}-{:02}", rng.random_range(1..13), rng.random_range(1..29))
        };
        r.insert("birthday".into(), json!(birthday));
    }
    if rng.random_bool(0.15) {
        r.insert("notes".into(), json!(format!("Met at \"conf\" #{}\nÜnïcödé ✓ line two", rng.random_range(1..100))));
    }
    if rng.random_bool(0.1) {
        r.insert("keywords".into(), json!(["VIP", "Family"]));
    }
    if rng.random_bool(0.15) {
        r.insert(
            "addresses".into(),
            json!([{
                "street": "Mannerheimintie 1",
                "city": "Helsinki",
                "postalCode": "00100",
                "country": "Suomi",
                "type": pick(rng, &["work", "home", "other"]),
            }]),
        );
    }
    if rng.random_bool(0.05) {
        r.insert("urls".into(), json!([{ "href": "https://example.com/~me", "type": "homePage" }]));
    }
    if rng.random_bool(0.05) {
        r.insert("relations".into(), json!([{ "name": "Anna Virtanen", "type": "manager" }]));
    }
    if rng.random_bool(0.3) {
        r.insert("hasPhoto".into(), json!(rng.random_bool(0.5)));
    }
    if rng.random_bool(0.08) {
        // Fields beyond the spec appear in real responses; clients must ignore them.
        r.insert("x-extra".into(), json!({ "source": "fake", "nested": { "ok": true } }));
    }
    r
}

/// New etag, later `lastModifiedTime`, different notes.
pub(crate) fn update(rng: &mut StdRng, record: &mut Map<String, Value>, modified: DateTime<Utc>) {
    record.insert("etag".into(), json!(etag(rng)));
    record.insert("lastModifiedTime".into(), json!(timestamp(modified)));
    record.insert("notes".into(), json!(format!("Updated (rev {})", rng.random_range(1..1_000_000))));
}
