//! Online backup: a consistent, verified copy while a writer keeps enqueueing; refusal to
//! overwrite; the CLI's summary line.

use chrono::Utc;
use gridsms::message::Category;
use gridsms::phone::normalise;
use gridsms::store::backup::{self, BackupError};
use gridsms::store::{NewMessage, StoreOptions, open_connection, outbox};
use rusqlite::Connection;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

fn batch(start: u32, n: u32) -> Vec<NewMessage> {
    (start..start + n)
        .map(|i| {
            let to = normalise(&format!("138{:08}", i % 100_000_000)).unwrap();
            NewMessage::new(to, format!("停电通知 {i}：10kV 线路检修"), Category::Outage)
        })
        .collect()
}

/// A database with `n` messages, written in batches of 1,000.
fn seed(path: &Path, n: u32) {
    let mut conn = open_connection(path, &StoreOptions::default()).unwrap();
    let mut i = 0;
    while i < n {
        let k = 1000.min(n - i);
        outbox::enqueue_bulk(&mut conn, &batch(i, k), Utc::now()).unwrap();
        i += k;
    }
}

fn ids(path: &Path) -> HashSet<i64> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM messages").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Backs up `n` seeded messages while a writer thread enqueues one message per transaction;
/// returns (messages committed before the backup began, backup summary, writes during it).
fn backup_under_load(n: u32) -> (i64, backup::BackupSummary, i64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gridsms.db");
    seed(&db, n);

    let stop = Arc::new(AtomicBool::new(false));
    let last_committed = Arc::new(AtomicI64::new(0));
    let commits = Arc::new(AtomicI64::new(0));
    let worst = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let writer = {
        let (db, stop, last, commits, worst) = (
            db.clone(),
            stop.clone(),
            last_committed.clone(),
            commits.clone(),
            worst.clone(),
        );
        std::thread::spawn(move || {
            let mut conn = open_connection(&db, &StoreOptions::default()).unwrap();
            let mut i = 1_000_000;
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                let out = outbox::enqueue_bulk(&mut conn, &batch(i, 1), Utc::now()).unwrap();
                let took = t.elapsed();
                // Published only after the commit returned: every id ≤ this is durable.
                last.store(out[0].id(), Ordering::SeqCst);
                commits.fetch_add(1, Ordering::SeqCst);
                let mut w = worst.lock().unwrap();
                *w = (*w).max(took);
                i += 1;
            }
        })
    };
    // Let the writer get going, then note what is committed and start the backup.
    while commits.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_ids = ids(&db);
    let committed_before = last_committed.load(Ordering::SeqCst);
    let commits_at_start = commits.load(Ordering::SeqCst);
    *worst.lock().unwrap() = Duration::ZERO;
    let out = dir.path().join("backup.db");
    let summary = backup::backup(&db, &out, false).unwrap();
    let during = commits.load(Ordering::SeqCst) - commits_at_start;
    let worst_write = *worst.lock().unwrap();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    // Every message committed before the backup began is in the copy.
    let copied = ids(&out);
    assert!(committed_before > n as i64);
    for id in 1..=committed_before {
        assert!(copied.contains(&id), "message {id} missing from the backup");
    }
    assert!(before_ids.is_subset(&copied));
    assert_eq!(summary.messages as usize, copied.len());
    assert!(summary.messages as i64 >= committed_before);
    // The copy opens on its own and passes the store's own checks again.
    let (count, version) = backup::verify(&out).unwrap();
    assert_eq!(count, summary.messages);
    assert_eq!(version, gridsms::store::migrations::CURRENT_VERSION);
    // ... and as a live store: gridsms can open (and would migrate) it.
    drop(open_connection(&out, &StoreOptions::default()).unwrap());
    (committed_before, summary, during, worst_write)
}

#[test]
fn backup_while_a_writer_enqueues_holds_every_committed_message() {
    let (before, s, during, worst) = backup_under_load(5_000);
    println!(
        "5k: {before} committed before, {} in copy, {} bytes, {:?}; writer commits during backup: {during}, slowest {worst:?}",
        s.messages, s.bytes, s.elapsed
    );
}

/// The figure the operations guide quotes: `cargo test --release --test store_backup --
/// --ignored --nocapture`.
#[test]
#[ignore = "figures: 100,000 messages"]
fn backup_of_100k_messages_figures() {
    let (before, s, during, worst) = backup_under_load(100_000);
    println!(
        "100k: {before} committed before, {} in copy, {:.1} MiB, backup {:?}; writer commits during backup: {during}, slowest commit {worst:?}",
        s.messages,
        s.bytes as f64 / 1048576.0,
        s.elapsed
    );
}

#[test]
fn refuses_to_overwrite_without_force_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gridsms.db");
    seed(&db, 10);
    let out = dir.path().join("b.db");
    std::fs::write(&out, b"precious").unwrap();
    match backup::backup(&db, &out, false) {
        Err(BackupError::Exists(p)) => assert_eq!(p, out),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let s = backup::backup(&db, &out, true).unwrap();
    assert_eq!(s.messages, 10);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(names.is_empty(), "temp files left: {names:?}");
}

#[test]
fn a_file_that_is_not_a_gridsms_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("other.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let out = dir.path().join("b.db");
    assert!(matches!(
        backup::backup(&db, &out, false),
        Err(BackupError::Schema { found: 0, .. })
    ));
    assert!(!out.exists());
    assert!(matches!(
        backup::backup(&dir.path().join("missing.db"), &out, false),
        Err(BackupError::NoSource(_))
    ));
}

#[test]
fn cli_prints_a_summary_and_exits_2_when_the_target_exists() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gridsms.db");
    seed(&db, 42);
    let out = dir.path().join("copy.db");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .args(["backup", "--database"])
            .arg(&db)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{first:?}");
    let line = String::from_utf8(first.stdout).unwrap();
    print!("{line}");
    assert!(line.contains("42 messages"), "{line}");
    assert!(line.contains("integrity ok"), "{line}");
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(run(&["--force"]).status.success());
}
