//! WAL checkpoints on their own thread and connection, so the store thread never waits for
//! them.
//!
//! Why: with `synchronous=NORMAL` a commit is a mere append to the WAL, but SQLite's automatic
//! checkpoint runs inside whichever commit crosses 1,000 WAL pages, on the committing thread,
//! and costs two fsyncs plus the page copies (about 20 ms on the disks measured). Under 32
//! modems that was one stall every ~100 groups, and every send worker waiting on its segment
//! write waited with it: the mean segment write took 3 ms instead of 0.5 ms. A `PASSIVE`
//! checkpoint from another connection runs beside the writer (SQLite allows one checkpointer
//! and one writer at once), and the writer wraps the WAL round to its start at its next commit
//! once everything has been copied back.
//!
//! The writer keeps a (much higher) automatic checkpoint as a safety net, so the WAL stays
//! bounded even if this thread cannot open its connection or falls behind.

use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the WAL is copied back. 32 busy modems write about 5 MB of WAL a second.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint, in WAL pages (4 KiB): reached only when this
/// thread is not keeping up.
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// The running checkpointer; [`Checkpointer::stop`] ends it (dropping it does too, without
/// waiting).
pub struct Checkpointer {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Start checkpointing the database at `path` every [`INTERVAL`].
    pub fn start(path: PathBuf) -> std::io::Result<Checkpointer> {
        let (stop, stopped) = channel();
        let thread = std::thread::Builder::new()
            .name("gridsms-checkpoint".into())
            .spawn(move || run(path, stopped))?;
        Ok(Checkpointer { stop, thread })
    }

    /// Stop and wait, so the writer's close (the last connection) can checkpoint and remove
    /// the WAL.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

fn run(path: PathBuf, stop: Receiver<()>) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(&path, flags) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e,
                "cannot open a checkpoint connection; the writer checkpoints itself");
            return;
        }
    };
    // A checkpoint syncs the WAL before copying and the database after (NORMAL or FULL).
    if let Err(e) = conn.execute_batch("PRAGMA synchronous = NORMAL") {
        tracing::debug!(error = %e, "checkpoint connection: synchronous");
    }
    // Another checkpointer (a backup tool, the sqlite3 shell) may hold the lock a moment.
    let _ = conn.busy_timeout(Duration::from_millis(100));
    loop {
        match stop.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Err(e) = checkpoint(&conn) {
            tracing::debug!(error = %e, "WAL checkpoint");
        }
    }
}

/// One `PASSIVE` checkpoint: copies what it can without waiting for readers or the writer.
/// Returns (WAL frames, frames copied back).
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use crate::message::Category;
    use crate::phone;
    use crate::store::{NewMessage, Store};
    use std::time::{Duration, Instant};

    fn size(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_copied_back_beside_the_writer_and_removed_when_the_store_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let wal = dir.path().join("outbox.db-wal");
        let store = Store::open(&path).await.unwrap();
        let before = size(&path);
        let batch: Vec<NewMessage> = (0..3000)
            .map(|i| {
                let to = phone::normalise(&format!("139{i:08}")).unwrap();
                NewMessage::new(to, "您本月电费已出账。", Category::Bill)
            })
            .collect();
        store.enqueue_bulk(batch, chrono::Utc::now()).await.unwrap();
        // Far below the writer's own automatic checkpoint: only this thread copies pages
        // back into the database file (which, in WAL mode, grows only by checkpoints).
        assert!(size(&wal) < u64::from(super::WRITER_AUTOCHECKPOINT_PAGES) * 4096 / 4);
        let deadline = Instant::now() + Duration::from_secs(5);
        while size(&path) < before + 200_000 {
            assert!(
                Instant::now() < deadline,
                "no checkpoint: database file still {} bytes",
                size(&path)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The last connection to close removes the WAL: the checkpointer closes first.
        drop(store);
        let deadline = Instant::now() + Duration::from_secs(5);
        while wal.exists() {
            assert!(Instant::now() < deadline, "the WAL outlived the store");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
