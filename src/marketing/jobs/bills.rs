//! Bill notices: bills posted since the watermark → one notice per account, period, revision
//! and contact phone.
//!
//! The `bills` query is run with `:since` = the watermark (the latest `posted_at` seen) as a
//! local date-time; write it with `posted_at >= :since` — the boundary rows come back on the
//! next run and are recognised as duplicates by their idempotency key
//! `bill:{account}:{period}:{revision}:{phone}`, which is safer than `>` (a bill posted in the
//! same second as the last one read would be missed). The first run reads `look_back` into the
//! past only, so switching gridsms on does not flood customers with history.
//!
//! Rows are streamed and committed in batches of [`super::BATCH`]; only the last batch moves
//! the watermark. Skipped rows are counted by reason: `no_phone`, `invalid_phone`,
//! `null_amount`, `negative_amount`, `duplicate_row`, `bad_field`; opted-out phones as
//! `opted_out`.

use super::{BATCH, Job, JobContext, JobError, local_naive, parse_instant};
use crate::marketing::directory::phone_of;
use crate::marketing::source::{BoxFuture, FieldError, Row, Value};
use crate::message::Category;
use crate::store::jobs::RunStats;
use crate::store::outbox::NewMessage;
use crate::templates::{NoticeKind, Templates, Vars};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// Longest account number / period accepted from a row (keys and texts stay bounded).
const MAX_CODE_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 40;

pub struct Bills;

impl Job for Bills {
    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        stats: &'a mut RunStats,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(poll_configured(ctx, stats, Kind::Bill))
    }
}

/// One run of the bills or the corrections job, with its section's settings (both sections
/// take the same keys).
pub(super) async fn poll_configured(
    ctx: &JobContext,
    stats: &mut RunStats,
    kind: Kind,
) -> Result<(), JobError> {
    let m = ctx.marketing()?;
    let (job, section) = match kind {
        Kind::Bill => (m.bills.as_ref(), "bills"),
        Kind::Correction => (m.corrections.as_ref(), "corrections"),
    };
    let job = job.ok_or_else(|| JobError::Config(format!("[marketing.{section}] is gone")))?;
    poll(ctx, stats, kind, job.look_back, job.expire_after).await
}

/// What the shared poll produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bill,
    Correction,
}

impl Kind {
    fn query(self) -> &'static str {
        match self {
            Kind::Bill => "bills",
            Kind::Correction => "corrections",
        }
    }
    fn time_column(self) -> &'static str {
        match self {
            Kind::Bill => "posted_at",
            Kind::Correction => "revised_at",
        }
    }
    fn key_prefix(self) -> &'static str {
        match self {
            Kind::Bill => "bill",
            Kind::Correction => "billfix",
        }
    }
    fn notice(self) -> NoticeKind {
        match self {
            Kind::Bill => NoticeKind::Bill,
            Kind::Correction => NoticeKind::BillCorrected,
        }
    }
}

/// Detects rows repeating an earlier row's key within one run. 128-bit hashes keep the set
/// small for a full month of bills (a few MiB for 263,000) with no practical collision risk.
pub(super) struct SeenKeys {
    a: RandomState,
    b: RandomState,
    seen: HashSet<u128>,
}

impl SeenKeys {
    pub(super) fn new() -> Self {
        SeenKeys {
            a: RandomState::new(),
            b: RandomState::new(),
            seen: HashSet::new(),
        }
    }

    /// True the first time `key` is offered.
    pub(super) fn first(&mut self, key: &str) -> bool {
        let (a, b) = (self.a.hash_one(key), self.b.hash_one(key));
        self.seen.insert((u128::from(a) << 64) | u128::from(b))
    }
}

fn field<T>(r: Result<T, FieldError>) -> Result<T, &'static str> {
    r.map_err(|_| "bad_field")
}

fn code(row: &Row, column: &str) -> Result<String, &'static str> {
    match field(row.text(column))? {
        Some(s) if s.chars().count() <= MAX_CODE_CHARS => Ok(s),
        _ => Err("bad_field"),
    }
}

/// Optional column: absent or NULL → None; present but unreadable → `bad_field`.
fn opt<T>(
    row: &Row,
    column: &str,
    read: fn(&Row, &str) -> Result<Option<T>, FieldError>,
) -> Result<Option<T>, &'static str> {
    if row.get(column).is_none() {
        return Ok(None);
    }
    field(read(row, column))
}

/// One row → its notice, or the reason it is skipped.
pub(super) fn notice_of(
    templates: &Templates,
    row: &Row,
    kind: Kind,
    expires_at: DateTime<Utc>,
    seen: &mut SeenKeys,
) -> Result<NewMessage, &'static str> {
    let account = code(row, "account")?;
    let period = code(row, "period")?;
    let revision = opt(row, "revision", Row::int)?.unwrap_or(0);
    if revision < 0 {
        return Err("bad_field");
    }
    if kind == Kind::Correction && revision == 0 {
        return Err("not_revised");
    }
    let phone = phone_of(row).map_err(|s| s.label())?;
    let amount = match field(row.cents("amount"))? {
        None => return Err("null_amount"),
        Some(a) if a < 0 => return Err("negative_amount"),
        Some(a) => a,
    };
    let key = format!(
        "{}:{account}:{period}:{revision}:{}",
        kind.key_prefix(),
        phone.as_str()
    );
    if !seen.first(&key) {
        return Err("duplicate_row");
    }
    let name = opt(row, "name", Row::text)?.filter(|n| n.chars().count() <= MAX_NAME_CHARS);
    let station = opt(row, "station", Row::text)?.filter(|s| s.chars().count() <= MAX_CODE_CHARS);
    let vars = Vars {
        name,
        account: Some(account.clone()),
        period: Some(period),
        kwh: opt(row, "kwh", Row::number)?,
        amount_cents: Some(amount),
        due_date: opt(row, "due_date", Row::date)?,
        late_fee_cents: opt(row, "late_fee", Row::cents)?,
        station: station.clone(),
        ..Vars::default()
    };
    let mut msg = NewMessage::new(
        phone,
        templates.render(kind.notice(), &vars),
        Category::Bill,
    );
    msg.idempotency_key = Some(key);
    msg.expires_at = Some(expires_at);
    msg.origin = Some(format!("job:{}", kind.query()));
    msg.account = Some(account);
    msg.station = station;
    Ok(msg)
}

/// The bills and corrections poll: stream rows changed since the watermark, commit notices in
/// batches, move the watermark with the last batch.
pub(super) async fn poll(
    ctx: &JobContext,
    stats: &mut RunStats,
    kind: Kind,
    look_back: Duration,
    expire_after: Duration,
) -> Result<(), JobError> {
    let tz = ctx.tz();
    let stored = ctx.watermark().await?;
    let since = match stored.as_deref().and_then(parse_instant) {
        Some(t) => t,
        None => {
            if let Some(bad) = &stored {
                tracing::warn!(job = ctx.job, watermark = %bad, "unreadable watermark; using look_back");
            }
            ctx.started - TimeDelta::from_std(look_back).unwrap_or(TimeDelta::days(1))
        }
    };
    let expires_at = ctx.started + TimeDelta::from_std(expire_after).unwrap_or(TimeDelta::days(3));
    let mut rows = ctx.directory.stream(
        kind.query(),
        &[("since", Value::DateTime(local_naive(since, tz)))],
    )?;
    let mut seen = SeenKeys::new();
    let mut max_seen = since;
    let mut batch = Vec::with_capacity(BATCH);
    let mut committer = ctx.committer();
    while let Some(row) = rows.next().await {
        let row = row?;
        stats.rows_read += 1;
        if let Ok(Some(t)) = row.instant(kind.time_column(), &tz) {
            // A time in the future (a clock off on the other side) must not push the
            // watermark past rows still to come.
            if t > max_seen && t <= ctx.started + TimeDelta::minutes(5) {
                max_seen = t;
            }
        }
        match notice_of(&ctx.config.templates, &row, kind, expires_at, &mut seen) {
            Ok(m) => batch.push(m),
            Err(reason) => stats.skip(reason),
        }
        if batch.len() >= BATCH {
            committer
                .send(
                    std::mem::replace(&mut batch, Vec::with_capacity(BATCH)),
                    stats,
                )
                .await?;
        }
    }
    committer
        .finish(batch, Some(max_seen.to_rfc3339()), stats)
        .await?;
    Ok(())
}
