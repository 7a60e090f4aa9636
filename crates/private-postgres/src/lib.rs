//! A private PostgreSQL server for tests: its own data directory in a
//! temporary directory, on a free port of 127.0.0.1, stopped and removed
//! when dropped. It uses the system package's binaries (`initdb`, `pg_ctl`;
//! `AURINKO_TEST_PG_BIN` names their directory if they are elsewhere).
//!
//! `initdb` refuses to run as root: as root, the directory is given to the
//! `postgres` user and the binaries run as that user (`runuser`).
//!
//! One cluster is initialised per process and copied for each server, so a
//! server starts in a fraction of a second. The port: one is picked at
//! random and the server binds it itself; if another process holds it,
//! the start fails and another port is tried (no port is bound, closed and
//! hoped to stay free).
//!
//! Where the binaries are missing, [`PrivatePostgres::start`] returns
//! `None` after saying loudly that the test is skipped, unless `CI=true`:
//! then it panics, so CI cannot pass without PostgreSQL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The ports tried: above the usual services, below the ephemeral range.
const PORTS: std::ops::Range<u32> = 20_000..32_000;

/// How many ports are tried before giving up.
const ATTEMPTS: u32 = 20;

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Settings added to the server's command line.
    extra: String,
}

impl PrivatePostgres {
    /// A running private server, or `None` (said on stderr) where
    /// PostgreSQL is not installed and `CI` is not `true`.
    pub fn start(test: &str) -> Option<PrivatePostgres> {
        Self::start_with(test, &[])
    }

    /// [`start`](Self::start) with server settings of the caller's (as
    /// `-c name=value`), e.g. `shared_preload_libraries`.
    pub fn start_with(test: &str, settings: &[(&str, &str)]) -> Option<PrivatePostgres> {
        let Some(bin) = binaries() else {
            missing(test, std::env::var("CI").as_deref() == Ok("true"));
            return None;
        };
        let template = template(&bin);
        let dir = tempfile::Builder::new().prefix("aurinko-pg-").tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        let copied = Command::new("cp").arg("-a").arg(template).arg(&data).status().expect("cp runs");
        assert!(copied.success(), "copying the initialised cluster failed");
        give_to_postgres(dir.path());
        let extra = settings.iter().map(|(name, value)| format!(" -c {name}={value}")).collect();
        let mut server = PrivatePostgres { dir, bin, port: 0, extra };
        for attempt in 0..ATTEMPTS {
            server.port = pick_port(attempt);
            if server.pg_ctl_start() {
                return Some(server);
            }
        }
        panic!("no private PostgreSQL started after {ATTEMPTS} ports; last log:\n{}", server.log());
    }

    /// A URL for the server's `postgres` database as the `postgres` user
    /// (trust authentication: no password).
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's Unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (fast shutdown: connections are cut, as when a
    /// database restarts).
    pub fn stop(&self) {
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w"]);
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) {
        assert!(self.pg_ctl_start(), "the private PostgreSQL did not start again:\n{}", self.log());
    }

    /// Runs SQL through `psql` as the `postgres` user; its output (unaligned,
    /// tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let psql = self.bin.join("psql");
        let psql = if psql.exists() { psql } else { PathBuf::from("psql") };
        let port = self.port.to_string();
        let out = Command::new(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql failed on {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn pg_ctl_start(&self) -> bool {
        let socket_dir = self.dir.path().display().to_string();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off{}",
            self.port, self.extra
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data().display().to_string();
        let out = self.pg_ctl_in(&data, &["-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
        out.status.success()
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.data().display().to_string();
        self.pg_ctl_in(&data, args)
    }

    fn pg_ctl_in(&self, data: &str, args: &[&str]) -> Output {
        let mut all = vec!["-D", data];
        all.extend(args);
        as_postgres(&self.bin.join("pg_ctl"), &all).output().expect("pg_ctl runs")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }
}

/// Without the binaries: under CI a failure, elsewhere a skip said on
/// stderr past the test harness's capture.
fn missing(test: &str, ci: bool) {
    let why = "PostgreSQL's binaries (initdb, pg_ctl) were not found: install the distribution's \
               `postgresql` package, or set AURINKO_TEST_PG_BIN to their directory";
    if ci {
        panic!("{test}: {why}; under CI=true the PostgreSQL tests must run");
    }
    // Straight to stderr, not through `eprintln!`, which the test harness
    // captures and shows only for failing tests.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {why} ***\n");
}

/// The directory holding `initdb` and `pg_ctl`.
fn binaries() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("AURINKO_TEST_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| d.join("initdb").exists());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())).filter(|d| d.join("initdb").exists())
}

/// The process's initialised cluster, made once.
fn template(bin: &Path) -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::Builder::new().prefix("aurinko-pg-template-").tempdir().expect("a temporary directory");
            give_to_postgres(dir.path());
            let data = dir.path().join("data").display().to_string();
            let out = as_postgres(
                &bin.join("initdb"),
                &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--locale=C"],
            )
            .output()
            .expect("initdb runs");
            assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
            dir
        })
        .path()
        .join("data")
        .leak()
}

/// As root, the server's files belong to `postgres`.
fn give_to_postgres(path: &Path) {
    if rustix::process::geteuid().is_root() {
        let status = Command::new("chown").arg("-R").arg("postgres:").arg(path).status().expect("chown runs");
        assert!(status.success(), "chown to postgres failed: is there a postgres user?");
    }
}

/// `program args`, as the `postgres` user when running as root.
fn as_postgres(program: &Path, args: &[&str]) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program).args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

/// A port to try: spread by process, time and attempt, so parallel tests
/// and processes rarely meet.
fn pick_port(attempt: u32) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let seed =
        std::process::id().wrapping_mul(7919) ^ nanos ^ NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729);
    let span = PORTS.end - PORTS.start;
    (PORTS.start + (seed.wrapping_add(attempt.wrapping_mul(2_654_435_761)) % span)) as u16
}

#[cfg(test)]
mod tests {
    #[test]
    fn without_postgresql_a_test_is_skipped_outside_ci() {
        super::missing("a test", false);
    }

    #[test]
    #[should_panic(expected = "under CI=true the PostgreSQL tests must run")]
    fn without_postgresql_a_test_fails_under_ci() {
        super::missing("a test", true);
    }
}
