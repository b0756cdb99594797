//! `POST /api/v1/outages` (the 95598 desk: an outage on a feeder or in transformer areas,
//! every customer notified), `GET /api/v1/outages[/{id}]`, `POST /api/v1/outages/{id}/cancel`.
//!
//! The 202 answer comes after the outage record and every notice are committed. Times are
//! RFC 3339 with an offset, or local `YYYY-MM-DD HH:MM[:SS]` in `[dispatch] timezone` (what a
//! desk types). Validation errors name the field.

use super::{ApiError, Caller, scope};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::marketing::outages::{OutageDesk, OutageError, Report};
use crate::store::audit::{self, AuditAction, AuditEntry};
use crate::store::outages::{Outage, OutageSpec};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Transformer areas in one request.
pub const MAX_AREAS: usize = 200;
/// Longest reason or area text, in characters (the notice must stay a few segments).
pub const MAX_TEXT_CHARS: usize = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOutage {
    #[serde(default)]
    pub feeder: Option<String>,
    #[serde(default)]
    pub areas: Option<Vec<String>>,
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// The area as people name it ("城关镇东街一带"), for the notice text.
    #[serde(default)]
    pub area: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Announced {
    pub outage_id: i64,
    pub recipients: u64,
    /// Rows and phones left out (total); by reason in `skipped_by_reason`.
    pub skipped: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// The outage starts sooner than `[outages] min_lead`.
    pub short_notice: bool,
}

impl Announced {
    fn of(r: Report, short_notice: bool) -> Announced {
        Announced {
            outage_id: r.outage_id,
            recipients: r.recipients,
            skipped: r.skipped_total(),
            skipped_by_reason: r.skipped,
            short_notice,
        }
    }
}

fn desk(shared: &Shared) -> Result<&OutageDesk, ApiError> {
    shared.outages.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outage notices need the marketing database: configure [marketing]",
        )
    })
}

/// RFC 3339, or a local time in the bureau's zone.
pub fn parse_time(field: &str, text: &str, tz: Tz) -> Result<DateTime<Utc>, ApiError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, fmt)
            && let Some(t) = tz.from_local_datetime(&local).earliest()
        {
            return Ok(t.with_timezone(&Utc));
        }
    }
    Err(ApiError::bad_field(
        field,
        format!("{text:?}: expected \"2026-11-29 08:00\" (local) or RFC 3339 with an offset"),
    ))
}

fn clean(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(v) = v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::bad_field(
            field,
            format!("longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::bad_field(field, "contains control characters"));
    }
    Ok(Some(v))
}

fn code_ok(code: &str) -> bool {
    !code.is_empty()
        && code.chars().count() <= 64
        && !code.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn unavailable(e: OutageError) -> ApiError {
    match e {
        OutageError::NotFound(id) => ApiError::not_found(format!("outage {id} not found")),
        other => ApiError::unavailable(other),
    }
}

pub async fn create(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    body: Result<Json<CreateOutage>, JsonRejection>,
) -> Result<(StatusCode, Json<Announced>), ApiError> {
    caller.require(Scope::Outage)?;
    let Json(req) = body.map_err(|e| ApiError::bad_field("body", e.body_text()))?;
    let desk = desk(&shared)?;
    let config = shared.config();
    let tz = config.dispatch.timezone;
    let feeder = clean("feeder", req.feeder)?;
    if let Some(f) = &feeder
        && !code_ok(f)
    {
        return Err(ApiError::bad_field("feeder", "not a feeder code"));
    }
    let mut areas: Vec<String> = Vec::new();
    for (i, a) in req.areas.unwrap_or_default().into_iter().enumerate() {
        let a = a.trim().to_owned();
        if !code_ok(&a) {
            return Err(ApiError::bad_field(
                format!("areas[{i}]"),
                "not an area code",
            ));
        }
        if !areas.contains(&a) {
            areas.push(a);
        }
    }
    if areas.len() > MAX_AREAS {
        return Err(ApiError::bad_field(
            "areas",
            format!("more than {MAX_AREAS} areas"),
        ));
    }
    if feeder.is_none() && areas.is_empty() {
        return Err(ApiError::bad_field(
            "feeder",
            "give a feeder code or a list of transformer areas",
        ));
    }
    let start = parse_time("start", &req.start, tz)?;
    let end = parse_time("end", &req.end, tz)?;
    let now = desk.now();
    if start <= now {
        return Err(ApiError::bad_field("start", "is in the past"));
    }
    if end <= start {
        return Err(ApiError::bad_field("end", "is not after start"));
    }
    if end - start > chrono::Duration::days(7) {
        return Err(ApiError::bad_field("end", "more than 7 days after start"));
    }
    let reason = clean("reason", req.reason)?;
    let area_text = clean("area", req.area)?;
    let directory = desk.directory();
    for (needed, query) in [
        (feeder.is_some(), "customers_on_feeder"),
        (!areas.is_empty(), "customers_in_area"),
    ] {
        if needed && !directory.has(query) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("[marketing.queries] {query} is not configured"),
            ));
        }
    }
    let target = feeder.as_ref().map_or_else(
        || format!("areas {}", areas.join(",")),
        |f| format!("feeder {f}"),
    );
    if let Err(refused) =
        scope::check_outage(&caller, Some(directory), feeder.as_deref(), &areas).await
    {
        return Err(refused
            .into_api(&shared, &caller, AuditAction::Outage, Some(target))
            .await);
    }
    let short_notice = (start - now)
        .to_std()
        .is_ok_and(|lead| lead < config.outages.min_lead);
    let spec = OutageSpec {
        feeder,
        areas,
        area_text,
        station: None,
        start,
        end,
        reason,
    };
    let id = desk
        .record_manual(spec, &caller.0.name)
        .await
        .map_err(unavailable)?;
    if short_notice {
        tracing::warn!(
            outage = id,
            "outage announced with less than [outages] min_lead notice"
        );
    }
    let report = desk.announce(id, &config.templates).await.map_err(|e| {
        tracing::error!(outage = id, error = %e, "outage announcement interrupted; resumed at the next poll");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("outage {id} recorded but not every notice could be queued ({e}); the rest is queued when the marketing database answers"),
        )
    })?;
    shared.wake.notify_one();
    let entry = AuditEntry::new(now, caller.0.name.clone(), AuditAction::Outage)
        .target(target)
        .recipients(report.recipients)
        .batch(format!("outage:{id}"))
        .detail(serde_json::json!({ "outage_id": id, "skipped": report.skipped_total() }));
    audit::record_alone(&shared.store, entry).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Announced::of(report, short_notice)),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub limit: Option<u32>,
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Outage>>, ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::bad_field("query", e.body_text()))?;
    let desk = desk(&shared)?;
    let list = desk
        .list(q.limit.unwrap_or(50).clamp(1, 500))
        .await
        .map_err(unavailable)?;
    Ok(Json(list))
}

#[derive(Debug, Serialize)]
pub struct OutageDetail {
    #[serde(flatten)]
    pub outage: Outage,
    /// Notices recorded per kind (planned, reminder, changed, cancelled).
    pub notices: BTreeMap<String, i64>,
}

/// The outage `id`, or 404.
async fn outage_or_404(desk: &OutageDesk, id: i64) -> Result<Outage, ApiError> {
    desk.get(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("outage {id} not found")))
}

pub async fn get_one(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<OutageDetail>, ApiError> {
    caller.require(Scope::Read)?;
    let desk = desk(&shared)?;
    let outage = outage_or_404(desk, id).await?;
    let notices = desk
        .notice_counts(id)
        .await
        .map_err(unavailable)?
        .into_iter()
        .collect();
    Ok(Json(OutageDetail { outage, notices }))
}

pub async fn cancel(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Announced>, ApiError> {
    caller.require(Scope::Outage)?;
    let desk = desk(&shared)?;
    let outage = outage_or_404(desk, id).await?;
    let target = format!("outage {id}");
    if let Err(refused) = scope::check_outage(
        &caller,
        Some(desk.directory()),
        outage.feeder.as_deref(),
        &outage.areas,
    )
    .await
    {
        return Err(refused
            .into_api(&shared, &caller, AuditAction::Cancel, Some(target))
            .await);
    }
    let config = shared.config();
    let report = desk
        .cancel(id, &config.templates)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("outage {id} not found")))?;
    shared.wake.notify_one();
    let entry = AuditEntry::new(
        shared.clock.now(),
        caller.0.name.clone(),
        AuditAction::Cancel,
    )
    .target(target)
    .recipients(report.recipients)
    .detail(serde_json::json!({ "outage_id": id, "cancellation_notices": report.recipients }));
    audit::record_alone(&shared.store, entry).await;
    Ok(Json(Announced::of(report, false)))
}
