//! A running daemon (`aurinko-sync run`) whose stderr is read as it is
//! written: tests wait for its lines instead of guessing how long something
//! takes (and an unread pipe would stall the daemon once full).

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

pub struct Daemon {
    child: Child,
    log: Arc<Log>,
    reader: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    /// Set when stderr ends: the daemon exited (or closed it).
    closed: std::sync::atomic::AtomicBool,
}

impl Daemon {
    /// Starts `command` with stdout and stderr piped, stderr collected.
    pub fn start(mut command: Command) -> Daemon {
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn().expect("daemon starts");
        let log = Arc::new(Log::default());
        let mut reader = tokio::io::BufReader::new(child.stderr.take().expect("stderr piped")).lines();
        let sink = log.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lines.lock().unwrap().push(line);
            }
            sink.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Daemon { child, log, reader }
    }

    pub fn id(&self) -> u32 {
        self.child.id().expect("the daemon runs")
    }

    /// The lines logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().clone()
    }

    /// Waits until a line from the `skip`th on satisfies `check` and returns
    /// it; fails after `limit`, or at once when the daemon has ended.
    pub async fn wait_for_line(
        &self,
        skip: usize,
        limit: Duration,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        loop {
            let closed = self.log.closed.load(std::sync::atomic::Ordering::SeqCst);
            if let Some(line) = self.log.lines.lock().unwrap().iter().skip(skip).find(|l| check(l)) {
                return line.clone();
            }
            assert!(!closed, "the daemon ended before logging {what}:\n{}", self.lines().join("\n"));
            assert!(
                started.elapsed() < limit,
                "timed out after {limit:?} waiting for the daemon to log {what}:\n{}",
                self.lines().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address the listener bound, from its `listening on` line.
    pub async fn listening_address(&self) -> SocketAddr {
        let line = self.wait_for_line(0, Duration::from_secs(30), "its address", |l| l.contains("listening on ")).await;
        let (_, rest) = line.split_once("listening on ").unwrap();
        let addr = rest.split_whitespace().next().unwrap_or_default();
        addr.parse().unwrap_or_else(|_| panic!("no address in {line:?}"))
    }

    /// Sends SIGTERM, as systemd does to stop it.
    pub fn terminate(&self) {
        crate::sys::signal(self.id(), crate::sys::Sig::TERM);
    }

    /// Kills it (SIGKILL) and waits: its stdout, and all it logged.
    pub async fn kill_and_wait(mut self) -> Output {
        self.child.start_kill().expect("the daemon is killed");
        self.wait_with_output().await
    }

    /// Waits for the daemon to exit; its stdout, and all it logged.
    pub async fn wait_with_output(self) -> Output {
        let Daemon { child, log, reader } = self;
        let output = child.wait_with_output().await.expect("the daemon is waited for");
        reader.await.expect("stderr read");
        let mut stderr = log.lines.lock().unwrap().join("\n");
        stderr.push('\n');
        Output { stderr: stderr.into_bytes(), ..output }
    }
}
