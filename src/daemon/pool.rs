//! The modem pool as the dispatcher sees it: one slot per configured modem, holding its
//! actor handle, what the actor last reported, and the SIM's quota usage. Owned by the
//! dispatcher task alone (no locks); published to the API as [`ModemView`]s.
//!
//! A `sim:PROFILE` device starts a built-in simulated modem on a pseudo-terminal and drives it
//! through the same serial code as a USB modem; each gets its own SIM identity derived from the
//! modem's name so that quotas, carriers and status-report matching stay per card.

use super::sender::{QUEUE_DEPTH, Worker};
use super::state::ModemView;
use crate::config::{self, Device};
use crate::dispatch::balance::{SimCandidate, carrier_from_imsi};
use crate::message::Carrier;
use crate::modem::{self, ModemEvent, ModemHandle, ModemIdentity, ModemState, ModemStatus};
use crate::sim::{self, SimHandle, SimIdentity, SimOptions};
use crate::store::Usage;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::mpsc;

/// One configured modem.
pub struct Slot {
    pub config: config::ModemConfig,
    pub handle: ModemHandle,
    /// Keeps a built-in simulated modem alive for as long as the slot.
    pub simulator: Option<SimHandle>,
    pub device_path: String,
    pub state: ModemState,
    pub status: Option<ModemStatus>,
    pub identity: Option<ModemIdentity>,
    /// Segments handed to the modem and not yet counted in `usage`.
    pub in_flight: u32,
    /// Messages handed to the modem's worker and not yet reported finished.
    pub messages_in_flight: u32,
    /// The modem's send worker, started with its first message.
    pub worker: Option<Worker>,
    pub last_send_at: Option<DateTime<Utc>>,
    pub benched_until: Option<DateTime<Utc>>,
    /// Persisted counters as last read, plus what this process counted since.
    pub usage: Usage,
    /// The quota windows `usage` belongs to (start of the local hour), to know when to reload.
    pub usage_hour: Option<DateTime<Utc>>,
    /// The actor has finished its first init attempt (Ready or Down).
    pub first_init_done: bool,
    pub last_error: Option<String>,
    /// Set when the slot is to go away (reload removed it) once its send has finished.
    pub retiring: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("modem {name}: cannot start simulated modem: {source}")]
    Simulator {
        name: String,
        source: crate::sim::SimError,
    },
}

impl Slot {
    /// Starts the modem's actor (and its simulator for `sim:` devices).
    pub async fn start(
        index: usize,
        config: config::ModemConfig,
        events: mpsc::Sender<ModemEvent>,
    ) -> Result<Slot, PoolError> {
        let (device_path, simulator) = match &config.device {
            Device::Path(p) => (p.display().to_string(), None),
            Device::Sim(profile) => {
                let mut options = SimOptions::new(*profile);
                options.identity = simulated_identity(index, &config.name);
                let sim = sim::spawn(options)
                    .await
                    .map_err(|source| PoolError::Simulator {
                        name: config.name.clone(),
                        source,
                    })?;
                (sim.device_path().display().to_string(), Some(sim))
            }
        };
        let handle = modem::spawn(driver_config(&config, &device_path), events);
        Ok(Slot {
            config,
            handle,
            simulator,
            device_path,
            state: ModemState::Initialising,
            status: None,
            identity: None,
            in_flight: 0,
            messages_in_flight: 0,
            worker: None,
            last_send_at: None,
            benched_until: None,
            usage: Usage::default(),
            usage_hour: None,
            first_init_done: false,
            last_error: None,
            retiring: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The SIM's identity for quotas and report matching: ICCID, else IMSI, else the modem name
    /// (a modem that reports neither still gets its quotas enforced).
    pub fn sim_key(&self) -> String {
        self.identity
            .as_ref()
            .and_then(|i| i.iccid.clone().or_else(|| i.imsi.clone()))
            .unwrap_or_else(|| format!("modem:{}", self.config.name))
    }

    pub fn carrier(&self) -> Carrier {
        if let Some(c) = self.config.carrier {
            return c;
        }
        self.identity
            .as_ref()
            .and_then(|i| i.imsi.as_deref())
            .map_or(Carrier::Unknown, carrier_from_imsi)
    }

    pub fn registered(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.registered)
    }

    /// Can take a send, as far as the actor is concerned.
    pub fn usable(&self) -> bool {
        // Without its identity the SIM's quota usage is unknown: never send on a guess.
        self.config.enabled
            && !self.retiring
            && self.state == ModemState::Ready
            && self.identity.is_some()
    }

    /// Messages the modem may hold at once: the one on the air and, when it has no pause
    /// between sends (`min_interval` 0), the next one, so it never waits for the dispatcher.
    /// With a pause the next message is chosen when the pause is over.
    pub fn depth(&self) -> u32 {
        if self.config.min_interval.is_zero() {
            QUEUE_DEPTH as u32
        } else {
            1
        }
    }

    /// How many more messages the dispatcher may hand this modem now.
    pub fn room(&self) -> u32 {
        if self.usable() {
            self.depth().saturating_sub(self.messages_in_flight)
        } else {
            0
        }
    }

    /// A message of `segments` is planned for this modem.
    pub fn reserve(&mut self, segments: u32, now: DateTime<Utc>) {
        self.in_flight += segments;
        self.messages_in_flight += 1;
        self.last_send_at = Some(now);
    }

    /// A planned message was not claimed after all, or has finished.
    pub fn unreserve(&mut self, segments: u32) {
        self.in_flight = self.in_flight.saturating_sub(segments);
        self.messages_in_flight = self.messages_in_flight.saturating_sub(1);
    }

    pub fn candidate(&self) -> SimCandidate<'_> {
        SimCandidate {
            name: &self.config.name,
            registered: self.registered(),
            healthy: self.usable(),
            benched_until: self.benched_until,
            carrier: self.carrier(),
            usage: self.usage,
            limits: self.config.limits(),
            last_send_at: self.last_send_at,
            min_interval: self.config.min_interval,
            in_flight: self.in_flight,
            // Counted in messages (see `depth`), expressed in the segments `choose_sim`
            // compares: room for one more message means "a little above what is in flight".
            // Quotas still count every reserved segment.
            max_in_flight: if self.room() > 0 {
                self.in_flight + 1
            } else {
                self.in_flight
            },
        }
    }

    pub fn view(&self) -> ModemView {
        let id = self.identity.clone().unwrap_or_default();
        let status = self.status.as_ref();
        let limits = self.config.limits();
        ModemView {
            name: self.config.name.clone(),
            device: self.config.device.to_string(),
            enabled: self.config.enabled,
            state: self.state,
            registered: self.registered(),
            signal_dbm: status.and_then(|s| s.signal_dbm),
            operator: status.and_then(|s| s.operator.clone()).or(id.operator),
            manufacturer: id.manufacturer,
            model: id.model,
            imei: id.imei,
            imsi: id.imsi,
            iccid: id.iccid,
            own_number: id.own_number,
            carrier: self.carrier().to_string(),
            busy: self.in_flight > 0,
            sent_hour: self.usage.hour,
            sent_day: self.usage.day,
            sent_month: self.usage.month,
            hourly_limit: limits.hourly,
            daily_limit: limits.daily,
            monthly_limit: limits.monthly,
            segments_sent: status.map_or(0, |s| s.segments_sent),
            segments_failed: status.map_or(0, |s| s.segments_failed),
            last_error: self
                .last_error
                .clone()
                .or_else(|| status.and_then(|s| s.last_error.clone())),
            benched_until: self.benched_until,
        }
    }
}

/// The driver's settings from the validated config entry.
pub fn driver_config(c: &config::ModemConfig, device_path: &str) -> modem::ModemConfig {
    let mut m = modem::ModemConfig::new(c.name.clone(), device_path.to_owned());
    m.baud = c.baud;
    m.pin = c.pin().map(str::to_owned);
    m.smsc = c.smsc.clone();
    m.send_timeout = c.send_timeout;
    m.allow_cfun_reset = c.allow_reset;
    m
}

/// A distinct, valid-looking SIM for the `index`-th simulated modem. The carrier rotates
/// through China Mobile, China Unicom and China Telecom so the demo shows carrier preference.
pub fn simulated_identity(index: usize, name: &str) -> SimIdentity {
    // FNV-1a of the name keeps identities stable across restarts and config reorderings.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let serial = hash % 10_000_000_000;
    let (mnc, operator, smsc) = match index % 3 {
        0 => ("00", "CHINA MOBILE", "+8613800100500"),
        1 => ("01", "CHN-UNICOM", "+8613010112500"),
        _ => ("11", "CHN-CT", "+8613800100569"),
    };
    SimIdentity {
        imei: format!("86675804{:07}", hash % 10_000_000),
        imsi: format!("460{mnc}{serial:010}"),
        iccid: format!("8986{mnc}{:014}", hash % 100_000_000_000_000),
        own_number: format!("+86139{:08}", hash % 100_000_000),
        operator: operator.to_owned(),
        operator_numeric: format!("460{mnc}"),
        smsc: smsc.to_owned(),
    }
}

/// How long the daemon waits for every modem's first init attempt before telling systemd it
/// is ready anyway (a dead modem must not keep the API down).
pub const FIRST_INIT_WAIT: Duration = Duration::from_secs(90);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_identities_differ_and_carry_their_carrier() {
        let a = simulated_identity(0, "sim-1");
        let b = simulated_identity(1, "sim-2");
        let c = simulated_identity(2, "sim-3");
        assert_ne!(a.iccid, b.iccid);
        assert_ne!(a.imsi, b.imsi);
        assert_eq!(a.imsi.len(), 15);
        assert_eq!(a.iccid.len(), 20);
        assert_eq!(carrier_from_imsi(&a.imsi), Carrier::ChinaMobile);
        assert_eq!(carrier_from_imsi(&b.imsi), Carrier::ChinaUnicom);
        assert_eq!(carrier_from_imsi(&c.imsi), Carrier::ChinaTelecom);
        assert_eq!(simulated_identity(0, "sim-1"), a, "stable across restarts");
    }
}
