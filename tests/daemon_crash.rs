//! Crash test: the built daemon on 4 test-owned simulated modems, 5,000 messages queued, the
//! daemon killed with SIGKILL repeatedly mid-run and restarted. After the last restart every
//! message must end delivered or failed with a reason (none lost), and the number of
//! segments a SIM received twice is printed and bounded by the segments in flight at the
//! kills (at most one per modem per kill: a segment is marked before Ctrl-Z and after +CMGS).

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const MESSAGES: usize = 5_000;
const MODEMS: usize = 4;
const KILLS: usize = 6;

async fn wait_healthy(api: &Api) {
    let deadline = Instant::now() + SOON;
    loop {
        let a = api.with_token(None);
        let ok = tokio::task::spawn_blocking(move || a.try_get_blocking("/healthz"))
            .await
            .expect("join")
            .is_some_and(|(s, _)| s == 200);
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "daemon did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(q: &Value, state: &str) -> u64 {
    q["by_state"][state].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_repeatedly_loses_nothing_and_duplicates_stay_bounded() {
    let started = Instant::now();
    let modems = (0..MODEMS)
        .map(|i| {
            let mnc = if i % 2 == 0 { Mnc::Mobile } else { Mnc::Unicom };
            modem(&format!("m{i}"), mnc)
                .send_delay(Duration::from_millis(5))
                .extra("hourly_limit = 6000\ndaily_limit = 6000\nmonthly_limit = 100000")
        })
        .collect();
    let mut env = Env::new(
        modems,
        "quiet_hours_categories = []\nstatus_reports = true\nmax_attempts = 5\n\
         backoff = { initial = \"200ms\", max = \"1s\", multiplier = 2.0, jitter = 0.2 }\n",
    )
    .await;
    let port = free_port();
    env.listen = format!("127.0.0.1:{port}");
    env.write_config();
    let api = Api::new(format!("127.0.0.1:{port}"), ADMIN_TOKEN);

    let mut child = env.spawn_binary();
    wait_healthy(&api).await;
    let numbers: Vec<String> = (0..MESSAGES).map(|i| format!("139{i:08}")).collect();
    let mut ids = Vec::new();
    for chunk in numbers.chunks(1000) {
        ids.extend(
            api.send(json!({"to": chunk, "text": "【国网供电】您本月电费已出账。"}))
                .await,
        );
    }
    assert_eq!(ids.len(), MESSAGES);

    // Kill at irregular moments while sending; restart at once each time.
    let mut at_kill = Vec::new();
    for k in 0..KILLS {
        let pause = Duration::from_millis(500 + (k as u64 * 373) % 1000);
        tokio::time::sleep(pause).await;
        child.kill().expect("kill -9");
        let _ = child.wait();
        at_kill.push(env.sent_total());
        child = env.spawn_binary();
        wait_healthy(&api).await;
    }

    // After the last restart: wait until everything is final.
    let deadline = Instant::now() + Duration::from_secs(150);
    let q = loop {
        let q = api.queue().await;
        let pending = count(&q, "queued") + count(&q, "sending") + count(&q, "sent");
        if pending == 0 {
            break q;
        }
        assert!(
            Instant::now() < deadline,
            "not final after the last restart: {q}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let delivered = count(&q, "delivered");
    let failed = count(&q, "failed");
    assert_eq!(q["total"], json!(MESSAGES), "rows lost or added: {q}");
    assert_eq!(delivered + failed, MESSAGES as u64, "{q}");

    // every failed one says why
    let mut cursor: Option<i64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/v1/messages?state=failed&limit=1000&cursor={c}"),
            None => "/api/v1/messages?state=failed&limit=1000".to_owned(),
        };
        let (s, page) = api.get(&path).await;
        assert_eq!(s, 200);
        for m in page["messages"].as_array().expect("messages") {
            assert!(
                m["last_error"].as_str().is_some_and(|e| !e.is_empty()),
                "failed without a reason: {m}"
            );
        }
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }

    // duplicates: segments a recipient received more than once, over all SIMs
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for sms in env.sent_by().into_values().flatten() {
        *per_recipient.entry(sms.to).or_default() += 1;
    }
    let duplicates: usize = per_recipient.values().map(|n| n - 1).sum();
    let bound = KILLS * MODEMS;
    println!(
        "crash test: {MESSAGES} messages, {KILLS} kill -9s (segments received by then: {at_kill:?}); \
         delivered {delivered}, failed {failed}; segments sent twice: {duplicates} \
         (bound: {MODEMS} modems x {KILLS} kills = {bound}); {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        per_recipient.len() as u64,
        delivered,
        "every delivered message reached a SIM"
    );
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");

    child.kill().expect("kill");
    let _ = child.wait();
    env.shutdown_sims().await;
}
