//! Decoded SMS-DELIVER segments through `pdu::concat::Reassembler`, as the modem driver
//! uses it: out of order, duplicated, interleaved with another sender, and expired.

use chrono::{FixedOffset, TimeZone};
use gridsms::pdu::{
    self, DeliverOptions, Pdu,
    concat::{Outcome, Reassembler},
};

fn deliver(raw: &[u8]) -> pdu::Deliver {
    match pdu::decode(raw) {
        Ok(Pdu::Deliver(d)) => d,
        other => panic!("expected a deliver, got {other:?}"),
    }
}

const OUTAGE: &str = "【停电通知】尊敬的客户：因10kV城东线检修，您所在的幸福路片区将于2026年12月3日08:00至17:00停电，届时请提前做好准备，给您带来不便敬请谅解。如遇紧急情况请拨打95598。国网城关供电所";

#[test]
fn chinese_outage_reply_reassembles_out_of_order_with_duplicates() {
    let ts = FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 28, 14, 3, 0)
        .unwrap();
    let opts = DeliverOptions {
        smsc: Some("+8613800100500".into()),
        timestamp: ts,
        concat_ref: 0x1234,
        concat_16bit: true,
    };
    let raws = pdu::encode_deliver("+8613800138000", OUTAGE, &opts).unwrap();
    assert_eq!(raws.len(), 2);
    let mut other = pdu::encode_deliver(
        "10086",
        &"x".repeat(300),
        &DeliverOptions {
            concat_16bit: false,
            ..opts.clone()
        },
    )
    .unwrap()
    .into_iter();

    let mut r = Reassembler::new(16, 60_000);
    assert!(matches!(
        r.push_deliver(&deliver(&raws[1]), 0).outcome,
        Outcome::Pending { have: 1, total: 2 }
    ));
    // Another sender's part with the same low reference byte does not mix in.
    let o1 = other.next().unwrap();
    assert!(matches!(
        r.push_deliver(&deliver(&o1), 1).outcome,
        Outcome::Pending { .. }
    ));
    assert_eq!(
        r.push_deliver(&deliver(&raws[1]), 2).outcome,
        Outcome::Duplicate
    );
    let done = r.push_deliver(&deliver(&raws[0]), 3);
    let Outcome::Complete(m) = done.outcome else {
        panic!("not complete: {done:?}")
    };
    assert_eq!(m.text, OUTAGE);
    assert_eq!(m.sender, "+8613800138000");
    assert_eq!(m.timestamp, ts);
    assert_eq!(m.parts, 2);

    // The other sender's message never completes: expire hands back what it has.
    assert!(r.expire(59_999).is_empty());
    let gone = r.expire(60_001);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].sender, "10086");
    assert_eq!(gone[0].missing, vec![2]);
    assert_eq!(gone[0].text(), "x".repeat(153));
    assert!(r.is_empty());
}

#[test]
fn single_part_message_completes_at_once() {
    let d = match pdu::decode_hex(
        "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
    ) {
        Ok(Pdu::Deliver(d)) => d,
        other => panic!("{other:?}"),
    };
    let mut r = Reassembler::default();
    let Outcome::Complete(m) = r.push_deliver(&d, 0).outcome else {
        panic!()
    };
    assert_eq!(
        (m.sender.as_str(), m.text.as_str(), m.parts),
        ("+31641600986", "How are you?", 1)
    );
}
