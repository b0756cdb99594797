//! The store side of the reports: read-only queries run on the store thread, rows streamed
//! into the aggregators.
//!
//! `stations`: when not empty, only messages whose station starts with one of these prefixes
//! count (a station-scoped token's view).

use super::delivery::{Aggregate, MessageFacts};
use super::{FailedNumberRow, Period};
use crate::message::MessageState;
use crate::store::{StoreError, from_ms_opt, to_ms};
use chrono_tz::Tz;
use rusqlite::{Connection, params};
use std::collections::BTreeMap;

/// Most rows of the failed-number report.
pub const MAX_FAILED_NUMBERS: usize = 10_000;

fn station_ok(stations: &[String], station: Option<&str>) -> bool {
    stations.is_empty()
        || station.is_some_and(|s| stations.iter().any(|p| s.starts_with(p.as_str())))
}

/// Feeds every message created in `period` into an [`Aggregate`].
pub fn delivery(
    conn: &Connection,
    period: Period,
    tz: Tz,
    stations: &[String],
) -> Result<Aggregate, StoreError> {
    let mut agg = Aggregate::new(tz);
    let mut stmt = conn.prepare_cached(
        "SELECT m.created_at, m.category, m.station, m.modem, m.sim_iccid, m.state,
                (SELECT count(*) FROM segments s WHERE s.message_id = m.id AND s.tp_mr IS NOT NULL)
         FROM messages m
         WHERE m.created_at >= ?1 AND m.created_at < ?2",
    )?;
    let mut rows = stmt.query(params![to_ms(period.from), to_ms(period.to)])?;
    while let Some(r) = rows.next()? {
        let station: Option<String> = r.get(2)?;
        if !station_ok(stations, station.as_deref()) {
            continue;
        }
        let state: String = r.get(5)?;
        let state: MessageState = state
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("message state {state:?}")))?;
        let created: i64 = r.get(0)?;
        agg.add(&MessageFacts {
            created_at: crate::store::from_ms(created)?,
            category: r.get(1)?,
            station,
            modem: r.get(3)?,
            sim_iccid: r.get(4)?,
            state,
            segments_on_air: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        });
    }
    Ok(agg)
}

/// Numbers with a permanent failure (failed in the period), or with at least `threshold`
/// messages that ended `failed` in the period; worst first.
pub fn failed_numbers(
    conn: &Connection,
    period: Period,
    threshold: u32,
    stations: &[String],
) -> Result<Vec<FailedNumberRow>, StoreError> {
    let (from, to) = (to_ms(period.from), to_ms(period.to));
    let mut found: BTreeMap<String, FailedNumberRow> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT recipient, failures, last_failed_at, last_error FROM failed_numbers
             WHERE last_failed_at >= ?1 AND last_failed_at < ?2",
        )?;
        let mut rows = stmt.query(params![from, to])?;
        while let Some(r) = rows.next()? {
            let number: String = r.get(0)?;
            found.insert(
                number.clone(),
                FailedNumberRow {
                    number,
                    permanent_failures: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    failed_messages: 0,
                    last_failed_at: from_ms_opt(r.get(2)?)?,
                    last_error: r.get(3)?,
                    accounts: Vec::new(),
                },
            );
        }
    }
    {
        // Failed messages of the period per number, with the latest error.
        let mut stmt = conn.prepare_cached(
            "SELECT recipient, count(*), max(updated_at),
                    (SELECT last_error FROM messages l WHERE l.recipient = m.recipient
                       AND l.state = 'failed' ORDER BY l.updated_at DESC LIMIT 1)
             FROM messages m
             WHERE state = 'failed' AND updated_at >= ?1 AND updated_at < ?2
             GROUP BY recipient",
        )?;
        let mut rows = stmt.query(params![from, to])?;
        while let Some(r) = rows.next()? {
            let number: String = r.get(0)?;
            let n = u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
            let last = from_ms_opt(r.get(2)?)?;
            let error: Option<String> = r.get(3)?;
            match found.get_mut(&number) {
                Some(row) => row.failed_messages = n,
                None if n >= u64::from(threshold) => {
                    found.insert(
                        number.clone(),
                        FailedNumberRow {
                            number,
                            permanent_failures: 0,
                            failed_messages: n,
                            last_failed_at: last,
                            last_error: error,
                            accounts: Vec::new(),
                        },
                    );
                }
                None => {}
            }
        }
    }
    let mut accounts_stmt = conn.prepare_cached(
        "SELECT account, station FROM messages INDEXED BY messages_recipient
           WHERE recipient = ?1 AND account IS NOT NULL
         UNION
         SELECT account, NULL FROM contacts WHERE phone = ?1 AND status = 'active'",
    )?;
    let mut out = Vec::new();
    for (_, mut row) in found {
        let mut in_scope = stations.is_empty();
        let mut rows = accounts_stmt.query([row.number.as_str()])?;
        while let Some(r) = rows.next()? {
            let account: String = r.get(0)?;
            let station: Option<String> = r.get(1)?;
            if !stations.is_empty() && station_ok(stations, station.as_deref()) {
                in_scope = true;
            }
            if !row.accounts.contains(&account) {
                row.accounts.push(account);
            }
        }
        if in_scope {
            row.accounts.sort();
            out.push(row);
        }
    }
    out.sort_by(|a, b| {
        (b.permanent_failures, b.failed_messages, b.last_failed_at).cmp(&(
            a.permanent_failures,
            a.failed_messages,
            a.last_failed_at,
        ))
    });
    out.truncate(MAX_FAILED_NUMBERS);
    Ok(out)
}

/// Segments per SIM per month bucket ("2026-11") for the local months from `first` to
/// `last` (labels, inclusive).
pub fn sim_months(
    conn: &Connection,
    first: &str,
    last: &str,
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT bucket, sim_iccid, segments FROM sim_usage
         WHERE period = 'month' AND bucket >= ?1 AND bucket <= ?2
         ORDER BY bucket, sim_iccid",
    )?;
    let mut rows = stmt.query(params![first, last])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push((
            r.get(0)?,
            r.get(1)?,
            u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
        ));
    }
    Ok(out)
}

/// Longest a report query may run before SQLite interrupts it.
pub const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A read-only connection of its own for report queries: WAL lets it read while the store
/// thread writes, so a month-long report (0.5 to 0.7 s per 200,000 messages, see
/// `benches/staff.rs`) never holds up sending. SQLite interrupts it after `timeout`.
pub fn open_reader(
    path: &std::path::Path,
    timeout: std::time::Duration,
) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA query_only = ON")?;
    let deadline = std::time::Instant::now() + timeout;
    conn.progress_handler(10_000, Some(move || std::time::Instant::now() > deadline));
    Ok(conn)
}
