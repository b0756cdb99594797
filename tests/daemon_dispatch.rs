//! The dispatcher end to end: the daemon in-process on test-owned simulated modems over ptys.
//! Priorities, carrier preference, quotas (kept across a restart), failover, backoff, expiry,
//! quiet hours on a manual clock, status reports, and a pool that is all down.

mod common;

use common::*;
use gridsms::message::Category;
use gridsms::modem::ModemState;
use gridsms::phone;
use gridsms::sim::Fault;
use gridsms::store::{NewMessage, Store};
use serde_json::json;
use std::time::Duration;

const TEXT: &str = "您本月电费为128.50元，请于25日前缴纳。";

async fn wait_ready(d: &Daemon, n: usize) {
    wait_until("modems ready", SOON, || {
        d.running
            .shared
            .modems()
            .iter()
            .filter(|m| m.state == ModemState::Ready)
            .count()
            >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_goes_before_bills_queued_earlier() {
    let env = Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours_categories = []\n",
    )
    .await;
    // Queue before the daemon runs, bills first, so only priority can put the outage first.
    {
        std::fs::create_dir_all(env.dir.path().join("data")).expect("data dir");
        let store = Store::open(env.storage_path()).await.expect("store");
        let now = chrono::Utc::now();
        let mut batch = Vec::new();
        for n in ["13800138001", "13800138002", "13800138003"] {
            let to = phone::normalise(n).expect("number");
            batch.push(NewMessage::new(to, TEXT, Category::Bill));
        }
        let to = phone::normalise("13800138009").expect("number");
        batch.push(NewMessage::new(to, "停电通知", Category::Outage));
        store.enqueue_bulk(batch, now).await.expect("enqueue");
    }
    let d = env.start_now().await;
    let sim = env.sim("m1");
    assert!(sim.wait_sent(4, SOON).await, "all four sent");
    let order: Vec<String> = sim.sent().into_iter().map(|s| s.to).collect();
    assert_eq!(order[0], intl("13800138009"), "outage first: {order:?}");
    assert_eq!(
        &order[1..],
        &[
            intl("13800138001"),
            intl("13800138002"),
            intl("13800138003")
        ],
        "bills in the order queued"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_go_through_a_sim_of_their_carrier() {
    let env = Env::new(
        vec![modem("cmcc", Mnc::Mobile), modem("cucc", Mnc::Unicom)],
        "quiet_hours_categories = []\n",
    )
    .await;
    let d = env.start_now().await;
    wait_ready(&d, 2).await;
    let mobile: Vec<String> = (0..4).map(|i| format!("1380013800{i}")).collect();
    let unicom: Vec<String> = (0..4).map(|i| format!("1301234567{i}")).collect();
    // One at a time, each on an idle pool: carrier is a preference among SIMs free now (a
    // busy SIM of the right carrier does not hold a message back), so only an idle pool
    // makes the choice deterministic.
    for n in mobile.iter().chain(&unicom) {
        let id = d.api.send(json!({"to": n, "text": TEXT})).await[0];
        d.api.wait_state(id, &["sent", "delivered"], SOON).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until("8 sent", SOON, || env.sent_total() >= 8).await;
    let to_of = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = env.sim(name).sent().into_iter().map(|s| s.to).collect();
        v.sort();
        v
    };
    let want = |v: &[String]| -> Vec<String> { v.iter().map(|n| intl(n)).collect() };
    assert_eq!(to_of("cmcc"), want(&mobile));
    assert_eq!(to_of("cucc"), want(&unicom));
    let (_, modems) = d.api.get("/api/v1/modems").await;
    let carriers: Vec<(String, String)> = modems
        .as_array()
        .expect("modems")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_owned(),
                m["carrier"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(carriers.len(), 2, "{modems}");
    assert_ne!(carriers[0].1, carriers[1].1, "{modems}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_quota_is_never_exceeded_and_survives_a_restart() {
    let env = Env::new(
        vec![modem("m1", Mnc::Mobile).extra("hourly_limit = 3")],
        "quiet_hours_categories = []\n",
    )
    .await;
    let (clock, shared_clock) = manual_clock(10, 5);
    let d = env.start(shared_clock.clone()).await;
    let sim = env.sim("m1");
    let to: Vec<String> = (0..5).map(|i| format!("1380013810{i}")).collect();
    let ids = d.api.send(json!({"to": to, "text": TEXT})).await;
    assert!(sim.wait_sent(3, SOON).await);
    // Give the dispatcher every chance to overshoot, then look.
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.wake();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.sent_total(), 3, "hourly limit 3 exceeded");
    let q = d.api.queue().await;
    assert_eq!(q["by_state"]["queued"], json!(2), "{q}");
    let (_, modems) = d.api.get("/api/v1/modems").await;
    assert_eq!(modems[0]["sent_hour"], json!(3), "{modems}");
    assert_eq!(modems[0]["hourly_limit"], json!(3), "{modems}");
    d.stop().await;

    // Same hour, new process state: the persisted usage holds the line.
    let d = env.start(shared_clock.clone()).await;
    wait_ready(&d, 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.wake();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.sent_total(), 3, "a restart reset the hourly quota");
    let (_, modems) = d.api.get("/api/v1/modems").await;
    assert_eq!(modems[0]["sent_hour"], json!(3), "{modems}");

    // Next hour: the rest goes.
    clock.advance(Duration::from_secs(3600));
    d.wake();
    assert!(
        sim.wait_sent(5, SOON).await,
        "sent after the hour rolled over"
    );
    for id in ids {
        d.api.wait_state(id, &["sent", "delivered"], SOON).await;
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modem_failing_mid_batch_hands_its_messages_to_another() {
    let env = Env::new(
        vec![
            modem("m1", Mnc::Mobile).send_delay(Duration::from_millis(100)),
            modem("m2", Mnc::Mobile).send_delay(Duration::from_millis(100)),
        ],
        "quiet_hours_categories = []\nmax_attempts = 6\n\
         backoff = { initial = \"200ms\", max = \"1s\", multiplier = 2.0, jitter = 0.2 }\n",
    )
    .await;
    let d = env.start_now().await;
    wait_ready(&d, 2).await;
    let to: Vec<String> = (0..20).map(|i| format!("138001382{i:02}")).collect();
    let ids = d.api.send(json!({"to": to, "text": TEXT})).await;
    let m1 = env.sim("m1");
    assert!(m1.wait_sent(2, SOON).await);
    // 38 = network out of order: a "try another modem" failure, from now on
    m1.inject_fault(Fault::CmsError {
        code: 38,
        count: 10_000,
    });
    let mut moved = 0;
    for id in &ids {
        let m = d.api.wait_state(*id, &["sent", "delivered"], SOON).await;
        if m["attempts"].as_u64().unwrap_or(0) >= 2 {
            moved += 1;
            assert_eq!(m["modem"], json!("m2"), "{m}");
        }
    }
    assert!(moved >= 1, "no message was moved off the failing modem");
    // each recipient got its message exactly once
    let mut all: Vec<String> = env
        .sent_by()
        .into_values()
        .flatten()
        .map(|s| s.to)
        .collect();
    all.sort();
    let mut want: Vec<String> = to.iter().map(|n| intl(n)).collect();
    want.sort();
    assert_eq!(all, want);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_then_fail_with_a_reason() {
    let env = Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours_categories = []\nmax_attempts = 3\n\
         backoff = { initial = \"100ms\", max = \"300ms\", multiplier = 2.0, jitter = 0.2 }\n",
    )
    .await;
    let d = env.start_now().await;
    wait_ready(&d, 1).await;
    let sim = env.sim("m1");

    // permanent for the message (304 = invalid PDU parameter): failed after one attempt
    sim.inject_fault(Fault::CmsError {
        code: 304,
        count: 1,
    });
    let id = d.api.send(json!({"to": "13800138000", "text": TEXT})).await[0];
    let m = d.api.wait_state(id, &["failed"], SOON).await;
    assert_eq!(m["attempts"], json!(1), "{m}");
    assert!(
        m["last_error"].as_str().is_some_and(|e| e.contains("304")),
        "{m}"
    );

    // transient, always: retried with backoff until max_attempts, then failed with the reason
    sim.inject_fault(Fault::CmsError {
        code: 38,
        count: 10_000,
    });
    let id = d.api.send(json!({"to": "13800138001", "text": TEXT})).await[0];
    let m = d.api.wait_state(id, &["failed"], SOON).await;
    assert_eq!(m["attempts"], json!(3), "{m}");
    let reason = m["last_error"].as_str().unwrap_or("");
    assert!(!reason.is_empty(), "{m}");
    let (_, metrics) = d.api.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or("").to_owned();
    assert!(
        metrics.contains("gridsms_messages_retried_total 2"),
        "two retries scheduled:\n{metrics}"
    );
    assert_eq!(sim.sent_total(), 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_go_before_it_expires_ends_expired() {
    let mut env = Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours_categories = []\n",
    )
    .await;
    env.shutdown_sims().await; // the modem is gone: nothing can be sent
    let d = env.start_now().await;
    let expires = (chrono::Utc::now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
    let id = d
        .api
        .send(json!({"to": "13800138000", "text": TEXT, "expires_at": expires}))
        .await[0];
    let m = d
        .api
        .wait_state(id, &["expired"], Duration::from_secs(60))
        .await;
    assert_eq!(m["attempts"], json!(0), "{m}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bills_wait_out_quiet_hours_manual_notices_do_not() {
    let env = Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours = \"21:00-08:00\"\n",
    )
    .await;
    let (clock, shared_clock) = manual_clock(22, 0);
    let d = env.start(shared_clock).await;
    wait_ready(&d, 1).await;
    let sim = env.sim("m1");
    let bill = d
        .api
        .send(json!({"to": "13800138001", "text": TEXT, "category": "bill"}))
        .await[0];
    let manual = d
        .api
        .send(json!({"to": "13800138002", "text": "您好", "category": "manual"}))
        .await[0];
    d.api.wait_state(manual, &["sent", "delivered"], SOON).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.wake();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.api.state(bill).await, "queued");
    assert_eq!(sim.sent_total(), 1);
    // 07:59 next morning: still held
    clock.advance(Duration::from_secs(9 * 3600 + 59 * 60));
    d.wake();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.api.state(bill).await, "queued");
    // 08:01: goes
    clock.advance(Duration::from_secs(120));
    d.wake();
    d.api.wait_state(bill, &["sent", "delivered"], SOON).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_deliver_or_fail_and_count_the_number() {
    let mut spec = modem("m1", Mnc::Mobile);
    // TP-ST 0x41: incompatible destination, a permanent error
    spec.options
        .report_status
        .insert("13800138666".to_owned(), 0x41);
    let env = Env::new(
        vec![spec],
        "quiet_hours_categories = []\nstatus_reports = true\n",
    )
    .await;
    let d = env.start_now().await;
    let good = d.api.send(json!({"to": "13800138000", "text": TEXT})).await[0];
    let bad = d.api.send(json!({"to": "13800138666", "text": TEXT})).await[0];
    let long = d
        .api
        .send(json!({"to": "13800138001", "text": "长".repeat(150)}))
        .await[0];
    let m = d.api.wait_state(good, &["delivered"], SOON).await;
    assert!(m["delivered_at"].is_string(), "{m}");
    let m = d.api.wait_state(long, &["delivered"], SOON).await;
    assert_eq!(m["segments"], json!(3), "{m}");
    let m = d.api.wait_state(bad, &["failed"], SOON).await;
    assert!(m["last_error"].is_string(), "{m}");
    let failed = d
        .running
        .shared
        .store
        .failed_numbers(1, 10)
        .await
        .expect("failed numbers");
    let listed = format!("{failed:?}");
    assert!(listed.contains("13800138666"), "{listed}");
    assert!(!listed.contains("13800138000"), "{listed}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_modems_down_messages_wait_and_status_says_why() {
    let mut env = Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours_categories = []\n",
    )
    .await;
    env.shutdown_sims().await;
    let d = env.start_now().await;
    let id = d.api.send(json!({"to": "13800138000", "text": TEXT})).await[0];
    let mut why = String::new();
    let deadline = std::time::Instant::now() + SOON;
    while std::time::Instant::now() < deadline {
        why = d.api.queue().await["dispatcher"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if why.contains("all modems down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(why.contains("all modems down"), "{why}");
    assert!(why.contains("m1"), "the status names the modem: {why}");
    assert_eq!(d.api.state(id).await, "queued");
    let q = d.api.queue().await;
    assert_eq!(q["pending"], json!(1), "{q}");
    d.stop().await;
}
