//! What the marketing jobs keep in the outbox database: a record of every run, a watermark per
//! job (how far it has read), and per-account reminder state (migration 5).
//!
//! Invariants:
//! - A job's watermark only moves in the same transaction as the last batch of messages read
//!   up to it ([`enqueue_checked`] then [`set_watermark`] inside one `Store::call_durable`), so
//!   a crash or a database outage mid-run re-reads rows instead of skipping them; re-read rows
//!   are harmless because every job message carries an idempotency key.
//! - [`enqueue_checked`] never fails a batch over one row: keys already in the outbox count as
//!   duplicates (even when their text changed, e.g. after a template edit), opted-out phones are
//!   dropped, and only the rest go to `outbox::enqueue_bulk` (which keeps `message_counts`).

use super::outbox::{self, NewMessage};
use super::{StoreError, from_ms, from_ms_opt, to_ms};
use crate::message::Category;
use crate::store::contacts;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Runs kept per job; older ones are deleted as new ones finish.
pub const KEEP_RUNS: usize = 2000;

/// Migration 5.
pub const MIGRATION: &str = r#"
    CREATE TABLE job_runs (
        id           INTEGER PRIMARY KEY,
        job          TEXT    NOT NULL,
        trigger      TEXT    NOT NULL,              -- 'schedule' | 'retry' | 'manual' | 'start'
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        state        TEXT    NOT NULL,              -- 'running' | 'ok' | 'failed' | 'interrupted'
        rows_read    INTEGER NOT NULL DEFAULT 0,
        queued       INTEGER NOT NULL DEFAULT 0,
        duplicates   INTEGER NOT NULL DEFAULT 0,
        cancelled    INTEGER NOT NULL DEFAULT 0,
        skipped_json TEXT    NOT NULL DEFAULT '{}', -- {"no_phone": 3, "opted_out": 1, ...}
        error        TEXT
    );
    CREATE INDEX job_runs_job ON job_runs (job, id);

    CREATE TABLE watermarks (
        job         TEXT PRIMARY KEY,
        value       TEXT    NOT NULL,               -- RFC 3339 UTC for the time-based jobs
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Reminders sent per account for one due date; a new due date starts again at zero.
    CREATE TABLE reminder_state (
        account       TEXT PRIMARY KEY,
        due_date      TEXT    NOT NULL,             -- YYYY-MM-DD
        sent          INTEGER NOT NULL,
        last_sent_on  TEXT    NOT NULL,             -- local date YYYY-MM-DD
        updated_at    INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Cancelling the queued reminders of an account that has paid.
    CREATE INDEX messages_account_queued ON messages (category, account)
        WHERE state = 'queued' AND account IS NOT NULL;
"#;

/// Counters of one run, filled as it goes (a failed run keeps what it did before failing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    pub rows_read: u64,
    pub queued: u64,
    /// Messages whose idempotency key was already in the outbox (re-read rows).
    pub duplicates: u64,
    /// Queued messages cancelled (reminders of accounts that have paid).
    pub cancelled: u64,
    /// Rows or messages skipped, by reason label (`no_phone`, `opted_out`, `paid`, …).
    pub skipped: BTreeMap<String, u64>,
}

impl RunStats {
    pub fn skip(&mut self, reason: &str) {
        self.skip_n(reason, 1);
    }

    pub fn skip_n(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.skipped.entry(reason.to_owned()).or_default() += n;
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn add(&mut self, b: &BatchOutcome) {
        self.queued += b.queued;
        self.duplicates += b.duplicates;
        self.skip_n("opted_out", b.opted_out);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Ok,
    Failed,
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Ok => "ok",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Result<RunState, StoreError> {
        Ok(match s {
            "running" => RunState::Running,
            "ok" => RunState::Ok,
            "failed" => RunState::Failed,
            "interrupted" => RunState::Interrupted,
            _ => return Err(StoreError::Corrupt(format!("job run state {s:?}"))),
        })
    }
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub state: RunState,
    #[serde(flatten)]
    pub stats: RunStats,
    pub error: Option<String>,
}

pub fn start_run(
    conn: &Connection,
    job: &str,
    trigger: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO job_runs (job, trigger, started_at, state) VALUES (?1, ?2, ?3, 'running')",
    )?
    .execute(params![job, trigger, to_ms(now)])?;
    Ok(conn.last_insert_rowid())
}

pub fn finish_run(
    conn: &Connection,
    id: i64,
    stats: &RunStats,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let skipped = serde_json::to_string(&stats.skipped)
        .map_err(|e| StoreError::Corrupt(format!("skipped counters: {e}")))?;
    let state = if error.is_some() {
        RunState::Failed
    } else {
        RunState::Ok
    };
    conn.prepare_cached(
        "UPDATE job_runs SET finished_at = ?2, state = ?3, rows_read = ?4, queued = ?5,
             duplicates = ?6, cancelled = ?7, skipped_json = ?8, error = ?9
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        to_ms(now),
        state.as_str(),
        stats.rows_read as i64,
        stats.queued as i64,
        stats.duplicates as i64,
        stats.cancelled as i64,
        skipped,
        error
    ])?;
    // Bounded history: a job every 15 minutes is 35,000 runs a year.
    conn.prepare_cached(
        "DELETE FROM job_runs WHERE job = (SELECT job FROM job_runs WHERE id = ?1)
             AND id <= (SELECT id FROM job_runs WHERE job = (SELECT job FROM job_runs WHERE id = ?1)
                        ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![id, KEEP_RUNS as i64])?;
    Ok(())
}

/// Runs a stop or crash left `running` become `interrupted` (call once at start-up).
pub fn interrupt_running(conn: &Connection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE job_runs SET state = 'interrupted', finished_at = ?1,
             error = coalesce(error, 'interrupted by a stop of the daemon')
         WHERE state = 'running'",
        [to_ms(now)],
    )?)
}

fn run_from_row(r: &rusqlite::Row<'_>) -> Result<JobRun, StoreError> {
    let state: String = r.get(5)?;
    let skipped: String = r.get(10)?;
    let count = |i: usize| -> Result<u64, StoreError> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    Ok(JobRun {
        id: r.get(0)?,
        job: r.get(1)?,
        trigger: r.get(2)?,
        started_at: from_ms(r.get(3)?)?,
        finished_at: from_ms_opt(r.get(4)?)?,
        state: RunState::parse(&state)?,
        stats: RunStats {
            rows_read: count(6)?,
            queued: count(7)?,
            duplicates: count(8)?,
            cancelled: count(9)?,
            skipped: serde_json::from_str(&skipped)
                .map_err(|e| StoreError::Corrupt(format!("skipped_json {skipped:?}: {e}")))?,
        },
        error: r.get(11)?,
    })
}

const RUN_COLUMNS: &str = "id, job, trigger, started_at, finished_at, state, rows_read, queued,
    duplicates, cancelled, skipped_json, error";

/// The latest `limit` runs of `job`, newest first.
pub fn recent_runs(conn: &Connection, job: &str, limit: usize) -> Result<Vec<JobRun>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![job, limit.min(1000) as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(run_from_row(r)?);
    }
    Ok(out)
}

pub fn get_run(conn: &Connection, id: i64) -> Result<Option<JobRun>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM job_runs WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(run_from_row(r)?)),
        None => Ok(None),
    }
}

pub fn watermark(conn: &Connection, job: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM watermarks WHERE job = ?1")?
        .query_row([job], |r| r.get(0))
        .optional()?)
}

pub fn set_watermark(
    conn: &Connection,
    job: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO watermarks (job, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (job) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(params![job, value, to_ms(now)])?;
    Ok(())
}

/// What happened to a batch handed to [`enqueue_checked`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub queued: u64,
    pub duplicates: u64,
    pub opted_out: u64,
}

/// Queue the messages of a job batch: opted-out recipients dropped, keys already in the outbox
/// (or repeated within the batch) counted as duplicates, the rest enqueued in one go. Run it
/// inside `Store::call_durable` so the batch is fsynced before the job moves on.
pub fn enqueue_checked(
    conn: &mut Connection,
    msgs: Vec<NewMessage>,
    now: DateTime<Utc>,
) -> Result<BatchOutcome, StoreError> {
    // Fast path: no opt-outs anywhere and no key repeated inside the batch, so enqueue_bulk
    // alone decides (known keys with the same content come back as duplicates). Only a key
    // reused with other content (a template edited since) makes it fail, atomically; then the
    // careful path below looks every key up first.
    let any_opt_out = conn
        .prepare_cached("SELECT 1 FROM opt_outs LIMIT 1")?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some();
    if !any_opt_out {
        let mut keys = HashSet::with_capacity(msgs.len());
        let distinct = msgs
            .iter()
            .all(|m| m.idempotency_key.as_deref().is_none_or(|k| keys.insert(k)));
        if distinct {
            match outbox::enqueue_bulk(conn, &msgs, now) {
                Ok(outcomes) => return Ok(tally(outcomes, BatchOutcome::default())),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    enqueue_careful(conn, msgs, now, any_opt_out)
}

fn tally(outcomes: Vec<outbox::EnqueueOutcome>, mut out: BatchOutcome) -> BatchOutcome {
    for o in outcomes {
        match o {
            outbox::EnqueueOutcome::Queued(_) => out.queued += 1,
            outbox::EnqueueOutcome::Duplicate(_) => out.duplicates += 1,
        }
    }
    out
}

fn enqueue_careful(
    conn: &mut Connection,
    msgs: Vec<NewMessage>,
    now: DateTime<Utc>,
    any_opt_out: bool,
) -> Result<BatchOutcome, StoreError> {
    let mut out = BatchOutcome::default();
    let mut fresh = Vec::with_capacity(msgs.len());
    {
        let mut exists =
            conn.prepare_cached("SELECT 1 FROM messages WHERE idempotency_key = ?1")?;
        let mut seen: HashSet<String> = HashSet::with_capacity(msgs.len());
        let mut opted: HashMap<(String, Category), bool> = HashMap::new();
        for m in msgs {
            let out_of = any_opt_out
                && match opted.get(&(m.to.as_str().to_owned(), m.category)) {
                    Some(v) => *v,
                    None => {
                        let v = contacts::is_opted_out(conn, &m.to, m.category)?;
                        opted.insert((m.to.as_str().to_owned(), m.category), v);
                        v
                    }
                };
            if out_of {
                out.opted_out += 1;
                continue;
            }
            if let Some(key) = &m.idempotency_key
                && (!seen.insert(key.clone())
                    || exists.query_row([key], |_| Ok(())).optional()?.is_some())
            {
                out.duplicates += 1;
                continue;
            }
            fresh.push(m);
        }
    }
    let outcomes = outbox::enqueue_bulk(conn, &fresh, now)?;
    Ok(tally(outcomes, out))
}

/// Reminder bookkeeping of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderState {
    pub due_date: NaiveDate,
    pub sent: u32,
    pub last_sent_on: NaiveDate,
}

fn date(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| StoreError::Corrupt(format!("date {s:?}")))
}

pub fn reminder_states(
    conn: &Connection,
    accounts: &[String],
) -> Result<HashMap<String, ReminderState>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT due_date, sent, last_sent_on FROM reminder_state WHERE account = ?1",
    )?;
    let mut out = HashMap::new();
    for a in accounts {
        let row: Option<(String, i64, String)> = stmt
            .query_row([a], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((due, sent, last)) = row {
            out.insert(
                a.clone(),
                ReminderState {
                    due_date: date(&due)?,
                    sent: u32::try_from(sent).unwrap_or(0),
                    last_sent_on: date(&last)?,
                },
            );
        }
    }
    Ok(out)
}

pub fn record_reminder(
    conn: &Connection,
    account: &str,
    state: &ReminderState,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO reminder_state (account, due_date, sent, last_sent_on, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account) DO UPDATE SET due_date = excluded.due_date, sent = excluded.sent,
             last_sent_on = excluded.last_sent_on, updated_at = excluded.updated_at",
    )?
    .execute(params![
        account,
        state.due_date.format("%Y-%m-%d").to_string(),
        state.sent,
        state.last_sent_on.format("%Y-%m-%d").to_string(),
        to_ms(now)
    ])?;
    Ok(())
}

/// Accounts with queued messages of `category` (at most `limit`).
pub fn queued_accounts(
    conn: &Connection,
    category: Category,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT account FROM messages INDEXED BY messages_account_queued
         WHERE category = ?1 AND state = 'queued' AND account IS NOT NULL LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![category.as_str(), limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<String>, _>>()?)
}

/// Cancel the queued messages of `category` for `account`; returns how many.
pub fn cancel_account(
    conn: &Connection,
    account: &str,
    category: Category,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE messages SET state = 'cancelled', updated_at = ?4, last_error = ?3
             WHERE category = ?2 AND account = ?1 AND state = 'queued'",
        )?
        .execute(params![account, category.as_str(), reason, to_ms(now)])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::E164;
    use crate::store::migrations;

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut c).unwrap();
        c
    }

    fn msg(to: &str, key: &str, text: &str) -> NewMessage {
        let to: E164 = to.parse().unwrap();
        let mut m = NewMessage::new(to, text, Category::Bill);
        m.idempotency_key = Some(key.into());
        m.account = Some("A1".into());
        m
    }

    #[test]
    fn checked_enqueue_drops_opt_outs_and_tolerates_changed_duplicates() {
        let mut c = conn();
        let now = Utc::now();
        let out = enqueue_checked(
            &mut c,
            vec![
                msg("13800138000", "k1", "a"),
                msg("13800138000", "k1", "b"),
                msg("13900139000", "k2", "a"),
            ],
            now,
        )
        .unwrap();
        assert_eq!((out.queued, out.duplicates, out.opted_out), (2, 1, 0));
        contacts::opt_out(&c, &"13900139000".parse().unwrap(), None, "sms", now).unwrap();
        // Same key, new text (a template edit): a duplicate, not a conflict that sinks the batch.
        let out = enqueue_checked(
            &mut c,
            vec![
                msg("13800138000", "k1", "changed"),
                msg("13900139000", "k3", "x"),
            ],
            now,
        )
        .unwrap();
        assert_eq!((out.queued, out.duplicates, out.opted_out), (0, 1, 1));
        let counts = outbox::counts(&mut c).unwrap();
        assert_eq!(counts.total(), 2);
        assert_eq!(queued_accounts(&c, Category::Bill, 10).unwrap(), vec!["A1"]);
        assert_eq!(
            cancel_account(&c, "A1", Category::Bill, "paid", now).unwrap(),
            2
        );
        assert_eq!(
            outbox::counts(&mut c)
                .unwrap()
                .by_state(crate::message::MessageState::Cancelled),
            2
        );
    }

    #[test]
    fn fast_path_falls_back_on_a_changed_key() {
        let mut c = conn();
        let now = Utc::now();
        let out = enqueue_checked(&mut c, vec![msg("13800138000", "k1", "a")], now).unwrap();
        assert_eq!((out.queued, out.duplicates), (1, 0));
        let out = enqueue_checked(
            &mut c,
            vec![msg("13800138000", "k1", "a"), msg("13900139000", "k2", "b")],
            now,
        )
        .unwrap();
        assert_eq!(
            (out.queued, out.duplicates),
            (1, 1),
            "same content: duplicate"
        );
        let out = enqueue_checked(
            &mut c,
            vec![
                msg("13800138000", "k1", "edited"),
                msg("13700137000", "k3", "c"),
            ],
            now,
        )
        .unwrap();
        assert_eq!(
            (out.queued, out.duplicates),
            (1, 1),
            "changed content: still duplicate"
        );
        assert_eq!(outbox::counts(&mut c).unwrap().total(), 3);
    }

    #[test]
    fn runs_watermarks_and_reminder_state_round_trip() {
        let c = conn();
        let now = Utc::now();
        let id = start_run(&c, "bills", "manual", now).unwrap();
        let mut stats = RunStats {
            rows_read: 5,
            queued: 3,
            ..RunStats::default()
        };
        stats.skip("no_phone");
        stats.skip("no_phone");
        finish_run(&c, id, &stats, Some("boom"), now).unwrap();
        let runs = recent_runs(&c, "bills", 5).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].state, RunState::Failed);
        assert_eq!(runs[0].stats.skipped.get("no_phone"), Some(&2));
        assert_eq!(runs[0].error.as_deref(), Some("boom"));
        start_run(&c, "bills", "schedule", now).unwrap();
        assert_eq!(interrupt_running(&c, now).unwrap(), 1);
        assert_eq!(watermark(&c, "bills").unwrap(), None);
        set_watermark(&c, "bills", "x", now).unwrap();
        set_watermark(&c, "bills", "y", now).unwrap();
        assert_eq!(watermark(&c, "bills").unwrap().as_deref(), Some("y"));
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let st = ReminderState {
            due_date: d,
            sent: 2,
            last_sent_on: d,
        };
        record_reminder(&c, "A1", &st, now).unwrap();
        let got = reminder_states(&c, &["A1".into(), "A2".into()]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["A1"], st);
    }

    #[test]
    fn run_history_is_bounded_per_job() {
        let c = conn();
        let now = Utc::now();
        let other = start_run(&c, "reminders", "schedule", now).unwrap();
        finish_run(&c, other, &RunStats::default(), None, now).unwrap();
        for _ in 0..KEEP_RUNS + 3 {
            let id = start_run(&c, "bills", "schedule", now).unwrap();
            finish_run(&c, id, &RunStats::default(), None, now).unwrap();
        }
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM job_runs WHERE job = 'bills'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n as usize, KEEP_RUNS);
        assert_eq!(recent_runs(&c, "reminders", 5).unwrap().len(), 1);
    }
}
