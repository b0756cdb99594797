//! Messages: enqueue with idempotency, the claim query, state transitions, start-up recovery,
//! and the read side (get, list, counts).
//!
//! Every transition is a compare-and-set (`UPDATE … WHERE state = …`); a caller that loses
//! the race gets [`StoreError::WrongState`] or an empty claim, never a double send.
//!
//! Claim order: lowest priority number first; within a priority, the message that has been due
//! longest (its `next_attempt_at`: `not_before`, or the retry time), then the lowest id. The
//! claim walks the partial index `messages_ready (priority, category, next_attempt_at) WHERE
//! state='queued'` one (priority, category) group at a time with index seeks, so its cost does
//! not grow with the number of messages that are queued but not yet due or held back by quiet
//! hours.

use super::segments::{self, Segment};
use super::{StoreError, from_ms, from_ms_opt, to_ms};
use crate::message::{Category, MessageState};
use crate::phone::E164;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::HashMap;

/// Row id of a message; also its public id in the API.
pub type MessageId = i64;

/// Longest text the store accepts (bytes of UTF-8); the API applies the real segment limit.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Longest idempotency key, origin or batch id.
pub const MAX_KEY_CHARS: usize = 200;

/// A message to queue. `priority` defaults to the category's; `not_before` to "now".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub to: E164,
    pub text: String,
    pub category: Category,
    pub priority: Option<u8>,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The same key is never queued twice: same content → [`EnqueueOutcome::Duplicate`],
    /// different content → [`StoreError::Conflict`].
    pub idempotency_key: Option<String>,
    /// Who made it (API token name, job name), for audit.
    pub origin: Option<String>,
    /// Groups a run (a month of bills, one outage) so it can be cancelled as a whole.
    pub batch_id: Option<String>,
    /// The customer account it concerns, when known (reports, failed-number report).
    pub account: Option<String>,
    /// The supply station (organisation code) of that account, for per-station reports.
    pub station: Option<String>,
    /// Send through this modem when it can take the message now (a reply leaves from the SIM
    /// the customer texted); a hint, never a wait.
    pub prefer_modem: Option<String>,
}

impl NewMessage {
    pub fn new(to: E164, text: impl Into<String>, category: Category) -> Self {
        NewMessage {
            to,
            text: text.into(),
            category,
            priority: None,
            not_before: None,
            expires_at: None,
            idempotency_key: None,
            origin: None,
            batch_id: None,
            account: None,
            station: None,
            prefer_modem: None,
        }
    }

    /// Hash of what the caller asked for (not of defaults filled in at enqueue time), so a
    /// retried request with the same key is recognised as the same. FNV-1a: stable across
    /// builds, unlike std's hasher; only ever compared between rows of one key.
    pub fn content_hash(&self) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        let opt_time = |t: Option<DateTime<Utc>>| t.map_or(i64::MIN, |t| t.timestamp_millis());
        eat(self.to.as_str().as_bytes());
        eat(&[0]);
        eat(&(self.text.len() as u64).to_le_bytes());
        eat(self.text.as_bytes());
        eat(self.category.as_str().as_bytes());
        eat(&[
            0,
            self.priority.map_or(0, |_| 1),
            self.priority.unwrap_or(0),
        ]);
        eat(&opt_time(self.not_before).to_le_bytes());
        eat(&opt_time(self.expires_at).to_le_bytes());
        h as i64
    }

    fn validate(&self, index: usize) -> Result<(), StoreError> {
        let bad = |field, reason: &str| {
            Err(StoreError::Invalid {
                index,
                field,
                reason: reason.to_owned(),
            })
        };
        if self.text.trim().is_empty() {
            return bad("text", "is empty");
        }
        if self.text.len() > MAX_TEXT_BYTES {
            return bad("text", "is longer than 16 KiB");
        }
        if let (Some(nb), Some(exp)) = (self.not_before, self.expires_at)
            && exp <= nb
        {
            return bad("expires_at", "is not after not_before");
        }
        for (field, v) in [
            ("idempotency_key", &self.idempotency_key),
            ("origin", &self.origin),
            ("batch_id", &self.batch_id),
        ] {
            if let Some(v) = v {
                if v.is_empty() {
                    return bad(field, "is empty");
                }
                if v.chars().count() > MAX_KEY_CHARS {
                    return bad(field, "is longer than 200 characters");
                }
            }
        }
        Ok(())
    }
}

/// What happened to one message of an enqueue request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    Queued(MessageId),
    /// The idempotency key was seen before with the same content; nothing new was queued.
    Duplicate(MessageId),
}

impl EnqueueOutcome {
    pub fn id(self) -> MessageId {
        match self {
            EnqueueOutcome::Queued(id) | EnqueueOutcome::Duplicate(id) => id,
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub to: E164,
    pub text: String,
    pub category: Category,
    pub priority: u8,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub state: MessageState,
    /// Claims so far (each claim is one attempt).
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Modem name and SIM of the latest claim.
    pub modem: Option<String>,
    pub sim_iccid: Option<String>,
    pub origin: Option<String>,
    pub batch_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// See [`NewMessage::prefer_modem`].
    pub prefer_modem: Option<String>,
}

/// A message with its segments (those the dispatcher has started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDetail {
    pub message: Message,
    pub segments: Vec<Segment>,
}

/// A claimed message. `segments` holds what an earlier, interrupted attempt already did:
/// segments in state `submitted`/`delivered` must NOT be sent again, and a resend must reuse
/// their `total` and `concat_ref` so the phone can reassemble the parts.
pub type Claimed = MessageDetail;

/// Which SIM a claim is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRef {
    /// Modem name from the config.
    pub modem: String,
    /// SIM identity (ICCID): quotas and status-report matching follow the card, not the port.
    pub iccid: String,
}

/// What the dispatcher is willing to take now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFilter {
    /// At most this many messages (clamped to 1..=1000).
    pub limit: usize,
    /// Only these categories (e.g. none of the quiet-hours ones at night); `None` = all.
    pub categories: Option<Vec<Category>>,
}

impl Default for ClaimFilter {
    fn default() -> Self {
        ClaimFilter {
            limit: 1,
            categories: None,
        }
    }
}

impl ClaimFilter {
    fn allows(&self, c: Category) -> bool {
        self.categories.as_ref().is_none_or(|cs| cs.contains(&c))
    }
    fn limit(&self) -> usize {
        self.limit.clamp(1, 1000)
    }
}

/// What to cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelTarget {
    Ids(Vec<MessageId>),
    Batch(String),
}

/// Start-up rule for a message found in `sending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryRule {
    /// Queue it again; segments with a TP-MR are kept, the rest (including the one that may
    /// have gone out just before the crash) are sent again.
    Resend,
    /// Mark it failed with the reason "interrupted by restart".
    MarkFailed,
}

/// Recovery rule per category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPolicy {
    pub default: RecoveryRule,
    pub overrides: Vec<(Category, RecoveryRule)>,
}

impl Default for RecoveryPolicy {
    /// Send again, for every category (the default).
    fn default() -> Self {
        RecoveryPolicy {
            default: RecoveryRule::Resend,
            overrides: Vec::new(),
        }
    }
}

impl RecoveryPolicy {
    pub fn rule_for(&self, c: Category) -> RecoveryRule {
        self.overrides
            .iter()
            .find(|(cat, _)| *cat == c)
            .map_or(self.default, |(_, r)| *r)
    }
}

/// What start-up recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Back to `queued` (rule Resend).
    pub requeued: Vec<MessageId>,
    /// Every segment already had a TP-MR: promoted to `sent`, nothing to resend.
    pub completed: Vec<MessageId>,
    /// Marked failed (rule MarkFailed).
    pub failed: Vec<MessageId>,
    /// Segments caught between Ctrl-Z and `+CMGS`: they may or may not have gone out. Under
    /// Resend each is sent again, so this is the upper bound of duplicates this restart causes.
    pub uncertain_segments: usize,
}

/// Filter for [`list`]; results are newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub to: Option<E164>,
    pub state: Option<MessageState>,
    pub category: Option<Category>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Page size, clamped to 1..=1000 (0 means 100).
    pub limit: usize,
    /// Continue after this id (the previous page's `next_cursor`).
    pub before_id: Option<MessageId>,
}

/// One page of [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub messages: Vec<Message>,
    /// Pass as `before_id` for the next page; `None` on the last page.
    pub next_cursor: Option<MessageId>,
}

/// Messages in one (state, category) cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountCell {
    pub state: MessageState,
    pub category: Category,
    pub count: u64,
}

/// Counts by state and category (cells with zero messages are absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub cells: Vec<CountCell>,
}

impl QueueCounts {
    pub fn by_state(&self, s: MessageState) -> u64 {
        self.cells
            .iter()
            .filter(|c| c.state == s)
            .map(|c| c.count)
            .sum()
    }
    pub fn by_category(&self, cat: Category) -> u64 {
        self.cells
            .iter()
            .filter(|c| c.category == cat)
            .map(|c| c.count)
            .sum()
    }
    pub fn total(&self) -> u64 {
        self.cells.iter().map(|c| c.count).sum()
    }
}

// ---------------------------------------------------------------------------------------------

/// Run `f` atomically inside a savepoint. On the store thread that savepoint is nested in the
/// thread's group transaction (see the module docs of `store`), so an error undoes only `f`'s
/// work; on a bare connection it is a transaction of its own.
pub(crate) fn atomic<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let sp = Sp::begin(conn)?;
    let r = f(&sp)?;
    sp.commit()?;
    Ok(r)
}

/// Open a savepoint for a multi-statement change (see [`atomic`]).
pub(crate) fn immediate(conn: &mut Connection) -> Result<Sp<'_>, StoreError> {
    Ok(Sp::begin(conn)?)
}

/// A savepoint run through cached statements: every store request opens one, and parsing
/// `SAVEPOINT`/`RELEASE` text each time (as `rusqlite::Savepoint` does) was a visible share of
/// the store thread's CPU per segment. Released by [`Sp::commit`]; rolled back when dropped
/// without it. Savepoints nest; the shared name is fine because SQLite resolves a name to the
/// most recent savepoint carrying it.
pub(crate) struct Sp<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Sp<'c> {
    pub(crate) fn begin(conn: &'c Connection) -> rusqlite::Result<Sp<'c>> {
        conn.prepare_cached("SAVEPOINT gridsms_sp")?.execute([])?;
        Ok(Sp { conn, open: true })
    }

    pub(crate) fn commit(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.conn
            .prepare_cached("RELEASE gridsms_sp")?
            .execute([])
            .map(drop)
    }
}

impl Drop for Sp<'_> {
    fn drop(&mut self) {
        if self.open {
            // Best effort: if even this fails, the group transaction's commit fails and every
            // request of the group hears so.
            for sql in ["ROLLBACK TO gridsms_sp", "RELEASE gridsms_sp"] {
                let _ = self
                    .conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute([]));
            }
        }
    }
}

impl std::ops::Deref for Sp<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Validate every message and compute its content hash, without touching the database.
/// [`super::Store::enqueue_bulk`] runs this on the caller's task so that the store thread,
/// which every sender shares, only inserts.
pub fn prepare(msgs: &[NewMessage]) -> Result<Vec<i64>, StoreError> {
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            m.validate(i)?;
            Ok(m.content_hash())
        })
        .collect()
}

/// Validate every message, then insert them all in one transaction. All or nothing:
/// an invalid message or an idempotency conflict anywhere commits none (the caller learns the
/// index of the culprit), so a bulk job can be retried as a whole.
pub fn enqueue_bulk(
    conn: &mut Connection,
    msgs: &[NewMessage],
    now: DateTime<Utc>,
) -> Result<Vec<EnqueueOutcome>, StoreError> {
    let hashes = prepare(msgs)?;
    enqueue_prepared(conn, msgs, &hashes, now)
}

/// [`enqueue_bulk`] after [`prepare`]: `hashes[i]` must be `msgs[i].content_hash()` of a
/// validated message.
pub fn enqueue_prepared(
    conn: &mut Connection,
    msgs: &[NewMessage],
    hashes: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<EnqueueOutcome>, StoreError> {
    if msgs.len() != hashes.len() {
        return Err(StoreError::Invalid {
            index: msgs.len().min(hashes.len()),
            field: "content_hash",
            reason: "one hash per message is required".into(),
        });
    }
    if msgs.is_empty() {
        return Ok(Vec::new());
    }
    let now_ms = to_ms(now);
    atomic(conn, |tx| {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (recipient, text, category, priority, not_before, expires_at,
                 idempotency_key, content_hash, state, origin, batch_id, created_at, updated_at,
                 next_attempt_at, account, station, prefer_modem)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?10, ?11, ?11, ?12, ?13, ?14,
                 ?15)
             ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
        )?;
        let mut existing =
            tx.prepare_cached("SELECT id, content_hash FROM messages WHERE idempotency_key = ?1")?;
        let mut out = Vec::with_capacity(msgs.len());
        let mut added = [0i64; Category::ALL.len()];
        // (batch, first id, last id) of the rows inserted here; usually a single batch, so the
        // last one is checked before the map.
        let mut batches: Vec<(&str, i64, i64)> = Vec::new();
        let mut batch_slot: HashMap<&str, usize> = HashMap::new();
        for (i, (m, &hash)) in msgs.iter().zip(hashes).enumerate() {
            let not_before = m.not_before.map(to_ms);
            let due = not_before.unwrap_or(now_ms);
            let changed = insert.execute(params![
                m.to.as_str(),
                m.text,
                m.category.as_str(),
                m.priority.unwrap_or_else(|| m.category.default_priority()),
                not_before,
                m.expires_at.map(to_ms),
                m.idempotency_key,
                hash,
                m.origin,
                m.batch_id,
                now_ms,
                due,
                m.account,
                m.station,
                m.prefer_modem,
            ])?;
            if changed == 1 {
                let id = tx.last_insert_rowid();
                out.push(EnqueueOutcome::Queued(id));
                if let Some(slot) = Category::ALL.iter().position(|c| *c == m.category) {
                    added[slot] += 1;
                }
                if let Some(b) = m.batch_id.as_deref() {
                    match batches.last_mut() {
                        Some(range) if range.0 == b => range.2 = id,
                        _ => match batch_slot.get(b) {
                            Some(&k) => batches[k].2 = id,
                            None => {
                                batch_slot.insert(b, batches.len());
                                batches.push((b, id, id));
                            }
                        },
                    }
                }
                continue;
            }
            let key = m.idempotency_key.clone().unwrap_or_default();
            let (id, old_hash): (i64, i64) =
                existing.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if old_hash != hash {
                return Err(StoreError::Conflict {
                    index: i,
                    key,
                    existing_id: id,
                });
            }
            out.push(EnqueueOutcome::Duplicate(id));
        }
        let mut count = tx.prepare_cached(
            "INSERT INTO message_counts (state, category, n) VALUES ('queued', ?1, ?2)
             ON CONFLICT (state, category) DO UPDATE SET n = n + excluded.n",
        )?;
        for (cat, n) in Category::ALL.iter().zip(added) {
            if n > 0 {
                count.execute(params![cat.as_str(), n])?;
            }
        }
        let mut range = tx.prepare_cached(
            "INSERT INTO message_batches (batch_id, first_id, last_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (batch_id, first_id) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
        )?;
        for (batch, first, last) in batches {
            range.execute(params![batch, first, last])?;
        }
        Ok(out)
    })
}

const MESSAGE_COLUMNS: &str = "id, recipient, text, category, priority, not_before, expires_at,
    idempotency_key, state, attempts, last_error, modem, sim_iccid, origin, batch_id,
    created_at, updated_at, next_attempt_at, sent_at, delivered_at, prefer_modem";

fn message_from_row(r: &Row<'_>) -> Result<Message, StoreError> {
    let to: String = r.get(1)?;
    let category: String = r.get(3)?;
    let state: String = r.get(8)?;
    let priority: i64 = r.get(4)?;
    let attempts: i64 = r.get(9)?;
    Ok(Message {
        id: r.get(0)?,
        to: to
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("recipient {to:?}: {e}")))?,
        text: r.get(2)?,
        category: category
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        priority: u8::try_from(priority)
            .map_err(|_| StoreError::Corrupt(format!("priority {priority}")))?,
        not_before: from_ms_opt(r.get(5)?)?,
        expires_at: from_ms_opt(r.get(6)?)?,
        idempotency_key: r.get(7)?,
        state: parse_state(&state)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("attempts {attempts}")))?,
        last_error: r.get(10)?,
        modem: r.get(11)?,
        sim_iccid: r.get(12)?,
        origin: r.get(13)?,
        batch_id: r.get(14)?,
        created_at: from_ms(r.get(15)?)?,
        updated_at: from_ms(r.get(16)?)?,
        next_attempt_at: from_ms(r.get(17)?)?,
        sent_at: from_ms_opt(r.get(18)?)?,
        delivered_at: from_ms_opt(r.get(19)?)?,
        prefer_modem: r.get(20)?,
    })
}

pub(crate) fn parse_state(s: &str) -> Result<MessageState, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

fn load_message(conn: &Connection, id: MessageId) -> Result<Option<Message>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(message_from_row(r)?)),
        None => Ok(None),
    }
}

/// One message and its segments.
pub fn get(conn: &mut Connection, id: MessageId) -> Result<Option<MessageDetail>, StoreError> {
    let Some(message) = load_message(conn, id)? else {
        return Ok(None);
    };
    let segments = segments::for_message(conn, id)?;
    Ok(Some(MessageDetail { message, segments }))
}

/// The state a message is in now, for error reports of a failed compare-and-set.
pub(crate) fn current_state(conn: &Connection, id: MessageId) -> Result<MessageState, StoreError> {
    let s: Option<String> = conn
        .prepare_cached("SELECT state FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match s {
        Some(s) => parse_state(&s),
        None => Err(StoreError::NotFound(id)),
    }
}

fn wrong_state(conn: &Connection, id: MessageId, expected: &'static str) -> StoreError {
    match current_state(conn, id) {
        Ok(found) => StoreError::WrongState {
            id,
            expected,
            found: found.to_string(),
        },
        Err(e) => e,
    }
}

/// The (priority, category) groups present in the ready index, in order. Found by index
/// seeks (one per group), so the cost does not depend on how many messages are queued.
fn ready_groups(conn: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    let mut same_prio = conn.prepare_cached(
        "SELECT category FROM messages INDEXED BY messages_ready
         WHERE state = 'queued' AND priority = ?1 AND category > ?2
         ORDER BY priority, category LIMIT 1",
    )?;
    let mut next_prio = conn.prepare_cached(
        "SELECT priority, category FROM messages INDEXED BY messages_ready
         WHERE state = 'queued' AND priority > ?1
         ORDER BY priority, category LIMIT 1",
    )?;
    let mut groups = Vec::new();
    let mut group: Option<(i64, String)> = next_prio
        .query_row([-1], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // Bounded by the number of distinct priorities times categories (256 * 6).
    while let Some((prio, cat)) = group {
        group = match same_prio
            .query_row(params![prio, cat], |r| r.get::<_, String>(0))
            .optional()?
        {
            Some(c) => Some((prio, c)),
            None => next_prio
                .query_row([prio], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
        };
        groups.push((prio, cat));
    }
    Ok(groups)
}

fn allowed(filter: &ClaimFilter, cat: &str) -> bool {
    cat.parse::<Category>()
        .map(|c| filter.allows(c))
        .unwrap_or(false)
}

/// Ids of the best due messages, in claim order: up to `limit` from each allowed group, until
/// a whole priority level has been seen with `limit` candidates in hand (lower levels cannot
/// beat them).
fn ready_ids(
    conn: &Connection,
    now: DateTime<Utc>,
    filter: &ClaimFilter,
) -> Result<Vec<MessageId>, StoreError> {
    let limit = filter.limit();
    let now_ms = to_ms(now);
    let mut due = conn.prepare_cached(
        "SELECT id, next_attempt_at FROM messages INDEXED BY messages_ready
         WHERE state = 'queued' AND priority = ?1 AND category = ?2 AND next_attempt_at <= ?3
           AND (expires_at IS NULL OR expires_at > ?3)
         ORDER BY next_attempt_at, id LIMIT ?4",
    )?;
    let mut found: Vec<(i64, i64, MessageId)> = Vec::new();
    let mut last_prio = None;
    for (prio, cat) in ready_groups(conn)? {
        if last_prio != Some(prio) && found.len() >= limit {
            break;
        }
        last_prio = Some(prio);
        if !allowed(filter, &cat) {
            continue;
        }
        let mut rows = due.query(params![prio, cat, now_ms, limit as i64])?;
        while let Some(r) = rows.next()? {
            found.push((prio, r.get(1)?, r.get(0)?));
        }
    }
    found.sort_unstable();
    found.truncate(limit);
    Ok(found.into_iter().map(|(_, _, id)| id).collect())
}

/// The messages [`claim_next`] would take now, without claiming.
pub fn peek_ready(
    conn: &mut Connection,
    now: DateTime<Utc>,
    filter: &ClaimFilter,
) -> Result<Vec<Message>, StoreError> {
    let ids = ready_ids(conn, now, filter)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(m) = load_message(conn, id)? {
            out.push(m);
        }
    }
    Ok(out)
}

fn claim_in(
    tx: &Connection,
    id: MessageId,
    now: DateTime<Utc>,
    sim: Option<&SimRef>,
) -> Result<Option<Claimed>, StoreError> {
    let mut cas = tx.prepare_cached(
        "UPDATE messages SET state = 'sending', attempts = attempts + 1, updated_at = ?2,
             modem = coalesce(?3, modem), sim_iccid = coalesce(?4, sim_iccid)
         WHERE id = ?1 AND state = 'queued' AND (expires_at IS NULL OR expires_at > ?2)",
    )?;
    let n = cas.execute(params![
        id,
        to_ms(now),
        sim.map(|s| s.modem.as_str()),
        sim.map(|s| s.iccid.as_str())
    ])?;
    if n == 0 {
        return Ok(None);
    }
    let Some(message) = load_message(tx, id)? else {
        return Ok(None);
    };
    let segments = segments::for_message(tx, id)?;
    Ok(Some(MessageDetail { message, segments }))
}

/// Claim the next due messages (queued → sending) in one transaction.
pub fn claim_next(
    conn: &mut Connection,
    now: DateTime<Utc>,
    filter: &ClaimFilter,
    sim: Option<&SimRef>,
) -> Result<Vec<Claimed>, StoreError> {
    let tx = immediate(conn)?;
    let ids = ready_ids(&tx, now, filter)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(c) = claim_in(&tx, id, now, sim)? {
            out.push(c);
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Claim one message by id; `None` if it is no longer queued.
pub fn claim(
    conn: &mut Connection,
    id: MessageId,
    now: DateTime<Utc>,
    sim: Option<&SimRef>,
) -> Result<Option<Claimed>, StoreError> {
    let tx = immediate(conn)?;
    let c = claim_in(&tx, id, now, sim)?;
    tx.commit()?;
    Ok(c)
}

/// Claim several messages by id, each for its SIM, in one request (the dispatcher plans a
/// whole pass, then claims it at once). `None` where a message is no longer queued or has
/// expired meanwhile.
pub fn claim_many(
    conn: &mut Connection,
    picks: &[(MessageId, Option<SimRef>)],
    now: DateTime<Utc>,
) -> Result<Vec<Option<Claimed>>, StoreError> {
    let tx = immediate(conn)?;
    let mut out = Vec::with_capacity(picks.len());
    for (id, sim) in picks {
        out.push(claim_in(&tx, *id, now, sim.as_ref())?);
    }
    tx.commit()?;
    Ok(out)
}

/// Give a claimed message back untried (sending → queued, the claim's attempt not counted):
/// a send that never started because its modem failed just before or the daemon is stopping.
/// Returns whether it was still `sending`.
pub fn unclaim(
    conn: &mut Connection,
    id: MessageId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let n = tx
        .prepare_cached(
            "UPDATE messages SET state = 'queued', attempts = max(attempts - 1, 0), updated_at = ?2
             WHERE id = ?1 AND state = 'sending'",
        )?
        .execute(params![id, to_ms(at)])?;
    if n == 1 {
        tx.prepare_cached(
            "UPDATE segments SET state = 'pending', tp_mr = NULL
             WHERE message_id = ?1 AND state = 'submitting'",
        )?
        .execute([id])?;
    }
    tx.commit()?;
    Ok(n == 1)
}

/// Earliest `next_attempt_at` among queued messages the filter allows.
pub fn next_due(
    conn: &mut Connection,
    filter: &ClaimFilter,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut min_due = conn.prepare_cached(
        "SELECT min(next_attempt_at) FROM messages INDEXED BY messages_ready
         WHERE state = 'queued' AND priority = ?1 AND category = ?2",
    )?;
    let mut best: Option<i64> = None;
    for (p, c) in ready_groups(conn)? {
        if !allowed(filter, &c) {
            continue;
        }
        let d: Option<i64> = min_due.query_row(params![p, c], |r| r.get(0))?;
        best = match (best, d) {
            (Some(b), Some(d)) => Some(b.min(d)),
            (b, d) => b.or(d),
        };
    }
    from_ms_opt(best)
}

/// Every segment got its TP-MR: sending → sent. Idempotent if the message already moved on to
/// sent or delivered (a fast status report can overtake this call).
pub fn mark_sent(
    conn: &mut Connection,
    id: MessageId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE messages SET state = 'sent', sent_at = ?2, updated_at = ?2
         WHERE id = ?1 AND state = 'sending'",
        )?
        .execute(params![id, to_ms(at)])?;
    if n == 1 {
        return Ok(());
    }
    match current_state(conn, id)? {
        MessageState::Sent | MessageState::Delivered => Ok(()),
        found => Err(StoreError::WrongState {
            id,
            expected: "sending",
            found: found.to_string(),
        }),
    }
}

/// queued/sending → failed. `permanent`: the number is at fault, count it.
pub fn mark_failed(
    conn: &mut Connection,
    id: MessageId,
    reason: &str,
    permanent: bool,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    let n = tx
        .prepare_cached(
            "UPDATE messages SET state = 'failed', last_error = ?2, updated_at = ?3
         WHERE id = ?1 AND state IN ('queued', 'sending')",
        )?
        .execute(params![id, reason, to_ms(at)])?;
    if n == 0 {
        return Err(wrong_state(&tx, id, "queued or sending"));
    }
    tx.execute(
        "UPDATE segments SET state = 'failed' WHERE message_id = ?1 AND state IN ('pending', 'submitting')",
        [id],
    )?;
    if permanent {
        segments::count_failed_number(&tx, id, reason, at)?;
    }
    tx.commit()?;
    Ok(())
}

/// sending → queued, due again at `next_attempt_at` (never before `not_before`). Segments
/// caught mid-submit go back to pending; submitted ones are kept.
pub fn schedule_retry(
    conn: &mut Connection,
    id: MessageId,
    next_attempt_at: DateTime<Utc>,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    let n = tx
        .prepare_cached(
            "UPDATE messages SET state = 'queued', last_error = ?2, updated_at = ?3,
             next_attempt_at = max(?4, coalesce(not_before, ?4))
         WHERE id = ?1 AND state = 'sending'",
        )?
        .execute(params![id, error, to_ms(at), to_ms(next_attempt_at)])?;
    if n == 0 {
        return Err(wrong_state(&tx, id, "sending"));
    }
    tx.execute(
        "UPDATE segments SET state = 'pending', tp_mr = NULL WHERE message_id = ?1 AND state = 'submitting'",
        [id],
    )?;
    tx.commit()?;
    Ok(())
}

/// Queued messages past `expires_at` → expired.
pub fn expire_due(conn: &mut Connection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE messages INDEXED BY messages_expiry SET state = 'expired', updated_at = ?1,
                 last_error = 'expired before it could be sent'
             WHERE state = 'queued' AND expires_at IS NOT NULL AND expires_at <= ?1",
        )?
        .execute([to_ms(now)])?)
}

/// Cancel queued messages. Messages already `sending` are left alone: their modem is mid-send,
/// and the next segment write would fail anyway.
pub fn cancel(
    conn: &mut Connection,
    target: &CancelTarget,
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let tx = immediate(conn)?;
    let at = to_ms(at);
    let n = match target {
        CancelTarget::Ids(ids) => {
            let mut stmt = tx.prepare_cached(
                "UPDATE messages SET state = 'cancelled', updated_at = ?2
                 WHERE id = ?1 AND state = 'queued'",
            )?;
            let mut n = 0;
            for id in ids {
                n += stmt.execute(params![id, at])?;
            }
            n
        }
        CancelTarget::Batch(batch) => {
            // The batch's id ranges (see migration 6), each walked by rowid; batch_id is
            // checked again because a range may span other messages.
            let ranges: Vec<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT first_id, last_id FROM message_batches WHERE batch_id = ?1",
                )?
                .query_map([batch], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut stmt = tx.prepare_cached(
                "UPDATE messages SET state = 'cancelled', updated_at = ?2
                 WHERE id BETWEEN ?3 AND ?4 AND batch_id = ?1 AND state = 'queued'",
            )?;
            let mut n = 0;
            for (first, last) in ranges {
                n += stmt.execute(params![batch, at, first, last])?;
            }
            n
        }
    };
    tx.commit()?;
    Ok(n)
}

/// Resolve every message left in `sending` by a crash or power loss. Per message, in order:
///
/// 1. If it has segment rows for every part and all of them have a TP-MR (`submitted` or
///    `delivered`), the crash hit between the last `+CMGS` and `mark_sent`: it becomes `sent`
///    whatever the rule, since nothing is left to send.
/// 2. Otherwise, rule [`RecoveryRule::Resend`]: back to `queued`, due now. Submitted segments
///    are kept (the dispatcher skips them and reuses their concat reference); the segment that
///    was `submitting` (Ctrl-Z written, no `+CMGS` seen) goes back to `pending` and is sent
///    again: it may already have gone out, which is the only duplicate this rule can cause.
/// 3. Rule [`RecoveryRule::MarkFailed`]: `failed` with reason "interrupted by restart"; not
///    counted against the number.
pub fn recover_in_flight(
    conn: &mut Connection,
    policy: &RecoveryPolicy,
    now: DateTime<Utc>,
) -> Result<RecoveryReport, StoreError> {
    let tx = immediate(conn)?;
    let now_ms = to_ms(now);
    let mut report = RecoveryReport::default();
    let inflight: Vec<(MessageId, String)> = tx
        .prepare(
            "SELECT id, category FROM messages INDEXED BY messages_sending
             WHERE state = 'sending' ORDER BY id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, cat) in inflight {
        let category: Category = cat
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?;
        let (rows, total, done, uncertain): (i64, Option<i64>, i64, i64) = tx.query_row(
            "SELECT count(*), max(total),
                    count(*) FILTER (WHERE state IN ('submitted', 'delivered')),
                    count(*) FILTER (WHERE state = 'submitting')
             FROM segments WHERE message_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        if rows > 0 && Some(rows) == total && done == rows {
            tx.execute(
                "UPDATE messages SET state = 'sent', sent_at = ?2, updated_at = ?2 WHERE id = ?1",
                params![id, now_ms],
            )?;
            report.completed.push(id);
            continue;
        }
        report.uncertain_segments += uncertain as usize;
        match policy.rule_for(category) {
            RecoveryRule::Resend => {
                tx.execute(
                    "UPDATE messages SET state = 'queued', next_attempt_at = ?2, updated_at = ?2,
                         last_error = 'interrupted by restart; unsent segments will be sent again'
                     WHERE id = ?1",
                    params![id, now_ms],
                )?;
                tx.execute(
                    "UPDATE segments SET state = 'pending', tp_mr = NULL
                     WHERE message_id = ?1 AND state = 'submitting'",
                    [id],
                )?;
                report.requeued.push(id);
            }
            RecoveryRule::MarkFailed => {
                tx.execute(
                    "UPDATE messages SET state = 'failed', updated_at = ?2,
                         last_error = 'interrupted by restart (recovery rule: mark-failed)'
                     WHERE id = ?1",
                    params![id, now_ms],
                )?;
                tx.execute(
                    "UPDATE segments SET state = 'failed'
                     WHERE message_id = ?1 AND state IN ('pending', 'submitting')",
                    [id],
                )?;
                report.failed.push(id);
            }
        }
    }
    tx.commit()?;
    Ok(report)
}

/// Forget batch ranges whose messages retention has deleted (every id below the oldest
/// message left). Returns how many ranges went.
pub fn prune_batches(conn: &mut Connection) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM message_batches
             WHERE last_id < coalesce((SELECT min(id) FROM messages), 9223372036854775807)",
        )?
        .execute([])?)
}

/// A page of messages, newest first.
pub fn list(conn: &mut Connection, filter: &ListFilter) -> Result<Page, StoreError> {
    let limit = if filter.limit == 0 {
        100
    } else {
        filter.limit.clamp(1, 1000)
    };
    let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(to) = &filter.to {
        sql.push_str(" AND recipient = ?");
        args.push(to.as_str().to_owned().into());
    }
    if let Some(s) = filter.state {
        sql.push_str(" AND state = ?");
        args.push(s.as_str().to_owned().into());
    }
    if let Some(c) = filter.category {
        sql.push_str(" AND category = ?");
        args.push(c.as_str().to_owned().into());
    }
    if let Some(t) = filter.since {
        sql.push_str(" AND created_at >= ?");
        args.push(to_ms(t).into());
    }
    if let Some(id) = filter.before_id {
        sql.push_str(" AND id < ?");
        args.push(id.into());
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push((limit as i64 + 1).into());
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut messages = Vec::with_capacity(limit.min(128));
    let mut more = false;
    while let Some(r) = rows.next()? {
        if messages.len() == limit {
            more = true;
            break;
        }
        messages.push(message_from_row(r)?);
    }
    let next_cursor = if more {
        messages.last().map(|m| m.id)
    } else {
        None
    };
    Ok(Page {
        messages,
        next_cursor,
    })
}

/// Counts by state and category, from the trigger-maintained `message_counts` (O(1)).
pub fn counts(conn: &mut Connection) -> Result<QueueCounts, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, category, n FROM message_counts WHERE n <> 0 ORDER BY state, category",
    )?;
    let mut rows = stmt.query([])?;
    let mut cells = Vec::new();
    while let Some(r) = rows.next()? {
        let state: String = r.get(0)?;
        let category: String = r.get(1)?;
        let count: i64 = r.get(2)?;
        cells.push(CountCell {
            state: parse_state(&state)?,
            category: category
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
            count: count.max(0) as u64,
        });
    }
    Ok(QueueCounts { cells })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn base() -> NewMessage {
        let to = crate::phone::normalise("13800138000").unwrap();
        NewMessage::new(to, "电费通知", Category::Bill)
    }

    /// Computed once; a change here would turn every retried request into a conflict.
    const STORED_HASH: i64 = -7933200475645974678;

    #[test]
    fn content_hash_covers_what_the_caller_asked_for() {
        let a = base();
        let h = a.content_hash();
        // A fixed value: the hash is stored, so it must not change between builds.
        assert_eq!(h, STORED_HASH, "got {h}");
        let mut b = base();
        b.origin = Some("api:accounting".into());
        b.batch_id = Some("run-7".into());
        b.idempotency_key = Some("k".into());
        assert_eq!(b.content_hash(), h, "bookkeeping fields are not content");
        let variants: [fn(&mut NewMessage); 6] = [
            |m| m.text.push('!'),
            |m| m.category = Category::Reminder,
            |m| m.priority = Some(3),
            |m| m.not_before = Some(Utc.timestamp_opt(0, 0).unwrap()),
            |m| m.expires_at = Some(Utc.timestamp_opt(0, 0).unwrap()),
            |m| m.to = crate::phone::normalise("13800138001").unwrap(),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut m = base();
            change(&mut m);
            assert_ne!(m.content_hash(), h, "variant {i}");
        }
    }

    #[test]
    fn recovery_policy_overrides_by_category() {
        let p = RecoveryPolicy {
            default: RecoveryRule::Resend,
            overrides: vec![(Category::Broadcast, RecoveryRule::MarkFailed)],
        };
        assert_eq!(p.rule_for(Category::Broadcast), RecoveryRule::MarkFailed);
        assert_eq!(p.rule_for(Category::Outage), RecoveryRule::Resend);
    }
}
