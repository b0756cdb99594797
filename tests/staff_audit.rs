//! The audit trail: every staff action leaves exactly one entry (sends, sends by account,
//! broadcasts, cancellations, overrides, refusals, config reloads); a read token sees only its
//! own entries; the table is append-only (UPDATE and early DELETE abort in SQLite itself) and
//! retention keeps at least six months.

mod staff_common;

use chrono::{Duration, TimeZone, Utc};
use gridsms::store::Store;
use gridsms::store::audit::{self, AuditAction, AuditEntry, AuditFilter};
use serde_json::json;
use staff_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_leaves_exactly_one_entry() {
    let env = env_with("").await;
    let d = start(&env).await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339();
    let sender = d.api.with_token(Some(SEND_TOKEN));
    let reader = d.api.with_token(Some(READ_TOKEN));
    let ids = sender
        .send(json!({"to": "13800000001", "text": "一", "not_before": later}))
        .await;
    let (s, _) = sender
        .post(
            "/api/v1/messages",
            json!({"account": "A2", "text": "二", "not_before": later}),
        )
        .await;
    assert_eq!(s, 202);
    let (s, b) = d
        .api
        .post(
            "/api/v1/broadcasts",
            json!({"text": "三", "audience": {"stations": ["33011202"]}, "not_before": later}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let (s, _) = sender
        .post(&format!("/api/v1/messages/{}/cancel", ids[0]), json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = reader
        .post(
            "/api/v1/messages",
            json!({"to": "13800000001", "text": "四"}),
        )
        .await;
    assert_eq!(s, 403);
    assert!(
        d.running.reload().await,
        "reload of an unchanged file applies"
    );
    // Reads leave nothing.
    let _ = d.api.get("/api/v1/reports/delivery").await;
    let _ = reader.get("/api/v1/audit").await;

    let entries = audit(&d.api, "").await;
    let got: Vec<(String, String)> = entries
        .iter()
        .rev()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let e = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        got,
        vec![
            e("sender", "send"),
            e("sender", "send_by_account"),
            e("admin", "broadcast"),
            e("sender", "cancel"),
            e("reader", "send"),
            e("sighup", "config_reload"),
        ]
    );
    assert!(
        entries[1]["result"]
            .as_str()
            .unwrap()
            .starts_with("refused: ")
    );
    assert_eq!(entries[0]["result"], json!("ok"));
    // Each sending entry names its batch, which is what the messages carry.
    assert_eq!(entries[3]["batch_id"], b["broadcast_id"]);

    // A read token sees its own entries only, and may not ask for another actor's.
    let (s, page) = reader.get("/api/v1/audit").await;
    assert_eq!(s, 200, "{page}");
    let mine = page["entries"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["actor"], json!("reader"));
    let (s, _) = reader.get("/api/v1/audit?actor=admin").await;
    assert_eq!(s, 403);
    // Paging and filters.
    let (s, page) = d.api.get("/api/v1/audit?limit=2").await;
    assert_eq!(s, 200);
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_i64().expect("more pages");
    let (_, next) = d
        .api
        .get(&format!("/api/v1/audit?limit=10&cursor={cursor}"))
        .await;
    assert_eq!(next["entries"].as_array().unwrap().len(), 4);
    assert_eq!(next["next_cursor"], json!(null));
    let (s, b) = d.api.get("/api/v1/audit?action=nonsense").await;
    assert_eq!((s, b["field"].clone()), (400, json!("action")));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reload_is_audited_as_an_error() {
    let env = env_with("").await;
    let d = start(&env).await;
    std::fs::write(&env.config_path, "[dispatch]\nmax_attempts = \"many\"\n").unwrap();
    assert!(!d.running.reload().await);
    let entries = audit(&d.api, "action=config_reload").await;
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]["result"]
            .as_str()
            .unwrap()
            .starts_with("error: ")
    );
    d.stop().await;
}

#[tokio::test]
async fn append_only_and_kept_at_least_six_months() {
    let store = Store::open_in_memory().await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap();
    let ages = [400, 200, 184, 182, 10];
    for days in ages {
        let e = AuditEntry::new(now - Duration::days(days), "admin", AuditAction::Send)
            .target(format!("{days} days ago"));
        store.call(move |c| audit::record(c, &e)).await.unwrap();
    }
    // The schema itself refuses edits and early deletes.
    for sql in [
        "UPDATE audit SET actor = 'someone else'",
        "UPDATE audit SET result = 'ok' WHERE id = 1",
        "DELETE FROM audit",
        "DELETE FROM audit_retention",
    ] {
        let err = store
            .call(move |c| Ok(c.execute(sql, [])?))
            .await
            .expect_err(sql)
            .to_string();
        assert!(
            err.contains("append-only")
                || err.contains("only by retention")
                || err.contains("gate"),
            "{sql}: {err}"
        );
    }
    // Retention of 30 days still keeps 183.
    let pruned = store.call(move |c| audit::prune(c, now, 30)).await.unwrap();
    assert_eq!(pruned, 3);
    let left = store
        .call(|c| {
            audit::list(
                c,
                &AuditFilter {
                    limit: 100,
                    ..AuditFilter::default()
                },
            )
        })
        .await
        .unwrap();
    let targets: Vec<&str> = left.iter().filter_map(|e| e.target.as_deref()).collect();
    assert_eq!(targets, vec!["10 days ago", "182 days ago"]);
    // Even after pruning, the recent rows stay protected, and the gate cannot move back.
    let err = store
        .call(|c| Ok(c.execute("DELETE FROM audit", [])?))
        .await
        .expect_err("protected");
    assert!(err.to_string().contains("only by retention"), "{err}");
    let err = store
        .call(|c| Ok(c.execute("UPDATE audit_retention SET prune_before = 0", [])?))
        .await
        .expect_err("gate moves forward only");
    assert!(err.to_string().contains("only moves forward"), "{err}");
}
