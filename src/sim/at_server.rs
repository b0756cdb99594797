//! The simulated modem's brain: a pure state machine from input bytes and timer ticks to output
//! bytes. No I/O, no clock of its own: the caller passes `now` and collects output with
//! [`AtServer::take_output`], timers with [`AtServer::next_deadline`] / [`AtServer::tick`].
//!
//! It answers as a 3GPP TS 27.007 / 27.005 modem in V1 verbose mode: `\r\n<info>\r\n` lines,
//! then `\r\nOK\r\n` or an error whose wording follows `AT+CMEE`. The command line is bounded
//! (as real modems' are, about 556 characters); PDU entry after the `> ` prompt is bounded too.

use super::fault::Fault;
use super::profile::{IccidStyle, ProfileSpec, Rejection};
use super::storage::{Memory, REC_READ, REC_UNREAD, STO_UNSENT, Stored};
use super::{Request, SENT_RECORD_CAP, SentSms, SharedRef, SimOptions, lock};
use crate::pdu::{self, Body, DeliverOptions, Pdu};
use chrono::{DateTime, FixedOffset, Offset, Utc};
use rand::Rng;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Longest command line kept; longer ones are answered with ERROR once their CR arrives.
const LINE_CAP: usize = 556;
/// Longest PDU entry in hex characters (SMSC 12 octets + 176-octet TPDU, with slack).
const PDU_HEX_CAP: usize = 2 * (12 + 176) + 8;
/// Longest text-mode entry (160 characters as UCS2 hex, with slack).
const TEXT_CAP: usize = 700;
/// Input held while a send is in progress.
const HELD_CAP: usize = 4096;
/// URCs held while the driver types a PDU.
const DEFERRED_CAP: usize = 64;
/// Inbound messages the network holds while the modem cannot take them.
const PENDING_CAP: usize = 256;
/// Output not yet collected by the I/O task (a garbage burst is the largest single write).
const OUT_CAP: usize = 2 * super::MAX_GARBAGE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinState {
    Ready,
    NeedPin { retries: u8 },
    NeedPuk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Send,
    Write { stat: u8 },
}

#[derive(Debug)]
enum Input {
    Command,
    /// After `AT+CMGS=<len>` / `AT+CMGW=<len>`: hex until Ctrl-Z or ESC.
    Pdu {
        len: usize,
        purpose: Purpose,
        hex: Vec<u8>,
        bad: bool,
    },
    /// After `AT+CMGS="<da>"` in text mode: text until Ctrl-Z or ESC.
    Text {
        to: String,
        buf: Vec<u8>,
    },
    /// Waiting for the network's answer to a send; input is held.
    Busy,
}

#[derive(Debug)]
enum Timer {
    Boot(usize),
    Prompt,
    SendDone(Result<Box<Accepted>, u16>),
    Report {
        mr: u8,
        recipient: String,
        submitted: DateTime<FixedOffset>,
    },
    Noise(usize),
    RegistrationBack,
}

/// A submission the network accepted, waiting for its `+CMGS`.
#[derive(Debug)]
struct Accepted {
    sms: SentSms,
    recipient: String,
}

enum Fail {
    Error,
    Cme(u16),
    Cms(u16),
}

type Reply = Result<Vec<String>, Fail>;

pub(crate) struct AtServer {
    opts: SimOptions,
    spec: &'static ProfileSpec,
    shared: SharedRef,
    sent_tx: watch::Sender<usize>,
    sent_total: usize,
    out: Vec<u8>,
    timers: Vec<(Instant, Timer)>,
    input: Input,
    line: Vec<u8>,
    line_overflow: bool,
    held: Vec<u8>,
    deferred: Vec<String>,
    powered: bool,
    /// The port must go away for this long; `true` when the output so far should reach the
    /// reader first (a reboot answers OK before it resets; an unplug just vanishes).
    replug: Option<(Duration, bool)>,
    booted_at: Instant,
    boot_halted_at: Option<usize>,
    boot_sms_ready: bool,
    // Settings that a reboot resets.
    echo: bool,
    cmee: u8,
    cmgf: u8,
    cscs: &'static str,
    csms: u8,
    /// First octet of text-mode submissions (AT+CSMP); 0x20 asks for a status report.
    csmp_fo: u8,
    cnmi: [u8; 5],
    creg_n: u8,
    cgreg_n: u8,
    cereg_n: u8,
    cops_format: u8,
    cfun: u8,
    curc: bool,
    cnma_expected: bool,
    // The SIM card and the network: these survive a reboot.
    pin: PinState,
    smsc: String,
    smsc_type: u8,
    memories: Vec<Memory>,
    mem: [usize; 3],
    storage_full: bool,
    pending: VecDeque<Vec<u8>>,
    noreg_until: Option<Instant>,
    silent_until: Option<Instant>,
    cms_faults: VecDeque<(u16, u32)>,
    slow_prompt: Option<Duration>,
    next_mr: u8,
    next_ref: u16,
    /// When the last send's answer went out / the prompt went out / the PDU came in.
    answered_at: Option<Instant>,
    prompted_at: Option<Instant>,
    submitted_at: Option<Instant>,
}

/// Network time as Chinese SMSCs stamp it (UTC+8).
fn wall_now() -> DateTime<FixedOffset> {
    let china = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix());
    Utc::now().with_timezone(&china)
}

/// Text-mode names of the 27.005 message states, by their PDU-mode number.
const TEXT_STATS: [&str; 5] = ["REC UNREAD", "REC READ", "STO UNSENT", "STO SENT", "ALL"];

/// A TP-SCTS as text mode prints it: "yy/MM/dd,hh:mm:ss±zz" (zz in quarter hours).
fn scts(t: &DateTime<FixedOffset>) -> String {
    let quarters = t.offset().local_minus_utc() / 900;
    let sign = if quarters < 0 { '-' } else { '+' };
    format!(
        "{}{sign}{:02}",
        t.format("%y/%m/%d,%H:%M:%S"),
        quarters.abs()
    )
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

fn ucs2_hex(s: &str) -> String {
    s.encode_utf16().map(|u| format!("{u:04X}")).collect()
}

fn from_ucs2_hex(s: &str) -> Option<String> {
    let bytes = unhex(s.as_bytes())?;
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

fn cme_text(code: u16) -> &'static str {
    match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        16 => "incorrect password",
        30 => "no network service",
        _ => "unknown",
    }
}

fn cms_text(code: u16) -> &'static str {
    match code {
        38 => "network out of order",
        42 => "congestion",
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        313 => "SIM failure",
        314 => "SIM busy",
        316 => "SIM PUK required",
        320 => "memory failure",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        _ => "unknown error",
    }
}

/// A parsed command: upper-cased name and what follows it.
struct Cmd<'a> {
    name: String,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Exec,
    Read,
    Test,
    Set(&'a str),
}

/// Split what follows `AT` into commands: extended ones (`+X`, `^X`, `$X`…) run to an unquoted
/// `;`, basic ones (`E0`, `&F`, `S7=60`) are a letter and digits.
fn split_commands(rest: &str) -> Option<Vec<&str>> {
    let b = rest.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        match b[i] {
            b';' | b' ' => {
                i += 1;
                continue;
            }
            b'+' | b'^' | b'$' | b'*' | b'%' | b'#' => {
                let mut quoted = false;
                while i < b.len() && (quoted || b[i] != b';') {
                    if b[i] == b'"' {
                        quoted = !quoted;
                    }
                    i += 1;
                }
            }
            b'&' => {
                i += 1;
                if i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            c if c.eq_ignore_ascii_case(&b'S') => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'=' || b[i] == b'?') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() => {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            _ => return None,
        }
        out.push(rest.get(start..i)?);
    }
    Some(out)
}

fn parse_cmd(s: &str) -> Cmd<'_> {
    let (head, kind) = if let Some(h) = s.strip_suffix("=?") {
        (h, Kind::Test)
    } else if let Some((h, args)) = s.split_once('=') {
        (h, Kind::Set(args))
    } else if let Some(h) = s.strip_suffix('?') {
        (h, Kind::Read)
    } else {
        (s, Kind::Exec)
    };
    Cmd {
        name: head.trim().to_ascii_uppercase(),
        kind,
    }
}

/// Comma-separated arguments, quotes removed (commas inside quotes kept).
fn args(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out.into_iter().map(|a| a.trim().to_string()).collect()
}

fn num<T: std::str::FromStr>(s: Option<&String>) -> Option<T> {
    s.and_then(|s| s.trim().parse().ok())
}

impl AtServer {
    pub fn new(opts: SimOptions, shared: SharedRef, sent_tx: watch::Sender<usize>) -> Self {
        let spec = opts.profile.spec();
        let memories = spec
            .storages
            .iter()
            .map(|(n, c)| Memory::new(n, *c, spec.index_base))
            .collect();
        let pin = match opts.pin {
            Some(_) => PinState::NeedPin { retries: 3 },
            None => PinState::Ready,
        };
        let smsc = opts.identity.smsc.clone();
        let next_ref = rand::rng().random();
        AtServer {
            answered_at: None,
            prompted_at: None,
            submitted_at: None,
            spec,
            shared,
            sent_tx,
            sent_total: 0,
            out: Vec::new(),
            timers: Vec::new(),
            input: Input::Command,
            line: Vec::new(),
            line_overflow: false,
            held: Vec::new(),
            deferred: Vec::new(),
            powered: false,
            replug: None,
            booted_at: Instant::now(),
            boot_halted_at: None,
            boot_sms_ready: false,
            echo: true,
            cmee: spec.default_cmee,
            cmgf: 0,
            cscs: spec.default_cscs,
            csms: 0,
            csmp_fo: 17,
            cnmi: spec.default_cnmi,
            creg_n: 0,
            cgreg_n: 0,
            cereg_n: 0,
            cops_format: 0,
            cfun: 1,
            curc: true,
            cnma_expected: false,
            pin,
            smsc_type: if smsc.starts_with('+') { 145 } else { 129 },
            smsc,
            memories,
            mem: [0; 3],
            storage_full: false,
            pending: VecDeque::new(),
            noreg_until: None,
            silent_until: None,
            cms_faults: VecDeque::new(),
            slow_prompt: None,
            next_mr: 0,
            next_ref,
            opts,
        }
    }

    // ----- interface to the I/O task -----

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn take_replug(&mut self) -> Option<(Duration, bool)> {
        self.replug.take()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().map(|(t, _)| *t).min()
    }

    /// Power on (at start and after an unplug or reboot): volatile settings back to the
    /// profile's defaults, boot URCs scheduled.
    pub fn power_on(&mut self, now: Instant) {
        self.powered = true;
        self.clear_timers();
        self.input = Input::Command;
        self.line.clear();
        self.line_overflow = false;
        self.held.clear();
        self.deferred.clear();
        self.reset_settings();
        self.cfun = 1;
        self.booted_at = now;
        self.boot_halted_at = None;
        self.boot_sms_ready = false;
        self.silent_until = None;
        self.timers.push((now, Timer::Boot(0)));
        if let Some(every) = self.spec.noise_every {
            self.timers.push((now + every, Timer::Noise(0)));
        }
        if let Some(until) = self.noreg_until
            && until > now
        {
            self.timers.push((until, Timer::RegistrationBack));
        }
    }

    fn power_off(&mut self, down_for: Duration, drain: bool) {
        self.powered = false;
        self.clear_timers();
        if !drain {
            self.out.clear();
        }
        self.replug = Some((down_for, drain));
        // The SIM loses its unlock with power.
        if self.opts.pin.is_some() && self.pin == PinState::Ready {
            self.pin = PinState::NeedPin { retries: 3 };
        }
    }

    /// Drop the modem's own timers; status reports are the network's and survive a power
    /// cycle (they come once the modem is back).
    fn clear_timers(&mut self) {
        self.timers
            .retain(|(_, t)| matches!(t, Timer::Report { .. }));
    }

    fn reset_settings(&mut self) {
        self.echo = true;
        self.cmee = self.spec.default_cmee;
        self.cmgf = 0;
        self.cscs = self.spec.default_cscs;
        self.csms = 0;
        self.csmp_fo = 17;
        self.cnmi = self.spec.default_cnmi;
        self.creg_n = 0;
        self.cgreg_n = 0;
        self.cereg_n = 0;
        self.cops_format = 0;
        self.curc = true;
        self.cnma_expected = false;
        self.mem = [0; 3];
    }

    pub fn request(&mut self, now: Instant, request: Request) {
        match request {
            Request::Sms {
                from,
                text,
                options,
            } => self.inject_sms(now, &from, &text, options),
            Request::Pdu(pdu) => self.inbound(now, pdu),
            Request::Fault(fault) => self.fault(now, fault),
        }
    }

    pub fn fault(&mut self, now: Instant, fault: Fault) {
        tracing::info!(%fault, "fault injected");
        match fault {
            Fault::CmsError { code, count } => {
                if count > 0 {
                    self.cms_faults.push_back((code, count));
                }
            }
            Fault::RegistrationLost { duration } => {
                let was = self.reg_stat(now);
                let until = now + duration;
                self.noreg_until = Some(self.noreg_until.map_or(until, |u| u.max(until)));
                self.timers.push((until, Timer::RegistrationBack));
                if was != self.reg_stat(now) {
                    self.registration_urcs(now);
                }
            }
            Fault::Silent { duration } => self.silent_until = Some(now + duration),
            Fault::Garbage { bytes } => {
                if self.powered && !self.is_silent(now) {
                    let mut rng = rand::rng();
                    let room = OUT_CAP.saturating_sub(self.out.len());
                    self.out
                        .extend((0..bytes.min(room)).map(|_| rng.random::<u8>()));
                }
            }
            Fault::Unplug { down_for } => {
                if self.powered {
                    self.power_off(down_for, false);
                }
            }
            Fault::StorageFull => {
                self.storage_full = true;
                if let Some(urc) = self.spec.storage_full_urc {
                    self.urc(now, urc.to_string());
                }
                self.sync_stored();
            }
            Fault::SlowPrompt { delay } => self.slow_prompt = Some(delay),
        }
    }

    pub fn tick(&mut self, now: Instant) {
        // Earliest first, so a late tick replays events in the order they were due.
        while let Some(pos) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t <= now)
            .min_by_key(|(_, (t, _))| *t)
            .map(|(i, _)| i)
        {
            let (_, timer) = self.timers.remove(pos);
            self.fire(now, timer);
        }
    }

    pub fn feed(&mut self, now: Instant, bytes: &[u8]) {
        if !self.powered {
            return;
        }
        if self.is_silent(now) {
            tracing::debug!(bytes = bytes.len(), "silent: input ignored");
            return;
        }
        tracing::trace!(input = %String::from_utf8_lossy(bytes).escape_debug(), "sim <-");
        for &b in bytes {
            self.byte(now, b);
            if !self.powered {
                return;
            }
        }
    }

    // ----- input -----

    fn echo_on(&self) -> bool {
        self.echo || self.spec.sticky_echo
    }

    fn byte(&mut self, now: Instant, b: u8) {
        match &mut self.input {
            Input::Busy => {
                if self.held.len() < HELD_CAP {
                    self.held.push(b);
                }
            }
            Input::Pdu { hex, bad, .. } => {
                match b {
                    0x1A => return self.finish_pdu(now),
                    0x1B => {
                        tracing::info!("PDU entry cancelled with ESC");
                        self.input = Input::Command;
                        self.final_ok();
                        self.flush_deferred();
                        return;
                    }
                    b'\r' | b'\n' | b' ' => {}
                    c if c.is_ascii_hexdigit() => {
                        if hex.len() < PDU_HEX_CAP {
                            hex.push(c);
                        } else {
                            *bad = true;
                        }
                    }
                    _ => *bad = true,
                }
                if self.echo_on() {
                    self.out.push(b);
                }
            }
            Input::Text { buf, .. } => {
                match b {
                    0x1A => return self.finish_text(now),
                    0x1B => {
                        tracing::info!("text entry cancelled with ESC");
                        self.input = Input::Command;
                        self.final_ok();
                        self.flush_deferred();
                        return;
                    }
                    // A CR ends a line of the message; the modem prompts for the next one.
                    b'\r' => {
                        if buf.len() < TEXT_CAP {
                            buf.push(b'\n');
                        }
                        if self.echo_on() {
                            self.out.push(b);
                        }
                        self.push_out(b"\n> ");
                        return;
                    }
                    b'\n' => {}
                    0x08 | 0x7F => {
                        buf.pop();
                    }
                    c if buf.len() < TEXT_CAP => buf.push(c),
                    _ => {}
                }
                if self.echo_on() {
                    self.out.push(b);
                }
            }
            Input::Command => {
                if self.echo_on() {
                    self.out.push(b);
                }
                match b {
                    b'\r' => {
                        let line = std::mem::take(&mut self.line);
                        let overflow = std::mem::replace(&mut self.line_overflow, false);
                        self.command_line(now, &line, overflow);
                        if matches!(self.input, Input::Command) {
                            self.flush_deferred();
                        }
                    }
                    b'\n' => {}
                    0x08 | 0x7F => {
                        self.line.pop();
                    }
                    _ if self.line.len() < LINE_CAP => self.line.push(b),
                    _ => self.line_overflow = true,
                }
            }
        }
    }

    fn command_line(&mut self, now: Instant, line: &[u8], overflow: bool) {
        let text = String::from_utf8_lossy(line);
        // Anything before "AT" is line noise a real modem skips.
        let Some(at) = text.to_ascii_uppercase().find("AT") else {
            if !text.trim().is_empty() {
                tracing::debug!(line = %text.escape_debug(), "no AT prefix; ignored");
            }
            return;
        };
        tracing::debug!(command = %text[at..].escape_debug(), "command");
        if overflow {
            return self.final_fail(Fail::Error);
        }
        let rest = text[at + 2..].trim_end().to_string();
        let Some(cmds) = split_commands(&rest) else {
            return self.final_fail(Fail::Error);
        };
        for cmd in cmds {
            match self.execute(now, cmd) {
                Ok(lines) if lines.is_empty() => {}
                // Several information lines form one block: CR LF before the first only.
                Ok(lines) => self.info(&lines.join("\r\n")),
                Err(f) => {
                    self.interleave_noise(now);
                    return self.final_fail(f);
                }
            }
            if !matches!(self.input, Input::Command) || !self.powered || self.replug.is_some() {
                // A prompt was issued (or the modem went away): the rest of the line is moot.
                return;
            }
        }
        self.interleave_noise(now);
        self.final_ok();
    }

    // ----- output -----

    fn push_out(&mut self, bytes: &[u8]) {
        if self.out.len() + bytes.len() <= OUT_CAP {
            self.out.extend_from_slice(bytes);
        }
    }

    fn info(&mut self, line: &str) {
        tracing::trace!(line, "sim ->");
        self.push_out(format!("\r\n{line}\r\n").as_bytes());
    }

    /// A modem that prints unsolicited noise does so at any moment, also between a command's
    /// information lines and its final result: a noise line due within the next 100 ms is
    /// printed now, inside the response.
    fn interleave_noise(&mut self, now: Instant) {
        if !self.curc || self.spec.noise.is_empty() {
            return;
        }
        let soon = now + Duration::from_millis(100);
        if let Some(pos) = self
            .timers
            .iter()
            .position(|(t, timer)| *t <= soon && matches!(timer, Timer::Noise(_)))
        {
            let (_, timer) = self.timers.swap_remove(pos);
            self.fire(now, timer);
        }
    }

    fn final_ok(&mut self) {
        self.push_out(b"\r\nOK\r\n");
    }

    fn final_fail(&mut self, fail: Fail) {
        let text = match fail {
            Fail::Error => "ERROR".to_string(),
            Fail::Cme(c) => match self.cmee {
                0 => "ERROR".to_string(),
                1 => format!("+CME ERROR: {c}"),
                _ => format!("+CME ERROR: {}", cme_text(c)),
            },
            // TS 27.005: +CMS ERROR is a final result whatever AT+CMEE says; 2 words it.
            Fail::Cms(c) => match self.cmee {
                2 => format!("+CMS ERROR: {}", cms_text(c)),
                _ => format!("+CMS ERROR: {c}"),
            },
        };
        tracing::debug!(result = %text, "error answered");
        self.info(&text);
    }

    fn is_silent(&self, now: Instant) -> bool {
        self.silent_until.is_some_and(|u| u > now)
    }

    /// An unsolicited result code; held while the driver types a PDU or a command line (the
    /// echo of a line is never cut by a URC, as on the modules' UARTs).
    fn urc(&mut self, now: Instant, text: String) {
        if !self.powered || self.is_silent(now) {
            return;
        }
        let typing = matches!(self.input, Input::Command) && !self.line.is_empty();
        if typing || matches!(self.input, Input::Pdu { .. } | Input::Text { .. }) {
            if self.deferred.len() < DEFERRED_CAP {
                self.deferred.push(text);
            }
            return;
        }
        tracing::debug!(urc = %text, "URC");
        self.info(&text);
    }

    fn flush_deferred(&mut self) {
        for text in std::mem::take(&mut self.deferred) {
            self.info(&text);
        }
    }

    // ----- timers -----

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Boot(i) => self.boot_step(now, i),
            Timer::Prompt => {
                if matches!(self.input, Input::Pdu { .. } | Input::Text { .. })
                    && !self.is_silent(now)
                {
                    self.push_out(b"\r\n> ");
                    self.prompted_at = Some(now);
                }
            }
            Timer::SendDone(result) => self.send_done(now, result),
            Timer::Report {
                mr,
                recipient,
                submitted,
            } => self.status_report(now, mr, &recipient, submitted),
            Timer::Noise(i) => {
                if self.curc && !self.spec.noise.is_empty() {
                    let line = self.spec.noise[i % self.spec.noise.len()];
                    self.urc(now, line.to_string());
                }
                if let Some(every) = self.spec.noise_every {
                    self.timers
                        .push((now + every, Timer::Noise(i.wrapping_add(1))));
                }
            }
            Timer::RegistrationBack => {
                if self.noreg_until.is_some_and(|u| u <= now) {
                    self.noreg_until = None;
                    tracing::info!("registered again");
                    self.registration_urcs(now);
                    self.deliver_pending(now);
                }
            }
        }
    }

    fn boot_step(&mut self, now: Instant, i: usize) {
        let Some(step) = self.spec.boot.get(i) else {
            return;
        };
        let mut line = step.line;
        let mut halt = false;
        if line == "+CPIN: READY" {
            match self.pin {
                PinState::Ready => {}
                PinState::NeedPin { .. } => (line, halt) = ("+CPIN: SIM PIN", true),
                PinState::NeedPuk => (line, halt) = ("+CPIN: SIM PUK", true),
            }
        }
        self.urc(now, line.to_string());
        if step.sms_ready {
            self.boot_sms_ready = true;
            self.deliver_pending(now);
        }
        if halt {
            self.boot_halted_at = Some(i + 1);
        } else if let Some(next) = self.spec.boot.get(i + 1) {
            self.timers
                .push((self.booted_at + next.after, Timer::Boot(i + 1)));
        }
    }

    fn sms_ready(&self) -> bool {
        self.boot_sms_ready && self.pin == PinState::Ready && self.powered
    }

    // ----- registration -----

    fn reg_stat(&self, now: Instant) -> u8 {
        if self.cfun != 1 {
            0
        } else if self.noreg_until.is_some_and(|u| u > now) {
            2
        } else {
            1
        }
    }

    fn registration_urcs(&mut self, now: Instant) {
        let stat = self.reg_stat(now);
        let mut urcs = Vec::new();
        for (name, n, supported) in [
            ("+CREG", self.creg_n, true),
            ("+CGREG", self.cgreg_n, true),
            ("+CEREG", self.cereg_n, self.spec.has_cereg),
        ] {
            if supported && n > 0 {
                urcs.push(self.reg_line(name, n, stat, false));
            }
        }
        for u in urcs {
            self.urc(now, u);
        }
    }

    fn reg_line(&self, name: &str, n: u8, stat: u8, read: bool) -> String {
        let prefix = if read {
            format!("{name}: {n},{stat}")
        } else {
            format!("{name}: {stat}")
        };
        if n >= 2 && (stat == 1 || stat == 5) {
            match self.spec.cops_act {
                Some(act) => format!("{prefix},\"1A2B\",\"0C3D4E5F\",{act}"),
                None => format!("{prefix},\"1A2B\",\"3D4E\""),
            }
        } else {
            prefix
        }
    }

    // ----- storage -----

    fn sync_stored(&self) {
        let n = self.memories.iter().map(Memory::used).sum();
        lock(&self.shared).stored = n;
    }

    fn used(&self, m: usize) -> usize {
        let mem = &self.memories[m];
        if self.storage_full {
            mem.capacity()
        } else {
            mem.used()
        }
    }

    fn cpms_counts(&self) -> String {
        self.mem
            .iter()
            .map(|&m| format!("{},{}", self.used(m), self.memories[m].capacity()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Space was freed: the network retries what it held.
    fn storage_freed(&mut self, now: Instant) {
        self.storage_full = false;
        self.sync_stored();
        self.deliver_pending(now);
    }

    fn deliver_pending(&mut self, now: Instant) {
        let mut n = self.pending.len();
        while n > 0 && self.sms_ready() && !self.storage_full {
            n -= 1;
            let Some(pdu) = self.pending.pop_front() else {
                break;
            };
            self.inbound(now, pdu);
        }
    }

    // ----- inbound -----

    fn inject_sms(
        &mut self,
        now: Instant,
        from: &str,
        text: &str,
        options: Option<DeliverOptions>,
    ) {
        let options = options.unwrap_or_else(|| {
            self.next_ref = self.next_ref.wrapping_add(1);
            DeliverOptions {
                smsc: Some(self.opts.identity.smsc.clone()),
                timestamp: wall_now(),
                concat_ref: self.next_ref,
                concat_16bit: false,
            }
        });
        match pdu::encode_deliver(from, text, &options) {
            Ok(pdus) => {
                tracing::debug!(from, segments = pdus.len(), "inbound SMS injected");
                for p in pdus {
                    self.inbound(now, p);
                }
            }
            Err(e) => tracing::warn!(from, error = %e, "cannot encode the injected SMS"),
        }
    }

    fn hold(&mut self, pdu: Vec<u8>) {
        if self.pending.len() < PENDING_CAP {
            self.pending.push_back(pdu);
        } else {
            tracing::warn!("network queue full; inbound SMS dropped");
        }
    }

    /// An SMS-DELIVER from the network, routed per AT+CNMI.
    fn inbound(&mut self, now: Instant, pdu: Vec<u8>) {
        if !self.sms_ready() || self.reg_stat(now) != 1 {
            return self.hold(pdu);
        }
        let [mode, mt, ..] = self.cnmi;
        let msg = Stored {
            stat: REC_UNREAD,
            pdu,
        };
        if mt == 2 && mode != 0 {
            let urc = if self.cmgf == 0 {
                format!("+CMT: ,{}\r\n{}", msg.tpdu_len(), hex_upper(&msg.pdu))
            } else {
                self.text_view(&msg, "+CMT: ", false).join("\r\n")
            };
            self.urc(now, urc);
            if self.csms == 1 {
                self.cnma_expected = true;
            }
            return;
        }
        let m = self.mem[2];
        let stored = if self.storage_full {
            None
        } else {
            self.memories[m].store(msg.clone())
        };
        match stored {
            Some(index) => {
                self.sync_stored();
                if mode != 0 && (mt == 1 || mt == 3) {
                    let name = self.memories[m].name;
                    self.urc(now, format!("+CMTI: \"{name}\",{index}"));
                }
            }
            None => {
                tracing::info!("storage full: the network holds the SMS");
                if !self.storage_full {
                    self.storage_full = true;
                    if let Some(urc) = self.spec.storage_full_urc {
                        self.urc(now, urc.to_string());
                    }
                }
                self.hold(msg.pdu);
            }
        }
    }

    fn status_report(
        &mut self,
        now: Instant,
        mr: u8,
        recipient: &str,
        submitted: DateTime<FixedOffset>,
    ) {
        if !self.sms_ready() {
            let retry = Timer::Report {
                mr,
                recipient: recipient.to_string(),
                submitted,
            };
            self.timers.push((now + Duration::from_millis(500), retry));
            return;
        }
        let status = self.opts.status_for(recipient);
        let smsc = self.opts.identity.smsc.clone();
        let pdu = match pdu::encode_status_report(
            Some(&smsc),
            mr,
            recipient,
            submitted,
            wall_now(),
            status,
        ) {
            Ok(p) => p,
            Err(e) => return tracing::warn!(error = %e, "cannot encode a status report"),
        };
        let msg = Stored {
            stat: REC_UNREAD,
            pdu,
        };
        tracing::debug!(mr, recipient, status, "status report");
        match self.cnmi[3] {
            1 if self.cnmi[0] != 0 => {
                let urc = if self.cmgf == 0 {
                    format!("+CDS: {}\r\n{}", msg.tpdu_len(), hex_upper(&msg.pdu))
                } else {
                    self.text_view(&msg, "+CDS: ", false).join("\r\n")
                };
                self.urc(now, urc);
                if self.csms == 1 {
                    self.cnma_expected = true;
                }
            }
            2 => {
                let m = self.mem[2];
                if !self.storage_full
                    && let Some(index) = self.memories[m].store(msg)
                {
                    self.sync_stored();
                    if self.cnmi[0] != 0 {
                        let name = self.memories[m].name;
                        self.urc(now, format!("+CDSI: \"{name}\",{index}"));
                    }
                }
            }
            _ => tracing::debug!("status reports not routed (CNMI ds=0): dropped"),
        }
    }

    // ----- sending -----

    fn finish_pdu(&mut self, now: Instant) {
        let Input::Pdu {
            len,
            purpose,
            hex,
            bad,
        } = std::mem::replace(&mut self.input, Input::Command)
        else {
            return;
        };
        let checked = (!bad).then(|| unhex(&hex)).flatten().and_then(|bytes| {
            let smsc_len = *bytes.first()? as usize;
            (bytes.len() == 1 + smsc_len + len).then_some(bytes)
        });
        let Some(bytes) = checked else {
            tracing::info!(hex = %String::from_utf8_lossy(&hex), len, "PDU rejected: bad hex or length");
            self.final_fail(Fail::Cms(304));
            return self.flush_deferred();
        };
        let submit = match pdu::decode(&bytes) {
            Ok(Pdu::Submit(s)) => s,
            Ok(_) | Err(_) => {
                tracing::info!(hex = %hex_upper(&bytes), "PDU rejected: not a valid SMS-SUBMIT");
                self.final_fail(Fail::Cms(304));
                return self.flush_deferred();
            }
        };
        if let Purpose::Write { stat } = purpose {
            let m = self.mem[1];
            let stored = if self.storage_full {
                None
            } else {
                self.memories[m].store(Stored { stat, pdu: bytes })
            };
            match stored {
                Some(index) => {
                    self.sync_stored();
                    self.info(&format!("+CMGW: {index}"));
                    self.final_ok();
                }
                None => self.final_fail(Fail::Cms(322)),
            }
            return self.flush_deferred();
        }
        if let Some(prompted) = self.prompted_at.take() {
            lock(&self.shared).timing.typing += now.saturating_duration_since(prompted);
        }
        self.submitted_at = Some(now);
        self.accept_submit(now, bytes, submit);
    }

    /// Text mode: the typed text (per AT+CSCS) becomes one SMS-SUBMIT, as the modem builds it.
    fn finish_text(&mut self, now: Instant) {
        let Input::Text { to, buf } = std::mem::replace(&mut self.input, Input::Command) else {
            return;
        };
        let raw = String::from_utf8_lossy(&buf).into_owned();
        let text = if self.cscs == "UCS2" {
            from_ucs2_hex(raw.trim())
        } else {
            Some(raw)
        };
        let options = pdu::SubmitOptions {
            status_report: self.csmp_fo & 0x20 != 0,
            ..pdu::SubmitOptions::default()
        };
        let encoded = text
            .and_then(|t| pdu::encode_submit(&to, &t, &options).ok())
            .filter(|segments| segments.len() == 1)
            .and_then(|mut segments| segments.pop());
        let decoded = encoded.and_then(|seg| match pdu::decode(&seg.pdu) {
            Ok(Pdu::Submit(submit)) => Some((seg.pdu, submit)),
            _ => None,
        });
        match decoded {
            Some((bytes, submit)) => self.accept_submit(now, bytes, submit),
            None => {
                tracing::debug!(
                    to,
                    "text-mode message rejected (bad text, or longer than one SMS)"
                );
                self.final_fail(Fail::Cms(305));
                self.flush_deferred();
            }
        }
    }

    fn accept_submit(&mut self, now: Instant, bytes: Vec<u8>, submit: pdu::Submit) {
        let to = submit.recipient.to_display();
        let text = match &submit.body {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => hex_upper(b),
        };
        tracing::debug!(to = %to, text = %text, concat = ?submit.concat, srr = submit.status_report_requested, "SMS submitted");
        let result = if self.reg_stat(now) != 1 {
            Err(331)
        } else if let Some((code, count)) = self.cms_faults.front_mut() {
            let code = *code;
            *count -= 1;
            if *count == 0 {
                self.cms_faults.pop_front();
            }
            Err(code)
        } else {
            let mr = self.next_mr;
            self.next_mr = self.next_mr.wrapping_add(1);
            Ok(Box::new(Accepted {
                recipient: to.clone(),
                sms: SentSms {
                    to,
                    text,
                    encoding: submit.encoding,
                    mr,
                    status_report_requested: submit.status_report_requested,
                    concat: submit.concat,
                    pdu_hex: hex_upper(&bytes),
                },
            }))
        };
        self.input = Input::Busy;
        self.flush_deferred();
        let delay = if result.is_err() && self.reg_stat(now) != 1 {
            Duration::ZERO
        } else {
            self.opts.send_delay
        };
        self.timers.push((now + delay, Timer::SendDone(result)));
    }

    fn send_done(&mut self, now: Instant, result: Result<Box<Accepted>, u16>) {
        if !matches!(self.input, Input::Busy) {
            return;
        }
        self.input = Input::Command;
        if let Some(submitted) = self.submitted_at.take() {
            let mut shared = lock(&self.shared);
            shared.timing.network += now.saturating_duration_since(submitted);
            shared.timing.sends += 1;
        }
        self.answered_at = Some(now);
        let silent = self.is_silent(now);
        match result {
            Ok(acc) => {
                let Accepted { sms, recipient } = *acc;
                if sms.status_report_requested {
                    self.timers.push((
                        now + self.opts.report_delay,
                        Timer::Report {
                            mr: sms.mr,
                            recipient,
                            submitted: wall_now(),
                        },
                    ));
                }
                if !silent {
                    self.info(&format!("+CMGS: {}", sms.mr));
                    self.final_ok();
                }
                self.record(sms);
            }
            Err(code) => {
                tracing::info!(code, "send refused");
                if !silent {
                    self.final_fail(Fail::Cms(code));
                }
            }
        }
        let held = std::mem::take(&mut self.held);
        self.feed(now, &held);
    }

    fn record(&mut self, sms: SentSms) {
        let mut shared = lock(&self.shared);
        if shared.sent.len() >= SENT_RECORD_CAP {
            shared.sent.pop_front();
            shared.sent_dropped += 1;
        }
        shared.sent.push_back(sms);
        drop(shared);
        self.sent_total += 1;
        self.sent_tx.send_replace(self.sent_total);
    }

    // ----- commands -----

    fn sim_check(&self) -> Result<(), Fail> {
        match self.pin {
            PinState::Ready => Ok(()),
            PinState::NeedPin { .. } => Err(Fail::Cme(11)),
            PinState::NeedPuk => Err(Fail::Cme(12)),
        }
    }

    fn sms_check(&self) -> Result<(), Fail> {
        match self.pin {
            PinState::NeedPin { .. } => Err(Fail::Cms(311)),
            PinState::NeedPuk => Err(Fail::Cms(316)),
            PinState::Ready if !self.boot_sms_ready => Err(Fail::Cms(314)),
            PinState::Ready => Ok(()),
        }
    }

    fn memory_index(&self, name: &str) -> Option<usize> {
        self.memories
            .iter()
            .position(|m| m.name.eq_ignore_ascii_case(name))
    }

    fn execute(&mut self, now: Instant, raw: &str) -> Reply {
        let cmd = parse_cmd(raw);
        let spec = self.spec;
        match (cmd.name.as_str(), &cmd.kind) {
            ("E" | "E0" | "E1", Kind::Exec) => {
                self.echo = cmd.name == "E1";
                Ok(vec![])
            }
            ("V1" | "Q0" | "X4" | "&C1" | "&D2" | "&W" | "&W0", Kind::Exec) => Ok(vec![]),
            ("Z" | "Z0" | "&F" | "&F0", Kind::Exec) => {
                self.reset_settings();
                Ok(vec![])
            }
            ("I" | "I0", Kind::Exec) => Ok(spec
                .ati
                .iter()
                .map(|l| l.replace("{imei}", &self.opts.identity.imei))
                .collect()),
            (n, _)
                if n.starts_with('S')
                    && n[1..].chars().all(|c| c.is_ascii_digit())
                    && n.len() > 1 =>
            {
                match (n, &cmd.kind) {
                    ("S3", Kind::Read) => Ok(vec!["013".into()]),
                    ("S4", Kind::Read) => Ok(vec!["010".into()]),
                    (_, Kind::Read) => Ok(vec!["000".into()]),
                    _ => Ok(vec![]),
                }
            }
            ("+CGMI" | "+GMI", Kind::Exec) => Ok(vec![spec.manufacturer.into()]),
            ("+CGMM" | "+GMM", Kind::Exec) => Ok(vec![spec.model.into()]),
            ("+CGMR" | "+GMR", Kind::Exec) => Ok(vec![spec.revision.into()]),
            ("+CGSN" | "+GSN", Kind::Exec) => Ok(vec![self.opts.identity.imei.clone()]),
            (
                "+CGMI" | "+GMI" | "+CGMM" | "+GMM" | "+CGMR" | "+GMR" | "+CGSN" | "+GSN" | "+CIMI",
                Kind::Test,
            ) => Ok(vec![]),
            ("+GCAP", Kind::Exec) => Ok(vec!["+GCAP: +CGSM,+FCLASS,+DS".into()]),
            ("+CIMI", Kind::Exec) => {
                self.sim_check()?;
                Ok(vec![self.opts.identity.imsi.clone()])
            }
            ("+QCCID", Kind::Exec) if spec.iccid == IccidStyle::Quectel => {
                self.sim_check()?;
                Ok(vec![format!("+QCCID: {}", self.opts.identity.iccid)])
            }
            ("+CCID", Kind::Exec | Kind::Read) if spec.iccid == IccidStyle::Simcom => {
                self.sim_check()?;
                Ok(vec![self.opts.identity.iccid.clone()])
            }
            ("^ICCID", Kind::Read) if spec.iccid == IccidStyle::Huawei => {
                self.sim_check()?;
                Ok(vec![format!("^ICCID: {}", self.opts.identity.iccid)])
            }
            ("+CNUM", Kind::Exec) => {
                self.sim_check()?;
                Ok(vec![format!(
                    "+CNUM: \"\",\"{}\",145",
                    self.opts.identity.own_number
                )])
            }
            ("+CPIN", _) => self.cpin(now, &cmd.kind),
            ("+CMEE", Kind::Read) => Ok(vec![format!("+CMEE: {}", self.cmee)]),
            ("+CMEE", Kind::Test) => Ok(vec!["+CMEE: (0-2)".into()]),
            ("+CMEE", Kind::Set(a)) => match a.trim().parse::<u8>() {
                Ok(n @ 0..=2) => {
                    self.cmee = n;
                    Ok(vec![])
                }
                _ => Err(Fail::Cme(3)),
            },
            ("+CFUN", _) => self.cfun(now, &cmd.kind),
            ("+CPAS", Kind::Exec) => Ok(vec!["+CPAS: 0".into()]),
            ("+CSQ", Kind::Exec) => {
                let (rssi, ber) = if self.reg_stat(now) == 1 {
                    spec.csq
                } else {
                    (99, 99)
                };
                Ok(vec![format!("+CSQ: {rssi},{ber}")])
            }
            ("+CSQ", Kind::Test) => Ok(vec!["+CSQ: (0-31,99),(0-7,99)".into()]),
            ("+CREG" | "+CGREG" | "+CEREG", _) => self.registration(now, &cmd),
            ("+CGATT", Kind::Read) => Ok(vec![format!(
                "+CGATT: {}",
                u8::from(self.reg_stat(now) == 1)
            )]),
            ("+COPS", _) => self.cops(now, &cmd.kind),
            ("^CURC", Kind::Set(a)) if spec.noise_every.is_some() => {
                self.curc = a.trim() != "0";
                Ok(vec![])
            }
            ("^CURC", Kind::Read) if spec.noise_every.is_some() => {
                Ok(vec![format!("^CURC: {}", u8::from(self.curc))])
            }
            // Which port of the stick carries URCs; gammu sets it after connecting.
            ("^PORTSEL", Kind::Set(a)) if spec.iccid == IccidStyle::Huawei => match a.trim() {
                "0" | "1" => Ok(vec![]),
                _ => Err(Fail::Cme(4)),
            },
            ("^PORTSEL", Kind::Read) if spec.iccid == IccidStyle::Huawei => {
                Ok(vec!["^PORTSEL: 0".into()])
            }
            ("^PORTSEL", Kind::Test) if spec.iccid == IccidStyle::Huawei => {
                Ok(vec!["^PORTSEL: (0,1)".into()])
            }
            ("+CHUP", Kind::Exec | Kind::Test) => Ok(vec![]),
            ("^SYSINFO", Kind::Exec) if spec.iccid == IccidStyle::Huawei => {
                let srv = if self.reg_stat(now) == 1 { 2 } else { 0 };
                Ok(vec![format!("^SYSINFO:{srv},3,0,5,1,,4")])
            }
            ("+CMGF", Kind::Read) => Ok(vec![format!("+CMGF: {}", self.cmgf)]),
            ("+CMGF", Kind::Test) => Ok(vec!["+CMGF: (0,1)".into()]),
            ("+CMGF", Kind::Set(a)) => match a.trim() {
                "0" => {
                    self.cmgf = 0;
                    Ok(vec![])
                }
                "1" => {
                    self.cmgf = 1;
                    Ok(vec![])
                }
                _ => Err(Fail::Cms(302)),
            },
            ("+CSCS", Kind::Read) => Ok(vec![format!("+CSCS: \"{}\"", self.cscs)]),
            ("+CSCS", Kind::Test) => Ok(vec!["+CSCS: (\"GSM\",\"IRA\",\"UCS2\")".into()]),
            ("+CSCS", Kind::Set(a)) => {
                let wanted = args(a)
                    .into_iter()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                self.cscs = match wanted.as_str() {
                    "GSM" => "GSM",
                    "IRA" => "IRA",
                    "UCS2" => "UCS2",
                    _ => return Err(Fail::Cme(4)),
                };
                Ok(vec![])
            }
            ("+CSMS", Kind::Read) => Ok(vec![format!("+CSMS: {},1,1,1", self.csms)]),
            ("+CSMS", Kind::Test) => Ok(vec!["+CSMS: (0,1)".into()]),
            ("+CSMS", Kind::Set(a)) => match a.trim() {
                "0" | "1" => {
                    self.csms = u8::from(a.trim() == "1");
                    Ok(vec!["+CSMS: 1,1,1".into()])
                }
                _ => Err(Fail::Cms(303)),
            },
            ("+CGSMS", Kind::Read) => Ok(vec!["+CGSMS: 1".into()]),
            ("+CGSMS", Kind::Test) => Ok(vec!["+CGSMS: (0-3)".into()]),
            ("+CGSMS", Kind::Set(a)) => match a.trim() {
                "0" | "1" | "2" | "3" => Ok(vec![]),
                _ => Err(Fail::Cme(4)),
            },
            ("+CSCA", _) => self.csca(&cmd.kind),
            ("+CSMP", Kind::Read) => Ok(vec![format!("+CSMP: {},167,0,0", self.csmp_fo)]),
            ("+CSMP", Kind::Set(a)) => {
                if let Some(fo) = num::<u8>(args(a).first()) {
                    self.csmp_fo = fo;
                }
                Ok(vec![])
            }
            ("+CSDH", Kind::Set(_)) => Ok(vec![]),
            ("+CSDH", Kind::Read) => Ok(vec!["+CSDH: 0".into()]),
            ("+CPMS", _) => self.cpms(&cmd.kind),
            ("+CNMI", _) => self.cnmi(&cmd.kind),
            ("+CNMA", Kind::Exec | Kind::Set(_)) => {
                if self.cnma_expected {
                    self.cnma_expected = false;
                    Ok(vec![])
                } else {
                    Err(Fail::Cms(340))
                }
            }
            ("+CNMA", Kind::Test) => Ok(vec!["+CNMA: (0-2)".into()]),
            ("+CMGS" | "+CMGW", Kind::Test) => Ok(vec![]),
            ("+CMGS", Kind::Set(a)) => self.start_pdu(now, a, true),
            ("+CMGW", Kind::Set(a)) => self.start_pdu(now, a, false),
            ("+CMGR", Kind::Set(a)) => self.cmgr(a),
            ("+CMGL", Kind::Test) => Ok(vec![if self.cmgf == 0 {
                "+CMGL: (0-4)".into()
            } else {
                "+CMGL: (\"REC UNREAD\",\"REC READ\",\"STO UNSENT\",\"STO SENT\",\"ALL\")".into()
            }]),
            ("+CMGL", Kind::Exec) => self.cmgl(if self.cmgf == 0 { "0" } else { "REC UNREAD" }),
            ("+CMGL", Kind::Set(a)) => self.cmgl(a),
            ("+CMGD", Kind::Test) => {
                self.sms_check()?;
                let m = &mut self.memories[self.mem[0]];
                let used: Vec<String> = m.list_mut(4).map(|(i, _)| i.to_string()).collect();
                Ok(vec![format!("+CMGD: ({}),(0-4)", used.join(","))])
            }
            ("+CMGD", Kind::Set(a)) => self.cmgd(now, a),
            ("+CPBS", Kind::Read) => Ok(vec!["+CPBS: \"SM\",0,250".into()]),
            ("+CPBS", Kind::Test) => Ok(vec!["+CPBS: (\"SM\",\"ON\")".into()]),
            ("+CPBS", Kind::Set(_)) => Ok(vec![]),
            _ => {
                tracing::debug!(command = raw, "unknown command");
                Err(Fail::Error)
            }
        }
    }

    fn cpin(&mut self, now: Instant, kind: &Kind) -> Reply {
        match kind {
            Kind::Read => Ok(vec![
                match self.pin {
                    PinState::Ready => "+CPIN: READY",
                    PinState::NeedPin { .. } => "+CPIN: SIM PIN",
                    PinState::NeedPuk => "+CPIN: SIM PUK",
                }
                .into(),
            ]),
            Kind::Test => Ok(vec![]),
            Kind::Set(a) => {
                let given = args(a).into_iter().next().unwrap_or_default();
                match self.pin {
                    PinState::Ready => Err(Fail::Cme(3)),
                    // The PUK is not simulated: a locked card stays locked.
                    PinState::NeedPuk => Err(Fail::Cme(16)),
                    PinState::NeedPin { retries } => {
                        if self.opts.pin.as_deref() == Some(given.as_str()) {
                            tracing::info!("PIN accepted");
                            self.pin = PinState::Ready;
                            self.urc(now, "+CPIN: READY".into());
                            if let Some(next) = self.boot_halted_at.take()
                                && next < self.spec.boot.len()
                            {
                                self.timers
                                    .push((now + Duration::from_millis(30), Timer::Boot(next)));
                            }
                            self.deliver_pending(now);
                            Ok(vec![])
                        } else {
                            let left = retries.saturating_sub(1);
                            tracing::warn!(left, "wrong PIN");
                            self.pin = if left == 0 {
                                PinState::NeedPuk
                            } else {
                                PinState::NeedPin { retries: left }
                            };
                            Err(Fail::Cme(16))
                        }
                    }
                }
            }
            Kind::Exec => Err(Fail::Error),
        }
    }

    fn cfun(&mut self, now: Instant, kind: &Kind) -> Reply {
        match kind {
            Kind::Read => Ok(vec![format!("+CFUN: {}", self.cfun)]),
            Kind::Test => Ok(vec!["+CFUN: (0,1,4),(0,1)".into()]),
            Kind::Set(a) => {
                let a = args(a);
                let fun: u8 = num(a.first()).ok_or(Fail::Cme(4))?;
                let reset: u8 = if a.len() > 1 {
                    num(a.get(1)).ok_or(Fail::Cme(4))?
                } else {
                    0
                };
                if !matches!(fun, 0 | 1 | 4) || reset > 1 {
                    return Err(Fail::Cme(4));
                }
                if reset == 1 {
                    tracing::info!("AT+CFUN reset: rebooting");
                    self.final_ok();
                    // The OK gets out before the port drops.
                    self.power_off(self.opts.reboot_time, true);
                    return Ok(vec![]);
                }
                let before = self.reg_stat(now);
                self.cfun = fun;
                if before != self.reg_stat(now) {
                    self.registration_urcs(now);
                    self.deliver_pending(now);
                }
                Ok(vec![])
            }
            Kind::Exec => Err(Fail::Error),
        }
    }

    fn registration(&mut self, now: Instant, cmd: &Cmd) -> Reply {
        if cmd.name == "+CEREG" && !self.spec.has_cereg {
            return Err(Fail::Error);
        }
        let n = match cmd.name.as_str() {
            "+CREG" => self.creg_n,
            "+CGREG" => self.cgreg_n,
            _ => self.cereg_n,
        };
        match &cmd.kind {
            Kind::Read => Ok(vec![self.reg_line(&cmd.name, n, self.reg_stat(now), true)]),
            Kind::Test => Ok(vec![format!("{}: (0-2)", cmd.name)]),
            Kind::Set(a) => {
                let v: u8 = a.trim().parse().map_err(|_| Fail::Cme(4))?;
                if v > 2 {
                    return Err(Fail::Cme(4));
                }
                match cmd.name.as_str() {
                    "+CREG" => self.creg_n = v,
                    "+CGREG" => self.cgreg_n = v,
                    _ => self.cereg_n = v,
                }
                Ok(vec![])
            }
            Kind::Exec => Err(Fail::Error),
        }
    }

    fn cops(&mut self, now: Instant, kind: &Kind) -> Reply {
        let id = &self.opts.identity;
        let short = if id.operator == "CHINA MOBILE" {
            "CMCC".to_string()
        } else {
            id.operator.clone()
        };
        match kind {
            Kind::Read => {
                if self.reg_stat(now) != 1 {
                    return Ok(vec!["+COPS: 0".into()]);
                }
                let name = match self.cops_format {
                    0 => id.operator.clone(),
                    1 => short,
                    _ => id.operator_numeric.clone(),
                };
                let act = self
                    .spec
                    .cops_act
                    .map(|a| format!(",{a}"))
                    .unwrap_or_default();
                Ok(vec![format!(
                    "+COPS: 0,{},\"{name}\"{act}",
                    self.cops_format
                )])
            }
            Kind::Test => {
                let act = self
                    .spec
                    .cops_act
                    .map(|a| format!(",{a}"))
                    .unwrap_or_default();
                Ok(vec![format!(
                    "+COPS: (2,\"{}\",\"{short}\",\"{}\"{act}),(3,\"CHN-UNICOM\",\"UNICOM\",\"46001\"{act}),,(0-4),(0-2)",
                    id.operator, id.operator_numeric
                )])
            }
            Kind::Set(a) => {
                let a = args(a);
                match (num::<u8>(a.first()), num::<u8>(a.get(1))) {
                    (Some(3), Some(f @ 0..=2)) => {
                        self.cops_format = f;
                        Ok(vec![])
                    }
                    (Some(0), _) => Ok(vec![]),
                    _ => Err(Fail::Cme(3)),
                }
            }
            Kind::Exec => Err(Fail::Error),
        }
    }

    fn csca(&mut self, kind: &Kind) -> Reply {
        match kind {
            Kind::Read => {
                self.sms_check()?;
                // In UCS2 character set the number is printed as UCS2 hex, as real modems do.
                let shown = if self.cscs == "UCS2" {
                    ucs2_hex(&self.smsc)
                } else {
                    self.smsc.clone()
                };
                Ok(vec![format!("+CSCA: \"{shown}\",{}", self.smsc_type)])
            }
            Kind::Test => Ok(vec![]),
            Kind::Set(a) => {
                self.sms_check()?;
                let a = args(a);
                let raw = a.first().cloned().unwrap_or_default();
                let number = if self.cscs == "UCS2" {
                    from_ucs2_hex(&raw).ok_or(Fail::Cms(304))?
                } else {
                    raw
                };
                let digits = number.trim_start_matches('+');
                if digits.is_empty()
                    || digits.len() > 20
                    || !digits.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(Fail::Cms(304));
                }
                self.smsc_type =
                    num(a.get(1)).unwrap_or(if number.starts_with('+') { 145 } else { 129 });
                self.smsc = number;
                Ok(vec![])
            }
            Kind::Exec => Err(Fail::Error),
        }
    }

    fn cpms(&mut self, kind: &Kind) -> Reply {
        match kind {
            Kind::Test => {
                let names: Vec<String> = self
                    .memories
                    .iter()
                    .map(|m| format!("\"{}\"", m.name))
                    .collect();
                let set = format!("({})", names.join(","));
                Ok(vec![format!("+CPMS: {set},{set},{set}")])
            }
            Kind::Read => {
                self.sms_check()?;
                let parts: Vec<String> = self
                    .mem
                    .iter()
                    .map(|&m| {
                        format!(
                            "\"{}\",{},{}",
                            self.memories[m].name,
                            self.used(m),
                            self.memories[m].capacity()
                        )
                    })
                    .collect();
                Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
            Kind::Set(a) => {
                self.sms_check()?;
                let wanted = args(a);
                if wanted.is_empty() || wanted.len() > 3 {
                    return Err(Fail::Cms(302));
                }
                let mut mem = self.mem;
                for (i, name) in wanted.iter().enumerate() {
                    if name.is_empty() {
                        continue;
                    }
                    mem[i] = self.memory_index(name).ok_or(Fail::Cms(302))?;
                }
                self.mem = mem;
                Ok(vec![format!("+CPMS: {}", self.cpms_counts())])
            }
            Kind::Exec => Err(Fail::Error),
        }
    }

    fn cnmi(&mut self, kind: &Kind) -> Reply {
        match kind {
            Kind::Read => {
                let v: Vec<String> = self.cnmi.iter().map(u8::to_string).collect();
                Ok(vec![format!("+CNMI: {}", v.join(","))])
            }
            Kind::Test => Ok(vec![self.spec.cnmi_test.into()]),
            Kind::Set(a) => {
                let reject = match self.spec.cnmi_rejection {
                    Rejection::Cms303 => Fail::Cms(303),
                    Rejection::PlainError => Fail::Error,
                };
                let a = args(a);
                if a.len() > 5 {
                    return Err(reject);
                }
                let mut new = self.cnmi;
                for (i, v) in a.iter().enumerate() {
                    if v.is_empty() {
                        continue;
                    }
                    let v: u8 = v.parse().map_err(|_| Fail::Cms(303))?;
                    if v > 7 || self.spec.cnmi_allowed[i] & (1 << v) == 0 {
                        tracing::info!(param = i, value = v, "CNMI value not supported");
                        return Err(reject);
                    }
                    new[i] = v;
                }
                self.cnmi = new;
                Ok(vec![])
            }
            Kind::Exec => Err(Fail::Error),
        }
    }

    fn start_pdu(&mut self, now: Instant, a: &str, send: bool) -> Reply {
        self.sms_check()?;
        let a = args(a);
        if self.cmgf != 0 {
            if !send {
                // Writing to storage in text mode is not simulated.
                return Err(Fail::Cms(303));
            }
            let raw = a.first().cloned().unwrap_or_default();
            let to = if self.cscs == "UCS2" {
                from_ucs2_hex(&raw).ok_or(Fail::Cms(305))?
            } else {
                raw
            };
            let digits = to.trim_start_matches('+');
            if digits.is_empty() || digits.len() > 20 || !digits.chars().all(|c| c.is_ascii_digit())
            {
                return Err(Fail::Cms(305));
            }
            self.input = Input::Text {
                to,
                buf: Vec::new(),
            };
            self.prompt(now, true);
            return Ok(vec![]);
        }
        let len: usize = num(a.first()).ok_or(Fail::Cms(304))?;
        if !(1..=176).contains(&len) {
            return Err(Fail::Cms(304));
        }
        let purpose = if send {
            Purpose::Send
        } else {
            let stat = num::<u8>(a.get(1)).unwrap_or(STO_UNSENT);
            if stat > 3 {
                return Err(Fail::Cms(304));
            }
            Purpose::Write { stat }
        };
        self.input = Input::Pdu {
            len,
            purpose,
            hex: Vec::new(),
            bad: false,
        };
        self.prompt(now, send);
        Ok(vec![])
    }

    /// Print the `> ` prompt after the profile's usual delay, or the slow-prompt fault's (which
    /// applies to the next send only).
    fn prompt(&mut self, now: Instant, send: bool) {
        let delay = match self.slow_prompt.take() {
            Some(delay) if send => {
                tracing::info!(?delay, "slow prompt");
                delay
            }
            other => {
                self.slow_prompt = other;
                self.spec.prompt_delay
            }
        };
        if send && let Some(answered) = self.answered_at.take() {
            let mut shared = lock(&self.shared);
            shared.timing.turnaround += now.saturating_duration_since(answered);
            shared.timing.turnarounds += 1;
        }
        if delay.is_zero() {
            self.push_out(b"\r\n> ");
            self.prompted_at = send.then_some(now);
        } else {
            self.timers.push((now + delay, Timer::Prompt));
        }
    }

    fn listing(&self, index: usize, m: &Stored, list: bool) -> Vec<String> {
        let head = if list {
            format!("+CMGL: {index},{},,{}", m.stat, m.tpdu_len())
        } else {
            format!("+CMGR: {},,{}", m.stat, m.tpdu_len())
        };
        vec![head, hex_upper(&m.pdu)]
    }

    /// A number as text mode prints it: UCS2 hex when that is the character set.
    fn text_number(&self, number: &str) -> String {
        if self.cscs == "UCS2" {
            ucs2_hex(number)
        } else {
            number.to_string()
        }
    }

    /// A stored message in text mode (AT+CMGF=1): header fields after `prefix`, then the text
    /// (UCS2 hex for UCS2 messages or character set, as modems print it). `with_stat` adds
    /// the "REC UNREAD"-style state (listings and reads; not +CMT / +CDS).
    fn text_view(&self, m: &Stored, prefix: &str, with_stat: bool) -> Vec<String> {
        let stat = if with_stat {
            format!(
                "\"{}\",",
                TEXT_STATS
                    .get(m.stat as usize)
                    .copied()
                    .unwrap_or("REC READ")
            )
        } else {
            String::new()
        };
        let toa = |n: &str| if n.starts_with('+') { 145 } else { 129 };
        let body = |body: &Body, encoding: pdu::Encoding| match body {
            Body::Text(t) if self.cscs == "UCS2" || encoding == pdu::Encoding::Ucs2 => ucs2_hex(t),
            Body::Text(t) => t.clone(),
            Body::Binary(b) => hex_upper(b),
        };
        match pdu::decode(&m.pdu) {
            Ok(Pdu::Deliver(d)) => vec![
                format!(
                    "{prefix}{stat}\"{}\",,\"{}\"",
                    self.text_number(&d.sender.to_display()),
                    scts(&d.timestamp)
                ),
                body(&d.body, d.encoding),
            ],
            Ok(Pdu::StatusReport(r)) => {
                let ra = r.recipient.to_display();
                vec![format!(
                    "{prefix}{stat}6,{},\"{}\",{},\"{}\",\"{}\",{}",
                    r.message_ref,
                    self.text_number(&ra),
                    toa(&ra),
                    scts(&r.sc_timestamp),
                    scts(&r.discharge_time),
                    r.status
                )]
            }
            Ok(Pdu::Submit(sub)) => vec![
                format!(
                    "{prefix}{stat}\"{}\",",
                    self.text_number(&sub.recipient.to_display())
                ),
                body(&sub.body, sub.encoding),
            ],
            Err(_) => vec![format!("{prefix}{stat}\"\",")],
        }
    }

    fn cmgr(&mut self, a: &str) -> Reply {
        self.sms_check()?;
        let index: usize = num(args(a).first()).ok_or(Fail::Cms(321))?;
        let m = self.mem[0];
        match self.memories[m].get_mut(index) {
            Err(()) => Err(Fail::Cms(321)),
            Ok(None) => Ok(vec![]),
            Ok(Some(msg)) => {
                let shown = msg.clone();
                if msg.stat == REC_UNREAD {
                    msg.stat = REC_READ;
                }
                Ok(if self.cmgf == 0 {
                    self.listing(index, &shown, false)
                } else {
                    self.text_view(&shown, "+CMGR: ", true)
                })
            }
        }
    }

    fn cmgl(&mut self, a: &str) -> Reply {
        self.sms_check()?;
        let wanted = args(a).into_iter().next().unwrap_or_default();
        let stat: u8 = if self.cmgf == 0 {
            match wanted.parse() {
                Ok(s @ 0..=4) => s,
                _ => return Err(Fail::Cms(304)),
            }
        } else {
            match TEXT_STATS
                .iter()
                .position(|s| s.eq_ignore_ascii_case(&wanted))
            {
                Some(s) => s as u8,
                None => return Err(Fail::Cms(305)),
            }
        };
        let m = self.mem[0];
        let mut found = Vec::new();
        for (i, msg) in self.memories[m].list_mut(stat) {
            found.push((i, msg.clone()));
            if msg.stat == REC_UNREAD {
                msg.stat = REC_READ;
            }
        }
        Ok(found
            .iter()
            .flat_map(|(i, msg)| {
                if self.cmgf == 0 {
                    self.listing(*i, msg, true)
                } else {
                    self.text_view(msg, &format!("+CMGL: {i},"), true)
                }
            })
            .collect())
    }

    fn cmgd(&mut self, now: Instant, a: &str) -> Reply {
        self.sms_check()?;
        let a = args(a);
        let index: usize = num(a.first()).ok_or(Fail::Cms(321))?;
        let flag: u8 = if a.len() > 1 {
            num(a.get(1)).ok_or(Fail::Cms(304))?
        } else {
            0
        };
        let m = self.mem[0];
        match flag {
            0 => self.memories[m]
                .delete(index)
                .map_err(|()| Fail::Cms(321))?,
            1..=4 => self.memories[m].delete_by_flag(flag),
            _ => return Err(Fail::Cms(304)),
        }
        tracing::debug!(index, flag, "deleted");
        self.storage_freed(now);
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_modem() {
        assert_eq!(split_commands("E0V1"), Some(vec!["E0", "V1"]));
        assert_eq!(
            split_commands("+CMGF=0;+CNMI=2,1"),
            Some(vec!["+CMGF=0", "+CNMI=2,1"])
        );
        assert_eq!(
            split_commands("+CSCA=\"+86;1\",145;E1"),
            Some(vec!["+CSCA=\"+86;1\",145", "E1"])
        );
        assert_eq!(split_commands("&FE0S7=60"), Some(vec!["&F", "E0", "S7=60"]));
        assert_eq!(split_commands("!!"), None);
    }

    #[test]
    fn arguments_drop_quotes_keep_inner_commas() {
        assert_eq!(args("\"SM\",\"ME\""), vec!["SM", "ME"]);
        assert_eq!(args("\"a,b\",3"), vec!["a,b", "3"]);
    }

    #[test]
    fn ucs2_hex_round_trips() {
        assert_eq!(ucs2_hex("+86"), "002B00380036");
        assert_eq!(from_ucs2_hex("002B00380036").as_deref(), Some("+86"));
        assert_eq!(from_ucs2_hex("002"), None);
    }
}

/// The state machine driven directly, with explicit instants: timing rules checked without
/// sleeping (a pty is not needed to know when the prompt is due).
#[cfg(test)]
mod timing_tests {
    use super::*;
    use crate::pdu::SubmitOptions;
    use crate::sim::Profile;

    fn server(profile: Profile) -> (AtServer, Instant) {
        let (tx, _rx) = watch::channel(0);
        let mut s = AtServer::new(SimOptions::new(profile), SharedRef::default(), tx);
        let t0 = Instant::now();
        s.power_on(t0);
        // Run the whole boot script.
        s.tick(t0 + Duration::from_secs(5));
        s.take_output();
        (s, t0 + Duration::from_secs(5))
    }

    fn say(s: &mut AtServer, now: Instant, line: &str) -> String {
        s.feed(now, format!("{line}\r").as_bytes());
        String::from_utf8_lossy(&s.take_output()).into_owned()
    }

    fn hello() -> crate::pdu::EncodedSegment {
        crate::pdu::encode_submit("13800138000", "hi", &SubmitOptions::default())
            .expect("encode")
            .remove(0)
    }

    #[test]
    fn answer_comes_after_the_send_delay_and_not_before() {
        let (mut s, t) = server(Profile::QuectelEc25);
        say(&mut s, t, "ATE0");
        let seg = hello();
        assert_eq!(
            say(&mut s, t, &format!("AT+CMGS={}", seg.tpdu_len)),
            "\r\n> "
        );
        s.feed(t, format!("{}\x1a", seg.hex()).as_bytes());
        assert_eq!(s.take_output(), b"");
        // Input during the send is held, answered after the result.
        s.feed(t, b"AT\r");
        assert_eq!(s.next_deadline(), Some(t + Duration::from_millis(50)));
        s.tick(t + Duration::from_millis(49));
        assert_eq!(s.take_output(), b"");
        s.tick(t + Duration::from_millis(50));
        assert_eq!(
            String::from_utf8_lossy(&s.take_output()),
            "\r\n+CMGS: 0\r\n\r\nOK\r\n\r\nOK\r\n"
        );
    }

    #[test]
    fn send_timing_splits_network_time_from_host_turnaround_and_typing() {
        let shared = SharedRef::default();
        let (tx, _rx) = watch::channel(0);
        let mut s = AtServer::new(SimOptions::new(Profile::Sim800), shared.clone(), tx);
        let t = Instant::now();
        s.power_on(t);
        let t = t + Duration::from_secs(5);
        s.tick(t);
        say(&mut s, t, "ATE0");
        let seg = hello();
        let ms = Duration::from_millis;
        for round in 0..2u32 {
            let start = t + ms(1000) * round;
            // AT+CMGS at start, prompt 20 ms later (SIM800), PDU typed 3 ms after the
            // prompt, answered 50 ms after Ctrl-Z; the host comes back 7 ms after that.
            say(&mut s, start, &format!("AT+CMGS={}", seg.tpdu_len));
            s.tick(start + ms(20));
            s.feed(start + ms(23), format!("{}\x1a", seg.hex()).as_bytes());
            s.tick(start + ms(73));
            s.take_output();
            if round == 0 {
                // the next round's AT+CMGS comes 1000 ms after this one's
                assert_eq!(lock(&shared).timing.turnarounds, 0);
            }
        }
        let timing = lock(&shared).timing;
        assert_eq!(timing.sends, 2);
        assert_eq!(timing.network, ms(100));
        assert_eq!(timing.typing, ms(6));
        assert_eq!(timing.turnarounds, 1);
        assert_eq!(timing.turnaround, ms(1000 - 73));
    }

    #[test]
    fn slow_prompt_waits_its_delay_once() {
        let (mut s, t) = server(Profile::Sim800);
        say(&mut s, t, "ATE0");
        s.fault(
            t,
            Fault::SlowPrompt {
                delay: Duration::from_secs(2),
            },
        );
        let seg = hello();
        assert_eq!(say(&mut s, t, &format!("AT+CMGS={}", seg.tpdu_len)), "");
        s.tick(t + Duration::from_millis(1999));
        assert_eq!(s.take_output(), b"");
        s.tick(t + Duration::from_secs(2));
        assert_eq!(s.take_output(), b"\r\n> ");
        s.feed(t, b"\x1b");
        s.take_output();
        // Only once: the next prompt comes after the profile's usual 20 ms.
        assert_eq!(say(&mut s, t, &format!("AT+CMGS={}", seg.tpdu_len)), "");
        s.tick(t + Duration::from_millis(20));
        assert_eq!(s.take_output(), b"\r\n> ");
    }

    #[test]
    fn silence_ends_on_time() {
        let (mut s, t) = server(Profile::HuaweiE173);
        s.fault(
            t,
            Fault::Silent {
                duration: Duration::from_secs(3),
            },
        );
        assert_eq!(say(&mut s, t + Duration::from_millis(2999), "AT"), "");
        assert!(say(&mut s, t + Duration::from_secs(3), "AT").ends_with("\r\nOK\r\n"));
    }

    #[test]
    fn registration_returns_after_its_duration() {
        let (mut s, t) = server(Profile::QuectelEc25);
        say(&mut s, t, "ATE0");
        say(&mut s, t, "AT+CREG=1");
        s.fault(
            t,
            Fault::RegistrationLost {
                duration: Duration::from_secs(10),
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&s.take_output()),
            "\r\n+CREG: 2\r\n"
        );
        s.tick(t + Duration::from_secs(9));
        assert!(say(&mut s, t + Duration::from_secs(9), "AT+CREG?").contains("+CREG: 1,2"));
        s.tick(t + Duration::from_secs(10));
        assert_eq!(
            String::from_utf8_lossy(&s.take_output()),
            "\r\n+CREG: 1\r\n"
        );
    }

    #[test]
    fn urcs_wait_while_a_pdu_is_typed() {
        let (mut s, t) = server(Profile::QuectelEc25);
        say(&mut s, t, "ATE0");
        let seg = hello();
        say(&mut s, t, &format!("AT+CMGS={}", seg.tpdu_len));
        s.inject_sms(t, "10086", "hi", None);
        assert_eq!(s.take_output(), b"", "+CMTI held during PDU entry");
        s.feed(t, format!("{}\x1a", seg.hex()).as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&s.take_output()),
            "\r\n+CMTI: \"SM\",0\r\n"
        );
    }

    #[test]
    fn wrong_pin_three_times_locks() {
        let (tx, _rx) = watch::channel(0);
        let mut options = SimOptions::new(Profile::Sim800);
        options.pin = Some("1234".into());
        let mut s = AtServer::new(options, SharedRef::default(), tx);
        let t = Instant::now();
        s.power_on(t);
        s.tick(t + Duration::from_secs(5));
        let boot = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(
            boot.contains("+CPIN: SIM PIN") && !boot.contains("SMS Ready"),
            "{boot:?}"
        );
        say(&mut s, t, "AT+CMEE=1");
        assert!(say(&mut s, t, "AT+CPMS?").contains("+CMS ERROR: 311"));
        for _ in 0..3 {
            assert!(say(&mut s, t, "AT+CPIN=0000").contains("+CME ERROR: 16"));
        }
        assert!(say(&mut s, t, "AT+CPIN?").contains("+CPIN: SIM PUK"));
        assert!(
            say(&mut s, t, "AT+CPIN=1234").contains("+CME ERROR: 16"),
            "locked for good"
        );
    }

    #[test]
    fn huawei_noise_can_land_inside_a_response() {
        let (mut s, t) = server(Profile::HuaweiE173);
        // The boot ran to t; the next ^RSSI-style line is due 1.5 s later.
        let due = s.next_deadline().expect("noise scheduled");
        let r = say(&mut s, due - Duration::from_millis(50), "AT+CSQ");
        let noise_at = r.find("\r\n^").expect("noise inside the response");
        assert!(r.find("+CSQ:").is_some_and(|q| q < noise_at), "{r:?}");
        assert!(r.ends_with("\r\nOK\r\n"), "{r:?}");
        // ^CURC=0 turns it off, as on the real stick.
        say(&mut s, t, "AT^CURC=0");
        let due = s.next_deadline().expect("noise timer");
        let r = say(&mut s, due, "AT+CSQ");
        assert!(!r.contains('^'), "{r:?}");
    }

    #[test]
    fn a_status_report_survives_a_reboot() {
        let (mut s, t) = server(Profile::Sim800);
        say(&mut s, t, "ATE0");
        say(&mut s, t, "AT+CNMI=2,1,0,1,0");
        let opts = SubmitOptions {
            status_report: true,
            ..SubmitOptions::default()
        };
        let seg = crate::pdu::encode_submit("13800138000", "hi", &opts)
            .expect("encode")
            .remove(0);
        say(&mut s, t, &format!("AT+CMGS={}", seg.tpdu_len));
        s.feed(t, format!("{}\x1a", seg.hex()).as_bytes());
        s.tick(t + Duration::from_millis(50));
        assert!(String::from_utf8_lossy(&s.take_output()).contains("+CMGS: 0"));
        s.fault(
            t + Duration::from_millis(60),
            Fault::Unplug {
                down_for: Duration::from_secs(1),
            },
        );
        assert!(s.take_replug().is_some());
        let back = t + Duration::from_secs(2);
        s.power_on(back);
        say(&mut s, back, "AT+CNMI=2,1,0,1,0");
        // The report came due while the modem was away; it is retried once SMS is ready.
        s.tick(back + Duration::from_secs(5));
        s.tick(back + Duration::from_secs(6));
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(out.contains("\r\n+CDS: "), "{out:?}");
    }

    #[test]
    fn urcs_never_cut_the_echo_of_a_command_line() {
        let (mut s, t) = server(Profile::QuectelEc25);
        s.feed(t, b"AT+CS");
        s.inject_sms(t, "10086", "hi", None);
        s.feed(t, b"Q\r");
        assert_eq!(
            String::from_utf8_lossy(&s.take_output()),
            "AT+CSQ\r\r\n+CSQ: 23,99\r\n\r\nOK\r\n\r\n+CMTI: \"SM\",0\r\n"
        );
    }

    #[test]
    fn a_full_memory_holds_the_next_sms_until_one_is_deleted() {
        let (mut s, t) = server(Profile::HuaweiE173);
        say(&mut s, t, "ATE0");
        say(&mut s, t, "AT^CURC=0");
        say(&mut s, t, "AT+CNMI=2,1,0,0,0");
        for i in 0..21 {
            s.inject_sms(t, "10086", &format!("msg {i}"), None);
        }
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert_eq!(out.matches("+CMTI: \"SM\",").count(), 20, "{out:?}");
        assert!(out.contains("^SMMEMFULL: \"SM\""), "{out:?}");
        assert!(say(&mut s, t, "AT+CPMS?").contains("+CPMS: \"SM\",20,20"));
        assert!(say(&mut s, t, "AT+CMGD=7").contains("\r\n+CMTI: \"SM\",7\r\n"));
        // Receiving into ME instead once the driver says so.
        let r = say(&mut s, t, "AT+CPMS=\"SM\",\"SM\",\"ME\"");
        assert!(r.contains("+CPMS: 20,20,20,20,0,100"), "{r:?}");
        s.inject_sms(t, "10086", "to ME", None);
        assert_eq!(
            String::from_utf8_lossy(&s.take_output()),
            "\r\n+CMTI: \"ME\",0\r\n"
        );
        assert!(say(&mut s, t, "AT+CPMS=\"XX\"").contains("+CMS ERROR: 302"));
    }
}
