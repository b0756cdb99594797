//! SMS PDU codec (3GPP TS 23.040 / 23.038). Pure: bytes and strings in, values out; no I/O,
//! no panics, no allocation sized by a length field beyond the input actually present.
//!
//! Data flow: the dispatcher hands text to [`encode_submit`], the modem actor writes each
//! segment after `AT+CMGS=<tpdu_len>`; what the modem prints back (+CMT, +CMGR, +CMGL, +CDS)
//! goes through [`decode_hex`], and multipart messages through [`concat::Reassembler`].
//!
//! API CONTRACT (other modules code against these names; keep them):
//! - [`encode_submit`] → segments ready for `AT+CMGS=<tpdu_len>`.
//! - [`preview`] → encoding, segment count, units left in the last segment.
//! - [`decode`] / [`decode_hex`] → [`Pdu`] (deliver, submit, status report), input as modems
//!   print it in +CMGR / +CMGL / +CMT / +CDS (leading SMSC field included).
//! - [`encode_deliver`] / [`encode_status_report`] → what a network would hand a modem; used by
//!   the simulated modem and by tests.
//! - [`concat::Reassembler`] → bounded, TTL'd reassembly of inbound multipart messages.
//!
//! Invariants:
//! - GSM 7-bit (default alphabet + extension table) when every character fits, else UCS2.
//!   Segments hold 160 septets / 70 units alone, 153 / 67 behind an 8-bit concatenation
//!   header (152 / 66 behind a 16-bit one), at most 255; a cut never falls inside an escape
//!   sequence or a surrogate pair.
//! - Every decode error names the field and the octet offset (SMSC field included) where the
//!   input went wrong; a length field is checked against the octets present before use.
//! - Encoding then decoding gives back the text, numbers and flags (property-tested), and the
//!   encoder reproduces published vectors byte for byte.
//!
//! Layout: `address` (SMSC and TP addresses), `gsm7` (alphabet, packing), `udh`, `userdata`
//! (DCS, segmentation, UDL/UD), `timestamp` (SCTS), one file per PDU type, `reader` (bounds-
//! checked cursor, hex).

mod address;
pub mod concat;
mod deliver;
mod gsm7;
mod reader;
mod status_report;
mod submit;
mod timestamp;
mod udh;
mod userdata;

use chrono::{DateTime, FixedOffset};

/// Text alphabet of the user data (TS 23.038 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Encoding {
    #[serde(rename = "gsm7")]
    Gsm7,
    #[serde(rename = "8bit")]
    EightBit,
    #[serde(rename = "ucs2")]
    Ucs2,
}

/// Type of number (TS 23.040 §9.1.2.5), reduced to what the gateway acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberType {
    Unknown,
    International,
    National,
    Alphanumeric,
    /// Network-specific, subscriber, abbreviated or reserved: kept as digits.
    Other(u8),
}

/// A TP address or SMSC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub number_type: NumberType,
    /// Digits (with `*`, `#`, `a`, `b`, `c` where present) or the alphanumeric text. No `+`.
    pub value: String,
}

impl Address {
    /// The address as people write it: international numbers with a leading `+`.
    pub fn to_display(&self) -> String {
        if self.number_type == NumberType::International && !self.value.is_empty() {
            format!("+{}", self.value)
        } else {
            self.value.clone()
        }
    }
}

/// Concatenation information element (IEI 0x00 8-bit reference or 0x08 16-bit reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

/// User data after decoding the alphabet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    /// 8-bit data, as received.
    Binary(Vec<u8>),
}

/// Outcome class of a status report's TP-ST (TS 23.040 §9.2.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 0x00–0x1F: short message transaction completed (delivered, forwarded, replaced).
    Delivered,
    /// 0x20–0x3F: temporary error, SC still trying.
    StillTrying,
    /// 0x40–0x5F: permanent error, SC is not making any more attempts.
    PermanentFailure,
    /// 0x60–0x7F: temporary error, SC gave up.
    TemporaryFailureGaveUp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    pub smsc: Option<Address>,
    pub sender: Address,
    pub more_messages_to_send: bool,
    pub status_report_indication: bool,
    pub reply_path: bool,
    pub pid: u8,
    pub dcs: u8,
    pub encoding: Encoding,
    /// Message class 0–3 when the DCS carries one.
    pub class: Option<u8>,
    pub timestamp: DateTime<FixedOffset>,
    pub concat: Option<Concat>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub smsc: Option<Address>,
    pub message_ref: u8,
    pub recipient: Address,
    pub status_report_requested: bool,
    pub reject_duplicates: bool,
    pub pid: u8,
    pub dcs: u8,
    pub encoding: Encoding,
    /// Relative validity period in minutes, when present in relative format.
    pub validity_minutes: Option<u32>,
    pub concat: Option<Concat>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub smsc: Option<Address>,
    pub message_ref: u8,
    pub recipient: Address,
    pub sc_timestamp: DateTime<FixedOffset>,
    pub discharge_time: DateTime<FixedOffset>,
    pub status: u8,
}

impl StatusReport {
    pub fn class(&self) -> StatusClass {
        status_class(self.status)
    }
}

/// Class of a TP-ST value; reserved values count as permanent failure.
pub fn status_class(status: u8) -> StatusClass {
    status_report::class(status)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    Deliver(Deliver),
    Submit(Submit),
    StatusReport(StatusReport),
}

/// Why a PDU could not be decoded; `offset` is the octet index (SMSC field included) where the
/// problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid hex at character {position}")]
    BadHex { position: usize },
    #[error("truncated at octet {offset}: expected {needed} more octet(s) for {field}")]
    Truncated {
        offset: usize,
        field: &'static str,
        needed: usize,
    },
    #[error("invalid {field} at octet {offset}: {reason}")]
    Invalid {
        offset: usize,
        field: &'static str,
        reason: String,
    },
    #[error("unsupported {field} at octet {offset}: {reason}")]
    Unsupported {
        offset: usize,
        field: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("invalid number {0:?}: {1}")]
    InvalidNumber(String, &'static str),
    #[error("empty text")]
    EmptyText,
    #[error("text needs {segments} segments; at most 255 are possible")]
    TooLong { segments: usize },
    #[error("validity period of {0} minutes is out of range (5 minutes to 63 weeks)")]
    ValidityOutOfRange(u32),
    /// A timestamp the 7-octet TP-SCTS field cannot carry (year outside 2000–2079, or a zone
    /// offset beyond 79 quarter hours).
    #[error("timestamp {0} does not fit TP-SCTS (years 2000-2079, zones within 19h45)")]
    TimestampOutOfRange(String),
}

/// Options of an outgoing SMS-SUBMIT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    /// SMSC number; `None` writes a zero-length SMSC field (`00`) so the modem uses its own.
    pub smsc: Option<String>,
    pub status_report: bool,
    /// Relative validity period; rounded up to the next step TS 23.040 §9.2.3.12.1 allows.
    pub validity_minutes: Option<u32>,
    /// TP-MR (most modems overwrite it).
    pub message_ref: u8,
    /// Reference shared by the segments of one concatenated message.
    pub concat_ref: u8,
}

/// One SMS-SUBMIT ready for the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSegment {
    /// SMSC field followed by the TPDU.
    pub pdu: Vec<u8>,
    /// TPDU length in octets (without the SMSC field), as `AT+CMGS=<length>` wants it.
    pub tpdu_len: usize,
}

impl EncodedSegment {
    /// Uppercase hex, as written after the `> ` prompt.
    pub fn hex(&self) -> String {
        reader::to_hex(&self.pdu, true)
    }
}

/// What a text costs before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    pub encoding: Encoding,
    pub segments: usize,
    /// Septets (GSM 7-bit) or UTF-16 code units (UCS2) of the whole text.
    pub units: usize,
    /// Units still free in the last segment.
    pub units_left: usize,
}

/// Text → encoding and segment count, with the same splitting rules as [`encode_submit`].
pub fn preview(text: &str) -> Result<Preview, EncodeError> {
    if text.is_empty() {
        return Err(EncodeError::EmptyText);
    }
    let p = userdata::plan(text, udh::concat_udh_len(false), false)?;
    Ok(Preview {
        encoding: p.encoding,
        segments: p.segments,
        units: p.units,
        units_left: p.units_left,
    })
}

/// Text → one or more SMS-SUBMIT PDUs.
pub fn encode_submit(
    to: &str,
    text: &str,
    options: &SubmitOptions,
) -> Result<Vec<EncodedSegment>, EncodeError> {
    submit::encode(to, text, options)
}

/// Options of an SMS-DELIVER built by the simulated modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverOptions {
    pub smsc: Option<String>,
    pub timestamp: DateTime<FixedOffset>,
    pub concat_ref: u16,
    /// Use the 16-bit reference IE (0x08) rather than 0x00.
    pub concat_16bit: bool,
}

/// Text from `sender` (digits, `+digits`, or alphanumeric) → one or more SMS-DELIVER PDUs
/// (SMSC field included), as a network would hand them to a modem. An empty text gives one
/// PDU with no user data, as networks do deliver empty messages.
pub fn encode_deliver(
    sender: &str,
    text: &str,
    options: &DeliverOptions,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    deliver::encode(sender, text, options)
}

/// An SMS-STATUS-REPORT (SMSC field included) for a submitted message.
pub fn encode_status_report(
    smsc: Option<&str>,
    message_ref: u8,
    recipient: &str,
    sc_timestamp: DateTime<FixedOffset>,
    discharge_time: DateTime<FixedOffset>,
    status: u8,
) -> Result<Vec<u8>, EncodeError> {
    status_report::encode(
        smsc,
        message_ref,
        recipient,
        sc_timestamp,
        discharge_time,
        status,
    )
}

/// Decode a PDU as modems print it (SMSC field first). TP-MTI 00 is read as SMS-DELIVER,
/// 01 as SMS-SUBMIT and 10 as SMS-STATUS-REPORT (the directions a modem prints them in);
/// 11 is reserved. Octets after the user data are ignored.
pub fn decode(pdu: &[u8]) -> Result<Pdu, DecodeError> {
    let mut r = reader::Reader::new(pdu);
    let smsc = address::read_smsc(&mut r)?;
    let fo_at = r.pos();
    let fo = r.u8("first octet")?;
    match fo & 0x03 {
        0x00 => deliver::decode(&mut r, smsc, fo).map(Pdu::Deliver),
        0x01 => submit::decode(&mut r, smsc, fo).map(Pdu::Submit),
        0x02 => status_report::decode(&mut r, smsc, fo).map(Pdu::StatusReport),
        _ => Err(DecodeError::Unsupported {
            offset: fo_at,
            field: "TP-MTI",
            reason: format!("first octet {fo:02X}: reserved message type 11"),
        }),
    }
}

/// [`decode`] from hex text (either case, surrounding whitespace ignored).
pub fn decode_hex(hex: &str) -> Result<Pdu, DecodeError> {
    decode(&reader::from_hex(hex)?)
}

/// Octets → lowercase hex (how the CLI shows 8-bit user data).
pub fn to_hex_lower(bytes: &[u8]) -> String {
    reader::to_hex(bytes, false)
}
