//! `gridsms modem info|send|listen` run as the real binary against the simulated modem on a
//! pty (the simulator runs in the test process so its records can be checked).

use std::process::Output;
use std::time::Duration;

use gridsms::sim::{self, Fault, Profile, SimHandle, SimOptions};
use serde_json::Value;

const OUTAGE: &str = "【国网供电】尊敬的客户：因10kV城东线检修，定于6月12日08:00至18:00停电，\
影响范围：和平路、解放路一带。请提前做好准备，给您带来不便敬请谅解。咨询电话95598。";

async fn start(profile: Profile) -> (tempfile::TempDir, SimHandle, String) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("modem");
    let sim = sim::spawn_linked(SimOptions::new(profile), &link)
        .await
        .unwrap();
    (dir, sim, link.to_string_lossy().into_owned())
}

async fn gridsms(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .args(&args)
            .output()
            .unwrap()
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("binary does not hang")
        .unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_prints_one_json_object_per_the_contract() {
    for profile in Profile::ALL {
        let (_dir, sim, dev) = start(profile).await;
        let out = gridsms(&["modem", "info", "--device", &dev]).await;
        assert!(
            out.status.success(),
            "{profile:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = lines(&out);
        assert_eq!(v.len(), 1);
        let o = &v[0];
        for key in [
            "manufacturer",
            "model",
            "revision",
            "imei",
            "imsi",
            "iccid",
            "operator",
            "registered",
            "signal_dbm",
        ] {
            assert!(o.get(key).is_some(), "{profile:?}: {key} missing in {o}");
        }
        assert_eq!(o["iccid"], "89860012345678901234", "{profile:?}");
        assert_eq!(o["imei"], "866758042195136", "{profile:?}");
        assert_eq!(o["imsi"], "460001234567890", "{profile:?}");
        assert_eq!(o["registered"], true, "{profile:?}");
        assert!(
            o["signal_dbm"]
                .as_i64()
                .is_some_and(|d| (-113..=-51).contains(&d)),
            "{profile:?}: {o}"
        );
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_prints_one_line_per_segment() {
    let (_dir, sim, dev) = start(Profile::Sim800).await;
    let out = gridsms(&[
        "modem",
        "send",
        "--device",
        &dev,
        "--to",
        "13800138000",
        OUTAGE,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = lines(&out);
    let sent = sim.sent();
    assert!(v.len() >= 2);
    assert_eq!(v.len(), sent.len());
    for (i, (line, seg)) in v.iter().zip(&sent).enumerate() {
        assert_eq!(line["seq"], i + 1);
        assert_eq!(line["mr"], seg.mr);
    }
    assert_eq!(sim.sent_messages()[0].text, OUTAGE);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_failure_exits_1_naming_error_and_class() {
    let (_dir, sim, dev) = start(Profile::QuectelEc25).await;
    sim.inject_fault(Fault::CmsError { code: 38, count: 5 });
    let out = gridsms(&[
        "modem",
        "send",
        "--device",
        &dev,
        "--to",
        "13800138000",
        "测试",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("38") && last.contains("retry_other_modem"),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_with_a_bad_number_is_bad_input() {
    let out = gridsms(&[
        "modem",
        "send",
        "--device",
        "/nonexistent",
        "--to",
        "not-a-number",
        "x",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_on_a_missing_device_fails_cleanly() {
    let out = gridsms(&["modem", "info", "--device", "/nonexistent/ttyUSB9"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ttyUSB9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_reassembled_messages_and_status_reports() {
    let (_dir, sim, dev) = start(Profile::QuectelEc25).await;
    let out = gridsms(&[
        "modem",
        "send",
        "--device",
        &dev,
        "--status-report",
        "--to",
        "13800138000",
        "测试",
    ])
    .await;
    assert!(out.status.success());
    let mr = lines(&out)[0]["mr"].clone();
    sim.inject_sms("+8613912345678", OUTAGE);
    // Both wait on the SIM (stored) until listen sweeps them up.
    let out = gridsms(&["modem", "listen", "--device", &dev, "--for", "3"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = lines(&out);
    let msg = v
        .iter()
        .find(|l| l.get("text").is_some())
        .unwrap_or_else(|| panic!("no message in {v:?}"));
    assert_eq!(msg["from"], "+8613912345678");
    assert_eq!(msg["text"], OUTAGE);
    assert!(msg["timestamp"].as_str().is_some_and(|t| t.contains('T')));
    let rep = v
        .iter()
        .find_map(|l| l.get("status_report"))
        .unwrap_or_else(|| panic!("no report in {v:?}"));
    assert_eq!(rep["mr"], mr);
    assert_eq!(rep["delivered"], true);
    assert_eq!(rep["status"], 0);
    assert!(
        rep["recipient"]
            .as_str()
            .is_some_and(|r| r.ends_with("13800138000"))
    );
    assert_eq!(v.len(), 2, "each printed once: {v:?}");
    assert_eq!(sim.stored(), 0, "deleted after printing");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_leaves_an_incomplete_multipart_message_on_the_sim() {
    let (_dir, sim, dev) = start(Profile::Sim800).await;
    let options = gridsms::pdu::DeliverOptions {
        smsc: None,
        timestamp: chrono::DateTime::parse_from_rfc3339("2026-06-01T08:00:00+08:00").unwrap(),
        concat_ref: 77,
        concat_16bit: false,
    };
    let parts = gridsms::pdu::encode_deliver("+8613912345678", OUTAGE, &options).unwrap();
    assert!(parts.len() >= 2);
    sim.inject_pdu(parts[0].clone());
    let out = gridsms(&["modem", "listen", "--device", &dev, "--for", "2"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing complete to print");
    assert_eq!(sim.stored(), 1, "the lone part stays on the SIM");
    sim.shutdown().await;
}
