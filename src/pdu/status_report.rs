//! SMS-STATUS-REPORT (TS 23.040 §9.2.2.3): the network's word on a message we submitted,
//! as +CDS or a stored report prints it.
//!
//! Layout: FO (MTI=10, MMS, LP, SRQ, UDHI), TP-MR, TP-RA, TP-SCTS, TP-DT, TP-ST, then
//! optionally TP-PI and the TP-PID / TP-DCS / TP-UDL+UD it announces. The optional tail is
//! read when it is complete and otherwise ignored: some modems print it cut short, and the
//! delivery outcome is already known from TP-ST.

use super::reader::Reader;
use super::{
    Address, DecodeError, EncodeError, StatusClass, StatusReport, address, timestamp, userdata,
};
use chrono::{DateTime, FixedOffset};

const MTI_STATUS_REPORT: u8 = 0x02;
const MMS_NO_MORE: u8 = 0x04;
const UDHI: u8 = 0x40;

/// Class of a TP-ST value (§9.2.3.15); reserved values (0x80 and above) count as permanent.
pub(crate) fn class(status: u8) -> StatusClass {
    match status {
        0x00..=0x1F => StatusClass::Delivered,
        0x20..=0x3F => StatusClass::StillTrying,
        0x40..=0x5F => StatusClass::PermanentFailure,
        0x60..=0x7F => StatusClass::TemporaryFailureGaveUp,
        _ => StatusClass::PermanentFailure,
    }
}

pub(crate) fn encode(
    smsc: Option<&str>,
    message_ref: u8,
    recipient: &str,
    sc_timestamp: DateTime<FixedOffset>,
    discharge_time: DateTime<FixedOffset>,
    status: u8,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(40);
    address::write_smsc(&mut out, smsc)?;
    out.push(MTI_STATUS_REPORT | MMS_NO_MORE);
    out.push(message_ref);
    address::write_tp_number(&mut out, recipient)?;
    timestamp::write(&mut out, &sc_timestamp)?;
    timestamp::write(&mut out, &discharge_time)?;
    out.push(status);
    Ok(out)
}

pub(crate) fn decode(
    r: &mut Reader<'_>,
    smsc: Option<Address>,
    fo: u8,
) -> Result<StatusReport, DecodeError> {
    let message_ref = r.u8("TP-MR")?;
    let recipient = address::read_tp(r, "TP-RA")?;
    let sc_timestamp = timestamp::read(r, "TP-SCTS")?;
    let discharge_time = timestamp::read(r, "TP-DT")?;
    let status = r.u8("TP-ST")?;
    // Best effort over the optional tail; its content is not part of the result.
    let _ = read_optional_tail(r, fo);
    Ok(StatusReport {
        smsc,
        message_ref,
        recipient,
        sc_timestamp,
        discharge_time,
        status,
    })
}

fn read_optional_tail(r: &mut Reader<'_>, fo: u8) -> Result<(), DecodeError> {
    if r.remaining() == 0 {
        return Ok(());
    }
    let mut pi = r.u8("TP-PI")?;
    let first = pi;
    // Extension bit: further PI octets follow; their bits are reserved.
    while pi & 0x80 != 0 {
        pi = r.u8("TP-PI")?;
    }
    if first & 0x01 != 0 {
        r.u8("TP-PID")?;
    }
    let mut encoding = super::Encoding::Gsm7;
    if first & 0x02 != 0 {
        let at = r.pos();
        let dcs = r.u8("TP-DCS")?;
        encoding = userdata::parse_dcs(dcs, at)?.0;
    }
    if first & 0x04 != 0 {
        userdata::read(r, encoding, fo & UDHI != 0)?;
    }
    Ok(())
}
