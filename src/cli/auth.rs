//! `auth add NAME --service S`: connects a mailbox through Aurinko's account OAuth flow and
//! configures it, so that no one has to copy a token by hand.
//!
//! The order is what keeps a failure harmless: everything that can be refused locally (the
//! arguments, the configuration, the name, the token file's place, the edited configuration's
//! validity) is checked before the browser is sent off; the token file and the configuration
//! are written only once the code has been exchanged, and the token file is removed again if
//! the configuration cannot be written. So on any error nothing is written. The HTTP ends of
//! the flow are `aurinko::oauth`; the listener is [`callback`]; the file edit is [`entry`].

mod callback;
mod entry;
mod token_file;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use secrecy::SecretString;

use super::Exit;
use super::output::outln;
use crate::aurinko::{Api, AuthorizeRequest};
use crate::config::{AppConfig, Config, connect_settings};
use crate::model::ErrorClass;
use crate::model::text::inert;
use callback::{Callback, Listener, WaitError};
use entry::{Entry, Syncs};

/// The app's client id, when it is not in `[app]`.
pub const CLIENT_ID_ENV: &str = "AURINKO_CLIENT_ID";
/// The app's client secret, when it is not in `[app]`.
pub const CLIENT_SECRET_ENV: &str = "AURINKO_CLIENT_SECRET";

/// Aurinko's scopes (spec `Scope`).
const SCOPES: [&str; 11] = [
    "Calendar.Read",
    "Calendar.ReadWrite",
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.Send",
    "Mail.Drafts",
    "Mail.All",
    "Contacts.Read",
    "Contacts.ReadWrite",
    "Tasks.Read",
    "Tasks.ReadWrite",
];

/// What a new entry syncs by default (its calendars), and so the scope asked for.
const DEFAULT_SCOPES: [&str; 1] = ["Calendar.Read"];

/// The mailbox services the account flow connects (spec `ServiceTypeNonDaemon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    #[value(name = "Google")]
    Google,
    #[value(name = "Office365")]
    Office365,
    #[value(name = "EWS")]
    Ews,
    #[value(name = "IMAP")]
    Imap,
}

impl Service {
    fn as_str(self) -> &'static str {
        match self {
            Service::Google => "Google",
            Service::Office365 => "Office365",
            Service::Ews => "EWS",
            Service::Imap => "IMAP",
        }
    }
}

/// `auth add`'s arguments.
pub struct AddArgs {
    pub name: String,
    pub service: Service,
    pub scopes: Vec<String>,
    pub port: u16,
    pub no_browser: bool,
    pub token_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// A failure: one line, and the exit code it ends with.
struct Failure {
    exit: Exit,
    message: String,
}

/// Usage or configuration: the operator fixes the command, the file or the credentials.
fn usage(message: impl Into<String>) -> Failure {
    Failure { exit: Exit::Usage, message: message.into() }
}

/// The flow itself failed (refused, forged, too slow, unreachable).
fn failed(message: impl Into<String>) -> Failure {
    Failure { exit: Exit::Failed, message: message.into() }
}

pub async fn add(config_path: &Path, args: AddArgs) -> Exit {
    match run(config_path, args).await {
        Ok(()) => Exit::Ok,
        Err(f) => {
            super::complain(format!("auth add: {}", f.message));
            f.exit
        }
    }
}

async fn run(config_path: &Path, args: AddArgs) -> Result<(), Failure> {
    let scopes = scopes(&args.scopes)?;
    let syncs = syncs_of(&scopes)?;
    let text = read_config(config_path).map_err(usage)?;
    let dir = match config_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(usage(format!(
            "{}: the configuration's directory {} does not exist",
            config_path.display(),
            dir.display()
        )));
    }
    let env = |var: &str| std::env::var(var).ok();
    let settings = connect_settings(&text, &dir, &env).map_err(|e| usage(format!("{}: {e}", config_path.display())))?;
    let app = app_credentials(settings.app, &env)?;

    // Where the token goes, as the entry names it and as this process reaches it.
    let (token_path, token_in_entry) = match &args.token_file {
        Some(given) => {
            let absolute = std::path::absolute(given).map_err(|e| usage(format!("--token-file: {e}")))?;
            (absolute.clone(), absolute.display().to_string())
        }
        None => {
            let relative = format!("tokens/{}.token", args.name);
            (dir.join(&relative), relative)
        }
    };
    token_file::check_free(&token_path).map_err(usage)?;
    // The entry is made (and the whole file validated) now, with the account id unknown
    // yet, so that a name taken or a file the product would refuse stops the flow before
    // the browser; it is made again with the id once the code is exchanged.
    let draft = |account_id| Entry {
        name: &args.name,
        token_file: &token_in_entry,
        syncs,
        service: args.service.as_str(),
        account_id,
    };
    let edited = entry::add(&text, &draft(None)).map_err(|e| usage(format!("{}: {e}", config_path.display())))?;
    Config::check_without_tokens(&edited, &dir)
        .map_err(|e| usage(format!("{} with the new entry: {e}", config_path.display())))?;

    let api = Api::new(&settings.api, Some(&app), None).map_err(usage)?;
    let listener = match args.no_browser {
        true => None,
        false => Some(Listener::bind(args.port).await.map_err(usage)?),
    };
    let return_url = match &listener {
        Some(listener) => listener.return_url(),
        None if args.port == 0 => format!("http://127.0.0.1{}", callback::CALLBACK_PATH),
        None => format!("http://127.0.0.1:{}{}", args.port, callback::CALLBACK_PATH),
    };
    let state = format!("{:032x}", rand::random::<u128>());
    let url = api
        .authorize_url(&AuthorizeRequest {
            client_id: &app.client_id,
            service_type: args.service.as_str(),
            scopes: &scopes,
            return_url: &return_url,
            state: &state,
        })
        .map_err(|e| usage(e.to_string()))?;
    let waited = match listener {
        Some(listener) => {
            outln!("Open this address in a browser and allow access for {}:", args.name);
            outln!("{url}");
            outln!("Waiting up to {} s for the browser to come back to {return_url} ...", args.timeout.as_secs());
            open_browser(url.as_str());
            listener.wait(args.timeout).await
        }
        None => {
            outln!("Open this address in a browser and allow access for {}:", args.name);
            outln!("{url}");
            outln!("Then paste here the address the browser ends at ({return_url}?code=...; it need not load):");
            callback::read_pasted(args.timeout).await
        }
    };
    let callback = waited.map_err(|e| match e {
        WaitError::TimedOut => failed(format!(
            "no answer from the browser within {} s (--timeout); nothing was written",
            args.timeout.as_secs()
        )),
        WaitError::NoInput(why) | WaitError::Pasted(why) => failed(format!("{why}; nothing was written")),
    })?;
    let code = code_of(callback, &state)?;

    let client = api.app_client("auth").ok_or_else(|| usage("the app's credentials are missing"))?;
    let connected = client.exchange_code(&code).await.map_err(|e| match e.class {
        ErrorClass::Auth => usage(format!(
            "Aurinko refused the app's credentials (HTTP 401 from POST /auth/token): check the client id and secret ([app] or {CLIENT_ID_ENV}/{CLIENT_SECRET_ENV}); nothing was written"
        )),
        _ => failed(format!("exchanging the code failed: {e}; nothing was written")),
    })?;

    // Read again: an edit made while the browser was busy is kept, and checked like the rest.
    let text = read_config(config_path).map_err(failed)?;
    let edited = entry::add(&text, &draft(connected.account_id))
        .map_err(|e| failed(format!("{}: {e}; nothing was written", config_path.display())))?;
    Config::check_without_tokens(&edited, &dir)
        .map_err(|e| failed(format!("{} with the new entry: {e}; nothing was written", config_path.display())))?;
    token_file::write(&token_path, &connected.access_token).map_err(failed)?;
    if let Err(e) = entry::write_atomically(config_path, &edited) {
        let _ = std::fs::remove_file(&token_path);
        return Err(failed(format!("{e}; the token file was removed again")));
    }
    let id = connected.account_id.map(|id| format!(" (Aurinko account {id})")).unwrap_or_default();
    outln!("Connected {}{id}: token in {}, entry added to {}.", args.name, token_path.display(), config_path.display());
    outln!("Next: aurinko-sync --config {} run --catch-up", config_path.display());
    Ok(())
}

/// The configuration's text; empty when there is no file yet (one is started).
fn read_config(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(crate::user_terms::io_message(&e, path)),
    }
}

/// The scopes asked for: `--scopes` (comma or space separated, repeatable; names as Aurinko
/// writes them, in any case), or what a new entry syncs by default.
fn scopes(given: &[String]) -> Result<Vec<String>, Failure> {
    if given.is_empty() {
        return Ok(DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for word in given.iter().flat_map(|g| g.split([',', ' '])).filter(|w| !w.is_empty()) {
        let known = SCOPES.iter().find(|s| s.eq_ignore_ascii_case(word)).ok_or_else(|| {
            usage(format!("--scopes: unknown scope {:?}; Aurinko's are {}", inert(word), SCOPES.join(", ")))
        })?;
        if !out.iter().any(|s| s == known) {
            out.push(known.to_string());
        }
    }
    if out.is_empty() {
        return Err(usage("--scopes: no scope given"));
    }
    Ok(out)
}

/// What the entry syncs with these scopes: calendars, mail, contacts, tasks, each when a
/// scope lets it read them.
fn syncs_of(scopes: &[String]) -> Result<Syncs, Failure> {
    let has = |prefix: &str| scopes.iter().any(|s| s.starts_with(prefix));
    let syncs = Syncs {
        calendars: has("Calendar."),
        email: scopes.iter().any(|s| matches!(s.as_str(), "Mail.Read" | "Mail.ReadWrite" | "Mail.All")),
        contacts: has("Contacts."),
        tasks: has("Tasks."),
    };
    if syncs == (Syncs { calendars: false, email: false, contacts: false, tasks: false }) {
        return Err(usage(
            "--scopes: none of these lets the account be synced (Calendar.*, Mail.Read, Mail.ReadWrite, Mail.All, Contacts.*, Tasks.*)",
        ));
    }
    Ok(syncs)
}

/// The app's credentials: both environment variables when set, else `[app]`.
fn app_credentials(configured: Option<AppConfig>, env: &dyn Fn(&str) -> Option<String>) -> Result<AppConfig, Failure> {
    let var = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    match (var(CLIENT_ID_ENV), var(CLIENT_SECRET_ENV)) {
        (Some(client_id), Some(secret)) => {
            if client_id.contains(':') || client_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(usage(format!("{CLIENT_ID_ENV} must not contain ':', spaces or control characters")));
            }
            if secret.chars().any(char::is_control) {
                return Err(usage(format!("{CLIENT_SECRET_ENV} contains control characters")));
            }
            Ok(AppConfig {
                client_id,
                client_secret: SecretString::from(secret),
                discover: None,
                purge_removed_accounts: false,
            })
        }
        (Some(_), None) => Err(usage(format!("{CLIENT_ID_ENV} is set but {CLIENT_SECRET_ENV} is not"))),
        (None, Some(_)) => Err(usage(format!("{CLIENT_SECRET_ENV} is set but {CLIENT_ID_ENV} is not"))),
        (None, None) => configured.ok_or_else(|| {
            usage(format!(
                "the app's credentials are needed: [app] client_id and client_secret_file (or client_secret_env) in the configuration, or {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}"
            ))
        }),
    }
}

/// The code of a genuine, successful callback. The state is checked first, so that neither
/// a forged success nor a forged refusal is acted on.
fn code_of(callback: Callback, state: &str) -> Result<String, Failure> {
    if callback.state.as_deref() != Some(state) {
        return Err(failed(
            "the answer's state does not match the one sent (a redirect this command did not start?); nothing was written",
        ));
    }
    let refused = callback.error.is_some() || callback.status.as_deref().is_some_and(|s| s != "success");
    if refused {
        let said: Vec<String> =
            [callback.error.as_deref(), callback.error_description.as_deref(), callback.status.as_deref()]
                .into_iter()
                .flatten()
                .map(|s| inert(&s.chars().take(200).collect::<String>()).into_owned())
                .collect();
        return Err(failed(format!("access was not granted (Aurinko said: {}); nothing was written", said.join(": "))));
    }
    callback.code.filter(|c| !c.is_empty()).ok_or_else(|| failed("the answer carries no code; nothing was written"))
}

/// Opens `url` in the desktop's browser when there is a desktop; a failure is not one of
/// the command's (the address is printed).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty())) {
        "xdg-open"
    } else {
        return;
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(query: &str) -> Callback {
        Callback::from_query(query).unwrap()
    }

    #[test]
    fn only_a_callback_with_the_state_sent_and_no_refusal_gives_its_code() {
        assert_eq!(code_of(callback("code=c&state=s&status=success"), "s").ok(), Some("c".to_string()));
        let err = |q: &str| code_of(callback(q), "s").unwrap_err().message;
        assert!(err("code=c&state=t").contains("state does not match"));
        assert!(err("code=c").contains("state does not match"));
        assert!(err("error=access_denied&state=t").contains("state does not match"), "a forged refusal");
        assert!(
            err("error=access_denied&error_description=No%1b[31m&state=s").contains("access_denied: No\\u{1b}[31m")
        );
        assert!(err("status=error&state=s").contains("not granted"));
        assert!(err("state=s").contains("no code"));
    }

    #[test]
    fn scopes_are_checked_and_decide_what_is_synced() {
        assert_eq!(scopes(&[]).ok(), Some(vec!["Calendar.Read".to_string()]));
        let given = vec!["calendar.read,Mail.Read".to_string(), "Tasks.Read Mail.Read".to_string()];
        let s = scopes(&given).ok().unwrap();
        assert_eq!(s, ["Calendar.Read", "Mail.Read", "Tasks.Read"]);
        assert_eq!(syncs_of(&s).ok(), Some(Syncs { calendars: true, email: true, contacts: false, tasks: true }));
        assert!(scopes(&["Calendar.Everything".to_string()]).err().unwrap().message.contains("unknown scope"));
        assert!(syncs_of(&["Mail.Send".to_string()]).err().unwrap().message.contains("none of these"));
    }

    #[test]
    fn the_environment_s_credentials_come_in_pairs() {
        let both = |v: &str| match v {
            CLIENT_ID_ENV => Some("id".to_string()),
            CLIENT_SECRET_ENV => Some("s".to_string()),
            _ => None,
        };
        assert_eq!(app_credentials(None, &both).ok().map(|a| a.client_id), Some("id".to_string()));
        let one = |v: &str| (v == CLIENT_ID_ENV).then(|| "id".to_string());
        assert!(app_credentials(None, &one).err().unwrap().message.contains("is not"));
        assert!(app_credentials(None, &|_| None).err().unwrap().message.contains("[app] client_id"));
    }
}
