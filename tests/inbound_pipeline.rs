//! The inbound pipeline on a running daemon: multipart reassembly (out of order, duplicated
//! parts, a missing part handled after the wait with a note), a PDU read twice handled once,
//! messages deleted from the modem once stored, and reassembly state surviving a restart.

mod common;
mod inbound_support;

use chrono::TimeZone;
use common::manual_clock;
use gridsms::inbound::Intake;
use gridsms::pdu::{self, DeliverOptions};
use inbound_support::*;
use std::time::{Duration, Instant};

fn parts(from: &str, text: &str, reference: u16) -> Vec<Vec<u8>> {
    let ts = chrono::FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .with_ymd_and_hms(2026, 3, 10, 10, 0, 0)
        .single()
        .expect("time");
    pdu::encode_deliver(
        from,
        text,
        &DeliverOptions {
            smsc: Some("+8613800100500".into()),
            timestamp: ts,
            concat_ref: reference,
            concat_16bit: false,
        },
    )
    .expect("encode")
}

/// A bill query padded to three segments (the parser looks at the first 160 characters).
fn long_query(account: &str) -> String {
    format!("CX{account}{}", " ".repeat(400))
}

async fn wait_modem_empty(env: &common::Env) {
    let deadline = Instant::now() + common::SOON;
    while env.sim("m1").stored() > 0 {
        assert!(Instant::now() < deadline, "messages left on the modem");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_out_of_order_with_a_duplicate_part_is_one_message() {
    let env = env("").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let (acct, alice) = ALICE;
    let segs = parts(&common::intl(alice), &long_query(acct), 42);
    assert_eq!(segs.len(), 3);
    let sim = env.sim("m1");
    for i in [2, 0, 0, 1] {
        sim.inject_pdu(segs[i].clone());
    }
    let r = wait_replies(&env, alice, 1).await;
    assert!(r[0].contains("电费123.45元"), "{r:?}");
    let all = wait_handled(&d, 1).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["parts"], 3);
    assert_eq!(
        all[0]["text"].as_str().map(str::trim_end),
        Some("CX1000001")
    );
    wait_modem_empty(&env).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_missing_its_last_part_is_handled_after_the_wait_with_a_note() {
    let env = env("incomplete_wait = \"10m\"").await;
    let (clock_handle, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let (acct, alice) = ALICE;
    let segs = parts(&common::intl(alice), &long_query(acct), 7);
    let sim = env.sim("m1");
    sim.inject_pdu(segs[0].clone());
    sim.inject_pdu(segs[1].clone());
    wait_modem_empty(&env).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(inbox(&d).await.is_empty(), "still waiting for part 3");
    clock_handle.advance(Duration::from_secs(9 * 60));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(inbox(&d).await.is_empty(), "9 minutes is not 10");
    clock_handle.advance(Duration::from_secs(61));
    let all = wait_handled(&d, 1).await;
    assert_eq!(all[0]["note"], "incomplete: parts 1,2 of 3", "{all:?}");
    assert_eq!(all[0]["parts"], 2);
    // Two parts hold the query: it is still answered.
    let r = wait_replies(&env, alice, 1).await;
    assert!(r[0].contains("123.45"), "{r:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdu_read_twice_is_handled_once() {
    let env = env("").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let (_, bob) = BOB;
    let pdu = parts(&common::intl(bob), "BZ", 0).remove(0);
    let inbound = d.running.shared.inbound().expect("pipeline");
    // As after a crash between storing and deleting: the same slot of the same SIM read again.
    for _ in 0..2 {
        assert!(inbound.submit(Intake {
            modem: "m1".into(),
            sim: "89860000000000000001".into(),
            storage_index: Some(5),
            pdu: pdu.clone(),
            ack: None,
        }));
    }
    wait_replies(&env, bob, 1).await;
    settle().await;
    assert_eq!(inbox(&d).await.len(), 1);
    assert_eq!(replies_to(&env, bob).len(), 1);
    let stored: i64 = d
        .running
        .shared
        .store
        .call(|c| Ok(c.query_row("SELECT count(*) FROM inbound_pdus", [], |r| r.get(0))?))
        .await
        .expect("store");
    assert_eq!(stored, 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_parts_survive_a_restart() {
    let env = env("").await;
    let (acct, alice) = ALICE;
    let segs = parts(&common::intl(alice), &long_query(acct), 99);
    {
        let (_c, clock) = manual_clock(10, 0);
        let d = start(&env, clock).await;
        env.sim("m1").inject_pdu(segs[1].clone());
        env.sim("m1").inject_pdu(segs[2].clone());
        wait_modem_empty(&env).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        d.stop().await;
    }
    let (_c, clock) = manual_clock(10, 1);
    let d = start(&env, clock).await;
    assert!(inbox(&d).await.is_empty());
    env.sim("m1").inject_pdu(segs[0].clone());
    let all = wait_handled(&d, 1).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["parts"], 3);
    assert!(all[0]["note"].is_null(), "{all:?}");
    wait_replies(&env, alice, 1).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_leaves_from_the_sim_the_request_came_in_on() {
    let dispatch = "timezone = \"Asia/Shanghai\"\n\n[inbound]\n";
    let env = common::Env::new(
        vec![
            common::modem("m1", common::Mnc::Mobile),
            common::modem("m2", common::Mnc::Unicom),
        ],
        dispatch,
    )
    .await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    // Alice is a China Mobile number: without the hint the China Mobile SIM (m1) would answer.
    let (_, alice) = ALICE;
    env.sim("m2").inject_sms(&common::intl(alice), "BZ");
    wait_replies(&env, alice, 1).await;
    assert_eq!(
        env.sim("m2").sent_messages().len(),
        1,
        "{:?}",
        env.sent_by()
    );
    assert_eq!(env.sim("m1").sent_total(), 0);
    // And an ordinary message to her still prefers her carrier's SIM.
    let ids = d
        .api
        .send(serde_json::json!({"to": alice, "text": "测试"}))
        .await;
    let m = d
        .api
        .wait_state(ids[0], &["sent", "delivered"], common::SOON)
        .await;
    assert_eq!(m["modem"], "m1");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_pdu_is_kept_as_bad_and_deleted_from_the_modem() {
    let env = env("").await;
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    env.sim("m1").inject_pdu(vec![0x00, 0x04, 0x0B, 0xFF, 0x13]);
    wait_modem_empty(&env).await;
    let deadline = Instant::now() + common::SOON;
    loop {
        let states: Vec<String> = d
            .running
            .shared
            .store
            .call(|c| {
                let mut s = c.prepare("SELECT state FROM inbound_pdus")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<String>, _>>()?)
            })
            .await
            .expect("store");
        if !states.is_empty() {
            assert_eq!(states, vec!["bad".to_owned()]);
            break;
        }
        assert!(Instant::now() < deadline, "PDU never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_modem_empty(&env).await;
    assert!(inbox(&d).await.is_empty());
    d.stop().await;
}
