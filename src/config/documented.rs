//! Every key the parser accepts is in the example configuration
//! (`deploy/aurinko-sync.toml`) and in the README's key table, and the
//! example is a configuration the product loads.
//!
//! The keys come from the parser itself: serde names a table's fields when
//! it refuses an unknown one, so a field added to a `Raw*` struct shows up
//! here without anyone listing it.

use super::*;

const EXAMPLE: &str = include_str!("../../deploy/aurinko-sync.toml");
const README: &str = include_str!("../../README.md");

/// A field name no table has.
const PROBE: &str = "zz_probe";

/// Keys read by hand from a `toml::Value` rather than through serde:
/// `tasks = { completed_within_days = N }`.
const HAND_PARSED: &[&str] = &["accounts.tasks.completed_within_days", "app.each_account.tasks.completed_within_days"];

/// The fields serde lists when it refuses `PROBE` at `path` (a table, or
/// an array of tables), or `None` if `path` is not a table.
fn fields_at(path: &[String]) -> Option<Vec<String>> {
    // Each table on the path is tried as a table and as an array of tables.
    let mut values = vec![format!("{{ {PROBE} = 1 }}")];
    for table in path.iter().rev() {
        values =
            values.iter().flat_map(|v| [format!("{{ {table} = {v} }}"), format!("{{ {table} = [{v}] }}")]).collect();
    }
    values.iter().find_map(|value| {
        // The outermost braces are the document itself.
        let text = value.strip_prefix("{ ").and_then(|v| v.strip_suffix(" }")).unwrap_or(value);
        let message = toml::from_str::<RawConfig>(text).err()?.message().to_string();
        let (_, expected) = message.split_once(&format!("unknown field `{PROBE}`, expected"))?;
        Some(expected.split('`').skip(1).step_by(2).map(str::to_string).collect())
    })
}

/// Every leaf key the parser accepts, dotted (`api.base_url`,
/// `accounts.email.days_within`).
fn parser_keys() -> Vec<String> {
    fn walk(path: &mut Vec<String>, keys: &mut Vec<String>) {
        match fields_at(path) {
            Some(fields) => {
                for field in fields {
                    path.push(field);
                    walk(path, keys);
                    path.pop();
                }
            }
            None => keys.push(path.join(".")),
        }
    }
    let mut keys = Vec::new();
    walk(&mut Vec::new(), &mut keys);
    keys.extend(HAND_PARSED.iter().map(|k| k.to_string()));
    keys
}

/// The example with every commented-out key line (`# listen = ...`) and
/// table header (`# [server]`) made live.
fn example_uncommented() -> String {
    EXAMPLE
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_key(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// The example's text under `[table]` or `[[table]]`, live or commented.
fn example_section(table: &str) -> String {
    let mut inside = false;
    let mut text = String::new();
    for line in example_uncommented().lines() {
        let header = line.trim_start_matches("# ").trim();
        if header.starts_with('[') {
            inside = header.trim_matches(['[', ']']) == table;
        } else if inside {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

#[test]
fn the_parser_names_its_keys() {
    let keys = parser_keys();
    for key in ["api.base_url", "sync.first_pass_spread_secs", "webhook.public_url", "accounts.email.body"] {
        assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
    }
    // The hand-parsed keys are accepted, and an unknown one beside them not.
    let account = |tasks: &str| format!("[[accounts]]\nname = \"a\"\ntoken_env = \"T\"\ntasks = {tasks}\n");
    Config::parse(&account("{ completed_within_days = 9 }"), |_| Some("t".into())).unwrap();
    Config::parse(&account(&format!("{{ {PROBE} = 9 }}")), |_| Some("t".into())).unwrap_err();
}

#[test]
fn the_example_configuration_loads_with_its_commented_keys_enabled() {
    let tokens = |_: &str| Some("token".to_string());
    // A key is commented out where it has no default (`server.listen`) or is
    // one of two ways (`token_env`): made live, the example still loads
    // (a secret comes from a variable or a file, not both; token files are
    // checked for shape only, they exist on the server).
    // The store is SQLite (`path`, `max_size_mb`) or PostgreSQL (`url` and
    // its keys): each is loaded in turn.
    let one_way = ["token_env", "signing_secret_env", "password_env", "client_secret_env", "account_id"];
    // A fleet needs PostgreSQL: `[fleet]` is left out of the SQLite variant.
    for (store, other) in
        [("SQLite", &["url", "password_file", "schema", "lease_secs"][..]), ("PostgreSQL", &["path", "max_size_mb"])]
    {
        let live = example_uncommented()
            .lines()
            .filter(|l| !(store == "SQLite" && l.trim() == "[fleet]"))
            .filter(|l| !one_way.iter().chain(other).any(|key| l.starts_with(&format!("{key} ="))))
            .collect::<Vec<_>>()
            .join("\n");
        Config::parse_with(&live, &tokens, false, Path::new(""))
            .unwrap_or_else(|e| panic!("deploy/aurinko-sync.toml, commented keys enabled ({store}): {e}"));
    }
}

#[test]
fn every_key_the_parser_accepts_is_in_the_example_and_the_readme() {
    let rows: Vec<&str> = README.lines().filter(|l| l.starts_with("| `")).collect();
    let mut missing = Vec::new();
    for key in parser_keys() {
        let mut parts = key.split('.');
        let (table, field) = (parts.next().unwrap(), parts.next().unwrap());
        let leaf = key.rsplit('.').next().unwrap();
        // The key's section: the longest prefix of it that heads a table
        // there (`[app.each_account]` for `app.each_account.calendars`).
        let parts: Vec<&str> = key.split('.').collect();
        let section = (1..parts.len())
            .rev()
            .map(|n| example_section(&parts[..n].join(".")))
            .find(|text| !text.is_empty())
            .unwrap_or_default();
        if !section.lines().any(|l| l.contains(&format!("{leaf} = "))) {
            missing.push(format!("{key} in deploy/aurinko-sync.toml"));
        }
        // The README's first column names the table and the field: `api.timeout_secs`,
        // `[[accounts]] email`, `webhook.signing_secret_env` or `signing_secret_file`.
        let documented = rows.iter().any(|row| {
            let first = row.split(" | ").next().unwrap_or("");
            let in_table = first.contains(&format!("`{table}.")) || first.contains(&format!("`[[{table}]]"));
            let names_field = first.contains(&format!("{table}.{field}`"))
                || first.contains(&format!("]] {field}`"))
                || first.contains(&format!("`{field}`"));
            in_table && names_field && row.contains(leaf)
        });
        if !documented {
            missing.push(format!("{key} in the README's key table"));
        }
    }
    assert!(missing.is_empty(), "not documented: {}", missing.join(", "));
}
