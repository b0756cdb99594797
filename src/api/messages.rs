//! `POST /api/v1/messages`, `GET /api/v1/messages/{id}`, `GET /api/v1/messages`.

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::message::{Category, MessageState};
use crate::phone;
use crate::phone::E164;
use crate::store::audit::{self, AuditAction, AuditEntry, AuditResult};
use crate::store::{
    CancelTarget, EnqueueOutcome, ListFilter, Message, MessageDetail, NewMessage, StoreError,
    contacts, outbox,
};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// Recipients in one request; a bulk run goes through the jobs, not one HTTP body.
pub const MAX_RECIPIENTS: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMessage {
    /// Phone numbers; exclusive with `account`.
    #[serde(default)]
    pub to: Option<Recipients>,
    /// A customer account: its marketing contacts and active local bindings.
    #[serde(default)]
    pub account: Option<String>,
    pub text: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Send to opted-out numbers too (admin only; audited as `opt_out_override`).
    #[serde(default)]
    pub override_opt_out: bool,
}

#[derive(Debug, Serialize)]
pub struct Created {
    pub ids: Vec<i64>,
    /// Segments of the whole request (segments of the text × recipients).
    pub segments: usize,
    /// Cancels the whole send: `POST /api/v1/sends/{batch_id}/cancel`.
    pub batch_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Numbers the message was queued for.
    pub recipients: usize,
    /// Numbers left out because they opted out of the category (masked for account sends).
    pub opted_out: Vec<String>,
}

/// Which scope a category needs: staff send `manual` with `send`; the others are the jobs'.
fn scope_for(category: Category) -> Scope {
    match category {
        Category::Manual => Scope::Send,
        Category::Outage => Scope::Outage,
        Category::Broadcast => Scope::Broadcast,
        Category::Reply | Category::Bill | Category::Reminder => Scope::Admin,
    }
}

pub(crate) fn parse_time(
    field: &str,
    value: &Option<String>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::bad_field(field, format!("not an RFC 3339 time with offset ({e})"))
                })
        })
        .transpose()
}

/// When a send may start and when it expires (`not_before`, `expires_at`).
pub(crate) type SendWindow = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `not_before` and `expires_at` of a send request, checked together: an expiry must lie
/// after the start (or after `now` when there is none).
pub(crate) fn send_window(
    not_before: &Option<String>,
    expires_at: &Option<String>,
    now: DateTime<Utc>,
) -> Result<SendWindow, ApiError> {
    let not_before = parse_time("not_before", not_before)?;
    let expires_at = parse_time("expires_at", expires_at)?;
    if let Some(exp) = expires_at
        && exp <= not_before.unwrap_or(now)
    {
        return Err(ApiError::bad_field(
            "expires_at",
            "is not after not_before (or now)",
        ));
    }
    Ok((not_before, expires_at))
}

/// A batch id for an API send: derived from the idempotency key when there is one (a retried
/// request names the same batch), random otherwise.
pub(crate) fn batch_id(kind: &str, token: &str, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(key) => {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in token.bytes().chain([0]).chain(key.bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{kind}-{h:016x}")
        }
        None => format!("{kind}-{:016x}", rand::random::<u64>()),
    }
}

/// Records a refused or failed request in the audit trail and hands the error back.
async fn audited(
    shared: &Shared,
    caller: &Caller,
    action: AuditAction,
    target: Option<String>,
    e: ApiError,
) -> ApiError {
    let result = if e.status.is_server_error() {
        AuditResult::Error(e.message.clone())
    } else {
        AuditResult::Refused(e.message.clone())
    };
    super::scope::refuse_audited(shared, caller, action, target, result).await;
    e
}

/// What the store call of a send decided.
enum SendOutcome {
    Queued {
        outcomes: Vec<EnqueueOutcome>,
        opted_out: Vec<E164>,
    },
    /// Every recipient opted out; nothing queued (the refusal is audited).
    AllOptedOut(Vec<E164>),
}

pub async fn create(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    body: Result<Json<CreateMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_field("body", e.body_text()))?;
    let category = match &req.category {
        None => Category::Manual,
        Some(c) => c
            .parse::<Category>()
            .map_err(|e| ApiError::bad_field("category", e.to_string()))?,
    };
    let action = if req.account.is_some() {
        AuditAction::SendByAccount
    } else {
        AuditAction::Send
    };
    let target = req.account.clone();
    super::scope::require_audited(
        &shared,
        &caller,
        scope_for(category),
        action,
        target.clone(),
    )
    .await?;
    if req.text.trim().is_empty() {
        return Err(ApiError::bad_field("text", "is empty"));
    }
    let preview =
        crate::pdu::preview(&req.text).map_err(|e| ApiError::bad_field("text", e.to_string()))?;
    if let Some(p) = req.priority
        && p > 9
    {
        return Err(ApiError::bad_field("priority", "must be 0 (first) to 9"));
    }
    let now = shared.clock.now();
    let (not_before, expires_at) = send_window(&req.not_before, &req.expires_at, now)?;
    let (recipients, account, station) = match (req.to, &req.account) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_field(
                "account",
                "give either `to` (phone numbers) or `account`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_field(
                "to",
                "no recipient given: `to` (phone numbers) or `account`",
            ));
        }
        (Some(to), None) => {
            let recipients = parse_recipients(to)?;
            if let Err(e) = super::scope::check_phone_send(&caller) {
                return Err(e.into_api(&shared, &caller, action, None).await);
            }
            (recipients, None, None)
        }
        (None, Some(account)) => {
            let account = account.trim().to_owned();
            if account.is_empty() || account.chars().count() > 64 {
                return Err(ApiError::bad_field("account", "expected an account number"));
            }
            match resolve_account(&shared, &caller, &account).await {
                Ok((phones, station)) => (phones, Some(account), station),
                Err(e) => return Err(audited(&shared, &caller, action, target, e).await),
            }
        }
    };
    if req.override_opt_out {
        super::scope::require_audited(
            &shared,
            &caller,
            Scope::Admin,
            AuditAction::OptOutOverride,
            target.clone(),
        )
        .await?;
    }
    let batch = batch_id("api", &caller.0.name, req.idempotency_key.as_deref());
    let several = recipients.len() > 1;
    let origin = format!("api:{}", caller.0.name);
    let messages: Vec<NewMessage> = recipients
        .iter()
        .map(|to| {
            // One key per recipient, so a retried request maps to the same rows.
            let idempotency_key = req.idempotency_key.as_ref().map(|k| {
                if several {
                    format!("{k}#{}", to.as_str())
                } else {
                    k.clone()
                }
            });
            NewMessage {
                text: req.text.clone(),
                priority: req.priority,
                not_before,
                expires_at,
                idempotency_key,
                origin: Some(origin.clone()),
                batch_id: Some(batch.clone()),
                account: account.clone(),
                station: station.clone(),
                ..NewMessage::new(to.clone(), String::new(), category)
            }
        })
        .collect();
    let override_opt_out = req.override_opt_out;
    let audit_base = AuditEntry::new(now, caller.0.name.clone(), action)
        .batch(batch.clone())
        .detail(json!({
            "category": category.as_str(),
            "segments_each": preview.segments,
            "override_opt_out": override_opt_out,
        }));
    let audit_base = match &target {
        Some(t) => audit_base.target(t.clone()),
        None => audit_base.target(summarise_numbers(&recipients)),
    };
    let outcome = shared
        .store
        .call_durable(move |conn| {
            audit::all_or_nothing(conn, |conn| {
                let opted =
                    contacts::opted_out_among(conn, messages.iter().map(|m| &m.to), category)?;
                let opted_out: Vec<E164> = recipients
                    .iter()
                    .filter(|p| opted.contains(p.as_str()))
                    .cloned()
                    .collect();
                let to_send: Vec<NewMessage> = if override_opt_out {
                    messages
                } else {
                    messages
                        .into_iter()
                        .filter(|m| !opted.contains(m.to.as_str()))
                        .collect()
                };
                if to_send.is_empty() {
                    let entry = audit_base.result(AuditResult::Refused(
                        "every recipient opted out of this category".to_owned(),
                    ));
                    audit::record(conn, &entry)?;
                    return Ok(SendOutcome::AllOptedOut(opted_out));
                }
                let outcomes = outbox::enqueue_bulk(conn, &to_send, now)?;
                let mut entry = audit_base.recipients(outcomes.len() as u64);
                if override_opt_out && !opted_out.is_empty() {
                    // The override is the notable part of this send: it is what the entry says.
                    entry.action = AuditAction::OptOutOverride;
                    entry.detail["overridden"] = json!(opted_out.len());
                    entry.detail["send"] = json!(action.as_str());
                } else {
                    entry.detail["opted_out"] = json!(opted_out.len());
                }
                audit::record(conn, &entry)?;
                Ok(SendOutcome::Queued {
                    outcomes,
                    opted_out,
                })
            })
        })
        .await
        .map_err(store_error)?;
    let show = |p: &E164| {
        if account.is_some() {
            p.mask()
        } else {
            p.as_str().to_owned()
        }
    };
    let (outcomes, opted_out) = match outcome {
        SendOutcome::AllOptedOut(opted) => {
            let list: Vec<String> = opted.iter().map(show).collect();
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "every recipient opted out of {category} messages ({}); nothing queued",
                    list.join(", ")
                ),
            ));
        }
        SendOutcome::Queued {
            outcomes,
            opted_out,
        } => (outcomes, opted_out),
    };
    shared.wake.notify_one();
    let ids: Vec<i64> = outcomes.iter().map(|o| o.id()).collect();
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, EnqueueOutcome::Queued(_)))
        .count();
    let count = ids.len();
    tracing::info!(
        token = %caller.0.name,
        %category,
        recipients = count,
        queued = fresh,
        batch = %batch,
        "messages accepted"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(Created {
            ids,
            segments: preview.segments * count,
            batch_id: batch,
            opted_out: if override_opt_out {
                Vec::new()
            } else {
                opted_out.iter().map(show).collect()
            },
            account,
            recipients: count,
        }),
    ))
}

/// "+8613800138000" or "3 numbers": the audit target of a send by phone.
fn summarise_numbers(numbers: &[E164]) -> String {
    match numbers {
        [one] => one.mask(),
        many => format!("{} numbers", many.len()),
    }
}

fn parse_recipients(to: Recipients) -> Result<Vec<E164>, ApiError> {
    let raw_recipients = match to {
        Recipients::One(one) => vec![one],
        Recipients::Many(many) => many,
    };
    if raw_recipients.is_empty() {
        return Err(ApiError::bad_field("to", "no recipient given"));
    }
    if raw_recipients.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_field(
            "to",
            format!("more than {MAX_RECIPIENTS} recipients in one request"),
        ));
    }
    let mut recipients = Vec::with_capacity(raw_recipients.len());
    for (i, raw) in raw_recipients.iter().enumerate() {
        let number = phone::normalise(raw).map_err(|e| {
            let field = if raw_recipients.len() == 1 {
                "to".to_owned()
            } else {
                format!("to[{i}]")
            };
            ApiError::bad_field(field, format!("{raw:?}: {e}"))
        })?;
        if !recipients.contains(&number) {
            recipients.push(number);
        }
    }
    Ok(recipients)
}

/// An account's phones: marketing contacts ∪ active local bindings (opt-outs are applied in
/// the store call that enqueues). 404 for an account nobody knows, 422 when it has no usable
/// phone; a station-scoped caller only reaches accounts of its stations.
async fn resolve_account(
    shared: &Shared,
    caller: &Caller,
    account: &str,
) -> Result<(Vec<E164>, Option<String>), ApiError> {
    let local = {
        let account = account.to_owned();
        shared
            .store
            .call(move |c| contacts::active_phones_of_account(c, &account))
            .await
            .map_err(store_error)?
    };
    let marketing = match shared.directory() {
        Some(dir) => dir.account_contacts(account).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot look up account {account} in the marketing database: {e}"),
            )
        })?,
        None => None,
    };
    if marketing.is_none() && local.is_empty() {
        return Err(ApiError::not_found(format!(
            "unknown account {account}: not in the marketing database and no local binding"
        )));
    }
    let station = marketing.as_ref().and_then(|m| m.station.clone());
    if let Err(e) = super::scope::check_account(caller, account, station.as_deref()) {
        let status = match e {
            super::scope::ScopeError::Refused(_) => StatusCode::FORBIDDEN,
            super::scope::ScopeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        return Err(ApiError::new(status, e.reason().to_owned()));
    }
    let mut phones: Vec<E164> = marketing.map(|m| m.phones).unwrap_or_default();
    for p in local {
        if !phones.contains(&p) {
            phones.push(p);
        }
    }
    if phones.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("account {account} has no valid phone number on record"),
        ));
    }
    Ok((phones, station))
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { .. } => ApiError::conflict(e.to_string()),
        StoreError::Invalid { field, reason, .. } => ApiError::bad_field(field, reason),
        other => ApiError::unavailable(other),
    }
}

#[derive(Debug, Serialize)]
pub struct SegmentView {
    pub seq: u8,
    pub total: u8,
    pub state: &'static str,
    pub mr: Option<u8>,
    pub status: Option<u8>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub reported_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub to: String,
    pub text: String,
    pub category: Category,
    pub priority: u8,
    pub state: MessageState,
    pub attempts: u32,
    pub modem: Option<String>,
    /// Segments of the text.
    pub segments: usize,
    pub parts: Vec<SegmentView>,
    pub created_at: DateTime<Utc>,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

fn view(m: Message, parts: Vec<SegmentView>) -> MessageView {
    let segments = crate::pdu::preview(&m.text).map_or(parts.len(), |p| p.segments);
    MessageView {
        id: m.id,
        to: m.to.as_str().to_owned(),
        segments,
        parts,
        text: m.text,
        category: m.category,
        priority: m.priority,
        state: m.state,
        attempts: m.attempts,
        modem: m.modem,
        created_at: m.created_at,
        not_before: m.not_before,
        expires_at: m.expires_at,
        sent_at: m.sent_at,
        delivered_at: m.delivered_at,
        last_error: m.last_error,
    }
}

fn detail_view(d: MessageDetail) -> MessageView {
    let parts = d
        .segments
        .into_iter()
        .map(|s| SegmentView {
            seq: s.seq,
            total: s.total,
            state: s.state.as_str(),
            mr: s.tp_mr,
            status: s.status,
            submitted_at: s.submitted_at,
            reported_at: s.reported_at,
        })
        .collect();
    view(d.message, parts)
}

pub async fn get_one(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    caller.require(Scope::Read)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_field("id", "not a message id"))?;
    match shared.store.get(id).await.map_err(store_error)? {
        Some(detail) if visible(&shared, &caller, &[id]).await?.contains(&id) => {
            Ok(Json(detail_view(detail)))
        }
        // A station-scoped token is told "no message" for another station's: same answer as
        // for an id that does not exist, so ids do not leak which stations were messaged.
        _ => Err(ApiError::not_found(format!("no message {id}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub to: Option<String>,
    pub state: Option<String>,
    pub category: Option<String>,
    pub since: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ListPage {
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListPage>, ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::bad_field("query", e.body_text()))?;
    let filter = ListFilter {
        to: q
            .to
            .as_deref()
            .map(phone::normalise)
            .transpose()
            .map_err(|e| ApiError::bad_field("to", e.to_string()))?,
        state: q.state.as_deref().map(str::parse).transpose().map_err(
            |e: crate::message::UnknownName| ApiError::bad_field("state", e.to_string()),
        )?,
        category: q.category.as_deref().map(str::parse).transpose().map_err(
            |e: crate::message::UnknownName| ApiError::bad_field("category", e.to_string()),
        )?,
        since: parse_time("since", &q.since)?,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        before_id: q.cursor,
    };
    let page = shared.store.list(filter).await.map_err(store_error)?;
    let ids: Vec<i64> = page.messages.iter().map(|m| m.id).collect();
    let visible = visible(&shared, &caller, &ids).await?;
    Ok(Json(ListPage {
        messages: page
            .messages
            .into_iter()
            .filter(|m| visible.contains(&m.id))
            .map(|m| view(m, Vec::new()))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// What a cancellation did.
#[derive(Debug, Serialize)]
pub struct Cancelled {
    /// Queued messages now cancelled.
    pub cancelled: u64,
    /// Messages of the target that were no longer queued (sending, sent, delivered, failed,
    /// expired or cancelled before): left as they were.
    pub already_gone: u64,
}

/// The outcome of a cancellation's store call.
enum CancelOutcome {
    NotFound,
    NotYours(String),
    Done(Cancelled),
}

/// The `origin` values of messages a token made: its API sends and broadcasts (`api:NAME`)
/// and the notices of outages it entered by hand (`outage:NAME`).
fn own_origins(caller: &Caller) -> (String, String) {
    (
        format!("api:{}", caller.0.name),
        format!("outage:{}", caller.0.name),
    )
}

/// Cancels queued messages of `target` in one store call with its audit entry. Only the
/// caller's own messages (origin `api:{token}`) unless it holds `admin`.
async fn cancel_audited(
    shared: &Shared,
    caller: &Caller,
    target: CancelTarget,
    label: String,
) -> Result<Json<Cancelled>, ApiError> {
    let now = shared.clock.now();
    let (mine, mine_outage) = own_origins(caller);
    let admin = caller.0.allows(Scope::Admin);
    let entry =
        AuditEntry::new(now, caller.0.name.clone(), AuditAction::Cancel).target(label.clone());
    let entry = match &target {
        CancelTarget::Batch(b) => entry.batch(b.clone()),
        CancelTarget::Ids(_) => entry,
    };
    let outcome = shared
        .store
        .call(move |conn| {
            audit::all_or_nothing(conn, |conn| {
                let (total, others): (i64, i64) = match &target {
                    CancelTarget::Ids(ids) => {
                        let id = ids.first().copied().unwrap_or_default();
                        conn.query_row(
                            "SELECT count(*),
                                    count(*) FILTER (WHERE origin IS NOT ?2 AND origin IS NOT ?3)
                             FROM messages WHERE id = ?1",
                            rusqlite::params![id, mine, mine_outage],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )?
                    }
                    CancelTarget::Batch(b) => conn.query_row(
                        // Through the batch's id ranges: there is no index on batch_id
                        // (store migration 6), and a scan would stall the store thread.
                        "SELECT count(*),
                                count(*) FILTER (WHERE m.origin IS NOT ?2 AND m.origin IS NOT ?3)
                         FROM message_batches b
                         JOIN messages m ON m.id BETWEEN b.first_id AND b.last_id
                         WHERE b.batch_id = ?1 AND m.batch_id = ?1",
                        rusqlite::params![b, mine, mine_outage],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?,
                };
                if total == 0 {
                    return Ok(CancelOutcome::NotFound);
                }
                if others > 0 && !admin {
                    let reason = "only the token that sent them (or an admin) may cancel these \
                                  messages"
                        .to_owned();
                    audit::record(conn, &entry.result(AuditResult::Refused(reason.clone())))?;
                    return Ok(CancelOutcome::NotYours(reason));
                }
                let n = outbox::cancel(conn, &target, now)? as u64;
                let total = u64::try_from(total).unwrap_or(0);
                let done = Cancelled {
                    cancelled: n,
                    already_gone: total.saturating_sub(n),
                };
                audit::record(
                    conn,
                    &entry
                        .recipients(n)
                        .detail(json!({"already_gone": done.already_gone})),
                )?;
                Ok(CancelOutcome::Done(done))
            })
        })
        .await
        .map_err(store_error)?;
    match outcome {
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no {label}"))),
        CancelOutcome::NotYours(reason) => Err(ApiError::forbidden(reason)),
        CancelOutcome::Done(done) => {
            tracing::info!(token = %caller.0.name, target = %label, cancelled = done.cancelled, "cancelled");
            Ok(Json(done))
        }
    }
}

/// `POST /api/v1/messages/{id}/cancel`.
pub async fn cancel_one(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Cancelled>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_field("id", "not a message id"))?;
    cancel_audited(
        &shared,
        &caller,
        CancelTarget::Ids(vec![id]),
        format!("message {id}"),
    )
    .await
}

/// `POST /api/v1/sends/{batch_id}/cancel`: every queued message of a send, outage notice run
/// or broadcast.
pub async fn cancel_batch(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(batch): Path<String>,
) -> Result<Json<Cancelled>, ApiError> {
    if batch.is_empty() || batch.chars().count() > crate::store::outbox::MAX_KEY_CHARS {
        return Err(ApiError::bad_field("batch_id", "not a batch id"));
    }
    cancel_audited(
        &shared,
        &caller,
        CancelTarget::Batch(batch.clone()),
        format!("send {batch}"),
    )
    .await
}

/// Which of `ids` the caller may see: all for a bureau-wide token; for a station-scoped one,
/// messages of its stations and messages it sent itself. (A page of a scoped token's listing
/// may therefore hold fewer than `limit` messages; `next_cursor` still pages on.)
async fn visible(
    shared: &Shared,
    caller: &Caller,
    ids: &[i64],
) -> Result<std::collections::HashSet<i64>, ApiError> {
    if !caller.0.is_station_scoped() {
        return Ok(ids.iter().copied().collect());
    }
    let ids = ids.to_vec();
    let (mine, mine_outage) = own_origins(caller);
    let rows: Vec<(i64, Option<String>, Option<String>)> = shared
        .store
        .call(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, station, origin FROM messages WHERE id = ?1")?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(row) = stmt
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?
                {
                    out.push(row);
                }
            }
            Ok(out)
        })
        .await
        .map_err(store_error)?;
    Ok(rows
        .into_iter()
        .filter(|(_, station, origin)| {
            origin.as_deref() == Some(mine.as_str())
                || origin.as_deref() == Some(mine_outage.as_str())
                || station
                    .as_deref()
                    .is_some_and(|s| caller.0.covers_station(s))
        })
        .map(|(id, _, _)| id)
        .collect())
}
