//! Reports against a seeded scenario run through simulated modems: deliveries and failures
//! come from the simulators' status reports. The delivery report adds up exactly (per row and
//! in total, segments and cost per SIM price), the failed-number report lists the permanent
//! and the repeated temporary failures with their accounts, the SIM report counts segments and
//! cost per month, and the CLI writes the CSV with a BOM, dates and ¥ amounts.

mod staff_common;

use gridsms::store::contacts::{BindingStatus, ContactSource};
use serde_json::{Value, json};
use staff_common::*;
use std::process::Command;

/// 80 characters: two UCS-2 segments.
const LONG: &str = "尊敬的客户：因线路改造，您所在台区将于本周六上午八点至下午六点停电，期间请做好准备，给您带来不便，敬请谅解。如有疑问请拨打供电服务热线咨询。国网供电所";

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_add_up_against_a_seeded_scenario() {
    let mut cmcc = modem("m1", Mnc::Mobile).extra("price_per_segment = 0.05");
    let mut cucc = modem("m2", Mnc::Unicom); // priced by carrier in [reports]
    // The dispatcher may use either SIM: both networks report the same fates.
    for options in [&mut cmcc.options, &mut cucc.options] {
        options.report_status.insert("13800000007".into(), 0x41); // permanent
        options.report_status.insert("13800000008".into(), 0x61); // temporary, gave up
        options.report_status.insert("13800000009".into(), 0x61);
    }
    let env = Env::new(vec![cmcc, cucc], "quiet_hours_categories = []\n").await;
    write_staff_config(
        &env,
        "[reports]\ntemporary_failures = 2\nprice_per_segment = { china-unicom = 0.06 }\n",
    );
    let d = start(&env).await;
    let shared = d.running.shared.clone();
    let now = shared.clock.now();
    shared
        .store
        .call(move |c| {
            let p = gridsms::phone::normalise("13800000007").expect("phone");
            gridsms::store::contacts::upsert_binding(
                c,
                &p,
                "A9",
                ContactSource::Legacy,
                BindingStatus::Active,
                None,
                now,
            )
        })
        .await
        .unwrap();

    let api = &d.api;
    let mut finished: Vec<i64> = Vec::new();
    let (s, b) = api
        .post("/api/v1/messages", json!({"account": "A1", "text": LONG}))
        .await;
    assert_eq!(s, 202, "{b}");
    finished.extend(
        b["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap()),
    );
    for to in ["13800000007", "13800000008", "13800000008", "13800000009"] {
        finished.extend(api.send(json!({"to": to, "text": "短信"})).await);
    }
    finished.extend(api.send(json!({"to": "18600000001", "text": LONG})).await);
    let later = (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339();
    let held = api
        .send(json!({"to": "13800000011", "text": "短信", "not_before": later}))
        .await;
    let cancelled = api
        .send(json!({"to": "13800000012", "text": "短信", "not_before": later}))
        .await;
    let (s, _) = api
        .post(
            &format!("/api/v1/messages/{}/cancel", cancelled[0]),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    for id in &finished {
        api.wait_state(*id, &["delivered", "failed"], SOON).await;
    }

    // Delivery: 9 accepted = 3 delivered + 4 failed + 1 queued + 1 cancelled.
    let (s, r) = api.get("/api/v1/reports/delivery").await;
    assert_eq!(s, 200, "{r}");
    let t = &r["totals"];
    assert_eq!(
        [
            &t["accepted"],
            &t["delivered"],
            &t["failed"],
            &t["queued"],
            &t["cancelled"],
            &t["sent"],
            &t["expired"]
        ]
        .map(n),
        [9, 3, 4, 1, 1, 0, 0],
        "{r}"
    );
    // Segments on air: A1's two phones × 2 + four short ones + 2 for 18600000001, and each
    // SIM's share is what its simulator received.
    assert_eq!(n(&t["segments"]), 10, "{r}");
    let (on_m1, on_m2) = (
        env.sim("m1").sent().len() as i64,
        env.sim("m2").sent().len() as i64,
    );
    assert_eq!(on_m1 + on_m2, 10);
    // Cost: m1's own price ¥0.05, m2's carrier price (China Unicom) ¥0.06.
    let cost_units = on_m1 * 500 + on_m2 * 600;
    assert_eq!(t["cost_units"], json!(cost_units));
    let expected_cost = format!("{}.{:02}", cost_units / 10_000, (cost_units % 10_000) / 100);
    assert_eq!(t["cost"], json!(expected_cost));
    let rows = r["rows"].as_array().unwrap();
    for key in [
        "accepted",
        "delivered",
        "failed",
        "queued",
        "cancelled",
        "segments",
        "cost_units",
    ] {
        let sum: i64 = rows.iter().map(|row| row[key].as_i64().unwrap()).sum();
        assert_eq!(
            sum,
            t[key].as_i64().unwrap(),
            "rows do not add up in {key}: {r}"
        );
    }
    for row in rows {
        let parts: u64 = [
            "queued",
            "sent",
            "delivered",
            "failed",
            "expired",
            "cancelled",
        ]
        .iter()
        .map(|k| n(&row[k]))
        .sum();
        assert_eq!(parts, n(&row["accepted"]), "{row}");
    }
    // A1's messages carry its station; per SIM rows carry that SIM's price.
    let a1: Vec<&Value> = rows
        .iter()
        .filter(|row| row["station"] == json!("33011201"))
        .collect();
    let sum = |rows: &[&Value], k: &str| rows.iter().map(|r| n(&r[k])).sum::<u64>();
    assert_eq!(
        (
            sum(&a1, "accepted"),
            sum(&a1, "delivered"),
            sum(&a1, "segments")
        ),
        (2, 2, 4),
        "{r}"
    );
    for row in rows {
        let price = match row["modem"].as_str() {
            Some("m1") => 500,
            Some("m2") => 600,
            _ => 0,
        };
        assert_eq!(
            row["cost_units"],
            json!(price * n(&row["segments"]) as i64),
            "{row}"
        );
        assert_eq!(row["priced"], json!(true), "{row}");
    }

    // Failed numbers: the permanent one (with the account binding it) and the one that failed
    // twice; the number that failed once temporarily is not listed.
    let (s, f) = api.get("/api/v1/reports/failed-numbers").await;
    assert_eq!(s, 200, "{f}");
    let numbers = f["numbers"].as_array().unwrap();
    let listed: Vec<&str> = numbers
        .iter()
        .map(|x| x["number"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["+8613800000007", "+8613800000008"], "{f}");
    assert_eq!(numbers[0]["permanent_failures"], json!(1));
    assert_eq!(numbers[0]["accounts"], json!(["A9"]));
    assert!(
        numbers[0]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    assert_eq!(
        (
            &numbers[1]["permanent_failures"],
            &numbers[1]["failed_messages"]
        ),
        (&json!(0), &json!(2))
    );

    // SIMs: segments and cost this month per SIM; usage against limits now.
    let (s, sims) = api.get("/api/v1/reports/sims").await;
    assert_eq!(s, 200, "{sims}");
    let months = sims["months"].as_array().unwrap();
    let by_modem = |m: &str| {
        months
            .iter()
            .find(|row| row["modem"] == json!(m))
            .unwrap_or_else(|| panic!("no {m} in {sims}"))
    };
    for (m, segs, price) in [("m1", on_m1, 500), ("m2", on_m2, 600)] {
        if segs > 0 {
            assert_eq!(n(&by_modem(m)["segments"]) as i64, segs, "{sims}");
            assert_eq!(by_modem(m)["cost_units"], json!(segs * price), "{sims}");
        }
    }
    let live = sims["sims"].as_array().unwrap();
    assert_eq!(live.len(), 2);
    let m1 = live.iter().find(|s| s["modem"] == json!("m1")).unwrap();
    assert_eq!(n(&m1["sent_month"]) as i64, on_m1);
    assert_eq!(m1["hourly_limit"], json!(150));

    // Bad periods are refused naming the field.
    let (s, b) = api.get("/api/v1/reports/delivery?from=yesterday").await;
    assert_eq!((s, b["field"].clone()), (400, json!("from")));

    // The CLI: CSV with BOM, Chinese headers, dates and money for people.
    let addr = d.running.api_addr.to_string();
    let token = env.dir.path().join("admin.token");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .args(["report", "delivery", "--csv", "--api"])
            .arg(format!("http://{addr}"))
            .arg("--token-file")
            .arg(&token)
            .arg("--config")
            .arg("/nonexistent/gridsms.toml")
            .output()
            .expect("run gridsms report")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(csv.starts_with('\u{feff}'), "no BOM");
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert!(lines[0].contains("日期,类别,供电所"), "{csv}");
    assert_eq!(lines.len(), rows.len() + 2, "{csv}");
    let total = lines.last().unwrap();
    let tail = format!(",9,1,0,3,4,0,1,10,¥{expected_cost}");
    assert!(
        total.starts_with("合计,") && total.ends_with(&tail),
        "{total}"
    );
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string();
    assert!(lines[1].starts_with(&today), "{csv}");
    let _ = held;
    d.stop().await;
}

#[tokio::test]
async fn report_queries_run_on_their_own_reader_and_are_interrupted_past_their_deadline() {
    use gridsms::reports::{Period, query};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let store = gridsms::store::Store::open(&path).await.unwrap();
    let now = chrono::Utc::now();
    let msgs: Vec<gridsms::store::NewMessage> = (0..5_000)
        .map(|i| {
            gridsms::store::NewMessage::new(
                gridsms::phone::normalise(&format!("138{i:08}")).unwrap(),
                "短信",
                gridsms::message::Category::Manual,
            )
        })
        .collect();
    store.enqueue_bulk(msgs, now).await.unwrap();
    let period = Period {
        from: now - chrono::Duration::hours(1),
        to: now + chrono::Duration::hours(1),
    };
    // The reader sees what the store thread committed, while the store stays open.
    let reader = query::open_reader(&path, std::time::Duration::from_secs(30)).unwrap();
    let agg = query::delivery(&reader, period, chrono_tz::Asia::Shanghai, &[]).unwrap();
    assert_eq!(agg.finish(period, |_| None).totals.counts.queued, 5_000);
    // It cannot write.
    assert!(reader.execute("DELETE FROM messages", []).is_err());
    // Past its deadline SQLite interrupts the query: an error, not a hang.
    let late = query::open_reader(&path, std::time::Duration::ZERO).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(query::delivery(&late, period, chrono_tz::Asia::Shanghai, &[]).is_err());
}
