//! The config file's shape, exactly as serde reads it: every table refuses unknown keys, every
//! key is optional here, and values that need checking arrive as plain strings and numbers so
//! that `validate` can report every problem at once instead of serde's first.
//!
//! Later sections (`[marketing]`, `[inbound]`, `[templates]`, token `stations`) are added as
//! new optional fields here and checked in `validate`; old files stay valid.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub storage: Option<RawStorage>,
    #[serde(default)]
    pub modem: Vec<RawModem>,
    pub dispatch: Option<RawDispatch>,
    pub api: Option<RawApi>,
    pub log: Option<RawLog>,
    pub templates: Option<super::templates::RawTemplates>,
    pub outages: Option<super::outages::RawOutages>,
    pub demo: Option<super::demo::RawDemo>,
    pub marketing: Option<super::marketing::RawMarketing>,
    pub reports: Option<super::staff::RawReports>,
    pub inbound: Option<super::inbound::RawInbound>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub path: Option<String>,
    pub retention_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModem {
    pub name: Option<String>,
    pub device: Option<String>,
    pub baud: Option<i64>,
    pub pin: Option<String>,
    pub pin_file: Option<String>,
    pub smsc: Option<String>,
    pub hourly_limit: Option<i64>,
    pub daily_limit: Option<i64>,
    pub monthly_limit: Option<i64>,
    pub min_interval: Option<String>,
    pub enabled: Option<bool>,
    pub allow_reset: Option<bool>,
    pub send_timeout: Option<String>,
    pub carrier: Option<String>,
    pub price_per_segment: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDispatch {
    pub timezone: Option<String>,
    pub quiet_hours: Option<String>,
    pub quiet_hours_categories: Option<Vec<String>>,
    pub max_attempts: Option<i64>,
    pub backoff: Option<RawBackoff>,
    pub status_reports: Option<bool>,
    pub validity: Option<String>,
    pub on_crash: Option<RawOnCrash>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    pub initial: Option<String>,
    pub max: Option<String>,
    pub multiplier: Option<f64>,
    pub jitter: Option<f64>,
}

/// Keys are the categories, so a misspelt category is an unknown key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnCrash {
    pub outage: Option<String>,
    pub reply: Option<String>,
    pub manual: Option<String>,
    pub bill: Option<String>,
    pub reminder: Option<String>,
    pub broadcast: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub listen: Option<String>,
    #[serde(default)]
    pub tokens: Vec<RawToken>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub name: Option<String>,
    pub secret_file: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub stations: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}
