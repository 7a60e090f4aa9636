//! Errors in the user's terms, not the program's.
//!
//! serde speaks of the types it was filling (`invalid type: string "x",
//! expected i64`, `expected struct RawEmail`): names from our source that
//! mean nothing to whoever edits the configuration or reads a failed
//! request. The OS speaks of error kinds (`entity not found`) without saying
//! which path. [`serde_message`] and [`io_message`] say the same in words a
//! user acts on.

use std::io::ErrorKind;
use std::path::Path;

/// What a serde value is called in the document being read: the TOML
/// configuration or a JSON answer from Aurinko.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Toml,
    Json,
}

impl Document {
    fn object(self) -> &'static str {
        match self {
            Document::Toml => "a table",
            Document::Json => "a JSON object",
        }
    }
}

/// serde's message with its type names replaced: `invalid type: string
/// "x", expected i64` becomes `"x" is text, expected a whole number`.
/// Anything after the sentence serde wrote (serde_json's ` at line 1
/// column 9`) is kept.
pub fn serde_message(message: &str, document: Document) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, rest)) = rest.split_once(", expected ")
        {
            let (expected, tail) = split_tail(rest);
            let found = found_in_words(found, document);
            return format!("{found} is not {}{tail}", expected_in_words(expected, document));
        }
    }
    if let Some(rest) = message.strip_prefix("data did not match any variant of untagged enum ") {
        let (_, tail) = split_tail(rest);
        return format!("not one of the accepted forms{tail}");
    }
    message.replace("struct ", "").to_string()
}

/// serde_json ends its messages with ` at line L column C`.
fn split_tail(rest: &str) -> (&str, &str) {
    match rest.find(" at line ") {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    }
}

/// serde's `Unexpected`: `string "x"`, `integer `5``, `sequence`, ...
fn found_in_words(found: &str, document: Document) -> String {
    let quoted = |s: &str| s.trim_matches('`').to_string();
    if let Some(s) = found.strip_prefix("string ") {
        return format!("{s} (text)");
    }
    for prefix in ["integer ", "floating point ", "boolean ", "char "] {
        if let Some(v) = found.strip_prefix(prefix) {
            return quoted(v);
        }
    }
    match found {
        "sequence" => "a list".into(),
        "map" => document.object().into(),
        "unit value" | "null" => "an empty value".into(),
        other => other.into(),
    }
}

/// serde's `Expected`: a Rust type or a phrase a visitor chose.
fn expected_in_words(expected: &str, document: Document) -> String {
    let number = |unsigned: bool| if unsigned { "a whole number, 0 or more" } else { "a whole number" };
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => number(false).into(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => number(true).into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" | "a borrowed string" | "a character" => "text in quotes".into(),
        "a sequence" => "a list".into(),
        "a map" => document.object().into(),
        other if other.starts_with("struct ") || other.starts_with("a map") => document.object().into(),
        other if other.contains("variant") || other.starts_with("enum ") => "one of the accepted values".into(),
        other => other.into(),
    }
}

/// An I/O failure on `path`, the path named and the cause in words:
/// `no such file: /etc/aurinko-sync/work.token`.
pub fn io_message(e: &std::io::Error, path: &Path) -> String {
    let path = path.display();
    match e.kind() {
        ErrorKind::NotFound => format!("no such file: {path}"),
        ErrorKind::PermissionDenied => format!("permission denied: {path}"),
        ErrorKind::NotADirectory => format!("not a directory: {path}"),
        ErrorKind::IsADirectory => format!("is a directory: {path}"),
        ErrorKind::ReadOnlyFilesystem => format!("read-only file system: {path}"),
        ErrorKind::StorageFull => format!("no space left on the device: {path}"),
        _ => format!("{path}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_become_words() {
        let toml = |m| serde_message(m, Document::Toml);
        assert_eq!(toml(r#"invalid type: string "x", expected i64"#), r#""x" (text) is not a whole number"#);
        assert_eq!(toml("invalid type: integer `5`, expected struct RawEmail"), "5 is not a table");
        assert_eq!(toml(r#"invalid type: string "yes", expected a boolean"#), r#""yes" (text) is not true or false"#);
        assert_eq!(toml("invalid value: integer `-1`, expected u32"), "-1 is not a whole number, 0 or more");
        let json = serde_message("invalid type: integer `5`, expected a string at line 1 column 22", Document::Json);
        assert_eq!(json, "5 is not text in quotes at line 1 column 22");
        assert_eq!(
            serde_message("invalid type: sequence, expected a map", Document::Json),
            "a list is not a JSON object"
        );
        for m in [toml(r#"invalid type: string "x", expected i64"#), toml("invalid type: map, expected struct RawApi")]
        {
            assert!(!m.contains("struct") && !m.contains("i64") && !m.contains("invalid type"), "{m}");
        }
    }

    #[test]
    fn io_errors_name_the_path_and_the_cause() {
        let e = std::fs::read("/nonexistent-aurinko-sync/token").unwrap_err();
        assert_eq!(
            io_message(&e, Path::new("/nonexistent-aurinko-sync/token")),
            "no such file: /nonexistent-aurinko-sync/token"
        );
    }
}
