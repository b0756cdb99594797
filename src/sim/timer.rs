//! A precise one-shot timer for the simulator's own deadlines (the `+CMGS` answer, the prompt,
//! status reports).
//!
//! Why not `tokio::time`: tokio rounds every deadline up to the next millisecond and the
//! runtime then parks in whole milliseconds, so a 20 ms send delay took 21.1 ms on average
//! (measured under the 32-modem benchmark). A simulated modem that is 5 % slower than its
//! configured delay hides exactly the daemon overhead the benchmarks exist to measure. A
//! `timerfd` is armed to the nanosecond and wakes the task through the same reactor.
//!
//! Under a paused tokio clock (tests with `start_paused`) the simulator is not used; the
//! timer falls back to `tokio::time` if a timerfd cannot be created.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// `AsyncFd` wants `AsRawFd`; nix's `TimerFd` offers `AsFd`.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub(crate) struct PreciseTimer {
    fd: Option<AsyncFd<Fd>>,
}

impl PreciseTimer {
    pub fn new() -> PreciseTimer {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .ok()
        // SAFETY: `Fd` owns the timer's descriptor and nothing closes or replaces it while
        // the `AsyncFd` holds it (it is dropped with the `AsyncFd`).
        .and_then(|t| unsafe { AsyncFd::register(Fd(t)) }.ok());
        if fd.is_none() {
            tracing::debug!("no timerfd; simulator timing falls back to tokio::time");
        }
        PreciseTimer { fd }
    }

    /// Wait until `deadline`, or forever when there is none. Cancel-safe.
    pub async fn sleep_until(&mut self, deadline: Option<Instant>) {
        let Some(deadline) = deadline else {
            return std::future::pending().await;
        };
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(deadline).await;
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let wait = Expiration::OneShot(TimeSpec::from_duration(deadline - now));
            if fd
                .get_ref()
                .0
                .set(wait, TimerSetTimeFlags::empty())
                .is_err()
            {
                return tokio::time::sleep_until(deadline).await;
            }
            let Ok(mut ready) = fd.readable().await else {
                return tokio::time::sleep_until(deadline).await;
            };
            // An expiry of an earlier arming that nobody read (the wait was cancelled) may
            // wake us early: the deadline check above sends us round again.
            let _ = ready.try_io(|fd| fd.get_ref().0.wait().map_err(std::io::Error::from));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_at_the_deadline_to_well_under_a_millisecond() {
        let mut timer = PreciseTimer::new();
        let mut late = Vec::new();
        for _ in 0..20 {
            let deadline = Instant::now() + Duration::from_micros(2_500);
            timer.sleep_until(Some(deadline)).await;
            let now = Instant::now();
            assert!(now >= deadline, "fired early");
            late.push(now - deadline);
        }
        late.sort();
        // tokio::time would be ~1 ms late here; the median must be far below that.
        assert!(
            late[10] < Duration::from_micros(700),
            "median lateness {:?}",
            late[10]
        );
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_fires_at_once_and_an_unread_expiry_does_not_end_a_later_wait() {
        let mut timer = PreciseTimer::new();
        // Expires unread: the next wait must not return on that stale expiry.
        let stale = Instant::now() + Duration::from_millis(2);
        let polled_once = timer.sleep_until(Some(stale)).now_or_never();
        assert!(polled_once.is_none());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let deadline = Instant::now() + Duration::from_millis(30);
        timer.sleep_until(Some(deadline)).await;
        assert!(Instant::now() >= deadline, "returned on the stale expiry");
        let past = Instant::now() - Duration::from_millis(5);
        tokio::time::timeout(Duration::from_millis(50), timer.sleep_until(Some(past)))
            .await
            .expect("a past deadline fires at once");
    }
}
