//! Payment reminders for accounts in arrears.
//!
//! Each run:
//! 1. Queued reminders of accounts that no longer owe anything (`account_arrears` re-read per
//!    account) are cancelled: a customer who has paid is not reminded.
//! 2. The `arrears` query (`:today`) streams accounts in arrears, one row per account and
//!    contact phone (ordering by account keeps an account's phones together; unordered rows
//!    still work). An account is due its first reminder `first_after_days` after the due date,
//!    then every `every_days`, at most `max_reminders` per due date (state in
//!    `reminder_state`; a new due date starts again).
//! 3. Right before enqueueing, the account's arrears are re-read (`account_arrears`): paid →
//!    skipped as `paid`. The reminder shows the re-read amount. Reminders expire after
//!    `expire_after`; quiet hours hold them back like every reminder (dispatcher).
//!
//! Keys: `reminder:{account}:{due_date}:{n}:{phone}`; the reminder count moves in the same
//! transaction as the messages.

use super::{Job, JobContext, JobError};
use crate::marketing::directory::phone_of;
use crate::marketing::source::{BoxFuture, Value};
use crate::message::Category;
use crate::phone::E164;
use crate::store::jobs::{self as store_jobs, ReminderState, RunStats};
use crate::store::outbox::NewMessage;
use crate::templates::{NoticeKind, Vars};
use chrono::{NaiveDate, TimeDelta};
use std::collections::HashMap;

/// Accounts decided per store round trip.
const ACCOUNTS_PER_BATCH: usize = 200;
/// Most accounts with queued reminders checked for payment per run.
const CANCEL_CHECK_LIMIT: usize = 50_000;

pub struct Reminders;

struct Group {
    account: String,
    phones: Vec<E164>,
    due: Option<NaiveDate>,
    name: Option<String>,
    station: Option<String>,
}

impl Job for Reminders {
    fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
        stats: &'a mut RunStats,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(run(ctx, stats))
    }
}

async fn run(ctx: &JobContext, stats: &mut RunStats) -> Result<(), JobError> {
    let tz = ctx.tz();
    let today = ctx.started.with_timezone(&tz).date_naive();
    cancel_paid(ctx, stats, today).await?;
    let mut rows = ctx
        .directory
        .stream("arrears", &[("today", Value::Date(today))])?;
    let mut reminded: HashMap<String, u32> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut current: Option<Group> = None;
    while let Some(row) = rows.next().await {
        let row = row?;
        stats.rows_read += 1;
        let account = match row.text("account") {
            Ok(Some(a)) if a.chars().count() <= 64 => a,
            _ => {
                stats.skip("bad_field");
                continue;
            }
        };
        let phone = match phone_of(&row) {
            Ok(p) => p,
            Err(s) => {
                stats.skip(s.label());
                continue;
            }
        };
        match row.cents("amount") {
            Ok(Some(a)) if a > 0 => {}
            Ok(None) => {
                stats.skip("null_amount");
                continue;
            }
            Ok(Some(_)) => {
                stats.skip("paid");
                continue;
            }
            Err(_) => {
                stats.skip("bad_field");
                continue;
            }
        }
        let due = match row.date("due_date") {
            Ok(Some(d)) => d,
            _ => {
                stats.skip("bad_field");
                continue;
            }
        };
        if current.as_ref().is_some_and(|g| g.account != account) {
            groups.extend(current.take());
            if groups.len() >= ACCOUNTS_PER_BATCH {
                decide(
                    ctx,
                    stats,
                    today,
                    std::mem::take(&mut groups),
                    &mut reminded,
                )
                .await?;
            }
        }
        let g = current.get_or_insert_with(|| Group {
            account,
            phones: Vec::new(),
            due: None,
            name: None,
            station: None,
        });
        if !g.phones.contains(&phone) {
            g.phones.push(phone);
        }
        g.due = Some(g.due.map_or(due, |d| d.min(due)));
        if g.name.is_none() {
            g.name = row
                .text("name")
                .ok()
                .flatten()
                .filter(|n| n.chars().count() <= 40);
        }
        if g.station.is_none() {
            g.station = row
                .text("station")
                .ok()
                .flatten()
                .filter(|s| s.chars().count() <= 64);
        }
    }
    groups.extend(current.take());
    decide(ctx, stats, today, groups, &mut reminded).await
}

/// Cancel queued reminders of accounts that owe nothing any more.
async fn cancel_paid(
    ctx: &JobContext,
    stats: &mut RunStats,
    today: NaiveDate,
) -> Result<(), JobError> {
    let accounts = ctx
        .shared
        .store
        .call(|c| store_jobs::queued_accounts(c, Category::Reminder, CANCEL_CHECK_LIMIT))
        .await?;
    for account in accounts {
        match ctx.directory.arrears_of(&account, today).await {
            Ok(None) => {
                let now = ctx.now();
                let n = ctx
                    .shared
                    .store
                    .call(move |c| {
                        store_jobs::cancel_account(
                            c,
                            &account,
                            Category::Reminder,
                            "cancelled: the account is no longer in arrears",
                            now,
                        )
                    })
                    .await?;
                stats.cancelled += n as u64;
            }
            Ok(Some(_)) => {}
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(error) => {
                tracing::warn!(%error, "cannot re-read arrears; queued reminders kept");
            }
        }
    }
    Ok(())
}

/// Decide and queue the reminders of a group of accounts.
async fn decide(
    ctx: &JobContext,
    stats: &mut RunStats,
    today: NaiveDate,
    groups: Vec<Group>,
    reminded: &mut HashMap<String, u32>,
) -> Result<(), JobError> {
    if groups.is_empty() {
        return Ok(());
    }
    let cfg = ctx
        .marketing()?
        .reminders
        .clone()
        .ok_or_else(|| JobError::Config("[marketing.reminders] is gone".into()))?;
    let accounts: Vec<String> = groups.iter().map(|g| g.account.clone()).collect();
    let states = ctx
        .shared
        .store
        .call(move |c| store_jobs::reminder_states(c, &accounts))
        .await?;
    let expires_at =
        ctx.started + TimeDelta::from_std(cfg.expire_after).unwrap_or(TimeDelta::days(1));
    let mut msgs = Vec::new();
    let mut updates: Vec<(String, ReminderState)> = Vec::new();
    for g in groups {
        let phones = g.phones.len() as u64;
        let Some(due) = g.due else { continue };
        if today < due + TimeDelta::days(i64::from(cfg.first_after_days)) {
            stats.skip_n("not_due", phones);
            continue;
        }
        let n = match (reminded.get(&g.account), states.get(&g.account)) {
            // More phones of an account already reminded in this run (unordered rows).
            (Some(n), _) => *n,
            (None, Some(s)) if s.due_date == due => {
                if s.sent >= cfg.max_reminders {
                    stats.skip_n("max_reminders", phones);
                    continue;
                }
                if today < s.last_sent_on + TimeDelta::days(i64::from(cfg.every_days)) {
                    stats.skip_n("not_due", phones);
                    continue;
                }
                s.sent + 1
            }
            (None, _) => 1,
        };
        // The customer may have paid since the arrears list was read.
        let arrears = match ctx.directory.arrears_of(&g.account, today).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                stats.skip_n("paid", phones);
                continue;
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(_) => {
                stats.skip_n("bad_field", phones);
                continue;
            }
        };
        let vars = Vars {
            name: g.name.clone(),
            account: Some(g.account.clone()),
            amount_cents: Some(arrears.amount_cents),
            due_date: arrears.due_date.or(Some(due)),
            late_fee_cents: arrears.late_fee_cents,
            station: g.station.clone(),
            ..Vars::default()
        };
        let text = ctx.config.templates.render(NoticeKind::Reminder, &vars);
        for phone in g.phones {
            let key = format!("reminder:{}:{due}:{n}:{}", g.account, phone.as_str());
            let mut m = NewMessage::new(phone, text.clone(), Category::Reminder);
            m.idempotency_key = Some(key);
            m.expires_at = Some(expires_at);
            m.origin = Some("job:reminders".into());
            m.account = Some(g.account.clone());
            m.station = g.station.clone();
            msgs.push(m);
        }
        if reminded.insert(g.account.clone(), n).is_none() {
            updates.push((
                g.account,
                ReminderState {
                    due_date: due,
                    sent: n,
                    last_sent_on: today,
                },
            ));
        }
    }
    let now = ctx.now();
    ctx.commit_with(msgs, stats, move |conn| {
        for (account, st) in &updates {
            store_jobs::record_reminder(conn, account, st, now)?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}
