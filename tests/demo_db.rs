//! The demo marketing database: deterministic for a seed, realistic enough (missing and
//! invalid phones, today's bills, arrears, an outage tomorrow), the demo queries fit it, and
//! the daemon on config/demo.toml sends a bill notice and an outage notice through its
//! simulated modems.

use gridsms::daemon::{self, RunOptions};
use gridsms::marketing::demo::{self, QUERIES};
use gridsms::marketing::queries::{Queries, missing_columns, spec};
use gridsms::marketing::source::{SourceConfig, open};
use gridsms::systemd::Notifier;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn now() -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str("2026-11-28 10:00", "%Y-%m-%d %H:%M").unwrap()
}

/// Every row of every table, as text, in a stable order.
fn dump(path: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = c
            .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2"))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect();
            out.push(format!("{t}|{}", cells.join("|")));
        }
    }
    out
}

fn count(path: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn same_seed_same_database_other_seed_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.db"),
        dir.path().join("b.db"),
        dir.path().join("c.db"),
    );
    demo::generate(&a, 300, 7, now()).unwrap();
    demo::generate(&b, 300, 7, now()).unwrap();
    demo::generate(&c, 300, 8, now()).unwrap();
    assert_eq!(dump(&a), dump(&b));
    assert_ne!(dump(&a), dump(&c));
    assert!(matches!(
        demo::generate(&a, 300, 7, now()),
        Err(demo::DemoError::Exists(_))
    ));
}

#[test]
fn content_looks_like_a_bureau() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let s = demo::generate(&db, 2_000, 1, now()).unwrap();
    assert_eq!(s.customers, 2_000);
    let primary = count(
        &db,
        "SELECT count(*) FROM contact WHERE contact_type = '01'",
    );
    let missing = count(&db, "SELECT count(*) FROM contact WHERE mobile IS NULL");
    let invalid = count(
        &db,
        "SELECT count(*) FROM contact WHERE mobile IS NOT NULL
         AND (length(mobile) != 11 OR substr(mobile, 1, 1) != '1' OR mobile GLOB '*[^0-9]*'
              OR substr(mobile, 1, 2) IN ('10', '11', '12'))",
    );
    assert_eq!(primary, 2_000);
    assert!((30..=100).contains(&missing), "missing phones: {missing}");
    assert!((15..=70).contains(&invalid), "invalid phones: {invalid}");
    let shared = count(
        &db,
        "SELECT count(*) FROM (SELECT mobile FROM contact WHERE mobile IS NOT NULL
         GROUP BY mobile HAVING count(DISTINCT cons_no) > 1)",
    );
    assert!(shared > 0, "some phones are on two accounts");
    assert!(s.bills_posted_today > 200, "{s:?}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM bill WHERE posted_at LIKE '2026-11-28%' AND revision = 0"
        ),
        i64::from(s.bills_posted_today)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM bill WHERE posted_at > '2026-11-28 10:00:00'"
        ),
        0,
        "nothing posted in the future"
    );
    assert!(s.revisions > 0 && s.arrears > 0, "{s:?}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM receivable WHERE due_date >= '2026-11-28'"
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outage_plan WHERE start_time = '2026-11-29 08:00:00'
             AND status = 'planned' AND feeder_code IS NOT NULL"
        ),
        1,
        "an outage starts tomorrow"
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM org_station WHERE org_code GLOB '33011[0-9][0-9][0-9]'"
        ) == 2
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM customer WHERE cons_name GLOB '*[a-zA-Z]*'"
        ) == 0
    );
}

#[tokio::test]
async fn demo_queries_fit_the_schema_and_match_demo_toml() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    demo::generate(&db, 50, 1, now()).unwrap();
    let source = open(&SourceConfig {
        url: format!("sqlite://{}", db.display()),
        password: None,
        connect_timeout: Duration::from_secs(5),
        query_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let parsed = Queries::parse(QUERIES.iter().copied()).unwrap();
    assert_eq!(
        parsed.iter().count(),
        gridsms::marketing::QUERIES.len(),
        "every query"
    );
    for (name, q) in parsed.iter() {
        let cols = source.columns(q).await.unwrap();
        let spec = spec(name).unwrap();
        assert!(missing_columns(spec, &cols).is_empty(), "{name}: {cols:?}");
    }
    let config =
        gridsms::config::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
            .unwrap()
            .config;
    let m = config.marketing.expect("demo.toml has [marketing]");
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, sql) in QUERIES {
        assert_eq!(
            m.queries.get(*name).map(|q| squash(q)),
            Some(squash(sql)),
            "{name} differs between demo.rs and demo.toml"
        );
    }
    assert!(config.demo.is_some());
}

#[test]
fn demo_db_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("x.db");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .args([
                "demo-db",
                "--customers",
                "120",
                "--seed",
                "3",
                "--now",
                "2026-11-28 10:00",
                "--json",
                "--out",
            ])
            .arg(&out_path)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["customers"], 120);
    assert_eq!(s["outages"], 3);
    let again = run();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

/// config/demo.toml as shipped, moved into a tempdir (its relative paths follow) and listening
/// on a free port.
fn demo_config(dir: &Path) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cfg_dir = dir.join("config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let text = std::fs::read_to_string(root.join("config/demo.toml"))
        .unwrap()
        .replace("listen = \"127.0.0.1:8727\"", "listen = \"127.0.0.1:0\"")
        .replace("level = \"info\"", "level = \"warn\"");
    let path = cfg_dir.join("demo.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::copy(root.join("config/demo-token"), cfg_dir.join("demo-token")).unwrap();
    path
}

async fn sent(store: &gridsms::store::Store, category: &'static str) -> i64 {
    store
        .call(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM messages WHERE category = ?1 AND state IN ('sent', 'delivered')",
                [category],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_config_sends_bill_and_outage_notices() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_config(dir.path());
    let config = gridsms::config::load(&path).unwrap().config;
    let running = daemon::start(
        config,
        &path,
        RunOptions {
            notifier: Notifier::disabled(),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(
        dir.path().join("demo-data/marketing.db").exists(),
        "written at start"
    );
    let store = running.shared.store.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (bills, outages) = (sent(&store, "bill").await, sent(&store, "outage").await);
        if bills > 0 && outages > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bills sent {bills}, outage notices sent {outages}; queue {:?}",
            store.counts().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text: String = store
        .call(|c| {
            Ok(c.query_row(
                "SELECT text FROM messages WHERE category = 'outage' LIMIT 1",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert!(
        text.contains("线路检修") && text.contains("08:00至17:00"),
        "{text}"
    );
    running.shutdown().await;
}
