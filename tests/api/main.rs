//! Integration tests: the real binary and the engine against the fake
//! Aurinko over loopback HTTP.

// A test that unwraps fails at the unwrap, with its place: all a test needs.
#![allow(clippy::unwrap_used)]

/// A test held to both stores: `$sqlite` runs `$body` on SQLite,
/// `$postgres` on a private PostgreSQL (skipped, loudly, where its binaries
/// are missing outside CI). `$body` takes the store and the test's name.
macro_rules! on_each_store {
    ($sqlite:ident, $postgres:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $body(crate::helpers::StoreKind::Sqlite, stringify!($sqlite)).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $body(crate::helpers::StoreKind::Postgres, stringify!($postgres)).await
        }
    };
}

mod accounts;
mod app_mode;
mod auth_add;
mod catch_up;
mod closed_pipe;
mod config_errors;
mod contract;
mod crash;
mod daemon;
mod demo;
mod discovery_health;
mod expiry;
mod faults;
mod fleet;
mod helpers;
mod hostile;
mod instances;
mod logs;
mod mail_and_contacts;
mod messages;
mod model;
mod model_audit;
mod not_found;
mod openapi;
mod peers;
mod postgres;
mod readers;
mod recorder;
mod resync;
mod runs;
mod secret_forms;
mod secrets;
mod service;
mod soak;
mod state;
mod storage;
mod sys;
mod tasks;
mod tolerant;
mod webhooks;
