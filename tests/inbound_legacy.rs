//! The old outage-notice phone lists: `gridsms contacts import` (GBK and UTF-8 with BOM, bad
//! rows reported by line) and the cut-over (one message to phones known only from the lists,
//! then their legacy bindings retired; idempotent).

mod common;
mod inbound_support;

use common::manual_clock;
use gridsms::inbound::legacy::cutover_once;
use gridsms::store::Store;
use gridsms::store::contacts::{self, BindingStatus, ContactSource};
use inbound_support::*;
use std::process::Command;

fn import(env: &common::Env, file: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["contacts", "import"])
        .arg(file)
        .args(["--source", "legacy", "--config"])
        .arg(&env.config_path)
        .output()
        .expect("run gridsms");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_gbk_and_bom_files_and_reports_bad_rows_by_line() {
    let env = env("").await;
    // "户号,手机,户名" header and a Chinese name, as Excel on Chinese Windows saves them (GBK).
    let (gbk, _, _) = encoding_rs::GBK.encode("户号,手机,户名\n2000001,13600136000,赵六\n2000002,1234,钱七\n\n2000003,135 0013 5000,孙八\n");
    let gbk_file = env.dir.path().join("old-list.csv");
    std::fs::write(&gbk_file, &gbk).expect("write");
    let (ok, stdout, stderr) = import(&env, &gbk_file);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "3 rows read (gbk); 2 added, 0 already known, 0 repeated in the file; 1 bad rows"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("old-list.csv:3: phone \"1234\""),
        "{stderr}"
    );
    let bom_file = env.dir.path().join("bom.csv");
    std::fs::write(
        &bom_file,
        "\u{feff}13600136000,2000001\n13300133000,2000004\n13300133000,2000004\n",
    )
    .expect("write");
    let (ok, stdout, _) = import(&env, &bom_file);
    assert!(ok);
    assert!(
        stdout.contains("(utf-8 (BOM)); 1 added, 1 already known, 1 repeated"),
        "{stdout}"
    );
    let all_bad = env.dir.path().join("bad.csv");
    std::fs::write(&all_bad, "x,y\n").expect("write");
    let (ok, _, stderr) = import(&env, &all_bad);
    assert!(!ok, "{stderr}");
    let store = Store::open(env.storage_path()).await.expect("store");
    let b = store
        .call(|c| contacts::bindings_of_account(c, "2000001"))
        .await
        .expect("store");
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].source, b[0].status),
        (ContactSource::Legacy, BindingStatus::Active)
    );
    assert_eq!(b[0].phone, "+8613600136000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_over_tells_legacy_only_phones_once_and_retires_them() {
    let env = env("cutover_date = \"2026-03-01\"").await;
    let (_, alice) = ALICE;
    let legacy_file = env.dir.path().join("legacy.csv");
    // Only on the old list; on the list and opted out; on the list but also in marketing;
    // on the list and subscribed by SMS.
    std::fs::write(
        &legacy_file,
        format!("13600136000,2000001\n13500135000,2000002\n{alice},1000001\n13300133000,2000003\n"),
    )
    .expect("write");
    let (ok, stdout, stderr) = import(&env, &legacy_file);
    assert!(ok, "{stdout}{stderr}");
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let sim = env.sim("m1");
    sim.inject_sms("+8613500135000", "TD");
    // DY from a legacy-list phone for its listed account binds at once (an own binding).
    sim.inject_sms("+8613300133000", "DY 2000003");
    assert!(wait_replies(&env, "13300133000", 1).await[0].contains("已与本机号码绑定"));
    wait_handled(&d, 2).await;
    let shared = d.running.shared.clone();
    let store = shared.store.clone();
    let first = cutover_once(&shared).await.expect("cut-over");
    let second = cutover_once(&shared).await.expect("again");
    assert_eq!(
        second.notified + second.retired_silently,
        0,
        "idempotent: {second:?}"
    );
    assert_eq!(
        (first.notified, first.retired_silently, first.kept),
        (1, 1, 1)
    );
    let told = wait_replies(&env, "13600136000", 1).await;
    assert!(
        told[0].contains("2026年3月1日") && told[0].contains("DY"),
        "{told:?}"
    );
    settle().await;
    assert_eq!(replies_to(&env, "13600136000").len(), 1);
    assert!(
        replies_to(&env, "13500135000")
            .iter()
            .all(|t| !t.contains("停止使用"))
    );
    assert!(replies_to(&env, alice).is_empty());
    let statuses = store
        .call(|c| {
            let mut out = Vec::new();
            for acct in ["2000001", "2000002", "1000001", "2000003"] {
                for b in contacts::bindings_of_account(c, acct)? {
                    if b.source == ContactSource::Legacy {
                        out.push((acct, b.status, b.note));
                    }
                }
            }
            Ok(out)
        })
        .await
        .expect("store");
    assert_eq!(
        statuses,
        vec![
            (
                "2000001",
                BindingStatus::Rejected,
                Some("cut-over".to_owned())
            ),
            (
                "2000002",
                BindingStatus::Rejected,
                Some("cut-over".to_owned())
            ),
            ("1000001", BindingStatus::Active, None),
            ("2000003", BindingStatus::Active, None),
        ]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_cut_over_date_legacy_phones_stay_active_recipients() {
    let env = env("cutover_date = \"2026-04-01\"").await;
    let file = env.dir.path().join("l.csv");
    std::fs::write(&file, "13600136000,2000001\n").expect("write");
    assert!(import(&env, &file).0);
    let (_c, clock) = manual_clock(10, 0);
    let d = start(&env, clock).await;
    let r = cutover_once(&d.running.shared).await.expect("cut-over");
    assert_eq!(r.notified + r.retired_silently + r.kept, 0);
    let phones = d
        .running
        .shared
        .store
        .call(|c| contacts::active_phones_of_account(c, "2000001"))
        .await
        .expect("store");
    assert_eq!(
        phones.len(),
        1,
        "dual track: the legacy phone is a recipient"
    );
    d.stop().await;
}
