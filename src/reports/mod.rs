//! Reports for people: delivery statistics, the failed-number list, SIM usage and cost.
//!
//! Data flow: the store thread streams rows of a period ([`query`]) into pure aggregators
//! ([`delivery::Aggregate`]), so memory grows with the number of report rows (days × categories
//! × stations × SIMs), never with the number of messages. The API serves the typed reports as
//! JSON; the CLI renders the same types as CSV ([`csv`]) in UTF-8 with a byte-order mark
//! (spreadsheet programs on Chinese Windows need it), with dates and money for people.
//!
//! Money is counted exactly in 0.0001-yuan units ([`crate::config::PRICE_UNITS_PER_YUAN`]):
//! a SIM's price is its modem's `price_per_segment`, else its carrier's in `[reports]`, else
//! unknown (cost 0, flagged `priced: false`).

pub mod csv;
pub mod delivery;
pub mod query;

use crate::config::{Config, PRICE_UNITS_PER_YUAN};
use crate::daemon::state::ModemView;
use crate::message::Carrier;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use delivery::{DeliveryReport, DeliveryRow, DeliveryTotals};

/// The period a report covers: `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Price per segment of modem `name` in 0.0001-yuan units: its own price, else its carrier's
/// (configured, or read from its SIM), else `None`.
pub fn price_of_modem(config: &Config, live: &[ModemView], name: &str) -> Option<i64> {
    let modem = config.modems.iter().find(|m| m.name == name);
    if let Some(units) = modem
        .and_then(|m| m.price_per_segment)
        .and_then(crate::config::price_units)
    {
        return Some(units);
    }
    let carrier = modem.and_then(|m| m.carrier).or_else(|| {
        live.iter()
            .find(|v| v.name == name)
            .and_then(|v| carrier_named(&v.carrier))
    })?;
    config.reports.carrier_price(carrier)
}

fn carrier_named(s: &str) -> Option<Carrier> {
    [
        Carrier::ChinaMobile,
        Carrier::ChinaUnicom,
        Carrier::ChinaTelecom,
        Carrier::ChinaBroadnet,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
}

/// 0.0001-yuan units → "12.30" (yuan, two decimals, half up).
pub fn yuan(units: i64) -> String {
    let per_fen = PRICE_UNITS_PER_YUAN / 100;
    let fen = if units >= 0 {
        (units + per_fen / 2) / per_fen
    } else {
        (units - per_fen / 2) / per_fen
    };
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.abs();
    format!("{sign}{}.{:02}", fen / 100, fen % 100)
}

/// The local calendar day of `t` in `tz`.
pub fn local_day(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The failed-number report: numbers with a permanent failure, or at least `threshold`
/// failed messages in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedNumbersReport {
    pub period: Period,
    pub threshold: u32,
    pub numbers: Vec<FailedNumberRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedNumberRow {
    /// E.164.
    pub number: String,
    /// Permanent failures counted for the number (all time, from the failed-number counters).
    pub permanent_failures: u64,
    /// Messages to the number that ended `failed` in the period (any cause).
    pub failed_messages: u64,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Accounts that list the number: on messages sent to it and in active bindings.
    pub accounts: Vec<String>,
}

/// SIM usage against limits now, and segments and cost per month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimsReport {
    pub period: Period,
    pub sims: Vec<SimUsageRow>,
    pub months: Vec<SimMonthRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimUsageRow {
    pub modem: String,
    pub sim_iccid: Option<String>,
    pub carrier: String,
    pub sent_hour: u64,
    pub hourly_limit: u32,
    pub sent_day: u64,
    pub daily_limit: u32,
    pub sent_month: u64,
    pub monthly_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimMonthRow {
    /// "2026-11".
    pub month: String,
    pub sim_iccid: String,
    /// The modem currently holding the SIM, if any.
    pub modem: Option<String>,
    pub segments: u64,
    pub cost_units: i64,
    /// Yuan, two decimals.
    pub cost: String,
    pub priced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_for_people() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(500), "0.05");
        assert_eq!(yuan(123_000), "12.30");
        assert_eq!(yuan(1_350), "0.14"); // 0.135 rounds half up
        assert_eq!(yuan(1_349), "0.13");
        assert_eq!(yuan(-500), "-0.05");
    }
}
