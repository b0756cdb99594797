//! Inbound SMS: the raw PDUs as the modems handed them over, the inbox of whole messages, and
//! the reply rate counters (migration 8).
//!
//! ```text
//! modem +CMTI/+CMT -> store_pdus (dedupe on SIM + octets; durable) -> delete from the modem
//!   -> reassembly (in memory; rebuilt from `pending` rows at start) -> create_inbox
//!   -> router -> finish (reply enqueued, state, note) in one transaction
//! ```
//!
//! Invariants: a PDU row exists before the modem is told to delete the message, so nothing is
//! lost to a crash; the same PDU read twice from the same SIM has the same dedupe key and is
//! handled once; a PDU stays `pending` until the inbox row made from it is committed, and an
//! inbox row stays `received` until its handling is committed, so a restart resumes both.

use super::{StoreError, from_ms, from_ms_opt, to_ms};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

/// Longest inbox text kept (characters); longer texts are cut with a note.
pub const MAX_INBOX_CHARS: usize = 2000;

/// A PDU to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPdu {
    pub modem: String,
    pub sim: String,
    pub storage_index: Option<u32>,
    pub pdu: Vec<u8>,
    pub received_at: DateTime<Utc>,
    /// `sender|reference|total` for a part of a multipart message.
    pub group_key: Option<String>,
    /// False for octets that do not decode as an SMS-DELIVER (kept as `bad`, for forensics).
    pub decodable: bool,
}

impl NewPdu {
    /// FNV-1a over the SIM, the storage slot and the octets: the same message read again from
    /// its slot (after a crash between storing and deleting it, or by a sweep before the delete
    /// landed) has the same key. Two messages with identical octets (same sender and text in the
    /// same second: the timestamp has one-second resolution) sit in different slots and stay
    /// two.
    pub fn dedupe_key(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let slot = self.storage_index.map_or(-1, i64::from).to_le_bytes();
        for b in self
            .sim
            .as_bytes()
            .iter()
            .chain(&[0u8])
            .chain(slot.iter())
            .chain(self.pdu.iter())
        {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}:{}", self.pdu.len())
    }
}

/// A stored PDU still waiting to become part of an inbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPdu {
    pub id: i64,
    pub modem: String,
    pub sim: String,
    pub pdu: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

/// Store PDUs; returns, per input, the new row id or `None` when that PDU was stored before.
pub fn store_pdus(conn: &Connection, pdus: &[NewPdu]) -> Result<Vec<Option<i64>>, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO inbound_pdus (dedupe_key, modem, sim, storage_index, pdu, received_at,
             state, group_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (dedupe_key) DO NOTHING",
    )?;
    let mut out = Vec::with_capacity(pdus.len());
    for p in pdus {
        let state = if p.decodable { "pending" } else { "bad" };
        let n = insert.execute(params![
            p.dedupe_key(),
            p.modem,
            p.sim,
            p.storage_index,
            p.pdu,
            to_ms(p.received_at),
            state,
            p.group_key
        ])?;
        out.push((n == 1).then(|| conn.last_insert_rowid()));
    }
    Ok(out)
}

/// Every `pending` PDU, oldest first (reassembly state after a restart).
pub fn pending_pdus(conn: &Connection, limit: usize) -> Result<Vec<PendingPdu>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, modem, sim, pdu, received_at FROM inbound_pdus
         WHERE state = 'pending' ORDER BY id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, modem, sim, pdu, at) = row?;
        out.push(PendingPdu {
            id,
            modem,
            sim,
            pdu,
            received_at: from_ms(at)?,
        });
    }
    Ok(out)
}

/// Mark one PDU (a duplicate part, say) with a final state.
pub fn mark_pdu(conn: &Connection, id: i64, state: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE inbound_pdus SET state = ?2 WHERE id = ?1 AND state = 'pending'")?
        .execute(params![id, state])?;
    Ok(())
}

/// An inbox message to create from PDUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInbox {
    pub sender: String,
    pub text: String,
    pub modem: String,
    pub sim: Option<String>,
    pub received_at: DateTime<Utc>,
    pub parts: u8,
    pub note: Option<String>,
    /// The single PDU it came from, or
    pub pdu_id: Option<i64>,
    /// the multipart group whose pending PDUs it consumed.
    pub group_key: Option<String>,
}

/// Create an inbox row (text cut at [`MAX_INBOX_CHARS`]) and mark its PDUs `done`.
pub fn create_inbox(conn: &Connection, m: &NewInbox) -> Result<i64, StoreError> {
    let mut note = m.note.clone();
    let text: String = if m.text.chars().count() > MAX_INBOX_CHARS {
        let cut = format!("text cut at {MAX_INBOX_CHARS} characters");
        note = Some(note.map_or(cut.clone(), |n| format!("{n}; {cut}")));
        m.text.chars().take(MAX_INBOX_CHARS).collect()
    } else {
        m.text.clone()
    };
    conn.prepare_cached(
        "INSERT INTO inbox (sender, text, modem, sim, received_at, parts, state, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'received', ?7)",
    )?
    .execute(params![
        m.sender,
        text,
        m.modem,
        m.sim,
        to_ms(m.received_at),
        m.parts,
        note
    ])?;
    let id = conn.last_insert_rowid();
    if let Some(pdu) = m.pdu_id {
        conn.prepare_cached("UPDATE inbound_pdus SET state = 'done', inbox_id = ?2 WHERE id = ?1")?
            .execute(params![pdu, id])?;
    }
    if let Some(group) = &m.group_key {
        conn.prepare_cached(
            "UPDATE inbound_pdus SET state = 'done', inbox_id = ?2
             WHERE group_key = ?1 AND state = 'pending'",
        )?
        .execute(params![group, id])?;
    }
    Ok(id)
}

/// How an inbox message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Stored, not handled yet (a restart handles it).
    Received,
    /// Answered; `reply_id` names the answer.
    Replied,
    /// Acted on without an answer.
    Handled,
    /// Not answered on purpose: a service number, an alphanumeric sender, our own SIM.
    Ignored,
    /// Not answered: the sender (or everyone) used up the reply allowance.
    RateLimited,
    /// Handling failed (see the note).
    Failed,
}

impl InboxState {
    pub const ALL: [InboxState; 6] = [
        InboxState::Received,
        InboxState::Replied,
        InboxState::Handled,
        InboxState::Ignored,
        InboxState::RateLimited,
        InboxState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Received => "received",
            InboxState::Replied => "replied",
            InboxState::Handled => "handled",
            InboxState::Ignored => "ignored",
            InboxState::RateLimited => "rate_limited",
            InboxState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<InboxState> {
        InboxState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One inbox message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InboxEntry {
    pub id: i64,
    pub sender: String,
    pub text: String,
    pub modem: String,
    pub sim: Option<String>,
    pub received_at: DateTime<Utc>,
    pub parts: u8,
    pub state: InboxState,
    pub command: Option<String>,
    pub account: Option<String>,
    pub reply_id: Option<i64>,
    pub note: Option<String>,
    pub handled_at: Option<DateTime<Utc>>,
}

const INBOX_COLUMNS: &str = "id, sender, text, modem, sim, received_at, parts, state, command,
    account, reply_id, note, handled_at";

fn entry_of(r: &rusqlite::Row<'_>) -> Result<InboxEntry, StoreError> {
    let state: String = r.get(7)?;
    let parts: i64 = r.get(6)?;
    Ok(InboxEntry {
        id: r.get(0)?,
        sender: r.get(1)?,
        text: r.get(2)?,
        modem: r.get(3)?,
        sim: r.get(4)?,
        received_at: from_ms(r.get(5)?)?,
        parts: u8::try_from(parts).unwrap_or(u8::MAX),
        state: InboxState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("inbox state {state:?}")))?,
        command: r.get(8)?,
        account: r.get(9)?,
        reply_id: r.get(10)?,
        note: r.get(11)?,
        handled_at: from_ms_opt(r.get(12)?)?,
    })
}

/// One inbox message by id.
pub fn get(conn: &Connection, id: i64) -> Result<Option<InboxEntry>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(entry_of(r)?)),
        None => Ok(None),
    }
}

/// Inbox messages still `received` (handling interrupted by a stop), oldest first.
pub fn unhandled(conn: &Connection, limit: usize) -> Result<Vec<InboxEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INBOX_COLUMNS} FROM inbox WHERE state = 'received' ORDER BY id LIMIT ?1"
    ))?;
    let mut rows = stmt.query([limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(entry_of(r)?);
    }
    Ok(out)
}

/// How handling ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub state: InboxState,
    pub command: Option<String>,
    pub account: Option<String>,
    pub reply_id: Option<i64>,
    pub note: Option<String>,
}

/// Record how an inbox message was handled (its note is added to the intake's note); only a
/// `received` one (compare-and-set), so a
/// message handled twice after a restart keeps its first outcome. Returns whether it applied.
pub fn finish(
    conn: &Connection,
    id: i64,
    h: &Handled,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE inbox SET state = ?2, command = ?3, account = ?4, reply_id = ?5,
                 note = CASE WHEN ?6 IS NULL THEN note WHEN note IS NULL THEN ?6
                             ELSE note || '; ' || ?6 END,
                 handled_at = ?7
             WHERE id = ?1 AND state = 'received'",
        )?
        .execute(params![
            id,
            h.state.as_str(),
            h.command,
            h.account,
            h.reply_id,
            h.note,
            to_ms(now)
        ])?;
    Ok(n == 1)
}

/// Filter for [`list`]; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    pub sender: Option<String>,
    pub state: Option<InboxState>,
    pub since: Option<DateTime<Utc>>,
    /// Page size, clamped to 1..=1000 (0 means 100).
    pub limit: usize,
    /// Continue below this id (the previous page's `next_cursor`).
    pub before_id: Option<i64>,
}

/// A page of the inbox, newest first, and the cursor of the next page.
pub fn list(
    conn: &Connection,
    f: &InboxFilter,
) -> Result<(Vec<InboxEntry>, Option<i64>), StoreError> {
    let limit = if f.limit == 0 { 100 } else { f.limit.min(1000) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INBOX_COLUMNS} FROM inbox
         WHERE (?1 IS NULL OR sender = ?1) AND (?2 IS NULL OR state = ?2)
           AND (?3 IS NULL OR received_at >= ?3) AND (?4 IS NULL OR id < ?4)
         ORDER BY id DESC LIMIT ?5"
    ))?;
    let mut rows = stmt.query(params![
        f.sender,
        f.state.map(InboxState::as_str),
        f.since.map(to_ms),
        f.before_id,
        (limit + 1) as i64
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(entry_of(r)?);
    }
    let next = if out.len() > limit {
        out.truncate(limit);
        out.last().map(|e| e.id)
    } else {
        None
    };
    Ok((out, next))
}

/// Takes one unit of the `key` allowance in the fixed window starting at `window_start`;
/// false (nothing taken) when `limit` units were taken already.
pub fn take_allowance(
    conn: &Connection,
    key: &str,
    window_start: DateTime<Utc>,
    limit: u32,
) -> Result<bool, StoreError> {
    let used: Option<i64> = conn
        .prepare_cached("SELECT n FROM inbound_rate WHERE key = ?1 AND window_start = ?2")?
        .query_row(params![key, to_ms(window_start)], |r| r.get(0))
        .optional()?;
    if used.unwrap_or(0) >= i64::from(limit) {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO inbound_rate (key, window_start, n) VALUES (?1, ?2, 1)
         ON CONFLICT (key, window_start) DO UPDATE SET n = n + 1",
    )?
    .execute(params![key, to_ms(window_start)])?;
    Ok(true)
}

/// True when `take_allowance` would refuse.
pub fn allowance_used(
    conn: &Connection,
    key: &str,
    window_start: DateTime<Utc>,
    limit: u32,
) -> Result<bool, StoreError> {
    let used: Option<i64> = conn
        .prepare_cached("SELECT n FROM inbound_rate WHERE key = ?1 AND window_start = ?2")?
        .query_row(params![key, to_ms(window_start)], |r| r.get(0))
        .optional()?;
    Ok(used.unwrap_or(0) >= i64::from(limit))
}

/// Forget rate windows that ended before `before` (called now and then).
pub fn prune_rates(conn: &Connection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM inbound_rate WHERE window_start < ?1",
        [to_ms(before)],
    )?)
}

/// Deletes at most `batch` inbox rows received before `older_than` (handled ones only) and
/// the finished PDU rows of that age; returns how many rows went.
pub fn prune(
    conn: &Connection,
    older_than: DateTime<Utc>,
    batch: usize,
) -> Result<usize, StoreError> {
    let cut = to_ms(older_than);
    let pdus = conn.execute(
        "DELETE FROM inbound_pdus WHERE id IN (SELECT id FROM inbound_pdus
             WHERE received_at < ?1 AND state <> 'pending' LIMIT ?2)",
        params![cut, batch as i64],
    )?;
    let rows = conn.execute(
        "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox
             WHERE received_at < ?1 AND state <> 'received' LIMIT ?2)",
        params![cut, batch as i64],
    )?;
    Ok(pdus + rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut c).unwrap();
        c
    }

    fn pdu(bytes: &[u8], sim: &str) -> NewPdu {
        NewPdu {
            modem: "m1".into(),
            sim: sim.into(),
            storage_index: Some(3),
            pdu: bytes.to_vec(),
            received_at: Utc::now(),
            group_key: None,
            decodable: true,
        }
    }

    #[test]
    fn the_same_pdu_from_the_same_sim_is_stored_once() {
        let c = conn();
        let a = pdu(b"\x00\x04abc", "sim-1");
        let first = store_pdus(&c, std::slice::from_ref(&a)).unwrap();
        assert!(first[0].is_some());
        assert_eq!(
            store_pdus(&c, std::slice::from_ref(&a)).unwrap(),
            vec![None]
        );
        assert!(store_pdus(&c, &[pdu(b"\x00\x04abc", "sim-2")]).unwrap()[0].is_some());
        let mut other_slot = a.clone();
        other_slot.storage_index = Some(4);
        assert!(store_pdus(&c, &[other_slot]).unwrap()[0].is_some());
        assert_eq!(pending_pdus(&c, 10).unwrap().len(), 3);
        let id = create_inbox(
            &c,
            &NewInbox {
                sender: "+8613800138000".into(),
                text: "x".repeat(MAX_INBOX_CHARS + 5),
                modem: "m1".into(),
                sim: None,
                received_at: Utc::now(),
                parts: 1,
                note: None,
                pdu_id: first[0],
                group_key: None,
            },
        )
        .unwrap();
        assert_eq!(pending_pdus(&c, 10).unwrap().len(), 2);
        let e = get(&c, id).unwrap().unwrap();
        assert_eq!(e.text.chars().count(), MAX_INBOX_CHARS);
        assert!(e.note.unwrap().contains("cut"));
        let h = Handled {
            state: InboxState::Replied,
            command: Some("help".into()),
            account: None,
            reply_id: Some(7),
            note: None,
        };
        assert!(finish(&c, id, &h, Utc::now()).unwrap());
        assert!(!finish(&c, id, &h, Utc::now()).unwrap(), "only once");
        assert!(unhandled(&c, 10).unwrap().is_empty());
        let later = Utc::now() + chrono::TimeDelta::days(1);
        // The handled row and its PDU go; the two PDUs still pending stay.
        assert_eq!(prune(&c, later, 100).unwrap(), 2);
        assert_eq!(pending_pdus(&c, 10).unwrap().len(), 2);
    }

    #[test]
    fn allowance_is_counted_per_key_and_window() {
        let c = conn();
        let w = Utc::now();
        assert!(take_allowance(&c, "p", w, 2).unwrap());
        assert!(take_allowance(&c, "p", w, 2).unwrap());
        assert!(allowance_used(&c, "p", w, 2).unwrap());
        assert!(!take_allowance(&c, "p", w, 2).unwrap());
        assert!(take_allowance(&c, "q", w, 2).unwrap());
        let later = w + chrono::TimeDelta::hours(1);
        assert!(take_allowance(&c, "p", later, 2).unwrap());
        assert_eq!(prune_rates(&c, later).unwrap(), 2);
    }
}
