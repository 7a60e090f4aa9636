//! The real binary as a child process, watched through /proc: its peak RSS
//! (`VmHWM`, sampled every 20 ms) and its CPU time (`utime + stime`).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The token the configuration names; the double does not check it.
const TOKEN_ENV: &str = "BENCH_AURINKO_TOKEN";

/// How often the child's /proc entries are read.
pub const SAMPLE: Duration = Duration::from_millis(20);

/// Built by `cargo bench` together with the bench (bench profile, which
/// inherits `release`).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aurinko-sync"))
}

/// A directory with a configuration and a store for one run of the binary.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
    /// The `[store]` lines when the store is not the SQLite file `db`.
    pub store: Option<String>,
}

impl Workspace {
    /// Under the target directory rather than /tmp, so the store is on the
    /// same kind of disk a real one would be.
    pub fn new(base_url: &str, poll_interval_secs: u64) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("bench-sync-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("a temporary directory");
        let db = dir.path().join("store.db");
        let config = dir.path().join("aurinko-sync.toml");
        let ws = Workspace { dir, config, db, store: None };
        ws.configure(base_url, poll_interval_secs);
        ws
    }

    /// (Re)writes the configuration.
    pub fn configure(&self, base_url: &str, poll_interval_secs: u64) {
        let text = format!(
            "[api]\nbase_url = \"{base_url}\"\nrequests_per_second = 100000\n\n\
             [store]\n{store}\n\n\
             [sync]\nconcurrency = {concurrency}\npoll_interval_secs = {poll_interval_secs}\n\n\
             [[accounts]]\nname = \"bench\"\ntoken_env = \"{TOKEN_ENV}\"\n",
            store = self.store.clone().unwrap_or_else(|| format!("path = {:?}", self.db.display().to_string())),
            concurrency = crate::floor::CONCURRENCY,
        );
        std::fs::write(&self.config, text).expect("configuration written");
    }

    /// Starts `aurinko-sync --config ... <args>`, its output into files.
    pub fn spawn(&self, args: &[&str], log_name: &str) -> Watched {
        let out = File::create(self.dir.path().join(format!("{log_name}.stdout"))).expect("log file");
        let err = File::create(self.dir.path().join(format!("{log_name}.stderr"))).expect("log file");
        let child = Command::new(binary())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("AURINKO_SYNC_CONFIG")
            .env(TOKEN_ENV, "bench-token")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        Watched { child, started: Instant::now(), peak_rss_kib: 0, cpu_ticks: 0, peak_anon_kib: 0 }
    }

    pub fn log(&self, log_name: &str, stream: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{log_name}.{stream}"))).unwrap_or_default()
    }
}

pub struct Watched {
    pub child: Child,
    pub started: Instant,
    /// The last `VmHWM` read, in KiB.
    pub peak_rss_kib: u64,
    /// The last `utime + stime` read, in clock ticks.
    pub cpu_ticks: u64,
    /// The largest `RssAnon` seen (heap and stacks; the rest of RSS is
    /// mapped files, mostly the binary's own code).
    pub peak_anon_kib: u64,
}

/// How a run to the end went.
pub struct Finished {
    pub status: ExitStatus,
    pub wall: Duration,
    pub peak_rss_kib: u64,
    pub peak_anon_kib: u64,
    pub cpu: Duration,
}

impl Watched {
    /// Reads the child's /proc entries once; false once it has exited.
    pub fn sample(&mut self) -> bool {
        let pid = self.child.id();
        if let Some(hwm) = status_kib(pid, "VmHWM:") {
            self.peak_rss_kib = self.peak_rss_kib.max(hwm);
        }
        if let Some(anon) = status_kib(pid, "RssAnon:") {
            self.peak_anon_kib = self.peak_anon_kib.max(anon);
        }
        if let Some(ticks) = cpu_ticks(pid) {
            self.cpu_ticks = self.cpu_ticks.max(ticks);
        }
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Samples every 20 ms for `span`; false if the child exited meanwhile.
    pub fn watch_for(&mut self, span: Duration) -> bool {
        let until = Instant::now() + span;
        while Instant::now() < until {
            if !self.sample() {
                return false;
            }
            std::thread::sleep(SAMPLE.min(until.saturating_duration_since(Instant::now())));
        }
        self.sample()
    }

    /// Samples until the child exits.
    pub fn wait(mut self) -> Finished {
        while self.sample() {
            std::thread::sleep(SAMPLE);
        }
        let status = self.child.wait().expect("the child is reaped");
        Finished {
            status,
            wall: self.started.elapsed(),
            peak_rss_kib: self.peak_rss_kib,
            peak_anon_kib: self.peak_anon_kib,
            cpu: ticks_to_duration(self.cpu_ticks),
        }
    }

    /// SIGTERM (a clean stop), then waits up to `grace` before killing.
    pub fn stop(mut self, grace: Duration) -> Finished {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let until = Instant::now() + grace;
        while self.sample() {
            if Instant::now() > until {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(SAMPLE);
        }
        self.wait()
    }
}

/// A `/proc/<pid>/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// The same for the calling thread: the floor's CPU time.
pub fn thread_cpu() -> Duration {
    ticks_to_duration(stat_ticks("/proc/thread-self/stat").unwrap_or(0))
}

fn stat_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux in practice).
pub fn clock_ticks_per_sec() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_sec() as f64)
}
