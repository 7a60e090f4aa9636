//! The command line: argument parsing, exit codes and the commands.
//!
//! Exit codes are a contract scripts rely on: 0 when every collection caught
//! up, 1 when any failed (for `state --check`: when anything is failing),
//! 2 for usage, configuration or store errors.
//! Output goes through [`output`], never `println!`, which panics when the
//! reader of a pipe has gone.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod auth;
#[cfg(feature = "fake")]
mod demo;
#[cfg(feature = "fake")]
mod fake_cmd;
#[cfg(test)]
mod help_lines;
mod logging;
mod open_store;
mod output;
mod progress_view;
mod reset;
mod resync;
mod run;
mod state;
mod store_cmd;
mod subscribe;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use logging::LogFormat;

/// The runtime's blocking threads at most (see where it is built); the
/// units' `TasksMax=64` leaves room for them, the runtime and the writer.
const MAX_BLOCKING_THREADS: usize = 32;

#[derive(Parser, Debug)]
#[command(
    name = "aurinko-sync",
    version,
    about = "Keeps a local SQLite copy of Aurinko calendars, mail, contacts and tasks up to date"
)]
pub struct Cli {
    /// Configuration file (for run, state, subscribe and auth; given before the command).
    // Not global: `demo` and `fake` read no configuration and do not offer it.
    #[arg(long, env = "AURINKO_SYNC_CONFIG", default_value = "aurinko-sync.toml")]
    pub config: PathBuf,
    /// Log format on stderr; `auto` is human on a terminal, journald-friendly under systemd.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sync continuously until stopped (SIGTERM/SIGINT); with --catch-up, once.
    Run {
        /// Bring every calendar to the end of its delta once, then exit.
        #[arg(long)]
        catch_up: bool,
        /// With [fleet]: this instance's id in the leases, the log and `state`
        /// (default: the host name).
        #[arg(long, env = "AURINKO_SYNC_INSTANCE", value_name = "ID")]
        instance: Option<String>,
    },
    /// Make sure every synced collection has one active webhook subscription
    /// pointing at [webhook] public_url (the receiver must be reachable).
    Subscribe,
    /// Show what the store knows, per collection, failing ones first. Read-only.
    State {
        /// Read this store file instead of the configuration's `store.path`;
        /// no configuration is read then.
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// One JSON document instead of a table.
        #[arg(long, conflicts_with = "wide")]
        json: bool,
        /// Every column, each cell whole (the default table fits in 100 columns).
        #[arg(long)]
        wide: bool,
        /// One line, OK or FAILING; exit 1 when any account or collection is failing, else 0.
        #[arg(long, conflicts_with_all = ["json", "wide"])]
        check: bool,
        /// The last N runs (catch-ups and the daemon's batches of passes) instead, newest
        /// first, with what each did (N: 20 when not given).
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "20", conflicts_with = "check",
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        runs: Option<u32>,
    },
    /// Provision matching collections again on their next pass (the running
    /// daemon's, or the next `run --catch-up`); rows stay until that pass's
    /// sweep removes what it did not return. Filters combine; none: all.
    Resync {
        /// Only this account's collections (a name from the configuration).
        #[arg(long)]
        account: Option<String>,
        /// Only collections of this kind.
        #[arg(long, value_enum)]
        kind: Option<resync::KindArg>,
        /// Only the collection with this id (a calendar or task list id, as `state` shows it;
        /// `email` or `contacts` for those).
        #[arg(long)]
        collection: Option<String>,
    },
    /// Delete an account's synced data from the store in one transaction. A configured
    /// account is synced afresh by its next pass; of an unconfigured one nothing stays.
    Reset {
        /// The account whose data to delete.
        #[arg(long)]
        account: String,
        /// Delete; without it, only show what would be deleted (and exit 2).
        #[arg(long)]
        yes: bool,
    },
    /// Work on the store itself.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Connect accounts through Aurinko's OAuth flow.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Start a fake Aurinko on loopback, sync it into aurinko-demo.db and show the result.
    #[cfg(feature = "fake")]
    Demo {
        /// Events per calendar.
        #[arg(long, default_value_t = 4000)]
        events: usize,
        /// Calendars in the demo account.
        #[arg(long, default_value_t = 5)]
        calendars: usize,
        /// Where the demo store goes (replaced on each run).
        #[arg(long, default_value = "aurinko-demo.db")]
        db: PathBuf,
    },
    /// Serve a fake Aurinko on loopback to try `run` against, without an account.
    #[cfg(feature = "fake")]
    Fake {
        /// Loopback address to serve on.
        #[arg(long, default_value = "127.0.0.1:8790")]
        listen: std::net::SocketAddr,
        /// Events per calendar.
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// Calendars in the fake account.
        #[arg(long, default_value_t = 3)]
        calendars: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy the configured SQLite store (rows, sync state with its tokens, subscriptions,
    /// accounts) into an empty PostgreSQL store, in one transaction. Then set `[store] url`
    /// instead of `path`: the next pass continues from the copied tokens, with no resync.
    Copy {
        /// The PostgreSQL store: postgresql://user@host:5432/dbname (a password in it is refused).
        #[arg(long, value_name = "URL")]
        to: String,
        /// A file holding the PostgreSQL password.
        #[arg(long, value_name = "PATH", conflicts_with = "password_env")]
        password_file: Option<String>,
        /// An environment variable holding the PostgreSQL password.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// The schema to copy into (created if missing; default public).
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Connect a mailbox through Aurinko's OAuth flow in a browser, write its token to a
    /// private file and add its [[accounts]] entry to the configuration (comments kept). The
    /// app's credentials come from [app] or AURINKO_CLIENT_ID and AURINKO_CLIENT_SECRET.
    Add {
        /// The account's local name (letters, digits, '-', '_', '.'), new in the configuration.
        name: String,
        /// The mailbox's service.
        #[arg(long, value_enum, ignore_case = true)]
        service: auth::Service,
        /// Aurinko scopes to ask for (comma separated; default Calendar.Read). The entry syncs
        /// what they allow: calendars, mail (Mail.Read/ReadWrite/All), contacts, tasks.
        #[arg(long, value_name = "SCOPES", num_args = 1..)]
        scopes: Vec<String>,
        /// The loopback port of the return URL (http://127.0.0.1:PORT/callback), for an app
        /// whose return URL is registered with a fixed port; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Run no listener: paste the address the browser ends at on stdin instead.
        #[arg(long)]
        no_browser: bool,
        /// Where the token goes (default: tokens/NAME.token beside the configuration).
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
        /// How long to wait for the browser (or the pasted address), in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
    },
}

/// The whole command line as clap sees it (every command, option and help
/// line), for what is generated from it at packaging time: the man pages and
/// shell completions (`crates/cli-docs`).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// How a command ended, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Exit {
    Ok,
    Failed,
    Usage,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(match e {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
        })
    }
}

#[cfg(feature = "fake")]
fn is_demo(command: &Command) -> bool {
    matches!(command, Command::Demo { .. })
}

#[cfg(not(feature = "fake"))]
fn is_demo(_: &Command) -> bool {
    false
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own summary; a catch-up on a terminal has the
    // live view. Both keep info lines out of the way.
    let quiet_logs = is_demo(&cli.command)
        || (matches!(cli.command, Command::Run { catch_up: true, .. }) && progress_view::enabled());
    logging::init(cli.log_format, quiet_logs);
    // The commands that only read or mark the store run on this thread, not
    // on an async runtime: their store calls block.
    let command = match cli.command {
        Command::State { db, json, wide, check, runs } => {
            return state::state(&cli.config, state::StateArgs { db, json, wide, check, runs }).into();
        }
        Command::Resync { account, kind, collection } => {
            let filter = crate::store::ResyncFilter { account, kind: kind.map(Into::into), collection };
            return resync::resync(&cli.config, filter).into();
        }
        Command::Reset { account, yes } => return reset::reset(&cli.config, &account, yes).into(),
        Command::Store { command: StoreCommand::Copy { to, password_file, password_env, schema } } => {
            return store_cmd::copy(&cli.config, to, password_file, password_env, schema).into();
        }
        command => command,
    };
    // `run`: one thread for the network and the parsing, plus the store's
    // writer thread: two busy threads for a full sync, and no wake-ups
    // between workers when idle. The demo serves its fake in-process too.
    let mut builder = match &command {
        #[cfg(feature = "fake")]
        Command::Demo { .. } | Command::Fake { .. } => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    // Blocking threads serve short store calls (a `/healthz` check, a
    // webhook's lookup) and DNS: a flood of such requests must queue, not
    // start tokio's default of 512 threads, far past the units' `TasksMax=`.
    builder.max_blocking_threads(MAX_BLOCKING_THREADS);
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            complain(format!("cannot start the runtime: {e}"));
            return Exit::Failed.into();
        }
    };
    let exit = runtime.block_on(async {
        match command {
            Command::Run { catch_up, instance } => run::run(&cli.config, catch_up, instance).await,
            Command::Subscribe => subscribe::subscribe(&cli.config).await,
            Command::Auth {
                command: AuthCommand::Add { name, service, scopes, port, no_browser, token_file, timeout },
            } => {
                let timeout = std::time::Duration::from_secs(timeout);
                let args = auth::AddArgs { name, service, scopes, port, no_browser, token_file, timeout };
                auth::add(&cli.config, args).await
            }
            #[cfg(feature = "fake")]
            Command::Demo { events, calendars, db } => demo::demo(events, calendars, &db).await,
            #[cfg(feature = "fake")]
            Command::Fake { listen, events, calendars } => fake_cmd::serve(listen, events, calendars).await,
            // Returned above, off the runtime.
            Command::State { .. } | Command::Resync { .. } | Command::Reset { .. } | Command::Store { .. } => {
                Exit::Usage
            }
        }
    });
    // Blocking store calls may still be finishing; do not wait for them
    // long: the last half second of the daemon's stop budget (see
    // `service::STOP_GRACE`). What they leave is rolled back by SQLite.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    exit.into()
}

/// Prints a one-line error for the operator: whatever a message carries
/// from below (SQLite's check reports, say), it stays on one line.
fn complain(message: impl std::fmt::Display) {
    let text = message.to_string();
    let line: Vec<&str> = text.split_whitespace().collect();
    output::errln!("aurinko-sync: {}", line.join(" "));
}
