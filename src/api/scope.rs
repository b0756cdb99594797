//! Supply-station scopes: what a token limited by `stations = [...]` may reach, and what needs
//! the `admin` scope.
//!
//! Rules (documented in README "Staff operations"):
//! - A bureau-wide token (no `stations`) may send within its scopes; a broadcast to the whole
//!   bureau (no stations, feeders or areas named) needs `admin`. An outage always names a
//!   feeder or areas, so the 95598 desk's `outage` token needs no more than that.
//! - A station-scoped token reaches only its stations' customers: accounts whose station code
//!   starts with one of its prefixes; feeders and areas all of whose stations (per the
//!   marketing `feeder_station` query, `Directory::stations_of`) are within its prefixes;
//!   broadcast audience stations that lie within its prefixes. It may not send to raw phone
//!   numbers (a number cannot be proven to be its station's customer), nor cancel others'
//!   messages. When the marketing database is not configured or unreachable, the check cannot
//!   be made and the request is refused with 503 (never allowed blind).
//!
//! Every refusal is answered 403 with the reason and recorded in the audit trail
//! ([`ScopeError::into_api`]).

use super::{ApiError, Caller};
use crate::daemon::state::Shared;
use crate::marketing::Directory;
use crate::store::audit::{self, AuditAction, AuditEntry, AuditResult};
use axum::http::StatusCode;

/// Why a scope check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// Not allowed: 403.
    Refused(String),
    /// Could not be checked (no marketing database, or it failed): 503.
    Unavailable(String),
}

impl ScopeError {
    pub fn reason(&self) -> &str {
        match self {
            ScopeError::Refused(r) | ScopeError::Unavailable(r) => r,
        }
    }

    /// Records the refusal in the audit trail (action `action`, aimed at `target`) and turns
    /// it into the API's answer.
    pub async fn into_api(
        self,
        shared: &Shared,
        caller: &Caller,
        action: AuditAction,
        target: Option<String>,
    ) -> ApiError {
        let (status, result) = match &self {
            ScopeError::Refused(r) => (StatusCode::FORBIDDEN, AuditResult::Refused(r.clone())),
            ScopeError::Unavailable(r) => (
                StatusCode::SERVICE_UNAVAILABLE,
                AuditResult::Error(r.clone()),
            ),
        };
        refuse_audited(shared, caller, action, target, result).await;
        ApiError::new(status, self.reason().to_owned())
    }
}

/// Writes a refusal (or an error) to the audit trail; a failure to write is logged, not
/// hidden behind the caller's own error.
pub async fn refuse_audited(
    shared: &Shared,
    caller: &Caller,
    action: AuditAction,
    target: Option<String>,
    result: AuditResult,
) {
    let mut entry = AuditEntry::new(shared.clock.now(), caller.0.name.clone(), action);
    entry.target = target;
    entry.result = result;
    if let Err(error) = shared.store.call(move |c| audit::record(c, &entry)).await {
        tracing::error!(%error, "cannot record a refusal in the audit trail");
    }
}

/// A missing scope, audited: like [`Caller::require`] but the refusal is recorded.
pub async fn require_audited(
    shared: &Shared,
    caller: &Caller,
    scope: crate::config::Scope,
    action: AuditAction,
    target: Option<String>,
) -> Result<(), ApiError> {
    match caller.require(scope) {
        Ok(()) => Ok(()),
        Err(e) => {
            refuse_audited(
                shared,
                caller,
                action,
                target,
                AuditResult::Refused(e.message.clone()),
            )
            .await;
            Err(e)
        }
    }
}

fn stations_text(caller: &Caller) -> String {
    caller.0.stations.join(", ")
}

/// A send to raw phone numbers: bureau-wide tokens only.
pub fn check_phone_send(caller: &Caller) -> Result<(), ScopeError> {
    if caller.0.is_station_scoped() {
        return Err(ScopeError::Refused(format!(
            "token {:?} is limited to stations {}: send by account, not to phone numbers",
            caller.0.name,
            stations_text(caller)
        )));
    }
    Ok(())
}

/// A send to an account whose station (from the marketing database) is `station`.
pub fn check_account(
    caller: &Caller,
    account: &str,
    station: Option<&str>,
) -> Result<(), ScopeError> {
    if !caller.0.is_station_scoped() {
        return Ok(());
    }
    match station {
        Some(s) if caller.0.covers_station(s) => Ok(()),
        Some(s) => Err(ScopeError::Refused(format!(
            "account {account} belongs to station {s}, outside token {:?}'s stations {}",
            caller.0.name,
            stations_text(caller)
        ))),
        None => Err(ScopeError::Refused(format!(
            "account {account} has no station in the marketing database; token {:?} is \
             limited to stations {}",
            caller.0.name,
            stations_text(caller)
        ))),
    }
}

/// Whether an audience station code lies within the token's stations: the code must start
/// with one of the token's prefixes (a narrower or equal code).
fn covers_prefix(caller: &Caller, station: &str) -> bool {
    caller.0.covers_station(station)
}

/// Every station of a feeder (or an area) must be within the token's stations.
async fn check_supply(
    caller: &Caller,
    directory: Option<&Directory>,
    feeder: Option<&str>,
    area: Option<&str>,
) -> Result<(), ScopeError> {
    let what = match (feeder, area) {
        (Some(f), _) => format!("feeder {f}"),
        (None, Some(a)) => format!("area {a}"),
        (None, None) => return Ok(()),
    };
    let Some(directory) = directory else {
        return Err(ScopeError::Unavailable(format!(
            "cannot check {what} against token {:?}'s stations: no marketing database is configured",
            caller.0.name
        )));
    };
    let stations = directory.stations_of(feeder, area).await.map_err(|e| {
        ScopeError::Unavailable(format!("cannot look up the stations of {what}: {e}"))
    })?;
    if stations.is_empty() {
        return Err(ScopeError::Refused(format!(
            "{what} is not known to belong to any station; token {:?} is limited to stations {}",
            caller.0.name,
            stations_text(caller)
        )));
    }
    if let Some(outside) = stations.iter().find(|s| !covers_prefix(caller, s)) {
        return Err(ScopeError::Refused(format!(
            "{what} belongs to station {outside}, outside token {:?}'s stations {}",
            caller.0.name,
            stations_text(caller)
        )));
    }
    Ok(())
}

/// An outage notice for `feeder` or `areas`: the hook the outages endpoint calls. A
/// bureau-wide token passes (its `outage` scope is checked by the endpoint); a station-scoped
/// one only for feeders and areas of its stations.
pub async fn check_outage(
    caller: &Caller,
    directory: Option<&Directory>,
    feeder: Option<&str>,
    areas: &[String],
) -> Result<(), ScopeError> {
    if !caller.0.is_station_scoped() {
        return Ok(());
    }
    if feeder.is_none() && areas.is_empty() {
        return Err(ScopeError::Refused(
            "an outage notice must name a feeder or areas".to_owned(),
        ));
    }
    check_supply(caller, directory, feeder, None).await?;
    for area in areas {
        check_supply(caller, directory, None, Some(area)).await?;
    }
    Ok(())
}

/// A broadcast audience. Empty = the whole bureau: `admin` only.
pub async fn check_broadcast(
    caller: &Caller,
    directory: Option<&Directory>,
    stations: &[String],
    feeders: &[String],
    areas: &[String],
) -> Result<(), ScopeError> {
    let bureau_wide = stations.is_empty() && feeders.is_empty() && areas.is_empty();
    if !caller.0.is_station_scoped() {
        if bureau_wide && !caller.0.allows(crate::config::Scope::Admin) {
            return Err(ScopeError::Refused(format!(
                "a broadcast to the whole bureau needs the admin scope; token {:?} may name \
                 stations, feeders or areas",
                caller.0.name
            )));
        }
        return Ok(());
    }
    if bureau_wide {
        return Err(ScopeError::Refused(format!(
            "token {:?} is limited to stations {}: name them in audience.stations",
            caller.0.name,
            stations_text(caller)
        )));
    }
    if let Some(outside) = stations.iter().find(|s| !covers_prefix(caller, s)) {
        return Err(ScopeError::Refused(format!(
            "station {outside} is outside token {:?}'s stations {}",
            caller.0.name,
            stations_text(caller)
        )));
    }
    for feeder in feeders {
        check_supply(caller, directory, Some(feeder), None).await?;
    }
    for area in areas {
        check_supply(caller, directory, None, Some(area)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiToken, Scope, Secret};

    fn caller(stations: &[&str], scopes: &[Scope]) -> Caller {
        Caller(ApiToken {
            name: "t".into(),
            secret_file: Default::default(),
            secret: Secret::new("x"),
            scopes: scopes.to_vec(),
            stations: stations.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn accounts_by_station_prefix() {
        let scoped = caller(&["330112"], &[Scope::Send]);
        assert!(check_account(&scoped, "1", Some("33011201")).is_ok());
        assert!(check_account(&scoped, "1", Some("33011301")).is_err());
        assert!(check_account(&scoped, "1", None).is_err());
        let wide = caller(&[], &[Scope::Send]);
        assert!(check_account(&wide, "1", None).is_ok());
        assert!(check_phone_send(&scoped).is_err());
        assert!(check_phone_send(&wide).is_ok());
    }

    #[tokio::test]
    async fn broadcast_audiences() {
        let scoped = caller(&["330112"], &[Scope::Broadcast]);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(
            check_broadcast(&scoped, None, &s(&["33011201"]), &[], &[])
                .await
                .is_ok()
        );
        assert!(
            check_broadcast(&scoped, None, &s(&["3301"]), &[], &[])
                .await
                .is_err()
        );
        assert!(check_broadcast(&scoped, None, &[], &[], &[]).await.is_err());
        // feeders need the marketing database to be checked
        assert!(matches!(
            check_broadcast(&scoped, None, &[], &s(&["F1"]), &[]).await,
            Err(ScopeError::Unavailable(_))
        ));
        let wide = caller(&[], &[Scope::Broadcast]);
        assert!(check_broadcast(&wide, None, &[], &[], &[]).await.is_err());
        assert!(
            check_broadcast(&wide, None, &[], &s(&["F1"]), &[])
                .await
                .is_ok()
        );
        let admin = caller(&[], &[Scope::Admin]);
        assert!(check_broadcast(&admin, None, &[], &[], &[]).await.is_ok());
    }
}
