//! `GET /api/v1/reports/{delivery,failed-numbers,sims}?from=&to=` (read scope).
//!
//! `from`/`to` are local dates (`2026-11-01`, `to` inclusive) or RFC 3339 times (`to`
//! exclusive); the default is the current local month up to now. A station-scoped token sees
//! only messages of its stations (delivery) and numbers listed by them (failed numbers); SIM
//! usage is bureau-wide, so it is refused to such a token (403, audited).

use super::{ApiError, Caller};
use crate::config::Scope;
use crate::daemon::state::Shared;
use crate::reports::{
    self, DeliveryReport, FailedNumbersReport, Period, SimMonthRow, SimUsageRow, SimsReport,
};
use crate::store::audit::{AuditAction, AuditResult};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use std::sync::Arc;

/// Longest period one report covers.
pub const MAX_DAYS: i64 = 400;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

fn local_midnight(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    let naive = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&naive)
        .earliest()
        // A zone that skips midnight (none in China) still gets a bound: its UTC reading.
        .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
}

/// A bound: a local date (start of that day; for `to`, the start of the next day) or an
/// RFC 3339 time.
pub(crate) fn bound(field: &str, v: &str, tz: Tz, is_end: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let d = if is_end { d.succ_opt().unwrap_or(d) } else { d };
        return Ok(local_midnight(tz, d));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_field(
                field,
                format!("{v:?}: expected a date (2026-11-28) or an RFC 3339 time"),
            )
        })
}

/// The period of `from`/`to`; `default_from` when `from` is missing, now when `to` is.
pub(crate) fn period(
    from: Option<&str>,
    to: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
    default_from: DateTime<Utc>,
) -> Result<Period, ApiError> {
    let from = from.map_or(Ok(default_from), |v| bound("from", v, tz, false))?;
    let to = to.map_or(Ok(now), |v| bound("to", v, tz, true))?;
    if to <= from {
        return Err(ApiError::bad_field("to", "is not after from"));
    }
    if to - from > Duration::days(MAX_DAYS) {
        return Err(ApiError::bad_field(
            "to",
            format!("the period is longer than {MAX_DAYS} days"),
        ));
    }
    Ok(Period { from, to })
}

/// Runs a report query on a read-only connection of its own (off the store thread, bounded by
/// [`reports::query::REPORT_TIMEOUT`]).
async fn on_reader<R, F>(shared: &Shared, f: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> Result<R, crate::store::StoreError> + Send + 'static,
{
    let path = shared.config().storage.path.clone();
    tokio::task::spawn_blocking(move || {
        let conn = reports::query::open_reader(&path, reports::query::REPORT_TIMEOUT)?;
        f(&conn)
    })
    .await
    .map_err(ApiError::unavailable)?
    .map_err(super::messages::store_error)
}

fn month_start(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&tz).date_naive();
    local_midnight(tz, local.with_day(1).unwrap_or(local))
}

async fn read_period(
    shared: &Shared,
    caller: &Caller,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<(Period, Tz), ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = q.map_err(|e| ApiError::bad_field("query", e.body_text()))?;
    let tz = shared.config().dispatch.timezone;
    let now = shared.clock.now();
    let p = period(
        q.from.as_deref(),
        q.to.as_deref(),
        tz,
        now,
        month_start(tz, now),
    )?;
    Ok((p, tz))
}

pub async fn delivery(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Json<DeliveryReport>, ApiError> {
    let (period, tz) = read_period(&shared, &caller, q).await?;
    let stations = caller.0.stations.clone();
    let agg = on_reader(&shared, move |c| {
        reports::query::delivery(c, period, tz, &stations)
    })
    .await?;
    let config = shared.config();
    let live = shared.modems();
    Ok(Json(agg.finish(period, |modem| {
        reports::price_of_modem(&config, &live, modem)
    })))
}

pub async fn failed_numbers(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Json<FailedNumbersReport>, ApiError> {
    let (period, _) = read_period(&shared, &caller, q).await?;
    let threshold = shared.config().reports.temporary_failures;
    let stations = caller.0.stations.clone();
    let numbers = on_reader(&shared, move |c| {
        reports::query::failed_numbers(c, period, threshold, &stations)
    })
    .await?;
    Ok(Json(FailedNumbersReport {
        period,
        threshold,
        numbers,
    }))
}

pub async fn sims(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> Result<Json<SimsReport>, ApiError> {
    let (period, tz) = read_period(&shared, &caller, q).await?;
    if caller.0.is_station_scoped() {
        let reason = format!(
            "token {:?} is limited to stations; SIM usage is bureau-wide",
            caller.0.name
        );
        super::scope::refuse_audited(
            &shared,
            &caller,
            AuditAction::Refused,
            Some("reports/sims".to_owned()),
            AuditResult::Refused(reason.clone()),
        )
        .await;
        return Err(ApiError::forbidden(reason));
    }
    let config = shared.config();
    let live = shared.modems();
    let label = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m").to_string();
    let (first, last) = (
        label(period.from),
        label(period.to - Duration::milliseconds(1)),
    );
    let months = on_reader(&shared, move |c| {
        reports::query::sim_months(c, &first, &last)
    })
    .await?;
    let months = months
        .into_iter()
        .map(|(month, iccid, segments)| {
            let modem = live
                .iter()
                .find(|v| v.iccid.as_deref() == Some(iccid.as_str()))
                .map(|v| v.name.clone());
            let price = modem
                .as_deref()
                .and_then(|m| reports::price_of_modem(&config, &live, m));
            let cost_units = price.unwrap_or(0) * segments as i64;
            SimMonthRow {
                month,
                sim_iccid: iccid,
                modem,
                segments,
                cost_units,
                cost: reports::yuan(cost_units),
                priced: price.is_some() || segments == 0,
            }
        })
        .collect();
    let sims = live
        .iter()
        .map(|v| SimUsageRow {
            modem: v.name.clone(),
            sim_iccid: v.iccid.clone(),
            carrier: v.carrier.clone(),
            sent_hour: v.sent_hour,
            hourly_limit: v.hourly_limit,
            sent_day: v.sent_day,
            daily_limit: v.daily_limit,
            sent_month: v.sent_month,
            monthly_limit: v.monthly_limit,
        })
        .collect();
    Ok(Json(SimsReport {
        period,
        sims,
        months,
    }))
}
