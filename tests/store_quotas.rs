//! Per-SIM quota counters (zone-aware buckets, kept across restarts) and retention pruning.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use gridsms::message::{Category, MessageState};
use gridsms::phone::normalise;
use gridsms::store::retention::{DEFAULT_RETENTION_DAYS, cutoff};
use gridsms::store::{NewMessage, SegmentSubmit, SimRef, Store, Usage};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[tokio::test]
async fn usage_buckets_follow_the_configured_zone_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let sim = "89860011111111111111".to_string();
    {
        let store = Store::open(&path).await.unwrap();
        // 2026-11-30 15:10 UTC = 23:10 on Nov 30 in Shanghai.
        store
            .record_segments_sent(sim.clone(), 3, utc(2026, 11, 30, 15, 10), Shanghai)
            .await
            .unwrap();
        // 15:50 UTC = 23:50 local: same local hour.
        store
            .record_segments_sent(sim.clone(), 2, utc(2026, 11, 30, 15, 50), Shanghai)
            .await
            .unwrap();
        // 16:05 UTC = 00:05 on Dec 1 local: a new hour, day and month (still Nov 30 in UTC).
        store
            .record_segments_sent(sim.clone(), 4, utc(2026, 11, 30, 16, 5), Shanghai)
            .await
            .unwrap();
        store
            .record_segments_sent("other".into(), 7, utc(2026, 11, 30, 16, 5), Shanghai)
            .await
            .unwrap();
    }
    let store = Store::open(&path).await.unwrap();
    let at_2355 = store
        .usage(sim.clone(), utc(2026, 11, 30, 15, 55), Shanghai)
        .await
        .unwrap();
    assert_eq!(
        at_2355,
        Usage {
            hour: 5,
            day: 5,
            month: 5
        }
    );
    let next_day = store
        .usage(sim.clone(), utc(2026, 11, 30, 16, 30), Shanghai)
        .await
        .unwrap();
    assert_eq!(
        next_day,
        Usage {
            hour: 4,
            day: 4,
            month: 4
        }
    );
    let later_in_dec = store
        .usage(sim.clone(), utc(2026, 12, 3, 2, 0), Shanghai)
        .await
        .unwrap();
    assert_eq!(
        later_in_dec,
        Usage {
            hour: 0,
            day: 0,
            month: 4
        }
    );
    let all = store
        .usage_all(utc(2026, 12, 1, 0, 0), Shanghai)
        .await
        .unwrap();
    assert_eq!(
        all,
        vec![
            (
                sim.clone(),
                Usage {
                    hour: 0,
                    day: 4,
                    month: 4
                }
            ),
            (
                "other".into(),
                Usage {
                    hour: 0,
                    day: 7,
                    month: 7
                }
            )
        ]
    );
}

#[tokio::test]
async fn prune_deletes_only_old_finished_messages_with_their_segments() {
    let store = Store::open_in_memory().await.unwrap();
    let now = utc(2027, 6, 1, 0, 0);
    let old = now - Duration::days(200);
    let n = |i: u32| normalise(&format!("137{i:08}")).unwrap();
    // 1,200 old delivered-or-failed messages (more than two prune batches).
    let batch: Vec<NewMessage> = (0..1200)
        .map(|i| NewMessage::new(n(i), "旧", Category::Bill))
        .collect();
    let ids: Vec<i64> = store
        .enqueue_bulk(batch, old)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id())
        .collect();
    let sim = SimRef {
        modem: "m".into(),
        iccid: "8986".into(),
    };
    for (k, id) in ids.iter().enumerate() {
        store
            .claim(*id, old, Some(sim.clone()))
            .await
            .unwrap()
            .unwrap();
        store
            .mark_segment_submitting(
                SegmentSubmit {
                    message_id: *id,
                    seq: 1,
                    total: 1,
                    concat_ref: None,
                    sim_iccid: "8986".into(),
                },
                old,
            )
            .await
            .unwrap();
        if k % 2 == 0 {
            store
                .mark_segment_submitted(*id, 1, (k % 256) as u8, old)
                .await
                .unwrap();
            store.mark_sent(*id, old).await.unwrap();
        } else {
            store
                .mark_failed(*id, "x".into(), false, old)
                .await
                .unwrap();
        }
    }
    // Old but still queued (scheduled far ahead) must survive; so must recent finished ones.
    let mut waiting = NewMessage::new(n(5000), "排队", Category::Broadcast);
    waiting.not_before = Some(now + Duration::days(1));
    let waiting = store.enqueue(waiting, old).await.unwrap().id();
    let recent = store
        .enqueue(NewMessage::new(n(5001), "新", Category::Manual), now)
        .await
        .unwrap()
        .id();
    store.claim(recent, now, None).await.unwrap().unwrap();
    store
        .mark_failed(recent, "x".into(), false, now)
        .await
        .unwrap();
    store
        .record_segments_sent("8986".into(), 1, old, Shanghai)
        .await
        .unwrap();
    store
        .record_segments_sent("8986".into(), 1, now, Shanghai)
        .await
        .unwrap();

    let deleted = store
        .prune(cutoff(now, DEFAULT_RETENTION_DAYS))
        .await
        .unwrap();
    assert_eq!(deleted, 1200);
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.total(), 2);
    assert_eq!(counts.by_state(MessageState::Queued), 1);
    assert!(store.get(waiting).await.unwrap().is_some());
    assert!(store.get(recent).await.unwrap().is_some());
    let orphans: i64 = store
        .call(|c| Ok(c.query_row("SELECT count(*) FROM segments", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(orphans, 0, "segments go with their messages");
    assert_eq!(
        store.usage("8986".into(), old, Shanghai).await.unwrap(),
        Usage::default()
    );
    assert_eq!(
        store
            .usage("8986".into(), now, Shanghai)
            .await
            .unwrap()
            .month,
        1
    );
    // Nothing more to do the second time.
    assert_eq!(
        store
            .prune(cutoff(now, DEFAULT_RETENTION_DAYS))
            .await
            .unwrap(),
        0
    );
}
