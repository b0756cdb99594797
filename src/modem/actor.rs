//! The actor: one task, one port, one `select!`. Commands are executed inline (`exec`), reading
//! until their final result or deadline and routing URCs met on the way; requests are only
//! taken when no command is in flight.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tracing::{debug, trace, warn};

use super::handle::Request;
use super::recovery::Rung;
use super::{
    ModemConfig, ModemError, ModemEvent, ModemEventKind, ModemState, ModemStatus, PortOpener,
    SendError, SendFailure,
};
use crate::at::commands::{self, CMGD, CMGL, CMGR, CMGS, CNMA, CommandMeta, PinState};
use crate::at::digest::INGRESS_CAP;
use crate::at::{DeviceError, Digested, Expect, Ingress, RetryClass, Urc};
use crate::pdu::EncodedSegment;

/// Information lines kept per command (a full +CMGL of 255 messages is 510 lines).
const MAX_INFO_LINES: usize = 1024;
/// Stored-message indexes waiting to be read; beyond that a sweep picks them up.
const MAX_PENDING_READS: usize = 64;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 512;
/// A health poll due right after a send waits this long, at most `MAX_HEALTH_DEFERRALS`
/// times, so that back-to-back messages are not interleaved with status commands.
const HEALTH_DEFER: Duration = Duration::from_secs(1);
const MAX_HEALTH_DEFERRALS: u32 = 30;
/// A stored message whose event could not be delivered is looked for again after this.
const RESWEEP_AFTER_DROP: Duration = Duration::from_secs(10);
/// How long the final result of an ESC typed at the prompt is awaited (most modems say OK).
const ESC_SETTLE: Duration = Duration::from_millis(500);

/// Why a command did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExecError {
    Device(DeviceError),
    Timeout,
    PortLost(String),
    NoPort,
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Device(e) => write!(f, "{e}"),
            ExecError::Timeout => f.write_str("timeout"),
            ExecError::PortLost(why) => write!(f, "port lost: {why}"),
            ExecError::NoPort => f.write_str("port not open"),
        }
    }
}

impl From<ExecError> for SendFailure {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Device(d) => SendFailure::Device(d),
            ExecError::Timeout => SendFailure::Timeout,
            ExecError::PortLost(why) => SendFailure::PortLost(why),
            ExecError::NoPort => SendFailure::PortLost("port not open".into()),
        }
    }
}

impl From<ExecError> for ModemError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Device(d) => ModemError::Device(d),
            ExecError::Timeout => ModemError::Timeout,
            ExecError::PortLost(why) => ModemError::PortLost(why),
            ExecError::NoPort => ModemError::PortLost("port not open".into()),
        }
    }
}

/// The retry class of a failed segment.
pub(super) fn failure_class(f: &SendFailure) -> RetryClass {
    match f {
        SendFailure::Device(e) => e.class(),
        SendFailure::Empty => RetryClass::PermanentForMessage,
        SendFailure::CalledOff => RetryClass::RetryHere,
        _ => RetryClass::RetryOtherModem,
    }
}

enum Wake {
    Stop,
    Read(std::io::Result<usize>),
    Request(Request),
    Retry,
    Health,
    Sweep,
}

pub(crate) struct Actor<O: PortOpener> {
    pub(super) cfg: ModemConfig,
    pub(super) name: Arc<str>,
    pub(super) opener: O,
    pub(super) port: Option<O::Port>,
    pub(super) ingress: Ingress,
    requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<ModemEvent>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) status: ModemStatus,
    pub(super) pending_reads: VecDeque<u32>,
    pub(super) needs_cnma: bool,
    pub(super) cnma_due: bool,
    pub(super) sweep_due: bool,
    pub(super) recovery_due: Option<Rung>,
    /// Set when the port failed inside a command; the main loop takes the modem down.
    pub(super) lost: Option<String>,
    /// The configured PIN was entered once already: never again (a SIM locks after three).
    pub(super) pin_entered: bool,
    pub(super) health_at: Instant,
    pub(super) sweep_at: Instant,
    pub(super) retry_at: Option<Instant>,
    pub(super) backoff: Duration,
    last_send_end: Option<Instant>,
    health_deferrals: u32,
}

async fn read_some<P: AsyncRead + Unpin>(
    port: &mut Option<P>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match port {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl<O: PortOpener> Actor<O> {
    pub(crate) fn new(
        cfg: ModemConfig,
        opener: O,
        requests: mpsc::Receiver<Request>,
        events: mpsc::Sender<ModemEvent>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let now = Instant::now();
        let status = ModemStatus {
            name: cfg.name.clone(),
            state: ModemState::Initialising,
            identity: None,
            registered: false,
            registration: None,
            signal_dbm: None,
            operator: None,
            last_error: None,
            cnmi: None,
            segments_sent: 0,
            segments_failed: 0,
            consecutive_failures: 0,
            noise_lines: 0,
            overlong_lines: 0,
            events_dropped: 0,
        };
        Actor {
            name: Arc::from(cfg.name.as_str()),
            backoff: cfg.reopen_backoff_min,
            health_at: now + cfg.health_interval,
            sweep_at: now + cfg.sweep_interval,
            cfg,
            opener,
            port: None,
            ingress: Ingress::new(),
            requests,
            events,
            stop,
            status,
            pending_reads: VecDeque::new(),
            needs_cnma: false,
            cnma_due: false,
            sweep_due: false,
            recovery_due: None,
            lost: None,
            pin_entered: false,
            retry_at: Some(now),
            last_send_end: None,
            health_deferrals: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            if *self.stop.borrow() {
                break;
            }
            if let Some(why) = self.lost.take() {
                self.go_down(&why).await;
            }
            if let Some(rung) = self.recovery_due.take() {
                self.recover(rung).await;
                continue;
            }
            // A command's final result may have arrived in one read with URCs behind it:
            // handle those now, not when the next byte happens to come.
            if self.ingress.buffered() > 0 {
                self.on_idle_bytes(&[]).await;
            }
            if self.status.state == ModemState::Ready && self.idle_work_pending() {
                self.idle_work().await;
                continue;
            }
            let ready = self.status.state == ModemState::Ready;
            let want = (INGRESS_CAP - self.ingress.buffered()).clamp(1, READ_CHUNK);
            let mut chunk = [0u8; READ_CHUNK];
            let (retry_at, health_at, sweep_at) = (self.retry_at, self.health_at, self.sweep_at);
            let wake = tokio::select! {
                biased;
                r = self.stop.changed() => {
                    if r.is_err() { Wake::Stop } else { continue }
                }
                r = read_some(&mut self.port, &mut chunk[..want]) => Wake::Read(r),
                req = self.requests.recv() => match req {
                    Some(r) => Wake::Request(r),
                    None => Wake::Stop,
                },
                _ = sleep_until_opt(retry_at) => Wake::Retry,
                _ = sleep_until(health_at), if ready => Wake::Health,
                _ = sleep_until(sweep_at), if ready => Wake::Sweep,
            };
            match wake {
                Wake::Stop => break,
                Wake::Read(Ok(0)) => self.mark_lost("end of file"),
                Wake::Read(Err(e)) => self.mark_lost(&e.to_string()),
                Wake::Read(Ok(n)) => self.on_idle_bytes(&chunk[..n]).await,
                Wake::Request(req) => self.on_request(req).await,
                Wake::Retry => {
                    self.retry_at = None;
                    self.restart().await;
                }
                Wake::Health => self.on_health_timer().await,
                Wake::Sweep => {
                    self.sweep_at = Instant::now() + self.cfg.sweep_interval;
                    self.sweep().await;
                }
            }
        }
        self.stop_actor().await;
    }

    async fn stop_actor(&mut self) {
        self.requests.close();
        while let Ok(req) = self.requests.try_recv() {
            self.refuse(req, SendFailure::ShuttingDown);
        }
        self.port = None;
        self.set_state(ModemState::Stopped).await;
        self.emit(ModemEventKind::Stopped).await;
    }

    fn idle_work_pending(&self) -> bool {
        self.cnma_due || self.sweep_due || !self.pending_reads.is_empty()
    }

    /// Reads and acknowledgements postponed while a command was in flight.
    async fn idle_work(&mut self) {
        if self.cnma_due {
            self.cnma_due = false;
            // 340 (no acknowledgement expected) is fine: the modem did not need it.
            if let Err(e) = self.exec(&CNMA, "AT+CNMA").await {
                debug!(error = %e, "AT+CNMA");
            }
        }
        while let Some(index) = self.pending_reads.pop_front() {
            self.read_stored(index).await;
            if self.lost.is_some() || self.recovery_due.is_some() {
                return;
            }
        }
        if self.sweep_due {
            self.sweep_due = false;
            self.sweep().await;
        }
    }

    async fn on_idle_bytes(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            trace!(rx = %String::from_utf8_lossy(bytes).escape_debug());
        }
        let mut rest = bytes;
        loop {
            let n = self.ingress.push(rest);
            rest = &rest[n..];
            while let Some(item) = self.ingress.next_item() {
                match item {
                    Digested::Urc(u) => self.on_urc(u).await,
                    Digested::Info(l) => debug!(line = %l, "unexpected line while idle"),
                    Digested::Final(r) => debug!(result = ?r, "final result while idle"),
                    _ => {}
                }
            }
            if rest.is_empty() {
                break;
            }
        }
    }

    async fn on_request(&mut self, req: Request) {
        match req {
            Request::Status { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Request::AckInbound { index, reply } => {
                let result = if self.status.state != ModemState::Ready {
                    Err(ModemError::NotReady(self.status.state))
                } else {
                    self.exec(&CMGD, &format!("AT+CMGD={index}"))
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            if e == ExecError::Timeout {
                                self.recovery_due = Some(Rung::Resync);
                            }
                            e.into()
                        })
                };
                let _ = reply.send(result);
            }
            Request::Send {
                segments,
                gate,
                reply,
            } => {
                let result = self.send_batch(&segments, gate).await;
                let _ = reply.send(result);
                self.last_send_end = Some(Instant::now());
            }
        }
    }

    fn refuse(&self, req: Request, failure: SendFailure) {
        match req {
            Request::Send { reply, .. } => {
                let class = failure_class(&failure);
                let _ = reply.send(Err(SendError {
                    segment_index: 0,
                    accepted: Vec::new(),
                    failure,
                    class,
                }));
            }
            Request::Status { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Request::AckInbound { reply, .. } => {
                let _ = reply.send(Err(ModemError::NotReady(self.status.state)));
            }
        }
    }

    pub(super) fn snapshot(&self) -> ModemStatus {
        let mut s = self.status.clone();
        s.noise_lines = self.ingress.digester.stats.noise_lines;
        s.overlong_lines = self.ingress.digester.stats.overlong_lines;
        s
    }

    // ---- sending -------------------------------------------------------------------------

    async fn send_batch(
        &mut self,
        segments: &[EncodedSegment],
        mut gate: Option<oneshot::Receiver<bool>>,
    ) -> Result<Vec<u8>, SendError> {
        let fail = |i: usize, accepted: Vec<u8>, failure: SendFailure| {
            let class = failure_class(&failure);
            SendError {
                segment_index: i,
                accepted,
                failure,
                class,
            }
        };
        if segments.is_empty() {
            return Err(fail(0, Vec::new(), SendFailure::Empty));
        }
        if self.status.state != ModemState::Ready {
            return Err(fail(
                0,
                Vec::new(),
                SendFailure::NotReady(self.status.state),
            ));
        }
        let mut accepted = Vec::with_capacity(segments.len());
        for (i, seg) in segments.iter().enumerate() {
            if *self.stop.borrow() {
                return Err(fail(i, accepted, SendFailure::ShuttingDown));
            }
            match self.send_segment(seg, gate.take()).await {
                Ok(mr) => {
                    accepted.push(mr);
                    self.status.segments_sent += 1;
                }
                // The caller's decision, not a fault of the modem.
                Err(SendFailure::CalledOff) => {
                    return Err(fail(i, accepted, SendFailure::CalledOff));
                }
                Err(failure) => {
                    self.status.segments_failed += 1;
                    self.status.last_error = Some(failure.to_string());
                    let err = fail(i, accepted, failure);
                    warn!(segment = i, error = %err.failure, class = %err.class, "send failed");
                    match &err.failure {
                        SendFailure::PromptTimeout
                        | SendFailure::Timeout
                        | SendFailure::NoReference => {
                            self.recovery_due = Some(Rung::Resync);
                        }
                        SendFailure::Device(_) if err.class == RetryClass::ModemNeedsRecovery => {
                            self.recovery_due = Some(Rung::Reinit);
                        }
                        _ => {}
                    }
                    if err.class != RetryClass::PermanentForMessage {
                        self.note_failure(&err.failure.to_string()).await;
                    }
                    return Err(err);
                }
            }
        }
        self.status.consecutive_failures = 0;
        Ok(accepted)
    }

    /// `AT+CMGS=<len>`, `> `, PDU + Ctrl-Z, `+CMGS: <mr>`, `OK`. Nothing else in between.
    /// With a `gate`, the PDU waits at the prompt for the caller's word.
    async fn send_segment(
        &mut self,
        seg: &EncodedSegment,
        gate: Option<oneshot::Receiver<bool>>,
    ) -> Result<u8, SendFailure> {
        self.ingress.digester.expect = Expect::command(&CMGS);
        let result = self.send_segment_inner(seg, gate).await;
        self.ingress.digester.expect = Expect::IDLE;
        result
    }

    async fn send_segment_inner(
        &mut self,
        seg: &EncodedSegment,
        gate: Option<oneshot::Receiver<bool>>,
    ) -> Result<u8, SendFailure> {
        self.write(format!("AT+CMGS={}\r", seg.tpdu_len).as_bytes())
            .await?;
        let deadline = Instant::now() + self.cfg.prompt_timeout;
        loop {
            match self.next_item(deadline).await {
                Ok(Digested::Prompt) => break,
                Ok(Digested::Final(Err(e))) => return Err(SendFailure::Device(e)),
                Ok(Digested::Final(Ok(()))) => return Err(SendFailure::NoReference),
                Ok(_) => {}
                Err(ExecError::Timeout) => {
                    // ESC abandons the half-open CMGS so the modem takes commands again.
                    let _ = self.write(b"\x1b").await;
                    return Err(SendFailure::PromptTimeout);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(gate) = gate {
            let open = matches!(timeout(self.cfg.prompt_timeout, gate).await, Ok(Ok(true)));
            if !open {
                self.write(b"\x1b").await?;
                // Take the ESC's final result now, so that it is not mistaken for the next
                // command's; a modem that says nothing costs ESC_SETTLE once.
                let deadline = Instant::now() + ESC_SETTLE;
                while let Ok(item) = self.next_item(deadline).await {
                    if matches!(item, Digested::Final(_)) {
                        break;
                    }
                }
                return Err(SendFailure::CalledOff);
            }
        }
        let mut payload = commands::bytes_to_hex(&seg.pdu).into_bytes();
        payload.push(0x1A);
        self.write(&payload).await?;
        let deadline = Instant::now() + self.cfg.send_timeout;
        let mut mr = None;
        loop {
            match self.next_item(deadline).await {
                Ok(Digested::Info(line)) => mr = mr.or(commands::parse_cmgs(&line)),
                Ok(Digested::Final(Ok(()))) => return mr.ok_or(SendFailure::NoReference),
                Ok(Digested::Final(Err(e))) => return Err(SendFailure::Device(e)),
                Ok(_) => {}
                Err(ExecError::Timeout) => {
                    let _ = self.write(b"\x1b").await;
                    return Err(SendFailure::Timeout);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    // ---- receiving -----------------------------------------------------------------------

    pub(super) async fn on_urc(&mut self, urc: Urc) {
        debug!(?urc, "urc");
        match urc {
            Urc::NewMessage { index, .. } | Urc::NewStatusReport { index, .. } => {
                if self.pending_reads.contains(&index) {
                } else if self.pending_reads.len() < MAX_PENDING_READS {
                    self.pending_reads.push_back(index);
                } else {
                    self.sweep_due = true;
                }
            }
            Urc::Deliver { pdu } => {
                self.emit(ModemEventKind::Inbound {
                    storage_index: None,
                    pdu,
                })
                .await;
                self.cnma_due |= self.needs_cnma;
            }
            Urc::StatusReport { pdu } => {
                self.emit(ModemEventKind::StatusReport {
                    storage_index: None,
                    pdu,
                })
                .await;
                self.cnma_due |= self.needs_cnma;
            }
            Urc::Registration(r) => {
                let registered = r.status.is_registered();
                if self.status.registration != Some(r.status) {
                    self.status.registration = Some(r.status);
                    self.status.registered = registered;
                    self.emit(ModemEventKind::Health(self.snapshot())).await;
                }
            }
            // Boot notices while we think the modem is set up: it rebooted and forgot
            // PDU mode, CNMI and the rest.
            Urc::Pin(_) if self.status.state == ModemState::Ready => {
                self.recovery_due.get_or_insert(Rung::Reinit);
            }
            Urc::Notice(n)
                if self.status.state == ModemState::Ready && n.eq_ignore_ascii_case("RDY") =>
            {
                self.recovery_due.get_or_insert(Rung::Reinit);
            }
            Urc::StorageFull => self.sweep_due = true,
            _ => {}
        }
    }

    async fn read_stored(&mut self, index: u32) {
        match self.exec(&CMGR, &format!("AT+CMGR={index}")).await {
            Ok(lines) => {
                let mut it = lines.iter();
                while let Some(line) = it.next() {
                    if commands::parse_cmgr(line).is_some()
                        && let Some(pdu) = it.next().and_then(|l| commands::hex_to_bytes(l))
                    {
                        self.emit_stored(index, pdu).await;
                    }
                }
            }
            Err(ExecError::Timeout) => self.recovery_due = Some(Rung::Resync),
            Err(e) => debug!(index, error = %e, "AT+CMGR"),
        }
    }

    /// `AT+CMGL=4`: everything stored, for messages announced while we were away.
    pub(super) async fn sweep(&mut self) {
        match self.exec(&CMGL, "AT+CMGL=4").await {
            Ok(lines) => {
                let mut it = lines.iter();
                while let Some(line) = it.next() {
                    let Some(h) = commands::parse_cmgl(line) else {
                        continue;
                    };
                    let Some(pdu) = it.next().and_then(|l| commands::hex_to_bytes(l)) else {
                        continue;
                    };
                    // 2/3 are stored outgoing drafts: not ours to report.
                    if let (Some(index), 0 | 1) = (h.index, h.stat) {
                        self.emit_stored(index, pdu).await;
                    }
                }
            }
            Err(ExecError::Timeout) => self.recovery_due = Some(Rung::Resync),
            Err(e) => debug!(error = %e, "AT+CMGL"),
        }
    }

    async fn emit_stored(&mut self, index: u32, pdu: Vec<u8>) {
        let kind = if commands::pdu_mti(&pdu) == Some(2) {
            ModemEventKind::StatusReport {
                storage_index: Some(index),
                pdu,
            }
        } else {
            ModemEventKind::Inbound {
                storage_index: Some(index),
                pdu,
            }
        };
        self.emit(kind).await;
    }

    // ---- plumbing ------------------------------------------------------------------------

    pub(super) async fn emit(&mut self, kind: ModemEventKind) {
        // A stored message whose event is dropped is still on the SIM: read it again soon
        // rather than at the next regular sweep (minutes away).
        let stored = matches!(
            kind,
            ModemEventKind::Inbound {
                storage_index: Some(_),
                ..
            } | ModemEventKind::StatusReport {
                storage_index: Some(_),
                ..
            }
        );
        let event = ModemEvent {
            modem: self.name.clone(),
            kind,
        };
        match timeout(self.cfg.event_timeout, self.events.send(event)).await {
            Ok(Ok(())) => {}
            _ => {
                self.status.events_dropped += 1;
                if stored {
                    self.sweep_at = self.sweep_at.min(Instant::now() + RESWEEP_AFTER_DROP);
                    warn!(
                        "event consumer did not take a stored message in time; it is read again by an early sweep"
                    );
                } else {
                    warn!("event consumer did not take an event in time; dropped");
                }
            }
        }
    }

    pub(super) async fn set_state(&mut self, state: ModemState) {
        if self.status.state != state {
            debug!(from = ?self.status.state, to = ?state, "state");
            self.status.state = state;
            self.emit(ModemEventKind::Health(self.snapshot())).await;
        }
    }

    pub(super) fn mark_lost(&mut self, why: &str) {
        warn!(reason = why, "serial port lost");
        self.port = None;
        self.ingress.clear();
        self.lost = Some(why.to_string());
    }

    /// Run one command to its final result; its information lines are returned.
    pub(super) async fn exec(
        &mut self,
        meta: &CommandMeta,
        cmd: &str,
    ) -> Result<Vec<String>, ExecError> {
        self.ingress.digester.expect = Expect::command(meta);
        let result = self.exec_inner(cmd, meta.timeout).await;
        self.ingress.digester.expect = Expect::IDLE;
        result
    }

    async fn exec_inner(&mut self, cmd: &str, limit: Duration) -> Result<Vec<String>, ExecError> {
        let mut line = Vec::with_capacity(cmd.len() + 1);
        line.extend_from_slice(cmd.as_bytes());
        line.push(b'\r');
        self.write(&line).await?;
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            match self.next_item(deadline).await? {
                Digested::Info(l) if lines.len() < MAX_INFO_LINES => lines.push(l),
                Digested::Final(Ok(())) => return Ok(lines),
                Digested::Final(Err(e)) => return Err(ExecError::Device(e)),
                _ => {}
            }
        }
    }

    /// The next item for the command in flight; URCs met on the way are handled here.
    pub(super) async fn next_item(&mut self, deadline: Instant) -> Result<Digested, ExecError> {
        loop {
            if let Some(item) = self.ingress.next_item() {
                match item {
                    Digested::Urc(u) => self.on_urc(u).await,
                    other => return Ok(other),
                }
                continue;
            }
            let want = (INGRESS_CAP - self.ingress.buffered()).clamp(1, READ_CHUNK);
            let mut chunk = [0u8; READ_CHUNK];
            let port = self.port.as_mut().ok_or(ExecError::NoPort)?;
            let n = match timeout_at(deadline, port.read(&mut chunk[..want])).await {
                Err(_) => return Err(ExecError::Timeout),
                Ok(Ok(0)) => {
                    self.mark_lost("end of file");
                    return Err(ExecError::PortLost("end of file".into()));
                }
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    let why = e.to_string();
                    self.mark_lost(&why);
                    return Err(ExecError::PortLost(why));
                }
            };
            trace!(rx = %String::from_utf8_lossy(&chunk[..n]).escape_debug());
            // `want` never exceeds the free space, so everything read fits.
            self.ingress.push(&chunk[..n]);
        }
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), ExecError> {
        trace!(tx = %String::from_utf8_lossy(bytes).escape_debug());
        let port = self.port.as_mut().ok_or(ExecError::NoPort)?;
        let io = async {
            port.write_all(bytes).await?;
            port.flush().await
        };
        match timeout(WRITE_TIMEOUT, io).await {
            Err(_) => Err(ExecError::Timeout),
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                let why = e.to_string();
                self.mark_lost(&why);
                Err(ExecError::PortLost(why))
            }
        }
    }

    async fn on_health_timer(&mut self) {
        let now = Instant::now();
        let recently_sent = self
            .last_send_end
            .is_some_and(|t| now.duration_since(t) < HEALTH_DEFER);
        if recently_sent && self.health_deferrals < MAX_HEALTH_DEFERRALS {
            self.health_deferrals += 1;
            self.health_at = now + HEALTH_DEFER;
            return;
        }
        self.health_deferrals = 0;
        self.health_at = now + self.cfg.health_interval;
        self.health_check().await;
    }

    pub(super) fn pin_state_error(state: &PinState) -> String {
        match state {
            PinState::Ready => "ready".into(),
            PinState::SimPin => "SIM PIN required".into(),
            PinState::SimPuk => "SIM PUK required (SIM locked)".into(),
            PinState::PhSimPin => "PH-SIM PIN required".into(),
            PinState::Other(s) => format!("SIM not ready: {s}"),
        }
    }
}
