//! The staff commands as the built binary: `send --account`, `broadcast --dry-run`, `cancel
//! --batch`, `audit`, against a daemon on a simulated modem.

mod staff_common;

use staff_common::*;
use std::process::{Command, Output};

async fn gridsms(env: &Env, d: &Daemon, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridsms"));
    cmd.args(args)
        .arg("--api")
        .arg(format!("http://{}", d.running.api_addr))
        .arg("--token-file")
        .arg(env.dir.path().join("admin.token"))
        .arg("--config")
        .arg(&env.config_path);
    tokio::task::spawn_blocking(move || cmd.output().expect("run gridsms"))
        .await
        .expect("join")
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_by_account_broadcast_cancel_and_audit_from_the_command_line() {
    let env = env_with("").await;
    let d = start(&env).await;
    let sent = json_of(
        &gridsms(
            &env,
            &d,
            &["send", "--account", "A3", "--text", "您好", "--json"],
        )
        .await,
    );
    assert_eq!(sent["recipients"], serde_json::json!(1), "{sent}");

    let out = gridsms(
        &env,
        &d,
        &[
            "broadcast",
            "--text",
            "安全用电提示",
            "--feeder",
            "F1",
            "--dry-run",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dry run, nothing queued: 3 recipient(s)"),
        "{text}"
    );

    let later = (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339();
    let b = json_of(
        &gridsms(
            &env,
            &d,
            &[
                "broadcast",
                "--text",
                "安全用电提示",
                "--station",
                "330112",
                "--not-before",
                &later,
                "--json",
            ],
        )
        .await,
    );
    let id = b["broadcast_id"].as_str().expect("id").to_owned();
    let c = json_of(&gridsms(&env, &d, &["cancel", "--batch", &id, "--json"]).await);
    assert_eq!(c["cancelled"], b["recipients"], "{c}");

    let a = json_of(&gridsms(&env, &d, &["audit", "--json"]).await);
    let actions: Vec<&str> = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["cancel", "broadcast", "send_by_account"]);
    // Unknown account: a clear message and a failing exit code.
    let out = gridsms(&env, &d, &["send", "--account", "NOPE", "--text", "x"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown account NOPE"));
    d.stop().await;
}
