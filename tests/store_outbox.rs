//! Outbox behaviour: idempotency, bulk atomicity, claim order, compare-and-set claims,
//! expiry, cancellation, listing, counts, and commit-before-ack.

use chrono::{DateTime, Duration, TimeZone, Utc};
use gridsms::message::{Category, MessageState};
use gridsms::phone::{E164, normalise};
use gridsms::store::{
    CancelTarget, ClaimFilter, EnqueueOutcome, ListFilter, NewMessage, SimRef, Store, StoreError,
};
use std::collections::HashSet;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap()
}

fn num(i: u32) -> E164 {
    normalise(&format!("138{:08}", i)).unwrap()
}

fn msg(i: u32, cat: Category) -> NewMessage {
    NewMessage::new(num(i), format!("通知 {i}"), cat)
}

fn keyed(i: u32, key: &str) -> NewMessage {
    let mut m = msg(i, Category::Bill);
    m.idempotency_key = Some(key.into());
    m
}

fn sim(name: &str) -> SimRef {
    SimRef {
        modem: name.into(),
        iccid: format!("8986{name}"),
    }
}

fn take(n: usize) -> ClaimFilter {
    ClaimFilter {
        limit: n,
        categories: None,
    }
}

#[tokio::test]
async fn same_key_same_content_is_a_duplicate() {
    let store = Store::open_in_memory().await.unwrap();
    let first = store
        .enqueue(keyed(1, "bill-2026-11-42"), t0())
        .await
        .unwrap();
    let EnqueueOutcome::Queued(id) = first else {
        panic!("first enqueue must queue: {first:?}")
    };
    // A retried request a minute later: same content, same key.
    let again = store
        .enqueue(keyed(1, "bill-2026-11-42"), t0() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(again, EnqueueOutcome::Duplicate(id));
    assert_eq!(store.counts().await.unwrap().total(), 1);
}

#[tokio::test]
async fn same_key_different_content_is_a_conflict() {
    let store = Store::open_in_memory().await.unwrap();
    let id = store.enqueue(keyed(1, "k"), t0()).await.unwrap().id();
    let mut other = keyed(1, "k");
    other.text = "改过的内容".into();
    match store.enqueue(other, t0()).await {
        Err(StoreError::Conflict {
            index,
            key,
            existing_id,
        }) => {
            assert_eq!((index, key.as_str(), existing_id), (0, "k", id));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Another recipient under the same key is also different content.
    assert!(matches!(
        store.enqueue(keyed(2, "k"), t0()).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.counts().await.unwrap().total(), 1);
}

#[tokio::test]
async fn duplicates_inside_one_bulk_request() {
    let store = Store::open_in_memory().await.unwrap();
    let out = store
        .enqueue_bulk(
            vec![
                keyed(1, "a"),
                keyed(2, "b"),
                keyed(1, "a"),
                msg(3, Category::Bill),
            ],
            t0(),
        )
        .await
        .unwrap();
    assert!(matches!(out[0], EnqueueOutcome::Queued(_)));
    assert!(matches!(out[1], EnqueueOutcome::Queued(_)));
    assert_eq!(out[2], EnqueueOutcome::Duplicate(out[0].id()));
    assert!(matches!(out[3], EnqueueOutcome::Queued(_)));
    assert_eq!(store.counts().await.unwrap().total(), 3);
}

#[tokio::test]
async fn bulk_is_all_or_nothing() {
    let store = Store::open_in_memory().await.unwrap();
    store.enqueue(keyed(9, "taken"), t0()).await.unwrap();

    // An invalid row (empty text) is caught before the transaction, with its index.
    let mut batch: Vec<NewMessage> = (0..100).map(|i| msg(i, Category::Bill)).collect();
    batch[57].text = "   ".into();
    match store.enqueue_bulk(batch, t0()).await {
        Err(StoreError::Invalid { index, field, .. }) => assert_eq!((index, field), (57, "text")),
        other => panic!("expected Invalid, got {other:?}"),
    }
    // A conflict discovered mid-transaction rolls back the rows before it.
    let mut batch: Vec<NewMessage> = (0..100).map(|i| msg(i, Category::Bill)).collect();
    let mut clash = keyed(10, "taken");
    clash.text = "different".into();
    batch[80] = clash;
    match store.enqueue_bulk(batch, t0()).await {
        Err(StoreError::Conflict { index, .. }) => assert_eq!(index, 80),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.counts().await.unwrap().total(),
        1,
        "nothing committed"
    );

    // Expiry not after not_before is invalid too.
    let mut m = msg(1, Category::Outage);
    m.not_before = Some(t0());
    m.expires_at = Some(t0());
    assert!(matches!(
        store.enqueue(m, t0()).await,
        Err(StoreError::Invalid {
            field: "expires_at",
            ..
        })
    ));
}

#[tokio::test]
async fn claims_follow_priority_then_due_time() {
    let store = Store::open_in_memory().await.unwrap();
    let now = t0();
    let mut batch = vec![
        msg(1, Category::Broadcast), // prio 5
        msg(2, Category::Bill),      // prio 3
        msg(3, Category::Outage),    // prio 0
        msg(4, Category::Bill),      // prio 3, enqueued later
        msg(5, Category::Reply),     // prio 1
    ];
    let mut manual_urgent = msg(6, Category::Manual);
    manual_urgent.priority = Some(0); // explicit priority beats the category default
    batch.push(manual_urgent);
    let mut later = msg(7, Category::Outage);
    later.not_before = Some(now + Duration::hours(1)); // not due yet
    batch.push(later);
    let mut expired = msg(8, Category::Outage);
    expired.expires_at = Some(now - Duration::seconds(1));
    expired.not_before = Some(now - Duration::hours(1));
    batch.push(expired);
    let ids: Vec<i64> = store
        .enqueue_bulk(batch, now)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id())
        .collect();

    let claimed = store.claim_next(now, take(100), None).await.unwrap();
    let order: Vec<i64> = claimed.iter().map(|c| c.message.id).collect();
    // Priority 0: outage (3) and manual-with-priority-0 (6), same due time → id order.
    assert_eq!(order, vec![ids[2], ids[5], ids[4], ids[1], ids[3], ids[0]]);
    assert!(
        claimed
            .iter()
            .all(|c| c.message.state == MessageState::Sending)
    );
    assert!(claimed.iter().all(|c| c.message.attempts == 1));

    // The scheduled one is due an hour later; the expired one never is.
    assert_eq!(
        store.next_due(take(1)).await.unwrap(),
        Some(now - Duration::hours(1)),
        "the expired row is still queued until expire_due runs"
    );
    assert_eq!(store.expire_due(now).await.unwrap(), 1);
    assert_eq!(
        store.get(ids[7]).await.unwrap().unwrap().message.state,
        MessageState::Expired
    );
    assert_eq!(
        store.next_due(take(1)).await.unwrap(),
        Some(now + Duration::hours(1))
    );
    assert!(
        store
            .claim_next(now, take(10), None)
            .await
            .unwrap()
            .is_empty()
    );
    let later = store
        .claim_next(now + Duration::hours(1), take(10), None)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].message.id, ids[6]);
}

#[tokio::test]
async fn claim_filter_holds_back_categories_and_records_the_sim() {
    let store = Store::open_in_memory().await.unwrap();
    let now = t0();
    let bill = store
        .enqueue(msg(1, Category::Bill), now)
        .await
        .unwrap()
        .id();
    let outage = store
        .enqueue(msg(2, Category::Outage), now)
        .await
        .unwrap()
        .id();
    let night = ClaimFilter {
        limit: 10,
        categories: Some(vec![Category::Outage, Category::Reply]),
    };
    let got = store.claim_next(now, night, Some(sim("m1"))).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.id, outage);
    assert_eq!(got[0].message.modem.as_deref(), Some("m1"));
    assert_eq!(got[0].message.sim_iccid.as_deref(), Some("8986m1"));
    assert_eq!(
        store.get(bill).await.unwrap().unwrap().message.state,
        MessageState::Queued
    );
}

#[tokio::test]
async fn a_claimed_message_cannot_be_claimed_again() {
    let store = Store::open_in_memory().await.unwrap();
    let id = store
        .enqueue(msg(1, Category::Manual), t0())
        .await
        .unwrap()
        .id();
    let peeked = store.peek_ready(t0(), take(5)).await.unwrap();
    assert_eq!(peeked.len(), 1);
    assert_eq!(peeked[0].state, MessageState::Queued, "peek does not claim");
    assert!(
        store
            .claim(id, t0(), Some(sim("a")))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .claim(id, t0(), Some(sim("b")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim_next(t0(), take(5), None)
            .await
            .unwrap()
            .is_empty()
    );
    let m = store.get(id).await.unwrap().unwrap().message;
    assert_eq!((m.modem.as_deref(), m.attempts), (Some("a"), 1));
}

/// Two independent connections (two Store threads on one file) race for 400 messages; each
/// message must be claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let a = Store::open(&path).await.unwrap();
    let b = Store::open(&path).await.unwrap();
    let batch: Vec<NewMessage> = (0..400).map(|i| msg(i, Category::Bill)).collect();
    a.enqueue_bulk(batch, t0()).await.unwrap();

    let worker = |store: Store, name: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_next(t0(), take(3), Some(sim(name)))
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|c| c.message.id));
            }
            mine
        })
    };
    let (ra, rb) = tokio::join!(worker(a.clone(), "a"), worker(b.clone(), "b"));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let all: HashSet<i64> = ra.iter().chain(rb.iter()).copied().collect();
    assert_eq!(ra.len() + rb.len(), 400, "a={} b={}", ra.len(), rb.len());
    assert_eq!(all.len(), 400, "no message claimed twice");
    assert_eq!(
        a.counts().await.unwrap().by_state(MessageState::Sending),
        400
    );
}

#[tokio::test]
async fn cancel_by_id_and_batch_only_touches_queued() {
    let store = Store::open_in_memory().await.unwrap();
    let mut batch = Vec::new();
    for i in 0..5 {
        let mut m = msg(i, Category::Outage);
        m.batch_id = Some("feeder-10kV-123".into());
        batch.push(m);
    }
    let ids: Vec<i64> = store
        .enqueue_bulk(batch, t0())
        .await
        .unwrap()
        .iter()
        .map(|o| o.id())
        .collect();
    let other = store
        .enqueue(msg(9, Category::Outage), t0())
        .await
        .unwrap()
        .id();
    store.claim(ids[0], t0(), None).await.unwrap().unwrap();
    let n = store
        .cancel(CancelTarget::Batch("feeder-10kV-123".into()), t0())
        .await
        .unwrap();
    assert_eq!(n, 4, "the one already sending is left alone");
    assert_eq!(
        store.get(ids[0]).await.unwrap().unwrap().message.state,
        MessageState::Sending
    );
    assert_eq!(
        store.get(ids[1]).await.unwrap().unwrap().message.state,
        MessageState::Cancelled
    );
    assert_eq!(
        store.get(other).await.unwrap().unwrap().message.state,
        MessageState::Queued
    );
    assert_eq!(
        store
            .cancel(CancelTarget::Ids(vec![other, ids[2]]), t0())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn list_pages_and_filters() {
    let store = Store::open_in_memory().await.unwrap();
    for i in 0..25u32 {
        let cat = if i % 5 == 0 {
            Category::Reminder
        } else {
            Category::Bill
        };
        store
            .enqueue(msg(i % 3, cat), t0() + Duration::seconds(i64::from(i)))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list(ListFilter {
                limit: 10,
                before_id: cursor,
                ..ListFilter::default()
            })
            .await
            .unwrap();
        seen.extend(page.messages.iter().map(|m| m.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );

    let to = store
        .list(ListFilter {
            to: Some(num(1)),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(to.messages.len(), 8);
    assert!(to.messages.iter().all(|m| m.to == num(1)));
    let reminders = store
        .list(ListFilter {
            category: Some(Category::Reminder),
            since: Some(t0() + Duration::seconds(10)),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(reminders.messages.len(), 3, "i = 10, 15, 20");
    let sending = store
        .list(ListFilter {
            state: Some(MessageState::Sending),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(sending.messages.is_empty());

    // Move a few through other states; the trigger-kept counts must match a real count.
    let claimed = store
        .claim_next(t0() + Duration::hours(1), take(4), None)
        .await
        .unwrap();
    store
        .mark_failed(claimed[0].message.id, "x".into(), false, t0())
        .await
        .unwrap();
    store
        .cancel(CancelTarget::Ids(vec![seen[0], seen[1]]), t0())
        .await
        .unwrap();
    let counts = store.counts().await.unwrap();
    let real: Vec<(String, String, i64)> = store
        .call(|c| {
            let mut st = c.prepare(
                "SELECT state, category, count(*) FROM messages GROUP BY 1, 2 ORDER BY 1, 2",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    let kept: Vec<(String, String, i64)> = counts
        .cells
        .iter()
        .map(|c| (c.state.to_string(), c.category.to_string(), c.count as i64))
        .collect();
    assert_eq!(kept, real);
    assert_eq!(counts.by_state(MessageState::Sending), 3);
    assert_eq!(counts.by_state(MessageState::Failed), 1);
    assert_eq!(counts.by_state(MessageState::Queued), 19);
    assert_eq!(counts.by_category(Category::Reminder), 5);
    assert_eq!(counts.by_category(Category::Bill), 20);
}

/// "Accepted means committed": as soon as enqueue returns, another connection to the file sees
/// the message, while the store that wrote it is still running.
#[tokio::test]
async fn enqueue_is_committed_before_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let store = Store::open(&path).await.unwrap();
    let id = store.enqueue(keyed(1, "ack"), t0()).await.unwrap().id();
    let other = rusqlite::Connection::open(&path).unwrap();
    let (state, key): (String, String) = other
        .query_row(
            "SELECT state, idempotency_key FROM messages WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), key.as_str()), ("queued", "ack"));
    drop(store);
    // And after a reopen.
    let store = Store::open(&path).await.unwrap();
    let m = store.get(id).await.unwrap().unwrap().message;
    assert_eq!(m.to, num(1));
    assert_eq!(m.text, "通知 1");
    assert_eq!(m.category, Category::Bill);
    assert_eq!(m.priority, 3);
    assert_eq!(m.created_at, t0());
}

#[tokio::test]
async fn wrong_state_transitions_are_refused() {
    let store = Store::open_in_memory().await.unwrap();
    let id = store
        .enqueue(msg(1, Category::Manual), t0())
        .await
        .unwrap()
        .id();
    match store.mark_sent(id, t0()).await {
        Err(StoreError::WrongState { found, .. }) => assert_eq!(found, "queued"),
        other => panic!("expected WrongState, got {other:?}"),
    }
    assert!(matches!(
        store.schedule_retry(id, t0(), "x".into(), t0()).await,
        Err(StoreError::WrongState { .. })
    ));
    assert!(matches!(
        store.mark_sent(424242, t0()).await,
        Err(StoreError::NotFound(424242))
    ));
}

#[tokio::test]
async fn retry_requeues_for_later_and_failure_is_final() {
    let store = Store::open_in_memory().await.unwrap();
    let id = store
        .enqueue(msg(1, Category::Bill), t0())
        .await
        .unwrap()
        .id();
    store
        .claim_next(t0(), take(1), Some(sim("a")))
        .await
        .unwrap();
    let later = t0() + Duration::seconds(30);
    store
        .schedule_retry(id, later, "+CMS ERROR: 500".into(), t0())
        .await
        .unwrap();
    let m = store.get(id).await.unwrap().unwrap().message;
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.last_error.as_deref(), Some("+CMS ERROR: 500"));
    assert!(
        store
            .claim_next(t0() + Duration::seconds(29), take(1), None)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_next(later, take(1), Some(sim("b")))
        .await
        .unwrap();
    assert_eq!(again[0].message.attempts, 2);
    store
        .mark_failed(id, "attempts exhausted".into(), false, later)
        .await
        .unwrap();
    let m = store.get(id).await.unwrap().unwrap().message;
    assert_eq!(m.state, MessageState::Failed);
    assert!(
        store.failed_numbers(1, 10).await.unwrap().is_empty(),
        "not the number's fault"
    );
    assert!(matches!(
        store.mark_failed(id, "again".into(), true, later).await,
        Err(StoreError::WrongState { .. })
    ));
}

/// Requests that arrive together share one transaction; a failing one must roll back alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_in_a_shared_commit_rolls_back_alone() {
    let store = Store::open_in_memory().await.unwrap();
    store.enqueue(keyed(0, "taken"), t0()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 1..=60u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                // A bulk whose last row conflicts: none of its rows may survive.
                let mut clash = keyed(i, "taken");
                clash.text = format!("different {i}");
                let batch = vec![msg(1000 + i, Category::Bill), clash];
                store.enqueue_bulk(batch, t0()).await.map(|_| ())
            } else {
                store
                    .enqueue(msg(i, Category::Manual), t0())
                    .await
                    .map(|_| ())
            }
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, conflicts), (40, 20));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.by_category(Category::Manual), 40);
    assert_eq!(
        counts.by_category(Category::Bill),
        1,
        "only the first 'taken' bill"
    );
    let real: i64 = store
        .call(|c| Ok(c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(real, 41);
    let sync: i64 = store
        .call(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(sync, 1, "back to NORMAL after durable commits");
}

/// Batches are found through their id ranges: batches interleaved within one enqueue and
/// spread over several, duplicates (no new row) and other messages inside a range.
#[tokio::test]
async fn cancel_by_batch_finds_interleaved_and_repeated_batches() {
    let store = Store::open_in_memory().await.unwrap();
    let with = |i: u32, batch: Option<&str>| {
        let mut m = keyed(i, &format!("k{i}"));
        m.batch_id = batch.map(str::to_owned);
        m
    };
    let first = vec![
        with(1, Some("a")),
        with(2, Some("b")),
        with(3, None),
        with(4, Some("a")),
    ];
    let ids1: Vec<i64> = store
        .enqueue_bulk(first, t0())
        .await
        .unwrap()
        .iter()
        .map(|o| o.id())
        .collect();
    // A re-run (duplicate of 1) plus new members of both batches.
    let second = vec![with(1, Some("a")), with(5, Some("b")), with(6, Some("a"))];
    let out2 = store.enqueue_bulk(second, t0()).await.unwrap();
    assert_eq!(out2[0], EnqueueOutcome::Duplicate(ids1[0]));
    let n = store
        .cancel(CancelTarget::Batch("a".into()), t0())
        .await
        .unwrap();
    assert_eq!(n, 3, "messages 1, 4 and 6");
    let state = |id: i64| {
        let store = store.clone();
        async move { store.get(id).await.unwrap().unwrap().message.state }
    };
    assert_eq!(state(ids1[0]).await, MessageState::Cancelled);
    assert_eq!(state(ids1[1]).await, MessageState::Queued);
    assert_eq!(state(ids1[2]).await, MessageState::Queued);
    assert_eq!(state(ids1[3]).await, MessageState::Cancelled);
    assert_eq!(state(out2[1].id()).await, MessageState::Queued);
    assert_eq!(state(out2[2].id()).await, MessageState::Cancelled);
    assert_eq!(
        store
            .cancel(CancelTarget::Batch("a".into()), t0())
            .await
            .unwrap(),
        0,
        "already cancelled"
    );
    // Each range is walked by rowid, not by scanning the table.
    let plan: Vec<String> = store
        .call(|c| {
            let mut stmt = c.prepare(
                "EXPLAIN QUERY PLAN UPDATE messages SET state = 'cancelled', updated_at = ?2
                 WHERE id BETWEEN ?3 AND ?4 AND batch_id = ?1 AND state = 'queued'",
            )?;
            let rows = stmt
                .query_map(rusqlite::params!["a", 0, 1, 2], |r| r.get::<_, String>(3))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert!(
        plan.iter().any(|p| p.contains("INTEGER PRIMARY KEY")),
        "plan: {plan:?}"
    );
}
