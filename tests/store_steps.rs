//! The store requests the daemon's send path uses: `segment_step` (the +CMGS record of one
//! segment, with its quota count, and the submitting mark of the next, in one request),
//! `claim_many` and `unclaim`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use gridsms::message::{Category, MessageState};
use gridsms::phone::normalise;
use gridsms::store::{
    CancelTarget, MessageId, NewMessage, SegmentSent, SegmentState, SegmentSubmit, SimRef, Store,
    StoreError,
};

const ICCID: &str = "89860012345678901234";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap()
}

fn sim() -> Option<SimRef> {
    Some(SimRef {
        modem: "modem-1".into(),
        iccid: ICCID.into(),
    })
}

async fn queued(store: &Store, i: u32) -> MessageId {
    let to = normalise(&format!("139{i:08}")).unwrap();
    store
        .enqueue(NewMessage::new(to, "停电通知", Category::Outage), t0())
        .await
        .unwrap()
        .id()
}

fn mark(id: MessageId, seq: u8, total: u8) -> SegmentSubmit {
    SegmentSubmit {
        message_id: id,
        seq,
        total,
        concat_ref: Some(7),
        sim_iccid: ICCID.into(),
    }
}

fn record(id: MessageId, seq: u8, mr: u8) -> SegmentSent {
    SegmentSent {
        message_id: id,
        seq,
        tp_mr: mr,
        sim_iccid: ICCID.into(),
        tz: Shanghai,
    }
}

async fn segment_states(store: &Store, id: MessageId) -> Vec<SegmentState> {
    let d = store.get(id).await.unwrap().unwrap();
    d.segments.iter().map(|s| s.state).collect()
}

#[tokio::test]
async fn one_step_records_a_segment_counts_it_and_marks_the_next() {
    let store = Store::open_in_memory().await.unwrap();
    let a = queued(&store, 1).await;
    let b = queued(&store, 2).await;
    let claimed = store
        .claim_many(vec![(a, sim()), (b, sim())], t0())
        .await
        .unwrap();
    assert!(claimed.iter().all(Option::is_some));

    // Message a has two parts; b one.
    let s = store
        .segment_step(None, Some(mark(a, 1, 2)), t0())
        .await
        .unwrap();
    assert!(s.sent.is_none());
    assert!(matches!(s.next, Some(Ok(()))));
    assert_eq!(segment_states(&store, a).await, [SegmentState::Submitting]);

    let s = store
        .segment_step(Some(record(a, 1, 10)), Some(mark(a, 2, 2)), t0())
        .await
        .unwrap();
    assert!(matches!(s.sent, Some(Ok(false))), "part 2 still to go");
    assert!(matches!(s.next, Some(Ok(()))));
    assert_eq!(
        segment_states(&store, a).await,
        [SegmentState::Submitted, SegmentState::Submitting],
        "never more than one segment in doubt"
    );

    // The last part of a travels with the first of b.
    let s = store
        .segment_step(Some(record(a, 2, 11)), Some(mark(b, 1, 1)), t0())
        .await
        .unwrap();
    assert!(matches!(s.sent, Some(Ok(true))), "a is now sent");
    assert!(matches!(s.next, Some(Ok(()))));
    let msg_a = store.get(a).await.unwrap().unwrap();
    assert_eq!(msg_a.message.state, MessageState::Sent);
    assert_eq!(msg_a.segments[1].tp_mr, Some(11));

    let s = store
        .segment_step(Some(record(b, 1, 12)), None, t0())
        .await
        .unwrap();
    assert!(matches!(s.sent, Some(Ok(true))));
    assert!(s.next.is_none());

    // Every recorded segment counted against the SIM, in the same transactions.
    let usage = store.usage(ICCID.into(), t0(), Shanghai).await.unwrap();
    assert_eq!((usage.hour, usage.day, usage.month), (3, 3, 3));
}

#[tokio::test]
async fn each_half_of_a_step_fails_alone() {
    let store = Store::open_in_memory().await.unwrap();
    let a = queued(&store, 1).await;
    let b = queued(&store, 2).await;
    store.claim(a, t0(), sim()).await.unwrap().unwrap();
    let s = store
        .segment_step(None, Some(mark(a, 1, 1)), t0())
        .await
        .unwrap();
    assert!(matches!(s.next, Some(Ok(()))));
    // b was never claimed: its mark is refused, a's record still goes in.
    let s = store
        .segment_step(Some(record(a, 1, 5)), Some(mark(b, 1, 1)), t0())
        .await
        .unwrap();
    assert!(matches!(s.sent, Some(Ok(true))));
    assert!(matches!(s.next, Some(Err(StoreError::WrongState { .. }))));
    assert_eq!(
        store.get(a).await.unwrap().unwrap().message.state,
        MessageState::Sent
    );
    assert!(
        segment_states(&store, b).await.is_empty(),
        "nothing of b written"
    );
    // A record for a segment that is not submitting is refused and not counted.
    let s = store
        .segment_step(Some(record(a, 1, 6)), None, t0())
        .await
        .unwrap();
    assert!(matches!(
        s.sent,
        Some(Err(StoreError::WrongSegmentState { .. }))
    ));
    let usage = store.usage(ICCID.into(), t0(), Shanghai).await.unwrap();
    assert_eq!(usage.hour, 1);
}

#[tokio::test]
async fn claim_many_skips_taken_cancelled_and_expired_messages() {
    let store = Store::open_in_memory().await.unwrap();
    let a = queued(&store, 1).await;
    let b = queued(&store, 2).await;
    let c = queued(&store, 3).await;
    let to = normalise("13900000004").unwrap();
    let mut soon = NewMessage::new(to, "停电通知", Category::Outage);
    soon.expires_at = Some(t0() + Duration::minutes(1));
    let d = store.enqueue(soon, t0()).await.unwrap().id();
    store.claim(a, t0(), sim()).await.unwrap().unwrap();
    store
        .cancel(CancelTarget::Ids(vec![b]), t0())
        .await
        .unwrap();
    let later = t0() + Duration::minutes(2);
    let got = store
        .claim_many(vec![(a, sim()), (b, sim()), (c, sim()), (d, sim())], later)
        .await
        .unwrap();
    let ids: Vec<Option<MessageId>> = got
        .iter()
        .map(|g| g.as_ref().map(|m| m.message.id))
        .collect();
    assert_eq!(ids, [None, None, Some(c), None]);
    assert_eq!(
        store.get(d).await.unwrap().unwrap().message.state,
        MessageState::Queued,
        "an expired message is not claimed (expiry sweeps it)"
    );
}

#[tokio::test]
async fn unclaim_gives_a_message_back_without_counting_the_attempt() {
    let store = Store::open_in_memory().await.unwrap();
    let a = queued(&store, 1).await;
    let claimed = store.claim(a, t0(), sim()).await.unwrap().unwrap();
    assert_eq!(claimed.message.attempts, 1);
    assert!(store.unclaim(a, t0()).await.unwrap());
    let m = store.get(a).await.unwrap().unwrap().message;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.attempts, 0);
    assert!(
        !store.unclaim(a, t0()).await.unwrap(),
        "only a sending message"
    );
    let again = store.claim(a, t0(), sim()).await.unwrap().unwrap();
    assert_eq!(again.message.attempts, 1);
}
