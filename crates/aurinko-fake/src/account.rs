//! `GET /v1/account` (operation `getMyAccount`): the account's `ApiAccountOutDto`.

use chrono::Duration;
use serde_json::json;

use super::generate::timestamp;
use super::webhooks::account_id;
use super::{Shared, data};

/// A mailbox-shaped address from an account name: lowercase ASCII letters and digits, other
/// characters as dots (`demo` → `demo@example.com`).
fn email_of(name: &str) -> String {
    let local: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '.' }).collect();
    let local = local.trim_matches('.');
    format!("{}@example.com", if local.is_empty() { "user" } else { local })
}

impl Shared {
    /// `ApiAccountOutDto` of a Google account connected with read scopes.
    pub(crate) fn account_json(&self, account: usize) -> Vec<u8> {
        let name = &self.data.account(account).name;
        let email = email_of(name);
        let anchor = self.data.anchor();
        let obtained = anchor - Duration::days(30);
        // Aurinko refreshes the provider token; its current one expires within the hour.
        let expires = data::now_millis() + Duration::minutes(55);
        let body = json!({
            "id": account_id(account),
            "serviceType": "Google",
            "serviceProvider": "Google",
            "active": true,
            "tokenStatus": self.data.account(account).status.as_str(),
            "type": "personal",
            "daemon": false,
            "loginString": email,
            "email": email,
            "mailboxAddress": email,
            "name": name,
            "authUserId": format!("{}", 100_000_000_000_000_000_000u128 + account as u128),
            "timezone": "UTC",
            "tokenIssuedAt": timestamp(obtained),
            "authScopes": ["Calendar.Read", "Mail.Read", "Contacts.Read"],
            "authNativeScopes": [
                "https://www.googleapis.com/auth/calendar.readonly",
                "https://www.googleapis.com/auth/gmail.readonly",
                "https://www.googleapis.com/auth/contacts.readonly",
            ],
            "authObtainedAt": timestamp(obtained),
            "authExpiresAt": timestamp(expires),
            "copyToSent": false,
            "trustServer": false,
            "createdAt": timestamp(obtained),
            "updatedAt": timestamp(anchor),
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
