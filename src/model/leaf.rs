//! The arrows of the module map, checked on the source: `model` imports
//! nothing else of the crate, and the protocol machine imports only
//! `model`. A `use crate::config::...` slipped into either fails here, not in
//! a review months later.

use std::path::Path;

/// The crate paths a file's code (not its comments) names: `crate::x::...`
/// and `super::...`, as written up to the first character that cannot be
/// part of a path (a glob's `*` and a group's `{` are kept).
fn paths(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
        for root in ["crate::", "super::"] {
            let mut rest = line;
            while let Some(at) = rest.find(root) {
                let path: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '*' | '{'))
                    .collect();
                found.push(path.trim_end_matches(':').to_string());
                rest = &rest[at + root.len()..];
            }
        }
    }
    found
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_model_depends_on_nothing_else_of_the_crate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || name == "leaf.rs" {
            continue;
        }
        for p in paths(&read(&format!("src/model/{name}"))) {
            // `super::` from a file of the model is the model itself; from
            // its mod.rs it would be the crate root.
            let inside = p.starts_with("crate::model") || (p.starts_with("super::") && name != "mod.rs");
            assert!(inside, "src/model/{name} names `{p}`: the model must not depend on the rest of the crate");
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} files of src/model were read");
}

#[test]
fn the_machine_imports_only_the_model() {
    let found = paths(&read("src/sync/machine.rs"));
    assert!(found.iter().any(|p| p.starts_with("crate::model")), "the machine's imports were not found: {found:?}");
    for p in found {
        // `super::*` is the tests module's view of the machine itself.
        assert!(
            p.starts_with("crate::model") || p == "super::*",
            "src/sync/machine.rs names `{p}`: the machine imports only `model`"
        );
    }
}

#[test]
fn paths_in_code_are_found_and_paths_in_comments_are_not() {
    let found = paths("use crate::config::Config;\n// crate::store::Store\nlet x = super::state::Phase::New;");
    assert_eq!(found, ["crate::config::Config", "super::state::Phase::New"]);
    assert_eq!(paths("use super::*;\nuse crate::{a, b};"), ["super::*", "crate::{a"]);
}
