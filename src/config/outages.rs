//! `[outages]`: polling the marketing database for planned outages (a job of the marketing
//! runner, `every`/`at` read like the other jobs' schedules), and when the second (day-before)
//! notice goes out (checked at each run of the job).
//!
//! Notices for an outage are sent at once whatever its lead time (a customer warned an hour
//! ahead is better off than one not warned); they expire at the outage start. `min_lead` only
//! marks outages announced later than it as short notice: logged as a warning and answered
//! with `"short_notice": true` by the API, so the desk knows the rules' notice period was missed.

use super::marketing::{Schedule, schedule};
use super::{KeyPath, Problems, format_duration, parse_duration};
use chrono::NaiveTime;
use serde::{Deserialize, Serialize, Serializer};
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutages {
    pub enabled: Option<bool>,
    pub every: Option<String>,
    pub at: Option<Vec<String>>,
    pub day_before_at: Option<String>,
    pub min_lead: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutagesConfig {
    /// Poll the `outages` query (when `[marketing.queries]` has one).
    pub enabled: bool,
    #[serde(flatten)]
    pub schedule: Schedule,
    /// Local time of the day before an outage when the reminder goes out.
    #[serde(serialize_with = "ser_time")]
    pub day_before_at: NaiveTime,
    #[serde(serialize_with = "ser_duration")]
    pub min_lead: Duration,
}

pub const DEFAULT_EVERY: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_MIN_LEAD: Duration = Duration::from_secs(24 * 3600);

impl Default for OutagesConfig {
    fn default() -> Self {
        OutagesConfig {
            enabled: true,
            schedule: Schedule::Every(DEFAULT_EVERY),
            day_before_at: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
            min_lead: DEFAULT_MIN_LEAD,
        }
    }
}

fn ser_time<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format("%H:%M"))
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn time_of_day(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()
}

pub(super) fn validate(raw: RawOutages, at: &KeyPath, p: &mut Problems) -> OutagesConfig {
    let d = OutagesConfig::default();
    let schedule = schedule(
        raw.every.as_deref(),
        raw.at.as_deref(),
        d.schedule.clone(),
        at,
        p,
    );
    let day_before_at = match raw.day_before_at.as_deref() {
        None => d.day_before_at,
        Some(t) => time_of_day(t).unwrap_or_else(|| {
            p.error(
                &at.key("day_before_at"),
                format!("{t:?}: expected a local time such as \"18:00\""),
            );
            d.day_before_at
        }),
    };
    let min_lead = match raw.min_lead.as_deref() {
        None => d.min_lead,
        Some(text) => match parse_duration(text) {
            Ok(v) if v <= Duration::from_secs(30 * 86_400) => v,
            Ok(_) => {
                p.error(&at.key("min_lead"), "must be at most 30d");
                d.min_lead
            }
            Err(e) => {
                p.error(&at.key("min_lead"), e.to_string());
                d.min_lead
            }
        },
    };
    OutagesConfig {
        enabled: raw.enabled.unwrap_or(true),
        schedule,
        day_before_at,
        min_lead,
    }
}
