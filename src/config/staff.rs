//! Staff-operation settings: supply-station scopes on `[[api.tokens]]` (`stations = [...]`)
//! and the `[reports]` section (prices per carrier, the failed-number threshold).
//!
//! Prices are held as integer units of 0.0001 yuan ([`PRICE_UNITS_PER_YUAN`]) so report sums
//! are exact; a price with more than four decimals is refused.

use super::{KeyPath, Problems};
use crate::message::Carrier;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Money in reports is counted in these units per yuan (1 unit = 0.01 fen).
pub const PRICE_UNITS_PER_YUAN: i64 = 10_000;
/// Default: a number with this many temporary failures is listed in the failed-number report.
pub const DEFAULT_TEMPORARY_FAILURES: u32 = 3;

/// `[reports]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    /// Yuan per segment by carrier name, for SIMs without their own `price_per_segment`.
    pub price_per_segment: Option<BTreeMap<String, f64>>,
    /// Temporary failures (in the report's period) that list a number.
    pub temporary_failures: Option<i64>,
}

/// `[reports]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportsConfig {
    /// Price per segment by carrier name (`china-mobile`, …), in 0.0001-yuan units.
    #[serde(serialize_with = "ser_prices")]
    pub price_per_segment: BTreeMap<String, i64>,
    pub temporary_failures: u32,
}

impl ReportsConfig {
    /// The configured price for a carrier, in 0.0001-yuan units.
    pub fn carrier_price(&self, carrier: Carrier) -> Option<i64> {
        self.price_per_segment.get(carrier.as_str()).copied()
    }
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            price_per_segment: BTreeMap::new(),
            temporary_failures: DEFAULT_TEMPORARY_FAILURES,
        }
    }
}

fn ser_prices<S: serde::Serializer>(m: &BTreeMap<String, i64>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for (c, units) in m {
        map.serialize_entry(c, &(*units as f64 / PRICE_UNITS_PER_YUAN as f64))?;
    }
    map.end()
}

/// Yuan (as configured) → 0.0001-yuan units; `None` when negative, not finite or finer than
/// four decimals.
pub fn price_units(yuan: f64) -> Option<i64> {
    if !yuan.is_finite() || !(0.0..=1_000.0).contains(&yuan) {
        return None;
    }
    let units = (yuan * PRICE_UNITS_PER_YUAN as f64).round();
    ((units - yuan * PRICE_UNITS_PER_YUAN as f64).abs() < 1e-6).then_some(units as i64)
}

const CARRIERS: [Carrier; 4] = [
    Carrier::ChinaMobile,
    Carrier::ChinaUnicom,
    Carrier::ChinaTelecom,
    Carrier::ChinaBroadnet,
];

pub fn reports(raw: Option<RawReports>, at: &KeyPath, p: &mut Problems) -> ReportsConfig {
    let raw = raw.unwrap_or_default();
    let mut out = ReportsConfig::default();
    for (name, yuan) in raw.price_per_segment.unwrap_or_default() {
        let key = at.key("price_per_segment").key(&name);
        let Some(carrier) = CARRIERS.into_iter().find(|c| c.as_str() == name) else {
            p.error(
                &key,
                format!(
                    "unknown carrier {name:?} (expected one of: china-mobile, china-unicom, \
                     china-telecom, china-broadnet)"
                ),
            );
            continue;
        };
        match price_units(yuan) {
            Some(units) => {
                out.price_per_segment
                    .insert(carrier.as_str().to_owned(), units);
            }
            None => p.error(
                &key,
                format!("{yuan}: expected yuan per segment, 0 to 1000 with at most 4 decimals"),
            ),
        }
    }
    if let Some(n) = raw.temporary_failures {
        match u32::try_from(n) {
            Ok(n) if (1..=1000).contains(&n) => out.temporary_failures = n,
            _ => p.error(
                &at.key("temporary_failures"),
                format!("{n}: expected 1 to 1000"),
            ),
        }
    }
    out
}

/// A token's `stations`: organisation-code prefixes (digits and letters, 2 to 32 long).
/// A station-scoped token cannot also be `admin` (admin is bureau-wide by definition).
pub fn token_stations(
    raw: Option<Vec<String>>,
    is_admin: bool,
    at: &KeyPath,
    p: &mut Problems,
) -> Vec<String> {
    let Some(list) = raw else {
        return Vec::new();
    };
    let at = at.key("stations");
    if list.is_empty() {
        p.error(
            &at,
            "empty: leave `stations` out for a bureau-wide token, or list its stations",
        );
    }
    let mut out: Vec<String> = Vec::new();
    for (i, s) in list.into_iter().enumerate() {
        let ok = (2..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            p.error(
                &at.index(i),
                format!("{s:?}: expected an organisation code such as \"33011201\""),
            );
        } else if out.contains(&s) {
            p.error(&at.index(i), format!("{s:?} is listed twice"));
        } else {
            out.push(s);
        }
    }
    if is_admin && !out.is_empty() {
        p.error(
            &at,
            "a station-scoped token cannot hold the admin scope (admin is bureau-wide)",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_units() {
        assert_eq!(price_units(0.05), Some(500));
        assert_eq!(price_units(0.045), Some(450));
        assert_eq!(price_units(0.0), Some(0));
        assert_eq!(price_units(0.12345), None);
        assert_eq!(price_units(-0.1), None);
        assert_eq!(price_units(f64::NAN), None);
    }
}
