//! The shared vocabulary: what every other module speaks, and what depends
//! on nothing else of the crate (a test keeps it so).
//!
//! - `collection`: kinds of collection (calendars, mail, contacts, tasks),
//!   their keys, their tables and the parameters of their provisioning.
//! - `records`: raw records into rows with typed columns.
//! - `state`: what is persisted per collection (phase, cursors, window).
//! - `commit`: what a page commits with its records.
//! - `provision`: the answer to a provisioning, and the token a page
//!   request carries.
//! - `error_class`: what a failed request means for the sync.
//! - [`recurrence`]: series masters expanded into instances, and local
//!   times.
//! - `run`: what a run (a catch-up, a batch of daemon passes) did.
//! - `listed`: what discovery lists (calendars, task lists, mail folders).
//! - [`text`]: server text made inert before it is shown, logged or stored.
//!
//! The arrows run one way: `model` <- {`config`, `aurinko`, `store`,
//! `sync::machine`} <- the drivers and the engine <- `service` <- `cli`.

mod collection;
mod commit;
mod error_class;
mod listed;
mod provision;
mod records;
pub mod recurrence;
mod run;
mod state;
pub mod text;

pub use collection::{BodyType, Collection, CollectionKey, Kind, Listing, Range, SWEEP_MARGIN, Start, Table};
pub use commit::{Commit, Sweep};
pub use error_class::ErrorClass;
pub use listed::{AppAccount, Calendar, DISCOVERED_PREFIX, EmailFolder, TaskList, discovered_name};
pub use provision::{Provision, TokenRef};
pub use records::{
    Field, PageRecord, Record, Rejected, Row, deleted_id, parse_contact, parse_deleted, parse_event, parse_message,
    parse_task,
};
pub use run::{PassOutcome, RunCollection, RunMode, RunRecord};
pub use state::{Cursor, Phase, RangeDays, Reprovision, Stream, SyncState, Window};

#[cfg(test)]
mod leaf;
#[cfg(test)]
mod records_props;
