//! `POST /api/v1/messages`, `GET /api/v1/messages/{id}`, `GET /api/v1/messages`.

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::message::{Category, MessageState};
use crate::phone;
use crate::store::{EnqueueOutcome, ListFilter, Message, MessageDetail, NewMessage, StoreError};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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
    pub to: Recipients,
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
}

#[derive(Debug, Serialize)]
pub struct Created {
    pub ids: Vec<i64>,
    /// Segments of the whole request (segments of the text × recipients).
    pub segments: usize,
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

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
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
    caller.require(scope_for(category))?;
    let raw_recipients = match req.to {
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
    let not_before = parse_time("not_before", &req.not_before)?;
    let expires_at = parse_time("expires_at", &req.expires_at)?;
    let now = shared.clock.now();
    if let Some(exp) = expires_at
        && exp <= not_before.unwrap_or(now)
    {
        return Err(ApiError::bad_field(
            "expires_at",
            "is not after not_before (or now)",
        ));
    }
    let several = recipients.len() > 1;
    let messages: Vec<NewMessage> = recipients
        .into_iter()
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
                origin: Some(format!("api:{}", caller.0.name)),
                ..NewMessage::new(to, String::new(), category)
            }
        })
        .collect();
    let count = messages.len();
    let outcomes = shared
        .store
        .enqueue_bulk(messages, now)
        .await
        .map_err(store_error)?;
    shared.wake.notify_one();
    let ids: Vec<i64> = outcomes.iter().map(|o| o.id()).collect();
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, EnqueueOutcome::Queued(_)))
        .count();
    tracing::info!(
        token = %caller.0.name,
        %category,
        recipients = count,
        queued = fresh,
        "messages accepted"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(Created {
            ids,
            segments: preview.segments * count,
        }),
    ))
}

fn store_error(e: StoreError) -> ApiError {
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
        Some(detail) => Ok(Json(detail_view(detail))),
        None => Err(ApiError::not_found(format!("no message {id}"))),
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
    Ok(Json(ListPage {
        messages: page
            .messages
            .into_iter()
            .map(|m| view(m, Vec::new()))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
