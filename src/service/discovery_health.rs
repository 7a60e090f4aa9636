//! Whether the service can reach Aurinko at all, judged per account by its
//! latest discovery (calendar, task list and mail folder lists): what turns
//! `/healthz` to 503 and what `aurinko_sync_discovery_failing_accounts`
//! counts.
//!
//! Until an account's first discovery ends it is neither working nor
//! failing: at start-up the service answers 200 (it is alive and trying),
//! and the first failed discovery, after the client's retries, turns it to
//! 503 if no other account works.

use std::collections::BTreeMap;

use metrics_exporter_prometheus::formatting::{write_help_line, write_type_line};

/// How one account's discovery stands in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Discovery {
    /// No discovery has ended yet.
    Pending,
    Working,
    /// The latest discovery failed (or the token was refused), with why.
    Failing(String),
}

/// What `/healthz` makes of the accounts' discoveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// At least one account's latest discovery succeeded.
    Working,
    /// None works yet, but some has not finished its first discovery.
    Starting,
    /// Every account's latest discovery failed: the reason, one line.
    Unreachable(String),
}

/// Longest error quoted in the `/healthz` body.
const MAX_REASON: usize = 200;

#[derive(Debug, Default)]
pub struct Discoveries {
    accounts: BTreeMap<String, Discovery>,
}

impl Discoveries {
    /// The configured accounts, none discovered yet.
    pub fn new(accounts: impl IntoIterator<Item = String>) -> Discoveries {
        Discoveries { accounts: accounts.into_iter().map(|a| (a, Discovery::Pending)).collect() }
    }

    /// Records how an account's discovery ended: `None` for a success, else
    /// the error (already free of secrets and escaped).
    pub fn record(&mut self, account: &str, error: Option<String>) {
        let state = match error {
            None => Discovery::Working,
            Some(e) => Discovery::Failing(e),
        };
        self.accounts.insert(account.to_string(), state);
    }

    /// The account's token was refused: it stops until restart. Its
    /// discovery's own error, when it is what found the refusal, says more
    /// and is kept.
    pub fn refused(&mut self, account: &str) {
        let discovery = self.accounts.entry(account.to_string()).or_insert(Discovery::Pending);
        if !matches!(discovery, Discovery::Failing(_)) {
            *discovery = Discovery::Failing("token refused: the account stopped until restart".into());
        }
    }

    pub fn forget(&mut self, account: &str) {
        self.accounts.remove(account);
    }

    /// Accounts watched.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Accounts whose latest discovery failed.
    pub fn failing(&self) -> usize {
        self.accounts.values().filter(|d| matches!(d, Discovery::Failing(_))).count()
    }

    pub fn verdict(&self) -> Verdict {
        let mut first_failure = None;
        let mut pending = false;
        for (account, discovery) in &self.accounts {
            match discovery {
                Discovery::Working => return Verdict::Working,
                Discovery::Pending => pending = true,
                Discovery::Failing(e) => {
                    first_failure.get_or_insert((account, e));
                }
            }
        }
        match first_failure {
            Some((account, e)) if !pending => {
                let e: String = e.chars().take(MAX_REASON).collect();
                Verdict::Unreachable(format!(
                    "discovery failing for every account ({}); {account}: {e}",
                    self.accounts.len()
                ))
            }
            _ if pending => Verdict::Starting,
            // No account at all: nothing can fail.
            _ => Verdict::Working,
        }
    }
}

/// The gauge of accounts whose latest discovery failed, in the text format.
pub fn render_metrics(failing: usize) -> String {
    const NAME: &str = "aurinko_sync_discovery_failing_accounts";
    let mut text = String::new();
    write_help_line(
        &mut text,
        NAME,
        None,
        None,
        "Accounts whose latest discovery (calendar, task list or mail folder list) failed, or whose token was refused.",
    );
    write_type_line(&mut text, NAME, None, None, "gauge");
    text.push_str(&format!("{NAME} {failing}\n\n"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_only_once_every_account_failed_and_working_once_one_discovers() {
        let mut d = Discoveries::new(["home".to_string(), "work".to_string()]);
        assert_eq!((d.verdict(), d.failing()), (Verdict::Starting, 0));
        d.record("work", Some("calendars: cannot connect to 127.0.0.1:9 (connection refused)".into()));
        assert_eq!((d.verdict(), d.failing()), (Verdict::Starting, 1));
        d.record("home", Some("calendars: HTTP 401".into()));
        assert_eq!(
            d.verdict(),
            Verdict::Unreachable("discovery failing for every account (2); home: calendars: HTTP 401".into())
        );
        assert_eq!(d.failing(), 2);
        d.record("home", None);
        assert_eq!((d.verdict(), d.failing()), (Verdict::Working, 1));
        d.record("home", Some("x".repeat(1000)));
        match d.verdict() {
            Verdict::Unreachable(why) => assert!(why.len() < 300, "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(Discoveries::new([]).verdict(), Verdict::Working);

        // A refusal found by a pass fails a working account; one found by
        // discovery keeps the discovery's words.
        let mut d = Discoveries::new(["work".to_string()]);
        d.record("work", None);
        d.refused("work");
        assert_eq!(
            d.verdict(),
            Verdict::Unreachable(
                "discovery failing for every account (1); work: token refused: the account stopped until restart"
                    .into()
            )
        );
        d.record("work", Some("calendars: HTTP 401".into()));
        d.refused("work");
        assert_eq!(
            d.verdict(),
            Verdict::Unreachable("discovery failing for every account (1); work: calendars: HTTP 401".into())
        );
    }
}
