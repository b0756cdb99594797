//! Actor unit tests on in-memory duplex pipes against a scripted modem. Time is paused, so
//! timeouts of tens of seconds run instantly and deterministically.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{Notify, mpsc};

use super::*;
use crate::at::DeviceError;
use crate::pdu::EncodedSegment;

const DELIVER_HEX: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
const REPORT_HEX: &str = "0006D60B911326880736F4111011719551401110117195714000";

#[derive(Default)]
struct Fake {
    echo: bool,
    /// Echo stays on whatever ATE0 says (some modems ignore it).
    sticky_echo: bool,
    pin: Option<&'static str>,
    pin_ok: bool,
    cpin_attempts: u32,
    commands: Vec<String>,
    pdus: Vec<String>,
    next_mr: u8,
    cms_on_send: VecDeque<u16>,
    silent_after_pdu: bool,
    silent: bool,
    urc_before_prompt: Option<String>,
    stored: BTreeMap<u32, String>,
    unplugged: bool,
    inbox: VecDeque<String>,
    reject_cnmi: Vec<&'static str>,
    /// PDU number (0-based, over the fake's life) → CMS error for it.
    fail_at: BTreeMap<usize, u16>,
    /// Appended to the next command's reply, in the same write.
    glue: Option<String>,
    /// Phase 2+ message service: direct deliveries must be acknowledged with +CNMA.
    csms_phase2: bool,
}

impl Fake {
    fn on_command(&mut self, cmd: &str) -> (Option<String>, bool) {
        self.commands.push(cmd.to_string());
        if self.silent {
            return (None, false);
        }
        let echo = if self.echo {
            format!("{cmd}\r")
        } else {
            String::new()
        };
        let up = cmd.to_ascii_uppercase();
        let ok = |body: &str| Some(format!("{echo}\r\n{body}\r\n\r\nOK\r\n"));
        let err = |body: &str| Some(format!("{echo}\r\n{body}\r\n"));
        let reply = match up.as_str() {
            "AT" | "AT+CMEE=1" | "AT+CMGF=0" | "AT+COPS=3,0" | "AT+CNUM" | "AT+CNMA" => {
                Some(format!("{echo}\r\nOK\r\n"))
            }
            "ATE0" => {
                let r = Some(format!("{echo}\r\nOK\r\n"));
                self.echo = self.sticky_echo;
                r
            }
            "AT+CPIN?" => ok(if self.pin.is_some() && !self.pin_ok {
                "+CPIN: SIM PIN"
            } else {
                "+CPIN: READY"
            }),
            "AT+CGMI" => ok("Quectel"),
            "AT+CGMM" => ok("EC25"),
            "AT+CGMR" => ok("Revision: EC25EFAR06A09M4G"),
            "AT+CGSN" => ok("860000000000001"),
            "AT+CIMI" => ok("460001234567890"),
            "AT+QCCID" => ok("+QCCID: 89860012345678901234"),
            "AT+CSCA?" => ok("+CSCA: \"+8613800100500\",145"),
            "AT+CSMS?" => ok(if self.csms_phase2 {
                "+CSMS: 1,1,1,1"
            } else {
                "+CSMS: 0,1,1,1"
            }),
            "AT+CREG?" => ok("+CREG: 0,1"),
            "AT+CEREG?" => ok("+CEREG: 0,1"),
            "AT+COPS?" => ok("+COPS: 0,0,\"CHINA MOBILE\",7"),
            "AT+CSQ" => ok("+CSQ: 20,99"),
            "AT+CMGL=4" => {
                let body: Vec<String> = self
                    .stored
                    .iter()
                    .map(|(i, h)| format!("+CMGL: {i},0,,{}\r\n{h}", h.len() / 2 - 8))
                    .collect();
                if body.is_empty() {
                    Some(format!("{echo}\r\nOK\r\n"))
                } else {
                    ok(&body.join("\r\n"))
                }
            }
            _ if up.starts_with("AT+CPMS=") => {
                ok(&format!("+CPMS: {0},50,{0},50,{0},50", self.stored.len()))
            }
            _ if up.starts_with("AT+CNMI=") => {
                if self.reject_cnmi.iter().any(|m| up.ends_with(m)) {
                    err("+CMS ERROR: 303")
                } else {
                    Some(format!("{echo}\r\nOK\r\n"))
                }
            }
            _ if up.starts_with("AT+CPIN=") => {
                self.cpin_attempts += 1;
                if self.pin.is_some_and(|p| up.contains(p)) {
                    self.pin_ok = true;
                    Some(format!("{echo}\r\nOK\r\n"))
                } else {
                    err("+CME ERROR: 16")
                }
            }
            _ if up.starts_with("AT+CMGS=") => {
                let urc = self.urc_before_prompt.take().unwrap_or_default();
                return (Some(format!("{echo}{urc}\r\n> ")), true);
            }
            _ if up.starts_with("AT+CMGR=") => {
                let idx: u32 = up[8..].parse().unwrap_or(9999);
                match self.stored.get(&idx) {
                    Some(h) => ok(&format!("+CMGR: 0,,{}\r\n{h}", h.len() / 2 - 8)),
                    None => Some(format!("{echo}\r\nOK\r\n")),
                }
            }
            _ if up.starts_with("AT+CMGD=") => {
                let idx: u32 = up[8..].parse().unwrap_or(9999);
                self.stored.remove(&idx);
                Some(format!("{echo}\r\nOK\r\n"))
            }
            _ => err("ERROR"),
        };
        let glue = self.glue.take().unwrap_or_default();
        (reply.map(|r| r + &glue), false)
    }

    fn on_pdu(&mut self, hex: &str) -> Option<String> {
        self.pdus.push(hex.to_string());
        if let Some(code) = self.fail_at.remove(&(self.pdus.len() - 1)) {
            return Some(format!("\r\n+CMS ERROR: {code}\r\n"));
        }
        if let Some(code) = self.cms_on_send.pop_front() {
            return Some(format!("\r\n+CMS ERROR: {code}\r\n"));
        }
        if self.silent_after_pdu || self.silent {
            return None;
        }
        self.next_mr = self.next_mr.wrapping_add(1);
        Some(format!("\r\n+CMGS: {}\r\n\r\nOK\r\n", self.next_mr))
    }
}

#[derive(Clone)]
struct Peer {
    state: Arc<Mutex<Fake>>,
    notify: Arc<Notify>,
}

impl Peer {
    fn new(fake: Fake) -> Peer {
        Peer {
            state: Arc::new(Mutex::new(fake)),
            notify: Arc::new(Notify::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Fake) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    fn urc(&self, text: &str) {
        self.with(|f| f.inbox.push_back(text.to_string()));
        self.notify.notify_one();
    }

    fn unplug(&self) {
        self.with(|f| f.unplugged = true);
        self.notify.notify_one();
    }

    fn opener(&self) -> FnOpener<impl FnMut() -> std::io::Result<DuplexStream> + Send + 'static> {
        let peer = self.clone();
        FnOpener(move || {
            if peer.with(|f| f.unplugged) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such device",
                ));
            }
            let (ours, theirs) = tokio::io::duplex(4096);
            tokio::spawn(run_fake(peer.clone(), theirs));
            Ok(ours)
        })
    }
}

async fn run_fake(peer: Peer, mut io: DuplexStream) {
    let mut line = Vec::new();
    let mut in_pdu = false;
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            r = io.read(&mut buf) => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                for &b in &buf[..n] {
                    let reply = if in_pdu {
                        match b {
                            0x1A => {
                                in_pdu = false;
                                let hex = String::from_utf8_lossy(&line).to_string();
                                line.clear();
                                peer.with(|f| f.on_pdu(&hex))
                            }
                            0x1B => { in_pdu = false; line.clear(); None }
                            _ => { line.push(b); None }
                        }
                    } else {
                        match b {
                            b'\r' => {
                                let cmd = String::from_utf8_lossy(&line).trim().to_string();
                                line.clear();
                                if cmd.is_empty() { None } else {
                                    let (reply, pdu) = peer.with(|f| f.on_command(&cmd));
                                    in_pdu = pdu;
                                    reply
                                }
                            }
                            b'\n' => None,
                            0x1B => { line.clear(); None }
                            _ => { line.push(b); None }
                        }
                    };
                    if let Some(r) = reply && io.write_all(r.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
            _ = peer.notify.notified() => {
                if peer.with(|f| f.unplugged) { return; }
                let urcs: Vec<String> = peer.with(|f| f.inbox.drain(..).collect());
                for u in urcs {
                    if io.write_all(u.as_bytes()).await.is_err() { return; }
                }
            }
        }
    }
}

fn config() -> ModemConfig {
    let mut c = ModemConfig::new("m1", "test");
    c.reopen_backoff_min = Duration::from_millis(100);
    c.reopen_backoff_max = Duration::from_secs(2);
    c
}

fn seg(n: u8) -> EncodedSegment {
    EncodedSegment {
        pdu: vec![0x00, 0x11, 0x00, 0x0B, 0x91, n],
        tpdu_len: 5,
    }
}

async fn next_event(
    rx: &mut mpsc::Receiver<ModemEvent>,
    pred: impl Fn(&ModemEventKind) -> bool,
) -> ModemEventKind {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(600), rx.recv())
            .await
            .expect("no event within 600 s (paused time)")
            .expect("event channel closed");
        if pred(&ev.kind) {
            return ev.kind;
        }
    }
}

async fn start(
    fake: Fake,
    cfg: ModemConfig,
) -> (Peer, ModemHandle, mpsc::Receiver<ModemEvent>, ModemIdentity) {
    let peer = Peer::new(fake);
    let (tx, mut rx) = mpsc::channel(64);
    let handle = spawn_with(cfg, peer.opener(), tx);
    let id = match next_event(&mut rx, |k| matches!(k, ModemEventKind::Ready(_))).await {
        ModemEventKind::Ready(id) => id,
        _ => unreachable!(),
    };
    (peer, handle, rx, id)
}

#[tokio::test(start_paused = true)]
async fn init_reads_identity_and_batch_sends_back_to_back() {
    let (peer, handle, _rx, id) = start(
        Fake {
            echo: true,
            ..Fake::default()
        },
        config(),
    )
    .await;
    assert_eq!(id.manufacturer.as_deref(), Some("Quectel"));
    assert_eq!(id.revision.as_deref(), Some("EC25EFAR06A09M4G"));
    assert_eq!(id.imei.as_deref(), Some("860000000000001"));
    assert_eq!(id.imsi.as_deref(), Some("460001234567890"));
    assert_eq!(id.iccid.as_deref(), Some("89860012345678901234"));
    assert_eq!(id.operator.as_deref(), Some("CHINA MOBILE"));
    let status = handle.status().await.unwrap();
    assert_eq!(status.state, ModemState::Ready);
    assert_eq!(status.signal_dbm, Some(-73));
    assert!(status.registered);
    assert_eq!(status.cnmi.as_deref(), Some("2,1,0,2,0"));

    let before = peer.with(|f| f.commands.len());
    let mrs = handle.send(vec![seg(1), seg(2), seg(3)]).await.unwrap();
    assert_eq!(mrs, vec![1, 2, 3]);
    let cmds = peer.with(|f| f.commands[before..].to_vec());
    assert_eq!(
        cmds,
        vec!["AT+CMGS=5"; 3],
        "nothing but CMGS between segments"
    );
    assert_eq!(peer.with(|f| f.pdus[0].clone()), "0011000B9101");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cms_error_reports_named_error_and_class() {
    let (peer, handle, _rx, _) = start(Fake::default(), config()).await;
    peer.with(|f| f.cms_on_send.push_back(42));
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert_eq!(err.segment_index, 0);
    assert_eq!(err.failure, SendFailure::Device(DeviceError::cms(42)));
    assert_eq!(err.class, RetryClass::RetryHere);
    assert!(err.accepted.is_empty());
    assert_eq!(handle.send(vec![seg(1)]).await.unwrap(), vec![1]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn failure_mid_batch_keeps_accepted_references() {
    let (peer, handle, _rx, _) = start(Fake::default(), config()).await;
    // The second PDU of the batch is refused as an invalid PDU.
    peer.with(|f| {
        f.fail_at.insert(1, 304);
    });
    let err = handle.send(vec![seg(1), seg(2), seg(3)]).await.unwrap_err();
    assert_eq!(err.segment_index, 1);
    assert_eq!(err.accepted, vec![1]);
    assert_eq!(err.class, RetryClass::PermanentForMessage);
    assert_eq!(
        peer.with(|f| f.pdus.len()),
        2,
        "third segment not attempted"
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn send_timeout_sends_esc_resyncs_and_recovers() {
    let (peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    peer.with(|f| f.silent_after_pdu = true);
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::Timeout);
    assert_eq!(err.class, RetryClass::RetryOtherModem);
    peer.with(|f| f.silent_after_pdu = false);
    // Recovery runs after the reply; the modem is Ready again and sends.
    next_event(
        &mut rx,
        |k| matches!(k, ModemEventKind::Health(s) if s.state == ModemState::Ready),
    )
    .await;
    assert_eq!(handle.send(vec![seg(2)]).await.unwrap().len(), 1);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn prompt_timeout_is_reported() {
    let (peer, handle, _rx, _) = start(Fake::default(), config()).await;
    peer.with(|f| f.silent = true);
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::PromptTimeout);
    assert_eq!(err.class, RetryClass::RetryOtherModem);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn wrong_pin_is_entered_exactly_once() {
    let mut cfg = config();
    cfg.pin = Some("9999".into());
    let peer = Peer::new(Fake {
        pin: Some("1234"),
        ..Fake::default()
    });
    let (tx, mut rx) = mpsc::channel(64);
    let handle = spawn_with(cfg, peer.opener(), tx);
    let down = next_event(&mut rx, |k| matches!(k, ModemEventKind::Down { .. })).await;
    assert!(
        matches!(&down, ModemEventKind::Down { reason } if reason.contains("PIN")),
        "{down:?}"
    );
    // Let several reopen/re-init rounds pass.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        peer.with(|f| f
            .commands
            .iter()
            .filter(|c| c.as_str() == "AT+CPIN?")
            .count())
            >= 3
    );
    assert_eq!(peer.with(|f| f.cpin_attempts), 1);
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert!(matches!(err.failure, SendFailure::NotReady(_)));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn right_pin_unlocks() {
    let mut cfg = config();
    cfg.pin = Some("1234".into());
    let (peer, handle, _rx, _) = start(
        Fake {
            pin: Some("1234"),
            ..Fake::default()
        },
        cfg,
    )
    .await;
    assert_eq!(peer.with(|f| f.cpin_attempts), 1);
    assert_eq!(handle.status().await.unwrap().state, ModemState::Ready);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cmti_reads_emits_and_deletes_only_after_ack() {
    let (peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    peer.with(|f| f.stored.insert(4, DELIVER_HEX.to_string()));
    peer.urc("\r\n+CMTI: \"SM\",4\r\n");
    let ev = next_event(&mut rx, |k| matches!(k, ModemEventKind::Inbound { .. })).await;
    let want = crate::at::commands::hex_to_bytes(DELIVER_HEX).unwrap();
    assert_eq!(
        ev,
        ModemEventKind::Inbound {
            storage_index: Some(4),
            pdu: want
        }
    );
    assert!(
        peer.with(|f| f.stored.contains_key(&4)),
        "not deleted before ack"
    );
    handle.ack_inbound(4).await.unwrap();
    assert!(peer.with(|f| !f.stored.contains_key(&4)));
    assert!(peer.with(|f| f.commands.contains(&"AT+CMGD=4".to_string())));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn start_sweep_finds_stored_messages_and_reports() {
    let mut fake = Fake::default();
    fake.stored.insert(1, DELIVER_HEX.to_string());
    fake.stored.insert(2, REPORT_HEX.to_string());
    let peer = Peer::new(fake);
    let (tx, mut rx) = mpsc::channel(64);
    let handle = spawn_with(config(), peer.opener(), tx);
    let a = next_event(&mut rx, |k| matches!(k, ModemEventKind::Inbound { .. })).await;
    assert!(matches!(
        a,
        ModemEventKind::Inbound {
            storage_index: Some(1),
            ..
        }
    ));
    let b = next_event(&mut rx, |k| {
        matches!(k, ModemEventKind::StatusReport { .. })
    })
    .await;
    assert!(matches!(
        b,
        ModemEventKind::StatusReport {
            storage_index: Some(2),
            ..
        }
    ));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn urcs_during_a_send_are_routed() {
    let (peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    peer.with(|f| {
        f.urc_before_prompt = Some(format!(
            "\r\n+CMT: ,24\r\n{DELIVER_HEX}\r\n+CDS: 25\r\n{REPORT_HEX}\r\n"
        ))
    });
    assert_eq!(handle.send(vec![seg(1)]).await.unwrap(), vec![1]);
    let a = next_event(&mut rx, |k| matches!(k, ModemEventKind::Inbound { .. })).await;
    assert!(matches!(
        a,
        ModemEventKind::Inbound {
            storage_index: None,
            ..
        }
    ));
    let b = next_event(&mut rx, |k| {
        matches!(k, ModemEventKind::StatusReport { .. })
    })
    .await;
    assert!(matches!(
        b,
        ModemEventKind::StatusReport {
            storage_index: None,
            ..
        }
    ));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn echo_that_ignores_ate0_and_cnmi_fallback() {
    let fake = Fake {
        echo: true,
        sticky_echo: true,
        reject_cnmi: vec!["2,1,0,2,0"],
        ..Fake::default()
    };
    let (_peer, handle, _rx, id) = start(fake, config()).await;
    assert_eq!(id.imei.as_deref(), Some("860000000000001"));
    let st = handle.status().await.unwrap();
    assert_eq!(st.cnmi.as_deref(), Some("2,1,0,1,0"));
    assert_eq!(handle.send(vec![seg(1), seg(2)]).await.unwrap(), vec![1, 2]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unplug_goes_down_and_comes_back() {
    let (peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    peer.unplug();
    next_event(&mut rx, |k| matches!(k, ModemEventKind::Down { .. })).await;
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::NotReady(ModemState::Down));
    assert_eq!(err.class, RetryClass::RetryOtherModem);
    tokio::time::sleep(Duration::from_secs(5)).await;
    peer.with(|f| f.unplugged = false);
    next_event(&mut rx, |k| matches!(k, ModemEventKind::Ready(_))).await;
    assert_eq!(handle.send(vec![seg(1)]).await.unwrap().len(), 1);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn breaker_benches_a_modem_that_keeps_failing() {
    let mut cfg = config();
    cfg.breaker_threshold = 3;
    let (peer, handle, mut rx, _) = start(Fake::default(), cfg).await;
    for _ in 0..3 {
        peer.with(|f| f.cms_on_send.push_back(331));
        let err = handle.send(vec![seg(1)]).await.unwrap_err();
        assert_eq!(err.class, RetryClass::RetryOtherModem);
    }
    next_event(&mut rx, |k| matches!(k, ModemEventKind::Benched { .. })).await;
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::NotReady(ModemState::Benched));
    // After the bench period it is re-initialised and sends again.
    next_event(&mut rx, |k| matches!(k, ModemEventKind::Ready(_))).await;
    assert!(handle.send(vec![seg(1)]).await.is_ok());
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_and_later_requests_fail_cleanly() {
    let (_peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    handle.shutdown().await;
    next_event(&mut rx, |k| matches!(k, ModemEventKind::Stopped)).await;
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::Gone);
    assert!(handle.status().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn health_poll_runs_on_timer_and_reports_changes() {
    let (peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    let before = peer.with(|f| f.commands.iter().filter(|c| c.as_str() == "AT+CSQ").count());
    peer.urc("\r\n+CREG: 3\r\n");
    let ev = next_event(
        &mut rx,
        |k| matches!(k, ModemEventKind::Health(s) if !s.registered),
    )
    .await;
    assert!(
        matches!(ev, ModemEventKind::Health(s) if s.registration == Some(crate::at::commands::RegStatus::Denied))
    );
    tokio::time::sleep(Duration::from_secs(61)).await;
    let after = peer.with(|f| f.commands.iter().filter(|c| c.as_str() == "AT+CSQ").count());
    assert_eq!(after, before + 1);
    assert!(
        handle.status().await.unwrap().registered,
        "poll saw registration back"
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn urc_glued_to_a_final_result_is_handled_at_once() {
    // No timer may come to the rescue within next_event's 600 s.
    let mut cfg = config();
    cfg.health_interval = Duration::from_secs(86_400);
    cfg.sweep_interval = Duration::from_secs(86_400);
    let (peer, handle, mut rx, _) = start(Fake::default(), cfg).await;
    // The start sweep runs before the actor takes requests: after this it is done.
    handle.status().await.unwrap();
    peer.with(|f| {
        f.stored.insert(5, DELIVER_HEX.to_string());
        f.glue = Some("\r\n+CMTI: \"SM\",5\r\n".into());
    });
    handle.ack_inbound(9).await.unwrap();
    let ev = next_event(&mut rx, |k| matches!(k, ModemEventKind::Inbound { .. })).await;
    assert!(matches!(
        ev,
        ModemEventKind::Inbound {
            storage_index: Some(5),
            ..
        }
    ));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn direct_delivery_is_acknowledged_when_the_service_needs_it() {
    let (peer, handle, mut rx, _) = start(
        Fake {
            csms_phase2: true,
            ..Fake::default()
        },
        config(),
    )
    .await;
    peer.urc(&format!("\r\n+CMT: ,24\r\n{DELIVER_HEX}\r\n"));
    next_event(&mut rx, |k| {
        matches!(
            k,
            ModemEventKind::Inbound {
                storage_index: None,
                ..
            }
        )
    })
    .await;
    handle.status().await.unwrap();
    assert!(peer.with(|f| f.commands.contains(&"AT+CNMA".to_string())));
    handle.shutdown().await;

    let (peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    peer.urc(&format!("\r\n+CMT: ,24\r\n{DELIVER_HEX}\r\n"));
    next_event(&mut rx, |k| {
        matches!(
            k,
            ModemEventKind::Inbound {
                storage_index: None,
                ..
            }
        )
    })
    .await;
    handle.status().await.unwrap();
    assert!(peer.with(|f| !f.commands.contains(&"AT+CNMA".to_string())));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn error_needing_recovery_reinitialises_the_modem() {
    let (peer, handle, mut rx, _) = start(Fake::default(), config()).await;
    let inits = |p: &Peer| {
        p.with(|f| {
            f.commands
                .iter()
                .filter(|c| c.as_str() == "AT+CMGF=0")
                .count()
        })
    };
    assert_eq!(inits(&peer), 1);
    peer.with(|f| f.cms_on_send.push_back(302));
    let err = handle.send(vec![seg(1)]).await.unwrap_err();
    assert_eq!(err.class, RetryClass::ModemNeedsRecovery);
    next_event(&mut rx, |k| matches!(k, ModemEventKind::Ready(_))).await;
    assert_eq!(inits(&peer), 2, "PDU mode set again by the re-init");
    assert_eq!(handle.send(vec![seg(1)]).await.unwrap().len(), 1);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cfun_reset_is_the_last_rung_and_only_when_allowed() {
    for allowed in [false, true] {
        let mut cfg = config();
        cfg.allow_cfun_reset = allowed;
        let (peer, handle, mut rx, _) = start(Fake::default(), cfg).await;
        peer.with(|f| f.silent = true);
        let err = handle.send(vec![seg(1)]).await.unwrap_err();
        assert_eq!(err.failure, SendFailure::PromptTimeout);
        next_event(&mut rx, |k| matches!(k, ModemEventKind::Down { .. })).await;
        let resets = peer.with(|f| {
            f.commands
                .iter()
                .filter(|c| c.as_str() == "AT+CFUN=1,1")
                .count()
        });
        assert_eq!(resets, usize::from(allowed), "allowed={allowed}");
        // Resync and re-init were tried first.
        assert!(peer.with(|f| f.commands.iter().filter(|c| c.as_str() == "AT").count()) >= 3);
        handle.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn gated_send_waits_at_the_prompt_and_types_the_pdu_once_the_gate_opens() {
    let (peer, handle, _rx, _) = start(Fake::default(), config()).await;
    let before = peer.with(|f| f.commands.len());
    let (go, gate) = tokio::sync::oneshot::channel();
    let sender = {
        let handle = handle.clone();
        tokio::spawn(async move { handle.send_gated(seg(7), gate).await })
    };
    // AT+CMGS goes out at once; the PDU waits.
    while peer.with(|f| f.commands.len()) == before {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        peer.with(|f| f.commands[before..].to_vec()),
        vec!["AT+CMGS=5"]
    );
    assert!(
        peer.with(|f| f.pdus.is_empty()),
        "PDU typed before the gate opened"
    );
    go.send(true).unwrap();
    assert_eq!(sender.await.unwrap(), Ok(1));
    assert_eq!(peer.with(|f| f.pdus.clone()), vec!["0011000B9107"]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_closed_dropped_or_silent_gate_types_esc_sends_nothing_and_is_not_a_modem_fault() {
    let (peer, handle, _rx, _) = start(Fake::default(), config()).await;
    let (go, gate) = tokio::sync::oneshot::channel();
    go.send(false).unwrap();
    let err = handle.send_gated(seg(1), gate).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::CalledOff);
    assert_eq!(err.class, RetryClass::RetryHere);
    let (go, gate) = tokio::sync::oneshot::channel::<bool>();
    drop(go);
    let err = handle.send_gated(seg(2), gate).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::CalledOff);
    // No word within the prompt timeout (15 s): called off too.
    let (_go, gate) = tokio::sync::oneshot::channel::<bool>();
    let t = tokio::time::Instant::now();
    let err = handle.send_gated(seg(3), gate).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::CalledOff);
    assert!(t.elapsed() >= Duration::from_secs(15));
    assert!(peer.with(|f| f.pdus.is_empty()));
    let status = handle.status().await.unwrap();
    assert_eq!(status.state, ModemState::Ready);
    assert_eq!(status.segments_failed, 0);
    assert_eq!(status.consecutive_failures, 0);
    // The modem is back in command mode: the next send goes through.
    assert_eq!(handle.send(vec![seg(3)]).await.unwrap(), vec![1]);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_stored_message_whose_event_was_dropped_is_read_again_by_an_early_sweep() {
    let mut fake = Fake::default();
    fake.stored.insert(2, REPORT_HEX.to_string());
    let peer = Peer::new(fake);
    let mut cfg = config();
    cfg.event_timeout = Duration::from_secs(1);
    cfg.sweep_interval = Duration::from_secs(86_400);
    // Room for one event and nobody reading: the start sweep's report is dropped.
    let (tx, mut rx) = mpsc::channel(1);
    let started = tokio::time::Instant::now();
    let handle = spawn_with(cfg, peer.opener(), tx);
    while handle.status().await.unwrap().events_dropped == 0
        || peer.with(|f| !f.commands.iter().any(|c| c == "AT+CMGL=4"))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = next_event(&mut rx, |k| {
        matches!(
            k,
            ModemEventKind::StatusReport {
                storage_index: Some(2),
                ..
            }
        )
    })
    .await;
    assert!(matches!(report, ModemEventKind::StatusReport { .. }));
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "read again only after {:?}",
        started.elapsed()
    );
    handle.shutdown().await;
}
