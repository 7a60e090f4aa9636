//! The forms a secret may take where it leaks, and a search for all of them
//! at once: what `secrets.rs` looks for in output, logs and files.
//!
//! A leak need not be the secret's exact bytes: it may be encoded (hex,
//! base64, percent-encoding, JSON or `Debug` escaping) or only a part of it
//! (cut, truncated, split). So the needles are the encodings of every piece
//! of [`PIECE`] characters of the secret, not of the whole secret:
//!
//! - Encodings that map each character on its own (raw, JSON-escaped once
//!   and twice, hex lower and upper, percent-encoded with the usual sets,
//!   `%2f` or `%2F`, space as `%20` or `+`): the encoding of each piece
//!   appears inside the encoding of anything that contains the piece.
//! - Base64 (standard and URL-safe; padding only ever ends a string, so it
//!   cannot matter for a piece): a character holds bits of up to two input
//!   bytes, so which characters a secret yields depends on where it starts
//!   in the encoded text, modulo 3 bytes. For each of the three alignments
//!   the characters that depend on the secret's bytes alone are kept, and
//!   every run of [`PIECE`] of them (48 bits of the secret) is a needle.
//!
//! Why this is sound (no false alarms): a secret is mostly random
//! alphanumerics, so a needle carries at least about 40 random bits; a
//! haystack of tens of MB against a few thousand needles expects far less
//! than one chance match. Shorter needles would not be: 8 hex characters are
//! only 4 bytes (32 bits) and would turn up by chance in the hex etags and
//! ids the store holds, which is why the hex needles are 16 characters, the
//! hex of an 8-character piece.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters of a secret a needle stands for.
pub const PIECE: usize = 8;

/// What a query string or form encoder leaves alone (`application/x-www-form-urlencoded`).
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');
/// What a path or query component encoder changes: less than everything.
const COMPONENT: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'<').add(b'>').add(b'?').add(b'`').add(b'{').add(b'}');

/// A secret's name, and the needles standing for it with the form each is in.
pub struct Secret {
    name: String,
    needles: Vec<(String, Vec<u8>)>,
}

impl Secret {
    pub fn new(name: &str, secret: &str) -> Secret {
        assert!(secret.is_ascii() && secret.len() >= 2 * PIECE, "a secret long enough to have pieces");
        let mut needles = Vec::new();
        let chars = secret.as_bytes();
        for piece in chars.windows(PIECE) {
            let piece = std::str::from_utf8(piece).unwrap();
            for (form, text) in char_wise_forms(piece) {
                needles.push((form.to_string(), text.into_bytes()));
            }
        }
        for (alphabet, encode) in [("base64", b64_std as fn(&[u8]) -> String), ("URL-safe base64", b64_url)] {
            for align in 0..3 {
                let mut input = vec![0u8; align];
                input.extend_from_slice(chars);
                let encoded = encode(&input);
                // Characters before `first` hold bits of the prefix; from
                // `end` on, bits of what follows (or padding).
                let first = (8 * align).div_ceil(6);
                let end = 8 * input.len() / 6;
                for window in encoded.as_bytes()[first..end].windows(PIECE) {
                    needles.push((format!("{alphabet} (alignment {align})"), window.to_vec()));
                }
            }
        }
        Secret { name: name.to_string(), needles }
    }
}

fn b64_std(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

fn b64_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The forms of a piece under encodings that map each character on its own.
fn char_wise_forms(piece: &str) -> Vec<(&'static str, String)> {
    let json = serde_json::to_string(piece).unwrap();
    let json = json[1..json.len() - 1].to_string();
    let json_twice = serde_json::to_string(&json).unwrap();
    let hex: String = piece.bytes().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        ("raw", piece.to_string()),
        ("JSON-escaped", json),
        ("JSON-escaped twice", json_twice[1..json_twice.len() - 1].to_string()),
        ("hex", hex.clone()),
        ("HEX", hex.to_uppercase()),
    ];
    for (name, set) in [("percent-encoded", NON_ALPHANUMERIC), ("form-encoded", FORM), ("component-encoded", COMPONENT)]
    {
        let upper = utf8_percent_encode(piece, set).to_string();
        let lower = lower_escapes(&upper);
        forms.push((name, upper.clone()));
        forms.push((name, upper.replace("%20", "+")));
        forms.push((name, lower));
    }
    forms.sort_by(|a, b| a.1.cmp(&b.1));
    forms.dedup_by(|a, b| a.1 == b.1);
    forms
}

/// `%2F` as `%2f`: some encoders write lower-case escapes.
fn lower_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// Every needle of several secrets, found in one pass over a haystack: the
/// needles are indexed by their first [`PIECE`] bytes.
pub struct Search<'a> {
    secrets: &'a [Secret],
    by_prefix: HashMap<[u8; PIECE], Vec<(usize, usize)>>,
}

impl<'a> Search<'a> {
    pub fn new(secrets: &'a [Secret]) -> Search<'a> {
        let mut by_prefix: HashMap<[u8; PIECE], Vec<(usize, usize)>> = HashMap::new();
        for (s, secret) in secrets.iter().enumerate() {
            for (n, (_, needle)) in secret.needles.iter().enumerate() {
                by_prefix.entry(needle[..PIECE].try_into().unwrap()).or_default().push((s, n));
            }
        }
        Search { secrets, by_prefix }
    }

    /// What of which secret `haystack` holds, each as "the secret's name: the
    /// form at byte offset", at most one finding per secret and form.
    pub fn find(&self, haystack: &[u8]) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for (at, window) in haystack.windows(PIECE).enumerate() {
            let Some(candidates) = self.by_prefix.get(window) else { continue };
            for &(s, n) in candidates {
                let (form, needle) = &self.secrets[s].needles[n];
                if haystack[at..].starts_with(needle) {
                    let name = &self.secrets[s].name;
                    let seen = format!("{name}: {form}");
                    if !found.iter().any(|f| f.starts_with(&seen)) {
                        found.push(format!("{seen} at byte {at}: {:?}", String::from_utf8_lossy(needle)));
                    }
                }
            }
        }
        found
    }
}

/// The search finds each form it promises, and nothing in text without the
/// secret.
#[test]
fn every_form_of_a_piece_of_a_secret_is_found_and_nothing_else() {
    let secret = "Ab3xQ9+/=Zk7pW2%\"mR5 tY8vN1=";
    let secrets = [Secret::new("the secret", secret)];
    let search = Search::new(&secrets);
    let cut = &secret[..secret.len() - 3];
    let middle = &secret[5..5 + PIECE];
    let hex: String = cut.bytes().map(|b| format!("{b:02x}")).collect();
    let leaks = [
        secret.to_string(),
        cut.to_string(),
        format!("token={middle};"),
        hex.clone(),
        hex.to_uppercase(),
        format!("Bearer {}", STANDARD_NO_PAD.encode(secret)),
        format!("x{}", base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}"))),
        format!("a{}", URL_SAFE_NO_PAD.encode(format!("xy{cut}"))),
        utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        lower_escapes(&utf8_percent_encode(secret, FORM).to_string()).replace("%20", "+"),
        format!("{{\"token\":{}}}", serde_json::to_string(secret).unwrap()),
        format!("{:?}", format!("{secret:?}")),
    ];
    for leak in leaks {
        assert!(!search.find(leak.as_bytes()).is_empty(), "{leak:?} is found");
    }
    let innocent = format!("{} {} etag W/\"9fb1b2f20760dee4\" {}", &secret[..PIECE - 1], &secret[9..16], &hex[..14]);
    assert_eq!(search.find(innocent.as_bytes()), Vec::<String>::new());
}
