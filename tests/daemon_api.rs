//! The HTTP API of a running daemon on simulated modems: auth, validation, idempotency,
//! paging, /healthz, /metrics, and a POST reaching a modem without a polling delay.

mod common;

use common::*;
use serde_json::json;

const TEXT: &str = "您本月电费为128.50元，请于25日前缴纳。";

async fn one_modem_env() -> Env {
    Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours_categories = []\n",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_401_without_or_with_unknown_token_403_without_scope() {
    let env = one_modem_env().await;
    let d = env.start_now().await;
    let body = json!({"to": "13800138000", "text": TEXT});

    let (s, b) = d
        .api
        .with_token(None)
        .post("/api/v1/messages", body.clone())
        .await;
    assert_eq!(s, 401, "{b}");
    let (s, _) = d.api.with_token(None).get("/api/v1/queue").await;
    assert_eq!(s, 401);
    let (s, b) = d
        .api
        .with_token(Some("no-such-token-0123456789"))
        .get("/api/v1/modems")
        .await;
    assert_eq!(s, 401, "{b}");

    // read-only token may read but not send
    let reader = d.api.with_token(Some(READ_TOKEN));
    let (s, _) = reader.get("/api/v1/queue").await;
    assert_eq!(s, 200);
    let (s, b) = reader.post("/api/v1/messages", body.clone()).await;
    assert_eq!(s, 403, "{b}");
    // send token may send manual, not outage or bill
    let sender = d.api.with_token(Some(SEND_TOKEN));
    let (s, b) = sender.post("/api/v1/messages", body.clone()).await;
    assert_eq!(s, 202, "{b}");
    let (s, b) = sender
        .post(
            "/api/v1/messages",
            json!({"to": "13800138000", "text": TEXT, "category": "outage"}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_the_field() {
    let env = one_modem_env().await;
    let d = env.start_now().await;
    let cases = [
        (json!({"to": "12345", "text": TEXT}), "to"),
        (json!({"to": ["13800138000", "abc"], "text": TEXT}), "to[1]"),
        (json!({"to": "13800138000", "text": ""}), "text"),
        (json!({"to": "13800138000", "text": "   "}), "text"),
        (
            json!({"to": "13800138000", "text": "电".repeat(20_000)}),
            "text",
        ),
        (
            json!({"to": "13800138000", "text": TEXT, "category": "spam"}),
            "category",
        ),
        (
            json!({"to": "13800138000", "text": TEXT, "priority": 42}),
            "priority",
        ),
        (
            json!({"to": "13800138000", "text": TEXT, "expires_at": "tomorrow"}),
            "expires_at",
        ),
    ];
    for (body, field) in cases {
        let (s, b) = d.api.post("/api/v1/messages", body.clone()).await;
        assert_eq!(s, 400, "{body} → {b}");
        assert_eq!(b["field"], json!(field), "{body} → {b}");
        assert!(b["error"].as_str().is_some_and(|e| !e.is_empty()), "{b}");
    }
    // unknown JSON field: refused, and the message says which
    let (s, b) = d
        .api
        .post(
            "/api/v1/messages",
            json!({"to": "13800138000", "text": TEXT, "sender": "x"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("sender"), "{b}");
    // not JSON at all
    let (s, b) = d.api.post_raw("/api/v1/messages", "{not json").await;
    assert_eq!(s, 400, "{b}");
    // nothing was queued by any of these
    assert_eq!(d.api.queue().await["total"], json!(0));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_same_content_same_id_different_content_409() {
    let env = one_modem_env().await;
    let d = env.start_now().await;
    let body = json!({"to": "13800138000", "text": TEXT, "idempotency_key": "bill-2026-03-42"});
    let first = d.api.send(body.clone()).await;
    let again = d.api.send(body).await;
    assert_eq!(first, again);
    let (s, b) = d
        .api
        .post(
            "/api/v1/messages",
            json!({"to": "13800138000", "text": "另一条", "idempotency_key": "bill-2026-03-42"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(d.api.queue().await["total"], json!(1));
    // bulk with a key: each recipient keyed apart, replay gives the same ids
    let bulk = json!({"to": ["13800138001", "13800138002"], "text": TEXT, "idempotency_key": "k2"});
    let a = d.api.send(bulk.clone()).await;
    let b = d.api.send(bulk).await;
    assert_eq!(a, b);
    assert_eq!(a.len(), 2);
    assert_eq!(d.api.queue().await["total"], json!(3));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_list_pages_through_everything_once() {
    let env = Env::new(vec![], "").await; // no modem: everything stays queued
    let d = env.start_now().await;
    let to: Vec<String> = (0..25).map(|i| format!("1380013{i:04}")).collect();
    let ids = d.api.send(json!({"to": to, "text": TEXT})).await;
    assert_eq!(ids.len(), 25);
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/v1/messages?limit=10&cursor={c}"),
            None => "/api/v1/messages?limit=10".to_owned(),
        };
        let (s, page) = d.api.get(&path).await;
        assert_eq!(s, 200, "{page}");
        pages += 1;
        for m in page["messages"].as_array().expect("messages") {
            seen.push(m["id"].as_i64().expect("id"));
        }
        match page["next_cursor"].as_i64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    seen.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(seen, want);
    assert_eq!(pages, 3);
    // filters
    let (s, page) = d.api.get("/api/v1/messages?to=13800130003").await;
    assert_eq!(s, 200);
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1));
    let (s, page) = d.api.get("/api/v1/messages?state=sent").await;
    assert_eq!(s, 200);
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(0));
    let (s, b) = d.api.get("/api/v1/messages?state=bogus").await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["field"], json!("state"));
    // one message in detail
    let m = d.api.message(ids[0]).await;
    for key in [
        "id",
        "to",
        "text",
        "category",
        "state",
        "attempts",
        "modem",
        "segments",
        "created_at",
        "sent_at",
        "delivered_at",
        "last_error",
    ] {
        assert!(m.get(key).is_some(), "{key} missing in {m}");
    }
    let (s, _) = d.api.get("/api/v1/messages/999999").await;
    assert_eq!(s, 404);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() {
    let env = one_modem_env().await;
    let d = env.start_now().await;
    let (s, _) = d.api.with_token(None).get("/healthz").await;
    assert_eq!(s, 200);
    let id = d.api.send(json!({"to": "13800138000", "text": TEXT})).await[0];
    d.api.wait_state(id, &["sent", "delivered"], SOON).await;
    let (s, body) = d.api.with_token(None).get("/metrics").await;
    assert_eq!(s, 200);
    let text = body.as_str().expect("metrics are text");
    for series in [
        "gridsms_messages{state=\"",
        "gridsms_queue_depth ",
        "gridsms_segments_sent_total 1",
        "gridsms_modem_up{modem=\"m1\"} 1",
        "gridsms_modem_segments_sent_total{modem=\"m1\"}",
    ] {
        assert!(text.contains(series), "{series} missing in\n{text}");
    }
    assert!(
        text.contains("m1"),
        "per-modem series name the modem:\n{text}"
    );
    d.stop().await;
}

/// Not a speed assertion: the message reaches the simulator although the dispatcher's idle
/// sleep is 30 s, so the enqueue must have woken it (the bench measures the delay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_on_an_idle_pool_starts_without_waiting_for_a_poll() {
    let env = one_modem_env().await;
    let d = env.start_now().await;
    let sim = env.sim("m1");
    // let the pool go idle: modem ready, nothing queued
    wait_until("modem ready", SOON, || {
        d.running
            .shared
            .modems()
            .iter()
            .any(|m| m.state == gridsms::modem::ModemState::Ready)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = sim.sent_total();
    d.api.send(json!({"to": "13800138000", "text": TEXT})).await;
    // well under the 30 s idle sleep (MAX_SLEEP) of the dispatcher
    assert!(
        sim.wait_sent(before + 1, std::time::Duration::from_secs(10))
            .await,
        "the POST did not wake the dispatcher"
    );
    d.stop().await;
}
