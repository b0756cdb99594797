//! What an inbox message asks for, what it does and what gridsms answers.
//!
//! Security rules:
//! - An account's data (bill, arrears, outages) goes only to a phone bound to it: one of the
//!   account's contact phones in the marketing database, or an active binding in `contacts`
//!   (sms, staff, legacy). Anyone else gets [`Replies::not_bound`] filled with the account they
//!   typed — the same text whether the account exists or not.
//! - DY binds at once only when the marketing database records the caller's number for the
//!   account; otherwise the binding waits for staff (`pending`), and the answer is the same
//!   whether the account exists or not.
//! - No answer to anything that is not a mainland mobile number (service numbers such as
//!   10086/10010/10000, 106… platforms, short codes, alphanumeric senders) nor to our own SIMs.
//! - Answers are rate-limited per phone, per phone for unrecognised text, and overall, with
//!   fixed clock-hour windows persisted in SQLite (`inbound_rate`), so a restart does not reset
//!   them and the check-and-take happens in the same transaction as the enqueue. Actions a
//!   customer asked for (TD, DY) are recorded even when the answer is withheld.
//!
//! The answer, the action and the inbox outcome are committed in one durable transaction; the
//! reply's idempotency key is the inbox id, so handling a message again after a crash never
//! answers twice.

use super::PlannedOutage;
use super::keywords::Command;
use super::replies::{Replies, category_name, fill, yuan};
use crate::config::InboundConfig;
use crate::daemon::state::Shared;
use crate::marketing::{Directory, MarketingError};
use crate::message::Category;
use crate::phone::{self, E164};
use crate::store::contacts::{self, BindingStatus, ContactSource};
use crate::store::inbox::{self, Handled, InboxEntry, InboxState};
use crate::store::{NewMessage, StoreError, outbox};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Most accounts looked at for one phone.
const MAX_ACCOUNTS: usize = 10;
/// Most outages listed in one TZ answer.
const MAX_OUTAGES_LISTED: usize = 3;

/// What handling decided before it is committed.
#[derive(Debug, Default)]
struct Plan {
    reply: Option<String>,
    action: Action,
    account: Option<String>,
    note: Option<String>,
    /// Unrecognised text: also counts against the unknown-text allowance.
    unknown: bool,
}

#[derive(Debug, Default)]
enum Action {
    #[default]
    None,
    OptOut(Option<Category>),
    Bind {
        account: String,
        status: BindingStatus,
    },
}

/// Something outside the store failed while answering.
enum Fault {
    Store(StoreError),
    Marketing(MarketingError),
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        Fault::Store(e)
    }
}

impl From<MarketingError> for Fault {
    fn from(e: MarketingError) -> Self {
        Fault::Marketing(e)
    }
}

/// Why a sender gets no automatic answer, if it does not.
pub fn no_reply_reason(sender: &str, own: &[E164]) -> Option<&'static str> {
    match phone::normalise(sender) {
        Err(_) => Some(
            "no auto-reply: not a mobile number (service number, short code or alphanumeric sender)",
        ),
        Ok(p) if own.contains(&p) => Some("no auto-reply: one of our own SIMs"),
        Ok(_) => None,
    }
}

/// Our SIMs' numbers: configured, and as the modems report them.
pub fn own_numbers(shared: &Shared, config: &InboundConfig) -> Vec<E164> {
    let mut own = config.own_numbers.clone();
    for m in shared.modems() {
        if let Some(n) = m
            .own_number
            .as_deref()
            .and_then(|n| phone::normalise(n).ok())
            && !own.contains(&n)
        {
            own.push(n);
        }
    }
    own
}

/// Start of the clock hour containing `now` (the rate-limit window).
fn hour_window(now: DateTime<Utc>) -> DateTime<Utc> {
    let secs = now.timestamp();
    Utc.timestamp_opt(secs - secs.rem_euclid(3600), 0)
        .single()
        .unwrap_or(now)
}

/// Handle one inbox message: decide, act, answer, record. Store errors are returned (the
/// message stays `received` and is handled again at the next start); everything else ends in
/// an inbox state.
pub async fn handle(shared: &Shared, entry: &InboxEntry) -> Result<Handled, StoreError> {
    let config = shared.config();
    let inbound = &config.inbound;
    let now = shared.clock.now();
    let own = own_numbers(shared, inbound);
    let command = inbound.keywords.parse(&entry.text);
    let finish_only = |state: InboxState, note: &str| Handled {
        state,
        command: Some(command.name().to_owned()),
        account: None,
        reply_id: None,
        note: Some(note.to_owned()),
    };
    let phone = match (
        no_reply_reason(&entry.sender, &own),
        phone::normalise(&entry.sender),
    ) {
        (None, Ok(p)) => p,
        (reason, _) => {
            let h = finish_only(InboxState::Ignored, reason.unwrap_or("no auto-reply"));
            record(shared, entry.id, h.clone(), now).await?;
            return Ok(h);
        }
    };
    let window = hour_window(now);
    // One read for everything local: the allowances and the accounts bound to this phone.
    let (limited, bound) = {
        let (p, key_p, total) = (
            inbound.per_phone_per_hour,
            format!("p:{}", phone.as_str()),
            inbound.total_per_hour,
        );
        let ph = phone.clone();
        shared
            .store
            .call(move |c| {
                let limited = inbox::allowance_used(c, &key_p, window, p)?
                    || inbox::allowance_used(c, "*", window, total)?;
                let bound: Vec<String> = contacts::bindings_of_phone(c, &ph)?
                    .into_iter()
                    .filter(|b| b.status == BindingStatus::Active)
                    .map(|b| b.account)
                    .collect();
                Ok((limited, bound))
            })
            .await?
    };
    let local = Local { bound };
    let plan = if limited && !matches!(command, Command::Unsubscribe { .. }) {
        // A spammer costs us no marketing lookups.
        Plan {
            note: Some("rate limit reached before handling".into()),
            ..Plan::default()
        }
    } else {
        plan(
            shared,
            &local,
            inbound,
            &command,
            &phone,
            now,
            config.dispatch.timezone,
        )
        .await
    };
    commit(shared, inbound, entry, &command, phone, plan, now).await
}

async fn record(
    shared: &Shared,
    id: i64,
    h: Handled,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    shared
        .store
        .call(move |c| inbox::finish(c, id, &h, now).map(|_| ()))
        .await
}

/// What the store knows about the caller: accounts it has an active binding to (any source).
struct Local {
    bound: Vec<String>,
}

/// Decides the answer and the action (reads only).
async fn plan(
    shared: &Shared,
    local: &Local,
    config: &InboundConfig,
    command: &Command,
    phone: &E164,
    now: DateTime<Utc>,
    tz: Tz,
) -> Plan {
    let r = &config.replies;
    let unavailable = |note: String| Plan {
        reply: Some(r.unavailable.clone()),
        note: Some(note),
        ..Plan::default()
    };
    match command {
        Command::Help => Plan {
            reply: Some(r.help.clone()),
            ..Plan::default()
        },
        Command::Unknown => Plan {
            reply: Some(r.help.clone()),
            unknown: true,
            ..Plan::default()
        },
        Command::Unsubscribe { category } => Plan {
            reply: Some(match category {
                None => r.unsubscribed.clone(),
                Some(c) => fill(&r.unsubscribed_category, &[("category", category_name(*c))]),
            }),
            action: Action::OptOut(*category),
            ..Plan::default()
        },
        Command::Subscribe { account: None } => Plan {
            reply: Some(r.subscribe_usage.clone()),
            ..Plan::default()
        },
        Command::Subscribe {
            account: Some(account),
        } => match subscribe(shared, local, phone, account).await {
            Ok(status) => Plan {
                reply: Some(fill(
                    if status == BindingStatus::Active {
                        &r.subscribed
                    } else {
                        &r.subscribe_pending
                    },
                    &[("account", account)],
                )),
                action: Action::Bind {
                    account: account.clone(),
                    status,
                },
                account: Some(account.clone()),
                ..Plan::default()
            },
            Err(Fault::Store(e)) => unavailable(format!("store: {e}")),
            // The marketing database is down: staff decide instead (same answer as ever).
            Err(Fault::Marketing(e)) => Plan {
                reply: Some(fill(&r.subscribe_pending, &[("account", account)])),
                action: Action::Bind {
                    account: account.clone(),
                    status: BindingStatus::Pending,
                },
                account: Some(account.clone()),
                note: Some(format!("marketing: {e}")),
                ..Plan::default()
            },
        },
        Command::Bill { account } | Command::Arrears { account } | Command::Outages { account } => {
            let Some(directory) = shared.directory() else {
                return unavailable("marketing database not configured".into());
            };
            let account = match resolve(local, &directory, r, phone, account.as_deref()).await {
                Ok(Ok(a)) => a,
                Ok(Err(plan)) => return plan,
                Err(Fault::Store(e)) => return unavailable(format!("store: {e}")),
                Err(Fault::Marketing(e)) => return unavailable(format!("marketing: {e}")),
            };
            let answer = match command {
                Command::Bill { .. } => bill(&directory, r, &account).await,
                Command::Arrears { .. } => {
                    arrears(&directory, r, &account, now.with_timezone(&tz).date_naive()).await
                }
                _ => outages(shared, &directory, r, &account, now, tz).await,
            };
            match answer {
                Ok((text, note)) => Plan {
                    reply: Some(text),
                    account: Some(account),
                    note,
                    ..Plan::default()
                },
                Err(e) => Plan {
                    account: Some(account),
                    ..unavailable(format!("marketing: {e}"))
                },
            }
        }
    }
}

/// The account a query is about, once the caller is known to be bound to it; or the plan
/// that answers instead (not bound, no account, several accounts).
async fn resolve(
    local: &Local,
    directory: &Directory,
    r: &Replies,
    phone: &E164,
    typed: Option<&str>,
) -> Result<Result<String, Plan>, Fault> {
    if let Some(account) = typed {
        if is_bound(local, directory, phone, account).await? {
            return Ok(Ok(account.to_owned()));
        }
        // Identical for an unknown account and for someone else's.
        return Ok(Err(Plan {
            reply: Some(fill(&r.not_bound, &[("account", account)])),
            account: Some(account.to_owned()),
            note: Some("not bound to this phone (or no such account)".into()),
            ..Plan::default()
        }));
    }
    let accounts = accounts_of(local, directory, phone).await?;
    match accounts.as_slice() {
        [] => Ok(Err(Plan {
            reply: Some(r.no_account.clone()),
            ..Plan::default()
        })),
        [one] => Ok(Ok(one.clone())),
        many => Ok(Err(Plan {
            reply: Some(fill(
                &r.choose_account,
                &[("accounts", &many.join("、")), ("first", &many[0])],
            )),
            ..Plan::default()
        })),
    }
}

/// True when `phone` may see `account`'s data.
async fn is_bound(
    local: &Local,
    directory: &Directory,
    phone: &E164,
    account: &str,
) -> Result<bool, Fault> {
    if local.bound.iter().any(|a| a == account) {
        return Ok(true);
    }
    Ok(directory
        .account_contacts(account)
        .await?
        .is_some_and(|c| c.phones.contains(phone)))
}

/// Accounts `phone` is bound to: active bindings first, then the marketing records.
async fn accounts_of(
    local: &Local,
    directory: &Directory,
    phone: &E164,
) -> Result<Vec<String>, Fault> {
    let mut out: Vec<String> = Vec::new();
    for a in &local.bound {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    for a in directory.accounts_of_phone(phone).await? {
        if !out.contains(&a.account) {
            out.push(a.account);
        }
    }
    out.dedup();
    out.truncate(MAX_ACCOUNTS);
    Ok(out)
}

/// DY: active when the phone is bound to the account already (a legacy-list binding included:
/// that is the bureau's own record, and DY is what the cut-over message asks those customers
/// to send) or the marketing database records it; pending otherwise.
async fn subscribe(
    shared: &Shared,
    local: &Local,
    phone: &E164,
    account: &str,
) -> Result<BindingStatus, Fault> {
    if local.bound.iter().any(|a| a == account) {
        return Ok(BindingStatus::Active);
    }
    let Some(directory) = shared.directory() else {
        return Ok(BindingStatus::Pending);
    };
    let recorded = directory
        .account_contacts(account)
        .await?
        .is_some_and(|c| c.phones.contains(phone));
    Ok(if recorded {
        BindingStatus::Active
    } else {
        BindingStatus::Pending
    })
}

type Answer = Result<(String, Option<String>), MarketingError>;

async fn bill(directory: &Directory, r: &Replies, account: &str) -> Answer {
    let Some(b) = directory.latest_bill(account).await? else {
        return Ok((fill(&r.no_bill, &[("account", account)]), None));
    };
    let amount = yuan(b.amount_cents);
    let kwh = b.kwh.map(|k| format!("{k}")).unwrap_or_default();
    let kwh_text = if kwh.is_empty() {
        String::new()
    } else {
        format!("，用电{kwh}度")
    };
    let due = b
        .due_date
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let due_text = if due.is_empty() {
        String::new()
    } else {
        format!("，缴费截止日期{due}")
    };
    let name = b.name.clone().unwrap_or_default();
    Ok((
        fill(
            &r.bill,
            &[
                ("account", account),
                ("name", &name),
                ("period", &b.period),
                ("amount", &amount),
                ("kwh", &kwh),
                ("kwh_text", &kwh_text),
                ("due_date", &due),
                ("due_text", &due_text),
            ],
        ),
        None,
    ))
}

async fn arrears(
    directory: &Directory,
    r: &Replies,
    account: &str,
    today: chrono::NaiveDate,
) -> Answer {
    let Some(a) = directory.arrears_of(account, today).await? else {
        return Ok((fill(&r.no_arrears, &[("account", account)]), None));
    };
    let amount = yuan(a.amount_cents);
    let due = a
        .due_date
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let due_text = if due.is_empty() {
        String::new()
    } else {
        format!("，缴费截止日期{due}")
    };
    let fee = a
        .late_fee_cents
        .filter(|f| *f > 0)
        .map(yuan)
        .unwrap_or_default();
    let fee_text = if fee.is_empty() {
        String::new()
    } else {
        format!("（含违约金{fee}元）")
    };
    Ok((
        fill(
            &r.arrears,
            &[
                ("account", account),
                ("amount", &amount),
                ("due_date", &due),
                ("due_text", &due_text),
                ("late_fee", &fee),
                ("late_fee_text", &fee_text),
            ],
        ),
        None,
    ))
}

async fn outages(
    shared: &Shared,
    directory: &Directory,
    r: &Replies,
    account: &str,
    now: DateTime<Utc>,
    tz: Tz,
) -> Answer {
    let feeders: Vec<String> = directory
        .feeders_of(account)
        .await?
        .into_iter()
        .map(|s| s.feeder)
        .collect();
    let Some(source) = shared.inbound().and_then(|i| i.outages()) else {
        return Ok((
            fill(&r.outages_unavailable, &[("account", account)]),
            Some("no outage source configured".into()),
        ));
    };
    let list = if feeders.is_empty() {
        Vec::new()
    } else {
        match tokio::time::timeout(
            std::time::Duration::from_secs(10),
            source.upcoming(&feeders, now),
        )
        .await
        {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                return Ok((
                    fill(&r.outages_unavailable, &[("account", account)]),
                    Some(format!("outages: {e}")),
                ));
            }
            Err(_) => {
                return Ok((
                    fill(&r.outages_unavailable, &[("account", account)]),
                    Some("outages: lookup timed out".into()),
                ));
            }
        }
    };
    if list.is_empty() {
        return Ok((fill(&r.no_outages, &[("account", account)]), None));
    }
    Ok((
        fill(
            &r.outages,
            &[("account", account), ("outages", &describe(&list, tz))],
        ),
        None,
    ))
}

/// `11月30日08:00至12:00（城东线，检修）；…` for at most [`MAX_OUTAGES_LISTED`] outages.
fn describe(list: &[PlannedOutage], tz: Tz) -> String {
    let mut parts: Vec<String> = list
        .iter()
        .take(MAX_OUTAGES_LISTED)
        .map(|o| {
            let (s, e) = (o.start.with_timezone(&tz), o.end.with_timezone(&tz));
            let end = if s.date_naive() == e.date_naive() {
                e.format("%H:%M").to_string()
            } else {
                e.format("%-m月%-d日%H:%M").to_string()
            };
            let why = match &o.reason {
                Some(r) if !r.is_empty() => format!("{}，{r}", o.feeder),
                _ => o.feeder.clone(),
            };
            format!("{}至{end}（{why}）", s.format("%-m月%-d日%H:%M"))
        })
        .collect();
    if list.len() > MAX_OUTAGES_LISTED {
        parts.push(format!("另有{}次", list.len() - MAX_OUTAGES_LISTED));
    }
    parts.join("；")
}

/// Applies the action, takes the allowances, queues the answer and records the outcome, in
/// one durable transaction.
async fn commit(
    shared: &Shared,
    config: &InboundConfig,
    entry: &InboxEntry,
    command: &Command,
    phone: E164,
    plan: Plan,
    now: DateTime<Utc>,
) -> Result<Handled, StoreError> {
    let window = hour_window(now);
    let (per_phone, per_unknown, total) = (
        config.per_phone_per_hour,
        config.unknown_per_phone_per_hour,
        config.total_per_hour,
    );
    let id = entry.id;
    let modem = entry.modem.clone();
    let command_name = command.name().to_owned();
    let masked = phone.mask();
    let handled = shared
        .store
        .call_durable(move |conn| {
            match &plan.action {
                Action::None => {}
                Action::OptOut(category) => {
                    contacts::opt_out(conn, &phone, *category, "sms", now)?;
                }
                Action::Bind { account, status } => {
                    // A legacy binding retires at the cut-over: DY makes an own one beside it.
                    let existing = contacts::bindings_of_phone(conn, &phone)?;
                    let active = existing.iter().any(|b| {
                        b.account == *account
                            && b.status == BindingStatus::Active
                            && b.source != ContactSource::Legacy
                    });
                    if !active {
                        contacts::upsert_binding(
                            conn,
                            &phone,
                            account,
                            ContactSource::Sms,
                            *status,
                            None,
                            now,
                        )?;
                    }
                    if *status == BindingStatus::Active {
                        // Asking to subscribe withdraws an earlier TD.
                        contacts::opt_in(conn, &phone, None)?;
                    }
                }
            }
            let mut reply_id = None;
            let mut note = plan.note.clone();
            if let Some(text) = &plan.reply {
                let key_p = format!("p:{}", phone.as_str());
                let key_u = format!("u:{}", phone.as_str());
                let refused = inbox::allowance_used(conn, &key_p, window, per_phone)?
                    || inbox::allowance_used(conn, "*", window, total)?
                    || (plan.unknown && inbox::allowance_used(conn, &key_u, window, per_unknown)?);
                if refused {
                    let why = "rate limit: no answer sent";
                    note = Some(note.map_or(why.to_owned(), |n| format!("{n}; {why}")));
                } else {
                    inbox::take_allowance(conn, &key_p, window, per_phone)?;
                    inbox::take_allowance(conn, "*", window, total)?;
                    if plan.unknown {
                        inbox::take_allowance(conn, &key_u, window, per_unknown)?;
                    }
                    let msg = NewMessage {
                        idempotency_key: Some(format!("inbox:{id}")),
                        origin: Some("inbound".into()),
                        account: plan.account.clone(),
                        prefer_modem: Some(modem.clone()),
                        ..NewMessage::new(phone.clone(), text.clone(), Category::Reply)
                    };
                    let out = outbox::enqueue_bulk(conn, &[msg], now)?;
                    reply_id = out.first().map(|o| o.id());
                }
            }
            let state = match (&plan.reply, reply_id) {
                (_, Some(_)) => InboxState::Replied,
                (Some(_), None) => InboxState::RateLimited,
                (None, None) if matches!(plan.action, Action::None) => InboxState::RateLimited,
                (None, None) => InboxState::Handled,
            };
            let h = Handled {
                state,
                command: Some(command_name),
                account: plan.account.clone(),
                reply_id,
                note,
            };
            inbox::finish(conn, id, &h, now)?;
            Ok(h)
        })
        .await?;
    if handled.reply_id.is_some() {
        shared.wake.notify_one();
    }
    tracing::info!(
        inbox = id,
        from = %masked,
        command = handled.command.as_deref().unwrap_or("?"),
        state = handled.state.as_str(),
        "inbound SMS handled"
    );
    Ok(handled)
}
