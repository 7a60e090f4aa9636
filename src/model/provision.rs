//! What the sync's requests carry and get back, in the machine's terms:
//! the answer to a provisioning, and which token a page request sends.

/// The answer to a provisioning request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provision {
    /// Aurinko is still preparing; ask again later.
    NotReady,
    Ready {
        updated_token: String,
        deleted_token: String,
    },
}

/// Which token a sync request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRef<'a> {
    Delta(&'a str),
    Page(&'a str),
}
