//! `cli-docs OUT`: writes what the Debian package ships about the command
//! line, generated from the definition the binary itself parses
//! (`aurinko_sync::cli::command()`), so it cannot drift from it:
//!
//! - `OUT/man/aurinko-sync.1` and one page per command
//!   (`aurinko-sync-run.1`, `aurinko-sync-store-copy.1`, ...);
//! - `OUT/completions/aurinko-sync.bash`, `_aurinko-sync` (zsh) and
//!   `aurinko-sync.fish`.
//!
//! `deploy/build-package` runs it into `target/deb-assets/`; nothing it
//! writes is committed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

/// The name the pages and completions are for: the installed binary's.
const BIN: &str = "aurinko-sync";

/// The shells whose completions the package ships (where each goes is in
/// `[package.metadata.deb] assets`, the root Cargo.toml).
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: cli-docs OUT_DIR   (writes OUT_DIR/man/*.1 and OUT_DIR/completions/*)");
        return ExitCode::from(2);
    };
    match generate(Path::new(out)) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cli-docs: cannot write into {out}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the man pages and completions under `out` (replacing what an
/// earlier run left there) and returns the files written.
fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
    }
    // One page per command, subcommands included, named after their path
    // (`aurinko-sync-store-copy.1`); no page for clap's `help` command.
    // Every page's footer names the product and its version (clap gives
    // subcommands no version of their own).
    let mut cmd = aurinko_sync::cli::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("{BIN} {}", cmd.get_version().unwrap_or_default());
    write_pages(cmd, &source, &man)?;
    let mut cmd = aurinko_sync::cli::command();
    for shell in SHELLS {
        clap_complete::generate_to(shell, &mut cmd, BIN, &completions)?;
    }
    let mut files = Vec::new();
    for dir in [&man, &completions] {
        for entry in std::fs::read_dir(dir)? {
            files.push(entry?.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The man page of `cmd` and of each of its visible subcommands, all levels.
fn write_pages(cmd: clap::Command, source: &str, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), source, dir)?;
    }
    clap_mangen::Man::new(cmd).source(source).generate_to(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap_complete::Generator;

    /// Every command and its path (`aurinko-sync store copy`), as clap
    /// builds them.
    fn commands() -> Vec<(Vec<String>, Vec<String>)> {
        fn walk(path: Vec<String>, cmd: &clap::Command, out: &mut Vec<(Vec<String>, clap::Command)>) {
            out.push((path.clone(), cmd.clone()));
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let mut path = path.clone();
                path.push(sub.get_name().to_string());
                walk(path, sub, out);
            }
        }
        let mut cmd = aurinko_sync::cli::command();
        cmd.build();
        let mut out = Vec::new();
        walk(vec![BIN.to_string()], &cmd, &mut out);
        out.into_iter()
            .map(|(path, cmd)| {
                let options = cmd.get_arguments().filter_map(|a| a.get_long()).map(String::from).collect();
                (path, options)
            })
            .collect()
    }

    #[test]
    fn every_command_has_a_man_page_naming_its_options() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let files = generate(dir.path()).expect("generated");
        let commands = commands();
        assert!(commands.len() >= 8, "only {} commands found", commands.len());
        for (path, options) in &commands {
            let page = dir.path().join("man").join(format!("{}.1", path.join("-")));
            assert!(files.contains(&page), "no man page for {}: {files:?}", path.join(" "));
            let text = std::fs::read_to_string(&page).expect("readable page");
            for option in options {
                // roff writes a hyphen as `\-`.
                let roff = format!("\\-\\-{}", option.replace('-', "\\-"));
                assert!(text.contains(&roff), "{} does not mention --{option}", page.display());
            }
        }
        // Nothing but those pages.
        let pages = files.iter().filter(|f| f.extension().is_some_and(|e| e == "1")).count();
        assert_eq!(pages, commands.len(), "{files:?}");
    }

    #[test]
    fn every_shell_completes_every_command() {
        let dir = tempfile::tempdir().expect("temporary directory");
        generate(dir.path()).expect("generated");
        let names: Vec<String> = commands().into_iter().skip(1).map(|(path, _)| path.join(" ")).collect();
        for shell in SHELLS {
            let file = dir.path().join("completions").join(shell.file_name(BIN));
            let text = std::fs::read_to_string(&file).expect("completion file");
            for name in &names {
                let last = name.rsplit(' ').next().unwrap_or(name);
                assert!(text.contains(last), "{shell} completion does not offer {name}");
            }
        }
    }
}
