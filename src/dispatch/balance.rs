//! SIM choice: which modem takes the next message, or why none can.
//!
//! Pure: the dispatcher gathers a snapshot of every modem (registration, health, usage this
//! hour/day/month, in-flight segments, last send) and asks [`choose_sim`]. The answer is a SIM,
//! a time to wait for, "all busy", or "none can" — each with a reason the status page shows.
//!
//! Invariant: a SIM is only chosen when its usage plus its in-flight segments plus every
//! segment of the message stays within each of its hourly, daily and monthly limits, and its
//! `min_interval` since the last send has passed.

use crate::message::Carrier;
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::time::Duration;

/// Per-SIM send limits, in segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLimits {
    pub hourly: u32,
    pub daily: u32,
    pub monthly: u32,
}

/// Segments a SIM has sent in the current hour, day and month ([`QuotaWindows`]), as the
/// store persists them.
pub use crate::store::Usage;

/// The calendar hour, day and month containing an instant, in the configured zone. The store
/// counts a SIM's segments since each `*_start`; quotas free up at each `*_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaWindows {
    pub tz: Tz,
    pub hour_start: DateTime<Utc>,
    pub hour_end: DateTime<Utc>,
    pub day_start: DateTime<Utc>,
    pub day_end: DateTime<Utc>,
    pub month_start: DateTime<Utc>,
    pub month_end: DateTime<Utc>,
}

impl QuotaWindows {
    pub fn at(tz: Tz, now: DateTime<Utc>) -> Self {
        let local = now.with_timezone(&tz);
        // The local hour started `minutes:seconds` ago, whatever the zone's offset.
        let into_hour = chrono::TimeDelta::seconds(i64::from(local.minute() * 60 + local.second()))
            + chrono::TimeDelta::nanoseconds(i64::from(local.nanosecond() % 1_000_000_000));
        let hour_start = now - into_hour;
        let today = local.date_naive();
        let midnight = |d: NaiveDate| super::quiet_hours::local_instant(tz, d, NaiveTime::MIN);
        let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
        let first = today.with_day(1).unwrap_or(today);
        let next_first = first.checked_add_months(Months::new(1)).unwrap_or(first);
        QuotaWindows {
            tz,
            hour_start,
            hour_end: hour_start + chrono::TimeDelta::hours(1),
            day_start: midnight(today),
            day_end: midnight(tomorrow),
            month_start: midnight(first),
            month_end: midnight(next_first),
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }
}

/// One modem as the chooser sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCandidate<'a> {
    pub name: &'a str,
    /// Registered on the network (home or roaming).
    pub registered: bool,
    /// Answering and not in recovery.
    pub healthy: bool,
    /// Kept out of rotation until then after repeated failures.
    pub benched_until: Option<DateTime<Utc>>,
    /// From the SIM's IMSI ([`carrier_from_imsi`]) or the config override.
    pub carrier: Carrier,
    pub usage: Usage,
    pub limits: QuotaLimits,
    pub last_send_at: Option<DateTime<Utc>>,
    pub min_interval: Duration,
    /// Segments handed to this modem and not yet counted in `usage`.
    pub in_flight: u32,
    /// A modem with this many segments in flight takes no more for now.
    pub max_in_flight: u32,
}

/// What the message asks of a SIM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageNeeds<'a> {
    /// Every segment counts against the quotas, so a message is never split across windows.
    pub segments: u32,
    /// The recipient's carrier, from the number prefix; `Unknown` means no preference.
    pub carrier: Carrier,
    /// Modems that failed this message; used only when no other modem can take it now.
    pub avoid: &'a [&'a str],
}

/// The chooser's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Send through `candidates[idx]`.
    Sim(usize),
    /// Some SIM frees up by time alone at `until` (quota window, min_interval, bench). Ask again
    /// then, or sooner when any modem's state changes.
    Wait {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Every SIM that could take it has its in-flight limit; ask again when a send finishes.
    Busy { reason: String },
    /// No SIM can take it until something other than time changes (a modem registers or
    /// recovers, the config changes), or the message is larger than any SIM's limit.
    NoneAvailable { reason: String },
}

enum Verdict {
    Ready,
    Later(DateTime<Utc>, String),
    Busy(String),
    Never(String),
}

fn judge(
    c: &SimCandidate<'_>,
    need: &MessageNeeds<'_>,
    w: &QuotaWindows,
    now: DateTime<Utc>,
) -> Verdict {
    if !c.registered {
        return Verdict::Never("not registered on the network".into());
    }
    if !c.healthy {
        return Verdict::Never("not healthy (recovering)".into());
    }
    let windows = [
        ("hourly", c.usage.hour, c.limits.hourly, w.hour_end),
        ("daily", c.usage.day, c.limits.daily, w.day_end),
        ("monthly", c.usage.month, c.limits.monthly, w.month_end),
    ];
    for (label, _, limit, _) in windows {
        if need.segments > limit {
            return Verdict::Never(format!(
                "message of {} segments exceeds its {label} limit of {limit}",
                need.segments
            ));
        }
    }
    // Every blocking cause must pass, so the SIM is free at the latest of them.
    let mut later: Option<(DateTime<Utc>, String)> = None;
    let mut block = |until: DateTime<Utc>, why: String| {
        if later.as_ref().is_none_or(|(t, _)| until > *t) {
            later = Some((until, why));
        }
    };
    if let Some(bench) = c.benched_until.filter(|b| *b > now) {
        block(bench, format!("benched until {}", w.local(bench)));
    }
    for (label, used, limit, ends) in windows {
        let committed = used.saturating_add(u64::from(c.in_flight));
        if committed + u64::from(need.segments) > u64::from(limit) {
            block(
                ends,
                format!(
                    "{label} quota: {committed} of {limit} segments used, {} more needed, resets {}",
                    need.segments,
                    w.local(ends)
                ),
            );
        }
    }
    if let Some(last) = c.last_send_at {
        let interval =
            chrono::TimeDelta::from_std(c.min_interval).unwrap_or(chrono::TimeDelta::MAX);
        if let Some(next) = last.checked_add_signed(interval).filter(|n| *n > now) {
            let at = next.with_timezone(&w.tz).format("%H:%M:%S%.3f");
            block(next, format!("min_interval until {at}"));
        }
    }
    if let Some((until, why)) = later {
        return Verdict::Later(until, why);
    }
    if c.in_flight >= c.max_in_flight {
        return Verdict::Busy(format!("{} segments in flight", c.in_flight));
    }
    Verdict::Ready
}

/// Highest share of any quota already committed, for "least loaded".
fn load(c: &SimCandidate<'_>) -> f64 {
    let share =
        |used: u64, limit: u32| (used as f64 + f64::from(c.in_flight)) / f64::from(limit.max(1));
    share(c.usage.hour, c.limits.hourly)
        .max(share(c.usage.day, c.limits.daily))
        .max(share(c.usage.month, c.limits.monthly))
}

/// [`choose_sim`], except that the modem named `prefer` (a reply goes back out of the SIM the
/// customer texted) is taken when it can send now and this message has not failed on it.
pub fn choose_sim_preferring(
    candidates: &[SimCandidate<'_>],
    prefer: Option<&str>,
    need: &MessageNeeds<'_>,
    windows: &QuotaWindows,
    now: DateTime<Utc>,
) -> Choice {
    let preferred = prefer
        .filter(|p| !need.avoid.contains(p))
        .and_then(|p| candidates.iter().position(|c| c.name == p));
    if let Some(i) = preferred
        && let Choice::Sim(_) = choose_sim(&candidates[i..=i], need, windows, now)
    {
        return Choice::Sim(i);
    }
    choose_sim(candidates, need, windows, now)
}

/// Picks the SIM for a message from `candidates` (every enabled modem, in config order; an
/// index into it comes back): among SIMs that can send it now, one not in `avoid`, then one
/// of the recipient's carrier, then the fewest segments in flight, then the lowest quota share,
/// then the first listed. Otherwise says how long to wait, or why nothing can move.
pub fn choose_sim(
    candidates: &[SimCandidate<'_>],
    need: &MessageNeeds<'_>,
    windows: &QuotaWindows,
    now: DateTime<Utc>,
) -> Choice {
    if candidates.is_empty() {
        return Choice::NoneAvailable {
            reason: "no modem is configured and enabled".into(),
        };
    }
    let mut best: Option<usize> = None;
    let mut wait: Option<DateTime<Utc>> = None;
    let mut any_busy = false;
    let mut reasons = String::new();
    let rank = |i: usize| {
        let c = &candidates[i];
        let avoided = need.avoid.contains(&c.name);
        let other_carrier = need.carrier != Carrier::Unknown && c.carrier != need.carrier;
        (avoided, other_carrier, c.in_flight)
    };
    for (i, c) in candidates.iter().enumerate() {
        let why = match judge(c, need, windows, now) {
            Verdict::Ready => {
                let better = match best {
                    None => true,
                    Some(b) => match rank(i).cmp(&rank(b)) {
                        Ordering::Less => true,
                        Ordering::Greater => false,
                        Ordering::Equal => load(c).total_cmp(&load(&candidates[b])).is_lt(),
                    },
                };
                if better {
                    best = Some(i);
                }
                continue;
            }
            Verdict::Later(until, why) => {
                wait = Some(wait.map_or(until, |w| w.min(until)));
                why
            }
            Verdict::Busy(why) => {
                any_busy = true;
                why
            }
            Verdict::Never(why) => why,
        };
        if !reasons.is_empty() {
            reasons.push_str("; ");
        }
        let _ = write!(reasons, "{}: {why}", c.name);
    }
    match (best, wait) {
        (Some(i), _) => Choice::Sim(i),
        (None, Some(until)) => Choice::Wait {
            until,
            reason: reasons,
        },
        (None, None) if any_busy => Choice::Busy { reason: reasons },
        (None, None) => Choice::NoneAvailable { reason: reasons },
    }
}

/// The carrier of a SIM from its IMSI's MCC-MNC (ITU-T E.212; China is MCC 460). Anything else,
/// or a malformed IMSI, is `Unknown` (roaming and foreign SIMs get no carrier preference).
pub fn carrier_from_imsi(imsi: &str) -> Carrier {
    let imsi = imsi.trim();
    let Some(mcc_mnc) = imsi.get(..5) else {
        return Carrier::Unknown;
    };
    if !imsi.bytes().all(|b| b.is_ascii_digit()) {
        return Carrier::Unknown;
    }
    match mcc_mnc {
        "46000" | "46002" | "46004" | "46007" | "46008" | "46013" => Carrier::ChinaMobile,
        "46001" | "46006" | "46009" | "46010" => Carrier::ChinaUnicom,
        "46003" | "46005" | "46011" | "46012" => Carrier::ChinaTelecom,
        "46015" => Carrier::ChinaBroadnet,
        _ => Carrier::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        match Utc.with_ymd_and_hms(y, mo, d, h, mi, s) {
            chrono::LocalResult::Single(t) => t,
            _ => panic!("bad test date"),
        }
    }

    fn sim(name: &str, carrier: Carrier) -> SimCandidate<'_> {
        SimCandidate {
            name,
            registered: true,
            healthy: true,
            benched_until: None,
            carrier,
            usage: Usage::default(),
            limits: QuotaLimits {
                hourly: 150,
                daily: 800,
                monthly: 20_000,
            },
            last_send_at: None,
            min_interval: Duration::from_secs(2),
            in_flight: 0,
            max_in_flight: 1,
        }
    }

    fn needs(segments: u32, carrier: Carrier) -> MessageNeeds<'static> {
        MessageNeeds {
            segments,
            carrier,
            avoid: &[],
        }
    }

    #[test]
    fn imsi_carriers() {
        let cases = [
            ("460001234567890", Carrier::ChinaMobile),
            ("460021234567890", Carrier::ChinaMobile),
            ("460071234567890", Carrier::ChinaMobile),
            ("460081234567890", Carrier::ChinaMobile),
            ("460131234567890", Carrier::ChinaMobile),
            ("460011234567890", Carrier::ChinaUnicom),
            ("460061234567890", Carrier::ChinaUnicom),
            ("460091234567890", Carrier::ChinaUnicom),
            ("460031234567890", Carrier::ChinaTelecom),
            ("460111234567890", Carrier::ChinaTelecom),
            ("460151234567890", Carrier::ChinaBroadnet),
            (" 460001234567890\r", Carrier::ChinaMobile),
            ("460201234567890", Carrier::Unknown),
            ("310260123456789", Carrier::Unknown),
            ("4600", Carrier::Unknown),
            ("46000ABC", Carrier::Unknown),
            ("", Carrier::Unknown),
            ("中国移动中国移动", Carrier::Unknown),
        ];
        for (imsi, want) in cases {
            assert_eq!(carrier_from_imsi(imsi), want, "{imsi:?}");
        }
    }

    #[test]
    fn windows_are_local_calendar_periods() {
        // 2026-01-31 23:30:15 in Shanghai.
        let w = QuotaWindows::at(SHANGHAI, utc(2026, 1, 31, 15, 30, 15));
        assert_eq!(w.hour_start, utc(2026, 1, 31, 15, 0, 0));
        assert_eq!(w.hour_end, utc(2026, 1, 31, 16, 0, 0));
        assert_eq!(w.day_start, utc(2026, 1, 30, 16, 0, 0));
        assert_eq!(w.day_end, utc(2026, 1, 31, 16, 0, 0));
        assert_eq!(w.month_start, utc(2025, 12, 31, 16, 0, 0));
        assert_eq!(w.month_end, utc(2026, 1, 31, 16, 0, 0));
        // Kolkata is UTC+5:30: local hours start at half past UTC hours.
        let w = QuotaWindows::at(chrono_tz::Asia::Kolkata, utc(2026, 1, 31, 15, 10, 0));
        assert_eq!(w.hour_start, utc(2026, 1, 31, 14, 30, 0));
    }

    #[test]
    fn prefers_recipient_carrier_then_least_loaded() {
        let now = utc(2026, 3, 10, 2, 0, 0);
        let w = QuotaWindows::at(SHANGHAI, now);
        let mut a = sim("unicom-1", Carrier::ChinaUnicom);
        let mut b = sim("mobile-1", Carrier::ChinaMobile);
        let mut c = sim("mobile-2", Carrier::ChinaMobile);
        b.usage = Usage {
            hour: 100,
            day: 100,
            month: 100,
        };
        c.usage = Usage {
            hour: 10,
            day: 10,
            month: 10,
        };
        let cands = [a.clone(), b.clone(), c.clone()];
        assert_eq!(
            choose_sim(&cands, &needs(1, Carrier::ChinaMobile), &w, now),
            Choice::Sim(2)
        );
        assert_eq!(
            choose_sim(&cands, &needs(1, Carrier::ChinaUnicom), &w, now),
            Choice::Sim(0)
        );
        // Telecom recipient: no SIM of its carrier, the least loaded wins.
        assert_eq!(
            choose_sim(&cands, &needs(1, Carrier::ChinaTelecom), &w, now),
            Choice::Sim(0)
        );
        // A busier but idle SIM beats one with a send in flight.
        c.in_flight = 1;
        c.max_in_flight = 2;
        let cands = [a.clone(), b.clone(), c.clone()];
        assert_eq!(
            choose_sim(&cands, &needs(1, Carrier::ChinaMobile), &w, now),
            Choice::Sim(1)
        );
        // Avoided modems are the last resort, even of the right carrier.
        let avoid = ["unicom-1"];
        let need = MessageNeeds {
            segments: 1,
            carrier: Carrier::ChinaUnicom,
            avoid: &avoid,
        };
        assert_eq!(choose_sim(&cands, &need, &w, now), Choice::Sim(1));
        a.carrier = Carrier::ChinaUnicom;
        let only = [a];
        assert_eq!(choose_sim(&only, &need, &w, now), Choice::Sim(0));
    }

    #[test]
    fn counts_every_segment_against_every_quota() {
        let now = utc(2026, 3, 10, 2, 20, 0); // 10:20 in Shanghai
        let w = QuotaWindows::at(SHANGHAI, now);
        let mut a = sim("a", Carrier::ChinaMobile);
        a.usage = Usage {
            hour: 147,
            day: 500,
            month: 9_000,
        };
        assert_eq!(
            choose_sim(&[a.clone()], &needs(3, Carrier::Unknown), &w, now),
            Choice::Sim(0)
        );
        let got = choose_sim(&[a.clone()], &needs(4, Carrier::Unknown), &w, now);
        assert_eq!(
            got,
            Choice::Wait {
                until: utc(2026, 3, 10, 3, 0, 0),
                reason: "a: hourly quota: 147 of 150 segments used, 4 more needed, resets 2026-03-10 11:00".into()
            }
        );
        // In-flight segments count too.
        a.in_flight = 1;
        a.max_in_flight = 5;
        assert!(matches!(
            choose_sim(&[a.clone()], &needs(3, Carrier::Unknown), &w, now),
            Choice::Wait { .. }
        ));
        // Day and hour both full: wait for the later one (midnight local).
        a.usage = Usage {
            hour: 150,
            day: 800,
            month: 9_000,
        };
        a.in_flight = 0;
        match choose_sim(&[a.clone()], &needs(1, Carrier::Unknown), &w, now) {
            Choice::Wait { until, reason } => {
                assert_eq!(until, utc(2026, 3, 10, 16, 0, 0));
                assert!(reason.contains("daily quota"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A message bigger than a limit can never go through this SIM.
        a.limits.hourly = 5;
        a.usage = Usage::default();
        match choose_sim(&[a], &needs(6, Carrier::Unknown), &w, now) {
            Choice::NoneAvailable { reason } => {
                assert_eq!(
                    reason,
                    "a: message of 6 segments exceeds its hourly limit of 5"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn waits_busy_and_none_available() {
        let now = utc(2026, 3, 10, 2, 0, 0);
        let w = QuotaWindows::at(SHANGHAI, now);
        let mut a = sim("a", Carrier::ChinaMobile);
        let mut b = sim("b", Carrier::ChinaMobile);
        a.last_send_at = Some(now - chrono::TimeDelta::milliseconds(500));
        b.benched_until = Some(now + chrono::TimeDelta::minutes(5));
        assert_eq!(
            choose_sim(
                &[a.clone(), b.clone()],
                &needs(1, Carrier::Unknown),
                &w,
                now
            ),
            Choice::Wait {
                until: now + chrono::TimeDelta::milliseconds(1500),
                reason: "a: min_interval until 10:00:01.500; b: benched until 2026-03-10 10:05"
                    .into()
            }
        );
        // Past min_interval and bench: a is free again.
        let later = now + chrono::TimeDelta::minutes(6);
        assert_eq!(
            choose_sim(
                &[a.clone(), b.clone()],
                &needs(1, Carrier::Unknown),
                &w,
                later
            ),
            Choice::Sim(0)
        );
        a.in_flight = 1;
        b.benched_until = None;
        b.in_flight = 1;
        assert!(matches!(
            choose_sim(
                &[a.clone(), b.clone()],
                &needs(1, Carrier::Unknown),
                &w,
                later
            ),
            Choice::Busy { .. }
        ));
        a.registered = false;
        b.healthy = false;
        assert_eq!(
            choose_sim(&[a, b], &needs(1, Carrier::Unknown), &w, later),
            Choice::NoneAvailable {
                reason: "a: not registered on the network; b: not healthy (recovering)".into()
            }
        );
        assert!(matches!(
            choose_sim(&[], &needs(1, Carrier::Unknown), &w, now),
            Choice::NoneAvailable { .. }
        ));
    }

    fn arb_sim()
    -> impl Strategy<Value = (bool, bool, u32, u32, u32, u32, u32, u32, u32, u64, u64, u32)> {
        (
            any::<bool>(),
            any::<bool>(),
            0u32..30,
            0u32..60,
            0u32..200, // usage
            1u32..30,
            1u32..60,
            1u32..200, // limits
            0u32..5,
            0u64..5_000,
            0u64..5_000,
            1u32..4,
        )
    }

    proptest! {
        /// Every instant lies inside its own hour, day and month, in zones with DST at
        /// midnight (Santiago), half-hour DST (Lord Howe) and none (Shanghai).
        #[test]
        fn windows_contain_their_instant(
            secs in 1_600_000_000i64..2_000_000_000,
            zone in 0usize..5,
        ) {
            let tz = [SHANGHAI, chrono_tz::America::Santiago, chrono_tz::Australia::Lord_Howe,
                chrono_tz::Europe::Berlin, chrono_tz::Asia::Kolkata][zone];
            let Some(now) = DateTime::from_timestamp(secs, 0) else {
                return Err(TestCaseError::fail("bad instant"));
            };
            let w = QuotaWindows::at(tz, now);
            prop_assert!(w.hour_start <= now && now < w.hour_end, "{w:?}");
            prop_assert!(w.day_start <= now && now < w.day_end, "{w:?}");
            prop_assert!(w.month_start <= now && now < w.month_end, "{w:?}");
            prop_assert!(w.month_start <= w.day_start && w.day_end <= w.month_end);
        }
    }

    proptest! {
        /// Whatever the snapshot, a chosen SIM has room for every segment in every window and
        /// is past its min_interval, registered, healthy and not benched.
        #[test]
        fn a_chosen_sim_never_exceeds_a_quota(
            sims in proptest::collection::vec(arb_sim(), 0..6),
            segments in 1u32..8,
            carrier in 0usize..3,
        ) {
            let now = utc(2026, 3, 10, 2, 0, 0);
            let w = QuotaWindows::at(SHANGHAI, now);
            let names: Vec<String> = (0..sims.len()).map(|i| format!("m{i}")).collect();
            let carriers = [Carrier::ChinaMobile, Carrier::ChinaUnicom, Carrier::Unknown];
            let cands: Vec<SimCandidate<'_>> = sims.iter().zip(&names).map(|(s, n)| SimCandidate {
                name: n,
                registered: s.0 || s.1,
                healthy: s.0,
                benched_until: None,
                carrier: carriers[s.8 as usize % 3],
                usage: Usage { hour: s.2.into(), day: s.3.into(), month: s.4.into() },
                limits: QuotaLimits { hourly: s.5, daily: s.6, monthly: s.7 },
                last_send_at: Some(now - chrono::TimeDelta::milliseconds(s.9 as i64)),
                min_interval: Duration::from_millis(s.10),
                in_flight: s.8,
                max_in_flight: s.11,
            }).collect();
            let need = needs(segments, carriers[carrier]);
            match choose_sim(&cands, &need, &w, now) {
                Choice::Sim(i) => {
                    let c = &cands[i];
                    prop_assert!(c.registered && c.healthy);
                    prop_assert!(c.usage.hour + u64::from(c.in_flight + segments) <= u64::from(c.limits.hourly));
                    prop_assert!(c.usage.day + u64::from(c.in_flight + segments) <= u64::from(c.limits.daily));
                    prop_assert!(c.usage.month + u64::from(c.in_flight + segments) <= u64::from(c.limits.monthly));
                    prop_assert!(c.in_flight < c.max_in_flight);
                    prop_assert!(s_elapsed(c, now) >= c.min_interval);
                }
                Choice::Wait { until, reason } => {
                    prop_assert!(until > now);
                    prop_assert!(!reason.is_empty());
                }
                Choice::Busy { reason } | Choice::NoneAvailable { reason } => {
                    prop_assert!(!reason.is_empty() || cands.is_empty());
                }
            }
        }

        /// Driving one SIM for two simulated days: sends in any calendar hour/day never exceed
        /// the limits, whatever the message sizes and the pace of requests.
        #[test]
        fn quotas_hold_over_time(
            steps in proptest::collection::vec((1u32..5, 1u64..900), 1..400),
            hourly in 1u32..20, daily in 20u32..60,
        ) {
            let mut now = utc(2026, 3, 10, 14, 0, 0);
            let mut sent: Vec<(DateTime<Utc>, u32)> = Vec::new();
            let limits = QuotaLimits { hourly, daily, monthly: 1_000 };
            for (segments, gap) in steps {
                now += chrono::TimeDelta::seconds(gap as i64);
                let w = QuotaWindows::at(SHANGHAI, now);
                let cand = SimCandidate {
                    usage: Usage { hour: count(&sent, w.hour_start), day: count(&sent, w.day_start), month: count(&sent, w.month_start) },
                    limits,
                    last_send_at: sent.last().map(|(t, _)| *t),
                    ..sim("a", Carrier::ChinaMobile)
                };
                if let Choice::Sim(_) = choose_sim(&[cand], &needs(segments, Carrier::Unknown), &w, now) {
                    sent.push((now, segments));
                    let w = QuotaWindows::at(SHANGHAI, now);
                    prop_assert!(count(&sent, w.hour_start) <= u64::from(hourly));
                    prop_assert!(count(&sent, w.day_start) <= u64::from(daily));
                }
            }
        }
    }

    fn count(sent: &[(DateTime<Utc>, u32)], from: DateTime<Utc>) -> u64 {
        sent.iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, n)| u64::from(*n))
            .sum()
    }

    fn s_elapsed(c: &SimCandidate<'_>, now: DateTime<Utc>) -> Duration {
        c.last_send_at
            .and_then(|t| (now - t).to_std().ok())
            .unwrap_or(Duration::MAX)
    }
}
