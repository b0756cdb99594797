//! Published PDU vectors and our own Chinese notices through the public codec API.
//!
//! Sources: dreamfabric.com's SMS PDU pages ("hellohello", 1999 SCTS), the "How are you?"
//! example used by python-messaging and many tutorials, python-messaging's test suite
//! (UCS2, alphanumeric senders, a German multipart with class-1 DCS), and a +CDS status
//! report printed in a modem tutorial (amro.blogspot.com). Each vector was written by an
//! independent implementation, so these tests check us against the outside world.

use chrono::{FixedOffset, TimeZone};
use gridsms::pdu::{
    self, Address, Body, Concat, DecodeError, DeliverOptions, EncodeError, Encoding, NumberType,
    Pdu, StatusClass, SubmitOptions,
};

fn deliver(hex: &str) -> pdu::Deliver {
    match pdu::decode_hex(hex) {
        Ok(Pdu::Deliver(d)) => d,
        other => panic!("expected a deliver, got {other:?}"),
    }
}

fn submit(hex: &str) -> pdu::Submit {
    match pdu::decode_hex(hex) {
        Ok(Pdu::Submit(s)) => s,
        other => panic!("expected a submit, got {other:?}"),
    }
}

fn text(b: &Body) -> &str {
    match b {
        Body::Text(t) => t,
        Body::Binary(_) => panic!("binary body"),
    }
}

fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

#[test]
fn how_are_you_deliver() {
    let d = deliver("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07");
    assert_eq!(
        d.smsc.as_ref().map(Address::to_display).as_deref(),
        Some("+31624000000")
    );
    assert_eq!(d.sender.to_display(), "+31641600986");
    assert_eq!(text(&d.body), "How are you?");
    assert_eq!(d.encoding, Encoding::Gsm7);
    // TZ octet 0x08: sign bit set, zero quarters.
    assert_eq!(d.timestamp.to_rfc3339(), "2002-08-26T19:37:41+00:00");
    assert!(!d.more_messages_to_send);
    assert_eq!(d.concat, None);
}

#[test]
fn dreamfabric_hellohello_deliver_national_number() {
    let d = deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37");
    assert_eq!(
        d.smsc.as_ref().map(Address::to_display).as_deref(),
        Some("+27381000015")
    );
    assert_eq!(d.sender.value, "27838890001");
    assert_eq!(d.sender.number_type, NumberType::Other(4));
    assert_eq!(d.sender.to_display(), "27838890001");
    assert_eq!(text(&d.body), "hellohello");
    assert_eq!(d.timestamp.to_rfc3339(), "1999-03-29T15:16:59+02:00");
}

#[test]
fn dreamfabric_hellohello_submit() {
    let s = submit("0011000B916407281553F80000AA0AE8329BFD4697D9EC37");
    assert_eq!(s.smsc, None);
    assert_eq!(s.recipient.to_display(), "+46708251358");
    assert_eq!(s.validity_minutes, Some(4 * 24 * 60));
    assert_eq!(text(&s.body), "hellohello");
    assert!(!s.status_report_requested);
}

#[test]
fn python_messaging_submit_vectors_match_our_encoder() {
    // (to, text, options, expected hex, expected TPDU length)
    let four_days = Some(4 * 24 * 60);
    let cases: &[(&str, &str, SubmitOptions, &str, usize)] = &[
        (
            "+34616585119",
            "hola",
            SubmitOptions::default(),
            "0001000B914316565811F9000004E8373B0C",
            17,
        ),
        (
            "+34616585119",
            "hola",
            SubmitOptions {
                validity_minutes: four_days,
                ..Default::default()
            },
            "0011000B914316565811F90000AA04E8373B0C",
            18,
        ),
        (
            "+34616585119",
            "hola",
            SubmitOptions {
                smsc: Some("+34646456456".into()),
                ..Default::default()
            },
            "07914346466554F601000B914316565811F9000004E8373B0C",
            17,
        ),
        (
            "+34654123456",
            "hey yo",
            SubmitOptions {
                status_report: true,
                ..Default::default()
            },
            "0021000B914356143254F6000006E8721E947F03",
            19,
        ),
        (
            "+34654123456",
            "Hölä",
            SubmitOptions {
                validity_minutes: four_days,
                ..Default::default()
            },
            "0011000B914356143254F60000AA04483E7B0F",
            18,
        ),
        (
            "+34654123456",
            "BÄRÇA äñ@",
            SubmitOptions::default(),
            "0001000B914356143254F6000009C2AD341104EDFB00",
            21,
        ),
        (
            "+34616585119",
            "あ叶葉",
            SubmitOptions {
                smsc: Some("+34646456456".into()),
                ..Default::default()
            },
            "07914346466554F601000B914316565811F9000806304253F68449",
            19,
        ),
        (
            "655345678",
            "Русский",
            SubmitOptions {
                validity_minutes: four_days,
                ..Default::default()
            },
            "001100098156355476F80008AA0E0420044304410441043A04380439",
            27,
        ),
    ];
    for (to, txt, opts, hex, len) in cases {
        let segs = pdu::encode_submit(to, txt, opts).unwrap();
        assert_eq!(segs.len(), 1, "{txt}");
        assert_eq!(segs[0].hex(), *hex, "{txt}");
        assert_eq!(segs[0].tpdu_len, *len, "{txt}");
        // And back.
        let s = submit(hex);
        assert_eq!(text(&s.body), *txt);
        assert_eq!(s.recipient.to_display(), *to);
    }
}

#[test]
fn python_messaging_multipart_7bit_matches_our_encoder() {
    let text = "Or walk with Kings - nor lose the common touch, if neither foes nor loving friends can hurt you, If all men count with you, but none too much; If you can fill the unforgiving minute With sixty seconds' worth of distance run, Yours is the Earth and everything thats in it, And - which is more - you will be a Man, my son";
    let expected = [
        "005100098156355476F80000AAA00500038803019E72D03DCC5E83EE693A1AB44CBBCF73500BE47ECB41ECF7BC0CA2A3CBA0F1BBDD7EBB41F4777D8C6681D26690BB9CA6A3CB7290F95D9E83DC6F3988FDB6A7DD6790599E2EBBC973D038EC06A1EB723A28FFAEB340493328CC6683DA653768FCAEBBE9A07B9A8E06E5DF7516485CA783DC6F7719447FBF41EDFA18BD0325CDA0FCBB0E1A87DD",
        "005100098156355476F80000AAA005000388030240E6349B0DA2A3CBA0BADBFC969FD3F6B4FB0C6AA7DD757A19744DD3D1A0791A4FCF83E6E5F1DB4D9E9F40F7B79C8E06BDCD20727A4E0FBBC76590BCEE6681B2EFBA7C0E4ACF41747419540CCBE96850D84D0695ED65799E8E4EBBCF203A3A4C9F83D26E509ACE0205DD64500B7447A7C768507A0E6ABFE565500B947FD741F7349B0D129741",
        "005100098156355476F80000AA14050003880303C2A066D8CD02B5F3A0F9DB0D",
    ];
    let opts = SubmitOptions {
        validity_minutes: Some(4 * 24 * 60),
        concat_ref: 136,
        ..Default::default()
    };
    let segs = pdu::encode_submit("655345678", text, &opts).unwrap();
    let hexes: Vec<String> = segs.iter().map(|s| s.hex()).collect();
    assert_eq!(hexes, expected);
    let mut joined = String::new();
    for (i, hex) in expected.iter().enumerate() {
        let s = submit(hex);
        assert_eq!(
            s.concat,
            Some(Concat {
                reference: 136,
                total: 3,
                seq: i as u8 + 1
            })
        );
        joined.push_str(self::text(&s.body));
    }
    assert_eq!(joined, text);
}

#[test]
fn python_messaging_ucs2_deliver() {
    let d = deliver("07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF");
    assert_eq!(text(&d.body), "中兴通讯");
    assert_eq!(
        d.smsc.as_ref().map(Address::to_display).as_deref(),
        Some("+34607003110")
    );
    assert_eq!(d.sender.to_display(), "+34610789702");
    assert_eq!(d.encoding, Encoding::Ucs2);
}

#[test]
fn alphanumeric_senders_odd_and_even_length() {
    let d = deliver(concat!(
        "07919471060040340409D0C6A733390400009060920173018093CC74595C96838C4F6772085AD6DDE4320B444E9741D4B03C6D7E",
        "C3E9E9B71B9474D3CB727799DEA286CFE5B9991DA6CBC3F432E85E9793CBA0F09A9EB6A7CB72BA0B9474D3CB727799DE72D6E9FA",
        "BAFB0CBAA7E56490BA4CD7D34170F91BE4ACD3F575F7794E0F9F4161F1B92C2F8FD1EE32DD054AA2E520E3D3991C82A8E5701B"
    ));
    assert_eq!(
        d.sender,
        Address {
            number_type: NumberType::Alphanumeric,
            value: "FONIC".into()
        }
    );
    assert_eq!(
        text(&d.body),
        "Lieber FONIC Kunde, die Tarifoption Internet-Tagesflatrate wurde aktiviert. Internet-Nutzung wird jetzt pro Nutzungstag abgerechnet. Ihr FONIC Team"
    );
    let d = deliver(
        "07919333852804000412D0F7FBDD454FB75D693A0000903002801153402BCD301E9F0605D9E971191483C140412A35690D52832063D2F9040599A058EE05A3BD6430580E",
    );
    assert_eq!(d.sender.to_display(), "www.tim.it");
    assert_eq!(text(&d.body), "Maxxi Alice 100 ATTIVATA FINO AL 19/04/2009");
}

#[test]
fn german_multipart_class_1_with_euro_sign() {
    let pdus = [
        "07919471227210244405852122F039F101506271217180A005000319020198E9B2B82C0759DFE4B0F9ED2EB7967537B9CC02B5D37450122D2FCB41EE303DFD7687D96537881A96A7CD6F383DFD7683F46134BBEC064DD36550DA0D22A7CBF3721BE42CD3F5A0198B56036DCA20B8FC0D6A0A4170767D0EAAE540433A082E7F83A6E5F93CFD76BB40D7B2DB0D9AA6CB2072BA3C2F83926EF31BE44E8FD17450BB8C9683CA",
        "07919471227210244405852122F039F1015062712181804F050003190202E4E8309B5E7683DAFC319A5E76B340F73D9A5D7683A6E93268FD9ED3CB6EF67B0E5AD172B19B2C2693C9602E90355D6683A6F0B007946E8382F5393BEC26BB00",
    ];
    let texts = [
        "Lieber Vodafone-Kunde, mit Ihrer nationalen Tarifoption zahlen Sie in diesem Netz 3,45 € pro MB plus 59 Ct pro Session. Wenn Sie diese Info nicht mehr e",
        "rhalten möchten, wählen Sie kostenlos +4917212220. Viel Spaß im Ausland.",
    ];
    for (i, hex) in pdus.iter().enumerate() {
        let d = deliver(hex);
        assert_eq!(text(&d.body), texts[i]);
        assert_eq!(
            d.concat,
            Some(Concat {
                reference: 25,
                total: 2,
                seq: i as u8 + 1
            })
        );
        assert_eq!(d.class, Some(1));
        assert_eq!(d.dcs, 0xF1);
    }
}

#[test]
fn status_report_from_cds_tutorial() {
    // Printed without its SMSC field by that modem; a leading 00 makes it what +CMGR prints.
    let p = pdu::decode_hex("0006000B910221815716F2709021510121807090215101718000").unwrap();
    let Pdu::StatusReport(r) = p else {
        panic!("not a status report: {p:?}")
    };
    assert_eq!(r.message_ref, 0);
    assert_eq!(r.recipient.to_display(), "+20121875612");
    assert_eq!(r.sc_timestamp.to_rfc3339(), "2007-09-12T15:10:12+02:00");
    assert_eq!(r.discharge_time.to_rfc3339(), "2007-09-12T15:10:17+02:00");
    assert_eq!(r.status, 0);
    assert_eq!(r.class(), StatusClass::Delivered);
}

#[test]
fn status_report_permanent_failure_from_python_messaging() {
    let p = pdu::decode_hex("07914306073011F006270B913426565711F7012081111345400120811174054043")
        .unwrap();
    let Pdu::StatusReport(r) = p else {
        panic!("not a status report: {p:?}")
    };
    assert_eq!(r.message_ref, 0x27);
    assert_eq!(r.recipient.to_display(), "+43626575117");
    assert_eq!(r.sc_timestamp.to_rfc3339(), "2010-02-18T11:31:54+01:00");
    assert_eq!(r.discharge_time.to_rfc3339(), "2010-02-18T11:47:50+01:00");
    assert_eq!(r.status, 0x43);
    assert_eq!(r.class(), StatusClass::PermanentFailure);
}

#[test]
fn status_classes() {
    assert_eq!(pdu::status_class(0x00), StatusClass::Delivered);
    assert_eq!(pdu::status_class(0x1F), StatusClass::Delivered);
    assert_eq!(pdu::status_class(0x20), StatusClass::StillTrying);
    assert_eq!(pdu::status_class(0x40), StatusClass::PermanentFailure);
    assert_eq!(pdu::status_class(0x60), StatusClass::TemporaryFailureGaveUp);
    assert_eq!(pdu::status_class(0x7F), StatusClass::TemporaryFailureGaveUp);
    assert_eq!(pdu::status_class(0x80), StatusClass::PermanentFailure);
}

#[test]
fn status_report_round_trip_with_plus_eight_and_optional_tail() {
    let sc = cst().with_ymd_and_hms(2026, 11, 28, 9, 30, 0).unwrap();
    let dt = cst().with_ymd_and_hms(2026, 11, 28, 9, 30, 7).unwrap();
    let raw = pdu::encode_status_report(Some("+8613800100500"), 42, "+8613800138000", sc, dt, 0x00)
        .unwrap();
    assert_eq!(
        pdu::to_hex_lower(&raw).to_uppercase(),
        "0891683108100005F006".to_string()
            + "2A0D91683108108300F0"
            + "62118290030023"
            + "62118290037023"
            + "00"
    );
    let Ok(Pdu::StatusReport(r)) = pdu::decode(&raw) else {
        panic!()
    };
    assert_eq!((r.message_ref, r.status), (42, 0));
    assert_eq!(r.recipient.to_display(), "+8613800138000");
    assert_eq!(r.sc_timestamp, sc);
    assert_eq!(r.discharge_time, dt);
    // A TP-PI announcing PID and DCS, present, is accepted; cut short it is ignored.
    let mut with_tail = raw.clone();
    with_tail.extend_from_slice(&[0x03, 0x00, 0x00]);
    assert!(matches!(pdu::decode(&with_tail), Ok(Pdu::StatusReport(_))));
    with_tail.truncate(with_tail.len() - 1);
    assert!(matches!(pdu::decode(&with_tail), Ok(Pdu::StatusReport(_))));
}

const BILL: &str = "【国网供电】尊敬的客户：您户号0123456789（地址：城关镇幸福路88号3单元502室）2026年11月电费已出账，本月用电量236千瓦时，应交电费128.50元，账户余额12.30元，请于12月15日前缴清，逾期将产生违约金。可通过网上国网App、支付宝、微信或营业厅缴费。如有疑问请致电95598。回复TD退订。";

#[test]
fn chinese_bill_notice_is_ucs2_in_67_unit_segments() {
    let n = BILL.encode_utf16().count();
    let segs = pdu::encode_submit(
        "13800138000",
        BILL,
        &SubmitOptions {
            concat_ref: 0xA7,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(segs.len(), n.div_ceil(67));
    let p = pdu::preview(BILL).unwrap();
    assert_eq!(
        (p.encoding, p.segments, p.units),
        (Encoding::Ucs2, segs.len(), n)
    );
    assert_eq!(p.units_left, 67 - (n - 67 * (segs.len() - 1)));
    let mut joined = String::new();
    for (i, seg) in segs.iter().enumerate() {
        // FO: SUBMIT with UDHI; no SMSC; DA unknown type.
        assert_eq!(&seg.pdu[..3], &[0x00, 0x41, 0x00]);
        assert_eq!(
            &seg.pdu[3..11],
            &[0x0B, 0x81, 0x31, 0x08, 0x10, 0x83, 0x00, 0xF0]
        );
        assert_eq!(seg.tpdu_len, seg.pdu.len() - 1);
        let s = submit(&seg.hex());
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(
            s.concat,
            Some(Concat {
                reference: 0xA7,
                total: segs.len() as u8,
                seq: i as u8 + 1
            })
        );
        let t = text(&s.body);
        assert!(t.encode_utf16().count() <= 67);
        joined.push_str(t);
    }
    assert_eq!(joined, BILL);
}

#[test]
fn chinese_outage_notice_single_segment_with_smsc_srr_and_validity() {
    let text = "【停电通知】因线路检修，10kV城东线将于12月3日8:00-17:00停电，请做好准备。";
    let opts = SubmitOptions {
        smsc: Some("+8613800100500".into()),
        status_report: true,
        validity_minutes: Some(24 * 60),
        message_ref: 7,
        concat_ref: 0,
    };
    let segs = pdu::encode_submit("+8613912345678", text, &opts).unwrap();
    assert_eq!(segs.len(), 1);
    let hex = segs[0].hex();
    assert!(hex.starts_with("0891683108100005F0" /* SMSC */));
    assert_eq!(&hex[18..22], "3107"); // SUBMIT, VPF relative, SRR; TP-MR 7
    assert_eq!(segs[0].tpdu_len, segs[0].pdu.len() - 9);
    let s = submit(&hex);
    assert_eq!(text, self::text(&s.body));
    assert!(s.status_report_requested);
    assert_eq!(s.validity_minutes, Some(24 * 60));
    assert_eq!(s.message_ref, 7);
    assert_eq!(
        s.smsc.map(|a| a.to_display()).as_deref(),
        Some("+8613800100500")
    );
}

#[test]
fn emoji_is_a_surrogate_pair_never_split() {
    // 66 CJK units then an emoji (2 units): the pair must move whole to segment 2.
    let text = format!("{}⚡🔌{}", "电".repeat(65), "费".repeat(10));
    let segs = pdu::encode_submit("10086", &text, &SubmitOptions::default()).unwrap();
    assert_eq!(segs.len(), 2);
    let first = submit(&segs[0].hex());
    assert_eq!(text_of(&first), format!("{}⚡", "电".repeat(65)));
    let second = submit(&segs[1].hex());
    assert!(text_of(&second).starts_with('🔌'));
    // A lone emoji: D83D DD0C.
    let s = pdu::encode_submit("10086", "🔌", &SubmitOptions::default()).unwrap();
    assert!(s[0].hex().ends_with("0804D83DDD0C"));
}

fn text_of(s: &pdu::Submit) -> String {
    text(&s.body).to_string()
}

#[test]
fn extension_characters_cost_two_septets_and_survive() {
    let t = "{[~]} \\ ^ | € \u{0C}";
    let p = pdu::preview(t).unwrap();
    assert_eq!(p.encoding, Encoding::Gsm7);
    assert_eq!(p.units, 10 * 2 + 5);
    let segs = pdu::encode_submit("95598", t, &SubmitOptions::default()).unwrap();
    assert_eq!(text(&submit(&segs[0].hex()).body), t);
}

#[test]
fn gsm7_segment_sizes_160_and_153() {
    let segs = |n| {
        pdu::encode_submit("95598", &"x".repeat(n), &SubmitOptions::default())
            .unwrap()
            .len()
    };
    assert_eq!(segs(160), 1);
    assert_eq!(segs(161), 2);
    assert_eq!(segs(306), 2);
    assert_eq!(segs(307), 3);
    let p = pdu::preview(&"x".repeat(161)).unwrap();
    assert_eq!((p.segments, p.units, p.units_left), (2, 161, 153 - 8));
    // UDL of a full concatenated 7-bit segment: 7 header septets + 153.
    let s = pdu::encode_submit("95598", &"x".repeat(306), &SubmitOptions::default()).unwrap();
    assert_eq!(s[0].pdu[1 + 1 + 1 + 5 + 2], 160);
}

#[test]
fn ucs2_segment_sizes_70_and_67() {
    let segs = |n| {
        pdu::encode_submit("95598", &"电".repeat(n), &SubmitOptions::default())
            .unwrap()
            .len()
    };
    assert_eq!(segs(70), 1);
    assert_eq!(segs(71), 2);
    assert_eq!(segs(134), 2);
    assert_eq!(segs(135), 3);
}

#[test]
fn at_most_255_segments() {
    assert_eq!(
        pdu::encode_submit("95598", &"x".repeat(153 * 255), &SubmitOptions::default())
            .unwrap()
            .len(),
        255
    );
    assert_eq!(
        pdu::encode_submit(
            "95598",
            &"x".repeat(153 * 255 + 1),
            &SubmitOptions::default()
        ),
        Err(EncodeError::TooLong { segments: 256 })
    );
    assert!(matches!(
        pdu::preview(&"电".repeat(67 * 300)),
        Err(EncodeError::TooLong { segments: 300 })
    ));
}

#[test]
fn encode_errors() {
    let o = SubmitOptions::default();
    assert_eq!(
        pdu::encode_submit("95598", "", &o),
        Err(EncodeError::EmptyText)
    );
    assert!(matches!(
        pdu::encode_submit("138-0013-8000", "hi", &o),
        Err(EncodeError::InvalidNumber(..))
    ));
    assert!(matches!(
        pdu::encode_submit(
            "95598",
            "hi",
            &SubmitOptions {
                smsc: Some("x".into()),
                ..Default::default()
            }
        ),
        Err(EncodeError::InvalidNumber(..))
    ));
    assert_eq!(
        pdu::encode_submit(
            "95598",
            "hi",
            &SubmitOptions {
                validity_minutes: Some(0),
                ..Default::default()
            }
        ),
        Err(EncodeError::ValidityOutOfRange(0))
    );
}

#[test]
fn deliver_round_trip_alphanumeric_16bit_reference_and_negative_zone() {
    let ts = FixedOffset::west_opt(3 * 3600 + 1800)
        .unwrap()
        .with_ymd_and_hms(2026, 2, 28, 23, 59, 59)
        .unwrap();
    let opts = DeliverOptions {
        smsc: Some("+8613800100500".into()),
        timestamp: ts,
        concat_ref: 0xBEEF,
        concat_16bit: true,
    };
    let text = "x".repeat(200);
    let pdus = pdu::encode_deliver("GridCo", &text, &opts).unwrap();
    assert_eq!(pdus.len(), 2);
    let mut joined = String::new();
    for (i, raw) in pdus.iter().enumerate() {
        let Ok(Pdu::Deliver(d)) = pdu::decode(raw) else {
            panic!()
        };
        assert_eq!(
            d.sender,
            Address {
                number_type: NumberType::Alphanumeric,
                value: "GridCo".into()
            }
        );
        assert_eq!(
            d.concat,
            Some(Concat {
                reference: 0xBEEF,
                total: 2,
                seq: i as u8 + 1
            })
        );
        assert_eq!(d.timestamp, ts);
        assert_eq!(d.timestamp.to_rfc3339(), "2026-02-28T23:59:59-03:30");
        joined.push_str(text_of_body(&d.body));
    }
    // 16-bit reference header is 7 octets = 8 septets: 152 septets per segment.
    assert_eq!(joined.len(), 200);
    let Ok(Pdu::Deliver(first)) = pdu::decode(&pdus[0]) else {
        panic!()
    };
    assert_eq!(text_of_body(&first.body).len(), 152);
}

fn text_of_body(b: &Body) -> &str {
    text(b)
}

#[test]
fn deliver_round_trip_chinese_from_95598() {
    let ts = cst().with_ymd_and_hms(2026, 11, 28, 14, 3, 0).unwrap();
    let opts = DeliverOptions {
        smsc: None,
        timestamp: ts,
        concat_ref: 3,
        concat_16bit: false,
    };
    let pdus = pdu::encode_deliver("95598", "CX", &opts).unwrap();
    assert_eq!(
        pdu::to_hex_lower(&pdus[0]).to_uppercase(),
        "000405815995F800006211824130002302432C"
    );
    let pdus = pdu::encode_deliver("+8613800138000", "查询电费", &opts).unwrap();
    let Ok(Pdu::Deliver(d)) = pdu::decode(&pdus[0]) else {
        panic!()
    };
    assert_eq!(d.sender.to_display(), "+8613800138000");
    assert_eq!(text(&d.body), "查询电费");
    assert_eq!(d.timestamp.to_rfc3339(), "2026-11-28T14:03:00+08:00");
}

#[test]
fn eight_bit_data_is_binary() {
    // python-messaging's 8-bit SUBMIT vector.
    let s = submit("07914400000000F001000B811000000000F000040B48692074686572652E2E2E");
    assert_eq!(s.encoding, Encoding::EightBit);
    assert_eq!(s.body, Body::Binary(b"Hi there...".to_vec()));
    assert_eq!(s.recipient.to_display(), "01000000000");
}

#[test]
fn decode_errors_say_what_and_where() {
    assert_eq!(
        pdu::decode_hex("0G"),
        Err(DecodeError::BadHex { position: 1 })
    );
    assert_eq!(
        pdu::decode_hex("000"),
        Err(DecodeError::BadHex { position: 3 })
    );
    assert!(matches!(
        pdu::decode_hex(""),
        Err(DecodeError::Truncated { offset: 0, .. })
    ));
    assert!(matches!(
        pdu::decode_hex("0003"),
        Err(DecodeError::Unsupported {
            offset: 1,
            field: "TP-MTI",
            ..
        })
    ));
    // Compressed text (DCS 0x20).
    assert!(matches!(
        pdu::decode_hex("000405815995F800206211824130002302432C"),
        Err(DecodeError::Unsupported {
            offset: 8,
            field: "TP-DCS",
            ..
        })
    ));
    // Reserved coding group 1000.
    assert!(matches!(
        pdu::decode_hex("000405815995F800806211824130002302432C"),
        Err(DecodeError::Unsupported { .. })
    ));
    // UDL says 10 septets but only two octets follow.
    assert!(matches!(
        pdu::decode_hex("000405815995F80000621182413000230A432C0"),
        Err(DecodeError::BadHex { .. })
    ));
    assert!(matches!(
        pdu::decode_hex("000405815995F80000621182413000230A432C"),
        Err(DecodeError::Truncated {
            offset: 17,
            field: "TP-UD",
            ..
        })
    ));
    // Whitespace around the hex and lowercase are fine.
    assert!(pdu::decode_hex("  000405815995f800006211824130002302432c\r\n").is_ok());
}

#[test]
fn submit_with_absolute_validity_is_read_past() {
    // python-messaging: absolute TP-VP (VPF 11) of 2010-07-25 20:15:39.
    let s = submit("0019000B914316565811F900000170520251930004E8373B0C");
    assert_eq!(s.validity_minutes, None);
    assert!(!s.reject_duplicates);
    assert_eq!(text(&s.body), "hola");
    // Class 0 to 3 in the general data coding group.
    for (hex, class) in [
        ("0001000B914356143254F6001006E8721E947F03", 0),
        ("0001000B914356143254F6001306E8721E947F03", 3),
    ] {
        let s = submit(hex);
        assert_eq!(s.dcs, 0x10 | class);
        assert_eq!(text(&s.body), "hey yo");
    }
}
