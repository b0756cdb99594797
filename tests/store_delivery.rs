//! Segments on the air: the writes around +CMGS, status reports (single and multipart),
//! failed-number counting, and start-up recovery of messages left in `sending`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use gridsms::message::{Category, MessageState};
use gridsms::phone::{E164, normalise};
use gridsms::store::{
    ClaimFilter, DeliveryClass, MessageId, NewMessage, RecoveryPolicy, RecoveryRule, SegmentState,
    SegmentSubmit, SimRef, StatusReport, Store, StoreError,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap()
}

fn num(i: u32) -> E164 {
    normalise(&format!("139{:08}", i)).unwrap()
}

const ICCID: &str = "89860012345678901234";

fn sim() -> SimRef {
    SimRef {
        modem: "modem-1".into(),
        iccid: ICCID.into(),
    }
}

async fn queued_and_claimed(store: &Store, to: E164, cat: Category) -> MessageId {
    let id = store
        .enqueue(NewMessage::new(to, "停电通知", cat), t0())
        .await
        .unwrap()
        .id();
    let got = store.claim(id, t0(), Some(sim())).await.unwrap();
    assert!(got.is_some());
    id
}

/// What the dispatcher does for one segment: write before Ctrl-Z, write after +CMGS.
async fn submit(store: &Store, id: MessageId, seq: u8, total: u8, mr: u8) {
    store
        .mark_segment_submitting(
            SegmentSubmit {
                message_id: id,
                seq,
                total,
                concat_ref: (total > 1).then_some(0x1234),
                sim_iccid: ICCID.into(),
            },
            t0(),
        )
        .await
        .unwrap();
    store
        .mark_segment_submitted(id, seq, mr, t0() + Duration::seconds(1))
        .await
        .unwrap();
}

fn report(to: &E164, mr: u8, status: u8, after_s: i64) -> StatusReport {
    StatusReport {
        sim_iccid: ICCID.into(),
        tp_mr: mr,
        recipient: to.clone(),
        status,
        received_at: t0() + Duration::seconds(after_s),
    }
}

async fn state(store: &Store, id: MessageId) -> MessageState {
    store.get(id).await.unwrap().unwrap().message.state
}

#[tokio::test]
async fn single_segment_delivered() {
    let store = Store::open_in_memory().await.unwrap();
    let id = queued_and_claimed(&store, num(1), Category::Outage).await;
    submit(&store, id, 1, 1, 7).await;
    store.mark_sent(id, t0()).await.unwrap();
    assert_eq!(state(&store, id).await, MessageState::Sent);
    // Wrong recipient or wrong SIM: not ours.
    assert_eq!(
        store
            .apply_status_report(report(&num(2), 7, 0, 5))
            .await
            .unwrap(),
        None
    );
    let mut other_sim = report(&num(1), 7, 0, 5);
    other_sim.sim_iccid = "8986000000".into();
    assert_eq!(store.apply_status_report(other_sim).await.unwrap(), None);
    // "Still trying" is recorded but settles nothing.
    let r = store
        .apply_status_report(report(&num(1), 7, 0x30, 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.class, r.message_state),
        (DeliveryClass::StillTrying, MessageState::Sent)
    );
    let r = store
        .apply_status_report(report(&num(1), 7, 0x00, 9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.message_id, r.seq), (id, 1));
    assert_eq!(r.segment_state, SegmentState::Delivered);
    assert_eq!(r.message_state, MessageState::Delivered);
    let d = store.get(id).await.unwrap().unwrap();
    assert_eq!(d.message.delivered_at, Some(t0() + Duration::seconds(9)));
    assert_eq!(d.segments[0].status, Some(0));
    // A duplicate report finds no submitted segment any more.
    assert_eq!(
        store
            .apply_status_report(report(&num(1), 7, 0, 10))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn multipart_is_delivered_only_when_every_part_is() {
    let store = Store::open_in_memory().await.unwrap();
    let id = queued_and_claimed(&store, num(1), Category::Bill).await;
    submit(&store, id, 1, 3, 200).await;
    submit(&store, id, 2, 3, 201).await;
    assert_eq!(state(&store, id).await, MessageState::Sending);
    // A fast report for part 1 arrives while part 3 is still on its way.
    let r = store
        .apply_status_report(report(&num(1), 200, 0, 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.seq, r.message_state), (1, MessageState::Sending));
    // The last +CMGS makes the message sent by itself.
    store
        .mark_segment_submitting(
            SegmentSubmit {
                message_id: id,
                seq: 3,
                total: 3,
                concat_ref: Some(0x1234),
                sim_iccid: ICCID.into(),
            },
            t0(),
        )
        .await
        .unwrap();
    let now_sent = store
        .mark_segment_submitted(id, 3, 202, t0())
        .await
        .unwrap();
    assert!(now_sent);
    assert_eq!(state(&store, id).await, MessageState::Sent);
    let r = store
        .apply_status_report(report(&num(1), 202, 0, 4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.message_state,
        MessageState::Sent,
        "part 2 still unreported"
    );
    let r = store
        .apply_status_report(report(&num(1), 201, 0, 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.message_state, MessageState::Delivered);
    let d = store.get(id).await.unwrap().unwrap();
    assert!(
        d.segments
            .iter()
            .all(|s| s.state == SegmentState::Delivered)
    );
    assert!(d.segments.iter().all(|s| s.concat_ref == Some(0x1234)));
    assert_eq!(d.message.sent_at, Some(t0()));
    // A defensive mark_sent after delivery is harmless.
    store.mark_sent(id, t0()).await.unwrap();
    assert_eq!(state(&store, id).await, MessageState::Delivered);
}

#[tokio::test]
async fn reused_tp_mr_matches_the_latest_submission() {
    let store = Store::open_in_memory().await.unwrap();
    let old = queued_and_claimed(&store, num(1), Category::Bill).await;
    submit(&store, old, 1, 1, 9).await;
    store.mark_sent(old, t0()).await.unwrap();
    let new = store
        .enqueue(NewMessage::new(num(1), "第二条", Category::Bill), t0())
        .await
        .unwrap()
        .id();
    store.claim(new, t0(), Some(sim())).await.unwrap().unwrap();
    store
        .mark_segment_submitting(
            SegmentSubmit {
                message_id: new,
                seq: 1,
                total: 1,
                concat_ref: None,
                sim_iccid: ICCID.into(),
            },
            t0() + Duration::minutes(5),
        )
        .await
        .unwrap();
    store
        .mark_segment_submitted(new, 1, 9, t0() + Duration::minutes(5))
        .await
        .unwrap();
    let r = store
        .apply_status_report(report(&num(1), 9, 0, 400))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.message_id, new);
    // Outside the report window nothing matches.
    let stale = report(&num(1), 9, 0, 4 * 24 * 3600);
    assert_eq!(store.apply_status_report(stale).await.unwrap(), None);
}

#[tokio::test]
async fn permanent_failure_fails_the_message_and_counts_the_number() {
    let store = Store::open_in_memory().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = queued_and_claimed(&store, num(4), Category::Reminder).await;
        submit(&store, id, 1, 2, 10 + ids.len() as u8 * 2).await;
        submit(&store, id, 2, 2, 11 + ids.len() as u8 * 2).await;
        assert_eq!(state(&store, id).await, MessageState::Sent);
        ids.push(id);
    }
    // Message 1: both parts fail permanently (0x41 = incompatible destination); counted once.
    for mr in [10, 11] {
        let r = store
            .apply_status_report(report(&num(4), mr, 0x41, 5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.message_state, MessageState::Failed);
    }
    // Message 2: the network gave up (0x62): failed, but not the number's fault.
    let r = store
        .apply_status_report(report(&num(4), 12, 0x62, 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.class, r.message_state),
        (DeliveryClass::TemporaryFailureGaveUp, MessageState::Failed)
    );
    let m = store.get(ids[0]).await.unwrap().unwrap().message;
    assert!(m.last_error.unwrap().contains("0x41"));
    let failed = store.failed_numbers(1, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].number.clone(), failed[0].failures), (num(4), 1));
    // A send refused as the number's fault counts too.
    let id = queued_and_claimed(&store, num(4), Category::Manual).await;
    store
        .mark_failed(id, "+CMS ERROR: 1 (unassigned number)".into(), true, t0())
        .await
        .unwrap();
    let failed = store.failed_numbers(2, 10).await.unwrap();
    assert_eq!(failed[0].failures, 2);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("+CMS ERROR: 1 (unassigned number)")
    );
}

#[tokio::test]
async fn submitted_segments_are_never_overwritten_and_cancel_stops_sending() {
    let store = Store::open_in_memory().await.unwrap();
    let id = queued_and_claimed(&store, num(1), Category::Bill).await;
    submit(&store, id, 1, 2, 1).await;
    let again = store
        .mark_segment_submitting(
            SegmentSubmit {
                message_id: id,
                seq: 1,
                total: 2,
                concat_ref: Some(0x1234),
                sim_iccid: ICCID.into(),
            },
            t0(),
        )
        .await;
    assert!(
        matches!(&again, Err(StoreError::WrongSegmentState { seq: 1, found, .. }) if found == "submitted"),
        "{again:?}"
    );
    // +CMGS reported for a segment never marked submitting is refused.
    assert!(matches!(
        store.mark_segment_submitted(id, 2, 3, t0()).await,
        Err(StoreError::WrongSegmentState { .. })
    ));
    // Not in `sending` any more → the next segment write refuses.
    let queued = store
        .enqueue(NewMessage::new(num(2), "x", Category::Bill), t0())
        .await
        .unwrap()
        .id();
    let r = store
        .mark_segment_submitting(
            SegmentSubmit {
                message_id: queued,
                seq: 1,
                total: 1,
                concat_ref: None,
                sim_iccid: ICCID.into(),
            },
            t0(),
        )
        .await;
    assert!(matches!(r, Err(StoreError::WrongState { .. })), "{r:?}");
}

/// The crash scenarios, each left exactly as a kill -9 at that moment would leave it.
#[tokio::test]
async fn recovery_resolves_every_sending_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let (mid_multipart, before_ctrl_z, after_last_cmgs, broadcast_mid) = {
        let store = Store::open(&path).await.unwrap();
        // Crash between Ctrl-Z and +CMGS of part 2 of 3 (part 1 has its TP-MR).
        let a = queued_and_claimed(&store, num(1), Category::Bill).await;
        submit(&store, a, 1, 3, 50).await;
        store
            .mark_segment_submitting(
                SegmentSubmit {
                    message_id: a,
                    seq: 2,
                    total: 3,
                    concat_ref: Some(0x1234),
                    sim_iccid: ICCID.into(),
                },
                t0(),
            )
            .await
            .unwrap();
        // Crash right after the claim, nothing written to the modem.
        let b = queued_and_claimed(&store, num(2), Category::Outage).await;
        // Every part has its TP-MR but the message is still `sending` (the state an earlier
        // build, with a separate mark_sent, could leave after a crash).
        let c = queued_and_claimed(&store, num(3), Category::Reply).await;
        submit(&store, c, 1, 1, 51).await;
        store
            .call(move |conn| {
                Ok(conn.execute("UPDATE messages SET state = 'sending' WHERE id = ?1", [c])?)
            })
            .await
            .unwrap();
        // A broadcast mid-send, under a mark-failed rule.
        let d = queued_and_claimed(&store, num(5), Category::Broadcast).await;
        store
            .mark_segment_submitting(
                SegmentSubmit {
                    message_id: d,
                    seq: 1,
                    total: 1,
                    concat_ref: None,
                    sim_iccid: ICCID.into(),
                },
                t0(),
            )
            .await
            .unwrap();
        (a, b, c, d)
    };
    let store = Store::open(&path).await.unwrap();
    let policy = RecoveryPolicy {
        default: RecoveryRule::Resend,
        overrides: vec![(Category::Broadcast, RecoveryRule::MarkFailed)],
    };
    let later = t0() + Duration::minutes(3);
    let rep = store.recover_in_flight(policy, later).await.unwrap();
    assert_eq!(rep.requeued, vec![mid_multipart, before_ctrl_z]);
    assert_eq!(rep.completed, vec![after_last_cmgs]);
    assert_eq!(rep.failed, vec![broadcast_mid]);
    assert_eq!(
        rep.uncertain_segments, 2,
        "part 2 of the bill and the broadcast"
    );
    assert_eq!(
        store
            .counts()
            .await
            .unwrap()
            .by_state(MessageState::Sending),
        0
    );

    // The resent multipart keeps part 1 and its concat reference; part 2 goes again.
    let claimed = store
        .claim_next(
            later,
            ClaimFilter {
                limit: 10,
                categories: None,
            },
            Some(sim()),
        )
        .await
        .unwrap();
    let again = claimed
        .iter()
        .find(|c| c.message.id == mid_multipart)
        .unwrap();
    let states: Vec<_> = again.segments.iter().map(|s| (s.seq, s.state)).collect();
    assert_eq!(
        states,
        vec![(1, SegmentState::Submitted), (2, SegmentState::Pending)]
    );
    assert_eq!(again.segments[0].concat_ref, Some(0x1234));
    assert_eq!(again.message.attempts, 2);
    assert_eq!(state(&store, after_last_cmgs).await, MessageState::Sent);
    let failed = store.get(broadcast_mid).await.unwrap().unwrap().message;
    assert!(
        failed
            .last_error
            .unwrap()
            .contains("interrupted by restart")
    );
    // Crash again right after those claims: both go back, and no segment is in doubt.
    let rep = store
        .recover_in_flight(RecoveryPolicy::default(), later)
        .await
        .unwrap();
    assert_eq!(rep.requeued, vec![mid_multipart, before_ctrl_z]);
    assert!(rep.failed.is_empty() && rep.completed.is_empty());
    assert_eq!(rep.uncertain_segments, 0);
}
