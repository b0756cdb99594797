//! Every simulator fault → the outcome the actor reports, over real pseudo-terminals; an
//! unplugged modem comes back; nothing panics or hangs (every wait has a hang guard).

mod modem_common;

use std::time::Duration;

use gridsms::at::{DeviceError, RetryClass};
use gridsms::modem::{ModemEventKind, ModemState, SendFailure};
use gridsms::sim::{Fault, Profile, SimOptions};
use modem_common::*;

const TO: &str = "13800138000";
const TEXT: &str = "您本月电费为128.50元";
const LONG: &str = "【国网供电】尊敬的客户：因10kV城东线检修，定于6月12日08:00至18:00停电，\
影响范围：和平路、解放路一带。请提前做好准备，给您带来不便敬请谅解。咨询电话95598。\
如有疑问请拨打供电服务热线。停电期间请勿靠近电力设施，注意用电安全。恢复供电时间如有变化，\
我们将另行通知。感谢您对供电工作的理解与支持。";

/// Send until accepted, a bounded number of times (the fault clears on the sim's clock).
async fn send_until_ok(rig: &Rig, tries: usize) -> Vec<u8> {
    for _ in 0..tries {
        if let Ok(mrs) = rig.send(TO, TEXT, false).await {
            return mrs;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("modem never sent again after the fault");
}

/// Inject `fault` and send; on a loaded machine the command can overtake the fault (they
/// reach the simulator on different paths), so a send that still went through is retried
/// with the fault injected afresh, a few times.
async fn fail_after(rig: &Rig, fault: Fault) -> gridsms::modem::SendError {
    for _ in 0..3 {
        rig.fault(fault.clone()).await;
        if let Err(e) = rig.send(TO, TEXT, false).await {
            return e;
        }
    }
    panic!("{fault:?} never made a send fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_error_on_next_sends_is_named_and_classed_on_every_profile() {
    for profile in Profile::ALL {
        let rig = Rig::start(profile).await;
        rig.fault(Fault::CmsError { code: 42, count: 2 }).await;
        for _ in 0..2 {
            let err = rig.send(TO, TEXT, false).await.unwrap_err();
            assert_eq!(
                err.failure,
                SendFailure::Device(DeviceError::cms(42)),
                "{profile:?}"
            );
            assert_eq!(err.class, RetryClass::RetryHere, "{profile:?}");
        }
        assert_eq!(
            rig.send(TO, TEXT, false)
                .await
                .unwrap_or_else(|e| panic!("{profile:?}: {e}"))
                .len(),
            1
        );
        rig.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_cms_error_is_permanent_for_the_message() {
    let rig = Rig::start(Profile::QuectelEc25).await;
    rig.fault(Fault::CmsError {
        code: 304,
        count: 1,
    })
    .await;
    let err = rig.send(TO, TEXT, false).await.unwrap_err();
    assert_eq!(err.class, RetryClass::PermanentForMessage);
    assert_eq!(
        rig.modem.status().await.unwrap().consecutive_failures,
        0,
        "not the modem's fault"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_lost_fails_sends_for_another_modem_then_recovers() {
    // The breaker would bench a modem failing this often; that is tested on its own.
    let rig = Rig::start_with(SimOptions::new(Profile::QuectelEc25), |c| {
        c.breaker_threshold = 1000
    })
    .await;
    rig.fault(Fault::RegistrationLost {
        duration: Duration::from_secs(2),
    })
    .await;
    let err = rig.send(TO, TEXT, false).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::Device(DeviceError::cms(331)));
    assert_eq!(err.class, RetryClass::RetryOtherModem);
    send_until_ok(&rig, 30).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_modem_times_out_is_resynced_and_sends_again() {
    let mut rig = Rig::start(Profile::Sim800).await;
    let err = fail_after(
        &rig,
        Fault::Silent {
            duration: Duration::from_secs(3),
        },
    )
    .await;
    assert_eq!(err.failure, SendFailure::PromptTimeout);
    assert_eq!(err.class, RetryClass::RetryOtherModem);
    rig.next(|k| matches!(k, ModemEventKind::Health(s) if s.state == ModemState::Ready))
        .await;
    send_until_ok(&rig, 10).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_flood_is_counted_and_harmless() {
    for profile in Profile::ALL {
        let rig = Rig::start(profile).await;
        rig.fault(Fault::Garbage { bytes: 20_000 }).await;
        send_until_ok(&rig, 5).await;
        let st = rig.modem.status().await.unwrap();
        assert_eq!(st.state, ModemState::Ready, "{profile:?}");
        assert!(
            st.noise_lines + st.overlong_lines > 0,
            "{profile:?}: garbage not counted: {st:?}"
        );
        rig.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_and_return_on_every_profile() {
    for profile in Profile::ALL {
        let mut rig = Rig::start(profile).await;
        rig.fault(Fault::Unplug {
            down_for: Duration::from_millis(800),
        })
        .await;
        rig.next(|k| matches!(k, ModemEventKind::Down { .. })).await;
        let err = rig.send(TO, TEXT, false).await.unwrap_err();
        assert_eq!(err.class, RetryClass::RetryOtherModem, "{profile:?}");
        match rig.next(|k| matches!(k, ModemEventKind::Ready(_))).await {
            ModemEventKind::Ready(id) => {
                assert_eq!(id.iccid, rig.identity.iccid, "{profile:?}: same SIM")
            }
            _ => unreachable!(),
        }
        send_until_ok(&rig, 5).await;
        rig.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_in_flight_at_unplug_are_handed_back() {
    let mut options = SimOptions::new(Profile::QuectelEc25);
    options.send_delay = Duration::from_millis(400);
    let rig = Rig::start_with(options, |_| {}).await;
    let segments = gridsms::pdu::encode_submit(TO, LONG, &Default::default()).unwrap();
    assert!(segments.len() >= 3);
    let modem = rig.modem.clone();
    let sending = tokio::spawn(async move { modem.send(segments).await });
    // Two segments in: the first is answered, the second awaits its +CMGS.
    assert!(rig.sim.wait_sent(2, GUARD).await);
    rig.sim.inject_fault(Fault::Unplug {
        down_for: Duration::from_secs(1),
    });
    let err = tokio::time::timeout(GUARD, sending)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(!err.accepted.is_empty(), "{err:?}");
    assert_eq!(err.segment_index, err.accepted.len());
    assert!(
        matches!(err.failure, SendFailure::PortLost(_) | SendFailure::Timeout),
        "{err:?}"
    );
    assert_eq!(err.class, RetryClass::RetryOtherModem);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_prompt_within_timeout_sends_beyond_it_fails_and_recovers() {
    let mut rig = Rig::start(Profile::HuaweiE173).await;
    rig.fault(Fault::SlowPrompt {
        delay: Duration::from_millis(1500),
    })
    .await;
    assert_eq!(rig.send(TO, TEXT, false).await.unwrap().len(), 1);
    let err = fail_after(
        &rig,
        Fault::SlowPrompt {
            delay: Duration::from_secs(8),
        },
    )
    .await;
    assert_eq!(err.failure, SendFailure::PromptTimeout);
    rig.next(|k| matches!(k, ModemEventKind::Health(s) if s.state == ModemState::Ready))
        .await;
    send_until_ok(&rig, 20).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_full_is_swept_and_held_message_arrives_after_ack() {
    let mut rig = Rig::start(Profile::QuectelEc25).await;
    rig.sim.inject_sms("+8613912345678", "CX");
    let first = match rig
        .next(|k| matches!(k, ModemEventKind::Inbound { .. }))
        .await
    {
        ModemEventKind::Inbound { storage_index, .. } => storage_index.unwrap(),
        _ => unreachable!(),
    };
    rig.fault(Fault::StorageFull).await;
    rig.sim.inject_sms("+8613912345678", "QF");
    // The storage-full notice makes the actor sweep: the unacknowledged message is reported again.
    match rig
        .next(|k| matches!(k, ModemEventKind::Inbound { .. }))
        .await
    {
        ModemEventKind::Inbound { storage_index, .. } => assert_eq!(storage_index, Some(first)),
        _ => unreachable!(),
    }
    rig.modem.ack_inbound(first).await.unwrap();
    // Reports are at-least-once: skip repeats of the first message until the held one comes.
    loop {
        let pdu = match rig
            .next(|k| matches!(k, ModemEventKind::Inbound { .. }))
            .await
        {
            ModemEventKind::Inbound { pdu, .. } => pdu,
            _ => unreachable!(),
        };
        match gridsms::pdu::decode(&pdu).unwrap() {
            gridsms::pdu::Pdu::Deliver(d) if d.body == gridsms::pdu::Body::Text("QF".into()) => {
                break;
            }
            gridsms::pdu::Pdu::Deliver(d) => {
                assert_eq!(d.body, gridsms::pdu::Body::Text("CX".into()))
            }
            other => panic!("{other:?}"),
        }
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_benches_after_repeated_failures() {
    let mut rig = Rig::start_with(SimOptions::new(Profile::QuectelEc25), |c| {
        c.breaker_threshold = 3
    })
    .await;
    rig.fault(Fault::CmsError {
        code: 331,
        count: 10,
    })
    .await;
    for _ in 0..3 {
        assert!(rig.send(TO, TEXT, false).await.is_err());
    }
    rig.next(|k| matches!(k, ModemEventKind::Benched { .. }))
        .await;
    let err = rig.send(TO, TEXT, false).await.unwrap_err();
    assert_eq!(err.failure, SendFailure::NotReady(ModemState::Benched));
    assert_eq!(rig.sim.sent().len(), 0);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_is_entered_and_a_wrong_one_never_retried() {
    let mut options = SimOptions::new(Profile::QuectelEc25);
    options.pin = Some("1234".into());
    let rig = Rig::start_with(options.clone(), |c| c.pin = Some("1234".into())).await;
    assert_eq!(rig.send(TO, TEXT, false).await.unwrap().len(), 1);
    rig.stop().await;

    let sim = gridsms::sim::spawn(options).await.unwrap();
    let mut cfg = config(&sim.device_path().to_string_lossy());
    cfg.pin = Some("0000".into());
    let (tx, mut events) = tokio::sync::mpsc::channel(256);
    let modem = gridsms::modem::spawn(cfg, tx);
    match next_event(&mut events, |k| matches!(k, ModemEventKind::Down { .. })).await {
        ModemEventKind::Down { reason } => assert!(reason.contains("PIN"), "{reason}"),
        _ => unreachable!(),
    }
    // Several reopen rounds later the SIM still only asks for its PIN: had the driver tried
    // three times, it would ask for the PUK.
    for _ in 0..4 {
        next_event(
            &mut events,
            |k| matches!(k, ModemEventKind::Health(s) if s.state == ModemState::Initialising),
        )
        .await;
    }
    let st = modem.status().await.unwrap();
    let last = st.last_error.unwrap_or_default();
    assert!(last.contains("PIN") && !last.contains("PUK"), "{last}");
    modem.shutdown().await;
    sim.shutdown().await;
}
