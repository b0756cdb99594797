//! Fuzz target: any octets through `pdu::decode`, the same octets as text through
//! `pdu::decode_hex`, and whatever decodes back through the encoders and the reassembler.
//! The codec must return a value or an error, never panic, never hang.
#![no_main]

use gridsms::pdu::{self, Body, DeliverOptions, Pdu, SubmitOptions, concat::Reassembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = pdu::decode(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = pdu::decode_hex(s);
    }
    match decoded {
        Ok(Pdu::Deliver(d)) => {
            let mut r = Reassembler::new(4, 1000);
            let _ = r.push_deliver(&d, 0);
            let _ = r.expire(1000);
            if let Body::Text(t) = &d.body {
                let opts = DeliverOptions { smsc: None, timestamp: d.timestamp, concat_ref: 1, concat_16bit: true };
                let _ = pdu::encode_deliver(&d.sender.to_display(), t, &opts);
                let _ = pdu::preview(t);
            }
        }
        Ok(Pdu::Submit(s)) => {
            if let Body::Text(t) = &s.body {
                let _ = pdu::encode_submit(&s.recipient.to_display(), t, &SubmitOptions::default());
            }
        }
        Ok(Pdu::StatusReport(r)) => {
            let _ = r.class();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
