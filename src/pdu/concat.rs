//! Reassembly of concatenated (multipart) inbound messages. Pure: the caller supplies the
//! time as monotonic milliseconds (e.g. from `tokio::time::Instant` relative to a start), so
//! tests drive it without clocks.
//!
//! Data flow: the modem actor decodes each SMS-DELIVER, turns it into a [`Part`] and pushes
//! it; a message comes out as soon as its last missing part arrives, in sequence order
//! whatever order the parts came in. Periodically the caller calls [`Reassembler::expire`]
//! and handles what never completed (with a note that parts are missing).
//!
//! Invariants:
//! - A group is keyed by (sender, reference, total); the same reference from another sender
//!   or with another total is another message.
//! - A duplicate part (same sequence number) is reported and dropped; the first copy wins.
//! - Memory is bounded: at most `max_groups` groups, each with at most 255 part slots; when
//!   a new group would exceed the cap, the oldest group is evicted and handed back to the
//!   caller, never silently dropped.

use super::{Body, Deliver};
use chrono::{DateTime, FixedOffset};

/// One received segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Sender as displayed ([`super::Address::to_display`]).
    pub sender: String,
    pub reference: u16,
    /// Number of parts; 0 or 1 means a message on its own.
    pub total: u8,
    /// 1-based position.
    pub seq: u8,
    pub text: String,
    /// Service centre timestamp of this part.
    pub timestamp: DateTime<FixedOffset>,
}

impl Part {
    /// A decoded SMS-DELIVER as a part; 8-bit data becomes lowercase hex text, and a
    /// message without a concatenation header is a part of one.
    pub fn from_deliver(d: &Deliver) -> Part {
        let text = match &d.body {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => super::to_hex_lower(b),
        };
        let (reference, total, seq) = d
            .concat
            .map_or((0, 1, 1), |c| (c.reference, c.total, c.seq));
        Part {
            sender: d.sender.to_display(),
            reference,
            total,
            seq,
            text,
            timestamp: d.timestamp,
        }
    }
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub sender: String,
    pub text: String,
    /// Timestamp of the lowest-numbered part.
    pub timestamp: DateTime<FixedOffset>,
    /// Number of parts it was sent in.
    pub parts: u8,
}

/// A group that did not complete (expired, evicted or drained).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    pub sender: String,
    pub reference: u16,
    pub total: u8,
    /// The parts present, in sequence order: (seq, text).
    pub parts: Vec<(u8, String)>,
    /// Sequence numbers never received.
    pub missing: Vec<u8>,
    /// Timestamp of the lowest-numbered part present.
    pub timestamp: DateTime<FixedOffset>,
    /// When the first part arrived (caller's milliseconds).
    pub first_seen_ms: u64,
}

impl Incomplete {
    /// The parts present, joined in order (the caller adds its note about the gaps).
    pub fn text(&self) -> String {
        self.parts.iter().map(|(_, t)| t.as_str()).collect()
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This part completed the message.
    Complete(Message),
    /// Stored; `have` of `total` parts are present.
    Pending { have: u8, total: u8 },
    /// A part with this sequence number was already stored; this copy was dropped.
    Duplicate,
}

/// Result of [`Reassembler::push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub outcome: Outcome,
    /// The oldest group, evicted to make room for this part's new group.
    pub evicted: Option<Incomplete>,
}

struct Group {
    sender: String,
    reference: u16,
    total: u8,
    first_seen_ms: u64,
    /// Index seq-1; `None` until that part arrives.
    slots: Vec<Option<(String, DateTime<FixedOffset>)>>,
    have: u8,
}

impl Group {
    fn into_incomplete(self) -> Incomplete {
        let mut parts = Vec::with_capacity(usize::from(self.have));
        let mut missing = Vec::new();
        let mut timestamp = None;
        for (i, slot) in self.slots.into_iter().enumerate() {
            let seq = i as u8 + 1;
            match slot {
                Some((text, ts)) => {
                    timestamp.get_or_insert(ts);
                    parts.push((seq, text));
                }
                None => missing.push(seq),
            }
        }
        Incomplete {
            sender: self.sender,
            reference: self.reference,
            total: self.total,
            parts,
            missing,
            // A group exists only once a part is in it, so a timestamp is always found.
            timestamp: timestamp.unwrap_or_default(),
            first_seen_ms: self.first_seen_ms,
        }
    }
}

/// Bounded multipart reassembly buffer.
pub struct Reassembler {
    groups: Vec<Group>,
    max_groups: usize,
    ttl_ms: u64,
}

impl Reassembler {
    /// Default cap on groups waiting for parts.
    pub const DEFAULT_MAX_GROUPS: usize = 256;
    /// Default time a group waits for its missing parts: one hour.
    pub const DEFAULT_TTL_MS: u64 = 60 * 60 * 1000;

    /// `max_groups` is at least 1; `ttl_ms` is how long after its first part a group counts
    /// as expired.
    pub fn new(max_groups: usize, ttl_ms: u64) -> Self {
        Reassembler {
            groups: Vec::new(),
            max_groups: max_groups.max(1),
            ttl_ms,
        }
    }

    /// Groups waiting for parts.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Adds a part received at `now_ms`.
    pub fn push(&mut self, part: Part, now_ms: u64) -> Pushed {
        let Part {
            sender,
            reference,
            total,
            seq,
            text,
            timestamp,
        } = part;
        if total <= 1 || seq == 0 || seq > total {
            // On its own, or numbering that cannot be placed: deliver it as it is rather
            // than lose it.
            let outcome = Outcome::Complete(Message {
                sender,
                text,
                timestamp,
                parts: 1,
            });
            return Pushed {
                outcome,
                evicted: None,
            };
        }
        let found = self
            .groups
            .iter()
            .position(|g| g.reference == reference && g.total == total && g.sender == sender);
        let mut evicted = None;
        let idx = match found {
            Some(i) => i,
            None => {
                if self.groups.len() >= self.max_groups {
                    let oldest = self
                        .groups
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, g)| g.first_seen_ms)
                        .map_or(0, |(i, _)| i);
                    evicted = Some(self.groups.swap_remove(oldest).into_incomplete());
                }
                self.groups.push(Group {
                    sender,
                    reference,
                    total,
                    first_seen_ms: now_ms,
                    slots: vec![None; usize::from(total)],
                    have: 0,
                });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[idx];
        let slot = &mut g.slots[usize::from(seq - 1)];
        if slot.is_some() {
            return Pushed {
                outcome: Outcome::Duplicate,
                evicted,
            };
        }
        *slot = Some((text, timestamp));
        g.have += 1;
        if g.have < g.total {
            let outcome = Outcome::Pending {
                have: g.have,
                total: g.total,
            };
            return Pushed { outcome, evicted };
        }
        let g = self.groups.swap_remove(idx);
        let parts = g.total;
        let inc = g.into_incomplete();
        let text = inc.text();
        Pushed {
            outcome: Outcome::Complete(Message {
                sender: inc.sender,
                text,
                timestamp: inc.timestamp,
                parts,
            }),
            evicted,
        }
    }

    /// [`Part::from_deliver`] then [`Reassembler::push`].
    pub fn push_deliver(&mut self, d: &Deliver, now_ms: u64) -> Pushed {
        self.push(Part::from_deliver(d), now_ms)
    }

    /// Removes and returns, oldest first, the groups whose first part arrived `ttl_ms` or
    /// more before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Incomplete> {
        let ttl = self.ttl_ms;
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.groups.len() {
            if now_ms.saturating_sub(self.groups[i].first_seen_ms) >= ttl {
                out.push(self.groups.swap_remove(i).into_incomplete());
            } else {
                i += 1;
            }
        }
        out.sort_by_key(|g| g.first_seen_ms);
        out
    }

    /// Removes and returns every waiting group, oldest first (at shutdown).
    pub fn drain(&mut self) -> Vec<Incomplete> {
        let mut out: Vec<Incomplete> = self.groups.drain(..).map(Group::into_incomplete).collect();
        out.sort_by_key(|g| g.first_seen_ms);
        out
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(Self::DEFAULT_MAX_GROUPS, Self::DEFAULT_TTL_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ts(minute: u32) -> DateTime<FixedOffset> {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        tz.with_ymd_and_hms(2026, 11, 28, 14, minute, 0).unwrap()
    }

    fn part(sender: &str, reference: u16, total: u8, seq: u8, text: &str) -> Part {
        Part {
            sender: sender.into(),
            reference,
            total,
            seq,
            text: text.into(),
            timestamp: ts(u32::from(seq)),
        }
    }

    fn complete_text(p: &Pushed) -> Option<&str> {
        match &p.outcome {
            Outcome::Complete(m) => Some(m.text.as_str()),
            _ => None,
        }
    }

    #[test]
    fn out_of_order_parts_complete_in_sequence_order() {
        let mut r = Reassembler::new(8, 1000);
        assert_eq!(
            r.push(part("+8613800138000", 7, 3, 3, "C"), 0).outcome,
            Outcome::Pending { have: 1, total: 3 }
        );
        assert_eq!(
            r.push(part("+8613800138000", 7, 3, 1, "A"), 1).outcome,
            Outcome::Pending { have: 2, total: 3 }
        );
        let done = r.push(part("+8613800138000", 7, 3, 2, "B"), 2);
        assert_eq!(complete_text(&done), Some("ABC"));
        if let Outcome::Complete(m) = done.outcome {
            assert_eq!(m.timestamp, ts(1));
            assert_eq!(m.parts, 3);
        }
        assert!(r.is_empty());
    }

    #[test]
    fn duplicates_are_dropped_and_first_copy_wins() {
        let mut r = Reassembler::new(8, 1000);
        r.push(part("95598", 1, 2, 1, "first"), 0);
        assert_eq!(
            r.push(part("95598", 1, 2, 1, "again"), 1).outcome,
            Outcome::Duplicate
        );
        assert_eq!(
            complete_text(&r.push(part("95598", 1, 2, 2, "+two"), 2)),
            Some("first+two")
        );
    }

    #[test]
    fn groups_are_keyed_by_sender_reference_and_total() {
        let mut r = Reassembler::new(8, 1000);
        r.push(part("A", 1, 2, 1, "a1"), 0);
        r.push(part("B", 1, 2, 1, "b1"), 0);
        r.push(part("A", 1, 3, 1, "x1"), 0);
        r.push(part("A", 2, 2, 1, "y1"), 0);
        assert_eq!(r.len(), 4);
        assert_eq!(
            complete_text(&r.push(part("B", 1, 2, 2, "b2"), 1)),
            Some("b1b2")
        );
    }

    #[test]
    fn single_and_misnumbered_parts_pass_straight_through() {
        let mut r = Reassembler::new(8, 1000);
        assert_eq!(
            complete_text(&r.push(part("A", 0, 1, 1, "solo"), 0)),
            Some("solo")
        );
        assert_eq!(
            complete_text(&r.push(part("A", 0, 2, 5, "odd"), 0)),
            Some("odd")
        );
        assert!(r.is_empty());
    }

    #[test]
    fn cap_evicts_the_oldest_group_and_hands_it_back() {
        let mut r = Reassembler::new(2, 1_000_000);
        r.push(part("A", 1, 2, 2, "a2"), 10);
        r.push(part("B", 1, 2, 1, "b1"), 20);
        let p = r.push(part("C", 1, 2, 1, "c1"), 30);
        let ev = p.evicted.unwrap();
        assert_eq!(
            (ev.sender.as_str(), ev.missing.as_slice(), ev.text()),
            ("A", &[1u8][..], "a2".to_string())
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn expire_returns_incomplete_groups_after_the_ttl_only() {
        let mut r = Reassembler::new(8, 100);
        r.push(part("A", 1, 3, 1, "a1"), 0);
        r.push(part("A", 1, 3, 3, "a3"), 50);
        r.push(part("B", 9, 2, 2, "b2"), 60);
        assert!(r.expire(99).is_empty());
        let gone = r.expire(100);
        assert_eq!(gone.len(), 1);
        assert_eq!(
            gone[0].parts,
            vec![(1, "a1".to_string()), (3, "a3".to_string())]
        );
        assert_eq!(gone[0].missing, vec![2]);
        assert_eq!(gone[0].text(), "a1a3");
        assert_eq!(r.len(), 1);
        assert_eq!(r.drain().len(), 1);
        assert!(r.is_empty());
    }
}
