//! The modem actor against the simulated modem on real pseudo-terminals: every profile ×
//! (send single, send multipart Chinese, receive single, receive multipart, status report).

mod modem_common;

use gridsms::modem::ModemEventKind;
use gridsms::pdu::{
    self, Body, Pdu,
    concat::{Outcome, Part, Reassembler},
};
use gridsms::sim::Profile;
use modem_common::*;

const BILL: &str = "您本月电费为128.50元，请于25日前缴纳。";
const OUTAGE: &str = "【国网供电】尊敬的客户：因10kV城东线检修，定于6月12日08:00至18:00停电，\
影响范围：和平路、解放路一带。请提前做好准备，给您带来不便敬请谅解。咨询电话95598。";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_sends_a_single_sms() {
    for profile in Profile::ALL {
        let rig = Rig::start(profile).await;
        assert!(
            rig.identity
                .iccid
                .as_deref()
                .is_some_and(|i| i.starts_with("8986")),
            "{profile:?}: {:?}",
            rig.identity
        );
        assert!(
            rig.identity.imsi.is_some() && rig.identity.imei.is_some(),
            "{profile:?}"
        );
        let mrs = rig
            .send("13800138000", BILL, false)
            .await
            .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        assert_eq!(mrs.len(), 1, "{profile:?}");
        let sent = rig.sim.sent();
        assert_eq!(sent.len(), 1, "{profile:?}");
        assert_eq!(sent[0].text, BILL, "{profile:?}");
        assert_eq!(sent[0].mr, mrs[0], "{profile:?}");
        rig.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_sends_multipart_chinese() {
    for profile in Profile::ALL {
        let rig = Rig::start(profile).await;
        let mrs = rig
            .send("+8613800138000", OUTAGE, false)
            .await
            .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        assert!(mrs.len() >= 2, "{profile:?}: {mrs:?}");
        let msgs = rig.sim.sent_messages();
        assert_eq!(msgs.len(), 1, "{profile:?}");
        assert_eq!(msgs[0].text, OUTAGE, "{profile:?}");
        assert_eq!(msgs[0].mrs, mrs, "{profile:?}");
        assert_eq!(msgs[0].received, msgs[0].total, "{profile:?}");
        rig.stop().await;
    }
}

fn deliver(pdu: &[u8]) -> pdu::Deliver {
    match pdu::decode(pdu) {
        Ok(Pdu::Deliver(d)) => d,
        other => panic!("not a deliver: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_receives_a_single_sms_and_deletes_it_after_ack() {
    for profile in Profile::ALL {
        let mut rig = Rig::start(profile).await;
        rig.sim.inject_sms("+8613912345678", "CX");
        let (index, pdu) = match rig
            .next(|k| matches!(k, ModemEventKind::Inbound { .. }))
            .await
        {
            ModemEventKind::Inbound { storage_index, pdu } => (storage_index, pdu),
            _ => unreachable!(),
        };
        let d = deliver(&pdu);
        assert_eq!(d.sender.to_display(), "+8613912345678", "{profile:?}");
        assert_eq!(d.body, Body::Text("CX".into()), "{profile:?}");
        let index = index.unwrap_or_else(|| panic!("{profile:?}: stored message expected"));
        assert_eq!(rig.sim.stored(), 1, "{profile:?}: kept until acknowledged");
        rig.modem
            .ack_inbound(index)
            .await
            .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        assert_eq!(rig.sim.stored(), 0, "{profile:?}: deleted after ack");
        rig.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_receives_multipart_chinese() {
    for profile in Profile::ALL {
        let mut rig = Rig::start(profile).await;
        rig.sim.inject_sms("+8613912345678", OUTAGE);
        let mut reasm = Reassembler::new(8, 60_000);
        let text = loop {
            let (index, pdu) = match rig
                .next(|k| matches!(k, ModemEventKind::Inbound { .. }))
                .await
            {
                ModemEventKind::Inbound { storage_index, pdu } => (storage_index, pdu),
                _ => unreachable!(),
            };
            if let Some(i) = index {
                rig.modem
                    .ack_inbound(i)
                    .await
                    .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
            }
            let part = Part::from_deliver(&deliver(&pdu));
            match reasm.push(part, 0).outcome {
                Outcome::Complete(m) => break m.text,
                Outcome::Pending { .. } => {}
                Outcome::Duplicate => {}
            }
        };
        assert_eq!(text, OUTAGE, "{profile:?}");
        assert_eq!(rig.sim.stored(), 0, "{profile:?}");
        rig.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_reports_delivery() {
    for profile in Profile::ALL {
        let mut rig = Rig::start(profile).await;
        let mrs = rig
            .send("13800138000", BILL, true)
            .await
            .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        let (index, pdu) = match rig
            .next(|k| matches!(k, ModemEventKind::StatusReport { .. }))
            .await
        {
            ModemEventKind::StatusReport { storage_index, pdu } => (storage_index, pdu),
            _ => unreachable!(),
        };
        let report = match pdu::decode(&pdu) {
            Ok(Pdu::StatusReport(r)) => r,
            other => panic!("{profile:?}: not a status report: {other:?}"),
        };
        assert_eq!(report.message_ref, mrs[0], "{profile:?}");
        assert_eq!(report.class(), pdu::StatusClass::Delivered, "{profile:?}");
        assert!(
            report.recipient.value.ends_with("13800138000"),
            "{profile:?}"
        );
        if let Some(i) = index {
            rig.modem
                .ack_inbound(i)
                .await
                .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        }
        rig.stop().await;
    }
}
