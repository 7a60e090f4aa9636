//! Logging setup: human on a terminal, journald-friendly under systemd,
//! JSON for log shippers.
//!
//! Under journald (`JOURNAL_STREAM` set) lines carry no timestamps or
//! colours (the journal adds its own) and start with a `<N>` syslog priority,
//! which journald reads from the stream, so `journalctl -p warning` works.

use std::fmt;
use std::io::IsTerminal;

use clap::ValueEnum;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Human,
    Json,
}

/// `quiet` lowers the default level to warnings, for when a live progress
/// display owns the terminal. `RUST_LOG` always wins: a comma-separated list
/// of `level` and `target=level` (`RUST_LOG=aurinko_sync=debug`). The
/// filter is tracing-subscriber's `Targets`, not `EnvFilter`: the same
/// directives without span and field matching, and without the regex
/// engine, which was a tenth of the binary's code.
pub fn init(format: LogFormat, quiet: bool) {
    let default = if quiet { "warn" } else { "info,rusqlite_migration=warn" };
    let (chosen, rejected) = match std::env::var("RUST_LOG").map(|d| d.parse::<Targets>()) {
        Ok(Ok(filter)) => (Some(filter), None),
        Ok(Err(e)) => (None, Some(e)),
        Err(_) => (None, None),
    };
    let filter = chosen.unwrap_or_else(|| default.parse().expect("the default filter parses"));
    // The builder's own level (info by default) would cut below the filter;
    // above it, the `log` records of dependencies would all be turned into
    // events only to be dropped (the bridge lets through what the global
    // maximum allows), so it is the filter's own maximum.
    let max = filter.iter().map(|(_, level)| level).chain(filter.default_level()).max().unwrap_or(LevelFilter::OFF);
    let builder = tracing_subscriber::fmt().with_max_level(max).with_writer(super::output::Stderr);
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    match format {
        LogFormat::Json => builder.json().finish().with(filter).init(),
        LogFormat::Auto if under_journald => {
            builder.with_ansi(false).event_format(Journald::default()).finish().with(filter).init()
        }
        _ => builder.with_ansi(std::io::stderr().is_terminal()).finish().with(filter).init(),
    }
    if let Some(e) = rejected {
        // Only the parser's own words: the variable's value is the user's.
        tracing::warn!("RUST_LOG is not a list of `level` or `target=level` ({e}); using the default levels");
    }
}

/// The plain format without a timestamp, prefixed with the syslog priority.
struct Journald {
    inner: Format<Full, ()>,
}

impl Default for Journald {
    fn default() -> Self {
        Journald { inner: tracing_subscriber::fmt::format().without_time().with_ansi(false).with_level(false) }
    }
}

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// syslog priorities: err, warning, info, debug.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}
