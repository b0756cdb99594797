//! The built `gridsms run` binary under signals: SIGHUP reloads (a modem added, a limit
//! changed, an invalid file refused while the old config keeps running) and SIGTERM drains
//! (the send in flight finishes, exit 0).

mod common;

use common::*;
use gridsms::store::Store;
use serde_json::{Value, json};
use std::process::Child;
use std::time::{Duration, Instant};

const TEXT: &str = "您本月电费为128.50元，请于25日前缴纳。";

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Polls the API until `check` accepts an answer to GET `path`.
async fn wait_api(api: &Api, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SOON;
    loop {
        let this = api.clone();
        let p = path.to_owned();
        let got = tokio::task::spawn_blocking(move || this.try_get_blocking(&p))
            .await
            .expect("join");
        if let Some((200, body)) = got
            && check(&body)
        {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn modem_field<'a>(modems: &'a Value, name: &str, field: &str) -> Option<&'a Value> {
    modems
        .as_array()?
        .iter()
        .find(|m| m["name"] == json!(name))
        .map(|m| &m[field])
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "daemon did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the built daemon on a free port with `env`'s config and waits until modem m1 is ready.
async fn start_binary_with_m1_ready(env: &mut Env) -> (Child, Api) {
    let port = free_port();
    env.listen = format!("127.0.0.1:{port}");
    env.write_config();
    let child = env.spawn_binary();
    let api = Api::new(format!("127.0.0.1:{port}"), ADMIN_TOKEN);
    wait_api(&api, "/api/v1/modems", "m1 ready", |m| {
        modem_field(m, "m1", "state") == Some(&json!("ready"))
    })
    .await;
    (child, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_a_modem_changes_a_limit_and_refuses_a_broken_file() {
    let mut env = Env::new(
        vec![modem("m1", Mnc::Mobile)],
        "quiet_hours_categories = []\n",
    )
    .await;
    let (mut child, api) = start_binary_with_m1_ready(&mut env).await;
    // queued work before the reload must survive it
    let ids = api
        .send(json!({"to": ["13800138001", "13800138002"], "text": TEXT}))
        .await;

    // add a modem and change m1's hourly limit
    env.add_modem(modem("m2", Mnc::Unicom)).await;
    env.specs[0].1 = "hourly_limit = 7\n".to_owned();
    env.write_config();
    signal(&child, "HUP");
    let modems = wait_api(&api, "/api/v1/modems", "m2 ready, m1 limit 7", |m| {
        modem_field(m, "m2", "state") == Some(&json!("ready"))
            && modem_field(m, "m1", "hourly_limit") == Some(&json!(7))
    })
    .await;
    assert_eq!(modems.as_array().map(Vec::len), Some(2), "{modems}");
    let id_unicom = api.send(json!({"to": "13012345678", "text": TEXT})).await[0];
    let m = api
        .wait_state(id_unicom, &["sent", "delivered"], SOON)
        .await;
    assert_eq!(m["modem"], json!("m2"), "the added modem sends: {m}");

    // a broken file is refused; the running config stays
    std::fs::write(&env.config_path, "[storage\npath = 3").expect("write");
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "daemon died on a bad reload"
    );
    // an invalid (parses, fails validation) file too
    env.specs[0].1 = "hourly_limit = 5000\ndaily_limit = 10\n".to_owned();
    env.write_config();
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s, modems) = api.get("/api/v1/modems").await;
    assert_eq!(s, 200);
    assert_eq!(modem_field(&modems, "m1", "hourly_limit"), Some(&json!(7)));
    assert_eq!(modems.as_array().map(Vec::len), Some(2));
    for id in ids {
        api.wait_state(id, &["sent", "delivered"], SOON).await;
    }
    let id = api.send(json!({"to": "13800138003", "text": TEXT})).await[0];
    api.wait_state(id, &["sent", "delivered"], SOON).await;

    signal(&child, "TERM");
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_send_in_flight_finish_and_exits_0() {
    let mut env = Env::new(
        vec![modem("m1", Mnc::Mobile).send_delay(Duration::from_secs(2))],
        "quiet_hours_categories = []\n",
    )
    .await;
    let (mut child, api) = start_binary_with_m1_ready(&mut env).await;
    let ids = api
        .send(json!({"to": ["13800138001", "13800138002"], "text": TEXT}))
        .await;
    let first = ids[0];
    wait_api(&api, &format!("/api/v1/messages/{first}"), "sending", |m| {
        m["state"] == json!("sending")
    })
    .await;
    signal(&child, "TERM");
    let status = wait_exit(&mut child).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    // the send in flight finished: the SIM got it and the store says so
    assert_eq!(env.sim("m1").sent_total(), 1);
    let store = Store::open(env.storage_path()).await.expect("store");
    let done = store.get(first).await.expect("get").expect("row");
    assert_eq!(done.message.state.as_str(), "sent", "{:?}", done.message);
    // the other was not started and waits for the next run
    let waiting = store.get(ids[1]).await.expect("get").expect("row");
    assert_eq!(waiting.message.state.as_str(), "queued");
    env.shutdown_sims().await;
}
