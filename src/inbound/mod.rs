//! Customers texting in: inbound PDUs from the modems become inbox messages, keyword commands
//! and answers.
//!
//! ```text
//! modem actor --Inbound{pdu, storage index}--> dispatcher --offer()--> bounded intake queue
//!   pipeline: store PDU (durable, deduplicated) -> delete from modem -> reassemble
//!             -> inbox row -> router (keywords, security, rate limits) -> reply in the outbox
//! ```
//!
//! - [`keywords`]: the pure keyword parser (fuzzed).
//! - [`replies`]: reply templates (`[inbound.replies]`) and how they are filled in.
//! - [`router`]: what each command does and answers, who may see an account's data.
//! - [`pipeline`]: the intake task: durability, deduplication, reassembly, restart.
//! - [`legacy`]: the old outage-notice phone lists: import and cut-over.
//!
//! Invariants: a PDU is deleted from the modem only after it is committed; a full intake queue
//! leaves the message on the modem (the actor's sweep reports it again), never drops it;
//! nothing is answered to a number that is not a mainland mobile number or is one of our own
//! SIMs, so two robots never talk to each other forever.

pub mod keywords;
pub mod legacy;
pub mod pipeline;
pub mod replies;
pub mod router;

use crate::daemon::pool::Slot;
use crate::daemon::state::{Counters, Shared};
use crate::marketing::source::BoxFuture;
use crate::modem::ModemHandle;
use chrono::{DateTime, Utc};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// PDUs waiting for the pipeline; beyond this they stay on the modem for the next sweep.
pub const INTAKE_CAPACITY: usize = 1024;

/// One PDU as a modem reported it.
pub struct Intake {
    pub modem: String,
    pub sim: String,
    pub storage_index: Option<u32>,
    pub pdu: Vec<u8>,
    /// Deletes the message from the modem once stored (None: nothing to delete).
    pub ack: Option<ModemHandle>,
}

/// A planned outage as the TZ answer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOutage {
    pub feeder: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: Option<String>,
}

/// Where TZ finds upcoming planned outages. The outage store (outages work) implements it;
/// until it is wired in, TZ answers `outages_unavailable`.
pub trait UpcomingOutages: Send + Sync {
    /// Outages on any of `feeders` that end after `now`, soonest first.
    fn upcoming<'a>(
        &'a self,
        feeders: &'a [String],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<PlannedOutage>, String>>;
}

/// The running pipeline, as [`Shared::inbound`] holds it.
pub struct Inbound {
    intake: mpsc::Sender<Intake>,
    outages: RwLock<Option<Arc<dyn UpcomingOutages>>>,
}

impl Inbound {
    pub fn new(intake: mpsc::Sender<Intake>) -> Inbound {
        Inbound {
            intake,
            outages: RwLock::new(None),
        }
    }

    /// Where TZ looks up planned outages.
    pub fn set_outages(&self, source: Option<Arc<dyn UpcomingOutages>>) {
        *self
            .outages
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = source;
    }

    pub fn outages(&self) -> Option<Arc<dyn UpcomingOutages>> {
        self.outages
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Hands a PDU to the pipeline without waiting; false when the queue is full.
    pub fn submit(&self, intake: Intake) -> bool {
        self.intake.try_send(intake).is_ok()
    }
}

/// The dispatcher's hook: an inbound SMS from `slot`'s modem. Never waits (the dispatcher
/// loop must keep serving sends); when the pipeline is off or full, the message stays on the
/// modem, where the actor's sweep finds it again.
pub fn offer(shared: &Shared, slot: &Slot, storage_index: Option<u32>, pdu: Vec<u8>) {
    Counters::add(&shared.counters.inbound_pdus, 1);
    let Some(inbound) = shared.inbound() else {
        tracing::info!(
            modem = %slot.name(),
            storage_index,
            "inbound SMS received (kept on the modem: [inbound] is disabled)"
        );
        return;
    };
    let intake = Intake {
        modem: slot.name().to_owned(),
        sim: slot.sim_key(),
        storage_index,
        pdu,
        ack: storage_index.map(|_| slot.handle.clone()),
    };
    if !inbound.submit(intake) {
        tracing::warn!(
            modem = %slot.name(),
            storage_index,
            "inbound queue full; the SMS stays on the modem until the next sweep"
        );
    }
}

/// Masks a sender for logs: mobile numbers as `138****8000`, short codes as they are.
pub fn mask_sender(sender: &str) -> String {
    crate::daemon::dispatcher::mask_any(sender)
}
