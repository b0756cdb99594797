//! Dispatch policy: the pure decisions the dispatcher loop makes for every message.
//!
//! - [`quiet_hours`]: is a category held at an instant, and until when (`not_before`)?
//! - [`policy`]: backoff with jitter and the retry decision after a failed attempt, from the
//!   modem layer's [`RetryClass`].
//! - [`balance`]: which SIM takes a message (carrier preference, load, quotas in segments,
//!   min_interval), or why none can.
//!
//! None of this does I/O or reads the clock: the caller passes `now` (from a
//! [`crate::clock::Clock`]) and random samples, so every rule is tested as a table.

pub mod balance;
pub mod policy;
pub mod quiet_hours;

pub use balance::{
    Choice, MessageNeeds, QuotaLimits, QuotaWindows, SimCandidate, Usage, carrier_from_imsi,
    choose_sim,
};
pub use policy::{Backoff, RetryClass, RetryDecision, decide_retry};
pub use quiet_hours::{QuietHours, QuietHoursError, QuietPolicy};
