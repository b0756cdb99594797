//! Vocabulary shared by the outbox, the dispatcher, the API and the config: message categories
//! with their default priorities, message states, and China's mobile carriers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a message is about; decides its default priority and whether quiet hours apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Outage,
    Reply,
    Manual,
    Bill,
    Reminder,
    Broadcast,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Outage,
        Category::Reply,
        Category::Manual,
        Category::Bill,
        Category::Reminder,
        Category::Broadcast,
    ];

    /// Default priority from the design card; lower sends first.
    pub fn default_priority(self) -> u8 {
        match self {
            Category::Outage => 0,
            Category::Reply => 1,
            Category::Manual => 2,
            Category::Bill => 3,
            Category::Reminder => 4,
            Category::Broadcast => 5,
        }
    }

    /// Whether quiet hours hold this category back by default (manual is configurable).
    pub fn quiet_hours_by_default(self) -> bool {
        !matches!(self, Category::Outage | Category::Reply | Category::Manual)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Outage => "outage",
            Category::Reply => "reply",
            Category::Manual => "manual",
            Category::Bill => "bill",
            Category::Reminder => "reminder",
            Category::Broadcast => "broadcast",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {expected})")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for Category {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "category",
                value: s.to_owned(),
                expected: "outage, reply, manual, bill, reminder, broadcast",
            })
    }
}

/// Life of an outgoing message: `queued` → `sending` → `sent` → `delivered`, or one of the
/// final failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Expired,
    Cancelled,
}

impl MessageState {
    pub const ALL: [MessageState; 7] = [
        MessageState::Queued,
        MessageState::Sending,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Failed,
        MessageState::Expired,
        MessageState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::Cancelled => "cancelled",
        }
    }

    /// No further transition happens from a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageState::Delivered
                | MessageState::Failed
                | MessageState::Expired
                | MessageState::Cancelled
        )
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageState::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "state",
                value: s.to_owned(),
                expected: "queued, sending, sent, delivered, failed, expired, cancelled",
            })
    }
}

/// China's mobile network operators, as far as SIM choice cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Carrier {
    ChinaMobile,
    ChinaUnicom,
    ChinaTelecom,
    ChinaBroadnet,
    Unknown,
}

impl Carrier {
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "china-mobile",
            Carrier::ChinaUnicom => "china-unicom",
            Carrier::ChinaTelecom => "china-telecom",
            Carrier::ChinaBroadnet => "china-broadnet",
            Carrier::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
        }
        for s in MessageState::ALL {
            assert_eq!(s.as_str().parse::<MessageState>(), Ok(s));
        }
        assert!("sms".parse::<Category>().is_err());
    }

    #[test]
    fn priorities_follow_the_design_card() {
        let mut sorted = Category::ALL;
        sorted.sort_by_key(|c| c.default_priority());
        assert_eq!(sorted, Category::ALL);
        assert!(!Category::Outage.quiet_hours_by_default());
        assert!(Category::Broadcast.quiet_hours_by_default());
    }
}
