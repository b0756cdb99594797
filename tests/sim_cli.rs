//! `gridsms sim` as a technician runs it: faults and PIN from the command line, one JSON line
//! when up and one per accepted segment, a clean stop on SIGTERM. Needs no external tool.

mod sim_common;

use gridsms::pdu::{self, SubmitOptions};
use sim_common::Client;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn cli_applies_faults_and_pin_and_reports_sends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("modem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args([
            "sim",
            "--profile",
            "quectel-ec25",
            "--fault",
            "cms:500:1",
            "--pin",
            "4321",
        ])
        .arg("--link")
        .arg(&link)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start gridsms sim");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next_line =
        async || match tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                serde_json::from_str::<serde_json::Value>(&line).expect("JSON line")
            }
            other => panic!("no line from gridsms sim: {other:?}"),
        };
    let up = next_line().await;
    assert_eq!(up["profile"], "quectel-ec25");

    let mut c = Client::open(&link).await;
    c.expect(0, "+CPIN: SIM PIN").await;
    c.sync().await;
    c.cmd("ATE0").await;
    assert!(c.cmd("AT+CPIN=4321").await.ends_with("\r\nOK\r\n"));
    c.expect(0, "+QIND: SMS DONE").await;
    let seg = pdu::encode_submit("13800138000", "抄表通知", &SubmitOptions::default())
        .expect("encode")
        .remove(0);
    assert!(
        c.send_pdu(&seg.hex(), seg.tpdu_len)
            .await
            .contains("+CMS ERROR: 500")
    );
    assert!(
        c.send_pdu(&seg.hex(), seg.tpdu_len)
            .await
            .contains("+CMGS: 0")
    );
    let sent = next_line().await;
    assert_eq!(sent["sent"]["text"], "抄表通知");
    assert_eq!(sent["sent"]["mr"], 0);
    assert_eq!(sent["sent"]["pdu"], seg.hex());

    let pid = child.id().expect("pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(Ok(status)) => assert!(status.success(), "{status}"),
        other => panic!("gridsms sim did not stop: {other:?}"),
    }
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link left behind"
    );
}

#[tokio::test]
async fn cli_rejects_bad_specs_with_exit_code_2() {
    for args in [
        vec!["sim", "--link", "/tmp/never", "--fault", "melt:3s"],
        vec!["sim", "--link", "/tmp/never", "--profile", "nokia-3310"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .args(&args)
            .output()
            .await
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid value"),
            "{args:?}"
        );
    }
}
