//! Planned outages (from the marketing poll or entered at the 95598 desk) and the notices sent
//! for each: which phone was told what, at which version of the outage.
//!
//! `outage_notices` is both the dedup set and the audience of follow-ups: a phone gets at most
//! one notice per outage, version and kind (its primary key, checked by an `INSERT OR IGNORE`
//! in the same transaction that enqueues the message), and change or cancellation notices go
//! to exactly the phones recorded with a `planned` notice. Keeping the dedup set here rather
//! than in memory means a feeder of any size, a restart mid-announcement or a second poll never
//! sends a phone the same notice twice.
//!
//! Times are UTC milliseconds; `source_updated_at` is the marketing row's own change time as
//! its text (local time of the bureau), the poll's watermark.

use super::{StoreError, from_ms, from_ms_opt, to_ms};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

/// Where an outage came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageSource {
    Marketing,
    Manual,
}

impl OutageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OutageSource::Marketing => "marketing",
            OutageSource::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageStatus {
    Planned,
    /// Its time changed after the first announcement (version > 1).
    Changed,
    Cancelled,
}

impl OutageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutageStatus::Planned => "planned",
            OutageStatus::Changed => "changed",
            OutageStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<OutageStatus, StoreError> {
        match s {
            "planned" => Ok(OutageStatus::Planned),
            "changed" => Ok(OutageStatus::Changed),
            "cancelled" => Ok(OutageStatus::Cancelled),
            _ => Err(StoreError::Corrupt(format!("outage status {s:?}"))),
        }
    }
}

/// A kind of outage notice, as recorded per phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeRecord {
    Planned,
    Reminder,
    Changed,
    Cancelled,
}

impl NoticeRecord {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeRecord::Planned => "planned",
            NoticeRecord::Reminder => "reminder",
            NoticeRecord::Changed => "changed",
            NoticeRecord::Cancelled => "cancelled",
        }
    }
}

/// What an outage is about, as entered or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageSpec {
    pub feeder: Option<String>,
    /// Transformer-area codes.
    pub areas: Vec<String>,
    /// The area as people name it, for the notice text.
    pub area_text: Option<String>,
    pub station: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: Option<String>,
}

/// One outage record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outage {
    pub id: i64,
    pub source: OutageSource,
    /// The marketing system's id, for polled outages.
    pub external_id: Option<String>,
    pub feeder: Option<String>,
    pub areas: Vec<String>,
    pub area_text: Option<String>,
    pub station: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: Option<String>,
    pub status: OutageStatus,
    /// Starts at 1; a changed time makes a new version (and change notices).
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub reminded_at: Option<DateTime<Utc>>,
    /// Phones told of it (a `planned` notice recorded).
    pub told: i64,
}

const COLUMNS: &str =
    "id, source, external_id, feeder, areas, area_text, station, start_at, end_at,
    reason, status, version, created_by, created_at, updated_at, reminded_at,
    (SELECT count(DISTINCT phone) FROM outage_notices n
     WHERE n.outage_id = outages.id AND n.kind = 'planned')";

fn outage_of(r: &Row<'_>) -> Result<Outage, StoreError> {
    let source: String = r.get(1)?;
    let areas: Option<String> = r.get(4)?;
    let status: String = r.get(10)?;
    Ok(Outage {
        id: r.get(0)?,
        source: match source.as_str() {
            "marketing" => OutageSource::Marketing,
            "manual" => OutageSource::Manual,
            other => return Err(StoreError::Corrupt(format!("outage source {other:?}"))),
        },
        external_id: r.get(2)?,
        feeder: r.get(3)?,
        areas: match areas {
            None => Vec::new(),
            Some(a) => serde_json::from_str(&a)
                .map_err(|e| StoreError::Corrupt(format!("outage areas {a:?}: {e}")))?,
        },
        area_text: r.get(5)?,
        station: r.get(6)?,
        start: from_ms(r.get(7)?)?,
        end: from_ms(r.get(8)?)?,
        reason: r.get(9)?,
        status: OutageStatus::parse(&status)?,
        version: r.get(11)?,
        created_by: r.get(12)?,
        created_at: from_ms(r.get(13)?)?,
        updated_at: from_ms(r.get(14)?)?,
        reminded_at: from_ms_opt(r.get(15)?)?,
        told: r.get(16)?,
    })
}

fn areas_json(areas: &[String]) -> Option<String> {
    if areas.is_empty() {
        None
    } else {
        serde_json::to_string(areas).ok()
    }
}

/// Record an outage entered by hand; returns its id.
pub fn insert_manual(
    conn: &Connection,
    spec: &OutageSpec,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO outages (source, feeder, areas, area_text, station, start_at, end_at, reason,
             status, version, created_by, created_at, updated_at)
         VALUES ('manual', ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'planned', 1, ?8, ?9, ?9)",
    )?
    .execute(params![
        spec.feeder,
        areas_json(&spec.areas),
        spec.area_text,
        spec.station,
        to_ms(spec.start),
        to_ms(spec.end),
        spec.reason,
        created_by,
        to_ms(now),
    ])?;
    Ok(conn.last_insert_rowid())
}

/// What a polled outage row did to our record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    New(i64),
    /// Start or end moved: a new version; change notices are due.
    TimeChanged(i64),
    /// Newly cancelled: cancellation notices are due.
    Cancelled(i64),
    /// Nothing that customers must hear about changed.
    Unchanged(i64),
}

/// Insert or update an outage read from the marketing database.
pub fn upsert_polled(
    conn: &mut Connection,
    external_id: &str,
    spec: &OutageSpec,
    cancelled: bool,
    source_updated_at: &str,
    now: DateTime<Utc>,
) -> Result<Upserted, StoreError> {
    let sp = conn.savepoint()?;
    let existing: Option<(i64, i64, i64, String)> = sp
        .prepare_cached(
            "SELECT id, start_at, end_at, status FROM outages
             WHERE source = 'marketing' AND external_id = ?1",
        )?
        .query_row([external_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let now_ms = to_ms(now);
    let out = match existing {
        None => {
            let status = if cancelled { "cancelled" } else { "planned" };
            sp.prepare_cached(
                "INSERT INTO outages (source, external_id, feeder, areas, area_text, station,
                     start_at, end_at, reason, status, version, created_by, created_at, updated_at,
                     source_updated_at)
                 VALUES ('marketing', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, 'marketing', ?10, ?10,
                     ?11)",
            )?
            .execute(params![
                external_id,
                spec.feeder,
                areas_json(&spec.areas),
                spec.area_text,
                spec.station,
                to_ms(spec.start),
                to_ms(spec.end),
                spec.reason,
                status,
                now_ms,
                source_updated_at,
            ])?;
            let id = sp.last_insert_rowid();
            if cancelled {
                Upserted::Unchanged(id)
            } else {
                Upserted::New(id)
            }
        }
        Some((id, start, end, status)) => {
            let was_cancelled = status == "cancelled";
            let moved = start != to_ms(spec.start) || end != to_ms(spec.end);
            let (status, bump, outcome) = if was_cancelled {
                ("cancelled", 0, Upserted::Unchanged(id))
            } else if cancelled {
                ("cancelled", 0, Upserted::Cancelled(id))
            } else if moved {
                ("changed", 1, Upserted::TimeChanged(id))
            } else {
                (status.as_str(), 0, Upserted::Unchanged(id))
            };
            sp.prepare_cached(
                "UPDATE outages SET feeder = ?2, areas = ?3, area_text = ?4, station = ?5,
                     start_at = ?6, end_at = ?7, reason = ?8, status = ?9, version = version + ?10,
                     updated_at = ?11, source_updated_at = ?12,
                     reminded_at = CASE WHEN ?10 > 0 THEN NULL ELSE reminded_at END
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                spec.feeder,
                areas_json(&spec.areas),
                spec.area_text,
                spec.station,
                to_ms(spec.start),
                to_ms(spec.end),
                spec.reason,
                status,
                bump,
                now_ms,
                source_updated_at,
            ])?;
            outcome
        }
    };
    sp.commit()?;
    Ok(out)
}

/// The poll's watermark: the latest marketing change time seen (text, as the source wrote it).
pub fn poll_watermark(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT max(source_updated_at) FROM outages WHERE source = 'marketing'")?
        .query_row([], |r| r.get(0))?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Outage>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM outages WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(outage_of(r)?)),
        None => Ok(None),
    }
}

/// The newest outages first.
pub fn list(conn: &Connection, limit: u32) -> Result<Vec<Outage>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outages ORDER BY id DESC LIMIT ?1"
    ))?;
    let mut rows = stmt.query([limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(outage_of(r)?);
    }
    Ok(out)
}

/// Outages on any of `feeders`, not cancelled, that end after `now`, soonest first (TZ).
pub fn upcoming_on_feeders(
    conn: &Connection,
    feeders: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<Outage>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outages
         WHERE feeder = ?1 AND status != 'cancelled' AND end_at > ?2
         ORDER BY start_at LIMIT 20"
    ))?;
    let mut out: Vec<Outage> = Vec::new();
    for feeder in feeders {
        let mut rows = stmt.query(rusqlite::params![feeder, super::to_ms(now)])?;
        while let Some(r) = rows.next()? {
            out.push(outage_of(r)?);
        }
    }
    out.sort_by_key(|o| (o.start, o.id));
    out.dedup_by_key(|o| o.id);
    Ok(out)
}

/// Outages not cancelled whose start is after `now` and that have no reminder yet.
pub fn awaiting_reminder(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<Outage>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outages
         WHERE status != 'cancelled' AND reminded_at IS NULL AND start_at > ?1
         ORDER BY start_at LIMIT 1000"
    ))?;
    let mut rows = stmt.query([to_ms(now)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(outage_of(r)?);
    }
    Ok(out)
}

/// Every planned notice of the outage is committed (an interrupted announcement is resumed
/// until this is set).
pub fn mark_announced(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outages SET announced_at = ?2 WHERE id = ?1",
        params![id, to_ms(now)],
    )?;
    Ok(())
}

/// Upcoming outages whose announcement did not finish (a stop or a database error mid-way).
pub fn unannounced(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM outages
         WHERE status != 'cancelled' AND announced_at IS NULL AND start_at > ?1
         ORDER BY start_at LIMIT 100",
    )?;
    let rows = stmt.query_map([to_ms(now)], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn mark_reminded(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outages SET reminded_at = ?2 WHERE id = ?1",
        params![id, to_ms(now)],
    )?;
    Ok(())
}

/// Cancel (compare-and-set): `Some(true)` when this call cancelled it, `Some(false)` when it
/// already was cancelled, `None` when there is no such outage.
pub fn cancel(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<Option<bool>, StoreError> {
    let n = conn.execute(
        "UPDATE outages SET status = 'cancelled', updated_at = ?2
         WHERE id = ?1 AND status != 'cancelled'",
        params![id, to_ms(now)],
    )?;
    if n == 1 {
        return Ok(Some(true));
    }
    let exists = conn
        .query_row("SELECT 1 FROM outages WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some();
    Ok(exists.then_some(false))
}

/// Record that `phone` is being sent `kind` for this outage version. False when it already
/// was (the dedup check).
#[allow(clippy::too_many_arguments)]
pub fn record_notice(
    conn: &Connection,
    outage_id: i64,
    phone: &str,
    kind: NoticeRecord,
    version: i64,
    account: Option<&str>,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO outage_notices
                 (outage_id, phone, kind, version, account, name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            outage_id,
            phone,
            kind.as_str(),
            version,
            account,
            name,
            to_ms(now)
        ])?;
    Ok(n == 1)
}

/// Link a recorded notice to its message.
pub fn set_notice_message(
    conn: &Connection,
    outage_id: i64,
    phone: &str,
    kind: NoticeRecord,
    version: i64,
    message_id: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outage_notices SET message_id = ?5
         WHERE outage_id = ?1 AND phone = ?2 AND kind = ?3 AND version = ?4",
    )?
    .execute(params![
        outage_id,
        phone,
        kind.as_str(),
        version,
        message_id
    ])?;
    Ok(())
}

/// A phone recorded with a `planned` notice of an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub phone: String,
    pub account: Option<String>,
    pub name: Option<String>,
    pub station: Option<String>,
    /// When it was first told (for the day-before rule).
    pub at: DateTime<Utc>,
    /// Whether a planned notice actually left or may still leave: false when every one was
    /// cancelled, expired or failed (such a phone never heard of the outage).
    pub reached: bool,
}

/// Phones with a `planned` notice for the outage, in phone order after `after`, at most
/// `limit` (callers page through a large feeder).
pub fn told_page(
    conn: &Connection,
    outage_id: i64,
    after: &str,
    limit: u32,
) -> Result<Vec<Told>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.phone, max(n.account), max(n.name), max(m.station), min(n.created_at),
                max(CASE WHEN m.id IS NULL OR m.state NOT IN ('cancelled', 'expired', 'failed')
                    THEN 1 ELSE 0 END)
         FROM outage_notices n LEFT JOIN messages m ON m.id = n.message_id
         WHERE n.outage_id = ?1 AND n.kind = 'planned' AND n.phone > ?2
         GROUP BY n.phone ORDER BY n.phone LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![outage_id, after, limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Told {
            phone: r.get(0)?,
            account: r.get(1)?,
            name: r.get(2)?,
            station: r.get(3)?,
            at: from_ms(r.get(4)?)?,
            reached: r.get::<_, i64>(5)? == 1,
        });
    }
    Ok(out)
}

/// How many notices of each kind went out for an outage.
pub fn notice_counts(conn: &Connection, outage_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, count(*) FROM outage_notices WHERE outage_id = ?1 GROUP BY kind ORDER BY kind",
    )?;
    let rows = stmt.query_map([outage_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
