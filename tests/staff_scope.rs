//! Supply-station scopes: a token limited to stations 330112… reaches its stations'
//! accounts, feeders, areas and station codes, and nothing else (403 with the reason, audited);
//! bureau-wide broadcasts need admin; reports are filtered to the token's stations.

mod staff_common;

use gridsms::api::Caller;
use gridsms::api::scope::{ScopeError, check_outage};
use serde_json::json;
use staff_common::*;

const TEXT: &str = "明日上午线路检修，请提前做好准备。";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_token_allowed_within_refused_outside_and_audited() {
    let env = env_with("").await;
    let d = start(&env).await;
    let station = d.api.with_token(Some(STATION_TOKEN));
    let later = (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339();

    // Allowed: an account of 33011202, its own station codes, feeder F1, area T2.
    let (s, b) = station
        .post("/api/v1/messages", json!({"account": "A3", "text": TEXT}))
        .await;
    assert_eq!(s, 202, "{b}");
    for audience in [
        json!({"stations": ["33011201", "33011202"]}),
        json!({"feeders": ["F1"], "areas": ["T2"]}),
    ] {
        let (s, b) = station
            .post(
                "/api/v1/broadcasts",
                json!({"text": TEXT, "audience": audience, "not_before": later}),
            )
            .await;
        assert_eq!(s, 202, "{audience} → {b}");
    }

    // Refused: an account of 33011301, a raw number, a wider or foreign station code, a
    // feeder or area of another station, the whole bureau.
    let refusals = [
        (
            "/api/v1/messages",
            json!({"account": "A6", "text": TEXT}),
            "station 33011301",
        ),
        (
            "/api/v1/messages",
            json!({"to": "13800000001", "text": TEXT}),
            "not to phone numbers",
        ),
        (
            "/api/v1/broadcasts",
            json!({"text": TEXT, "audience": {"stations": ["3301"]}}),
            "station 3301 is outside",
        ),
        (
            "/api/v1/broadcasts",
            json!({"text": TEXT, "audience": {"feeders": ["F3"]}}),
            "feeder F3 belongs to station 33011301",
        ),
        (
            "/api/v1/broadcasts",
            json!({"text": TEXT, "audience": {"areas": ["T1", "T3"]}}),
            "area T3 belongs to station 33011301",
        ),
        (
            "/api/v1/broadcasts",
            json!({"text": TEXT, "audience": {}}),
            "limited to stations",
        ),
    ];
    let before = audit(&d.api, "actor=station-a").await.len();
    for (path, body, reason) in &refusals {
        let (s, b) = station.post(path, body.clone()).await;
        assert_eq!(s, 403, "{body} → {b}");
        assert!(
            b["error"].as_str().unwrap().contains(reason),
            "{body} → {b} (wanted {reason:?})"
        );
    }
    let entries = audit(&d.api, "actor=station-a").await;
    assert_eq!(entries.len(), before + refusals.len());
    for (e, (_, _, reason)) in entries.iter().zip(refusals.iter().rev()) {
        let r = e["result"].as_str().unwrap();
        assert!(r.starts_with("refused: ") && r.contains(reason), "{e}");
    }
    // Nothing of the refused requests was queued: no message reached station 33011301's A6.
    let (_, list) = d.api.get("/api/v1/messages?limit=1000").await;
    let stations: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to"].as_str().unwrap())
        .collect();
    assert!(!stations.contains(&"+8613800000006"), "{stations:?}");

    // Reports: the station token sees its stations only; SIM usage is refused.
    let (s, r) = station.get("/api/v1/reports/delivery").await;
    assert_eq!(s, 200, "{r}");
    assert!(!r["rows"].as_array().unwrap().is_empty(), "{r}");
    assert!(
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["station"]
                .as_str()
                .is_some_and(|s| s.starts_with("330112"))),
        "{r}"
    );
    let (s, r) = station.get("/api/v1/reports/sims").await;
    assert_eq!(s, 403, "{r}");

    // Messages of other stations are invisible to it (listing and by id); its own and its
    // stations' are visible.
    let (s, other) = d
        .api
        .post("/api/v1/messages", json!({"account": "A6", "text": TEXT}))
        .await;
    assert_eq!(s, 202, "{other}");
    let other_id = other["ids"][0].as_i64().unwrap();
    let (s, _) = station.get(&format!("/api/v1/messages/{other_id}")).await;
    assert_eq!(s, 404);
    let (s, _) = d.api.get(&format!("/api/v1/messages/{other_id}")).await;
    assert_eq!(s, 200);
    let (s, list) = station.get("/api/v1/messages?limit=1000").await;
    assert_eq!(s, 200);
    let seen: Vec<i64> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert!(!seen.is_empty() && !seen.contains(&other_id), "{list}");
    let (_, all) = d.api.get("/api/v1/messages?limit=1000").await;
    assert_eq!(
        all["messages"].as_array().unwrap().len(),
        seen.len() + 1,
        "everything but A6's message is the station's"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_bureau_broadcast_needs_admin() {
    let env = env_with("").await;
    let d = start(&env).await;
    let body = json!({"text": TEXT, "audience": {}, "dry_run": true});
    let (s, b) = d
        .api
        .with_token(Some(DESK_TOKEN))
        .post("/api/v1/broadcasts", body.clone())
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(b["error"].as_str().unwrap().contains("admin"), "{b}");
    let (s, b) = d.api.post("/api/v1/broadcasts", body).await;
    assert_eq!(s, 200, "{b}");
    // Every valid phone of every station: 0001 0002 0003 0004 0006.
    assert_eq!(b["recipients"], json!(5), "{b}");
    let refused = audit(&d.api, "actor=desk&action=broadcast").await;
    assert_eq!(refused.len(), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_hook_checks_feeders_and_areas_against_stations() {
    let env = env_with("").await;
    let d = start(&env).await;
    let config = d.running.shared.config();
    let token = |name: &str| {
        Caller(
            config
                .api
                .tokens
                .iter()
                .find(|t| t.name == name)
                .cloned()
                .expect("token"),
        )
    };
    let (station, desk) = (token("station-a"), token("desk"));
    let dir = d.running.shared.directory();
    let areas = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        check_outage(&station, dir.as_ref(), Some("F1"), &[]).await,
        Ok(())
    );
    assert_eq!(
        check_outage(&station, dir.as_ref(), None, &areas(&["T1", "T2"])).await,
        Ok(())
    );
    assert!(matches!(
        check_outage(&station, dir.as_ref(), Some("F3"), &[]).await,
        Err(ScopeError::Refused(r)) if r.contains("33011301")
    ));
    assert!(matches!(
        check_outage(&station, dir.as_ref(), Some("NOSUCH"), &[]).await,
        Err(ScopeError::Refused(r)) if r.contains("not known")
    ));
    // A scoped token cannot be checked without the marketing database: never allowed blind.
    assert!(matches!(
        check_outage(&station, None, Some("F1"), &[]).await,
        Err(ScopeError::Unavailable(_))
    ));
    // A bureau-wide outage token passes (the 95598 desk names any feeder).
    assert_eq!(
        check_outage(&desk, dir.as_ref(), Some("F3"), &[]).await,
        Ok(())
    );
    d.stop().await;
}

#[tokio::test]
async fn station_scopes_are_validated_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.token"), "0123456789abcdef0123").unwrap();
    let text = "[[api.tokens]]\nname = \"x\"\nsecret_file = \"t.token\"\n\
                scopes = [\"admin\"]\nstations = [\"330112\", \"33-01\", \"330112\"]\n\
                [reports]\nprice_per_segment = { china-mobile = 0.05, acme = 0.1, china-unicom = 0.123456 }\n";
    let err = gridsms::config::parse(text, &dir.path().join("g.toml"))
        .expect_err("invalid")
        .to_string();
    for needle in [
        "api.tokens[0].stations[1]",
        "listed twice",
        "cannot hold the admin scope",
        "unknown carrier \"acme\"",
        "at most 4 decimals",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}
