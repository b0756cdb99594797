//! `gridsms pdu decode|encode`: the codec for field technicians and other tools.
//!
//! Output is a stable JSON contract (issue 2): `decode` prints one object, `encode` one
//! object per segment per line. Bad input exits with status 2 and one line on stderr; the
//! numeric options are parsed here rather than by clap so that rule also holds for them.

use clap::Subcommand;
use gridsms::pdu::{self, Body, Concat, Pdu, SubmitOptions};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Decode one PDU given as hex, as a modem prints it (SMSC field first).
    Decode {
        /// The PDU in hex (either case).
        hex: String,
    },
    /// Encode a text as SMS-SUBMIT PDU(s), one JSON line per segment.
    Encode {
        /// Destination: +<country code><number> (international) or digits (unknown type).
        #[arg(long)]
        to: String,
        /// SMSC number; without it the PDU carries an empty SMSC field (00).
        #[arg(long)]
        smsc: Option<String>,
        /// Ask the network for a delivery report (TP-SRR).
        #[arg(long)]
        status_report: bool,
        /// Relative validity period in minutes, rounded up to the next step allowed.
        #[arg(long, value_name = "N")]
        validity_minutes: Option<String>,
        /// Message reference (TP-MR) and concatenation reference, 0-255.
        #[arg(long = "ref", value_name = "N")]
        reference: Option<String>,
        /// The message text (UTF-8).
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
}

/// One decoded PDU as the contract describes it; fields that don't apply are null.
#[derive(Debug, Serialize)]
struct Decoded {
    #[serde(rename = "type")]
    kind: &'static str,
    smsc: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    text: Option<String>,
    encoding: pdu::Encoding,
    timestamp: Option<String>,
    concat: Option<ConcatJson>,
    message_ref: Option<u8>,
    status: Option<u8>,
    discharge_time: Option<String>,
    status_report_requested: Option<bool>,
}

#[derive(Debug, Serialize)]
struct ConcatJson {
    #[serde(rename = "ref")]
    reference: u16,
    total: u8,
    seq: u8,
}

#[derive(Debug, Serialize)]
struct Segment {
    pdu: String,
    length: usize,
}

fn concat_json(c: Option<Concat>) -> Option<ConcatJson> {
    c.map(|c| ConcatJson {
        reference: c.reference,
        total: c.total,
        seq: c.seq,
    })
}

fn body_text(b: &Body) -> String {
    match b {
        Body::Text(t) => t.clone(),
        Body::Binary(d) => pdu::to_hex_lower(d),
    }
}

fn rfc3339(t: &chrono::DateTime<chrono::FixedOffset>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn describe(p: &Pdu) -> Decoded {
    match p {
        Pdu::Deliver(d) => Decoded {
            kind: "deliver",
            smsc: d.smsc.as_ref().map(pdu::Address::to_display),
            sender: Some(d.sender.to_display()),
            recipient: None,
            text: Some(body_text(&d.body)),
            encoding: d.encoding,
            timestamp: Some(rfc3339(&d.timestamp)),
            concat: concat_json(d.concat),
            message_ref: None,
            status: None,
            discharge_time: None,
            status_report_requested: None,
        },
        Pdu::Submit(s) => Decoded {
            kind: "submit",
            smsc: s.smsc.as_ref().map(pdu::Address::to_display),
            sender: None,
            recipient: Some(s.recipient.to_display()),
            text: Some(body_text(&s.body)),
            encoding: s.encoding,
            timestamp: None,
            concat: concat_json(s.concat),
            message_ref: Some(s.message_ref),
            status: None,
            discharge_time: None,
            status_report_requested: Some(s.status_report_requested),
        },
        Pdu::StatusReport(r) => Decoded {
            kind: "status-report",
            smsc: r.smsc.as_ref().map(pdu::Address::to_display),
            sender: None,
            recipient: Some(r.recipient.to_display()),
            text: None,
            // No TP-DCS in a status report: TS 23.040 §9.2.3.27 says to assume 0, GSM 7-bit.
            encoding: pdu::Encoding::Gsm7,
            timestamp: Some(rfc3339(&r.sc_timestamp)),
            concat: None,
            message_ref: Some(r.message_ref),
            status: Some(r.status),
            discharge_time: Some(rfc3339(&r.discharge_time)),
            status_report_requested: None,
        },
    }
}

fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("gridsms pdu: {msg}");
    ExitCode::from(super::EXIT_BAD_INPUT)
}

fn parse_num<T: std::str::FromStr>(
    flag: &str,
    raw: Option<&str>,
    what: &str,
) -> Result<Option<T>, String> {
    raw.map(|s| {
        s.trim()
            .parse::<T>()
            .map_err(|_| format!("{flag} {s:?}: expected {what}"))
    })
    .transpose()
}

fn print_json<T: Serialize>(v: &T) -> ExitCode {
    match serde_json::to_string(v) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gridsms pdu: cannot render JSON: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cmd: PduCommand) -> ExitCode {
    match cmd {
        PduCommand::Decode { hex } => match pdu::decode_hex(&hex) {
            Ok(p) => print_json(&describe(&p)),
            Err(e) => bad_input(e),
        },
        PduCommand::Encode {
            to,
            smsc,
            status_report,
            validity_minutes,
            reference,
            text,
        } => {
            let validity = match parse_num::<u32>(
                "--validity-minutes",
                validity_minutes.as_deref(),
                "minutes",
            ) {
                Ok(v) => v,
                Err(e) => return bad_input(e),
            };
            let reference =
                match parse_num::<u8>("--ref", reference.as_deref(), "a number from 0 to 255") {
                    Ok(v) => v.unwrap_or(0),
                    Err(e) => return bad_input(e),
                };
            let opts = SubmitOptions {
                smsc,
                status_report,
                validity_minutes: validity,
                message_ref: reference,
                concat_ref: reference,
            };
            let segments = match pdu::encode_submit(&to, &text, &opts) {
                Ok(s) => s,
                Err(e) => return bad_input(e),
            };
            let mut out = String::new();
            for s in &segments {
                match serde_json::to_string(&Segment {
                    pdu: s.hex(),
                    length: s.tpdu_len,
                }) {
                    Ok(line) => {
                        out.push_str(&line);
                        out.push('\n');
                    }
                    Err(e) => return bad_input(format!("cannot render JSON: {e}")),
                }
            }
            print!("{out}");
            ExitCode::SUCCESS
        }
    }
}
