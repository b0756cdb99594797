//! Customers texting keywords to a running daemon (simulated modem, SQLite marketing fixture):
//! every keyword and its variants, security of account data, subscriptions, opt-outs, rate
//! limits and the no-loop rules.

mod common;
mod inbound_support;

use common::manual_clock;
use gridsms::inbound::PlannedOutage;
use gridsms::message::Category;
use gridsms::store::contacts;
use inbound_support::*;
use std::sync::Arc;

fn from(local: &str) -> String {
    common::intl(local)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_keyword_and_its_variants_answers_the_bound_phone() {
    let env = env("per_phone_per_hour = 100").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let start = common::shanghai(10, 0);
    let outages = FakeOutages(vec![PlannedOutage {
        feeder: "10kV城东线".into(),
        start: start + chrono::TimeDelta::days(1),
        end: start + chrono::TimeDelta::days(1) + chrono::TimeDelta::hours(4),
        reason: Some("线路检修".into()),
    }]);
    d.running
        .shared
        .inbound()
        .expect("pipeline running")
        .set_outages(Some(Arc::new(outages)));
    let sim = env.sim("m1");
    let (alice_acct, alice) = ALICE;
    let cases: Vec<(String, &str)> = vec![
        (
            "CX".into(),
            "户号1000001，2026-10账单：电费123.45元，用电256度，缴费截止日期2026-11-25。",
        ),
        ("ｃｘ　1000001。".into(), "户号1000001，2026-10账单"),
        (format!("查询{alice_acct}"), "电费123.45元"),
        ("电费！".into(), "电费123.45元"),
        (
            "QF".into(),
            "户号1000001当前欠费123.45元，缴费截止日期2026-11-25（含违约金1.20元），请及时缴纳。",
        ),
        ("欠费 1000001".into(), "当前欠费123.45元"),
        (
            "TZ".into(),
            "户号1000001所在线路计划停电：3月11日10:00至14:00（10kV城东线，线路检修）。请提前做好准备。",
        ),
        ("停电".into(), "计划停电"),
        ("BZ".into(), "供电服务短信指令"),
        ("帮助".into(), "供电服务短信指令"),
        ("？".into(), "供电服务短信指令"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        sim.inject_sms(&from(alice), text);
        let got = wait_replies(&env, alice, i + 1).await;
        assert!(
            got[i].contains(want),
            "{text:?} answered {:?}, wanted {want:?}",
            got[i]
        );
    }
    // Bob has a bill but no arrears and no planned outage on his feeder.
    let (_, bob) = BOB;
    sim.inject_sms(&from(bob), "QF");
    assert_eq!(
        wait_replies(&env, bob, 1).await[0],
        "户号1000002当前无欠费。"
    );
    sim.inject_sms(&from(bob), "TZ");
    assert_eq!(
        wait_replies(&env, bob, 2).await[1],
        "户号1000002所在线路近期无计划停电。"
    );
    // Carol is recorded for two accounts: she must say which.
    let (a3, a4, carol) = CAROL;
    sim.inject_sms(&from(carol), "CX");
    let r = wait_replies(&env, carol, 1).await;
    assert!(r[0].contains(a3) && r[0].contains(a4), "{r:?}");
    let all = wait_handled(&d, cases.len() + 3).await;
    assert!(all.iter().all(|m| m["state"] == "replied"), "{all:?}");
    // Replies are category reply, priority 1, and left from the SIM the request came in on.
    let id = all[0]["reply_id"].as_i64().expect("reply id");
    let m = d.api.message(id).await;
    assert_eq!(
        (m["category"].as_str(), m["priority"].as_u64()),
        (Some("reply"), Some(1))
    );
    assert_eq!(m["modem"], "m1");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_query_reveals_nothing_not_even_existence() {
    let env = env("").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let sim = env.sim("m1");
    // Someone else's account, then an account that does not exist, same shape.
    sim.inject_sms(&from(STRANGER), "CX 1000001");
    wait_replies(&env, STRANGER, 1).await;
    sim.inject_sms(&from(STRANGER), "CX 9999999");
    let r = wait_replies(&env, STRANGER, 2).await;
    let mask = |s: &str, acct: &str| s.replace(acct, "#");
    assert_eq!(mask(&r[0], "1000001"), mask(&r[1], "9999999"));
    assert!(!r[0].contains("123.45") && !r[0].contains("张三"), "{r:?}");
    // QF and TZ behave the same.
    sim.inject_sms(&from(STRANGER), "QF1000001");
    wait_replies(&env, STRANGER, 3).await;
    sim.inject_sms(&from(STRANGER), "QF1000009");
    let r = wait_replies(&env, STRANGER, 4).await;
    assert_eq!(mask(&r[2], "1000001"), mask(&r[3], "1000009"));
    assert_eq!(mask(&r[2], "1000001"), mask(&r[0], "1000001"));
    // No account bound at all: told how to bind, nothing else.
    sim.inject_sms(&from(STRANGER), "CX");
    let r = wait_replies(&env, STRANGER, 5).await;
    assert!(r[4].contains("尚未绑定"), "{r:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_binds_the_recorded_phone_and_queues_others_for_staff() {
    let env = env("").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let sim = env.sim("m1");
    let store = d.running.shared.store.clone();
    // Bob's recorded number subscribes to his own account: active at once.
    let (bob_acct, bob) = BOB;
    sim.inject_sms(&from(bob), &format!("DY {bob_acct}"));
    assert!(wait_replies(&env, bob, 1).await[0].contains("已与本机号码绑定"));
    // A stranger asks for Bob's account and for a nonexistent one: same answer, pending.
    sim.inject_sms(&from(STRANGER), "订阅1000002");
    wait_replies(&env, STRANGER, 1).await;
    sim.inject_sms(&from(STRANGER), "DY 7777777");
    let r = wait_replies(&env, STRANGER, 2).await;
    assert_eq!(r[0].replace("1000002", "#"), r[1].replace("7777777", "#"));
    assert!(r[0].contains("核实"), "{r:?}");
    // DY without an account: how to use it.
    sim.inject_sms(&from(STRANGER), "DY");
    assert!(wait_replies(&env, STRANGER, 3).await[2].contains("DY1234567890"));
    wait_handled(&d, 4).await;
    let (status, list) = d.api.get("/api/v1/subscriptions?status=pending").await;
    assert_eq!(status, 200, "{list}");
    let pending = list["subscriptions"].as_array().expect("list").clone();
    assert_eq!(pending.len(), 2, "{list}");
    assert!(
        pending
            .iter()
            .all(|b| b["phone"] == from(STRANGER) && b["source"] == "sms")
    );
    // The reader token may not decide.
    let reader = d.api.with_token(Some(common::READ_TOKEN));
    let (status, _) = reader
        .post(
            &format!("/api/v1/subscriptions/{STRANGER}/1000002/approve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 403);
    // Staff approve one and reject the other; the customer hears about both.
    let (status, body) = d
        .api
        .post(
            &format!("/api/v1/subscriptions/{STRANGER}/1000002/approve"),
            serde_json::json!({"note": "checked ID card"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = d
        .api
        .post(
            &format!("/api/v1/subscriptions/{STRANGER}/7777777/reject"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = wait_replies(&env, STRANGER, 5).await;
    assert!(r[3].contains("已通过") && r[4].contains("未通过"), "{r:?}");
    let (status, _) = d
        .api
        .post(
            &format!("/api/v1/subscriptions/{STRANGER}/7777777/approve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 404, "nothing pending any more");
    // Now the stranger is bound to 1000002 and may query it.
    sim.inject_sms(&from(STRANGER), "CX1000002");
    assert!(wait_replies(&env, STRANGER, 6).await[5].contains("电费50.10元"));
    let bound = store
        .call(|c| contacts::active_phones_of_account(c, "1000002"))
        .await
        .expect("store");
    assert_eq!(bound.len(), 2, "{bound:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_records_opt_outs_that_bills_and_reminders_honour() {
    let env = env("").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let sim = env.sim("m1");
    let store = d.running.shared.store.clone();
    let (_, alice) = ALICE;
    let (_, bob) = BOB;
    sim.inject_sms(&from(alice), "TD账单");
    assert!(wait_replies(&env, alice, 1).await[0].contains("退订电费账单"));
    sim.inject_sms(&from(bob), "退订。");
    assert!(wait_replies(&env, bob, 1).await[0].contains("退订全部"));
    wait_handled(&d, 2).await;
    let (a, b): (gridsms::phone::E164, gridsms::phone::E164) =
        (alice.parse().expect("phone"), bob.parse().expect("phone"));
    let checks = store
        .call(move |c| {
            Ok([
                contacts::is_opted_out(c, &a, Category::Bill)?,
                contacts::is_opted_out(c, &a, Category::Reminder)?,
                contacts::is_opted_out(c, &b, Category::Bill)?,
                contacts::is_opted_out(c, &b, Category::Reminder)?,
                contacts::is_opted_out(c, &b, Category::Outage)?,
                contacts::is_opted_out(c, &b, Category::Broadcast)?,
                contacts::is_opted_out(c, &b, Category::Reply)?,
            ])
        })
        .await
        .expect("store");
    assert_eq!(checks, [true, false, true, true, true, true, false]);
    // Still answered after TD (replies are never suppressed).
    sim.inject_sms(&from(bob), "CX");
    assert!(wait_replies(&env, bob, 2).await[1].contains("50.10"));
    // DY on the recorded account withdraws the opt-out.
    sim.inject_sms(&from(bob), "DY 1000002");
    wait_replies(&env, bob, 3).await;
    wait_handled(&d, 4).await;
    let b: gridsms::phone::E164 = bob.parse().expect("phone");
    let out = store
        .call(move |c| contacts::is_opted_out(c, &b, Category::Bill))
        .await
        .expect("store");
    assert!(!out);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_text_gets_help_and_answers_are_rate_limited() {
    let env =
        env("per_phone_per_hour = 3\nunknown_per_phone_per_hour = 1\ntotal_per_hour = 5").await;
    let (clock_handle, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let sim = env.sim("m1");
    let (_, alice) = ALICE;
    // Unknown text: help once, then silence for unrecognised text this hour.
    sim.inject_sms(&from(alice), "你好，请问明天停电吗");
    assert!(wait_replies(&env, alice, 1).await[0].contains("供电服务短信指令"));
    sim.inject_sms(&from(alice), "谢谢");
    wait_handled(&d, 2).await;
    settle().await;
    assert_eq!(replies_to(&env, alice).len(), 1);
    // Per phone: 3 answers an hour (the help above counts).
    for _ in 0..3 {
        sim.inject_sms(&from(alice), "CX");
    }
    wait_handled(&d, 5).await;
    settle().await;
    assert_eq!(replies_to(&env, alice).len(), 3);
    let all = inbox(&d).await;
    let limited = all.iter().filter(|m| m["state"] == "rate_limited").count();
    assert_eq!(limited, 2, "{all:?}");
    // TD is still honoured while limited.
    sim.inject_sms(&from(alice), "TD");
    wait_handled(&d, 6).await;
    let a: gridsms::phone::E164 = alice.parse().expect("phone");
    let store = d.running.shared.store.clone();
    assert!(
        store
            .call(move |c| contacts::is_opted_out(c, &a, Category::Outage))
            .await
            .expect("store")
    );
    // Overall: 5 an hour for everyone (3 used by Alice).
    let (_, bob) = BOB;
    let (a3, _, carol) = CAROL;
    sim.inject_sms(&from(bob), "CX");
    sim.inject_sms(&from(carol), &format!("CX{a3}"));
    wait_replies(&env, bob, 1).await;
    wait_replies(&env, carol, 1).await;
    sim.inject_sms(&from(STRANGER), "BZ");
    wait_handled(&d, 9).await;
    settle().await;
    assert!(replies_to(&env, STRANGER).is_empty());
    // The next clock hour gives a fresh allowance.
    clock_handle.advance(std::time::Duration::from_secs(3600));
    // (Another text: the same octets in the same second and slot would be one message.)
    sim.inject_sms(&from(STRANGER), "帮助");
    wait_replies(&env, STRANGER, 1).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_to_service_numbers_alphanumeric_senders_or_our_own_sims() {
    let env = env("own_numbers = [\"13512345678\"]").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let sim = env.sim("m1");
    let own = d.running.shared.modems()[0]
        .own_number
        .clone()
        .expect("the SIM reports its number");
    for sender in [
        "10086",
        "10010",
        "10000",
        "106575551234",
        "95598",
        "CMCC",
        own.as_str(),
        "+8613512345678",
    ] {
        sim.inject_sms(sender, "BZ");
    }
    let all = wait_handled(&d, 8).await;
    assert!(all.iter().all(|m| m["state"] == "ignored"), "{all:?}");
    assert!(all.iter().all(|m| m["reply_id"].is_null()));
    settle().await;
    assert_eq!(env.sent_total(), 0, "{:?}", env.sent_by());
    // Filters of the inbox API.
    let (status, page) = d.api.get("/api/v1/inbox?sender=10086&state=ignored").await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1), "{page}");
    let (status, _) = d.api.get("/api/v1/inbox?state=bogus").await;
    assert_eq!(status, 400);
    d.stop().await;
}

fn cli(
    env: &common::Env,
    addr: std::net::SocketAddr,
    token: &str,
    args: &[&str],
) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(args)
        .arg("--api")
        .arg(format!("http://{addr}"))
        .arg("--token-file")
        .arg(env.dir.path().join(token))
        .output()
        .expect("run gridsms");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_and_subscriptions_from_the_command_line() {
    let env = env("").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    env.sim("m1").inject_sms(&from(STRANGER), "DY 1000001");
    wait_replies(&env, STRANGER, 1).await;
    wait_handled(&d, 1).await;
    let addr = d.running.api_addr;
    let env = std::sync::Arc::new(env);
    let e = env.clone();
    let (list, inbox_out, approve, again) = tokio::task::spawn_blocking(move || {
        (
            cli(&e, addr, "admin.token", &["subscriptions", "list"]),
            cli(&e, addr, "read.token", &["inbox", "--state", "replied"]),
            cli(
                &e,
                addr,
                "admin.token",
                &["subscriptions", "approve", STRANGER, "1000001"],
            ),
            cli(
                &e,
                addr,
                "admin.token",
                &["subscriptions", "reject", STRANGER, "1000001"],
            ),
        )
    })
    .await
    .expect("join");
    assert!(
        list.0 && list.1.contains("+8613600136000") && list.1.contains("pending"),
        "{list:?}"
    );
    assert!(
        inbox_out.0 && inbox_out.1.contains("DY 1000001") && inbox_out.1.contains("subscribe"),
        "{inbox_out:?}"
    );
    assert!(approve.0 && approve.1.contains("active"), "{approve:?}");
    assert!(
        !again.0 && again.1.contains("no pending subscription"),
        "{again:?}"
    );
    wait_replies(&env, STRANGER, 2).await;
    d.stop().await;
}
