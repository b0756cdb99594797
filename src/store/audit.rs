//! The audit trail: every staff action (sends, outages, broadcasts, cancellations,
//! subscription decisions, opt-out overrides, config reloads) and every refusal, append-only.
//!
//! [`record`] takes a `&Connection`, so callers write the entry inside the same store call
//! (the same transaction) as the action itself: an action and its entry commit together or
//! not at all. Refusals are recorded in a call of their own.
//!
//! Append-only is enforced by the schema (migration "9: staff"): triggers abort any UPDATE of
//! `audit`, and any DELETE of a row at or after the retention gate `audit_retention.prune_before`,
//! which only [`prune`] moves, only forwards, and never closer than [`MIN_RETENTION_DAYS`] to now.

use super::{StoreError, from_ms, to_ms};
use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Entries are kept at least this long (about six months), whatever `retention_days` says.
pub const MIN_RETENTION_DAYS: u32 = 183;
/// Most entries one listing returns.
pub const MAX_LIMIT: usize = 1000;
/// Entries deleted per prune call.
pub const PRUNE_BATCH: usize = 1000;

/// What was done (or attempted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// `POST /api/v1/messages` to phone numbers.
    Send,
    /// `POST /api/v1/messages` to an account.
    SendByAccount,
    /// A manual outage notice run (and its changes).
    Outage,
    Broadcast,
    /// A message or a whole send cancelled.
    Cancel,
    SubscriptionApprove,
    SubscriptionReject,
    /// A send that reached opted-out numbers on purpose (admin).
    OptOutOverride,
    ConfigReload,
    /// A request refused for a reason not tied to one of the actions above.
    Refused,
}

impl AuditAction {
    pub const ALL: [AuditAction; 10] = [
        AuditAction::Send,
        AuditAction::SendByAccount,
        AuditAction::Outage,
        AuditAction::Broadcast,
        AuditAction::Cancel,
        AuditAction::SubscriptionApprove,
        AuditAction::SubscriptionReject,
        AuditAction::OptOutOverride,
        AuditAction::ConfigReload,
        AuditAction::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Send => "send",
            AuditAction::SendByAccount => "send_by_account",
            AuditAction::Outage => "outage",
            AuditAction::Broadcast => "broadcast",
            AuditAction::Cancel => "cancel",
            AuditAction::SubscriptionApprove => "subscription_approve",
            AuditAction::SubscriptionReject => "subscription_reject",
            AuditAction::OptOutOverride => "opt_out_override",
            AuditAction::ConfigReload => "config_reload",
            AuditAction::Refused => "refused",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = crate::message::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| crate::message::UnknownName {
                kind: "audit action",
                value: s.to_owned(),
                expected: "send, send_by_account, outage, broadcast, cancel, \
                           subscription_approve, subscription_reject, opt_out_override, \
                           config_reload, refused",
            })
    }
}

/// How it ended. Stored as `ok`, `refused: REASON` or `error: REASON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditResult {
    Ok,
    Refused(String),
    Error(String),
}

impl fmt::Display for AuditResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditResult::Ok => f.write_str("ok"),
            AuditResult::Refused(r) => write!(f, "refused: {r}"),
            AuditResult::Error(r) => write!(f, "error: {r}"),
        }
    }
}

impl Serialize for AuditResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The API token's name, a job name, or "sighup".
    pub actor: String,
    pub action: AuditAction,
    /// What it was aimed at: an account, a feeder, "stations 3301…", a message id, a batch.
    pub target: Option<String>,
    /// Messages queued (or cancelled, for a cancellation).
    pub recipients: u64,
    pub result: AuditResult,
    /// Anything else worth keeping (counts, opted-out numbers masked, request fields).
    pub detail: serde_json::Value,
    pub batch_id: Option<String>,
}

impl AuditEntry {
    /// An `ok` entry with no target, recipients, detail or batch yet.
    pub fn new(at: DateTime<Utc>, actor: impl Into<String>, action: AuditAction) -> Self {
        AuditEntry {
            at,
            actor: actor.into(),
            action,
            target: None,
            recipients: 0,
            result: AuditResult::Ok,
            detail: serde_json::Value::Null,
            batch_id: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn recipients(mut self, n: u64) -> Self {
        self.recipients = n;
        self
    }

    pub fn result(mut self, result: AuditResult) -> Self {
        self.result = result;
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn batch(mut self, batch_id: impl Into<String>) -> Self {
        self.batch_id = Some(batch_id.into());
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub recipients: u64,
    pub result: String,
    pub detail: serde_json::Value,
    pub batch_id: Option<String>,
}

/// Append one entry; returns its id. Call it inside the store call that does the action.
pub fn record(conn: &Connection, e: &AuditEntry) -> Result<i64, StoreError> {
    let detail = if e.detail.is_null() {
        None
    } else {
        Some(e.detail.to_string())
    };
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, action, target, recipients, result, detail, batch_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        to_ms(e.at),
        e.actor,
        e.action.as_str(),
        e.target,
        i64::try_from(e.recipients).unwrap_or(i64::MAX),
        e.result.to_string(),
        detail,
        e.batch_id,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Which entries to list (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub limit: usize,
    /// Only entries with a smaller id (paging).
    pub before_id: Option<i64>,
}

/// Entries matching `f`, newest first, at most `f.limit` (capped at [`MAX_LIMIT`]).
pub fn list(conn: &Connection, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, action, target, recipients, result, detail, batch_id FROM audit
         WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2)
           AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR action = ?4)
           AND (?5 IS NULL OR id < ?5)
         ORDER BY id DESC LIMIT ?6",
    )?;
    // One more than a page may be asked for, to learn whether another page follows.
    let limit = f.limit.clamp(1, MAX_LIMIT + 1) as i64;
    let mut rows = stmt.query(params![
        f.from.map(to_ms),
        f.to.map(to_ms),
        f.actor,
        f.action.map(AuditAction::as_str),
        f.before_id,
        limit
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let detail: Option<String> = r.get(7)?;
        let detail = match detail {
            None => serde_json::Value::Null,
            // A row edited by hand into non-JSON is still shown, as a string.
            Some(text) => serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        };
        out.push(AuditRecord {
            id: r.get(0)?,
            at: from_ms(r.get(1)?)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            recipients: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            result: r.get(6)?,
            detail,
            batch_id: r.get(8)?,
        });
    }
    Ok(out)
}

/// The retention cut-off for entries: `retention_days`, but never less than
/// [`MIN_RETENTION_DAYS`].
pub fn cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(retention_days.max(MIN_RETENTION_DAYS)))
}

/// Delete up to [`PRUNE_BATCH`] entries older than [`cutoff`]`(now, retention_days)`, oldest
/// first; returns how many went. Moves the retention gate forward first (the only path that
/// may).
pub fn prune(
    conn: &Connection,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<usize, StoreError> {
    let before = to_ms(cutoff(now, retention_days));
    conn.execute(
        "UPDATE audit_retention SET prune_before = ?1 WHERE id = 1 AND prune_before < ?1",
        [before],
    )?;
    Ok(conn.execute(
        "DELETE FROM audit WHERE id IN (
             SELECT id FROM audit WHERE at < ?1 ORDER BY at LIMIT ?2)",
        params![before, PRUNE_BATCH as i64],
    )?)
}

/// Runs `f` inside a savepoint: everything it wrote (messages and their audit entry) stays,
/// or on an error none of it does. For store calls that enqueue and audit together.
pub fn all_or_nothing<R>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.execute_batch("SAVEPOINT gridsms_audited")?;
    match f(conn) {
        Ok(r) => {
            conn.execute_batch("RELEASE gridsms_audited")?;
            Ok(r)
        }
        Err(e) => {
            // The error being reported is the one that matters; a failed rollback here would
            // also fail the group commit, which the caller then hears about.
            let _ = conn.execute_batch("ROLLBACK TO gridsms_audited; RELEASE gridsms_audited");
            Err(e)
        }
    }
}

/// Records `entry` in a store call of its own (an action with no store write of its own, such
/// as a config reload, or a refusal). A failure to record is logged: the action has already
/// happened and must not be reported as failed because its trace could not be written.
pub async fn record_alone(store: &super::Store, entry: AuditEntry) {
    if let Err(error) = store.call(move |c| record(c, &entry).map(|_| ())).await {
        tracing::error!(%error, "cannot write to the audit trail");
    }
}
