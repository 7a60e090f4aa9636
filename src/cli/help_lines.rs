//! The command line explains itself: every option of every command has a
//! help line, the top-level help names everything that is synced, and
//! `demo` offers only what it uses.

use clap::CommandFactory;

use super::Cli;
use crate::model::Kind;

/// Every command, the top level included, with its path (`aurinko-sync demo`).
fn commands() -> Vec<(String, clap::Command)> {
    fn walk(path: String, command: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), command.clone()));
        for sub in command.get_subcommands() {
            walk(format!("{path} {}", sub.get_name()), sub, out);
        }
    }
    let mut cli = Cli::command();
    cli.build();
    let mut out = Vec::new();
    walk("aurinko-sync".into(), &cli, &mut out);
    out
}

#[test]
fn every_option_of_every_command_has_a_help_line() {
    let mut missing = Vec::new();
    for (path, command) in commands() {
        if command.get_about().is_none() {
            missing.push(format!("{path} (the command)"));
        }
        for arg in command.get_arguments() {
            let help = arg.get_help().or(arg.get_long_help()).map(|h| h.to_string()).unwrap_or_default();
            if help.trim().is_empty() {
                missing.push(format!("{path} --{}", arg.get_long().unwrap_or(arg.get_id().as_str())));
            }
        }
    }
    assert!(missing.is_empty(), "no help line: {}", missing.join(", "));
}

#[test]
fn the_top_level_help_names_every_kind_that_is_synced() {
    let about = Cli::command().get_about().map(|a| a.to_string()).unwrap_or_default();
    for kind in Kind::ALL {
        // The help says "mail" for the kind the store calls "email".
        let word = kind.as_str().trim_start_matches('e');
        assert!(about.contains(word), "{about:?} does not mention {word:?}");
    }
}

#[test]
fn demo_and_fake_offer_no_configuration_they_would_ignore() {
    for (path, command) in commands() {
        if path.ends_with(" demo") || path.ends_with(" fake") {
            let options: Vec<&str> = command.get_arguments().filter_map(|a| a.get_long()).collect();
            assert!(!options.contains(&"config"), "{path} offers --config: {options:?}");
        }
    }
}
