//! Per-SIM send counters for the hourly, daily and monthly limits, counted in segments and
//! persisted so a restart does not hand a SIM a fresh quota.
//!
//! Buckets are calendar periods of the configured zone (a "day" is a day in Asia/Shanghai, not
//! in UTC), stored under their local label (`2026-11-28T14`, `2026-11-28`, `2026-11`). Usage is
//! keyed by the SIM's identity (ICCID): a card moved to another USB port keeps its count.

use super::{StoreError, to_ms};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, params};

/// Segments a SIM sent in the current hour, day and month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub hour: u64,
    pub day: u64,
    pub month: u64,
}

struct Bucket {
    period: &'static str,
    label: String,
    start_ms: i64,
}

/// The three buckets containing `at`, in `tz`.
fn buckets(at: DateTime<Utc>, tz: Tz) -> [Bucket; 3] {
    let local = at.with_timezone(&tz);
    let date = local.date_naive();
    let hour_start = date.and_hms_opt(local.hour(), 0, 0);
    let day_start = date.and_hms_opt(0, 0, 0);
    let month_start =
        NaiveDate::from_ymd_opt(date.year(), date.month(), 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    // A local start that does not exist (DST gap) falls back to `at`: only pruning uses it.
    let utc_ms = |n: Option<NaiveDateTime>| {
        n.and_then(|n| tz.from_local_datetime(&n).earliest())
            .map_or(to_ms(at), |t| t.timestamp_millis())
    };
    [
        Bucket {
            period: "hour",
            label: local.format("%Y-%m-%dT%H").to_string(),
            start_ms: utc_ms(hour_start),
        },
        Bucket {
            period: "day",
            label: local.format("%Y-%m-%d").to_string(),
            start_ms: utc_ms(day_start),
        },
        Bucket {
            period: "month",
            label: local.format("%Y-%m").to_string(),
            start_ms: utc_ms(month_start),
        },
    ]
}

/// Add `n` segments sent by SIM `iccid` at `at`.
pub fn record_segments_sent(
    conn: &mut Connection,
    iccid: &str,
    n: u32,
    at: DateTime<Utc>,
    tz: Tz,
) -> Result<(), StoreError> {
    if n == 0 {
        return Ok(());
    }
    let tx = super::outbox::immediate(conn)?;
    count_in(&tx, iccid, n, at, tz)?;
    tx.commit()?;
    Ok(())
}

/// [`record_segments_sent`] inside the caller's savepoint.
pub(crate) fn count_in(
    tx: &Connection,
    iccid: &str,
    n: u32,
    at: DateTime<Utc>,
    tz: Tz,
) -> Result<(), StoreError> {
    // One statement for the three buckets: this runs for every segment sent.
    let [h, d, m] = buckets(at, tz);
    tx.prepare_cached(
        "INSERT INTO sim_usage (sim_iccid, period, bucket, bucket_start, segments)
         VALUES (?1, ?2, ?3, ?4, ?11), (?1, ?5, ?6, ?7, ?11), (?1, ?8, ?9, ?10, ?11)
         ON CONFLICT (sim_iccid, period, bucket) DO UPDATE SET segments = segments + excluded.segments",
    )?
    .execute(params![
        iccid, h.period, h.label, h.start_ms, d.period, d.label, d.start_ms, m.period, m.label,
        m.start_ms, n
    ])?;
    Ok(())
}

/// Segments SIM `iccid` sent in the hour, day and month containing `at`.
pub fn usage(
    conn: &mut Connection,
    iccid: &str,
    at: DateTime<Utc>,
    tz: Tz,
) -> Result<Usage, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT segments FROM sim_usage WHERE sim_iccid = ?1 AND period = ?2 AND bucket = ?3",
    )?;
    let mut counts = [0u64; 3];
    for (slot, b) in counts.iter_mut().zip(buckets(at, tz)) {
        let v: Option<i64> = stmt
            .query_row(params![iccid, b.period, b.label], |r| r.get(0))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        *slot = v.unwrap_or(0).max(0) as u64;
    }
    Ok(Usage {
        hour: counts[0],
        day: counts[1],
        month: counts[2],
    })
}

/// Usage of every SIM with sends in the month containing `at`.
pub fn usage_all(
    conn: &mut Connection,
    at: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<(String, Usage)>, StoreError> {
    let [_, _, month] = buckets(at, tz);
    let sims: Vec<String> = conn
        .prepare_cached(
            "SELECT sim_iccid FROM sim_usage WHERE period = 'month' AND bucket = ?1 ORDER BY sim_iccid",
        )?
        .query_map([month.label], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(sims.len());
    for sim in sims {
        let u = usage(conn, &sim, at, tz)?;
        out.push((sim, u));
    }
    Ok(out)
}
