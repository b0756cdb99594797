//! Subscriptions (phone ↔ account bindings) waiting for staff: `GET /api/v1/subscriptions`
//! and `POST /api/v1/subscriptions/{phone}/{account}/approve|reject` (admin scope; station
//! scopes may narrow this later). A decision and the short SMS telling the customer are
//! committed together; approving also withdraws the phone's earlier opt-outs (the customer
//! asked to be notified).

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::inbound::replies::fill;
use crate::message::Category;
use crate::phone;
use crate::store::audit::{self, AuditAction, AuditEntry};
use crate::store::contacts::{self, Binding, BindingStatus};
use crate::store::{NewMessage, outbox};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// pending (default), active, rejected or all.
    pub status: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct ListAnswer {
    pub subscriptions: Vec<Binding>,
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListAnswer>, ApiError> {
    caller.require(Scope::Admin)?;
    let Query(q) = query.map_err(|e| ApiError::bad_field("query", e.body_text()))?;
    let status = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s => Some(BindingStatus::parse(s).ok_or_else(|| {
            ApiError::bad_field(
                "status",
                format!("{s:?}: expected pending, active, rejected or all"),
            )
        })?),
    };
    let (limit, offset) = (q.limit.unwrap_or(100).clamp(1, 1000), q.offset.unwrap_or(0));
    let subscriptions = shared
        .store
        .call(move |c| contacts::list_bindings(c, status, limit, offset))
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(ListAnswer { subscriptions }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why (kept on the binding).
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Decided {
    pub phone: String,
    pub account: String,
    pub status: BindingStatus,
    /// The SMS telling the customer.
    pub message_id: Option<i64>,
}

/// `POST /api/v1/subscriptions/{phone}/{account}/approve`.
pub async fn approve(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path((raw_phone, account)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Decided>, ApiError> {
    decide(
        shared,
        caller,
        raw_phone,
        account,
        BindingStatus::Active,
        body,
    )
    .await
}

/// `POST /api/v1/subscriptions/{phone}/{account}/reject`.
pub async fn reject(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path((raw_phone, account)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Decided>, ApiError> {
    decide(
        shared,
        caller,
        raw_phone,
        account,
        BindingStatus::Rejected,
        body,
    )
    .await
}

async fn decide(
    shared: Arc<Shared>,
    caller: Caller,
    raw_phone: String,
    account: String,
    to: BindingStatus,
    body: axum::body::Bytes,
) -> Result<Json<Decided>, ApiError> {
    caller.require(Scope::Admin)?;
    let phone = phone::normalise(&raw_phone)
        .map_err(|e| ApiError::bad_field("phone", format!("{raw_phone:?}: {e}")))?;
    // The body is optional: `{"note": "…"}` or nothing.
    let decision: Decision = if body.iter().all(u8::is_ascii_whitespace) {
        Decision::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_field("body", e.to_string()))?
    };
    let config = shared.config();
    let template = if to == BindingStatus::Active {
        &config.inbound.replies.approved
    } else {
        &config.inbound.replies.rejected
    };
    let text = fill(template, &[("account", &account)]);
    let now = shared.clock.now();
    let who = caller.0.name.clone();
    let (p, a) = (phone.clone(), account.clone());
    let decided = shared
        .store
        .call_durable(move |c| {
            let n = contacts::decide_pending(c, &p, &a, to, &who, decision.note.as_deref(), now)?;
            if n == 0 {
                return Ok(None);
            }
            if to == BindingStatus::Active {
                contacts::opt_in(c, &p, None)?;
            }
            let action = if to == BindingStatus::Active {
                AuditAction::SubscriptionApprove
            } else {
                AuditAction::SubscriptionReject
            };
            audit::record(
                c,
                &AuditEntry::new(now, who.clone(), action)
                    .target(format!("{} -> {a}", p.mask()))
                    .recipients(1),
            )?;
            let msg = NewMessage {
                idempotency_key: Some(format!(
                    "subscription:{}:{a}:{}:{}",
                    p.as_str(),
                    to.as_str(),
                    now.timestamp_millis()
                )),
                origin: Some(format!("api:{who}")),
                account: Some(a.clone()),
                ..NewMessage::new(p.clone(), text, Category::Reply)
            };
            Ok(outbox::enqueue_bulk(c, &[msg], now)?
                .first()
                .map(|o| o.id()))
        })
        .await
        .map_err(ApiError::unavailable)?;
    let Some(message_id) = decided else {
        return Err(ApiError::not_found(format!(
            "no pending subscription of {} to account {account}",
            phone.mask()
        )));
    };
    shared.wake.notify_one();
    tracing::info!(
        token = %caller.0.name,
        phone = %phone.mask(),
        %account,
        status = to.as_str(),
        "subscription decided"
    );
    Ok(Json(Decided {
        phone: phone.as_str().to_owned(),
        account,
        status: to,
        message_id: Some(message_id),
    }))
}
