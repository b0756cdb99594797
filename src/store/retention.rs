//! Retention: finished messages are kept [`DEFAULT_RETENTION_DAYS`] by default (the rules ask
//! for at least five months) and then deleted in small batches.
//!
//! Each batch is its own short transaction (segments go with their message through the
//! foreign key's `ON DELETE CASCADE`), and [`super::Store::prune`] sends each batch through the
//! store channel separately, so claims and segment writes queued meanwhile run between batches:
//! pruning a year of history never holds up sending for more than one batch.

use super::{StoreError, to_ms};
use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, params};

/// About six months.
pub const DEFAULT_RETENTION_DAYS: u32 = 183;

/// Messages deleted per transaction.
pub const BATCH: usize = 500;

/// The cut-off for a retention of `days` days.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(days))
}

/// Delete up to `limit` messages that are no longer queued or sending and were last changed
/// before `older_than`, oldest first. Returns how many went.
pub fn prune_batch(
    conn: &mut Connection,
    older_than: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    let tx = super::outbox::immediate(conn)?;
    let n = tx
        .prepare_cached(
            "DELETE FROM messages WHERE id IN (
                 SELECT id FROM messages
                 WHERE state NOT IN ('queued', 'sending') AND updated_at < ?1
                 ORDER BY updated_at LIMIT ?2)",
        )?
        .execute(params![to_ms(older_than), limit as i64])?;
    tx.commit()?;
    Ok(n)
}

/// Drop quota buckets that started before `older_than` (hour buckets are useless after an
/// hour, but a small table is cheaper to keep than to reason about).
pub fn prune_usage(conn: &mut Connection, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM sim_usage WHERE bucket_start < ?1")?
        .execute([to_ms(older_than)])?)
}
