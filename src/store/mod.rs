//! The durable outbox: every outgoing message, its segments, per-SIM quota counters and the
//! failed-number counters, in one SQLite file.
//!
//! # One owner of the connection
//! [`Store`] is a cloneable handle to a dedicated OS thread that owns the only
//! `rusqlite::Connection`. Callers send a closure over a bounded channel (capacity
//! [`CHANNEL_CAPACITY`]) and await a oneshot reply. Chosen over `Mutex<Connection>` +
//! `spawn_blocking` because SQLite allows one writer anyway, so a single thread loses nothing;
//! it keeps the prepared-statement cache warm, never occupies tokio's blocking pool during a
//! long bulk insert, and makes "no lock held across `.await`" true by construction. A full
//! channel applies back-pressure to callers instead of growing memory.
//!
//! Group commit: the thread takes every request already waiting (up to [`MAX_GROUP`]), runs
//! them in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint (a failing request
//! rolls back alone), commits once, and only then answers each caller. With 32 modem actors
//! writing segment states this halved the store's CPU per message in the benchmark; a request
//! on an idle store still commits immediately. If the shared commit fails, every request of the
//! group gets [`StoreError::Commit`].
//!
//! The sync functions in the submodules ([`outbox`], [`segments`], [`quotas`], [`retention`])
//! take a `&mut Connection` and do the work; the async methods here only ship them to the
//! thread. Every time-dependent call takes `now`/`at` from the caller (the dispatcher's clock),
//! so tests and quiet-hour logic stay deterministic.
//!
//! # Durability
//! WAL journal. Commits run with `synchronous=NORMAL` (a commit is an append, fsync only at
//! checkpoints: safe against a process crash, and cheap enough for the several small state
//! writes per segment), except a group containing an enqueue, which is raised to
//! `synchronous=FULL`: the WAL is fsynced before [`Store::enqueue`] returns, so a message the
//! API acknowledged survives power loss too, and that fsync also hardens every earlier commit.
//! After a power cut (not a mere crash) the last few dispatch-state writes may roll back; that
//! only leaves a message in `queued`/`sending`, which start-up recovery resolves — a possible
//! resend, never a loss.
//!
//! # Message life and the crash window
//! `enqueue` → `queued` → [`Store::claim_next`] (compare-and-set to `sending`, SIM recorded,
//! attempt counted; the dispatcher uses [`Store::claim_many`] for a whole pass) → per segment
//! [`Store::mark_segment_submitting`] before Ctrl-Z and [`Store::mark_segment_submitted`] with
//! the TP-MR after `+CMGS` (the last one turns the message `sent`) → status reports
//! ([`Store::apply_status_report`]) → `delivered` / `failed`. The daemon's send workers use
//! [`Store::segment_step`], which makes both writes between two `AT+CMGS` of a modem (the
//! record of the segment just sent, with its quota count, and the mark of the next) in one
//! request; a message never started is given back with [`Store::unclaim`].
//! On a send error the dispatcher calls [`Store::schedule_retry`] or [`Store::mark_failed`].
//! A crash can leave at most the one `submitting` segment per modem in doubt;
//! [`Store::recover_in_flight`] resolves every `sending` message at start-up (rule in
//! [`outbox::recover_in_flight`]).
//!
//! # Bulk enqueue is all or nothing
//! [`Store::enqueue_bulk`] validates every message before opening the transaction and then
//! inserts them all in one transaction; an invalid message ([`StoreError::Invalid`]) or an
//! idempotency conflict ([`StoreError::Conflict`]) anywhere commits nothing and names the
//! index of the culprit. A job can therefore simply retry the whole batch after fixing it, and
//! the idempotency keys make a retry of an already-committed batch harmless (all duplicates).
//! Callers that want per-row acceptance should filter with phone/text validation first.

pub mod audit;
pub mod backup;
mod checkpointer;
pub mod contacts;
pub mod inbox;
pub mod jobs;
pub mod migrations;
pub mod outages;
pub mod outbox;
pub mod quotas;
pub mod retention;
pub mod segments;

pub use outbox::{
    CancelTarget, ClaimFilter, Claimed, CountCell, EnqueueOutcome, ListFilter, Message,
    MessageDetail, MessageId, NewMessage, Page, QueueCounts, RecoveryPolicy, RecoveryReport,
    RecoveryRule, SimRef,
};
pub use quotas::Usage;
pub use retention::DEFAULT_RETENTION_DAYS;
pub use segments::{
    DeliveryClass, FailedNumber, ReportApplied, Segment, SegmentSent, SegmentState, SegmentSubmit,
    StatusReport, StepOutcome,
};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the store thread; callers beyond this wait (back-pressure).
pub const CHANNEL_CAPACITY: usize = 256;

/// Errors of the store. The API maps `Conflict` to 409, `Invalid` to 400, `NotFound` to 404.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database schema version {found} is newer than this gridsms supports ({supported}); \
         run the gridsms version that wrote it, or restore a backup"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        version: u32,
        source: rusqlite::Error,
    },
    #[error("database setup: {0}")]
    Pragma(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Same idempotency key, different content. Nothing of the request was committed.
    #[error(
        "message #{index}: idempotency key {key:?} was already used for different content \
         (message {existing_id})"
    )]
    Conflict {
        index: usize,
        key: String,
        existing_id: MessageId,
    },
    /// A message failed validation. Nothing of the request was committed.
    #[error("message #{index}: {field}: {reason}")]
    Invalid {
        index: usize,
        field: &'static str,
        reason: String,
    },
    #[error("message {0} not found")]
    NotFound(MessageId),
    /// A compare-and-set found the message in another state (claimed, cancelled, expired...).
    #[error("message {id} is {found}, expected {expected}")]
    WrongState {
        id: MessageId,
        expected: &'static str,
        found: String,
    },
    #[error("segment {seq} of message {id} is {found}, expected {expected}")]
    WrongSegmentState {
        id: MessageId,
        seq: u8,
        expected: &'static str,
        found: String,
    },
    /// A row holds a value this build cannot read (hand-edited database, disk damage).
    #[error("unreadable row: {0}")]
    Corrupt(String),
    /// The group transaction the request ran in could not be committed (disk full, I/O).
    #[error("database commit failed: {0}")]
    Commit(String),
    #[error("the store thread has stopped")]
    Closed,
    #[error("cannot start the store thread: {0}")]
    Thread(std::io::Error),
}

/// Open-time settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a statement waits for a lock held by another connection (a backup, the
    /// sqlite3 shell) before failing.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Called once the group transaction a job ran in has committed (`None`) or failed (`Some`).
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// Runs a request (`None`: it cannot run, answer with the group's failure).
type RunFn = Box<dyn FnOnce(Option<&mut Connection>) -> Reply + Send>;

struct Job {
    run: RunFn,
    /// Commit with `synchronous=FULL` (acceptance must survive power loss).
    durable: bool,
}

/// Most jobs one group transaction takes.
pub const MAX_GROUP: usize = 64;

/// Handle to the store thread. Clone freely; the thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Open (creating if needed) and migrate a database file on the calling thread. The store
/// thread uses this; tests and tools may too.
pub fn open_connection(path: &Path, opts: &StoreOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    prepare(&mut conn, opts)?;
    Ok(conn)
}

fn prepare(conn: &mut Connection, opts: &StoreOptions) -> Result<(), StoreError> {
    migrations::configure(conn, opts.busy_timeout)?;
    let before = migrations::version(conn)?;
    let upgrading = before > 0 && before < migrations::CURRENT_VERSION;
    if upgrading {
        // Some upgrades copy a whole table (version 10 rebuilds `messages`): say why the start
        // is slow before it is.
        tracing::info!(
            from = before,
            to = migrations::CURRENT_VERSION,
            "upgrading the database schema; a large database takes seconds per million messages"
        );
    }
    let started = std::time::Instant::now();
    migrations::migrate(conn)?;
    if upgrading {
        tracing::info!(
            version = migrations::CURRENT_VERSION,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "database schema upgraded"
        );
    }
    // Every hot statement stays prepared; several modules share the cache.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

impl Store {
    /// Open the database at `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// Open the database at `path`: pragmas, migrations, then the store thread takes over.
    pub async fn open_with(
        path: impl AsRef<Path>,
        opts: StoreOptions,
    ) -> Result<Store, StoreError> {
        let path = path.as_ref().to_owned();
        let checkpoint_path = path.clone();
        Self::spawn(move || open_connection(&path, &opts), Some(checkpoint_path)).await
    }

    /// A private in-memory database, for tests and tools.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        Self::spawn(
            || {
                let mut conn = Connection::open_in_memory()?;
                prepare(&mut conn, &StoreOptions::default())?;
                Ok(conn)
            },
            None,
        )
        .await
    }

    /// Start the store thread on the connection `open` makes; with a `checkpoint_path`, WAL
    /// checkpoints run on their own thread (see [`checkpointer`]).
    async fn spawn(
        open: impl FnOnce() -> Result<Connection, StoreError> + Send + 'static,
        checkpoint_path: Option<PathBuf>,
    ) -> Result<Store, StoreError> {
        let (jobs, mut rx) = mpsc::channel::<Job>(CHANNEL_CAPACITY);
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("gridsms-store".into())
            .spawn(move || {
                let mut conn = match open() {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let checkpointer = checkpoint_path.and_then(|path| {
                    let pages = checkpointer::WRITER_AUTOCHECKPOINT_PAGES;
                    conn.pragma_update(None, "wal_autocheckpoint", pages)
                        .map_err(|e| tracing::debug!(error = %e, "wal_autocheckpoint"))
                        .ok()?;
                    checkpointer::Checkpointer::start(path)
                        .map_err(|e| tracing::warn!(error = %e, "no checkpoint thread"))
                        .ok()
                });
                let _ = ready_tx.send(Ok(()));
                // Ends when every Store handle is dropped; dropping the connection then
                // checkpoints the WAL (the checkpointer stops first: only the last
                // connection to close removes the WAL).
                while let Some(first) = rx.blocking_recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    run_group(&mut conn, group);
                }
                if let Some(c) = checkpointer {
                    c.stop();
                }
            })
            .map_err(StoreError::Thread)?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store { jobs })
    }

    /// Run `f` on the store thread, inside the group transaction, and return its result once
    /// that transaction has committed. `f` must not begin or end transactions itself (use a
    /// savepoint) nor run pragmas that are refused inside a transaction.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// Like [`Store::call`], but the commit is fsynced before this returns (as for enqueue):
    /// for callers that enqueue messages inside `f` and then report them accepted.
    pub async fn call_durable<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<R, F>(&self, f: F, durable: bool) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |conn: Option<&mut Connection>| -> Reply {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Commit(String::new())),
            };
            Box::new(move |commit_error: Option<&str>| {
                let result = match (commit_error, result) {
                    (Some(e), Ok(_) | Err(StoreError::Commit(_))) => {
                        Err(StoreError::Commit(e.to_owned()))
                    }
                    (_, result) => result,
                };
                let _ = tx.send(result);
            })
        });
        let job = Job { run, durable };
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queue one message; returns once it is committed (fsynced).
    pub async fn enqueue(
        &self,
        msg: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<EnqueueOutcome, StoreError> {
        let mut out = self.enqueue_bulk(vec![msg], now).await?;
        out.pop().ok_or(StoreError::Closed)
    }

    /// Queue many messages in ONE transaction: all committed, or (on an invalid message or an
    /// idempotency conflict) none. Outcomes are in input order.
    pub async fn enqueue_bulk(
        &self,
        msgs: Vec<NewMessage>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EnqueueOutcome>, StoreError> {
        // Validation and hashing run here, on the caller's task, not on the shared thread.
        let hashes = outbox::prepare(&msgs)?;
        // Durable: the group commit holding an enqueue runs with synchronous=FULL, so what the
        // API acknowledged survives power loss, not only a crash.
        self.submit(
            move |c| outbox::enqueue_prepared(c, &msgs, &hashes, now),
            true,
        )
        .await
    }

    /// Claim up to `filter.limit` due messages in priority order (queued → sending), recording
    /// the SIM they go out on.
    pub async fn claim_next(
        &self,
        now: DateTime<Utc>,
        filter: ClaimFilter,
        sim: Option<SimRef>,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.call(move |c| outbox::claim_next(c, now, &filter, sim.as_ref()))
            .await
    }

    /// The messages `claim_next` would take, without claiming them (for SIM planning).
    pub async fn peek_ready(
        &self,
        now: DateTime<Utc>,
        filter: ClaimFilter,
    ) -> Result<Vec<Message>, StoreError> {
        self.call(move |c| outbox::peek_ready(c, now, &filter))
            .await
    }

    /// Claim one message by id (after `peek_ready`); `None` if someone else got it first.
    pub async fn claim(
        &self,
        id: MessageId,
        now: DateTime<Utc>,
        sim: Option<SimRef>,
    ) -> Result<Option<Claimed>, StoreError> {
        self.call(move |c| outbox::claim(c, id, now, sim.as_ref()))
            .await
    }

    /// Claim several messages by id, each for its SIM, in one round trip; `None` where a
    /// message is no longer queued (or has expired).
    pub async fn claim_many(
        &self,
        picks: Vec<(MessageId, Option<SimRef>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Claimed>>, StoreError> {
        self.call(move |c| outbox::claim_many(c, &picks, now)).await
    }

    /// Give a claimed, untried message back to the queue without counting the attempt.
    pub async fn unclaim(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.call(move |c| outbox::unclaim(c, id, at)).await
    }

    /// One store round trip between two `AT+CMGS` on a modem: record the `+CMGS` of the
    /// segment just sent (counting it against its SIM's quotas) and mark the modem's next
    /// segment `submitting`, each atomic on its own (see [`segments::step`]).
    pub async fn segment_step(
        &self,
        sent: Option<SegmentSent>,
        next: Option<SegmentSubmit>,
        at: DateTime<Utc>,
    ) -> Result<StepOutcome, StoreError> {
        self.call(move |c| Ok(segments::step(c, sent.as_ref(), next.as_ref(), at)))
            .await
    }

    /// When the next queued message matching `filter` becomes due (to sleep until then).
    pub async fn next_due(&self, filter: ClaimFilter) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(move |c| outbox::next_due(c, &filter)).await
    }

    /// Record that a segment is about to be sent (before Ctrl-Z).
    pub async fn mark_segment_submitting(
        &self,
        seg: SegmentSubmit,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |c| segments::mark_submitting(c, &seg, at))
            .await
    }

    /// Record the TP-MR a segment got from `+CMGS`. Returns `true` when that was the last
    /// part and the message is now `sent` (no `mark_sent` call needed).
    pub async fn mark_segment_submitted(
        &self,
        id: MessageId,
        seq: u8,
        tp_mr: u8,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call(move |c| segments::mark_submitted(c, id, seq, tp_mr, at))
            .await
    }

    /// Every segment has its TP-MR: sending → sent. Idempotent; [`Store::mark_segment_submitted`]
    /// already does this for the last part, so the dispatcher only needs it defensively.
    pub async fn mark_sent(&self, id: MessageId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.call(move |c| outbox::mark_sent(c, id, at)).await
    }

    /// Give up on a message. `permanent` = the recipient number is at fault (counted in the
    /// failed-number report).
    pub async fn mark_failed(
        &self,
        id: MessageId,
        reason: String,
        permanent: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |c| outbox::mark_failed(c, id, &reason, permanent, at))
            .await
    }

    /// Put a message back in the queue until `next_attempt_at` (sending → queued).
    pub async fn schedule_retry(
        &self,
        id: MessageId,
        next_attempt_at: DateTime<Utc>,
        error: String,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |c| outbox::schedule_retry(c, id, next_attempt_at, &error, at))
            .await
    }

    /// Queued messages whose `expires_at` has passed → expired. Returns how many.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.call(move |c| outbox::expire_due(c, now)).await
    }

    /// Cancel queued messages by id or by batch. Returns how many were cancelled.
    pub async fn cancel(
        &self,
        target: CancelTarget,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.call(move |c| outbox::cancel(c, &target, at)).await
    }

    /// Apply an SMS-STATUS-REPORT; `None` when no recent submitted segment matches.
    pub async fn apply_status_report(
        &self,
        report: StatusReport,
    ) -> Result<Option<ReportApplied>, StoreError> {
        self.call(move |c| segments::apply_status_report(c, &report))
            .await
    }

    /// Resolve every message left in `sending` (call once at start-up, before dispatching).
    pub async fn recover_in_flight(
        &self,
        policy: RecoveryPolicy,
        now: DateTime<Utc>,
    ) -> Result<RecoveryReport, StoreError> {
        self.call(move |c| outbox::recover_in_flight(c, &policy, now))
            .await
    }

    /// Count `n` segments sent through SIM `iccid` at `at` (hour, day and month buckets in `tz`).
    pub async fn record_segments_sent(
        &self,
        iccid: String,
        n: u32,
        at: DateTime<Utc>,
        tz: Tz,
    ) -> Result<(), StoreError> {
        self.call(move |c| quotas::record_segments_sent(c, &iccid, n, at, tz))
            .await
    }

    /// Segments sent through SIM `iccid` in the hour, day and month containing `at`, in `tz`.
    pub async fn usage(
        &self,
        iccid: String,
        at: DateTime<Utc>,
        tz: Tz,
    ) -> Result<Usage, StoreError> {
        self.call(move |c| quotas::usage(c, &iccid, at, tz)).await
    }

    /// Usage of every SIM that has sent anything in the current month.
    pub async fn usage_all(
        &self,
        at: DateTime<Utc>,
        tz: Tz,
    ) -> Result<Vec<(String, Usage)>, StoreError> {
        self.call(move |c| quotas::usage_all(c, at, tz)).await
    }

    /// One message with its segments.
    pub async fn get(&self, id: MessageId) -> Result<Option<MessageDetail>, StoreError> {
        self.call(move |c| outbox::get(c, id)).await
    }

    /// A page of messages, newest first.
    pub async fn list(&self, filter: ListFilter) -> Result<Page, StoreError> {
        self.call(move |c| outbox::list(c, &filter)).await
    }

    /// Message counts by state and category.
    pub async fn counts(&self) -> Result<QueueCounts, StoreError> {
        self.call(outbox::counts).await
    }

    /// Numbers with at least `min_failures` permanent failures, worst first.
    pub async fn failed_numbers(
        &self,
        min_failures: u32,
        limit: usize,
    ) -> Result<Vec<FailedNumber>, StoreError> {
        self.call(move |c| segments::failed_numbers(c, min_failures, limit))
            .await
    }

    /// Delete finished messages last changed before `older_than`, [`retention::BATCH`] at a
    /// time, each batch its own transaction and its own trip through the channel, so dispatch
    /// requests interleave and sending never waits long. Returns how many were deleted.
    pub async fn prune(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let n = self
                .call(move |c| retention::prune_batch(c, older_than, retention::BATCH))
                .await?;
            total += n;
            if n < retention::BATCH {
                break;
            }
            tokio::task::yield_now().await;
        }
        self.call(move |c| retention::prune_usage(c, older_than))
            .await?;
        self.call(outbox::prune_batches).await?;
        Ok(total)
    }
}

/// Run a group of jobs in one IMMEDIATE transaction, then answer each. One commit (and, with
/// an enqueue in the group, one fsync) is shared by every job that queued up meanwhile, which
/// is what keeps many modem actors' small segment writes cheap. Each job works inside its own
/// savepoint, so a failing job rolls back alone. Nobody hears "done" before the commit.
fn run_group(conn: &mut Connection, group: Vec<Job>) {
    let durable = group.iter().any(|j| j.durable);
    let set_sync =
        |conn: &Connection, mode: &str| conn.execute_batch(&format!("PRAGMA synchronous = {mode}"));
    let mut failure: Option<String> = None;
    if durable && let Err(e) = set_sync(conn, "FULL") {
        failure = Some(format!("cannot raise synchronous to FULL: {e}"));
    }
    // Cached statements: parsing BEGIN/COMMIT text for every group showed in profiles.
    let run = |conn: &Connection, sql: &str| conn.prepare_cached(sql)?.execute([]).map(drop);
    if failure.is_none()
        && let Err(e) = run(conn, "BEGIN IMMEDIATE")
    {
        failure = Some(format!("cannot begin a transaction: {e}"));
    }
    if let Some(e) = failure {
        for job in group {
            (job.run)(None)(Some(&e));
        }
        let _ = set_sync(conn, migrations::BASE_SYNCHRONOUS);
        return;
    }
    let replies: Vec<Reply> = group
        .into_iter()
        .map(|job| (job.run)(Some(&mut *conn)))
        .collect();
    let commit_error = match run(conn, "COMMIT") {
        Ok(()) => None,
        Err(e) => {
            let _ = run(conn, "ROLLBACK");
            Some(format!("commit failed: {e}"))
        }
    };
    if durable {
        let _ = set_sync(conn, migrations::BASE_SYNCHRONOUS);
    }
    for reply in replies {
        reply(commit_error.as_deref());
    }
}

/// UTC milliseconds, the storage form of every time.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

pub(crate) fn from_ms_opt(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(from_ms).transpose()
}
