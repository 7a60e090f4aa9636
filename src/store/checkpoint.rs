//! Checkpoints off the writer's thread.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint
//! copies them into the database file and syncs both, and only then can
//! the WAL start over. SQLite's default runs the checkpoint inside the
//! commit that takes the WAL past 1,000 pages, so the single writer stops
//! for the copy and two fsyncs while the passes' pages queue up: in the
//! benchmark's full sync that was about a third of the writer's time
//! (issue 13). Here a thread of its own, with its own connection, does it:
//! each commit that changed rows nudges it, and it checkpoints (`PASSIVE`:
//! it never blocks the writer or a reader) once [`BACKGROUND_FRAMES`] pages
//! wait in the WAL.
//!
//! The WAL restarts only when a transaction begins after everything in it
//! was copied, so a writer that never pauses would grow it without end.
//! The writer's own automatic checkpoint stays on as the backstop, at
//! [`WRITER_FRAMES`]: past that the commit copies what is left itself (the
//! background thread has copied most of it by then), and the WAL starts
//! over. The file is cut back to [`WAL_LIMIT_BYTES`] when it does.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// Pages waiting in the WAL before the background thread copies them:
/// SQLite's own default threshold.
const BACKGROUND_FRAMES: i64 = 1_000;

/// The writer connection's automatic checkpoint threshold, in pages (64 MiB
/// at the default 4 KiB page): far above what the background thread leaves
/// behind, so it only bounds the WAL while the writer never pauses.
pub const WRITER_FRAMES: u32 = 16_384;

/// The WAL file is truncated to this size when it starts over.
pub(super) const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// The background checkpoint thread of one store; dropping it ends the
/// thread (after the checkpoint under way) and waits for it.
pub(super) struct Checkpointer {
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread with its own connection to the store at `path`,
    /// which the caller has opened (and migrated) already.
    pub(super) fn start(path: &Path) -> Result<Checkpointer, String> {
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        // One nudge waiting is enough: the thread looks at the whole WAL.
        let (nudge, nudges) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || serve(&conn, &nudges))
            .map_err(|e| format!("cannot start the checkpoint thread: {e}"))?;
        Ok(Checkpointer { nudge: Some(nudge), thread: Some(thread) })
    }

    /// Says the writer committed: the thread checks whether the WAL holds
    /// enough to copy. Never blocks.
    pub(super) fn nudge(&self) {
        if let Some(nudge) = &self.nudge {
            match nudge.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::warn!("store: the checkpoint thread has ended; the writer checkpoints alone")
                }
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudge = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("store: the checkpoint thread panicked");
        }
    }
}

fn serve(conn: &Connection, nudges: &Receiver<()>) {
    while nudges.recv().is_ok() {
        // A failure (the disk full, the file gone) leaves the pages in the
        // WAL, where they are safe: the next nudge tries again, and the
        // writer's own checkpoint bounds the WAL meanwhile.
        if let Err(e) = checkpoint(conn) {
            tracing::warn!("store: background checkpoint failed: {e}");
        }
    }
}

/// Copies the WAL into the database file if enough waits there.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    let (log, copied) = frames(conn, "NOOP")?;
    if log - copied >= BACKGROUND_FRAMES {
        frames(conn, "PASSIVE")?;
    }
    Ok(())
}

/// Runs `PRAGMA wal_checkpoint(mode)`: the pages in the WAL and how many of
/// them are in the database file.
fn frames(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get(1)?, r.get(2)?)))
}
