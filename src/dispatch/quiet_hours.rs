//! Quiet hours: a daily window of local time during which some categories are held back.
//!
//! The window is read in the configured zone, so it follows daylight-saving changes where a
//! zone has them; the instant it ends becomes the held message's `not_before`.

use crate::message::Category;
use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A daily window `start-end` of local wall-clock time; `start > end` wraps past midnight.
/// The start is inside the window, the end is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuietHoursError {
    #[error("expected \"HH:MM-HH:MM\" (e.g. \"21:00-08:00\"), got {0:?}")]
    Format(String),
    #[error(
        "start and end are both {0}: an empty or all-day window is ambiguous; to send at any hour, set quiet_hours_categories = []"
    )]
    Empty(String),
}

impl QuietHours {
    /// Whether a local time of day falls inside the window.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// If the instant `at` falls inside the window in zone `tz`, the instant the window ends.
    pub fn ends_after(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&tz).naive_local();
        if !self.contains(local.time()) {
            return None;
        }
        let today = local.date();
        // A wrapping window entered in the evening ends tomorrow morning.
        let end_day = if self.start > self.end && local.time() >= self.start {
            today.checked_add_days(Days::new(1))?
        } else {
            today
        };
        Some(first_instant_after(tz, end_day, self.end, at))
    }
}

/// The instant local `date time` happens, the first one later than `after`: a time skipped by a
/// DST jump resolves to the moment the clocks jump to; a repeated time to its first occurrence
/// unless that one is already past.
pub(crate) fn first_instant_after(
    tz: Tz,
    date: NaiveDate,
    time: NaiveTime,
    after: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut local = NaiveDateTime::new(date, time);
    // DST gaps are at most a few hours; step minute by minute through one (bounded loop).
    for _ in 0..=(24 * 60) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, second) => {
                let first = first.with_timezone(&Utc);
                return if first > after {
                    first
                } else {
                    second.with_timezone(&Utc)
                };
            }
            LocalResult::None => local += chrono::TimeDelta::minutes(1),
        }
    }
    // Unreachable for real zones; fall back to reading the local time as UTC.
    Utc.from_utc_datetime(&local)
}

/// Local midnight or any local time as an instant (DST gaps resolve forward).
pub(crate) fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    first_instant_after(tz, date, time, DateTime::<Utc>::MIN_UTC)
}

impl FromStr for QuietHours {
    type Err = QuietHoursError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || QuietHoursError::Format(s.to_owned());
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let parse = |p: &str| NaiveTime::parse_from_str(p.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (parse(a)?, parse(b)?);
        if start == end {
            return Err(QuietHoursError::Empty(start.format("%H:%M").to_string()));
        }
        Ok(QuietHours { start, end })
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl Serialize for QuietHours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QuietHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Quiet hours as the dispatcher applies them: a window, a zone and the categories it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct QuietPolicy {
    pub tz: Tz,
    pub window: QuietHours,
    /// Categories held during the window; outage and reply never should be.
    pub categories: Vec<Category>,
}

impl QuietPolicy {
    /// `Some(not_before)` when a message of `category` may not be sent at `at`.
    pub fn hold(&self, category: Category, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.categories.contains(&category) {
            return None;
        }
        self.window.ends_after(self.tz, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        match Utc.with_ymd_and_hms(y, mo, d, h, mi, 0) {
            LocalResult::Single(t) => t,
            _ => panic!("bad test date"),
        }
    }

    fn qh(s: &str) -> QuietHours {
        match s.parse() {
            Ok(q) => q,
            Err(e) => panic!("{e}"),
        }
    }

    fn policy(window: &str) -> QuietPolicy {
        QuietPolicy {
            tz: chrono_tz::Asia::Shanghai,
            window: qh(window),
            categories: vec![Category::Bill, Category::Reminder, Category::Broadcast],
        }
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(qh("21:00-08:00").to_string(), "21:00-08:00");
        assert_eq!(qh(" 9:05 - 17:30 ").to_string(), "09:05-17:30");
        for bad in [
            "",
            "21:00",
            "21-08",
            "25:00-08:00",
            "21:00-08:60",
            "21:00/08:00",
        ] {
            assert!(
                matches!(bad.parse::<QuietHours>(), Err(QuietHoursError::Format(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "08:00-08:00".parse::<QuietHours>(),
            Err(QuietHoursError::Empty(_))
        ));
    }

    /// (UTC instant, category, expected not_before) in Asia/Shanghai (UTC+8, no DST).
    #[test]
    fn wrapping_window_in_shanghai() {
        let p = policy("21:00-08:00");
        let cases = [
            // 20:59 local: not yet quiet.
            (utc(2026, 3, 10, 12, 59), Category::Bill, None),
            // 21:00 local: quiet until 08:00 tomorrow local = 00:00 UTC tomorrow.
            (
                utc(2026, 3, 10, 13, 0),
                Category::Bill,
                Some(utc(2026, 3, 11, 0, 0)),
            ),
            // 23:59 local on the last day of the month: ends on the 1st.
            (
                utc(2026, 3, 31, 15, 59),
                Category::Broadcast,
                Some(utc(2026, 4, 1, 0, 0)),
            ),
            // 03:00 local: same local day's 08:00.
            (
                utc(2026, 3, 10, 19, 0),
                Category::Reminder,
                Some(utc(2026, 3, 11, 0, 0)),
            ),
            // 07:59 local: one minute left.
            (
                utc(2026, 3, 10, 23, 59),
                Category::Bill,
                Some(utc(2026, 3, 11, 0, 0)),
            ),
            // 08:00 local: free again.
            (utc(2026, 3, 11, 0, 0), Category::Bill, None),
            // Outages, replies and (by default) manual sends are never held.
            (utc(2026, 3, 10, 19, 0), Category::Outage, None),
            (utc(2026, 3, 10, 19, 0), Category::Reply, None),
            (utc(2026, 3, 10, 19, 0), Category::Manual, None),
        ];
        for (at, cat, want) in cases {
            assert_eq!(p.hold(cat, at), want, "{at} {cat}");
        }
    }

    #[test]
    fn non_wrapping_window() {
        let p = policy("12:00-14:00");
        assert_eq!(p.hold(Category::Bill, utc(2026, 3, 10, 3, 59)), None);
        assert_eq!(
            p.hold(Category::Bill, utc(2026, 3, 10, 4, 0)),
            Some(utc(2026, 3, 10, 6, 0))
        );
        assert_eq!(p.hold(Category::Bill, utc(2026, 3, 10, 6, 0)), None);
        assert_eq!(p.hold(Category::Bill, utc(2026, 3, 10, 13, 0)), None);
    }

    /// Berlin switches to summer time on 2026-03-29 at 02:00 (clocks jump to 03:00) and back on
    /// 2026-10-25 at 03:00 (clocks go back to 02:00).
    #[test]
    fn follows_daylight_saving_in_another_zone() {
        let berlin = QuietPolicy {
            tz: chrono_tz::Europe::Berlin,
            window: qh("21:00-08:00"),
            categories: vec![Category::Bill],
        };
        // 22:00 CET (21:00 UTC) on the night of the spring change: ends at 08:00 CEST = 06:00 UTC.
        assert_eq!(
            berlin.hold(Category::Bill, utc(2026, 3, 28, 21, 0)),
            Some(utc(2026, 3, 29, 6, 0))
        );
        // Autumn: 08:00 CET = 07:00 UTC.
        assert_eq!(
            berlin.hold(Category::Bill, utc(2026, 10, 24, 21, 0)),
            Some(utc(2026, 10, 25, 7, 0))
        );
        // A window ending at a skipped time ends when the clocks jump (03:00 CEST = 01:00 UTC).
        let gap = QuietPolicy {
            window: qh("01:00-02:30"),
            ..berlin.clone()
        };
        assert_eq!(
            gap.hold(Category::Bill, utc(2026, 3, 29, 0, 30)),
            Some(utc(2026, 3, 29, 1, 0))
        );
        // A window ending at a repeated time ends at its first occurrence (02:30 CEST = 00:30 UTC).
        let twice = QuietPolicy {
            window: qh("01:00-02:30"),
            ..berlin
        };
        assert_eq!(
            twice.hold(Category::Bill, utc(2026, 10, 25, 0, 0)),
            Some(utc(2026, 10, 25, 0, 30))
        );
        // ... unless that occurrence has passed: at 02:10 CET (01:10 UTC) it ends at 02:30 CET.
        assert_eq!(
            twice.hold(Category::Bill, utc(2026, 10, 25, 1, 10)),
            Some(utc(2026, 10, 25, 1, 30))
        );
    }

    fn zones() -> impl Strategy<Value = Tz> {
        prop_oneof![
            Just(chrono_tz::Asia::Shanghai),
            Just(chrono_tz::Europe::Berlin),
            Just(chrono_tz::America::New_York),
            Just(chrono_tz::Australia::Lord_Howe),
        ]
    }

    proptest! {
        /// Held exactly when the local time is inside the window; the release instant is later,
        /// outside the window, and every minute before it is still quiet.
        #[test]
        fn release_is_the_first_moment_outside(
            tz in zones(),
            sh in 0u32..24, sm in 0u32..60, eh in 0u32..24, em in 0u32..60,
            secs in 1_700_000_000i64..1_900_000_000,
        ) {
            let (Some(start), Some(end)) = (NaiveTime::from_hms_opt(sh, sm, 0), NaiveTime::from_hms_opt(eh, em, 0)) else {
                return Err(TestCaseError::fail("bad time"));
            };
            prop_assume!(start != end);
            let window = QuietHours { start, end };
            let Some(at) = DateTime::from_timestamp(secs, 0) else {
                return Err(TestCaseError::fail("bad instant"));
            };
            let local = at.with_timezone(&tz).time();
            match window.ends_after(tz, at) {
                None => prop_assert!(!window.contains(local)),
                Some(until) => {
                    prop_assert!(window.contains(local));
                    prop_assert!(until > at);
                    prop_assert!(until - at <= chrono::TimeDelta::hours(26));
                    prop_assert!(!window.contains(until.with_timezone(&tz).time()));
                    let mut t = at;
                    while t < until {
                        prop_assert!(window.contains(t.with_timezone(&tz).time()), "{t} not quiet before {until}");
                        t += chrono::TimeDelta::minutes(7);
                    }
                }
            }
        }
    }
}
