//! The simulated modem over a real pty, for every profile: boot URCs, the echo quirk, identity
//! commands, CNMI acceptance, send with status report, inbound storage, PIN handling, and
//! garbage input. Faults are in `sim_faults.rs`.

mod sim_common;

use gridsms::pdu::{self, Body, Pdu, SubmitOptions};
use gridsms::sim::{self, Profile, SimOptions};
use sim_common::{Client, field, line_after};
use std::time::Duration;

async fn start(profile: Profile) -> (sim::SimHandle, Client) {
    let handle = sim::spawn(SimOptions::new(profile))
        .await
        .expect("spawn simulator");
    let client = Client::open(&handle.device_path()).await;
    (handle, client)
}

fn ready_line(profile: Profile) -> &'static str {
    match profile {
        Profile::QuectelEc25 => "+QIND: SMS DONE",
        Profile::Sim800 => "SMS Ready",
        Profile::HuaweiE173 => "^MODE:5,4",
    }
}

/// Wait until the profile's boot says SMS is ready, then turn echo off and use PDU mode.
async fn ready(profile: Profile, c: &mut Client) {
    c.expect(0, ready_line(profile)).await;
    c.sync().await;
    assert!(c.cmd("ATE0").await.ends_with("\r\nOK\r\n"));
    assert!(c.cmd("AT+CMEE=1").await.ends_with("\r\nOK\r\n"));
    assert!(c.cmd("AT+CMGF=0").await.ends_with("\r\nOK\r\n"));
}

#[tokio::test]
async fn boot_urcs_per_profile() {
    for profile in Profile::ALL {
        let (handle, mut c) = start(profile).await;
        let boot = c.expect(0, ready_line(profile)).await;
        match profile {
            Profile::QuectelEc25 => {
                for l in ["RDY", "+CFUN: 1", "+CPIN: READY", "+QIND: SMS DONE"] {
                    assert!(
                        boot.contains(&format!("\r\n{l}\r\n")),
                        "{profile}: {l} missing in {boot:?}"
                    );
                }
            }
            Profile::Sim800 => {
                for l in ["RDY", "+CPIN: READY", "Call Ready", "SMS Ready"] {
                    assert!(
                        boot.contains(&format!("\r\n{l}\r\n")),
                        "{profile}: {l} missing in {boot:?}"
                    );
                }
            }
            Profile::HuaweiE173 => {
                assert!(boot.contains("\r\n^BOOT:"), "{boot:?}");
                // The stick keeps printing ^RSSI noise.
                let m = c.mark();
                c.expect(m, "^RSSI:").await;
            }
        }
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn echo_follows_ate_except_on_huawei() {
    for profile in Profile::ALL {
        let (handle, mut c) = start(profile).await;
        c.expect(0, ready_line(profile)).await;
        c.sync().await;
        let on = c.cmd("AT+CSQ").await;
        assert!(
            on.starts_with("AT+CSQ\r"),
            "{profile}: echo on by default: {on:?}"
        );
        c.cmd("ATE0").await;
        let off = c.cmd("AT+CSQ").await;
        match profile {
            Profile::HuaweiE173 => assert!(
                off.contains("AT+CSQ\r"),
                "{profile} must keep echoing: {off:?}"
            ),
            _ => assert!(
                !off.contains("AT+CSQ"),
                "{profile} echoed after ATE0: {off:?}"
            ),
        }
        assert!(off.contains("+CSQ: "), "{off:?}");
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn identity_commands_per_profile() {
    for profile in Profile::ALL {
        let (handle, mut c) = start(profile).await;
        ready(profile, &mut c).await;
        let id = sim::SimIdentity::default();
        assert!(c.cmd("AT+CGSN").await.contains(&id.imei));
        assert!(c.cmd("AT+GSN").await.contains(&id.imei));
        assert!(c.cmd("AT+CIMI").await.contains(&id.imsi));
        let model = c.cmd("AT+CGMM").await;
        let ati = c.cmd("ATI").await;
        let (iccid_cmd, others): (&str, [&str; 2]) = match profile {
            Profile::QuectelEc25 => ("AT+QCCID", ["AT+CCID", "AT^ICCID?"]),
            Profile::Sim800 => ("AT+CCID", ["AT+QCCID", "AT^ICCID?"]),
            Profile::HuaweiE173 => ("AT^ICCID?", ["AT+QCCID", "AT+CCID"]),
        };
        let iccid = c.cmd(iccid_cmd).await;
        assert!(
            iccid.contains(&id.iccid) && iccid.ends_with("\r\nOK\r\n"),
            "{profile}: {iccid:?}"
        );
        for other in others {
            assert!(
                c.cmd(other).await.ends_with("\r\nERROR\r\n"),
                "{profile} answers {other}"
            );
        }
        match profile {
            Profile::QuectelEc25 => {
                assert!(model.contains("EC25"));
                assert!(iccid.contains("+QCCID: "));
                assert!(c.cmd("AT+CEREG?").await.contains("+CEREG: 0,1"));
                assert!(
                    c.cmd("AT+COPS?")
                        .await
                        .contains("+COPS: 0,0,\"CHINA MOBILE\",7")
                );
            }
            Profile::Sim800 => {
                assert!(model.contains("SIM800"));
                assert!(
                    iccid.split("\r\n").any(|l| l == id.iccid),
                    "bare ICCID line: {iccid:?}"
                );
                assert!(c.cmd("AT+CEREG?").await.ends_with("\r\nERROR\r\n"));
                assert!(
                    c.cmd("AT+COPS?")
                        .await
                        .contains("+COPS: 0,0,\"CHINA MOBILE\"\r\n")
                );
            }
            Profile::HuaweiE173 => {
                assert!(
                    ati.contains("Manufacturer: huawei") && ati.contains(&id.imei),
                    "{ati:?}"
                );
                assert!(iccid.contains("^ICCID: "));
            }
        }
        assert!(c.cmd("AT+COPS=3,2").await.ends_with("OK\r\n"));
        assert!(c.cmd("AT+COPS?").await.contains("\"46000\""));
        assert!(c.cmd("AT+CREG=2").await.ends_with("OK\r\n"));
        assert!(c.cmd("AT+CREG?").await.contains("+CREG: 2,1,\"1A2B\""));
        let csca = c.cmd("AT+CSCA?").await;
        assert!(csca.contains("+CSCA: \"+8613800100500\",145"), "{csca:?}");
        c.cmd("AT+CSCS=\"UCS2\"").await;
        // In UCS2 the SMSC comes back as UCS2 hex, as real modems print it.
        assert!(c.cmd("AT+CSCA?").await.contains("\"002B0038003600310033"));
        assert!(c.cmd("AT+FOO").await.ends_with("\r\nERROR\r\n"));
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn cnmi_modes_accepted_per_profile() {
    // (setting, accepted by quectel, sim800, huawei); a rejection is +CMS ERROR: 303 except on
    // the Huawei stick, which says plain ERROR.
    let table = [
        ("2,1,0,0,0", [true, true, true]),
        ("2,2,0,0,0", [true, true, true]),
        ("2,1,0,1,0", [true, true, false]),
        ("2,1,0,2,0", [true, false, true]),
        ("3,1,0,0,0", [false, true, false]),
        ("2,1,1,0,0", [false, false, false]),
    ];
    for (i, profile) in Profile::ALL.into_iter().enumerate() {
        let (handle, mut c) = start(profile).await;
        ready(profile, &mut c).await;
        let test = c.cmd("AT+CNMI=?").await;
        assert!(test.contains("+CNMI: ("), "{test:?}");
        for (setting, accepted) in table {
            let r = c.cmd(&format!("AT+CNMI={setting}")).await;
            if accepted[i] {
                assert!(
                    r.ends_with("\r\nOK\r\n"),
                    "{profile} rejected {setting}: {r:?}"
                );
                let now = c.cmd("AT+CNMI?").await;
                assert!(now.contains(&format!("+CNMI: {setting}")), "{now:?}");
            } else if profile == Profile::HuaweiE173 {
                assert!(
                    r.ends_with("\r\nERROR\r\n"),
                    "{profile} accepted {setting}: {r:?}"
                );
            } else {
                assert!(
                    r.ends_with("+CMS ERROR: 303\r\n"),
                    "{profile} accepted {setting}: {r:?}"
                );
            }
        }
        handle.shutdown().await;
    }
}

/// CNMI that routes status reports on each profile: +CDS direct, or +CDSI on the stick.
fn report_cnmi(profile: Profile) -> &'static str {
    match profile {
        Profile::HuaweiE173 => "AT+CNMI=2,1,0,2,0",
        _ => "AT+CNMI=2,1,0,1,0",
    }
}

#[tokio::test]
async fn send_single_and_chinese_multipart_with_status_reports() {
    for profile in Profile::ALL {
        let mut options = SimOptions::new(profile);
        options.report_status.insert("13800138001".into(), 0x46);
        let handle = sim::spawn(options).await.expect("spawn");
        let mut c = Client::open(&handle.device_path()).await;
        ready(profile, &mut c).await;
        assert!(c.cmd(report_cnmi(profile)).await.ends_with("OK\r\n"));
        let opts = SubmitOptions {
            status_report: true,
            ..Default::default()
        };

        let one = pdu::encode_submit("+8613800138000", "电费通知 test", &opts).expect("encode");
        assert_eq!(one.len(), 1);
        let r = c.send_pdu(&one[0].hex(), one[0].tpdu_len).await;
        let mr: u8 = field(&r, "+CMGS:")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{r:?}"));

        // A status report for that reference arrives, routed per CNMI.
        let from = c.mark();
        let report_pdu = if profile == Profile::HuaweiE173 {
            let urc = c.expect(from, "\r\n+CDSI: ").await;
            let index = field(&urc, "+CDSI: \"SM\",")
                .expect("CDSI index")
                .to_string();
            let read = c.cmd(&format!("AT+CMGR={index}")).await;
            line_after(&read, "+CMGR:").expect("report PDU").to_string()
        } else {
            let urc = c
                .read_until(from, |t| {
                    line_after(t, "+CDS:").is_some_and(|l| !l.is_empty())
                })
                .await;
            line_after(&urc, "+CDS:").unwrap_or_default().to_string()
        };
        match pdu::decode_hex(&report_pdu) {
            Ok(Pdu::StatusReport(sr)) => {
                assert_eq!(sr.message_ref, mr, "{profile}");
                assert_eq!(sr.status, 0);
                assert_eq!(sr.recipient.value, "8613800138000");
            }
            other => panic!("{profile}: not a status report: {other:?}"),
        }

        // A Chinese text of three segments to a number whose reports say "failed".
        let reports_from = c.mark();
        let long: String = "国网供电公司提醒：计划停电通知，请做好准备。".repeat(7);
        let segs = pdu::encode_submit("13800138001", &long, &opts).expect("encode");
        assert!(segs.len() >= 3, "{} segments", segs.len());
        for s in &segs {
            let r = c.send_pdu(&s.hex(), s.tpdu_len).await;
            assert!(r.contains("+CMGS: "), "{profile}: {r:?}");
        }
        assert!(
            handle
                .wait_sent(1 + segs.len(), Duration::from_secs(10))
                .await
        );
        let messages = handle.sent_messages();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0].text, "电费通知 test");
        assert_eq!(messages[0].to, "+8613800138000");
        assert_eq!(messages[1].text, long);
        assert_eq!(messages[1].received as usize, segs.len());
        let sent = handle.sent();
        assert!(sent.iter().all(|s| s.status_report_requested));
        assert_eq!(sent[0].pdu_hex, one[0].hex());
        // Every segment's report says 0x46 (permanent failure) for that recipient.
        if profile != Profile::HuaweiE173 {
            let text = c
                .read_until(reports_from, |t| t.matches("+CDS:").count() >= segs.len())
                .await;
            assert!(
                text.split("\r\n")
                    .filter_map(|l| pdu::decode_hex(l).ok())
                    .all(|p| match p {
                        Pdu::StatusReport(sr) => sr.status == 0x46,
                        _ => false,
                    })
            );
        }
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn bad_pdus_and_escape_get_modem_answers() {
    let (handle, mut c) = start(Profile::QuectelEc25).await;
    ready(Profile::QuectelEc25, &mut c).await;
    let seg =
        &pdu::encode_submit("13800138000", "hello", &SubmitOptions::default()).expect("encode")[0];
    // Length that does not match the PDU.
    let r = c.send_pdu(&seg.hex(), seg.tpdu_len + 1).await;
    assert!(r.contains("+CMS ERROR: 304"), "{r:?}");
    // Not hex.
    let r = c.send_pdu("00ZZ", 1).await;
    assert!(r.contains("+CMS ERROR: 304"), "{r:?}");
    // Decodes, but is a DELIVER, not a SUBMIT.
    let deliver = pdu::encode_deliver("10086", "hi", &deliver_options()).expect("deliver");
    let smsc = deliver[0][0] as usize;
    let hex: String = deliver[0].iter().map(|b| format!("{b:02X}")).collect();
    let r = c.send_pdu(&hex, deliver[0].len() - 1 - smsc).await;
    assert!(r.contains("+CMS ERROR: 304"), "{r:?}");
    // ESC cancels the entry.
    let prompt = c.cmd(&format!("AT+CMGS={}", seg.tpdu_len)).await;
    assert!(prompt.ends_with("> "));
    let from = c.mark();
    c.write(b"0011\x1b").await;
    c.expect(from, "\r\nOK\r\n").await;
    assert!(handle.sent().is_empty());
    // Out-of-range length.
    assert!(c.cmd("AT+CMGS=0").await.contains("+CMS ERROR: 304"));
    // Still healthy.
    let r = c.send_pdu(&seg.hex(), seg.tpdu_len).await;
    assert!(r.contains("+CMGS: 0"), "{r:?}");
    handle.shutdown().await;
}

fn deliver_options() -> pdu::DeliverOptions {
    pdu::DeliverOptions {
        smsc: Some("+8613800100500".into()),
        timestamp: chrono::DateTime::parse_from_rfc3339("2026-11-28T09:30:00+08:00").expect("ts"),
        concat_ref: 7,
        concat_16bit: false,
    }
}

#[tokio::test]
async fn inbound_stored_read_listed_deleted() {
    for profile in Profile::ALL {
        let (handle, mut c) = start(profile).await;
        ready(profile, &mut c).await;
        assert!(c.cmd("AT+CNMI=2,1,0,0,0").await.ends_with("OK\r\n"));
        let cpms = c.cmd("AT+CPMS=\"SM\",\"SM\",\"SM\"").await;
        assert!(cpms.contains("+CPMS: 0,"), "{cpms:?}");
        let from = c.mark();
        handle.inject_sms("+8613912345678", "查询电费");
        let urc = c.expect(from, "+CMTI: \"SM\",").await;
        let index: usize = field(&urc, "+CMTI: \"SM\",")
            .and_then(|v| v.parse().ok())
            .expect("index");
        let base = if profile == Profile::Sim800 { 1 } else { 0 };
        assert_eq!(index, base, "{profile}: first index");
        assert_eq!(handle.stored(), 1);

        let read = c.cmd(&format!("AT+CMGR={index}")).await;
        assert!(read.contains("+CMGR: 0,,"), "unread first: {read:?}");
        match pdu::decode_hex(line_after(&read, "+CMGR:").unwrap_or_default()) {
            Ok(Pdu::Deliver(d)) => {
                assert_eq!(d.body, Body::Text("查询电费".into()));
                assert_eq!(d.sender.to_display(), "+8613912345678");
            }
            other => panic!("{profile}: {other:?} in {read:?}"),
        }
        assert!(
            c.cmd(&format!("AT+CMGR={index}"))
                .await
                .contains("+CMGR: 1,,"),
            "read after reading"
        );

        // A long Chinese SMS arrives in parts; AT+CMGL=4 lists all of them.
        let long = "您好，您的电费账单已出账，本期应缴电费256.80元。".repeat(4);
        let from = c.mark();
        handle.inject_sms("95598", &long);
        c.read_until(from, |t| t.matches("+CMTI:").count() >= 2)
            .await;
        let list = c.cmd("AT+CMGL=4").await;
        let parts: Vec<_> = list
            .split("\r\n")
            .filter_map(|l| pdu::decode_hex(l).ok())
            .filter_map(|p| match p {
                Pdu::Deliver(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(parts.len(), handle.stored(), "{list:?}");
        let text: String = parts
            .iter()
            .filter(|d| d.concat.is_some())
            .map(|d| match &d.body {
                Body::Text(t) => t.clone(),
                Body::Binary(_) => String::new(),
            })
            .collect();
        assert_eq!(text, long);

        assert!(c.cmd(&format!("AT+CMGD={index}")).await.ends_with("OK\r\n"));
        assert_eq!(handle.stored(), parts.len() - 1);
        assert!(c.cmd("AT+CMGR=999").await.contains("+CMS ERROR: 321"));
        assert!(c.cmd("AT+CMGD=0,4").await.ends_with("OK\r\n"));
        assert_eq!(handle.stored(), 0);
        assert!(c.cmd("AT+CMGL=4").await.ends_with("\r\nOK\r\n"));
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn direct_delivery_needs_cnma_in_phase_2_plus() {
    let (handle, mut c) = start(Profile::QuectelEc25).await;
    ready(Profile::QuectelEc25, &mut c).await;
    assert!(c.cmd("AT+CSMS=1").await.contains("+CSMS: 1,1,1"));
    assert!(c.cmd("AT+CNMI=2,2,0,0,0").await.ends_with("OK\r\n"));
    let from = c.mark();
    handle.inject_sms("10086", "direct");
    let urc = c
        .read_until(from, |t| {
            line_after(t, "+CMT:").is_some_and(|l| !l.is_empty())
        })
        .await;
    match pdu::decode_hex(line_after(&urc, "+CMT:").unwrap_or_default()) {
        Ok(Pdu::Deliver(d)) => assert_eq!(d.body, Body::Text("direct".into())),
        other => panic!("{other:?}"),
    }
    assert_eq!(handle.stored(), 0, "+CMT is not stored");
    assert!(c.cmd("AT+CNMA").await.ends_with("\r\nOK\r\n"));
    assert!(c.cmd("AT+CNMA").await.contains("+CMS ERROR: 340"));
    handle.shutdown().await;
}

#[tokio::test]
async fn pin_is_asked_and_wrong_pins_lock_the_card() {
    let mut options = SimOptions::new(Profile::QuectelEc25);
    options.pin = Some("1234".into());
    let handle = sim::spawn(options.clone()).await.expect("spawn");
    let mut c = Client::open(&handle.device_path()).await;
    c.expect(0, "+CPIN: SIM PIN").await;
    c.sync().await;
    c.cmd("AT+CMEE=1").await;
    assert!(c.cmd("AT+CPIN?").await.contains("+CPIN: SIM PIN"));
    assert!(c.cmd("AT+CIMI").await.contains("+CME ERROR: 11"));
    assert!(c.cmd("AT+CPIN=\"0000\"").await.contains("+CME ERROR: 16"));
    let from = c.mark();
    assert!(c.cmd("AT+CPIN=\"1234\"").await.contains("OK"));
    c.expect(from, "+QIND: SMS DONE").await;
    assert!(c.cmd("AT+CIMI").await.contains("460001234567890"));
    handle.shutdown().await;

    let handle = sim::spawn(options).await.expect("spawn");
    let mut c = Client::open(&handle.device_path()).await;
    c.expect(0, "+CPIN: SIM PIN").await;
    c.sync().await;
    c.cmd("AT+CMEE=2").await;
    for _ in 0..3 {
        assert!(
            c.cmd("AT+CPIN=9999")
                .await
                .contains("+CME ERROR: incorrect password")
        );
    }
    assert!(c.cmd("AT+CPIN?").await.contains("+CPIN: SIM PUK"));
    assert!(
        c.cmd("AT+CPIN=1234")
            .await
            .contains("+CME ERROR: incorrect password")
    );
    assert!(
        c.cmd("AT+CIMI")
            .await
            .contains("+CME ERROR: SIM PUK required")
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn line_noise_and_overlong_lines_do_not_break_the_parser() {
    let (handle, mut c) = start(Profile::Sim800).await;
    ready(Profile::Sim800, &mut c).await;
    let mut noise = Vec::with_capacity(100_000);
    let mut x: u32 = 12345;
    for _ in 0..100_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let b = (x >> 16) as u8;
        // Keep Ctrl-Z / CR out so the noise stays on one (overlong) line.
        noise.push(if b == b'\r' || b == 0x1a { b'x' } else { b });
    }
    c.write(&noise).await;
    c.write(b"\r").await;
    c.sync().await;
    // An overlong command line is answered ERROR once its CR arrives, and forgotten.
    let r = c.cmd(&format!("AT+CSCA=\"{}\"", "1".repeat(2000))).await;
    assert!(
        r.ends_with("\r\nERROR\r\n"),
        "{:?}",
        &r[r.len().saturating_sub(40)..]
    );
    assert!(c.cmd("AT").await.ends_with("\r\nOK\r\n"));
    assert!(c.cmd("AT+CMGF=0;+CMEE=2;+CMEE?").await.contains("+CMEE: 2"));
    handle.shutdown().await;
}

/// A technician at a terminal uses text mode: the simulator answers it too.
#[tokio::test]
async fn text_mode_send_and_read() {
    let (handle, mut c) = start(Profile::Sim800).await;
    ready(Profile::Sim800, &mut c).await;
    assert!(c.cmd("AT+CMGF=1").await.ends_with("OK\r\n"));
    assert!(c.cmd("AT+CSCS=\"GSM\"").await.ends_with("OK\r\n"));
    let prompt = c.cmd("AT+CMGS=\"13800138000\"").await;
    assert!(prompt.ends_with("> "), "{prompt:?}");
    // CR inside the text starts a new line and a new prompt.
    let from = c.mark();
    c.write(b"line one\r").await;
    c.expect(from, "> ").await;
    let from = c.mark();
    c.write(b"line two\x1a").await;
    let r = c.expect(from, "\r\nOK\r\n").await;
    assert!(r.contains("+CMGS: 0"), "{r:?}");
    assert_eq!(handle.sent()[0].text, "line one\nline two");
    assert_eq!(handle.sent()[0].to, "13800138000");

    // In UCS2 the number and the text are UCS2 hex.
    c.cmd("AT+CSCS=\"UCS2\"").await;
    let prompt = c.cmd("AT+CMGS=\"00310030003000380036\"").await;
    assert!(prompt.ends_with("> "), "{prompt:?}");
    let from = c.mark();
    c.write(b"67E58BE2\x1a").await;
    assert!(c.expect(from, "\r\nOK\r\n").await.contains("+CMGS: 1"));
    assert_eq!(
        (handle.sent()[1].to.as_str(), handle.sent()[1].text.as_str()),
        ("10086", "查询")
    );

    let from = c.mark();
    handle.inject_sms("+8613912345678", "你好");
    c.expect(from, "+CMTI: \"SM\",1").await;
    c.cmd("AT+CSCS=\"GSM\"").await;
    let list = c.cmd("AT+CMGL=\"ALL\"").await;
    assert!(
        list.contains("+CMGL: 1,\"REC UNREAD\",\"+8613912345678\",,\""),
        "{list:?}"
    );
    assert!(
        list.contains("+32\"\r\n4F60597D\r\n"),
        "UCS2 text shown as hex: {list:?}"
    );
    let read = c.cmd("AT+CMGR=1").await;
    assert!(
        read.contains("+CMGR: \"REC READ\",\"+8613912345678\""),
        "{read:?}"
    );
    assert!(c.cmd("AT+CMGL=4").await.contains("+CMS ERROR: 305"));
    handle.shutdown().await;
}
