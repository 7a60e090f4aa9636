//! Delta sync: the protocol machine, the records it carries, and the drivers
//! that run it against Aurinko and the store.
//!
//! - `collection`: what differs between kinds (calendar, email, contacts).
//! - `state`: what is persisted per collection (phase, cursors, window).
//! - `machine`: the protocol as a state machine without I/O.
//! - `records`: raw records into rows with typed columns.
//! - `driver`: runs one pass of the machine with the client and the store.
//! - `writer`: the single writer thread that batches commits.
//! - `engine`: discovery, concurrency and accounts around the driver.
//! - `progress`: counters the terminal display and summaries read.

mod collection;
mod driver;
mod engine;
mod folders;
mod machine;
mod progress;
mod records;
mod state;
mod writer;

pub use collection::{BodyType, Collection, CollectionKey, Kind, Listing, Range, SWEEP_MARGIN, Start, Table};
pub use driver::{PassReport, WRITES_IN_FLIGHT, run_pass};
pub use engine::{CatchUpReport, CollectionResult, Engine, Plan, Task, log_pass, span};
pub use machine::{Action, Commit, Finish, PERMANENT_FAILURES_BEFORE_REPROVISIONING, Pass, ReadyPolicy, Sweep};
pub use progress::Progress;
pub use records::{Field, Rejected, Row, parse_contact, parse_deleted, parse_event, parse_message, parse_task};
pub use state::{Cursor, Phase, RangeDays, Reprovision, Stream, SyncState, Window};
pub use writer::{BatchStats, Writer};
#[cfg(test)]
mod records_props;
