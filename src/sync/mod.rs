//! Delta sync: the protocol machine and the drivers that run it against
//! Aurinko and the store. The types they share with the rest of the crate
//! are in [`crate::model`].
//!
//! - `machine`: the protocol as a state machine without I/O; it imports
//!   only `model` (a test keeps it so).
//! - `driver`: runs one pass of the machine with the client and the store.
//! - `engine`: discovery, concurrency and accounts around the driver.
//! - `folders`: an account's mail folders, listed before its mail syncs.
//! - `progress`: counters the terminal display and summaries read.
//! - `run_log`: the run being gathered, pass by pass, for the history of
//!   runs (`state --runs`).

mod driver;
mod engine;
mod folders;
mod machine;
mod progress;
mod run_log;

pub use driver::{PassReport, WRITES_IN_FLIGHT, run_pass};
pub use engine::{AppListing, CatchUpReport, CollectionResult, Engine, Plan, Task, log_pass, span};
pub use machine::{Action, Finish, PERMANENT_FAILURES_BEFORE_REPROVISIONING, Pass, ReadyPolicy, removal};
pub use progress::Progress;
pub use run_log::RunLog;

#[cfg(test)]
mod resync_requests;
