//! SMS-DELIVER (TS 23.040 §9.2.2.1): what a modem hands us in +CMT / +CMGR / +CMGL.
//!
//! Layout: FO (MTI=00, MMS, LP, SRI, UDHI, RP), TP-OA, TP-PID, TP-DCS, TP-SCTS, TP-UDL,
//! TP-UD. TP-MMS is inverted: bit 2 clear means more messages are waiting.

use super::reader::Reader;
use super::userdata::{self, dcs_for};
use super::{
    Address, Concat, DecodeError, Deliver, DeliverOptions, EncodeError, address, timestamp, udh,
};

const MMS_NO_MORE: u8 = 0x04;
const SRI: u8 = 0x20;
const UDHI: u8 = 0x40;
const RP: u8 = 0x80;

pub(crate) fn encode(
    sender: &str,
    text: &str,
    o: &DeliverOptions,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let mut head = Vec::with_capacity(32);
    address::write_smsc(&mut head, o.smsc.as_deref())?;
    let fo_at = head.len();
    head.push(MMS_NO_MORE);
    address::write_tp_sender(&mut head, sender)?;
    head.push(0x00); // TP-PID
    let dcs_at = head.len();
    head.push(0x00); // TP-DCS, set below
    timestamp::write(&mut head, &o.timestamp)?;
    if text.is_empty() {
        head.push(0); // TP-UDL: an empty message
        return Ok(vec![head]);
    }
    let plan = userdata::plan(text, udh::concat_udh_len(o.concat_16bit), true)?;
    let total = plan.ranges.len();
    head[dcs_at] = dcs_for(plan.encoding);
    if total > 1 {
        head[fo_at] |= UDHI;
    }
    let mut out = Vec::with_capacity(total);
    for (i, range) in plan.ranges.iter().enumerate() {
        let mut pdu = Vec::with_capacity(head.len() + 141);
        pdu.extend_from_slice(&head);
        let header = (total > 1).then(|| {
            let reference = if o.concat_16bit {
                o.concat_ref
            } else {
                o.concat_ref & 0xFF
            };
            (
                Concat {
                    reference,
                    total: total as u8,
                    seq: i as u8 + 1,
                },
                o.concat_16bit,
            )
        });
        userdata::write(&mut pdu, plan.encoding, &text[range.clone()], header);
        out.push(pdu);
    }
    Ok(out)
}

pub(crate) fn decode(
    r: &mut Reader<'_>,
    smsc: Option<Address>,
    fo: u8,
) -> Result<Deliver, DecodeError> {
    let sender = address::read_tp(r, "TP-OA")?;
    let pid = r.u8("TP-PID")?;
    let dcs_at = r.pos();
    let dcs = r.u8("TP-DCS")?;
    let (encoding, class) = userdata::parse_dcs(dcs, dcs_at)?;
    let timestamp = timestamp::read(r, "TP-SCTS")?;
    let (concat, body) = userdata::read(r, encoding, fo & UDHI != 0)?;
    Ok(Deliver {
        smsc,
        sender,
        more_messages_to_send: fo & MMS_NO_MORE == 0,
        status_report_indication: fo & SRI != 0,
        reply_path: fo & RP != 0,
        pid,
        dcs,
        encoding,
        class,
        timestamp,
        concat,
        body,
    })
}
