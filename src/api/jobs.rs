//! `GET /api/v1/jobs` (read): the marketing source's state and every configured job with its
//! schedule, state, next run, last error and recent runs. `POST /api/v1/jobs/{name}/run`
//! (admin): run a job now; `?wait=true` answers with the finished run (bounded wait),
//! otherwise 202 at once.

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::marketing::jobs::{self, RunnerView};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Longest a `?wait=true` trigger holds the request.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

pub async fn list(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<RunnerView>, ApiError> {
    caller.require(Scope::Read)?;
    let mut view = shared.jobs.get().map(|h| h.view()).unwrap_or_default();
    let names = view.jobs.iter().map(|j| j.name.clone()).collect();
    let mut runs = jobs::recent_runs(&shared, names)
        .await
        .map_err(ApiError::unavailable)?;
    for j in &mut view.jobs {
        j.last_runs = runs.remove(&j.name).unwrap_or_default();
    }
    Ok(Json(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    #[serde(default)]
    pub wait: bool,
}

pub async fn run(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(params): Query<RunParams>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller.require(Scope::Admin)?;
    let handle = shared
        .jobs
        .get()
        .ok_or_else(|| ApiError::not_found("the job runner is not running"))?;
    if !handle.view().jobs.iter().any(|j| j.name == name) {
        return Err(ApiError::not_found(format!(
            "no job named {name:?} is configured"
        )));
    }
    let done = handle
        .trigger(&name)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    tracing::info!(job = %name, token = %caller.0.name, "job run requested");
    if !params.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"job": name, "triggered": true})),
        ));
    }
    match tokio::time::timeout(MAX_WAIT, done).await {
        Ok(Ok(Ok(run))) => Ok((StatusCode::OK, Json(serde_json::json!(run)))),
        Ok(Ok(Err(e))) => Err(ApiError::not_found(e)),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the job runner stopped before the run finished",
        )),
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"job": name, "triggered": true, "finished": false})),
        )),
    }
}
