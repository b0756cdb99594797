//! Broadcasts: audience by stations, feeders and areas, deduplicated by phone; opt-outs of
//! broadcasts (and of everything) honoured; skipped rows counted; the unsubscribe hint
//! appended; a dry run answers the same numbers and queues nothing; the broadcast id cancels
//! what is still queued.

mod staff_common;

use gridsms::message::Category;
use serde_json::json;
use staff_common::*;

const NOTICE: &str = "自12月1日起执行新的居民阶梯电价。";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_deduplicated_opt_outs_dry_run_and_cancel() {
    let env = env_with("").await;
    let d = start(&env).await;
    opt_out(&d, "13800000004", Some(Category::Broadcast)).await;
    opt_out(&d, "13800000002", None).await;
    // A manual-only opt-out does not stop broadcasts.
    opt_out(&d, "13800000001", Some(Category::Manual)).await;
    let desk = d.api.with_token(Some(DESK_TOKEN));
    let later = (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339();
    // Station 33011201 (A1 ×2, A2, A8 without phone) + feeder F2 (A3, A4 none, A5 invalid,
    // A7 = A2's phone) + area T1 again (all already seen).
    let body = json!({
        "text": NOTICE,
        "audience": {"stations": ["33011201"], "feeders": ["F2"], "areas": ["T1"]},
        "not_before": later,
    });
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let (s, preview) = desk.post("/api/v1/broadcasts", dry).await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(
        d.api.queue().await["total"],
        json!(0),
        "a dry run queues nothing"
    );

    let (s, b) = desk.post("/api/v1/broadcasts", body).await;
    assert_eq!(s, 202, "{b}");
    // 13800000001, 13800000003 (A2 and A7 share it); 0002 and 0004 opted out.
    assert_eq!(b["recipients"], json!(2), "{b}");
    assert_eq!(b["opted_out"], json!(2), "{b}");
    assert_eq!(
        b["skipped"],
        json!({"no_phone": 3, "invalid_phone": 1}),
        "A8 twice (station and area) and A4; A5's invalid number"
    );
    let text = b["text"].as_str().unwrap();
    assert!(
        // Signature in front, the unsubscribe hint behind ([templates] defaults).
        text == format!("【某某供电公司】{NOTICE}回复TD退订"),
        "{text}"
    );
    assert_eq!(b["segments"], json!(2));
    assert_eq!(b["estimated_cost"], json!("0.10"));
    for key in [
        "recipients",
        "segments",
        "estimated_cost",
        "opted_out",
        "skipped",
    ] {
        assert_eq!(preview[key], b[key], "dry run and real run differ in {key}");
    }
    assert_eq!(preview["dry_run"], json!(true));

    let id = b["broadcast_id"].as_str().unwrap().to_owned();
    let (s, list) = d.api.get("/api/v1/messages?category=broadcast").await;
    assert_eq!(s, 200);
    let msgs = list["messages"].as_array().unwrap();
    let mut to: Vec<&str> = msgs.iter().map(|m| m["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, vec!["+8613800000001", "+8613800000003"]);
    assert!(
        msgs.iter()
            .all(|m| m["text"] == json!(text) && m["state"] == json!("queued"))
    );

    // Held until not_before: cancel the whole broadcast by its id.
    let (s, c) = desk
        .post(&format!("/api/v1/sends/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c, json!({"cancelled": 2, "already_gone": 0}));
    let (s, c) = desk
        .post(&format!("/api/v1/sends/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c, json!({"cancelled": 0, "already_gone": 2}));

    // One entry for the broadcast (none for the dry run), one per cancellation.
    let entries = audit(&d.api, "actor=desk").await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["cancel", "cancel", "broadcast"]);
    assert_eq!(entries[2]["recipients"], json!(2));
    assert_eq!(entries[2]["batch_id"], json!(id));
    assert_eq!(entries[1]["recipients"], json!(2));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_broadcast_with_the_same_key_queues_nothing_twice() {
    let env = env_with("").await;
    let d = start(&env).await;
    let body = json!({
        "text": NOTICE,
        "audience": {"feeders": ["F1"]},
        "idempotency_key": "tariff-2026-12",
        "not_before": (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339(),
    });
    let (s, first) = d.api.post("/api/v1/broadcasts", body.clone()).await;
    assert_eq!(s, 202, "{first}");
    let (s, again) = d.api.post("/api/v1/broadcasts", body).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(first["broadcast_id"], again["broadcast_id"]);
    assert_eq!(first["recipients"], json!(3));
    assert_eq!(d.api.queue().await["total"], json!(3));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_marketing_database_a_broadcast_is_503_not_silently_empty() {
    let env = env_with("").await;
    let d = env.start_now().await; // no Directory installed
    let (s, b) = d
        .api
        .post(
            "/api/v1/broadcasts",
            json!({"text": NOTICE, "audience": {"stations": ["33011201"]}}),
        )
        .await;
    assert_eq!(s, 503, "{b}");
    let entries = audit(&d.api, "action=broadcast").await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0]["result"].as_str().unwrap().starts_with("error:"));
    d.stop().await;
}
