//! `GET /api/v1/inbox`: what customers texted in and how each message was handled (read
//! scope), newest first, paged by cursor.

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::phone;
use crate::store::inbox::{self, InboxEntry, InboxFilter, InboxState};
use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// A mobile number in any usual form, or a service number / alphanumeric sender as is.
    pub sender: Option<String>,
    pub state: Option<String>,
    pub since: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct InboxPage {
    pub messages: Vec<InboxEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InboxPage>, ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::bad_field("query", e.body_text()))?;
    let sender = q.sender.map(|s| {
        phone::normalise(&s).map_or_else(|_| s.trim().to_owned(), |p| p.as_str().to_owned())
    });
    let state = q
        .state
        .as_deref()
        .map(|s| {
            InboxState::parse(s).ok_or_else(|| {
                let known: Vec<&str> = InboxState::ALL.iter().map(|x| x.as_str()).collect();
                ApiError::bad_field(
                    "state",
                    format!("{s:?}: expected one of {}", known.join(", ")),
                )
            })
        })
        .transpose()?;
    let since = q
        .since
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ApiError::bad_field("since", format!("not an RFC 3339 time ({e})")))
        })
        .transpose()?;
    let filter = InboxFilter {
        sender,
        state,
        since,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        before_id: q.cursor,
    };
    let (messages, next_cursor) = shared
        .store
        .call(move |c| inbox::list(c, &filter))
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(InboxPage {
        messages,
        next_cursor,
    }))
}
