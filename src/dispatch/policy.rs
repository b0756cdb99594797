//! Retry policy: exponential backoff with jitter, and what to do after a failed attempt.
//!
//! Pure functions; the caller supplies the random jitter sample so tests are deterministic.

use serde::Serialize;
use std::time::Duration;

/// How a failed send should be treated, decided by the modem layer from the CMS/CME error or
/// the status report. The dispatcher only ever looks at this class, never at raw codes.
///
/// Stand-in with the same variants, serde names and `as_str` as `crate::at::RetryClass` on the
/// modem branch; when both are merged this definition gives way to
/// `pub use crate::at::RetryClass;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryClass {
    /// A passing problem (network busy, timeout): the same modem may try again after a pause.
    RetryHere,
    /// This SIM cannot send it now (no credit, barred, SMSC trouble): another SIM should.
    RetryOtherModem,
    /// The message itself is refused (bad number, unknown subscriber): retrying cannot help.
    PermanentForMessage,
    /// The modem is wedged (no answer, SIM gone): it needs recovery, the message goes elsewhere.
    ModemNeedsRecovery,
}

impl RetryClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::RetryHere => "retry_here",
            RetryClass::RetryOtherModem => "retry_other_modem",
            RetryClass::PermanentForMessage => "permanent_for_message",
            RetryClass::ModemNeedsRecovery => "modem_needs_recovery",
        }
    }
}

/// Exponential backoff: `initial * multiplier^(attempt-1)`, capped at `max`, minus a random
/// share of up to `jitter` of it so that messages failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Growth per attempt, ≥ 1.
    pub multiplier: f64,
    /// Fraction in [0, 1] of the delay that may be taken off at random.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30 * 60),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// Delay before retry number `attempt` (1 = after the first failure). `sample` is a uniform
    /// random number in [0, 1); out-of-range samples are clamped. Never exceeds `max`, never
    /// below `(1 - jitter)` times the un-jittered delay.
    pub fn delay(&self, attempt: u32, sample: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(1024) as i32;
        let growth = self.multiplier.max(1.0).powi(exp);
        let max = self.max.as_secs_f64();
        let base = (self.initial.as_secs_f64() * growth).min(max);
        let base = if base.is_finite() { base } else { max };
        let sample = if sample.is_finite() {
            sample.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let jitter = self.jitter.clamp(0.0, 1.0);
        let secs = (base * (1.0 - jitter * sample)).clamp(0.0, max);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }
}

impl Backoff {
    /// [`Backoff::delay`] with the jitter sample drawn from `rng`.
    pub fn delay_rng<R: rand::Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        self.delay(attempt, rng.random::<f64>())
    }
}

/// What happens to a message after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryDecision {
    /// Queue it again, not before `after` from now; `avoid_modem` asks the SIM choice to prefer
    /// another modem than the one that just failed.
    Retry { after: Duration, avoid_modem: bool },
    /// Give up: the message ends `failed` with this reason.
    Fail { reason: String },
}

/// Decides the fate of a message whose attempt number `attempts` (counting the one that just
/// failed) ended with `class` and `error`.
///
/// Moving to another modem does not wait for the backoff to grow: it waits `backoff.initial`
/// (jittered) at most, since the next SIM has not failed yet. Every class counts against
/// `max_attempts`, so a message that makes each modem fail in turn still ends.
pub fn decide_retry(
    class: RetryClass,
    attempts: u32,
    max_attempts: u32,
    backoff: &Backoff,
    jitter_sample: f64,
    error: &str,
) -> RetryDecision {
    if class == RetryClass::PermanentForMessage {
        return RetryDecision::Fail {
            reason: format!("permanent failure: {error}"),
        };
    }
    if attempts >= max_attempts {
        return RetryDecision::Fail {
            reason: format!("gave up after {attempts} attempts; last error: {error}"),
        };
    }
    match class {
        RetryClass::RetryHere => RetryDecision::Retry {
            after: backoff.delay(attempts, jitter_sample),
            avoid_modem: false,
        },
        RetryClass::RetryOtherModem | RetryClass::ModemNeedsRecovery => RetryDecision::Retry {
            after: backoff.delay(1, jitter_sample),
            avoid_modem: true,
        },
        RetryClass::PermanentForMessage => RetryDecision::Fail {
            reason: format!("permanent failure: {error}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(initial: u64, max: u64, multiplier: f64, jitter: f64) -> Backoff {
        Backoff {
            initial: Duration::from_secs(initial),
            max: Duration::from_secs(max),
            multiplier,
            jitter,
        }
    }

    #[test]
    fn grows_then_caps() {
        let p = b(30, 600, 2.0, 0.0);
        let got: Vec<u64> = (1..=7).map(|a| p.delay(a, 0.5).as_secs()).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(p.delay(0, 0.0).as_secs(), 30);
        assert_eq!(p.delay(u32::MAX, 0.0).as_secs(), 600);
    }

    #[test]
    fn jitter_takes_off_up_to_its_share() {
        let p = b(100, 1000, 2.0, 0.5);
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(100));
        assert_eq!(p.delay(1, 0.5), Duration::from_secs(75));
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(50));
        assert_eq!(p.delay(1, f64::NAN), Duration::from_secs(100));
        assert_eq!(p.delay(1, 7.0), Duration::from_secs(50));
    }

    #[test]
    fn retry_decisions() {
        let p = b(30, 600, 2.0, 0.0);
        let d = |class, attempts| decide_retry(class, attempts, 5, &p, 0.0, "CMS ERROR 42");
        assert_eq!(
            d(RetryClass::RetryHere, 3),
            RetryDecision::Retry {
                after: Duration::from_secs(120),
                avoid_modem: false
            }
        );
        assert_eq!(
            d(RetryClass::RetryOtherModem, 3),
            RetryDecision::Retry {
                after: Duration::from_secs(30),
                avoid_modem: true
            }
        );
        assert_eq!(
            d(RetryClass::ModemNeedsRecovery, 1),
            RetryDecision::Retry {
                after: Duration::from_secs(30),
                avoid_modem: true
            }
        );
        assert_eq!(
            d(RetryClass::PermanentForMessage, 1),
            RetryDecision::Fail {
                reason: "permanent failure: CMS ERROR 42".into()
            }
        );
        assert_eq!(
            d(RetryClass::RetryHere, 5),
            RetryDecision::Fail {
                reason: "gave up after 5 attempts; last error: CMS ERROR 42".into()
            }
        );
    }

    #[test]
    fn rng_jitter_stays_in_its_band() {
        use rand::SeedableRng;
        let p = b(100, 1000, 2.0, 0.5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..100).map(|_| p.delay_rng(1, &mut rng)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d > Duration::from_secs(50) && *d <= Duration::from_secs(100))
        );
        assert!(delays.iter().any(|d| *d != delays[0]), "jitter varies");
    }

    proptest! {
        #[test]
        fn delay_is_bounded(
            initial in 0u64..10_000, extra in 0u64..100_000, mult in 0.0f64..100.0,
            jitter in 0.0f64..=1.0, attempt in 0u32..100, sample in 0.0f64..1.0,
        ) {
            let p = b(initial, initial + extra, mult, jitter);
            let d = p.delay(attempt, sample);
            prop_assert!(d <= p.max);
            let unjittered = p.delay(attempt, 0.0);
            prop_assert!(d.as_secs_f64() >= unjittered.as_secs_f64() * (1.0 - jitter) - 1e-6);
            prop_assert!(p.delay(attempt + 1, 0.0) >= unjittered);
        }

        #[test]
        fn attempts_are_capped(attempts in 0u32..20, max in 1u32..10, class in 0usize..4) {
            let class = [RetryClass::RetryHere, RetryClass::RetryOtherModem,
                RetryClass::PermanentForMessage, RetryClass::ModemNeedsRecovery][class];
            let d = decide_retry(class, attempts, max, &Backoff::default(), 0.3, "x");
            if attempts >= max || class == RetryClass::PermanentForMessage {
                prop_assert!(matches!(d, RetryDecision::Fail { .. }), "{:?}", d);
            } else {
                prop_assert!(matches!(d, RetryDecision::Retry { .. }), "{:?}", d);
            }
        }
    }
}
