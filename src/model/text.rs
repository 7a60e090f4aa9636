//! Text from a server made inert: data, not terminal or log control.
//!
//! Aurinko's error messages, calendar and folder names, ids: anything a
//! server sends may hold ESC (recolouring or clearing a terminal), CR and
//! LF (forging log lines), other C0 and C1 controls, or bidi overrides
//! (showing text in another order than it is stored). [`inert`] is applied
//! where such text enters (the API client) and again where stored text is
//! shown (`state`), for rows written before it was applied.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1), bidi control and line
/// or paragraph separator written as a visible escape (`\n`, `\r`, `\t`,
/// `\u{1b}`), so it prints on one line, as sent. Text without any is
/// returned as it is.
pub fn inert(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text with the characters [`inert`] escapes written as JSON
/// escapes (`\u202e`), where JSON would leave them raw (DEL, C1, bidi
/// controls, separators): once parsed, the same document (ids stay exact);
/// printed, nothing that steers a terminal. Valid JSON holds such
/// characters only inside strings, where the escape means the character.
pub fn inert_json(json: &str) -> Cow<'_, str> {
    // C0 controls are escaped by JSON inside strings; outside them only
    // its whitespace may stand, which stays.
    let raw_in_json = |c: char| is_unsafe(c) && c >= '\u{7f}';
    if !json.chars().any(raw_in_json) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw_in_json(c) {
            // Every such character is in the Basic Multilingual Plane.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, left-to-right and right-to-left marks,
            // embeddings and overrides, isolates; line and paragraph separators.
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// `s` with every occurrence of `secret` replaced by `[redacted]`: a server
/// may echo the token it was sent, and such text is logged and stored.
pub fn redact<'a>(s: &'a str, secret: &str) -> Cow<'a, str> {
    if secret.is_empty() || !s.contains(secret) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace(secret, "[redacted]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_become_visible_escapes() {
        assert_eq!(inert("plain «text», äö"), "plain «text», äö");
        assert!(matches!(inert("plain"), Cow::Borrowed(_)));
        assert_eq!(inert("\x1b[31mred\x1b[0m"), "\\u{1b}[31mred\\u{1b}[0m");
        assert_eq!(inert("a\r\nERROR forged"), "a\\r\\nERROR forged");
        assert_eq!(inert("tab\there\0\x7f"), "tab\\there\\u{0}\\u{7f}");
        assert_eq!(inert("c1 \u{9b}31m"), "c1 \\u{9b}31m");
        assert_eq!(inert("evil\u{202e}txt.exe\u{2066}"), "evil\\u{202e}txt.exe\\u{2066}");
        assert_eq!(inert("line\u{2028}sep"), "line\\u{2028}sep");
        // Escaping what is already escaped changes nothing more.
        let once = inert("\x1b\r\n\u{202e}").into_owned();
        assert_eq!(inert(&once), once);
    }

    #[test]
    fn json_keeps_its_meaning_without_raw_controls() {
        let value = serde_json::json!({ "id": "a\u{202e}b\u{9b}\u{7f}\n", "plain": "äö" });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let inert = inert_json(&text);
        assert!(!inert.chars().any(|c| is_unsafe(c) && !matches!(c, '\n' | '\t' | '\r')), "{inert}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&inert).unwrap(), value);
        assert!(matches!(inert_json("{\"a\":\"äö\"}"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_secret_is_redacted_wherever_it_appears() {
        assert_eq!(redact("token tok-1 and tok-1.", "tok-1"), "token [redacted] and [redacted].");
        assert_eq!(redact("nothing", "tok-1"), "nothing");
        assert_eq!(redact("empty secret", ""), "empty secret");
    }
}
