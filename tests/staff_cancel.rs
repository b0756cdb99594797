//! Cancellation: a token cancels its own queued messages (one, or a whole send by batch id);
//! another token's messages are refused (403, audited) unless it is admin; only queued
//! messages are cancelled and the answer counts those already gone.

mod staff_common;

use serde_json::json;
use staff_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_messages_yes_others_no_admin_any_and_counts() {
    let env = env_with("").await;
    let d = start(&env).await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339();
    let sender = d.api.with_token(Some(SEND_TOKEN));
    let desk = d.api.with_token(Some(DESK_TOKEN));
    let (s, mine) = sender
        .post(
            "/api/v1/messages",
            json!({"to": ["13800000001", "13800000003", "13800000004"], "text": "通知", "not_before": later}),
        )
        .await;
    assert_eq!(s, 202, "{mine}");
    let ids: Vec<i64> = mine["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let batch = mine["batch_id"].as_str().unwrap().to_owned();
    // One sent right away (not held), to show "already gone".
    let now_ids = sender
        .send(json!({"to": "13800000006", "text": "通知"}))
        .await;
    d.api
        .wait_state(now_ids[0], &["sent", "delivered"], SOON)
        .await;

    // Another token may not cancel them, by id or by batch.
    let (s, b) = desk
        .post(&format!("/api/v1/messages/{}/cancel", ids[0]), json!({}))
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = desk
        .post(&format!("/api/v1/sends/{batch}/cancel"), json!({}))
        .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(d.api.state(ids[0]).await, "queued");

    // The owner cancels one, then the rest of the batch.
    let (s, b) = sender
        .post(&format!("/api/v1/messages/{}/cancel", ids[0]), json!({}))
        .await;
    assert_eq!(
        (s, b.clone()),
        (200, json!({"cancelled": 1, "already_gone": 0})),
        "{b}"
    );
    let (s, b) = sender
        .post(&format!("/api/v1/sends/{batch}/cancel"), json!({}))
        .await;
    assert_eq!(
        (s, b.clone()),
        (200, json!({"cancelled": 2, "already_gone": 1})),
        "{b}"
    );
    for id in &ids {
        assert_eq!(d.api.state(*id).await, "cancelled");
    }
    // A sent message is not cancelled; admin may try on anyone's.
    let (s, b) = d
        .api
        .post(
            &format!("/api/v1/messages/{}/cancel", now_ids[0]),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, b.clone()),
        (200, json!({"cancelled": 0, "already_gone": 1})),
        "{b}"
    );
    assert_ne!(d.api.state(now_ids[0]).await, "cancelled");
    // Unknown targets: 404.
    let (s, _) = sender
        .post("/api/v1/messages/999999/cancel", json!({}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = sender
        .post("/api/v1/sends/no-such-batch/cancel", json!({}))
        .await;
    assert_eq!(s, 404);

    let entries = audit(&d.api, "action=cancel").await;
    let rows: Vec<(String, u64, String)> = entries
        .iter()
        .rev()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["recipients"].as_u64().unwrap(),
                e["result"].as_str().unwrap().chars().take(7).collect(),
            )
        })
        .collect();
    let r = |a: &str, n: u64, res: &str| (a.to_owned(), n, res.to_owned());
    assert_eq!(
        rows,
        vec![
            r("desk", 0, "refused"),
            r("desk", 0, "refused"),
            r("sender", 1, "ok"),
            r("sender", 2, "ok"),
            r("admin", 0, "ok"),
        ]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_cancels_the_notices_of_an_outage_it_entered() {
    let env = env_with("").await;
    let d = start(&env).await;
    // Notices as the outage desk queues them for a manual outage: origin outage:TOKEN.
    let later = d.running.shared.clock.now() + chrono::Duration::hours(6);
    let msgs: Vec<gridsms::store::NewMessage> = ["13800000001", "13800000003"]
        .iter()
        .map(|p| gridsms::store::NewMessage {
            origin: Some("outage:desk".into()),
            batch_id: Some("outage-7".into()),
            not_before: Some(later),
            ..gridsms::store::NewMessage::new(
                gridsms::phone::normalise(p).unwrap(),
                "停电通知",
                gridsms::message::Category::Outage,
            )
        })
        .collect();
    d.running
        .shared
        .store
        .enqueue_bulk(msgs, d.running.shared.clock.now())
        .await
        .unwrap();
    let (s, b) = d
        .api
        .with_token(Some(SEND_TOKEN))
        .post("/api/v1/sends/outage-7/cancel", json!({}))
        .await;
    assert_eq!(s, 403, "not the sender's: {b}");
    let (s, b) = d
        .api
        .with_token(Some(DESK_TOKEN))
        .post("/api/v1/sends/outage-7/cancel", json!({}))
        .await;
    assert_eq!(
        (s, b.clone()),
        (200, json!({"cancelled": 2, "already_gone": 0})),
        "{b}"
    );
    d.stop().await;
}
