//! A live view of records per collection while a catch-up runs on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::sync::Progress;

/// The live view is drawn only when stderr is a terminal; otherwise the
/// log lines say the same.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// Redraws the progress lines until `stop` is cancelled, then draws once more.
pub async fn show(progress: Progress, stop: CancellationToken) {
    let mut drawn = 0usize;
    loop {
        let finished = stop.is_cancelled();
        drawn = draw(&progress, drawn);
        if finished {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

fn draw(progress: &Progress, previously: usize) -> usize {
    let snapshot = progress.snapshot();
    let mut out = String::new();
    if previously > 0 {
        out.push_str(&format!("\x1b[{previously}A"));
    }
    for (name, entry) in &snapshot {
        let status = if entry.done { "done" } else { "syncing" };
        out.push_str(&format!("\x1b[2K  {name:<40} {:>9} records {:>6} pages  {status}\n", entry.records, entry.pages));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(out.as_bytes());
    let _ = stderr.flush();
    snapshot.len()
}
