//! aurinko-sync keeps a local SQLite copy of Aurinko calendars up to date
//! through Aurinko's delta-sync API.
//!
//! Module map:
//!
//! - [`config`]: the TOML file, validated before any request is sent.
//! - [`aurinko`]: the HTTP client: auth, error classification (once, at the
//!   boundary), per-account rate limiting, retries with jitter.
//! - [`sync`]: the per-calendar protocol as a state machine without I/O, and
//!   the thin drivers that run it (one pass, catch-up across accounts, the
//!   single writer thread that batches commits).
//! - [`store`]: SQLite behind a narrow interface: migrations, one writer, a
//!   page and its token in one transaction.
//! - [`service`]: the daemon: supervisors, per-collection actors, health,
//!   metrics and systemd notifications.
//! - [`cli`]: the `aurinko-sync` commands (`run`, `state`, `demo`).
//! - `regular_file`: opening a secret or the store only if it is a regular
//!   file, without hanging on a FIFO.
//! - [`http_client`]: every HTTP client's builder, with the TLS provider.
//! - [`fake`]: a fake Aurinko on loopback for tests, benchmarks and `demo`.
//! - [`text`]: server text made inert before it is shown, logged or stored.
//! - [`user_terms`]: serde and I/O errors said in the user's words.

pub mod aurinko;
pub mod cli;
pub mod config;
pub mod fake;
pub mod http_client;
mod regular_file;
pub mod service;
pub mod store;
pub mod sync;
pub mod text;
pub mod user_terms;
