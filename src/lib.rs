//! aurinko-sync keeps a local SQLite (or PostgreSQL) copy of Aurinko
//! calendars, mail, contacts and tasks up to date through Aurinko's
//! delta-sync API.
//!
//! Module map, from the bottom up (each imports only those above it):
//!
//! - [`model`]: the shared vocabulary (collections and their keys, tables,
//!   rows, sync state, commits, error classes, what a provisioning returns,
//!   inert server text, series expanded into instances, runs); it depends
//!   on nothing else of the crate.
//! - `regular_file`, [`user_terms`], [`http_client`]: small helpers (opening a
//!   file only if it is a regular one, errors in the user's words, every
//!   HTTP client's builder).
//! - [`config`]: the TOML file, validated before any request is sent.
//! - [`aurinko`]: the HTTP client: auth, error classification (once, at the
//!   boundary), per-account rate limiting, retries with jitter; the OAuth
//!   flow's authorize URL and code exchange.
//! - [`store`]: what the sync needs from a store (`store::Backend`), the
//!   writer thread that is its only write path, and the two backends behind
//!   them, SQLite and PostgreSQL: migrations, a page and its token in one
//!   transaction, the recurring series' slots kept in step with it, the
//!   history of runs.
//! - [`sync`]: the protocol as a state machine without I/O
//!   (`sync::machine`, importing only `model`), and the thin drivers that
//!   run it (one pass, catch-up across accounts).
//! - [`service`]: the daemon: supervisors, per-collection actors, health,
//!   metrics and systemd notifications; the app's account list (app mode)
//!   and a fleet instance's leases.
//! - [`cli`]: the `aurinko-sync` commands (`run`, `state`, `store copy`,
//!   `auth add`, `demo`, ...), and where the configured store is opened;
//!   `auth add` runs the OAuth flow (its loopback listener, the token file,
//!   the `[[accounts]]` entry added with `toml_edit`) around the two HTTP
//!   ends in `aurinko` (`aurinko::oauth`).
//!
//! The fake Aurinko the tests, the benchmark and `demo` run against is the
//! `aurinko-fake` crate (`crates/aurinko-fake`), a dev-dependency, and a
//! dependency only with the default-on `fake` feature (`demo`, `fake`).
//! The Debian package's man pages and shell completions are generated from
//! [`cli::command()`] by the `cli-docs` crate (`crates/cli-docs`), so the
//! product binary carries no generator.
//!
//! A page's data flows: response (`aurinko`) -> records (`model::parse_*`)
//! -> machine (`sync::machine`, which decides the [`model::Commit`]) ->
//! writer (`store::writer`) -> commit (`store`, rows and token in one
//! transaction).

pub mod aurinko;
pub mod cli;
pub mod config;
pub mod http_client;
pub mod model;
mod regular_file;
pub mod service;
pub mod store;
pub mod sync;
pub mod user_terms;
