//! One actor task per modem, the only owner of its serial port.
//!
//! ```text
//! ModemHandle::send/status/ack_inbound --bounded mpsc--> actor --AT bytes--> port
//!                          <--oneshot reply--            actor <--bytes---- port
//!                                 ModemEvent (Ready, Health, Inbound, StatusReport, Down …) --> events
//! ```
//!
//! Inside, one `select!` over: bytes from the port (URCs while idle), the next request (taken
//! only when no command is in flight), the health, sweep and retry timers, and shutdown. A
//! command in flight reads until its final result or its deadline, routing URCs that arrive in
//! between as events. Invariants:
//! - every wait on the device has a deadline; a device that goes silent is recovered
//!   (resync → re-init → reopen → `AT+CFUN=1,1` where allowed), a device that vanishes is
//!   reopened with backoff;
//! - the segments of one message go out back to back: no health poll, no sleep between them;
//! - a send request always gets an answer: accepted references or a [`SendError`] naming the
//!   failing segment and a [`RetryClass`]; nothing in flight is silently lost;
//! - a stored inbound message is deleted only after [`ModemHandle::ack_inbound`]; until then it
//!   may be reported again (at-least-once: the consumer deduplicates);
//! - a configured PIN is entered at most once per actor lifetime: a wrong PIN is never retried.

mod actor;
pub mod detect;
mod handle;
mod health;
mod init;
mod port;
mod recovery;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

pub use handle::ModemHandle;
pub use port::{FnOpener, PortOpener, SerialOpener};

use crate::at::commands::RegStatus;
use crate::at::{DeviceError, RetryClass};

/// How one modem is driven. Build with [`ModemConfig::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// Name in logs, events and metrics.
    pub name: String,
    /// Serial device path (or pty / udev symlink).
    pub device: String,
    pub baud: u32,
    /// SIM PIN, entered once when the SIM asks for it.
    pub pin: Option<String>,
    /// SMSC number to set when the SIM's differs (international, with `+`).
    pub smsc: Option<String>,
    /// Wait for `+CMGS` after the PDU (real networks take seconds).
    pub send_timeout: Duration,
    /// Wait for the `> ` prompt after `AT+CMGS=<len>`.
    pub prompt_timeout: Duration,
    /// Allow `AT+CFUN=1,1` as the last recovery rung (some USB sticks reboot into mass storage).
    pub allow_cfun_reset: bool,
    /// Signal and registration poll interval (never between the segments of a message).
    pub health_interval: Duration,
    /// `AT+CMGL=4` sweep interval for messages that arrived unannounced.
    pub sweep_interval: Duration,
    /// First and longest wait between attempts to reopen a vanished device.
    pub reopen_backoff_min: Duration,
    pub reopen_backoff_max: Duration,
    /// Consecutive failures (sends or recoveries) that bench the modem.
    pub breaker_threshold: u32,
    /// How long a benched modem refuses sends before it is re-initialised.
    pub bench_for: Duration,
    /// Longest wait for the event consumer before an event is dropped (and counted).
    pub event_timeout: Duration,
    /// Capacity of the request channel.
    pub request_capacity: usize,
}

impl ModemConfig {
    pub fn new(name: impl Into<String>, device: impl Into<String>) -> Self {
        ModemConfig {
            name: name.into(),
            device: device.into(),
            baud: 115_200,
            pin: None,
            smsc: None,
            send_timeout: Duration::from_secs(60),
            prompt_timeout: Duration::from_secs(15),
            allow_cfun_reset: false,
            health_interval: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(300),
            reopen_backoff_min: Duration::from_millis(500),
            reopen_backoff_max: Duration::from_secs(30),
            breaker_threshold: 5,
            bench_for: Duration::from_secs(300),
            event_timeout: Duration::from_secs(5),
            request_capacity: 16,
        }
    }
}

/// Where the actor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModemState {
    /// Opening the port or running the init sequence.
    Initialising,
    /// Takes sends.
    Ready,
    /// Climbing the recovery ladder.
    Recovering,
    /// Port gone or modem unusable; retried with backoff.
    Down,
    /// Failing too often: refuses sends until the bench time is over.
    Benched,
    Stopped,
}

/// Who the modem and its SIM are. Quotas belong to the SIM (ICCID/IMSI), not the port.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModemIdentity {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub revision: Option<String>,
    pub imei: Option<String>,
    pub imsi: Option<String>,
    pub iccid: Option<String>,
    pub operator: Option<String>,
    pub own_number: Option<String>,
    pub smsc: Option<String>,
}

/// A snapshot of the modem, as [`ModemHandle::status`] and [`ModemEventKind::Health`] give it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModemStatus {
    pub name: String,
    pub state: ModemState,
    pub identity: Option<ModemIdentity>,
    pub registered: bool,
    pub registration: Option<RegStatus>,
    pub signal_dbm: Option<i16>,
    pub operator: Option<String>,
    pub last_error: Option<String>,
    /// The `AT+CNMI` setting the modem accepted (`None`: rely on sweeps).
    pub cnmi: Option<String>,
    pub segments_sent: u64,
    pub segments_failed: u64,
    pub consecutive_failures: u32,
    /// Lines discarded as noise / over-long by the digester.
    pub noise_lines: u64,
    pub overlong_lines: u64,
    /// Events dropped because the consumer did not take them in time.
    pub events_dropped: u64,
}

/// Something a modem reports, tagged with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemEvent {
    pub modem: Arc<str>,
    pub kind: ModemEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemEventKind {
    /// Init finished (at start and after every recovery that re-initialised).
    Ready(ModemIdentity),
    /// Signal / registration / state changed.
    Health(ModemStatus),
    /// An SMS-DELIVER (SMSC field first). `storage_index` is set when it is stored on the
    /// modem: acknowledge it with [`ModemHandle::ack_inbound`] once stored durably.
    Inbound {
        storage_index: Option<u32>,
        pdu: Vec<u8>,
    },
    /// An SMS-STATUS-REPORT (SMSC field first), stored or delivered directly.
    StatusReport {
        storage_index: Option<u32>,
        pdu: Vec<u8>,
    },
    /// The modem stopped taking sends.
    Down { reason: String },
    /// The circuit breaker benched the modem.
    Benched { for_secs: u64, reason: String },
    /// The actor ended.
    Stopped,
}

/// Why a segment was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    #[error("{0}")]
    Device(DeviceError),
    #[error("no `> ` prompt within the prompt timeout")]
    PromptTimeout,
    /// The PDU was written but no `+CMGS` came: it may have gone out.
    #[error("no +CMGS within the send timeout (the message may have been sent)")]
    Timeout,
    #[error("final OK without a +CMGS reference")]
    NoReference,
    #[error("modem not ready ({0:?})")]
    NotReady(ModemState),
    #[error("serial port lost: {0}")]
    PortLost(String),
    #[error("modem shutting down")]
    ShuttingDown,
    #[error("modem actor gone")]
    Gone,
    #[error("empty segment list")]
    Empty,
    /// The caller's gate closed (or stayed shut past the prompt timeout) at the prompt: ESC
    /// was typed instead of the PDU, so nothing went out.
    #[error("send called off at the prompt (nothing was sent)")]
    CalledOff,
}

/// A send that stopped at `segment_index`; the segments before it were accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("segment {segment_index} failed: {failure} ({class})")]
pub struct SendError {
    pub segment_index: usize,
    /// TP-MR of the segments accepted before the failure.
    pub accepted: Vec<u8>,
    pub failure: SendFailure,
    pub class: RetryClass,
}

/// Errors of the other requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModemError {
    #[error("modem actor gone")]
    Gone,
    #[error("modem not ready ({0:?})")]
    NotReady(ModemState),
    #[error("{0}")]
    Device(DeviceError),
    #[error("command timed out")]
    Timeout,
    #[error("serial port lost: {0}")]
    PortLost(String),
}

/// Start the actor for the serial device in `config`. It opens the device itself and reopens
/// it after an unplug. Must be called inside a tokio runtime.
pub fn spawn(config: ModemConfig, events: mpsc::Sender<ModemEvent>) -> ModemHandle {
    let opener = SerialOpener {
        device: config.device.clone(),
        baud: config.baud,
    };
    spawn_with(config, opener, events)
}

/// Start the actor on any [`PortOpener`] (duplex pipes in tests, a pty pair).
pub fn spawn_with<O: PortOpener>(
    config: ModemConfig,
    opener: O,
    events: mpsc::Sender<ModemEvent>,
) -> ModemHandle {
    let name: Arc<str> = Arc::from(config.name.as_str());
    let (req_tx, req_rx) = mpsc::channel(config.request_capacity.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(false);
    let span = tracing::info_span!("modem", name = %config.name);
    let actor = actor::Actor::new(config, opener, req_rx, events, stop_rx);
    tokio::spawn(
        async move {
            actor.run().await;
            let _ = done_tx.send(true);
        }
        .instrument(span),
    );
    ModemHandle {
        name,
        requests: req_tx,
        shutdown: Arc::new(stop_tx),
        done: done_rx,
    }
}
