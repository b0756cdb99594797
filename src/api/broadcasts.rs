//! `POST /api/v1/broadcasts`: a public notice (tariff change, safety advice) to the customers
//! of some stations, feeders and areas, or (admin) of the whole bureau.
//!
//! Customers stream from the marketing database (`Directory::customers`); the only thing held
//! for the whole run is the set of phones already seen (a customer listed under two feeders
//! gets one message). Messages are queued in chunks of [`CHUNK`], each chunk in one store call
//! that also drops numbers opted out of broadcasts; the audit entry commits with the last
//! chunk. Every message carries the broadcast id as its batch id (so
//! `POST /api/v1/sends/{id}/cancel` stops it) and an idempotency key `{id}#{phone}`, so a
//! request retried with the same `idempotency_key` queues nothing twice, even after a failure
//! half-way. Quiet hours apply (category `broadcast`, the dispatcher holds them); the
//! unsubscribe hint is appended to the text. A dry run walks the same audience and answers the
//! same numbers without queueing (and without an audit entry: nothing was done).

use super::messages::{batch_id, send_window, store_error};
use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::marketing::{Audience, Customer, MarketingError};
use crate::message::Category;
use crate::phone::E164;
use crate::store::audit::{self, AuditAction, AuditEntry, AuditResult};
use crate::store::{NewMessage, contacts, outbox};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Messages per store call.
pub const CHUNK: usize = 500;
/// Codes in one audience list.
pub const MAX_CODES: usize = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceSpec {
    #[serde(default)]
    pub stations: Vec<String>,
    #[serde(default)]
    pub feeders: Vec<String>,
    #[serde(default)]
    pub areas: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBroadcast {
    pub text: String,
    #[serde(default)]
    pub audience: AudienceSpec,
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BroadcastSummary {
    /// Also the batch id of its messages.
    pub broadcast_id: String,
    pub dry_run: bool,
    /// Numbers queued (or, in a dry run, that would be).
    pub recipients: u64,
    /// Segments of the text (with the unsubscribe hint) × recipients.
    pub segments: u64,
    /// Yuan, two decimals: segments × the average price per segment of the enabled SIMs.
    pub estimated_cost: String,
    /// Numbers left out because they opted out of broadcasts.
    pub opted_out: u64,
    /// Customer rows left out, by reason (no_phone, invalid_phone, bad_field, outside_scope).
    pub skipped: BTreeMap<String, u64>,
    /// The text as customers receive it.
    pub text: String,
}

/// The broadcast template until the templates module lands: the text and the unsubscribe hint.
/// (Replace with `Templates::render(NoticeKind::Broadcast, …)` at merge.)
/// The broadcast as sent: signature, the staff's text, the unsubscribe hint (`[templates]`).
fn render_broadcast(shared: &Shared, text: &str) -> String {
    let vars = crate::templates::Vars {
        text: Some(text.trim().to_owned()),
        ..Default::default()
    };
    shared
        .config()
        .templates
        .render(crate::templates::NoticeKind::Broadcast, &vars)
}

/// Average price per segment of the enabled modems that have one, in 0.0001-yuan units.
fn average_price_units(shared: &Shared) -> i64 {
    let config = shared.config();
    let live = shared.modems();
    let prices: Vec<i64> = config
        .enabled_modems()
        .filter_map(|m| crate::reports::price_of_modem(&config, &live, &m.name))
        .collect();
    if prices.is_empty() {
        0
    } else {
        prices.iter().sum::<i64>() / prices.len() as i64
    }
}

fn check_codes(field: &str, codes: &[String]) -> Result<(), ApiError> {
    if codes.len() > MAX_CODES {
        return Err(ApiError::bad_field(
            field,
            format!("more than {MAX_CODES} codes"),
        ));
    }
    for (i, c) in codes.iter().enumerate() {
        if c.trim().is_empty() || c.chars().count() > 64 {
            return Err(ApiError::bad_field(format!("{field}[{i}]"), "not a code"));
        }
    }
    Ok(())
}

/// Pending messages and counters of one run.
struct Run {
    seen: HashSet<E164>,
    pending: Vec<NewMessage>,
    recipients: u64,
    opted_out: u64,
    skipped: BTreeMap<String, u64>,
}

pub async fn create(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    body: Result<Json<CreateBroadcast>, JsonRejection>,
) -> Result<(StatusCode, Json<BroadcastSummary>), ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_field("body", e.body_text()))?;
    let a = &req.audience;
    let target = audience_label(a);
    super::scope::require_audited(
        &shared,
        &caller,
        Scope::Broadcast,
        AuditAction::Broadcast,
        Some(target.clone()),
    )
    .await?;
    if req.text.trim().is_empty() {
        return Err(ApiError::bad_field("text", "is empty"));
    }
    let text = render_broadcast(&shared, &req.text);
    let preview =
        crate::pdu::preview(&text).map_err(|e| ApiError::bad_field("text", e.to_string()))?;
    check_codes("audience.stations", &a.stations)?;
    check_codes("audience.feeders", &a.feeders)?;
    check_codes("audience.areas", &a.areas)?;
    let now = shared.clock.now();
    let (not_before, expires_at) = send_window(&req.not_before, &req.expires_at, now)?;
    let directory = shared.directory();
    if let Err(e) = super::scope::check_broadcast(
        &caller,
        directory.as_ref(),
        &a.stations,
        &a.feeders,
        &a.areas,
    )
    .await
    {
        return Err(e
            .into_api(&shared, &caller, AuditAction::Broadcast, Some(target))
            .await);
    }
    let Some(directory) = directory else {
        let e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no marketing database is configured: broadcasts need its customer lists",
        );
        if !req.dry_run {
            super::scope::refuse_audited(
                &shared,
                &caller,
                AuditAction::Broadcast,
                Some(target),
                AuditResult::Error(e.message.clone()),
            )
            .await;
        }
        return Err(e);
    };
    let broadcast_id = batch_id("broadcast", &caller.0.name, req.idempotency_key.as_deref());
    let mut audiences: Vec<Audience> = Vec::new();
    audiences.extend(a.stations.iter().cloned().map(Audience::Station));
    audiences.extend(a.feeders.iter().cloned().map(Audience::Feeder));
    audiences.extend(a.areas.iter().cloned().map(Audience::Area));
    if audiences.is_empty() {
        // Admin, whole bureau (check_broadcast allowed it): every station.
        audiences.push(Audience::Station(String::new()));
    }
    let origin = format!("api:{}", caller.0.name);
    let mut run = Run {
        seen: HashSet::new(),
        pending: Vec::new(),
        recipients: 0,
        opted_out: 0,
        skipped: BTreeMap::new(),
    };
    let template = Template {
        text: text.clone(),
        not_before,
        expires_at,
        origin,
        batch: broadcast_id.clone(),
    };
    let streamed: Result<(), String> = async {
        for audience in &audiences {
            let mut customers = directory.customers(audience).map_err(|e| e.to_string())?;
            while let Some(item) = customers.next().await {
                match item {
                    Err(e) => return Err(marketing_failure(audience, &e)),
                    Ok(Err(skip)) => *run.skipped.entry(skip.label().to_owned()).or_default() += 1,
                    Ok(Ok(customer)) => {
                        if let Some(s) = &customer.station
                            && !caller.0.covers_station(s)
                        {
                            *run.skipped.entry("outside_scope".to_owned()).or_default() += 1;
                            continue;
                        }
                        if run.seen.insert(customer.phone.clone()) {
                            run.pending.push(message_for(&template, customer));
                        }
                    }
                }
                if run.pending.len() >= CHUNK {
                    flush(&shared, &mut run, req.dry_run, None).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    let segments_each = preview.segments as u64;
    let price = average_price_units(&shared);
    let summary = |run: &Run| BroadcastSummary {
        broadcast_id: broadcast_id.clone(),
        dry_run: req.dry_run,
        recipients: run.recipients,
        segments: run.recipients * segments_each,
        estimated_cost: crate::reports::yuan((run.recipients * segments_each) as i64 * price),
        opted_out: run.opted_out,
        skipped: run.skipped.clone(),
        text: text.clone(),
    };
    let entry = |run: &Run| {
        AuditEntry::new(now, caller.0.name.clone(), AuditAction::Broadcast)
            .target(target.clone())
            .batch(broadcast_id.clone())
            .detail(json!({
                "segments": run.recipients * segments_each,
                "opted_out": run.opted_out,
                "skipped": run.skipped,
            }))
    };
    if let Err(reason) = streamed {
        if !req.dry_run {
            let queued = run.recipients;
            let e = entry(&run)
                .recipients(queued)
                .result(AuditResult::Error(format!(
                    "{reason}; {queued} messages were queued before it (batch {broadcast_id})"
                )));
            audit::record_alone(&shared.store, e).await;
        }
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{reason}; {} messages were queued before it: cancel them with \
                 POST /api/v1/sends/{broadcast_id}/cancel, or retry with the same \
                 idempotency_key",
                run.recipients
            ),
        ));
    }
    // The last chunk commits together with the audit entry (recipients filled in there).
    let last = (!req.dry_run).then(|| entry(&run));
    flush(&shared, &mut run, req.dry_run, last)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    if !req.dry_run {
        shared.wake.notify_one();
        tracing::info!(
            token = %caller.0.name,
            broadcast = %broadcast_id,
            recipients = run.recipients,
            opted_out = run.opted_out,
            "broadcast queued"
        );
    }
    let status = if req.dry_run {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(summary(&run))))
}

fn marketing_failure(audience: &Audience, e: &MarketingError) -> String {
    format!("reading the customers of {audience:?} failed: {e}")
}

/// What every message of a broadcast shares.
struct Template {
    text: String,
    not_before: Option<chrono::DateTime<chrono::Utc>>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    origin: String,
    batch: String,
}

fn message_for(t: &Template, c: Customer) -> NewMessage {
    let key = format!("{}#{}", t.batch, c.phone.as_str());
    NewMessage {
        not_before: t.not_before,
        expires_at: t.expires_at,
        idempotency_key: Some(key),
        origin: Some(t.origin.clone()),
        batch_id: Some(t.batch.clone()),
        account: Some(c.account),
        station: c.station,
        ..NewMessage::new(c.phone, t.text.clone(), Category::Broadcast)
    }
}

/// Queues (or, dry, only counts) the pending messages minus opted-out numbers; with `audit`,
/// the entry commits in the same store call, its recipients set to the run's total.
async fn flush(
    shared: &Shared,
    run: &mut Run,
    dry_run: bool,
    audit_entry: Option<AuditEntry>,
) -> Result<(), String> {
    let batch = std::mem::take(&mut run.pending);
    let before = run.recipients;
    let now = shared.clock.now();
    let work = move |conn: &mut rusqlite::Connection| {
        audit::all_or_nothing(conn, |conn| {
            let opted =
                contacts::opted_out_among(conn, batch.iter().map(|m| &m.to), Category::Broadcast)?;
            let keep: Vec<NewMessage> = batch
                .into_iter()
                .filter(|m| !opted.contains(m.to.as_str()))
                .collect();
            let kept = keep.len() as u64;
            if !dry_run {
                outbox::enqueue_bulk(conn, &keep, now)?;
            }
            if let Some(entry) = audit_entry {
                audit::record(conn, &entry.recipients(before + kept))?;
            }
            Ok((kept, opted.len() as u64))
        })
    };
    // A dry run writes nothing, so it needs no fsync.
    let done = if dry_run {
        shared.store.call(work).await
    } else {
        shared.store.call_durable(work).await
    };
    let (kept, opted) = done.map_err(|e| store_error(e).message)?;
    run.recipients += kept;
    run.opted_out += opted;
    Ok(())
}

fn audience_label(a: &AudienceSpec) -> String {
    let mut parts = Vec::new();
    for (name, list) in [
        ("stations", &a.stations),
        ("feeders", &a.feeders),
        ("areas", &a.areas),
    ] {
        if !list.is_empty() {
            parts.push(format!("{name} {}", list.join(",")));
        }
    }
    if parts.is_empty() {
        "whole bureau".to_owned()
    } else {
        let mut s = parts.join("; ");
        if s.chars().count() > 200 {
            s = s.chars().take(197).collect::<String>() + "...";
        }
        s
    }
}
