//! A simulated GSM/LTE modem behind a real pseudo-terminal, so the driver, `gammu` or a
//! technician's terminal talk to it exactly as to a USB modem's `/dev/ttyUSB2`.
//!
//! Data flow: [`spawn`] opens a pty pair and starts one tokio task that owns the master side.
//! Bytes the driver writes to the slave arrive at the task, which feeds them to the pure
//! `at_server` state machine (echo, AT parser, SMS storage, PDU entry, faults); whatever the
//! machine wants printed is written back to the master. The [`SimHandle`] talks to the task
//! over a bounded channel (inject SMS, inject faults, shut down) and reads what was sent from a
//! small shared record.
//!
//! Invariants: every buffer is bounded (command line, PDU entry, held input, the record of sent
//! segments, pending inbound messages); input is never trusted (bad hex, bad PDUs and
//! oversized lines get the error a real modem gives, never a panic); writes to a pty nobody
//! reads are dropped after a short timeout, as a UART with nobody listening drops them.

mod at_server;
mod fault;
mod profile;
mod pty;
mod storage;
mod timer;

pub use fault::{BadFault, Fault, MAX_GARBAGE};
pub use profile::{Profile, UnknownProfile};

use crate::pdu::{Concat, DeliverOptions, Encoding};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the SIM card and network say about themselves. Defaults are a China Mobile card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimIdentity {
    /// 15 digits, as `AT+CGSN` prints it.
    pub imei: String,
    /// 15 digits; MCC 460, MNC 00 = China Mobile.
    pub imsi: String,
    /// 20 digits starting 8986 (China).
    pub iccid: String,
    /// The card's own number (informational; printed by `AT+CNUM`).
    pub own_number: String,
    /// Long operator name, as `AT+COPS?` prints it in format 0.
    pub operator: String,
    /// Numeric operator (MCC+MNC), as `AT+COPS?` prints it in format 2.
    pub operator_numeric: String,
    /// SMSC address, as `AT+CSCA?` prints it.
    pub smsc: String,
}

impl Default for SimIdentity {
    fn default() -> Self {
        SimIdentity {
            imei: "866758042195136".into(),
            imsi: "460001234567890".into(),
            iccid: "89860012345678901234".into(),
            own_number: "+8613912345678".into(),
            operator: "CHINA MOBILE".into(),
            operator_numeric: "46000".into(),
            smsc: "+8613800100500".into(),
        }
    }
}

/// How a simulated modem behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub profile: Profile,
    /// Time between the PDU's Ctrl-Z and `+CMGS: <mr>` (the network's round trip).
    pub send_delay: Duration,
    /// Faults applied at power-on, in order.
    pub faults: Vec<Fault>,
    pub identity: SimIdentity,
    /// When set, the SIM asks for this PIN (`+CPIN: SIM PIN`); three wrong tries lock it.
    pub pin: Option<String>,
    /// Time between a `+CMGS` with TP-SRR set and its status report.
    pub report_delay: Duration,
    /// TP-ST to report per recipient (digits as in the PDU, no `+`; a leading 86 may be left
    /// off); recipients not listed get 0 (delivered).
    pub report_status: BTreeMap<String, u8>,
    /// How long the port stays away on `AT+CFUN=1,1` before the modem boots again.
    pub reboot_time: Duration,
}

impl SimOptions {
    /// A healthy modem of `profile`: 50 ms send delay, 100 ms report delay, no faults, no PIN.
    pub fn new(profile: Profile) -> Self {
        SimOptions {
            profile,
            send_delay: Duration::from_millis(50),
            faults: Vec::new(),
            identity: SimIdentity::default(),
            pin: None,
            report_delay: Duration::from_millis(100),
            report_status: BTreeMap::new(),
            reboot_time: Duration::from_millis(500),
        }
    }

    /// TP-ST for a recipient, per [`SimOptions::report_status`].
    pub fn status_for(&self, recipient: &str) -> u8 {
        let digits = recipient.trim_start_matches('+');
        self.report_status
            .get(digits)
            .or_else(|| {
                digits
                    .strip_prefix("86")
                    .and_then(|d| self.report_status.get(d))
            })
            .or_else(|| self.report_status.get(&format!("86{digits}")))
            .copied()
            .unwrap_or(0)
    }
}

/// One SMS-SUBMIT the simulator accepted (one record per segment, in the order sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// Recipient as people write it (`+86…` for international numbers).
    pub to: String,
    /// This segment's text (8-bit data shown as uppercase hex); see
    /// [`SimHandle::sent_messages`] for whole messages.
    pub text: String,
    pub encoding: Encoding,
    /// The TP-MR the simulator answered with (`+CMGS: <mr>`).
    pub mr: u8,
    pub status_report_requested: bool,
    pub concat: Option<Concat>,
    /// The PDU as typed after the prompt (SMSC field included), uppercase hex.
    pub pdu_hex: String,
}

/// Segments of one concatenated (or single) message put back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub to: String,
    /// The whole text; missing segments are left out.
    pub text: String,
    /// TP-MR of each segment present, in segment order.
    pub mrs: Vec<u8>,
    /// Segments expected (1 for a single SMS) and received.
    pub total: u8,
    pub received: u8,
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot open a pseudo-terminal pair: {0}")]
    Pty(#[source] std::io::Error),
    #[error("cannot create the link {path}: {source}")]
    Link {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Most segments kept in the record of sent SMS; older ones are dropped (counted).
pub const SENT_RECORD_CAP: usize = 10_000;

/// State the task shares with its handle; locked only briefly, never across an await.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub sent: VecDeque<SentSms>,
    pub sent_dropped: usize,
    pub stored: usize,
    pub device: PathBuf,
    pub generation: u64,
    pub timing: SendTiming,
}

/// Where a simulated modem's time went while sending, summed since spawn (for benchmarks:
/// take two readings and compare). Only `AT+CMGS` in PDU mode is counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendTiming {
    /// Sends answered (`+CMGS` or an error) after their PDU came in.
    pub sends: u64,
    /// Ctrl-Z to the answer: the configured send delay plus the simulator's own lateness.
    pub network: Duration,
    /// Answer of one send to the next `AT+CMGS` line: the host's turnaround (includes idle
    /// time when nothing was queued).
    pub turnaround: Duration,
    pub turnarounds: u64,
    /// Prompt written to the PDU's Ctrl-Z received: the host typing the PDU.
    pub typing: Duration,
}

/// Summing several modems' timings.
impl std::ops::Add for SendTiming {
    type Output = SendTiming;

    fn add(self, o: SendTiming) -> SendTiming {
        SendTiming {
            sends: self.sends + o.sends,
            network: self.network + o.network,
            turnaround: self.turnaround + o.turnaround,
            turnarounds: self.turnarounds + o.turnarounds,
            typing: self.typing + o.typing,
        }
    }
}

/// What happened between an earlier reading (`earlier`) and this one.
impl std::ops::Sub for SendTiming {
    type Output = SendTiming;

    fn sub(self, earlier: SendTiming) -> SendTiming {
        SendTiming {
            sends: self.sends.saturating_sub(earlier.sends),
            network: self.network.saturating_sub(earlier.network),
            turnaround: self.turnaround.saturating_sub(earlier.turnaround),
            turnarounds: self.turnarounds.saturating_sub(earlier.turnarounds),
            typing: self.typing.saturating_sub(earlier.typing),
        }
    }
}

pub(crate) type SharedRef = Arc<Mutex<Shared>>;

pub(crate) fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    // A poisoned lock only means a panic elsewhere; the data is plain records.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Requests from a handle to its task.
#[derive(Debug)]
pub(crate) enum Request {
    Sms {
        from: String,
        text: String,
        options: Option<DeliverOptions>,
    },
    Pdu(Vec<u8>),
    Fault(Fault),
}

/// Capacity of the request channel; injections beyond it are dropped and logged.
const REQUEST_CAP: usize = 1024;

/// A running simulated modem. Dropping it stops the modem and removes its link.
#[derive(Debug)]
pub struct SimHandle {
    profile: Profile,
    requests: mpsc::Sender<Request>,
    shared: SharedRef,
    sent_count: watch::Receiver<usize>,
    link: Option<PathBuf>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Start a simulated modem on a fresh pty pair; [`SimHandle::device_path`] names its slave.
pub async fn spawn(options: SimOptions) -> Result<SimHandle, SimError> {
    start(options, None).await
}

/// [`spawn`], plus a symlink at `link` pointing at the current pty (replaced if it exists,
/// recreated after an unplug, removed on shutdown).
pub async fn spawn_linked(options: SimOptions, link: &Path) -> Result<SimHandle, SimError> {
    start(options, Some(link.to_path_buf())).await
}

async fn start(options: SimOptions, link: Option<PathBuf>) -> Result<SimHandle, SimError> {
    let shared: SharedRef = Arc::default();
    let (requests, rx) = mpsc::channel(REQUEST_CAP);
    let (sent_tx, sent_count) = watch::channel(0usize);
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    let profile = options.profile;
    let port = pty::Port::open(link.as_deref())?;
    {
        let mut s = lock(&shared);
        s.device = port.slave_path.clone();
        s.generation = 1;
    }
    let task = tokio::spawn(pty::run(
        options,
        port,
        link.clone(),
        shared.clone(),
        sent_tx,
        rx,
        stop_rx,
    ));
    Ok(SimHandle {
        profile,
        requests,
        shared,
        sent_count,
        link,
        stop: Some(stop),
        task: Some(task),
    })
}

impl SimHandle {
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The path a driver opens: the link when there is one, else the current `/dev/pts/N`.
    pub fn device_path(&self) -> PathBuf {
        match &self.link {
            Some(link) => link.clone(),
            None => self.pty_path(),
        }
    }

    /// The current pty slave path (changes after an unplug).
    pub fn pty_path(&self) -> PathBuf {
        lock(&self.shared).device.clone()
    }

    /// How many ptys this modem has had: 1 after spawn, one more after each unplug or reboot
    /// once the new pty is up. (A new pty may reuse the old /dev/pts number.)
    pub fn port_generation(&self) -> u64 {
        lock(&self.shared).generation
    }

    fn request(&self, request: Request) {
        if let Err(e) = self.requests.try_send(request) {
            tracing::warn!(error = %e, "simulated modem request dropped");
        }
    }

    /// A network SMS from `from` arrives: split into segments when long (Chinese is fine), then
    /// stored with `+CMTI` or delivered as `+CMT` according to the driver's `AT+CNMI`.
    pub fn inject_sms(&self, from: &str, text: &str) {
        self.request(Request::Sms {
            from: from.into(),
            text: text.into(),
            options: None,
        });
    }

    /// [`inject_sms`](Self::inject_sms) with explicit SMS-DELIVER options (timestamp,
    /// concatenation reference, 16-bit reference IE).
    pub fn inject_sms_with(&self, from: &str, text: &str, options: DeliverOptions) {
        self.request(Request::Sms {
            from: from.into(),
            text: text.into(),
            options: Some(options),
        });
    }

    /// A raw SMS-DELIVER PDU (SMSC field included) arrives as is, malformed or not.
    pub fn inject_pdu(&self, pdu: Vec<u8>) {
        self.request(Request::Pdu(pdu));
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.request(Request::Fault(fault));
    }

    /// Where this modem's sending time went, since spawn.
    pub fn send_timing(&self) -> SendTiming {
        lock(&self.shared).timing
    }

    /// Segments accepted since spawn, including any dropped from the record.
    pub fn sent_total(&self) -> usize {
        *self.sent_count.borrow()
    }

    /// Segments accepted from the `from`-th on (counting from 0 at spawn), and the count to
    /// pass next time: a cursor for following the record as it grows.
    pub fn sent_since(&self, from: usize) -> (Vec<SentSms>, usize) {
        let shared = lock(&self.shared);
        let next = shared.sent_dropped + shared.sent.len();
        let skip = from.saturating_sub(shared.sent_dropped);
        (shared.sent.iter().skip(skip).cloned().collect(), next)
    }

    /// Every segment accepted so far (at most [`SENT_RECORD_CAP`], oldest dropped first).
    pub fn sent(&self) -> Vec<SentSms> {
        lock(&self.shared).sent.iter().cloned().collect()
    }

    /// [`sent`](Self::sent) grouped into messages: segments with the same recipient and
    /// concatenation reference, in order of their first segment.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        group_messages(&self.sent())
    }

    /// Wait until at least `n` segments were accepted in total; false on timeout.
    pub async fn wait_sent(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.sent_count.clone();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await,
            Ok(Ok(_))
        )
    }

    /// Messages (inbound, status reports) held in the modem's storages.
    pub fn stored(&self) -> usize {
        lock(&self.shared).stored
    }

    /// Stop the modem, remove its link, and wait (up to 2 s) for the task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The task removes the link too, but may never run again if the runtime is ending.
        if let Some(link) = &self.link {
            pty::remove_link_if_ours(link);
        }
    }
}

fn group_messages(sent: &[SentSms]) -> Vec<SentMessage> {
    struct Group {
        to: String,
        reference: Option<u16>,
        total: u8,
        parts: BTreeMap<u8, (String, u8)>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for s in sent {
        let (reference, total, seq) = match s.concat {
            Some(c) => (Some(c.reference), c.total, c.seq),
            None => (None, 1, 1),
        };
        // A concatenated segment joins the latest group with its key that still lacks it.
        let found = reference.and_then(|r| {
            groups.iter_mut().rev().find(|g| {
                g.reference == Some(r)
                    && g.to == s.to
                    && g.total == total
                    && !g.parts.contains_key(&seq)
            })
        });
        match found {
            Some(g) => {
                g.parts.insert(seq, (s.text.clone(), s.mr));
            }
            None => groups.push(Group {
                to: s.to.clone(),
                reference,
                total,
                parts: BTreeMap::from([(seq, (s.text.clone(), s.mr))]),
            }),
        }
    }
    groups
        .into_iter()
        .map(|g| SentMessage {
            to: g.to,
            text: g.parts.values().map(|(t, _)| t.as_str()).collect(),
            mrs: g.parts.values().map(|(_, mr)| *mr).collect(),
            total: g.total,
            received: g.parts.len().min(255) as u8,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_timings_sum_over_modems_and_difference_between_readings() {
        let ms = Duration::from_millis;
        let a = SendTiming {
            sends: 2,
            network: ms(40),
            turnaround: ms(3),
            turnarounds: 1,
            typing: ms(2),
        };
        let b = SendTiming {
            sends: 1,
            network: ms(21),
            turnaround: ms(0),
            turnarounds: 0,
            typing: ms(1),
        };
        let sum = a + b;
        assert_eq!((sum.sends, sum.network, sum.typing), (3, ms(61), ms(3)));
        assert_eq!(sum - a, b);
        // A reading taken after a modem was replaced may be smaller: no underflow.
        assert_eq!((a - sum).sends, 0);
        assert_eq!((a - sum).network, Duration::ZERO);
    }

    fn seg(to: &str, text: &str, mr: u8, concat: Option<(u16, u8, u8)>) -> SentSms {
        SentSms {
            to: to.into(),
            text: text.into(),
            encoding: Encoding::Ucs2,
            mr,
            status_report_requested: false,
            concat: concat.map(|(reference, total, seq)| Concat {
                reference,
                total,
                seq,
            }),
            pdu_hex: String::new(),
        }
    }

    #[test]
    fn segments_group_into_messages() {
        let sent = [
            seg("+8613800138000", "你好", 1, None),
            seg("+8613800138000", "第二段", 3, Some((7, 2, 2))),
            seg("+8613800138001", "other", 4, Some((7, 2, 1))),
            seg("+8613800138000", "第一段", 2, Some((7, 2, 1))),
        ];
        let m = group_messages(&sent);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].text, "你好");
        assert_eq!(
            (m[1].text.as_str(), m[1].mrs.as_slice(), m[1].received),
            ("第一段第二段", &[2, 3][..], 2)
        );
        assert_eq!(
            (m[2].to.as_str(), m[2].received, m[2].total),
            ("+8613800138001", 1, 2)
        );
    }

    #[test]
    fn report_status_matches_with_or_without_country_code() {
        let mut o = SimOptions::new(Profile::Sim800);
        o.report_status.insert("13800138000".into(), 0x45);
        assert_eq!(o.status_for("+8613800138000"), 0x45);
        assert_eq!(o.status_for("13800138000"), 0x45);
        assert_eq!(o.status_for("13800138001"), 0);
    }
}
