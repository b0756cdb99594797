//! Planned-outage notices: the marketing poll, the 95598 desk's manual outages (API and CLI)
//! and the day-before reminder all go through [`OutageDesk`].
//!
//! ```text
//! outages query (:since) ─┐                      customers_on_feeder / customers_in_area (stream)
//! POST /api/v1/outages  ──┼─> store::outages ─> announce ─> + active local bindings of those accounts
//! gridsms outage (API) ───┘     (record)                    − opt-outs (outage) − already told
//!                                                           ─> outbox (category outage, priority 0,
//!                                                              expires at the outage start)
//! ```
//!
//! Invariants:
//! - Each batch of notices is committed in one durable store call together with its rows in
//!   `outage_notices`; that table is the dedup set (one notice per outage, version, kind and
//!   phone), so memory holds one batch of customers, never a whole feeder.
//! - Change and cancellation notices go to exactly the phones recorded as told (whose planned
//!   notice was not cancelled, expired or failed); queued notices of the old version are
//!   cancelled first, and a phone whose notice never left gets the new planned notice instead
//!   of a "change" of something it never heard.
//! - Every notice expires at the outage start: a warning after the lights went out is noise.
//! - Opt-outs (category outage or everything) are checked in the same transaction that
//!   enqueues, so an opt-out committed before a batch is honoured by it.

use super::directory::{Audience, Directory, MarketingError};
use super::source::{Row, Value};
use crate::clock::Clock;
use crate::message::Category;
use crate::phone::E164;
use crate::store::outages::{self as db, NoticeRecord, Outage, OutageSpec, OutageStatus, Upserted};
use crate::store::{EnqueueOutcome, NewMessage, Store, StoreError, contacts, outbox};
use crate::templates::{NoticeKind, Templates, Vars};
use chrono::{DateTime, Duration as Days, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Customers committed per store call (one transaction, one fsync).
pub const BATCH: usize = 500;
/// Rows of the `outages` query read per poll; the rest wait for the next poll.
pub const MAX_POLL_ROWS: usize = 5_000;
/// Oldest watermark: the first poll reads every outage the query returns (past ones are
/// recorded but not announced).
const EPOCH_SINCE: &str = "1970-01-01 00:00:00";

#[derive(Debug, thiserror::Error)]
pub enum OutageError {
    #[error("{0}")]
    Marketing(#[from] MarketingError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("outage {0} not found")]
    NotFound(i64),
}

/// What one announcement (or follow-up) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub outage_id: i64,
    /// Phones a notice was queued for.
    pub recipients: u64,
    /// Rows or phones left out, by reason (`no_phone`, `invalid_phone`, `bad_field`,
    /// `opted_out`, `duplicate`).
    pub skipped: BTreeMap<String, u64>,
}

impl Report {
    fn skip(&mut self, label: &str) {
        *self.skipped.entry(label.to_owned()).or_default() += 1;
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// What a poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollReport {
    pub rows: u64,
    pub new: u64,
    pub changed: u64,
    pub cancelled: u64,
    /// Notices queued by this poll.
    pub queued: u64,
    pub skipped: BTreeMap<String, u64>,
}

/// One phone to tell.
#[derive(Debug, Clone)]
struct Candidate {
    phone: E164,
    account: Option<String>,
    name: Option<String>,
    station: Option<String>,
}

/// Announces outages. Cheap to clone.
#[derive(Clone)]
pub struct OutageDesk {
    store: Store,
    directory: Directory,
    clock: Arc<dyn Clock>,
}

impl OutageDesk {
    pub fn new(store: Store, directory: Directory, clock: Arc<dyn Clock>) -> OutageDesk {
        OutageDesk {
            store,
            directory,
            clock,
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    fn tz(&self) -> Tz {
        self.directory.timezone()
    }

    /// Record a manual outage (committed); [`OutageDesk::announce`] then sends its notices.
    pub async fn record_manual(
        &self,
        spec: OutageSpec,
        created_by: &str,
    ) -> Result<i64, OutageError> {
        let now = self.clock.now();
        let by = created_by.to_owned();
        let id = self
            .store
            .call_durable(move |c| db::insert_manual(c, &spec, &by, now))
            .await?;
        tracing::info!(outage = id, by = created_by, "manual outage recorded");
        Ok(id)
    }

    /// Record a manual outage and announce it. Returns after every notice is committed.
    pub async fn create_manual(
        &self,
        spec: OutageSpec,
        created_by: &str,
        templates: &Templates,
    ) -> Result<Report, OutageError> {
        let id = self.record_manual(spec, created_by).await?;
        self.announce(id, templates).await
    }

    pub async fn list(&self, limit: u32) -> Result<Vec<Outage>, OutageError> {
        Ok(self.store.call(move |c| db::list(c, limit)).await?)
    }

    /// Notices recorded per kind.
    pub async fn notice_counts(&self, id: i64) -> Result<Vec<(String, i64)>, OutageError> {
        Ok(self.store.call(move |c| db::notice_counts(c, id)).await?)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn get(&self, id: i64) -> Result<Option<Outage>, OutageError> {
        Ok(self.store.call(move |c| db::get(c, id)).await?)
    }

    /// Planned notices to every customer on the feeder or in the areas, plus the active local
    /// bindings of their accounts, minus opt-outs and phones already told.
    pub async fn announce(&self, id: i64, templates: &Templates) -> Result<Report, OutageError> {
        let outage = self.get(id).await?.ok_or(OutageError::NotFound(id))?;
        let mut report = Report {
            outage_id: id,
            ..Report::default()
        };
        if outage.status == OutageStatus::Cancelled || outage.start <= self.clock.now() {
            return Ok(report);
        }
        let templates = Arc::new(templates.clone());
        let mut audiences: Vec<Audience> = Vec::new();
        if let Some(f) = &outage.feeder {
            audiences.push(Audience::Feeder(f.clone()));
        }
        audiences.extend(outage.areas.iter().cloned().map(Audience::Area));
        let mut batch: Vec<Candidate> = Vec::with_capacity(BATCH);
        for audience in &audiences {
            let mut customers = self.directory.customers(audience)?;
            while let Some(item) = customers.next().await {
                match item? {
                    Ok(c) => batch.push(Candidate {
                        phone: c.phone,
                        account: Some(c.account),
                        name: c.name,
                        station: c.station,
                    }),
                    Err(skip) => {
                        tracing::debug!(outage = id, reason = %skip, "customer row skipped");
                        report.skip(skip.label());
                    }
                }
                if batch.len() >= BATCH {
                    self.send(
                        &outage,
                        Send::Planned,
                        std::mem::take(&mut batch),
                        &templates,
                        &mut report,
                    )
                    .await?;
                }
            }
        }
        self.send(&outage, Send::Planned, batch, &templates, &mut report)
            .await?;
        let now = self.clock.now();
        self.store
            .call(move |c| db::mark_announced(c, id, now))
            .await?;
        tracing::info!(
            outage = id,
            recipients = report.recipients,
            skipped = report.skipped_total(),
            "outage announced"
        );
        Ok(report)
    }

    /// Cancel an outage and tell those who were told. `Ok(None)`: no such outage.
    pub async fn cancel(
        &self,
        id: i64,
        templates: &Templates,
    ) -> Result<Option<Report>, OutageError> {
        let now = self.clock.now();
        match self
            .store
            .call_durable(move |c| db::cancel(c, id, now))
            .await?
        {
            None => Ok(None),
            // Cancelled already: the notices went with the first cancellation.
            Some(false) => Ok(Some(Report {
                outage_id: id,
                ..Report::default()
            })),
            Some(true) => Ok(Some(
                self.follow_up(id, FollowUp::Cancelled, templates).await?,
            )),
        }
    }

    /// After a changed time or a cancellation: cancel what of the old version is still queued,
    /// then notify the phones that were told.
    async fn follow_up(
        &self,
        id: i64,
        what: FollowUp,
        templates: &Templates,
    ) -> Result<Report, OutageError> {
        let outage = self.get(id).await?.ok_or(OutageError::NotFound(id))?;
        let mut report = Report {
            outage_id: id,
            ..Report::default()
        };
        let now = self.clock.now();
        let batch_id = batch_of(id);
        let version = outage.version;
        // Queued notices of older versions (and, on cancellation, of every version) are void.
        self.store
            .call(move |c| {
                let ids: Vec<i64> = c
                    .prepare_cached(
                        // Through the batch's id ranges: messages.batch_id has no index.
                        "SELECT m.id FROM message_batches b
                         JOIN messages m ON m.id BETWEEN b.first_id AND b.last_id
                         WHERE b.batch_id = ?1 AND m.batch_id = ?1 AND m.state = 'queued'
                         AND (?2 OR m.idempotency_key NOT LIKE ?3)",
                    )?
                    .query_map(
                        rusqlite::params![
                            batch_id,
                            what == FollowUp::Cancelled,
                            format!("outage:{id}:v{version}:%")
                        ],
                        |r| r.get(0),
                    )?
                    .collect::<Result<_, _>>()?;
                outbox::cancel(c, &outbox::CancelTarget::Ids(ids), now)
            })
            .await?;
        if outage.start <= now {
            return Ok(report);
        }
        let templates = Arc::new(templates.clone());
        let mut after = String::new();
        loop {
            let page = {
                let after = after.clone();
                self.store
                    .call(move |c| db::told_page(c, id, &after, BATCH as u32))
                    .await?
            };
            let Some(last) = page.last() else { break };
            after = last.phone.clone();
            let (mut reached, mut unreached) = (Vec::new(), Vec::new());
            for t in page {
                let Ok(phone) = t.phone.parse::<E164>() else {
                    report.skip("invalid_phone");
                    continue;
                };
                let c = Candidate {
                    phone,
                    account: t.account,
                    name: t.name,
                    station: t.station,
                };
                if t.reached {
                    reached.push(c);
                } else {
                    unreached.push(c);
                }
            }
            match what {
                FollowUp::Changed => {
                    self.send(&outage, Send::Changed, reached, &templates, &mut report)
                        .await?;
                    // Never heard the old time: gets the planned notice with the new one.
                    self.send(&outage, Send::Replanned, unreached, &templates, &mut report)
                        .await?;
                }
                FollowUp::Cancelled => {
                    self.send(&outage, Send::Cancelled, reached, &templates, &mut report)
                        .await?;
                }
            }
        }
        tracing::info!(
            outage = id,
            ?what,
            recipients = report.recipients,
            "outage follow-up sent"
        );
        Ok(report)
    }

    /// Finish announcements a stop or an error interrupted. Returns the notices queued.
    pub async fn resume(&self, templates: &Templates) -> Result<u64, OutageError> {
        let now = self.clock.now();
        let mut queued = 0;
        for id in self.store.call(move |c| db::unannounced(c, now)).await? {
            queued += self.announce(id, templates).await?.recipients;
        }
        Ok(queued)
    }

    /// Day-before reminders that are due at `now`: for each upcoming outage whose reminder time
    /// (`day_before_at` local, the day before the start) has come, the phones told on an
    /// earlier day than that get a reminder. Returns the notices queued.
    pub async fn send_reminders(
        &self,
        day_before_at: NaiveTime,
        templates: &Templates,
    ) -> Result<u64, OutageError> {
        let now = self.clock.now();
        let tz = self.tz();
        let upcoming = self
            .store
            .call(move |c| db::awaiting_reminder(c, now))
            .await?;
        let templates = Arc::new(templates.clone());
        let mut queued = 0;
        for outage in upcoming {
            let start_local = outage.start.with_timezone(&tz).naive_local();
            let remind_local = (start_local.date() - Days::days(1)).and_time(day_before_at);
            let Some(remind_at) = local_to_utc(tz, remind_local) else {
                continue;
            };
            if now < remind_at {
                continue;
            }
            let mut report = Report {
                outage_id: outage.id,
                ..Report::default()
            };
            let mut after = String::new();
            loop {
                let page = {
                    let (after, id) = (after.clone(), outage.id);
                    self.store
                        .call(move |c| db::told_page(c, id, &after, BATCH as u32))
                        .await?
                };
                let Some(last) = page.last() else { break };
                after = last.phone.clone();
                let due: Vec<Candidate> = page
                    .into_iter()
                    // Told the same day: a second text within hours only annoys.
                    .filter(|t| {
                        t.reached && t.at.with_timezone(&tz).date_naive() < remind_local.date()
                    })
                    .filter_map(|t| {
                        Some(Candidate {
                            phone: t.phone.parse().ok()?,
                            account: t.account,
                            name: t.name,
                            station: t.station,
                        })
                    })
                    .collect();
                self.send(&outage, Send::Reminder, due, &templates, &mut report)
                    .await?;
            }
            let id = outage.id;
            self.store
                .call(move |c| db::mark_reminded(c, id, now))
                .await?;
            queued += report.recipients;
            if report.recipients > 0 {
                tracing::info!(
                    outage = id,
                    recipients = report.recipients,
                    "outage reminders queued"
                );
            }
        }
        Ok(queued)
    }

    /// One poll of the `outages` query: new outages announced, changed times and cancellations
    /// followed up. The watermark is the latest `updated_at` recorded.
    pub async fn poll(&self, templates: &Templates) -> Result<PollReport, OutageError> {
        let tz = self.tz();
        let since = self
            .store
            .call(|c| db::poll_watermark(c))
            .await?
            .unwrap_or_else(|| EPOCH_SINCE.to_owned());
        let since_value = NaiveDateTime::parse_from_str(&since, "%Y-%m-%d %H:%M:%S")
            .map(Value::DateTime)
            .unwrap_or(Value::Text(since));
        let mut rows = self
            .directory
            .stream("outages", &[("since", since_value)])?;
        let mut report = PollReport::default();
        // Read first, act after: announcing streams customers from the same database, and a
        // poll's rows are few (outages, not customers).
        let mut parsed = Vec::new();
        while let Some(row) = rows.next().await {
            let row = row.map_err(MarketingError::from)?;
            report.rows += 1;
            match polled_outage(&row, tz) {
                Ok(p) => parsed.push(p),
                Err(label) => {
                    tracing::warn!(reason = label, "outage row skipped");
                    *report.skipped.entry(label.to_owned()).or_default() += 1;
                }
            }
            if parsed.len() >= MAX_POLL_ROWS {
                break;
            }
        }
        drop(rows);
        report.queued += self.resume(templates).await?;
        for p in parsed {
            let now = self.clock.now();
            let upserted = {
                let p = p.clone();
                self.store
                    .call_durable(move |c| {
                        db::upsert_polled(
                            c,
                            &p.external_id,
                            &p.spec,
                            p.cancelled,
                            &p.updated_at,
                            now,
                        )
                    })
                    .await?
            };
            let r = match upserted {
                Upserted::New(id) => {
                    report.new += 1;
                    self.announce(id, templates).await?
                }
                Upserted::TimeChanged(id) => {
                    report.changed += 1;
                    self.follow_up(id, FollowUp::Changed, templates).await?
                }
                Upserted::Cancelled(id) => {
                    report.cancelled += 1;
                    self.follow_up(id, FollowUp::Cancelled, templates).await?
                }
                Upserted::Unchanged(_) => continue,
            };
            report.queued += r.recipients;
            for (k, n) in r.skipped {
                *report.skipped.entry(k).or_default() += n;
            }
        }
        Ok(report)
    }

    /// Render, dedup, check opt-outs and enqueue one batch, all in one durable store call.
    async fn send(
        &self,
        outage: &Outage,
        what: Send,
        batch: Vec<Candidate>,
        templates: &Arc<Templates>,
        report: &mut Report,
    ) -> Result<(), OutageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let outage = outage.clone();
        let templates = templates.clone();
        let tz = self.tz();
        let origin = match outage.source {
            db::OutageSource::Marketing => "outages".to_owned(),
            db::OutageSource::Manual => {
                format!(
                    "outage:{}",
                    outage.created_by.as_deref().unwrap_or("manual")
                )
            }
        };
        let done = self
            .store
            .call_durable(move |c| {
                let mut batch = batch;
                if what == Send::Planned {
                    // Phones the customers bound themselves (SMS, staff, legacy lists).
                    let mut extra = Vec::new();
                    let mut accounts: Vec<&str> =
                        batch.iter().filter_map(|c| c.account.as_deref()).collect();
                    accounts.sort_unstable();
                    accounts.dedup();
                    for account in accounts {
                        let base = batch.iter().find(|c| c.account.as_deref() == Some(account));
                        for phone in contacts::active_phones_of_account(c, account)? {
                            extra.push(Candidate {
                                phone,
                                account: Some(account.to_owned()),
                                name: base.and_then(|b| b.name.clone()),
                                station: base.and_then(|b| b.station.clone()),
                            });
                        }
                    }
                    batch.extend(extra);
                }
                enqueue_batch(c, &outage, what, batch, &templates, tz, &origin, now)
            })
            .await?;
        report.recipients += done.queued;
        for (label, n) in done.skipped {
            *report.skipped.entry(label.to_owned()).or_default() += n;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowUp {
    Changed,
    Cancelled,
}

/// Which notice a batch gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Send {
    Planned,
    /// The planned notice again, for the current version (the phone never heard the old one).
    Replanned,
    Reminder,
    Changed,
    Cancelled,
}

impl Send {
    fn record(self) -> NoticeRecord {
        match self {
            Send::Planned | Send::Replanned => NoticeRecord::Planned,
            Send::Reminder => NoticeRecord::Reminder,
            Send::Changed => NoticeRecord::Changed,
            Send::Cancelled => NoticeRecord::Cancelled,
        }
    }

    fn kind(self) -> NoticeKind {
        match self {
            Send::Planned | Send::Replanned => NoticeKind::OutagePlanned,
            Send::Reminder => NoticeKind::OutageReminder,
            Send::Changed => NoticeKind::OutageChanged,
            Send::Cancelled => NoticeKind::OutageCancelled,
        }
    }
}

#[derive(Default)]
struct BatchDone {
    queued: u64,
    skipped: BTreeMap<&'static str, u64>,
}

/// The outbox batch of an outage (every notice of every version).
pub fn batch_of(outage_id: i64) -> String {
    format!("outage:{outage_id}")
}

#[allow(clippy::too_many_arguments)]
fn enqueue_batch(
    conn: &mut rusqlite::Connection,
    outage: &Outage,
    what: Send,
    batch: Vec<Candidate>,
    templates: &Templates,
    tz: Tz,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<BatchDone, StoreError> {
    let mut done = BatchDone::default();
    let record = what.record();
    let mut msgs = Vec::new();
    let mut phones = Vec::new();
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
    let mut opted_out = std::collections::HashSet::new();
    for c in batch {
        if opted_out.contains(c.phone.as_str()) {
            *done.skipped.entry("duplicate").or_default() += 1;
            continue;
        }
        if contacts::is_opted_out(conn, &c.phone, Category::Outage)? {
            *done.skipped.entry("opted_out").or_default() += 1;
            opted_out.insert(c.phone.as_str().to_owned());
            continue;
        }
        let fresh = db::record_notice(
            conn,
            outage.id,
            c.phone.as_str(),
            record,
            outage.version,
            c.account.as_deref(),
            c.name.as_deref(),
            now,
        )?;
        if !fresh {
            // The same phone on two accounts, or told by an earlier poll.
            *done.skipped.entry("duplicate").or_default() += 1;
            continue;
        }
        let vars = Vars {
            name: c.name.clone(),
            account: c.account.clone(),
            feeder: outage.feeder.clone(),
            area: outage.area_text.clone(),
            start: Some(local(outage.start)),
            end: Some(local(outage.end)),
            reason: outage.reason.clone(),
            station: c.station.clone().or(outage.station.clone()),
            ..Vars::default()
        };
        let mut m = NewMessage::new(
            c.phone.clone(),
            templates.render(what.kind(), &vars),
            Category::Outage,
        );
        m.expires_at = Some(outage.start);
        m.idempotency_key = Some(format!(
            "outage:{}:v{}:{}:{}",
            outage.id,
            outage.version,
            record.as_str(),
            c.phone.as_str()
        ));
        m.origin = Some(origin.to_owned());
        m.batch_id = Some(batch_of(outage.id));
        m.account = c.account;
        m.station = c.station.or(outage.station.clone());
        phones.push(c.phone.as_str().to_owned());
        msgs.push(m);
    }
    let outcomes = outbox::enqueue_bulk(conn, &msgs, now)?;
    for (phone, outcome) in phones.iter().zip(outcomes) {
        let id = match outcome {
            EnqueueOutcome::Queued(id) => {
                done.queued += 1;
                id
            }
            EnqueueOutcome::Duplicate(id) => id,
        };
        db::set_notice_message(conn, outage.id, phone, record, outage.version, id)?;
    }
    Ok(done)
}

fn local_to_utc(tz: Tz, t: NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    tz.from_local_datetime(&t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// One row of the `outages` query, read.
#[derive(Debug, Clone)]
struct Polled {
    external_id: String,
    spec: OutageSpec,
    cancelled: bool,
    /// Normalised `YYYY-MM-DD HH:MM:SS`, local: sorts as text, so `max()` is the watermark.
    updated_at: String,
}

/// Words marketing systems use for a cancelled outage.
fn is_cancelled(status: &str) -> bool {
    let s = status.trim().to_ascii_lowercase();
    matches!(
        s.as_str(),
        "cancelled" | "canceled" | "cancel" | "c" | "取消" | "已取消" | "撤销"
    )
}

/// Area codes as a list: `"T001,T002"`, `"T001; T002"`, `"T001 T002"`, `"T001、T002"`.
pub fn split_areas(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in text.split([',', ';', ' ', '，', '；', '、', '\n', '\t']) {
        let a = a.trim();
        if !a.is_empty() && !out.iter().any(|x| x == a) {
            out.push(a.to_owned());
        }
    }
    out
}

fn polled_outage(row: &Row, tz: Tz) -> Result<Polled, &'static str> {
    let text = |c: &str| row.text(c).ok().flatten();
    let external_id = row
        .text("outage_id")
        .map_err(|_| "bad_field")?
        .ok_or("no_outage_id")?;
    let start = row
        .instant("start", &tz)
        .map_err(|_| "bad_field")?
        .ok_or("no_start")?;
    let end = row
        .instant("end", &tz)
        .map_err(|_| "bad_field")?
        .ok_or("no_end")?;
    if end <= start {
        return Err("end_before_start");
    }
    let updated = row
        .instant("updated_at", &tz)
        .map_err(|_| "bad_field")?
        .ok_or("no_updated_at")?;
    let feeder = text("feeder");
    let areas = text("areas").map(|a| split_areas(&a)).unwrap_or_default();
    if feeder.is_none() && areas.is_empty() {
        return Err("no_feeder_or_areas");
    }
    Ok(Polled {
        external_id,
        spec: OutageSpec {
            feeder,
            areas,
            area_text: text("area"),
            station: text("station"),
            start,
            end,
            reason: text("reason"),
        },
        cancelled: text("status").is_some_and(|s| is_cancelled(&s)),
        updated_at: updated
            .with_timezone(&tz)
            .naive_local()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    })
}

/// The outage job of the marketing runner: resumes interrupted announcements, polls the
/// `outages` query when it is configured, and sends the day-before reminders that are due.
pub struct OutagesJob;

impl crate::marketing::jobs::Job for OutagesJob {
    fn run<'a>(
        &'a self,
        ctx: &'a crate::marketing::jobs::JobContext,
        stats: &'a mut crate::store::jobs::RunStats,
    ) -> super::source::BoxFuture<'a, Result<(), crate::marketing::jobs::JobError>> {
        Box::pin(async move {
            let desk = OutageDesk::new(
                ctx.shared.store.clone(),
                ctx.directory.clone(),
                ctx.shared.clock.clone(),
            );
            let templates = &ctx.config.templates;
            let to_job = |e: OutageError| match e {
                OutageError::Marketing(m) => crate::marketing::jobs::JobError::Marketing(m),
                OutageError::Store(s) => crate::marketing::jobs::JobError::Store(s),
                OutageError::NotFound(id) => {
                    crate::marketing::jobs::JobError::Config(format!("outage {id} vanished"))
                }
            };
            let report = if desk.directory.has("outages") {
                desk.poll(templates).await.map_err(to_job)?
            } else {
                PollReport {
                    queued: desk.resume(templates).await.map_err(to_job)?,
                    ..PollReport::default()
                }
            };
            stats.rows_read += report.rows;
            stats.queued += report.queued;
            for (k, n) in &report.skipped {
                // Dedup hits are how the feature works, not a data problem.
                if k == "duplicate" {
                    stats.duplicates += n;
                } else {
                    stats.skip_n(k, *n);
                }
            }
            let reminded = desk
                .send_reminders(ctx.config.outages.day_before_at, templates)
                .await
                .map_err(to_job)?;
            stats.queued += reminded;
            if report.queued + reminded > 0 {
                ctx.shared.wake.notify_one();
            }
            Ok(())
        })
    }
}

/// The outage job as the runner lists it, when the config can use it: `[outages] enabled`
/// and a customer query to announce with.
pub fn job_spec(config: &crate::config::Config) -> Option<crate::marketing::jobs::JobSpec> {
    let m = config.marketing.as_ref()?;
    let q = &m.parsed;
    if q.get("customers_on_feeder").is_none() && q.get("customers_in_area").is_none() {
        return None;
    }
    Some(crate::marketing::jobs::JobSpec {
        name: "outages",
        enabled: config.outages.enabled,
        schedule: config.outages.schedule.clone(),
        queries: if q.get("outages").is_some() {
            &["outages"]
        } else {
            &[]
        },
        job: Arc::new(OutagesJob),
    })
}

/// Gives the API its outage desk when `[marketing]` is configured (at start; a changed
/// `[marketing] url` reaches the API at the next restart, the poll at once).
pub fn attach(shared: &Arc<crate::daemon::state::Shared>) {
    let config = shared.config();
    let Some(m) = &config.marketing else { return };
    match super::source::open(&m.source_config()) {
        Ok(source) => {
            let directory = Directory::new(source, m.parsed.clone(), config.dispatch.timezone);
            let _ = shared.outages.set(OutageDesk::new(
                shared.store.clone(),
                directory,
                shared.clock.clone(),
            ));
        }
        Err(error) => tracing::error!(%error, "outage notices unavailable"),
    }
}

/// TZ's view of the outage store: planned outages on the caller's feeders.
pub struct StoredOutages(pub Store);

impl crate::inbound::UpcomingOutages for StoredOutages {
    fn upcoming<'a>(
        &'a self,
        feeders: &'a [String],
        now: DateTime<Utc>,
    ) -> super::source::BoxFuture<'a, Result<Vec<crate::inbound::PlannedOutage>, String>> {
        let feeders = feeders.to_vec();
        Box::pin(async move {
            let found = self
                .0
                .call(move |c| db::upcoming_on_feeders(c, &feeders, now))
                .await
                .map_err(|e| e.to_string())?;
            Ok(found
                .into_iter()
                .filter_map(|o| {
                    Some(crate::inbound::PlannedOutage {
                        feeder: o.feeder?,
                        start: o.start,
                        end: o.end,
                        reason: o.reason,
                    })
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod stored_outages_tests {
    use super::*;
    use crate::inbound::UpcomingOutages;
    use chrono::TimeZone;

    #[tokio::test]
    async fn tz_sees_upcoming_outages_on_its_feeders_only() {
        let store = Store::open_in_memory().await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap();
        let hour = Days::hours(1);
        let spec = |feeder: &str, from: i64, to: i64| OutageSpec {
            feeder: Some(feeder.to_owned()),
            areas: Vec::new(),
            area_text: None,
            station: None,
            start: now + hour * from as i32,
            end: now + hour * to as i32,
            reason: Some("线路检修".to_owned()),
        };
        let specs = [
            spec("F1", 30, 34), // tomorrow: told
            spec("F1", 6, 8),   // sooner: told first
            spec("F1", -5, -1), // over: not told
            spec("F2", 10, 12), // another feeder: not told
            spec("F1", 20, 22), // cancelled: not told
        ];
        let ids = store
            .call(move |c| {
                let mut ids = Vec::new();
                for s in &specs {
                    ids.push(db::insert_manual(c, s, "desk", now)?);
                }
                db::cancel(c, ids[4], now)?;
                Ok(ids)
            })
            .await
            .unwrap();
        assert_eq!(ids.len(), 5);
        let source = StoredOutages(store);
        let found = source.upcoming(&["F1".to_owned()], now).await.unwrap();
        let starts: Vec<_> = found.iter().map(|o| o.start).collect();
        assert_eq!(starts, vec![now + hour * 6, now + hour * 30]);
        assert!(found.iter().all(|o| o.feeder == "F1"));
        assert!(
            source
                .upcoming(&["F9".to_owned()], now)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
