//! SMS-SUBMIT (TS 23.040 §9.2.2.2): what we send, and what a modem stored as sent.
//!
//! Layout: FO (MTI=01, RD, VPF, SRR, UDHI, RP), TP-MR, TP-DA, TP-PID, TP-DCS, TP-VP (0, 1 or
//! 7 octets by VPF), TP-UDL, TP-UD. `tpdu_len` counts from FO, without the SMSC field, as
//! `AT+CMGS=<length>` wants it.

use super::reader::Reader;
use super::userdata::{self, dcs_for};
use super::{
    Concat, DecodeError, EncodeError, EncodedSegment, Submit, SubmitOptions, address, udh,
};

const MTI_SUBMIT: u8 = 0x01;
const RD: u8 = 0x04;
const VPF_RELATIVE: u8 = 0x10;
const VPF_MASK: u8 = 0x18;
const SRR: u8 = 0x20;
pub(crate) const UDHI: u8 = 0x40;

/// Minutes → relative TP-VP, rounded up to the next step (§9.2.3.12.1).
pub(crate) fn vp_from_minutes(m: u32) -> Result<u8, EncodeError> {
    const DAY: u32 = 24 * 60;
    const WEEK: u32 = 7 * DAY;
    let n = match m {
        0 => return Err(EncodeError::ValidityOutOfRange(m)),
        1..=720 => m.div_ceil(5) - 1,
        721..=DAY => 143 + (m - 720).div_ceil(30),
        _ if m <= 30 * DAY => m.div_ceil(DAY) + 166,
        _ if m <= 63 * WEEK => m.div_ceil(WEEK) + 192,
        _ => return Err(EncodeError::ValidityOutOfRange(m)),
    };
    Ok(n as u8)
}

/// Relative TP-VP → minutes.
pub(crate) fn vp_minutes(vp: u8) -> u32 {
    let n = u32::from(vp);
    match n {
        0..=143 => (n + 1) * 5,
        144..=167 => 720 + (n - 143) * 30,
        168..=196 => (n - 166) * 24 * 60,
        _ => (n - 192) * 7 * 24 * 60,
    }
}

pub(crate) fn encode(
    to: &str,
    text: &str,
    o: &SubmitOptions,
) -> Result<Vec<EncodedSegment>, EncodeError> {
    if text.is_empty() {
        return Err(EncodeError::EmptyText);
    }
    let vp = o.validity_minutes.map(vp_from_minutes).transpose()?;
    let plan = userdata::plan(text, udh::concat_udh_len(false), true)?;
    let total = plan.ranges.len();
    let mut fo = MTI_SUBMIT;
    if vp.is_some() {
        fo |= VPF_RELATIVE;
    }
    if o.status_report {
        fo |= SRR;
    }
    if total > 1 {
        fo |= UDHI;
    }
    // Everything before TP-UDL is the same in every segment: build it once.
    let mut head = Vec::with_capacity(12 + 16);
    address::write_smsc(&mut head, o.smsc.as_deref())?;
    let smsc_len = head.len();
    head.push(fo);
    head.push(o.message_ref);
    address::write_tp_number(&mut head, to)?;
    head.push(0x00); // TP-PID: plain SME-to-SME
    head.push(dcs_for(plan.encoding));
    if let Some(vp) = vp {
        head.push(vp);
    }
    let mut out = Vec::with_capacity(total);
    for (i, range) in plan.ranges.iter().enumerate() {
        let mut pdu = Vec::with_capacity(head.len() + 141);
        pdu.extend_from_slice(&head);
        let header = (total > 1).then(|| {
            (
                Concat {
                    reference: u16::from(o.concat_ref),
                    total: total as u8,
                    seq: i as u8 + 1,
                },
                false,
            )
        });
        userdata::write(&mut pdu, plan.encoding, &text[range.clone()], header);
        let tpdu_len = pdu.len() - smsc_len;
        out.push(EncodedSegment { pdu, tpdu_len });
    }
    Ok(out)
}

pub(crate) fn decode(
    r: &mut Reader<'_>,
    smsc: Option<super::Address>,
    fo: u8,
) -> Result<Submit, DecodeError> {
    let message_ref = r.u8("TP-MR")?;
    let recipient = address::read_tp(r, "TP-DA")?;
    let pid = r.u8("TP-PID")?;
    let dcs_at = r.pos();
    let dcs = r.u8("TP-DCS")?;
    let (encoding, _class) = userdata::parse_dcs(dcs, dcs_at)?;
    let validity_minutes = match fo & VPF_MASK {
        0x00 => None,
        VPF_RELATIVE => Some(vp_minutes(r.u8("TP-VP")?)),
        // Enhanced (01) and absolute (11) formats: seven octets, not reported as minutes.
        _ => {
            r.take(7, "TP-VP")?;
            None
        }
    };
    let (concat, body) = userdata::read(r, encoding, fo & UDHI != 0)?;
    Ok(Submit {
        smsc,
        message_ref,
        recipient,
        status_report_requested: fo & SRR != 0,
        reject_duplicates: fo & RD != 0,
        pid,
        dcs,
        encoding,
        validity_minutes,
        concat,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_steps_round_up() {
        let cases = [
            (1, 0),
            (5, 0),
            (6, 1),
            (720, 143),
            (721, 144),
            (750, 144),
            (1440, 167),
            (1441, 168),
            (2 * 1440, 168),
            (3 * 1440, 169),
            (4 * 1440, 170),
            (30 * 1440, 196),
            (30 * 1440 + 1, 197),
            (63 * 7 * 1440, 255),
        ];
        for (m, vp) in cases {
            assert_eq!(vp_from_minutes(m), Ok(vp), "{m} minutes");
            assert!(vp_minutes(vp) >= m, "{m} minutes");
        }
        assert!(vp_from_minutes(0).is_err());
        assert!(vp_from_minutes(63 * 7 * 1440 + 1).is_err());
    }

    #[test]
    fn every_vp_value_round_trips_through_minutes() {
        for vp in 0..=255u8 {
            assert_eq!(vp_from_minutes(vp_minutes(vp)), Ok(vp));
        }
    }
}
