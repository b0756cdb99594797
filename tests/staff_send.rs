//! Sends by account (marketing contacts ∪ active local bindings − opt-outs), unknown accounts,
//! accounts without a phone, opt-outs on sends by phone and the admin-only override; each
//! request leaves exactly one audit entry.

mod staff_common;

use gridsms::message::Category;
use gridsms::store::contacts::{BindingStatus, ContactSource};
use serde_json::json;
use staff_common::*;

const TEXT: &str = "您的电费账单已出，请及时缴纳。";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_by_account_reaches_marketing_and_bound_phones_minus_opt_outs() {
    let env = env_with("").await;
    let d = start(&env).await;
    // A local binding (from an SMS subscription) adds a phone; a pending one does not.
    let shared = d.running.shared.clone();
    let now = shared.clock.now();
    shared
        .store
        .call(move |c| {
            let bound = gridsms::phone::normalise("13900000009").expect("phone");
            let pending = gridsms::phone::normalise("13900000010").expect("phone");
            gridsms::store::contacts::upsert_binding(
                c,
                &bound,
                "A1",
                ContactSource::Sms,
                BindingStatus::Active,
                None,
                now,
            )?;
            gridsms::store::contacts::upsert_binding(
                c,
                &pending,
                "A1",
                ContactSource::Sms,
                BindingStatus::Pending,
                None,
                now,
            )
        })
        .await
        .expect("bindings");
    // 13800000002 opted out of manual notices; an opt-out of bills does not matter here.
    opt_out(&d, "13800000002", Some(Category::Manual)).await;
    opt_out(&d, "13800000001", Some(Category::Bill)).await;

    let sender = d.api.with_token(Some(SEND_TOKEN));
    let (s, b) = sender
        .post("/api/v1/messages", json!({"account": "A1", "text": TEXT}))
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["account"], json!("A1"));
    assert_eq!(b["recipients"], json!(2));
    assert_eq!(b["opted_out"], json!(["138****0002"]));
    assert!(b["batch_id"].as_str().is_some_and(|x| !x.is_empty()), "{b}");
    let ids: Vec<i64> = b["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(
        recipients_of(&d.api, &ids).await,
        vec!["+8613800000001", "+8613900000009"]
    );
    // They really go out through the modem.
    for id in &ids {
        d.api.wait_state(*id, &["sent", "delivered"], SOON).await;
    }
    let sent: Vec<String> = env.sim("m1").sent().iter().map(|m| m.to.clone()).collect();
    assert!(sent.iter().any(|t| t.ends_with("13800000001")), "{sent:?}");
    assert!(!sent.iter().any(|t| t.ends_with("13800000002")), "{sent:?}");

    // The messages carry the account and its station.
    let account: (String, Option<String>) = {
        let id = ids[0];
        shared
            .store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT account, station FROM messages WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap()
    };
    assert_eq!(account, ("A1".to_owned(), Some("33011201".to_owned())));

    let entries = audit(&d.api, "action=send_by_account").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], json!("sender"));
    assert_eq!(entries[0]["target"], json!("A1"));
    assert_eq!(entries[0]["recipients"], json!(2));
    assert_eq!(entries[0]["result"], json!("ok"));
    assert_eq!(entries[0]["batch_id"], b["batch_id"]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_account_404_no_phone_422_both_audited_nothing_queued() {
    let env = env_with("").await;
    let d = start(&env).await;
    let (s, b) = d
        .api
        .post("/api/v1/messages", json!({"account": "NOPE", "text": TEXT}))
        .await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("unknown account NOPE"),
        "{b}"
    );
    let (s, b) = d
        .api
        .post("/api/v1/messages", json!({"account": "A8", "text": TEXT}))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("no valid phone"),
        "{b}"
    );
    // to and account together: a plain 400, naming the field
    let (s, b) = d
        .api
        .post(
            "/api/v1/messages",
            json!({"account": "A1", "to": "13800000001", "text": TEXT}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["field"], json!("account"));
    assert_eq!(d.api.queue().await["total"], json!(0));
    let entries = audit(&d.api, "action=send_by_account").await;
    let results: Vec<&str> = entries
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{entries:?}");
    assert!(
        results[0].starts_with("refused: account A8 has no valid phone"),
        "{results:?}"
    );
    assert!(
        results[1].starts_with("refused: unknown account NOPE"),
        "{results:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_apply_to_sends_by_phone_and_only_admin_overrides() {
    let env = env_with("").await;
    let d = start(&env).await;
    opt_out(&d, "13800000001", None).await;
    let sender = d.api.with_token(Some(SEND_TOKEN));
    // Partly opted out: the others are queued, the opted-out number is listed.
    let (s, b) = sender
        .post(
            "/api/v1/messages",
            json!({"to": ["13800000001", "13800000003"], "text": TEXT}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["recipients"], json!(1));
    assert_eq!(b["opted_out"], json!(["+8613800000001"]));
    // Everyone opted out: 422, nothing queued.
    let (s, b) = sender
        .post(
            "/api/v1/messages",
            json!({"to": "13800000001", "text": TEXT}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(d.api.queue().await["total"], json!(1));
    // Replies are never suppressed by an opt-out (admin may send any category).
    // The override needs admin: refused for the send token, audited.
    let (s, b) = sender
        .post(
            "/api/v1/messages",
            json!({"to": "13800000001", "text": TEXT, "override_opt_out": true}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = d
        .api
        .post(
            "/api/v1/messages",
            json!({"to": "13800000001", "text": TEXT, "override_opt_out": true}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["recipients"], json!(1));
    assert_eq!(d.api.queue().await["total"], json!(2));

    let entries = audit(&d.api, "").await;
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .rev()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["result"].as_str().unwrap().chars().take(7).collect(),
            )
        })
        .collect();
    let expect = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        summary,
        vec![
            expect("sender", "send", "ok"),
            expect("sender", "send", "refused"),
            expect("sender", "opt_out_override", "refused"),
            expect("admin", "opt_out_override", "ok"),
        ]
    );
    d.stop().await;
}
