//! Property tests: whatever we encode decodes back to the same text, number and flags;
//! segment limits hold; escapes and surrogate pairs are never split; and decode never
//! panics, whatever it is fed.

use chrono::{FixedOffset, TimeZone};
use gridsms::pdu::{self, Body, Concat, DeliverOptions, Encoding, Pdu, SubmitOptions};
use proptest::prelude::*;

/// Every character of the GSM default alphabet and its extension table.
const GSM: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà{}[]~\\^|€\u{0C}";
const EXT: &str = "{}[]~\\^|€\u{0C}";

fn gsm_char() -> impl Strategy<Value = char> {
    let chars: Vec<char> = GSM.chars().collect();
    prop::sample::select(chars)
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => gsm_char(),
        4 => prop::char::range('\u{4E00}', '\u{9FA5}'),   // CJK
        2 => prop::char::range('\u{1F300}', '\u{1F6FF}'), // emoji, outside the BMP
        1 => any::<char>().prop_filter("not U+FFFD", |c| *c != char::REPLACEMENT_CHARACTER),
    ]
}

fn gsm_text() -> impl Strategy<Value = String> {
    prop::collection::vec(gsm_char(), 1..700).prop_map(String::from_iter)
}

fn any_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any_char(), 1..400).prop_map(String::from_iter)
}

fn number() -> impl Strategy<Value = String> {
    (any::<bool>(), "[0-9]{1,20}").prop_map(|(intl, d)| if intl { format!("+{d}") } else { d })
}

fn options() -> impl Strategy<Value = SubmitOptions> {
    (
        prop::option::of(number()),
        any::<bool>(),
        prop::option::of(1u32..=63 * 7 * 24 * 60),
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(
            |(smsc, status_report, validity_minutes, message_ref, concat_ref)| SubmitOptions {
                smsc,
                status_report,
                validity_minutes,
                message_ref,
                concat_ref,
            },
        )
}

fn body_text(b: &Body) -> &str {
    match b {
        Body::Text(t) => t,
        Body::Binary(_) => "",
    }
}

fn check_submit_round_trip(to: &str, text: &str, o: &SubmitOptions) -> Result<(), TestCaseError> {
    let segs = pdu::encode_submit(to, text, o).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let preview = pdu::preview(text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(segs.len(), preview.segments);
    prop_assert!(segs.len() <= 255);
    let multi = segs.len() > 1;
    let mut joined = String::new();
    for (i, seg) in segs.iter().enumerate() {
        let smsc_len = usize::from(seg.pdu[0]) + 1;
        prop_assert_eq!(seg.tpdu_len, seg.pdu.len() - smsc_len);
        let decoded =
            pdu::decode_hex(&seg.hex()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Pdu::Submit(s) = decoded else {
            return Err(TestCaseError::fail("not a submit"));
        };
        prop_assert_eq!(s.recipient.to_display(), to);
        prop_assert_eq!(s.smsc.map(|a| a.to_display()), o.smsc.clone());
        prop_assert_eq!(s.status_report_requested, o.status_report);
        prop_assert_eq!(s.message_ref, o.message_ref);
        prop_assert_eq!(s.encoding, preview.encoding);
        if let Some(m) = o.validity_minutes {
            let got = s.validity_minutes.unwrap_or(0);
            prop_assert!(got >= m, "validity {} < asked {}", got, m);
        }
        let expected_concat = multi.then(|| Concat {
            reference: u16::from(o.concat_ref),
            total: segs.len() as u8,
            seq: i as u8 + 1,
        });
        prop_assert_eq!(s.concat, expected_concat);
        let piece = body_text(&s.body);
        // Whole characters only: no replacement character from a split surrogate pair, and
        // the piece is a char-boundary slice of the original at the right place.
        prop_assert!(!piece.contains(char::REPLACEMENT_CHARACTER));
        prop_assert!(
            text[joined.len()..].starts_with(piece),
            "segment {} is not the next slice",
            i + 1
        );
        let (units, cap) = match s.encoding {
            Encoding::Gsm7 => {
                let ext = piece.chars().filter(|c| EXT.contains(*c)).count();
                (piece.chars().count() + ext, if multi { 153 } else { 160 })
            }
            _ => (piece.encode_utf16().count(), if multi { 67 } else { 70 }),
        };
        prop_assert!(
            units <= cap,
            "segment {} has {} units > {}",
            i + 1,
            units,
            cap
        );
        joined.push_str(piece);
    }
    prop_assert_eq!(joined.as_str(), text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn gsm_text_round_trips(to in number(), text in gsm_text(), o in options()) {
        prop_assert_eq!(pdu::preview(&text).map(|p| p.encoding), Ok(Encoding::Gsm7));
        check_submit_round_trip(&to, &text, &o)?;
    }

    #[test]
    fn any_text_round_trips(to in number(), text in any_text(), o in options()) {
        check_submit_round_trip(&to, &text, &o)?;
    }

    #[test]
    fn deliver_round_trips(
        sender in prop_oneof![number(), "[A-Za-z][A-Za-z0-9 .]{0,10}"],
        text in any_text(),
        quarters in -56i32..=56,
        secs in 946_684_800i64..3_471_292_799,
        reference in any::<u16>(),
        sixteen in any::<bool>(),
    ) {
        let tz = FixedOffset::east_opt(quarters * 900).unwrap();
        let ts = tz.timestamp_opt(secs, 0).unwrap();
        let opts = DeliverOptions { smsc: None, timestamp: ts, concat_ref: reference, concat_16bit: sixteen };
        let pdus = pdu::encode_deliver(&sender, &text, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut joined = String::new();
        for (i, raw) in pdus.iter().enumerate() {
            let Ok(Pdu::Deliver(d)) = pdu::decode(raw) else { return Err(TestCaseError::fail("not a deliver")) };
            prop_assert_eq!(d.sender.to_display(), sender.clone());
            prop_assert_eq!(d.timestamp, ts);
            prop_assert_eq!(d.timestamp.offset().local_minus_utc(), quarters * 900);
            if pdus.len() > 1 {
                let r = if sixteen { reference } else { reference & 0xFF };
                prop_assert_eq!(d.concat, Some(Concat { reference: r, total: pdus.len() as u8, seq: i as u8 + 1 }));
            }
            joined.push_str(body_text(&d.body));
        }
        prop_assert_eq!(joined, text);
    }

    #[test]
    fn status_report_round_trips(mr in any::<u8>(), to in number(), st in any::<u8>(), q in -56i32..=56, secs in 946_684_800i64..3_471_292_799) {
        let ts = FixedOffset::east_opt(q * 900).unwrap().timestamp_opt(secs, 0).unwrap();
        let raw = pdu::encode_status_report(None, mr, &to, ts, ts, st).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Ok(Pdu::StatusReport(r)) = pdu::decode(&raw) else { return Err(TestCaseError::fail("not a report")) };
        prop_assert_eq!((r.message_ref, r.status), (mr, st));
        prop_assert_eq!(r.recipient.to_display(), to);
        prop_assert_eq!(r.sc_timestamp, ts);
        prop_assert_eq!(r.class(), pdu::status_class(st));
    }

    #[test]
    fn every_strict_prefix_of_a_pdu_is_an_error(to in number(), text in any_text()) {
        let segs = pdu::encode_submit(&to, &text, &SubmitOptions::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let raw = &segs[0].pdu;
        for n in 0..raw.len() {
            prop_assert!(pdu::decode(&raw[..n]).is_err(), "prefix of {} octets decoded", n);
        }
    }

    #[test]
    fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = pdu::decode(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn decode_hex_never_panics_on_text(s in "\\PC{0,300}") {
        let _ = pdu::decode_hex(&s);
    }
}
