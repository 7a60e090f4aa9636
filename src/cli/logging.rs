//! Logging setup: human on a terminal, plain lines without timestamps under
//! journald (it adds its own), JSON for log shippers.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Human,
    Json,
}

/// `quiet` lowers the default level to warnings, for when a live progress
/// display owns the terminal. `RUST_LOG` always wins.
pub fn init(format: LogFormat, quiet: bool) {
    let default = if quiet { "warn" } else { "info,rusqlite_migration=warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Auto if under_journald => builder.without_time().with_ansi(false).init(),
        _ => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
