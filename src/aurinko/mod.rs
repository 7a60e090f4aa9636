//! The HTTP side of Aurinko: requests, their classification, and politeness.
//!
//! Everything that knows about HTTP status codes, headers and JSON envelopes
//! lives here; the sync machine above only ever sees an [`ErrorClass`].

mod client;
mod error;
mod oauth;
mod politeness;
mod wire;

pub use client::{AccountClient, Api, SyncPage};
pub use error::{ApiError, Endpoint, classify};
pub use oauth::{AuthorizeRequest, Connected};
pub use politeness::parse_retry_after;
pub use wire::{Subscription, int_id, optional_int_id};
