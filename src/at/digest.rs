//! Bytes from a modem → lines, final results, the `> ` prompt and unsolicited result codes.
//!
//! [`Digester::digest`] is a pure function of its small state and the bytes it is shown: it
//! returns what it recognised and how many bytes that consumed; "need more bytes" is the value
//! [`Digested::NeedMore`]. [`Ingress`] wraps it with a fixed-size buffer (heapless) for the
//! actor: push bytes in, pull items out. Memory cannot grow with input: a line longer than
//! [`LINE_MAX`] is discarded up to its end and counted.
//!
//! Classification of one line, in order: the PDU line of a pending two-line `+CMT:` / `+CDS:`;
//! final results (`OK`, `ERROR`, `+CMS ERROR`, `+CME ERROR`, vendor equivalents); echo (a line
//! starting with `AT`, or carrying Ctrl-Z/ESC from an echoed PDU); an information line when it
//! starts with a prefix the command in flight declared; a known URC; a bare information line
//! when the command answers without prefixes; otherwise noise (counted, skipped). So a line the
//! current command does not expect is a URC: `+CREG: 1` during `AT+CSQ` is a URC, during
//! `AT+CREG?` it is the answer.

use heapless::Vec as HVec;

use super::commands::{self, CommandMeta, PinState, Registration};
use super::errors::{DeviceError, strip_prefix_ci};

/// Longest line kept (a +CMGL/+CMGR PDU line is at most 352 hex characters).
pub const LINE_MAX: usize = 560;
/// Size of the [`Ingress`] buffer; larger than [`LINE_MAX`] so a full buffer always holds a
/// complete or an over-long line.
pub const INGRESS_CAP: usize = 1024;

/// What the command in flight expects; set by the actor before it writes the command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expect {
    /// A command is in flight (final results and information lines belong to it).
    pub active: bool,
    pub prefixes: &'static [&'static str],
    pub bare_lines: bool,
    /// A `> ` prompt is awaited; cleared when it is seen.
    pub prompt: bool,
}

impl Expect {
    pub const IDLE: Expect = Expect {
        active: false,
        prefixes: &[],
        bare_lines: false,
        prompt: false,
    };

    pub fn command(meta: &CommandMeta) -> Expect {
        Expect {
            active: true,
            prefixes: meta.prefixes,
            bare_lines: meta.bare_lines,
            prompt: meta.prompt,
        }
    }
}

/// Unsolicited result codes the driver acts on; everything else vendor-specific is `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    /// `+CMTI: "SM",5`: an SMS was stored.
    NewMessage {
        memory: String,
        index: u32,
    },
    /// `+CDSI: "SM",5`: a status report was stored.
    NewStatusReport {
        memory: String,
        index: u32,
    },
    /// `+CMT:` header and its PDU line (SMSC field first).
    Deliver {
        pdu: Vec<u8>,
    },
    /// `+CDS:` header and its PDU line.
    StatusReport {
        pdu: Vec<u8>,
    },
    Registration(Registration),
    Pin(PinState),
    Ring,
    /// Boot and readiness notices: RDY, Call Ready, SMS Ready, PB DONE, +PACSP…
    Notice(String),
    /// Storage-full notices: Huawei `^SMMEMFULL`, Quectel `+QIND: "smsfull"`, `+CIEV: …SMSFULL`.
    StorageFull,
    /// Any other `+…` / `^…` line nobody asked for (^RSSI, ^BOOT, ^MODE, +QIND …).
    Other(String),
}

/// Why bytes were consumed without producing anything for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Blank line or line terminators.
    Blank,
    /// The modem echoing what we wrote.
    Echo,
    /// First line of a two-line URC; the PDU line follows.
    Header,
    /// A line nobody expected and no URC we know (counted).
    Noise,
    /// Part of a line longer than [`LINE_MAX`] (counted once per line).
    Overlong,
}

/// One thing recognised in the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digested {
    /// No complete item yet; keep the bytes and read more.
    NeedMore,
    Skipped(Skip),
    /// Information line of the command in flight (trimmed).
    Info(String),
    /// Final result of the command in flight.
    Final(Result<(), DeviceError>),
    /// The `> ` prompt of AT+CMGS.
    Prompt,
    Urc(Urc),
}

/// Counters of what was thrown away, for health reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestStats {
    pub overlong_lines: u64,
    pub noise_lines: u64,
    pub discarded_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Cmt,
    Cds,
}

/// The line classifier. State: the command expectation, a pending two-line URC, whether an
/// over-long line is being skipped.
#[derive(Debug, Default)]
pub struct Digester {
    pub expect: Expect,
    pending: Option<Pending>,
    discarding: bool,
    pub stats: DigestStats,
}

fn is_eol(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

impl Digester {
    pub fn new() -> Self {
        Self::default()
    }

    /// Recognise the first item in `buf`; returns it and the number of bytes it used (which
    /// may be non-zero with [`Digested::NeedMore`] when line terminators were skipped).
    pub fn digest(&mut self, buf: &[u8]) -> (Digested, usize) {
        if buf.is_empty() {
            return (Digested::NeedMore, 0);
        }
        if self.discarding {
            return match buf.iter().position(|&b| is_eol(b)) {
                Some(i) => {
                    self.discarding = false;
                    self.stats.discarded_bytes += i as u64;
                    (Digested::Skipped(Skip::Overlong), i + 1)
                }
                None => {
                    self.stats.discarded_bytes += buf.len() as u64;
                    (Digested::Skipped(Skip::Overlong), buf.len())
                }
            };
        }
        let lead = buf.iter().take_while(|&&b| is_eol(b)).count();
        let rest = &buf[lead..];
        if rest.is_empty() {
            return (Digested::NeedMore, lead);
        }
        if self.expect.prompt && rest[0] == b'>' {
            self.expect.prompt = false;
            let used = if rest.get(1) == Some(&b' ') { 2 } else { 1 };
            return (Digested::Prompt, lead + used);
        }
        let window = &rest[..rest.len().min(LINE_MAX + 1)];
        match window.iter().position(|&b| is_eol(b)) {
            Some(i) => {
                let item = self.classify(&rest[..i]);
                (item, lead + i + 1)
            }
            None if rest.len() > LINE_MAX => {
                // Drop the over-long line up to its end only: what follows it is kept.
                self.stats.overlong_lines += 1;
                match rest.iter().position(|&b| is_eol(b)) {
                    Some(end) => {
                        self.stats.discarded_bytes += end as u64;
                        (Digested::Skipped(Skip::Overlong), lead + end + 1)
                    }
                    None => {
                        self.discarding = true;
                        self.stats.discarded_bytes += rest.len() as u64;
                        (Digested::Skipped(Skip::Overlong), lead + rest.len())
                    }
                }
            }
            None => (Digested::NeedMore, lead),
        }
    }

    fn noise(&mut self) -> Digested {
        self.stats.noise_lines += 1;
        Digested::Skipped(Skip::Noise)
    }

    fn classify(&mut self, raw: &[u8]) -> Digested {
        if raw.iter().any(|&b| b == 0x1A || b == 0x1B) {
            return Digested::Skipped(Skip::Echo);
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            self.pending = None;
            return self.noise();
        };
        let line = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() {
            return Digested::Skipped(Skip::Blank);
        }
        if let Some(kind) = self.pending.take() {
            if let Some(pdu) = commands::hex_to_bytes(line) {
                return Digested::Urc(match kind {
                    Pending::Cmt => Urc::Deliver { pdu },
                    Pending::Cds => Urc::StatusReport { pdu },
                });
            }
            // The header announced a PDU that never came; count it and read the line afresh.
            self.stats.noise_lines += 1;
        }
        if line.eq_ignore_ascii_case("OK") {
            return Digested::Final(Ok(()));
        }
        if let Some(err) = DeviceError::parse(line) {
            return Digested::Final(Err(err));
        }
        if strip_prefix_ci(line, "AT").is_some() {
            return Digested::Skipped(Skip::Echo);
        }
        if self.expect.active
            && self
                .expect
                .prefixes
                .iter()
                .any(|p| strip_prefix_ci(line, p).is_some())
        {
            return Digested::Info(line.to_string());
        }
        if let Some(d) = self.urc(line) {
            return d;
        }
        if self.expect.active && self.expect.bare_lines {
            return Digested::Info(line.to_string());
        }
        self.noise()
    }

    fn urc(&mut self, line: &str) -> Option<Digested> {
        let has = |p: &str| strip_prefix_ci(line, p).is_some();
        let urc = if has("+CMTI:") {
            match commands::parse_new_message_index(line) {
                Some((memory, index)) => Urc::NewMessage { memory, index },
                None => Urc::Other(line.to_string()),
            }
        } else if has("+CDSI:") {
            match commands::parse_new_message_index(line) {
                Some((memory, index)) => Urc::NewStatusReport { memory, index },
                None => Urc::Other(line.to_string()),
            }
        } else if has("+CMT:") || has("+CDS:") {
            if commands::parse_direct_header(line).is_some() {
                self.pending = Some(if has("+CMT:") {
                    Pending::Cmt
                } else {
                    Pending::Cds
                });
                return Some(Digested::Skipped(Skip::Header));
            }
            Urc::Other(line.to_string())
        } else if has("+CREG:") || has("+CGREG:") || has("+CEREG:") {
            match commands::parse_reg_urc(line) {
                Some(r) => Urc::Registration(r),
                None => Urc::Other(line.to_string()),
            }
        } else if has("+CPIN:") {
            Urc::Pin(commands::parse_cpin(line)?)
        } else if line.eq_ignore_ascii_case("RING") {
            Urc::Ring
        } else if has("^SMMEMFULL") || line.to_ascii_uppercase().contains("SMSFULL") {
            Urc::StorageFull
        } else if [
            "RDY",
            "Call Ready",
            "SMS Ready",
            "PB DONE",
            "+PACSP",
            "READY",
        ]
        .iter()
        .any(|n| has(n))
        {
            Urc::Notice(line.to_string())
        } else if line.starts_with('+') || line.starts_with('^') {
            Urc::Other(line.to_string())
        } else {
            return None;
        };
        Some(Digested::Urc(urc))
    }
}

/// A fixed buffer in front of a [`Digester`]: the actor pushes what it read and pulls items.
#[derive(Debug, Default)]
pub struct Ingress {
    buf: HVec<u8, INGRESS_CAP>,
    pub digester: Digester,
}

impl Ingress {
    pub fn new() -> Self {
        Self::default()
    }

    /// Copy as much of `data` as fits; returns how many bytes were taken. Pull items with
    /// [`Ingress::next`] to make room for the rest.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(INGRESS_CAP - self.buf.len());
        // Cannot fail: n fits in the free space.
        let _ = self.buf.extend_from_slice(&data[..n]);
        n
    }

    /// The next recognised item, or `None` when more bytes are needed.
    pub fn next_item(&mut self) -> Option<Digested> {
        let (item, used) = self.digester.digest(&self.buf);
        self.consume(used);
        if item != Digested::NeedMore {
            return Some(item);
        }
        if self.buf.len() == INGRESS_CAP {
            // Unreachable by construction (a full buffer holds an over-long line); guard
            // anyway so a logic slip cannot wedge the reader.
            self.digester.stats.discarded_bytes += self.buf.len() as u64;
            self.buf.clear();
        }
        None
    }

    /// Feed `data` completely, collecting every item (for tests and simple callers).
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Digested>) {
        loop {
            let n = self.push(data);
            data = &data[n..];
            while let Some(item) = self.next_item() {
                out.push(item);
            }
            if data.is_empty() {
                return;
            }
        }
    }

    /// Drop buffered bytes and any half-read two-line URC (after a resync).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.digester.pending = None;
        self.digester.discarding = false;
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        if n == 0 {
            return;
        }
        let len = self.buf.len();
        self.buf.copy_within(n..len, 0);
        self.buf.truncate(len - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::commands::{CMGL, CMGR, CMGS, CREG_QUERY, CSQ, RegStatus};
    use crate::at::errors::DeviceError;

    fn run(expect: Expect, bytes: &[u8]) -> (Vec<Digested>, Ingress) {
        let mut ing = Ingress::new();
        ing.digester.expect = expect;
        let mut out = Vec::new();
        ing.feed(bytes, &mut out);
        out.retain(|d| !matches!(d, Digested::Skipped(Skip::Blank)));
        (out, ing)
    }

    fn run_bytewise(expect: Expect, bytes: &[u8]) -> Vec<Digested> {
        let mut ing = Ingress::new();
        ing.digester.expect = expect;
        let mut out = Vec::new();
        for b in bytes {
            ing.feed(std::slice::from_ref(b), &mut out);
        }
        out.retain(|d| !matches!(d, Digested::Skipped(Skip::Blank)));
        out
    }

    const CMT_PDU: &str =
        "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

    #[test]
    fn echo_on_transcript_with_info_and_ok() {
        let (out, _) = run(
            Expect::command(&CSQ),
            b"AT+CSQ\r\r\n+CSQ: 23,99\r\n\r\nOK\r\n",
        );
        assert_eq!(
            out,
            vec![
                Digested::Skipped(Skip::Echo),
                Digested::Info("+CSQ: 23,99".into()),
                Digested::Final(Ok(()))
            ]
        );
    }

    #[test]
    fn bare_cr_and_bare_lf_terminators() {
        let (out, _) = run(Expect::command(&CSQ), b"+CSQ: 5,0\rOK\n");
        assert_eq!(
            out,
            vec![Digested::Info("+CSQ: 5,0".into()), Digested::Final(Ok(()))]
        );
    }

    #[test]
    fn urcs_interleaved_between_command_and_final() {
        let input = b"\r\n+CMTI: \"SM\",3\r\n\r\n+CSQ: 18,99\r\n^RSSI: 18\r\nRING\r\n\r\nOK\r\n";
        let (out, _) = run(Expect::command(&CSQ), input);
        assert_eq!(
            out,
            vec![
                Digested::Urc(Urc::NewMessage {
                    memory: "SM".into(),
                    index: 3
                }),
                Digested::Info("+CSQ: 18,99".into()),
                Digested::Urc(Urc::Other("^RSSI: 18".into())),
                Digested::Urc(Urc::Ring),
                Digested::Final(Ok(())),
            ]
        );
    }

    #[test]
    fn creg_is_answer_when_asked_and_urc_otherwise() {
        let (out, _) = run(Expect::command(&CREG_QUERY), b"+CREG: 0,1\r\nOK\r\n");
        assert_eq!(out[0], Digested::Info("+CREG: 0,1".into()));
        let (out, _) = run(Expect::command(&CSQ), b"+CREG: 2\r\n+CSQ: 1,1\r\nOK\r\n");
        match &out[0] {
            Digested::Urc(Urc::Registration(r)) => assert_eq!(r.status, RegStatus::Searching),
            other => panic!("expected registration URC, got {other:?}"),
        }
    }

    #[test]
    fn two_line_cmt_and_cds_even_mid_command() {
        let cds = "0006D60B911326880736F4111011719551401110117195714000";
        let input = format!("+CMT: ,24\r\n{CMT_PDU}\r\n+CSQ: 9,9\r\n+CDS: 25\r\n{cds}\r\nOK\r\n");
        let (out, _) = run(Expect::command(&CSQ), input.as_bytes());
        assert_eq!(out[0], Digested::Skipped(Skip::Header));
        assert_eq!(
            out[1],
            Digested::Urc(Urc::Deliver {
                pdu: commands::hex_to_bytes(CMT_PDU).unwrap()
            })
        );
        assert_eq!(out[2], Digested::Info("+CSQ: 9,9".into()));
        assert_eq!(
            out[4],
            Digested::Urc(Urc::StatusReport {
                pdu: commands::hex_to_bytes(cds).unwrap()
            })
        );
        assert_eq!(out[5], Digested::Final(Ok(())));
        // Split at every byte boundary: same result.
        assert_eq!(run_bytewise(Expect::command(&CSQ), input.as_bytes()), out);
    }

    #[test]
    fn header_without_pdu_is_counted_and_next_line_read() {
        let (out, ing) = run(Expect::IDLE, b"+CMT: ,24\r\nRING\r\n");
        assert_eq!(
            out,
            vec![Digested::Skipped(Skip::Header), Digested::Urc(Urc::Ring)]
        );
        assert_eq!(ing.digester.stats.noise_lines, 1);
    }

    #[test]
    fn error_styles() {
        for (input, want) in [
            (&b"ERROR\r\n"[..], DeviceError::PLAIN),
            (b"+CMS ERROR: 500\r\n", DeviceError::cms(500)),
            (b"+CME ERROR: 10\r\n", DeviceError::cme(10)),
            (b"+CME ERROR: SIM not inserted\r\n", DeviceError::cme(10)),
            (b"COMMAND NOT SUPPORT\r\n", DeviceError::PLAIN),
        ] {
            let (out, _) = run(Expect::command(&CSQ), input);
            assert_eq!(out, vec![Digested::Final(Err(want))]);
        }
    }

    #[test]
    fn prompt_variants() {
        let expect = Expect::command(&CMGS);
        // Quectel: CRLF then "> " without line end.
        let (out, ing) = run(expect, b"\r\n> ");
        assert_eq!(out, vec![Digested::Prompt]);
        assert_eq!(ing.buffered(), 0);
        // SIM800 with echo on: echo line, then prompt.
        let (out, _) = run(expect, b"AT+CMGS=23\r\r\n> ");
        assert_eq!(out, vec![Digested::Skipped(Skip::Echo), Digested::Prompt]);
        // Bare ">" with no space, no CRLF.
        let (out, _) = run(expect, b">");
        assert_eq!(out, vec![Digested::Prompt]);
        // URC first, then the prompt.
        let (out, _) = run(expect, b"\r\n+CMTI: \"SM\",1\r\n\r\n> ");
        assert_eq!(out[1], Digested::Prompt);
        // The error instead of the prompt.
        let (out, _) = run(expect, b"\r\n+CMS ERROR: 304\r\n");
        assert_eq!(out, vec![Digested::Final(Err(DeviceError::cms(304)))]);
        // Not awaiting a prompt: ">" stays part of a line.
        let (out, _) = run(Expect::command(&CSQ), b"> \r\n");
        assert_eq!(out, vec![Digested::Skipped(Skip::Noise)]);
    }

    #[test]
    fn cmgs_answer_after_echoed_pdu() {
        let mut expect = Expect::command(&CMGS);
        expect.prompt = false;
        let (out, _) = run(
            expect,
            b"0011000B915121551532F40000AA0AE8329BFD4697D9EC37\x1a\r\n+CMGS: 44\r\n\r\nOK\r\n",
        );
        assert_eq!(
            out,
            vec![
                Digested::Skipped(Skip::Echo),
                Digested::Info("+CMGS: 44".into()),
                Digested::Final(Ok(()))
            ]
        );
    }

    #[test]
    fn cmgl_listing_takes_bare_pdu_lines() {
        let input =
            format!("+CMGL: 1,0,,24\r\n{CMT_PDU}\r\n+CMGL: 2,1,,24\r\n{CMT_PDU}\r\n\r\nOK\r\n");
        let (out, _) = run(Expect::command(&CMGL), input.as_bytes());
        assert_eq!(out.len(), 5);
        assert_eq!(out[0], Digested::Info("+CMGL: 1,0,,24".into()));
        assert_eq!(out[1], Digested::Info(CMT_PDU.into()));
        let (out, _) = run(
            Expect::command(&CMGR),
            format!("+CMGR: 0,,24\r\n{CMT_PDU}\r\nOK\r\n").as_bytes(),
        );
        assert_eq!(out[1], Digested::Info(CMT_PDU.into()));
    }

    #[test]
    fn boot_noise_is_recognised_or_counted() {
        let input = b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n^BOOT:1,0,0,0,0\r\n+QIND: PB DONE\r\n^MODE:5,4\r\nhello garbage\r\n";
        let (out, ing) = run(Expect::IDLE, input);
        assert_eq!(out[0], Digested::Urc(Urc::Notice("RDY".into())));
        assert_eq!(out[1], Digested::Urc(Urc::Pin(PinState::Ready)));
        assert_eq!(out[2], Digested::Urc(Urc::Notice("Call Ready".into())));
        assert_eq!(out[3], Digested::Urc(Urc::Notice("SMS Ready".into())));
        assert_eq!(out[4], Digested::Urc(Urc::Other("^BOOT:1,0,0,0,0".into())));
        assert_eq!(out[6], Digested::Urc(Urc::Other("^MODE:5,4".into())));
        assert_eq!(out[7], Digested::Skipped(Skip::Noise));
        assert_eq!(ing.digester.stats.noise_lines, 1);
    }

    #[test]
    fn overlong_lines_are_discarded_and_counted() {
        let mut input = vec![b'A'; 5000];
        input[0] = b'x';
        input.extend_from_slice(b"\r\n+CSQ: 3,3\r\nOK\r\n");
        let (out, ing) = run(Expect::command(&CSQ), &input);
        let useful: Vec<_> = out
            .iter()
            .filter(|d| !matches!(d, Digested::Skipped(_)))
            .collect();
        assert_eq!(
            useful,
            vec![
                &Digested::Info("+CSQ: 3,3".into()),
                &Digested::Final(Ok(()))
            ]
        );
        assert_eq!(ing.digester.stats.overlong_lines, 1);
        assert_eq!(ing.digester.stats.discarded_bytes, 5000);
    }

    #[test]
    fn garbage_flood_keeps_memory_bounded_and_recovers() {
        // Pseudo-random bytes, no panics, buffer never beyond its capacity, and a clean
        // exchange afterwards is still understood.
        let mut ing = Ingress::new();
        ing.digester.expect = Expect::command(&CSQ);
        let mut x: u32 = 0x1234_5678;
        let mut out = Vec::new();
        for _ in 0..200 {
            let chunk: Vec<u8> = (0..997)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xFF) as u8
                })
                .collect();
            ing.feed(&chunk, &mut out);
            assert!(ing.buffered() <= INGRESS_CAP);
        }
        out.clear();
        ing.feed(b"\r\n+CSQ: 7,0\r\nOK\r\n", &mut out);
        assert!(out.contains(&Digested::Info("+CSQ: 7,0".into())));
        assert_eq!(out.last(), Some(&Digested::Final(Ok(()))));
    }

    #[test]
    fn need_more_is_a_value() {
        let mut d = Digester::new();
        assert_eq!(d.digest(b""), (Digested::NeedMore, 0));
        assert_eq!(d.digest(b"+CSQ: 1"), (Digested::NeedMore, 0));
        assert_eq!(d.digest(b"\r\n"), (Digested::NeedMore, 2));
        assert_eq!(d.digest(b"OK\r\nOK\r\n"), (Digested::Final(Ok(())), 3));
    }

    #[test]
    fn line_after_an_overlong_one_in_the_same_chunk_is_kept() {
        let mut input = vec![b'x'; 700];
        input.extend_from_slice(b"\r\n+CSQ: 3,3\r\nOK\r\n");
        let (out, ing) = run(Expect::command(&CSQ), &input);
        assert_eq!(
            out,
            vec![
                Digested::Skipped(Skip::Overlong),
                Digested::Info("+CSQ: 3,3".into()),
                Digested::Final(Ok(()))
            ]
        );
        assert_eq!(ing.digester.stats.overlong_lines, 1);
    }

    proptest::proptest! {
        /// However the bytes are split into reads, the same items come out, nothing panics
        /// and the buffer stays within its bound.
        #[test]
        fn chunking_does_not_change_the_result(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("OK".to_string()),
                    proptest::strategy::Just("+CSQ: 20,99".to_string()),
                    proptest::strategy::Just("+CMTI: \"SM\",3".to_string()),
                    proptest::strategy::Just(format!("+CMT: ,24\r\n{CMT_PDU}")),
                    proptest::strategy::Just("+CMS ERROR: 42".to_string()),
                    "[ -~]{0,40}",
                    "[A-F0-9]{600,900}",
                ],
                0..30,
            ),
            cuts in proptest::collection::vec(1usize..300, 1..50),
        ) {
            let bytes: Vec<u8> = lines.iter().flat_map(|l| format!("\r\n{l}\r\n").into_bytes()).collect();
            let (whole, _) = run(Expect::command(&CSQ), &bytes);
            let mut ing = Ingress::new();
            ing.digester.expect = Expect::command(&CSQ);
            let mut out = Vec::new();
            let mut rest = &bytes[..];
            for c in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*c).min(rest.len());
                ing.feed(&rest[..n], &mut out);
                proptest::prop_assert!(ing.buffered() <= INGRESS_CAP);
                rest = &rest[n..];
            }
            out.retain(|d| !matches!(d, Digested::Skipped(Skip::Blank)));
            // Over-long lines are reported once per read they span: compare the rest.
            let strip = |v: Vec<Digested>| -> Vec<Digested> {
                v.into_iter().filter(|d| !matches!(d, Digested::Skipped(Skip::Overlong))).collect()
            };
            proptest::prop_assert_eq!(strip(whole), strip(out));
        }
    }

    #[test]
    fn storage_full_notices() {
        for line in [
            &b"+QIND: \"smsfull\",\"SM\"\r\n"[..],
            b"^SMMEMFULL: \"SM\"\r\n",
        ] {
            let (out, _) = run(Expect::IDLE, line);
            assert_eq!(out, vec![Digested::Urc(Urc::StorageFull)]);
        }
    }

    #[test]
    fn non_utf8_line_is_noise() {
        let (out, ing) = run(Expect::IDLE, b"\xff\xfe\xfd\r\nRING\r\n");
        assert_eq!(
            out,
            vec![Digested::Skipped(Skip::Noise), Digested::Urc(Urc::Ring)]
        );
        assert_eq!(ing.digester.stats.noise_lines, 1);
    }

    #[test]
    fn bare_identity_lines_only_for_bare_commands() {
        let (out, _) = run(
            Expect::command(&crate::at::commands::CGSN),
            b"AT+CGSN\r\r\n860000000000001\r\n\r\nOK\r\n",
        );
        assert_eq!(out[1], Digested::Info("860000000000001".into()));
        let (out, _) = run(Expect::IDLE, b"860000000000001\r\n");
        assert_eq!(out, vec![Digested::Skipped(Skip::Noise)]);
    }
}
