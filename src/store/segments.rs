//! Segments of a message on the air: the two writes around each `AT+CMGS`, status-report
//! matching, and the failed-number counters.
//!
//! A segment row is written `submitting` before Ctrl-Z and `submitted` with its TP-MR after
//! `+CMGS`; so after a crash at most one segment per modem (the one `submitting`) is in doubt.
//! Status reports carry only (TP-MR, recipient); TP-MR is one byte per SIM and wraps every 256
//! sends, so a report is matched to the most recent `submitted` segment with that SIM, TP-MR
//! and recipient, submitted within [`REPORT_WINDOW_HOURS`].

use super::outbox::{MessageId, current_state, immediate};
use super::{StoreError, from_ms_opt, to_ms};
use crate::message::MessageState;
use crate::phone::E164;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::fmt;

/// How far back a status report may match a submission (SMSCs keep trying for up to ~3 days).
pub const REPORT_WINDOW_HOURS: i64 = 72;

/// Where one segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentState {
    Pending,
    /// Ctrl-Z is (about to be) written; no `+CMGS` yet.
    Submitting,
    /// `+CMGS` gave a TP-MR.
    Submitted,
    Delivered,
    Failed,
}

impl SegmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentState::Pending => "pending",
            SegmentState::Submitting => "submitting",
            SegmentState::Submitted => "submitted",
            SegmentState::Delivered => "delivered",
            SegmentState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => SegmentState::Pending,
            "submitting" => SegmentState::Submitting,
            "submitted" => SegmentState::Submitted,
            "delivered" => SegmentState::Delivered,
            "failed" => SegmentState::Failed,
            _ => return Err(StoreError::Corrupt(format!("segment state {s:?}"))),
        })
    }

    /// Already on the network: never send again.
    pub fn is_submitted(self) -> bool {
        matches!(self, SegmentState::Submitted | SegmentState::Delivered)
    }
}

impl fmt::Display for SegmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub message_id: MessageId,
    /// 1-based part number.
    pub seq: u8,
    pub total: u8,
    /// Concatenation reference of the UDH, reused when the remaining parts are resent.
    pub concat_ref: Option<u16>,
    pub tp_mr: Option<u8>,
    pub sim_iccid: Option<String>,
    pub state: SegmentState,
    /// TP-ST of the latest status report.
    pub status: Option<u8>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub reported_at: Option<DateTime<Utc>>,
}

/// The write before Ctrl-Z.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSubmit {
    pub message_id: MessageId,
    pub seq: u8,
    pub total: u8,
    pub concat_ref: Option<u16>,
    pub sim_iccid: String,
}

/// A decoded SMS-STATUS-REPORT as the modem layer hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The SIM that received the report (it sent the segment).
    pub sim_iccid: String,
    pub tp_mr: u8,
    pub recipient: E164,
    /// TP-ST.
    pub status: u8,
    pub received_at: DateTime<Utc>,
}

/// TP-ST classes of 3GPP TS 23.040 §9.2.3.15, as the codec defines them.
pub use crate::pdu::StatusClass as DeliveryClass;

/// What a status report changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportApplied {
    pub message_id: MessageId,
    pub seq: u8,
    pub class: DeliveryClass,
    pub segment_state: SegmentState,
    pub message_state: MessageState,
}

/// A phone number with permanent delivery failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedNumber {
    pub number: E164,
    pub failures: u32,
    pub first_failed_at: DateTime<Utc>,
    pub last_failed_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

fn small(v: i64, what: &str) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| StoreError::Corrupt(format!("segment {what} {v}")))
}

fn segment_from_row(r: &Row<'_>) -> Result<Segment, StoreError> {
    let state: String = r.get(6)?;
    let concat_ref = match r.get::<_, Option<i64>>(3)? {
        Some(v) => {
            Some(u16::try_from(v).map_err(|_| StoreError::Corrupt(format!("concat_ref {v}")))?)
        }
        None => None,
    };
    let tp_mr = match r.get::<_, Option<i64>>(4)? {
        Some(v) => Some(small(v, "tp_mr")?),
        None => None,
    };
    let status = match r.get::<_, Option<i64>>(7)? {
        Some(v) => Some(small(v, "status")?),
        None => None,
    };
    Ok(Segment {
        message_id: r.get(0)?,
        seq: small(r.get(1)?, "seq")?,
        total: small(r.get(2)?, "total")?,
        concat_ref,
        tp_mr,
        sim_iccid: r.get(5)?,
        state: SegmentState::parse(&state)?,
        status,
        submitted_at: from_ms_opt(r.get(8)?)?,
        reported_at: from_ms_opt(r.get(9)?)?,
    })
}

/// Segments of one message, by part number.
pub fn for_message(conn: &Connection, id: MessageId) -> Result<Vec<Segment>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id, seq, total, concat_ref, tp_mr, sim_iccid, state, status,
                submitted_at, reported_at
         FROM segments WHERE message_id = ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(segment_from_row(r)?);
    }
    Ok(out)
}

/// Before Ctrl-Z: the segment is `submitting`. Refused unless the message is `sending`
/// (cancelled or expired meanwhile → stop) and the segment has no TP-MR yet (never resend a
/// submitted part).
pub fn mark_submitting(
    conn: &mut Connection,
    seg: &SegmentSubmit,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    submitting_in(&tx, seg, at)?;
    tx.commit()?;
    Ok(())
}

fn submitting_in(
    tx: &Connection,
    seg: &SegmentSubmit,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if seg.total == 0 || seg.seq == 0 || seg.seq > seg.total {
        return Err(StoreError::Invalid {
            index: 0,
            field: "seq",
            reason: format!("part {} of {}", seg.seq, seg.total),
        });
    }
    let state = current_state(tx, seg.message_id)?;
    if state != MessageState::Sending {
        return Err(StoreError::WrongState {
            id: seg.message_id,
            expected: "sending",
            found: state.to_string(),
        });
    }
    let n = tx
        .prepare_cached(
            "INSERT INTO segments (message_id, seq, total, concat_ref, sim_iccid, state, submitted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'submitting', ?6)
             ON CONFLICT (message_id, seq) DO UPDATE SET
                 state = 'submitting', total = excluded.total, concat_ref = excluded.concat_ref,
                 sim_iccid = excluded.sim_iccid, tp_mr = NULL, status = NULL,
                 submitted_at = excluded.submitted_at, reported_at = NULL
             WHERE segments.state IN ('pending', 'submitting', 'failed')",
        )?
        .execute(params![
            seg.message_id,
            seg.seq,
            seg.total,
            seg.concat_ref,
            seg.sim_iccid,
            to_ms(at)
        ])?;
    if n == 0 {
        return Err(segment_state_error(tx, seg.message_id, seg.seq, "pending")?);
    }
    Ok(())
}

fn segment_state_error(
    conn: &Connection,
    id: MessageId,
    seq: u8,
    expected: &'static str,
) -> Result<StoreError, StoreError> {
    let found: Option<String> = conn
        .query_row(
            "SELECT state FROM segments WHERE message_id = ?1 AND seq = ?2",
            params![id, seq],
            |r| r.get(0),
        )
        .optional()?;
    Ok(StoreError::WrongSegmentState {
        id,
        seq,
        expected,
        found: found.unwrap_or_else(|| "absent".into()),
    })
}

/// After `+CMGS: <mr>`: the segment is `submitted` with its TP-MR. When that was the last part
/// without one, the message becomes `sent` in the same transaction (returns `true`), so the
/// dispatcher needs no separate `mark_sent` round trip.
pub fn mark_submitted(
    conn: &mut Connection,
    id: MessageId,
    seq: u8,
    tp_mr: u8,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let sent = submitted_in(&tx, id, seq, tp_mr, at)?;
    tx.commit()?;
    Ok(sent)
}

fn submitted_in(
    tx: &Connection,
    id: MessageId,
    seq: u8,
    tp_mr: u8,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE segments SET state = 'submitted', tp_mr = ?3, submitted_at = ?4
             WHERE message_id = ?1 AND seq = ?2 AND state = 'submitting'",
        )?
        .execute(params![id, seq, tp_mr, to_ms(at)])?;
    if n == 0 {
        return Err(segment_state_error(tx, id, seq, "submitting")?);
    }
    let (rows, total, done): (i64, Option<i64>, i64) = tx
        .prepare_cached(
            "SELECT count(*), max(total), count(*) FILTER (WHERE state IN ('submitted', 'delivered'))
             FROM segments WHERE message_id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let complete = Some(rows) == total && done == rows;
    let sent = complete
        && tx
            .prepare_cached(
                "UPDATE messages SET state = 'sent', sent_at = ?2, updated_at = ?2
                 WHERE id = ?1 AND state = 'sending'",
            )?
            .execute(params![id, to_ms(at)])?
            == 1;
    Ok(sent)
}

/// A `+CMGS` answer to record with [`step`]: the segment, its TP-MR, and the SIM whose
/// hourly/daily/monthly counters it adds to (buckets in `tz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSent {
    pub message_id: MessageId,
    pub seq: u8,
    pub tp_mr: u8,
    pub sim_iccid: String,
    pub tz: chrono_tz::Tz,
}

/// What [`step`] did with each half.
#[derive(Debug)]
pub struct StepOutcome {
    /// The `+CMGS` record: `Ok(true)` when it was the message's last part and the message is
    /// now `sent` (as [`mark_submitted`]).
    pub sent: Option<Result<bool, StoreError>>,
    /// The next segment's `submitting` mark (as [`mark_submitting`]).
    pub next: Option<Result<(), StoreError>>,
}

/// Both writes a modem needs between two `AT+CMGS`, in one request: `sent` is recorded
/// ([`mark_submitted`] plus one segment on the SIM's quota counters, atomically) and then
/// `next` is marked `submitting` ([`mark_submitting`]). Each half commits or fails on its
/// own, and both reach the disk in the same transaction, so a modem still has at most one
/// segment in doubt: a crash before that commit leaves `sent` submitting (the one in doubt)
/// and `next` untouched; after it, `next` is the one in doubt and its Ctrl-Z comes later.
pub fn step(
    conn: &mut Connection,
    sent: Option<&SegmentSent>,
    next: Option<&SegmentSubmit>,
    at: DateTime<Utc>,
) -> StepOutcome {
    let sent = sent.map(|s| {
        super::outbox::atomic(conn, |tx| {
            let done = submitted_in(tx, s.message_id, s.seq, s.tp_mr, at)?;
            super::quotas::count_in(tx, &s.sim_iccid, 1, at, s.tz)?;
            Ok(done)
        })
    });
    let next = next.map(|n| super::outbox::atomic(conn, |tx| submitting_in(tx, n, at)));
    StepOutcome { sent, next }
}

/// Apply a status report to its segment and, when that settles it, to the message: all parts
/// delivered → `delivered`; a part failed finally → `failed` (and a permanent failure is
/// counted against the number, once per message). A report for a message that is already
/// final only updates the segment.
pub fn apply_status_report(
    conn: &mut Connection,
    rep: &StatusReport,
) -> Result<Option<ReportApplied>, StoreError> {
    let tx = immediate(conn)?;
    let since = to_ms(rep.received_at - Duration::hours(REPORT_WINDOW_HOURS));
    let hit: Option<(MessageId, i64)> = tx
        .prepare_cached(
            "SELECT s.message_id, s.seq FROM segments s JOIN messages m ON m.id = s.message_id
             WHERE s.state = 'submitted' AND s.sim_iccid = ?1 AND s.tp_mr = ?2
               AND m.recipient = ?3 AND s.submitted_at >= ?4
             ORDER BY s.submitted_at DESC, s.message_id DESC LIMIT 1",
        )?
        .query_row(
            params![rep.sim_iccid, rep.tp_mr, rep.recipient.as_str(), since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((id, seq)) = hit else {
        return Ok(None);
    };
    let seq = small(seq, "seq")?;
    let class = crate::pdu::status_class(rep.status);
    let at = to_ms(rep.received_at);
    let segment_state = match class {
        DeliveryClass::Delivered => SegmentState::Delivered,
        DeliveryClass::StillTrying => SegmentState::Submitted,
        DeliveryClass::TemporaryFailureGaveUp | DeliveryClass::PermanentFailure => {
            SegmentState::Failed
        }
    };
    tx.execute(
        "UPDATE segments SET state = ?3, status = ?4, reported_at = ?5
         WHERE message_id = ?1 AND seq = ?2",
        params![id, seq, segment_state.as_str(), rep.status, at],
    )?;
    match class {
        DeliveryClass::Delivered => {
            let (rows, total, delivered): (i64, Option<i64>, i64) = tx.query_row(
                "SELECT count(*), max(total), count(*) FILTER (WHERE state = 'delivered')
                 FROM segments WHERE message_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if Some(rows) == total && delivered == rows {
                tx.execute(
                    "UPDATE messages SET state = 'delivered', delivered_at = ?2, updated_at = ?2,
                         sent_at = coalesce(sent_at, ?2)
                     WHERE id = ?1 AND state IN ('sending', 'sent')",
                    params![id, at],
                )?;
            }
        }
        DeliveryClass::StillTrying => {}
        DeliveryClass::TemporaryFailureGaveUp | DeliveryClass::PermanentFailure => {
            let what = if class == DeliveryClass::PermanentFailure {
                "permanent error"
            } else {
                "not delivered, network gave up"
            };
            let reason = format!(
                "status report: {what} (TP-ST 0x{:02X}) for part {seq}",
                rep.status
            );
            let n = tx.execute(
                "UPDATE messages SET state = 'failed', last_error = ?2, updated_at = ?3
                 WHERE id = ?1 AND state IN ('sending', 'sent')",
                params![id, reason, at],
            )?;
            if n == 1 && class == DeliveryClass::PermanentFailure {
                count_failed_number(&tx, id, &reason, rep.received_at)?;
            }
        }
    }
    let message_state = current_state(&tx, id)?;
    tx.commit()?;
    Ok(Some(ReportApplied {
        message_id: id,
        seq,
        class,
        segment_state,
        message_state,
    }))
}

/// One more permanent failure for the message's recipient.
pub(crate) fn count_failed_number(
    tx: &Connection,
    id: MessageId,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO failed_numbers (recipient, failures, first_failed_at, last_failed_at, last_error)
         SELECT recipient, 1, ?2, ?2, ?3 FROM messages WHERE id = ?1
         ON CONFLICT (recipient) DO UPDATE SET failures = failures + 1,
             last_failed_at = excluded.last_failed_at, last_error = excluded.last_error",
    )?
    .execute(params![id, to_ms(at), reason])?;
    Ok(())
}

/// Numbers with at least `min_failures` permanent failures, most failures first.
pub fn failed_numbers(
    conn: &mut Connection,
    min_failures: u32,
    limit: usize,
) -> Result<Vec<FailedNumber>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT recipient, failures, first_failed_at, last_failed_at, last_error
         FROM failed_numbers WHERE failures >= ?1
         ORDER BY failures DESC, last_failed_at DESC LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![min_failures, limit.min(100_000) as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let number: String = r.get(0)?;
        let failures: i64 = r.get(1)?;
        out.push(FailedNumber {
            number: number
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("failed number {number:?}: {e}")))?,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            first_failed_at: super::from_ms(r.get(2)?)?,
            last_failed_at: super::from_ms(r.get(3)?)?,
            last_error: r.get(4)?,
        });
    }
    Ok(out)
}
