//! Every fault of the simulated modem, seen from the driver's side of the pty.

mod sim_common;

use gridsms::pdu::{self, SubmitOptions};
use gridsms::sim::{self, Fault, Profile, SimHandle, SimOptions};
use sim_common::{Client, WAIT, field};
use std::path::Path;
use std::time::Duration;

async fn ready_client(handle: &SimHandle, path: &Path) -> Client {
    let mut c = Client::open(path).await;
    let ready = match handle.profile() {
        Profile::QuectelEc25 => "+QIND: SMS DONE",
        Profile::Sim800 => "SMS Ready",
        Profile::HuaweiE173 => "^MODE:5,4",
    };
    c.expect(0, ready).await;
    c.sync().await;
    c.cmd("ATE0").await;
    c.cmd("AT+CMGF=0").await;
    c
}

fn hello() -> pdu::EncodedSegment {
    pdu::encode_submit("13800138000", "停电通知", &SubmitOptions::default())
        .expect("encode")
        .remove(0)
}

#[tokio::test]
async fn cms_error_on_the_next_n_sends() {
    let mut options = SimOptions::new(Profile::Sim800);
    options.faults = vec![Fault::CmsError { code: 38, count: 1 }];
    let handle = sim::spawn(options).await.expect("spawn");
    let mut c = ready_client(&handle, &handle.device_path()).await;
    let seg = hello();
    // The fault given at start applies first, then the injected one.
    handle.inject_fault(Fault::CmsError {
        code: 500,
        count: 2,
    });
    assert!(
        c.send_pdu(&seg.hex(), seg.tpdu_len)
            .await
            .contains("+CMS ERROR: 38")
    );
    assert!(
        c.send_pdu(&seg.hex(), seg.tpdu_len)
            .await
            .contains("+CMS ERROR: 500")
    );
    c.cmd("AT+CMEE=2").await;
    assert!(
        c.send_pdu(&seg.hex(), seg.tpdu_len)
            .await
            .contains("+CMS ERROR: unknown error")
    );
    let ok = c.send_pdu(&seg.hex(), seg.tpdu_len).await;
    assert!(ok.contains("+CMGS: 0"), "{ok:?}");
    assert_eq!(handle.sent().len(), 1, "refused sends are not recorded");
    handle.shutdown().await;
}

#[tokio::test]
async fn registration_lost_then_back() {
    let handle = sim::spawn(SimOptions::new(Profile::QuectelEc25))
        .await
        .expect("spawn");
    let mut c = ready_client(&handle, &handle.device_path()).await;
    c.cmd("AT+CREG=1").await;
    c.cmd("AT+CEREG=1").await;
    assert!(c.cmd("AT+CREG?").await.contains("+CREG: 1,1"));
    let from = c.mark();
    handle.inject_fault(Fault::RegistrationLost {
        duration: Duration::from_secs(2),
    });
    c.expect(from, "\r\n+CREG: 2\r\n").await;
    c.expect(from, "\r\n+CEREG: 2\r\n").await;
    assert!(c.cmd("AT+CREG?").await.contains("+CREG: 1,2"));
    assert!(c.cmd("AT+CSQ").await.contains("+CSQ: 99,99"));
    assert!(c.cmd("AT+COPS?").await.contains("+COPS: 0\r\n"));
    let seg = hello();
    let r = c.send_pdu(&seg.hex(), seg.tpdu_len).await;
    assert!(r.contains("+CMS ERROR: 331"), "{r:?}");
    // Inbound SMS wait in the network while the modem is off the air.
    handle.inject_sms("10086", "held");
    c.expect(from, "\r\n+CREG: 1\r\n").await;
    c.expect(from, "+CMTI: \"SM\",0").await;
    assert!(c.cmd("AT+CREG?").await.contains("+CREG: 1,1"));
    assert!(
        c.send_pdu(&seg.hex(), seg.tpdu_len)
            .await
            .contains("+CMGS: ")
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn silent_modem_answers_nothing_then_recovers() {
    // Silent from power-on, so the silence is certain to cover the first command.
    let mut options = SimOptions::new(Profile::QuectelEc25);
    options.faults = vec![Fault::Silent {
        duration: Duration::from_secs(5),
    }];
    let handle = sim::spawn(options).await.expect("spawn");
    let mut c = Client::open(&handle.device_path()).await;
    c.write(b"AT\r").await;
    let _ = c.read_some(Duration::from_millis(500)).await;
    assert_eq!(c.received, "", "a silent modem printed something");
    c.sync().await;
    assert!(c.cmd("AT+CPIN?").await.contains("+CPIN: READY"));
    handle.shutdown().await;
}

#[tokio::test]
async fn garbage_burst_then_normal_service() {
    let handle = sim::spawn(SimOptions::new(Profile::HuaweiE173))
        .await
        .expect("spawn");
    let mut c = ready_client(&handle, &handle.device_path()).await;
    c.cmd("AT^CURC=0").await;
    let before = c.received.len();
    handle.inject_fault(Fault::Garbage { bytes: 4096 });
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut got = 0;
    while got < 4096 && tokio::time::Instant::now() < deadline {
        got += c.read_some(Duration::from_millis(200)).await.expect("port");
    }
    // Lossy decoding may merge invalid bytes; the count of raw bytes read is what matters.
    assert!(got >= 4096, "only {got} bytes of garbage");
    assert!(c.received.len() > before);
    c.sync().await;
    assert!(c.cmd("AT+CSQ").await.contains("+CSQ: 18,99"));
    handle.shutdown().await;
}

#[tokio::test]
async fn unplug_drops_the_port_and_a_new_one_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("modem-1");
    let handle = sim::spawn_linked(SimOptions::new(Profile::QuectelEc25), &link)
        .await
        .expect("spawn");
    assert_eq!(handle.device_path(), link);
    let old_pty = handle.pty_path();
    assert_eq!(std::fs::read_link(&link).expect("link"), old_pty);
    let mut c = ready_client(&handle, &link).await;
    handle.inject_sms("10086", "before unplug");
    c.expect(0, "+CMTI:").await;

    handle.inject_fault(Fault::Unplug {
        down_for: Duration::from_millis(800),
    });
    // The open side sees the hangup: EOF or EIO, never more answers.
    let deadline = tokio::time::Instant::now() + WAIT;
    let gone = loop {
        if let Err(e) = c.try_write(b"AT\r").await {
            break Some(e.to_string());
        }
        match c.read_some(Duration::from_millis(100)).await {
            Err(e) => break Some(e),
            Ok(_) if tokio::time::Instant::now() > deadline => break None,
            Ok(_) => {}
        }
    };
    assert!(gone.is_some(), "port still alive after unplug");
    drop(c);

    // The link comes back (pointing at a fresh pty) and the modem boots again.
    let mut c = Client::open(&link).await;
    c.expect(0, "RDY").await;
    c.expect(0, "+QIND: SMS DONE").await;
    c.sync().await;
    assert_eq!(std::fs::read_link(&link).expect("link"), handle.pty_path());
    // Settings were reset by the reboot; the SIM storage was not.
    assert!(c.cmd("AT+CMGL=4").await.contains("+CMGL: 0,"));
    assert_eq!(handle.stored(), 1);
    handle.shutdown().await;
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link left behind"
    );
}

#[tokio::test]
async fn cfun_reset_reboots_like_a_usb_reset() {
    let handle = sim::spawn(SimOptions::new(Profile::Sim800))
        .await
        .expect("spawn");
    assert_eq!(handle.port_generation(), 1);
    let mut c = ready_client(&handle, &handle.device_path()).await;
    c.cmd("AT+CMEE=2").await;
    let from = c.mark();
    c.write(b"AT+CFUN=1,1\r").await;
    c.expect(from, "\r\nOK\r\n").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while c.read_some(Duration::from_millis(100)).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "port never dropped");
    }
    drop(c);
    // Without a link the new pty has to be found through the handle.
    let deadline = tokio::time::Instant::now() + WAIT;
    while handle.port_generation() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no new pty");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = ready_client(&handle, &handle.device_path()).await;
    assert!(
        c.cmd("AT+CMEE?").await.contains("+CMEE: 0"),
        "settings reset by the reboot"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn storage_full_holds_inbound_until_space_is_freed() {
    let handle = sim::spawn(SimOptions::new(Profile::QuectelEc25))
        .await
        .expect("spawn");
    let mut c = ready_client(&handle, &handle.device_path()).await;
    c.cmd("AT+CMEE=1").await;
    let from = c.mark();
    handle.inject_fault(Fault::StorageFull);
    c.expect(from, "+QIND: \"smsfull\",\"SM\"").await;
    let cpms = c.cmd("AT+CPMS?").await;
    assert!(cpms.contains("+CPMS: \"SM\",50,50"), "{cpms:?}");
    let seg = hello();
    let prompt = c.cmd(&format!("AT+CMGW={}", seg.tpdu_len)).await;
    assert!(prompt.ends_with("> "));
    let mark = c.mark();
    c.write(format!("{}\x1a", seg.hex()).as_bytes()).await;
    c.expect(mark, "+CMS ERROR: 322").await;

    handle.inject_sms("10086", "waiting for room");
    // Nothing is stored while full; the URC below only comes after the delete.
    let mark = c.mark();
    assert!(c.cmd("AT+CMGL=4").await.ends_with("\r\nOK\r\n"));
    assert!(!c.received[mark..].contains("+CMTI"));
    assert_eq!(handle.stored(), 0);
    c.cmd("AT+CMGD=0").await;
    c.expect(mark, "+CMTI: \"SM\",0").await;
    assert_eq!(handle.stored(), 1);
    let w = c.cmd(&format!("AT+CMGW={}", seg.tpdu_len)).await;
    assert!(w.ends_with("> "));
    let mark = c.mark();
    c.write(format!("{}\x1a", seg.hex()).as_bytes()).await;
    let r = c.expect(mark, "\r\nOK\r\n").await;
    assert_eq!(field(&r, "+CMGW:"), Some("1"));
    handle.shutdown().await;
}

#[tokio::test]
async fn slow_prompt_still_leads_to_a_send() {
    let handle = sim::spawn(SimOptions::new(Profile::HuaweiE173))
        .await
        .expect("spawn");
    let mut c = ready_client(&handle, &handle.device_path()).await;
    c.cmd("AT^CURC=0").await;
    handle.inject_fault(Fault::SlowPrompt {
        delay: Duration::from_millis(700),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seg = hello();
    let r = c.send_pdu(&seg.hex(), seg.tpdu_len).await;
    assert!(r.contains("+CMGS: 0"), "{r:?}");
    assert!(handle.wait_sent(1, WAIT).await);
    assert_eq!(handle.sent()[0].text, "停电通知");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_pty_nobody_reads_does_not_wedge_the_modem() {
    let handle = sim::spawn(SimOptions::new(Profile::HuaweiE173))
        .await
        .expect("spawn");
    // Far more than the pty buffers hold, with nobody reading: the writes time out and the
    // bytes are dropped, as a UART drops them with no host attached.
    handle.inject_fault(Fault::Garbage { bytes: 256 * 1024 });
    handle.inject_sms("10086", "still alive");
    let deadline = tokio::time::Instant::now() + WAIT;
    while handle.stored() < 1 {
        assert!(tokio::time::Instant::now() < deadline, "simulator wedged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = Client::open(&handle.device_path()).await;
    c.sync().await;
    c.cmd("AT+CMGF=0").await;
    assert!(c.cmd("AT+CMGL=4").await.contains("+CMGL: 0,0,,"));
    handle.shutdown().await;
}

#[tokio::test]
async fn the_link_never_replaces_a_real_file_but_does_replace_a_stale_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("precious");
    std::fs::write(&file, "keep me").expect("write");
    let err = sim::spawn_linked(SimOptions::new(Profile::Sim800), &file).await;
    assert!(matches!(err, Err(sim::SimError::Link { .. })), "{err:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");

    let stale = dir.path().join("stale");
    std::os::unix::fs::symlink("/dev/pts/999999", &stale).expect("symlink");
    let handle = sim::spawn_linked(SimOptions::new(Profile::Sim800), &stale)
        .await
        .expect("spawn");
    assert_eq!(std::fs::read_link(&stale).expect("link"), handle.pty_path());
    handle.shutdown().await;
}

#[tokio::test]
async fn a_raw_pdu_is_delivered_as_is() {
    let handle = sim::spawn(SimOptions::new(Profile::QuectelEc25))
        .await
        .expect("spawn");
    let mut c = ready_client(&handle, &handle.device_path()).await;
    let from = c.mark();
    // Truncated on purpose: the simulator stores what the network sent; the driver must cope.
    handle.inject_pdu(vec![0x00, 0x04, 0x0B, 0x91]);
    c.expect(from, "+CMTI: \"SM\",0").await;
    let read = c.cmd("AT+CMGR=0").await;
    assert!(read.contains("+CMGR: 0,,3\r\n00040B91\r\n"), "{read:?}");
    handle.shutdown().await;
}
