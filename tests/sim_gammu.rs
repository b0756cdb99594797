//! Realism check by an independent client: Debian's `gammu` identifies the simulated modem,
//! reads its inbox (a Chinese multipart included) and sends through it, single and unicode
//! multipart; the simulator must have recorded exactly those texts.
//!
//! Without gammu the tests say SKIPPED loudly and pass, unless GRIDSMS_REQUIRE_EXTERNAL=1
//! (set by `.ci/run`), where a missing gammu is a failure.

use gridsms::sim::{self, Profile, SimHandle, SimIdentity, SimOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const GAMMU_TIMEOUT: Duration = Duration::from_secs(90);
const BILL: &str = "国网供电公司提醒您：您户号1234567890的电费账单已出账，本期电费123.45元，\
                    请于本月25日前缴清，逾期将产生违约金。如已缴费请忽略。咨询请拨打95598。";

fn gammu_present(test: &str) -> bool {
    let found = std::process::Command::new("gammu")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("GRIDSMS_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("{test}: gammu is not installed but GRIDSMS_REQUIRE_EXTERNAL=1");
        }
        eprintln!("\n*** SKIPPED {test}: gammu is not installed (apt-get install gammu) ***\n");
    }
    found
}

fn write_rc(dir: &Path, device: &Path) -> PathBuf {
    let rc = dir.join("gammurc");
    let log = dir.join("gammu.log");
    let text = format!(
        "[gammu]\ndevice = {}\nconnection = at\nlogfile = {}\nlogformat = textall\n",
        device.display(),
        log.display()
    );
    std::fs::write(&rc, text).expect("write gammurc");
    rc
}

/// Run gammu with the config; panics (with its output and log tail) unless it exits 0.
async fn gammu(rc: &Path, args: &[&str]) -> String {
    let child = Command::new("gammu")
        .arg("-c")
        .arg(rc)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(GAMMU_TIMEOUT, child).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run gammu: {e}"),
        Err(_) => panic!(
            "gammu {args:?} did not finish\n--- log tail ---\n{}",
            log_tail(rc)
        ),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let tail = log_tail(rc);
        panic!(
            "gammu {args:?} failed ({}):\n{stdout}\n{}\n--- log tail ---\n{tail}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
}

fn log_tail(rc: &Path) -> String {
    let log = std::fs::read_to_string(rc.with_file_name("gammu.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn wait_stored(handle: &SimHandle, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while handle.stored() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} stored",
            handle.stored()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn gammu_round_trip(profile: Profile) {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("ttyGSM0");
    let handle = sim::spawn_linked(SimOptions::new(profile), &link)
        .await
        .expect("spawn");
    let rc = write_rc(dir.path(), &link);
    let id = SimIdentity::default();

    let identify = squash(&gammu(&rc, &["identify"]).await);
    assert!(
        identify.contains(&format!("IMEI : {}", id.imei)),
        "{profile}: {identify}"
    );
    assert!(
        identify.contains(&format!("SIM IMSI : {}", id.imsi)),
        "{profile}: {identify}"
    );

    handle.inject_sms("13800138000", "hello there");
    handle.inject_sms("+8613912345678", BILL);
    wait_stored(&handle, 3).await;
    // geteachsms links the parts of a multipart message into one text.
    let each = gammu(&rc, &["geteachsms"]).await;
    assert!(each.contains("hello there"), "{profile}: {each}");
    assert!(
        each.contains(BILL),
        "{profile}: multipart not reassembled:\n{each}"
    );
    assert!(each.contains("\"+8613912345678\""), "{profile}: {each}");
    let all = gammu(&rc, &["getallsms"]).await;
    assert!(
        all.contains("3 SMS parts in 3 SMS sequences"),
        "{profile}: {all}"
    );

    gammu(&rc, &["sendsms", "TEXT", "13800138000", "-text", "hello"]).await;
    assert!(handle.wait_sent(1, Duration::from_secs(10)).await);
    let long: String = "国网供电公司停电通知：".chars().cycle().take(200).collect();
    gammu(
        &rc,
        &[
            "sendsms",
            "TEXT",
            "13800138000",
            "-unicode",
            "-len",
            "200",
            "-text",
            &long,
        ],
    )
    .await;
    assert!(handle.wait_sent(4, Duration::from_secs(10)).await);

    let sent = handle.sent();
    assert_eq!(sent.len(), 4, "{profile}: {sent:?}");
    assert_eq!(
        (sent[0].to.as_str(), sent[0].text.as_str()),
        ("13800138000", "hello")
    );
    assert!(sent[0].concat.is_none());
    let messages = handle.sent_messages();
    assert_eq!(messages.len(), 2, "{profile}: {messages:?}");
    assert_eq!(messages[1].text, long, "{profile}");
    assert_eq!(
        (messages[1].total, messages[1].received),
        (3, 3),
        "{profile}"
    );
    assert!(
        sent[1..]
            .iter()
            .all(|s| s.to == "13800138000" && s.concat.is_some())
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn gammu_talks_to_quectel_ec25() {
    if gammu_present("gammu_talks_to_quectel_ec25") {
        gammu_round_trip(Profile::QuectelEc25).await;
    }
}

#[tokio::test]
async fn gammu_talks_to_sim800() {
    if gammu_present("gammu_talks_to_sim800") {
        gammu_round_trip(Profile::Sim800).await;
    }
}

#[tokio::test]
async fn gammu_talks_to_huawei_e173() {
    if gammu_present("gammu_talks_to_huawei_e173") {
        gammu_round_trip(Profile::HuaweiE173).await;
    }
}

/// The same through the `gridsms sim` binary, as a technician would run it.
#[tokio::test]
async fn gammu_talks_to_the_gridsms_sim_binary() {
    if !gammu_present("gammu_talks_to_the_gridsms_sim_binary") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("modem");
    let inbox = dir.path().join("inbox.txt");
    std::fs::write(&inbox, format!("# test inbox\n95598 {BILL}\n")).expect("inbox");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args([
            "sim",
            "--profile",
            "sim800",
            "--send-delay-ms",
            "20",
            "--link",
        ])
        .arg(&link)
        .arg("--inbox-file")
        .arg(&inbox)
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
    assert_eq!(up["link"].as_str(), Some(link.to_str().expect("utf8")));
    assert_eq!(up["profile"], "sim800");
    assert!(
        up["pty"]
            .as_str()
            .is_some_and(|p| p.starts_with("/dev/pts/"))
    );

    let rc = write_rc(dir.path(), &link);
    assert!(squash(&gammu(&rc, &["identify"]).await).contains("Manufacturer : SIMCOM_Ltd"));
    assert!(gammu(&rc, &["geteachsms"]).await.contains(BILL));
    gammu(&rc, &["sendsms", "TEXT", "10086", "-text", "CX"]).await;
    let sent = next_line().await;
    assert_eq!(sent["sent"]["to"], "10086");
    assert_eq!(sent["sent"]["text"], "CX");

    // SIGTERM ends it cleanly and the link goes with it.
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(Ok(status)) => assert!(status.success(), "{status}"),
        other => panic!("gridsms sim did not stop: {other:?}"),
    }
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link left behind"
    );
}
