//! Wall-clock time behind a trait.
//!
//! Quiet hours, schedules and quota windows depend on the calendar time, which tokio's paused
//! time does not move. Everything that asks "what time is it" for such a rule takes a
//! [`Clock`]; production passes [`SystemClock`], tests pass a [`ManualClock`] they move by hand.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A source of wall-clock time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The clock most callers hold: cheap to clone, shared between tasks.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Sets the time, backwards included (a clock step is something real clocks do too).
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }

    /// Moves the time forward; saturates at chrono's maximum instead of panicking.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let step = chrono::TimeDelta::from_std(by).unwrap_or(chrono::TimeDelta::MAX);
        *now = now
            .checked_add_signed(step)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single();
        let Some(start) = start else {
            panic!("valid date")
        };
        let clock = ManualClock::new(start);
        let shared: SharedClock = Arc::new(clock.clone());
        assert_eq!(shared.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(shared.now(), start + chrono::TimeDelta::seconds(90));
        clock.set(start);
        assert_eq!(shared.now(), start);
        clock.advance(Duration::MAX);
        assert_eq!(shared.now(), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn system_clock_is_near_now() {
        let before = Utc::now();
        let t = SystemClock.now();
        assert!(t >= before);
    }
}
