//! Delivery statistics per local day × category × station × SIM (pure aggregation).
//!
//! Every message created in the period is counted once, in the column of its current state;
//! so `accepted = queued + sent + delivered + failed + expired + cancelled` on every row and
//! in the totals. `queued` includes messages being sent right now. `segments` are the segments
//! that reached the network (got a TP-MR): what the carrier bills, whatever happened after.

use super::{Period, local_day, yuan};
use crate::message::MessageState;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the store tells about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFacts {
    pub created_at: DateTime<Utc>,
    pub category: String,
    pub station: Option<String>,
    pub modem: Option<String>,
    pub sim_iccid: Option<String>,
    pub state: MessageState,
    /// Segments with a TP-MR.
    pub segments_on_air: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub accepted: u64,
    pub queued: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub expired: u64,
    pub cancelled: u64,
    pub segments: u64,
}

impl Counts {
    fn add(&mut self, f: &MessageFacts) {
        self.accepted += 1;
        match f.state {
            MessageState::Queued | MessageState::Sending => self.queued += 1,
            MessageState::Sent => self.sent += 1,
            MessageState::Delivered => self.delivered += 1,
            MessageState::Failed => self.failed += 1,
            MessageState::Expired => self.expired += 1,
            MessageState::Cancelled => self.cancelled += 1,
        }
        self.segments += f.segments_on_air;
    }

    fn merge(&mut self, o: &Counts) {
        self.accepted += o.accepted;
        self.queued += o.queued;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.expired += o.expired;
        self.cancelled += o.cancelled;
        self.segments += o.segments;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    day: NaiveDate,
    category: String,
    station: Option<String>,
    modem: Option<String>,
    sim_iccid: Option<String>,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    /// Local date (the configured time zone) the messages were accepted.
    pub day: NaiveDate,
    pub category: String,
    pub station: Option<String>,
    /// The modem of the last send attempt; none for messages never claimed.
    pub modem: Option<String>,
    pub sim_iccid: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Exact, in 0.0001-yuan units.
    pub cost_units: i64,
    /// Yuan, two decimals.
    pub cost: String,
    /// False when no price is configured for the SIM (its cost counts as 0).
    pub priced: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTotals {
    #[serde(flatten)]
    pub counts: Counts,
    pub cost_units: i64,
    pub cost: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub period: Period,
    pub timezone: String,
    pub rows: Vec<DeliveryRow>,
    pub totals: DeliveryTotals,
}

/// Adds messages up, one at a time.
#[derive(Debug)]
pub struct Aggregate {
    tz: Tz,
    cells: BTreeMap<Key, Counts>,
}

impl Aggregate {
    pub fn new(tz: Tz) -> Self {
        Aggregate {
            tz,
            cells: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, f: &MessageFacts) {
        let key = Key {
            day: local_day(f.created_at, self.tz),
            category: f.category.clone(),
            station: f.station.clone(),
            modem: f.modem.clone(),
            sim_iccid: f.sim_iccid.clone(),
        };
        self.cells.entry(key).or_default().add(f);
    }

    /// The report, rows ordered by day, category, station, modem; `price` gives a modem's
    /// price per segment in 0.0001-yuan units.
    pub fn finish(self, period: Period, price: impl Fn(&str) -> Option<i64>) -> DeliveryReport {
        let mut totals = DeliveryTotals::default();
        let rows: Vec<DeliveryRow> = self
            .cells
            .into_iter()
            .map(|(k, counts)| {
                let unit = k.modem.as_deref().and_then(&price);
                let cost_units = unit.unwrap_or(0) * counts.segments as i64;
                totals.counts.merge(&counts);
                totals.cost_units += cost_units;
                DeliveryRow {
                    day: k.day,
                    category: k.category,
                    station: k.station,
                    priced: unit.is_some() || counts.segments == 0,
                    modem: k.modem,
                    sim_iccid: k.sim_iccid,
                    counts,
                    cost_units,
                    cost: yuan(cost_units),
                }
            })
            .collect();
        totals.cost = yuan(totals.cost_units);
        DeliveryReport {
            period,
            timezone: self.tz.name().to_owned(),
            rows,
            totals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts(h: u32, state: MessageState, modem: Option<&str>, segs: u64) -> MessageFacts {
        MessageFacts {
            // 2026-11-27 16:00 UTC is 2026-11-28 00:00 in Shanghai.
            created_at: Utc.with_ymd_and_hms(2026, 11, 27, h, 0, 0).unwrap(),
            category: "manual".into(),
            station: Some("33011201".into()),
            modem: modem.map(str::to_owned),
            sim_iccid: modem.map(|m| format!("8986{m}")),
            state,
            segments_on_air: segs,
        }
    }

    #[test]
    fn rows_by_local_day_and_sim_add_up() {
        let mut a = Aggregate::new(chrono_tz::Asia::Shanghai);
        a.add(&facts(15, MessageState::Delivered, Some("m1"), 2));
        a.add(&facts(16, MessageState::Delivered, Some("m1"), 1));
        a.add(&facts(17, MessageState::Failed, Some("m1"), 1));
        a.add(&facts(17, MessageState::Sent, Some("m2"), 3));
        a.add(&facts(18, MessageState::Queued, None, 0));
        let period = Period {
            from: Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap(),
        };
        let r = a.finish(period, |m| (m == "m1").then_some(500));
        assert_eq!(r.rows.len(), 4);
        let day27 = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(r.rows[0].day, day27);
        assert_eq!(r.rows[0].counts.delivered, 1);
        assert_eq!(r.rows[0].cost, "0.10");
        let m1 = &r.rows[2];
        assert_eq!((m1.modem.as_deref(), m1.counts.accepted), (Some("m1"), 2));
        assert_eq!(
            (m1.counts.delivered, m1.counts.failed, m1.counts.segments),
            (1, 1, 2)
        );
        assert!(!r.rows[3].priced);
        let t = &r.totals.counts;
        assert_eq!(t.accepted, 5);
        assert_eq!(
            t.queued + t.sent + t.delivered + t.failed + t.expired + t.cancelled,
            t.accepted
        );
        assert_eq!(t.segments, 7);
        assert_eq!(r.totals.cost_units, 4 * 500);
    }
}
