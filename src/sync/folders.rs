//! The mailbox's folder list, refreshed with discovery for accounts that
//! sync mail. It only names folders: a list that cannot be fetched is
//! logged and the mail sync goes on, with the names from the last refresh.

use super::engine::Engine;
use crate::aurinko::{AccountClient, ApiError};
use crate::config::AccountConfig;
use crate::store::Change;

impl Engine {
    /// The list's failure is returned (after the warning) as the account's
    /// discovery failure: the mail sync goes on, but `state`, `/metrics` and
    /// `/healthz` tell.
    pub(super) async fn refresh_folders(
        &self,
        account: &AccountConfig,
        client: &AccountClient,
    ) -> Result<(), ApiError> {
        let folders = match client.list_folders().await {
            Ok(folders) => folders,
            Err(e) => {
                tracing::warn!(account = %account.name, class = %e.class, "mail folder list failed; the mail sync goes on: {e}");
                return Err(e);
            }
        };
        self.change(Change::Folders { account: account.name.clone(), folders }).await;
        Ok(())
    }
}
