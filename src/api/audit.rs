//! `GET /api/v1/audit?from=&to=&actor=&action=&limit=&cursor=`: the audit trail, newest first.
//!
//! An `admin` token sees every entry. A token with only `read` sees its own entries (its
//! `actor` is forced to its name; asking for another actor is 403): staff can check what they
//! did without reading what others did. `from`/`to` take dates or RFC 3339 times as the
//! reports do; without `from` the whole retained trail is listed.

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::store::audit::{self, AuditAction, AuditFilter, AuditRecord};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<i64>,
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = q.map_err(|e| ApiError::bad_field("query", e.body_text()))?;
    let admin = caller.0.allows(Scope::Admin);
    let actor = match q.actor {
        Some(a) if !admin && a != caller.0.name => {
            return Err(ApiError::forbidden(format!(
                "token {:?} may read only its own audit entries (admin reads all)",
                caller.0.name
            )));
        }
        Some(a) => Some(a),
        None if admin => None,
        None => Some(caller.0.name.clone()),
    };
    let action = q
        .action
        .as_deref()
        .map(str::parse::<AuditAction>)
        .transpose()
        .map_err(|e| ApiError::bad_field("action", e.to_string()))?;
    let tz = shared.config().dispatch.timezone;
    // No period limit here, unlike reports: the trail is small and paged.
    let from = q
        .from
        .as_deref()
        .map(|f| super::reports::bound("from", f, tz, false))
        .transpose()?;
    let to =
        q.to.as_deref()
            .map(|t| super::reports::bound("to", t, tz, true))
            .transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, audit::MAX_LIMIT);
    let filter = AuditFilter {
        from,
        to,
        actor,
        action,
        limit: limit + 1,
        before_id: q.cursor,
    };
    let mut entries = shared
        .store
        .call(move |c| audit::list(c, &filter))
        .await
        .map_err(super::messages::store_error)?;
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}
