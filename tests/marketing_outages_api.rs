//! The 95598 desk's outage API and CLI against a daemon in this process: simulated modems, a
//! SQLite marketing database, the real HTTP routes; notices go out through the modems.

mod common;
mod marketing_outages_common;

use common::{ADMIN_TOKEN, Env, Mnc, READ_TOKEN, SOON, modem, wait_until};
use gridsms::clock::SystemClock;
use marketing_outages_common::{desk, write_marketing};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;

fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

async fn started() -> (Env, common::Daemon) {
    let env = Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours_categories = []",
    )
    .await;
    let marketing = env.dir.path().join("marketing.db");
    write_marketing(
        &marketing,
        &[
            ("A1", "张三", Some("13800138001"), "F1", "T1"),
            ("A2", "李四", Some("13800138001"), "F1", "T1"),
            ("A3", "王五", Some("13900139002"), "F1", "T2"),
            ("A4", "赵六", None, "F1", "T2"),
            ("A5", "钱七", Some("13700137003"), "F2", "T3"),
        ],
    );
    let mut d = env.start_now().await;
    let store = d.running.shared.store.clone();
    d.running
        .start_outages(desk(&marketing, store, Arc::new(SystemClock)));
    (env, d)
}

fn field(body: &Value) -> &str {
    body["field"].as_str().unwrap_or("")
}

#[tokio::test]
async fn outage_api_validates_announces_sends_and_cancels() {
    let (env, d) = started().await;
    let api = &d.api;
    let now = chrono::Utc::now();
    let start = local(now + chrono::Duration::days(2));
    let end = local(now + chrono::Duration::days(2) + chrono::Duration::hours(8));

    // Scope: a read-only token may list but not announce.
    let reader = api.with_token(Some(READ_TOKEN));
    let (s, _) = reader
        .post(
            "/api/v1/outages",
            json!({"feeder": "F1", "start": start, "end": end}),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(reader.get("/api/v1/outages").await.0, 200);

    // Validation names the field.
    for (body, want) in [
        (json!({"start": start, "end": end}), "feeder"),
        (
            json!({"feeder": "F1", "start": "2020-01-01 08:00", "end": end}),
            "start",
        ),
        (json!({"feeder": "F1", "start": end, "end": start}), "end"),
        (
            json!({"feeder": "F1", "start": "tomorrow", "end": end}),
            "start",
        ),
        (
            json!({"areas": ["T 1"], "start": start, "end": end}),
            "areas[0]",
        ),
        (json!({"feeder": "F1", "start": start}), "body"),
        (
            json!({"feeder": "F1", "start": start, "end": end, "colour": 1}),
            "body",
        ),
    ] {
        let (s, b) = api.post("/api/v1/outages", body.clone()).await;
        assert_eq!((s, field(&b)), (400, want), "{body} -> {b}");
    }
    assert_eq!(
        d.running.shared.store.counts().await.unwrap().total(),
        0,
        "nothing queued by refused requests"
    );

    // 202 after commit: one notice per phone, skips counted.
    let (s, b) = api
        .post(
            "/api/v1/outages",
            json!({"feeder": "F1", "start": start, "end": end, "reason": "线路检修",
                   "area": "城关镇东街一带"}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["recipients"], 2, "{b}");
    assert_eq!(b["skipped"], 2, "{b}");
    assert_eq!(
        b["skipped_by_reason"],
        json!({"duplicate": 1, "no_phone": 1})
    );
    assert_eq!(b["short_notice"], json!(false), "{b}");
    let id = b["outage_id"].as_i64().unwrap();

    // Through the simulated modem.
    let sim = env.sim("m1");
    wait_until("both notices sent", SOON, || sim.sent_messages().len() >= 2).await;
    let mut got: Vec<(String, String)> = sim
        .sent_messages()
        .into_iter()
        .map(|m| (m.to, m.text))
        .collect();
    got.sort();
    assert_eq!(got[0].0, "+8613800138001");
    assert_eq!(got[1].0, "+8613900139002");
    assert!(
        got[0].1.contains("因线路检修") && got[0].1.contains("城关镇东街一带"),
        "{}",
        got[0].1
    );

    let (s, one) = api.get(&format!("/api/v1/outages/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(one["status"], "planned");
    assert_eq!(one["source"], "manual");
    assert_eq!(one["created_by"], "admin");
    assert_eq!(one["notices"]["planned"], 2);
    assert_eq!(api.get("/api/v1/outages/999").await.0, 404);

    // Wait until both are marked sent in the store, then cancel: both hear it.
    let store = d.running.shared.store.clone();
    let deadline = std::time::Instant::now() + SOON;
    loop {
        let sent: i64 = store
            .call(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM messages WHERE state IN ('sent', 'delivered')",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        if sent >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "notices not marked sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (s, c) = api
        .post(&format!("/api/v1/outages/{id}/cancel"), json!({}))
        .await;
    assert_eq!((s, c["recipients"].clone()), (200, json!(2)), "{c}");
    wait_until("cancellations sent", SOON, || {
        sim.sent_messages().len() >= 4
    })
    .await;
    assert!(sim.sent_messages()[2].text.contains("计划停电已取消"));
    assert_eq!(
        api.post("/api/v1/outages/999/cancel", json!({})).await.0,
        404
    );
    d.stop().await;
}

#[tokio::test]
async fn outage_cli_goes_through_the_api() {
    let (env, d) = started().await;
    let token = env.dir.path().join("admin.token");
    let base = d.api.base.clone();
    let now = chrono::Utc::now();
    let start = local(now + chrono::Duration::hours(2));
    let end = local(now + chrono::Duration::hours(5));
    let run = move |args: Vec<String>| {
        let token = token.clone();
        let base = base.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_gridsms"))
                    .arg("outage")
                    .args(&args)
                    .arg("--api")
                    .arg(&base)
                    .arg("--token-file")
                    .arg(&token)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let out = run(vec![
        "--area".into(),
        "T2".into(),
        "--area".into(),
        "T3".into(),
        "--start".into(),
        start.clone(),
        "--end".into(),
        end.clone(),
        "--reason".into(),
        "设备检修".into(),
        "--json".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["recipients"], 2, "{b}");
    assert_eq!(
        b["short_notice"],
        json!(true),
        "2 h is less than the default 24 h min_lead"
    );
    let id = b["outage_id"].as_i64().unwrap();

    let out = run(vec!["list".into()]).await;
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        listing.contains("T2,T3") && listing.contains("manual"),
        "{listing}"
    );

    let out = run(vec!["cancel".into(), id.to_string()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("outage {id}: cancelled")));

    // Bad input: the API's message, exit 1.
    let out = run(vec![
        "--feeder".into(),
        "F1".into(),
        "--start".into(),
        end.clone(),
        "--end".into(),
        start,
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("end: is not after start"));
    let out = run(vec!["--start".into(), end.clone(), "--end".into(), end]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --feeder"));
    let _ = ADMIN_TOKEN;
    d.stop().await;
}
