//! The HTTP JSON API under `/api/v1/`, plus `/healthz` and `/metrics`.
//!
//! Every `/api/v1/` route needs `Authorization: Bearer <token>`; the token's scopes decide what
//! it may do (`read`, `send`, `outage`, `broadcast`, `admin`) and its `stations` which customers
//! it reaches ([`scope`]). Errors are JSON
//! `{"error": "...", "field": "..."|null}` with the status code saying what kind: 400 bad
//! request (the field is named), 401 no or unknown token, 403 scope or station refused
//! (audited), 404, 409 idempotency conflict, 422 nothing to send, 503 storage or marketing
//! database unavailable. A message is committed to SQLite, with its audit entry, before any
//! 2xx answer. Every route is described in [`openapi`] (`/api/v1/openapi.json`).

mod audit;
mod broadcasts;
mod error;
mod inbox;
mod jobs;
mod messages;
pub mod openapi;
mod outages;
mod reports;
pub mod scope;
mod status;
mod subscriptions;

pub use error::ApiError;

use crate::config::{ApiToken, Scope};
use crate::daemon::state::Shared;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use std::sync::Arc;

/// Request bodies larger than this are refused (a broadcast text is at most a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The full router, ready for `axum::serve`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/metrics", get(status::metrics))
        .route(
            "/api/v1/messages",
            post(messages::create).get(messages::list),
        )
        .route("/api/v1/messages/{id}", get(messages::get_one))
        .route("/api/v1/messages/{id}/cancel", post(messages::cancel_one))
        .route(
            "/api/v1/sends/{batch_id}/cancel",
            post(messages::cancel_batch),
        )
        .route("/api/v1/broadcasts", post(broadcasts::create))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/reports/delivery", get(reports::delivery))
        .route(
            "/api/v1/reports/failed-numbers",
            get(reports::failed_numbers),
        )
        .route("/api/v1/reports/sims", get(reports::sims))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/outages", post(outages::create).get(outages::list))
        .route("/api/v1/outages/{id}", get(outages::get_one))
        .route("/api/v1/outages/{id}/cancel", post(outages::cancel))
        .route("/api/v1/modems", get(status::modems))
        .route("/api/v1/queue", get(status::queue))
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/jobs/{name}/run", post(jobs::run))
        .route("/api/v1/inbox", get(inbox::list))
        .route("/api/v1/subscriptions", get(subscriptions::list))
        .route(
            "/api/v1/subscriptions/{phone}/{account}/approve",
            post(subscriptions::approve),
        )
        .route(
            "/api/v1/subscriptions/{phone}/{account}/reject",
            post(subscriptions::reject),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// The caller, authenticated by its bearer token.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiToken);

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "token {:?} lacks the {} scope",
                self.0.name,
                scope.as_str()
            )))
        }
    }
}

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer header"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
        let config = shared.config();
        config
            .api
            .token_for(token)
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}
