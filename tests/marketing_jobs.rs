//! The marketing jobs end to end, on every engine (SQLite always; PostgreSQL and MySQL when
//! GRIDSMS_TEST_POSTGRES_URL / GRIDSMS_TEST_MYSQL_URL are set): the daemon in-process on a
//! simulated modem, a real marketing database filled through tests/common/mkdb.rs, runs
//! triggered through the API, outcomes read from the job runs, the outbox and the modem.

mod common;

use common::mkdb::{DbProxy, Kind, TestDb};
use common::*;
use gridsms::clock::ManualClock;
use gridsms::message::Category;
use gridsms::phone;
use gridsms::store::{Store, contacts};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const BILL_DDL: &str = "CREATE TABLE bill (acct {text}, tel {text}, cust {text}, ym {text}, \
     kwh {num}, fee {money}, due {date}, rev {int}, posted {ts}, revised {ts})";

const BILLS_SQL: &str = "SELECT acct AS account, tel AS phone, cust AS name, ym AS period, \
     kwh, fee AS amount, due AS due_date, rev AS revision, posted AS posted_at \
     FROM bill WHERE posted >= :since ORDER BY posted";

const CORRECTIONS_SQL: &str = "SELECT acct AS account, tel AS phone, cust AS name, \
     ym AS period, rev AS revision, fee AS amount, due AS due_date, revised AS revised_at \
     FROM bill WHERE revised >= :since";

/// A bill row; `None` → SQL NULL.
#[allow(clippy::too_many_arguments)]
fn bill(
    acct: &str,
    tel: Option<&str>,
    fee: Option<&str>,
    rev: i64,
    posted: &str,
    revised: Option<&str>,
) -> String {
    let q = |v: Option<&str>| v.map_or("NULL".to_owned(), |s| format!("'{s}'"));
    format!(
        "INSERT INTO bill VALUES ('{acct}', {}, '张三', '2026年2月', 215, {}, '2026-03-25', {rev}, \
         '{posted}', {})",
        q(tel),
        fee.unwrap_or("NULL"),
        q(revised)
    )
}

fn marketing_toml(url: &str, queries: &[(&str, &str)], jobs: &str) -> String {
    let mut t = format!(
        "\n[marketing]\nurl = {url:?}\nconnect_timeout = \"2s\"\nquery_timeout = \"20s\"\n\n\
         [marketing.queries]\n"
    );
    for (name, sql) in queries {
        t.push_str(&format!("{name} = '''{sql}'''\n"));
    }
    t.push('\n');
    t.push_str(jobs);
    t
}

async fn env_with(dispatch: &str) -> Env {
    Env::new(vec![modem("m1", Mnc::Mobile)], dispatch).await
}

fn write_config(env: &Env, marketing: &str) {
    std::fs::write(&env.config_path, env.config_text() + marketing).expect("write config");
}

/// `GET /api/v1/jobs`, the named job.
async fn job_view(api: &Api, name: &str) -> (Value, Value) {
    let (status, v) = api.get("/api/v1/jobs").await;
    assert_eq!(status, 200, "{v}");
    let job = v["jobs"]
        .as_array()
        .and_then(|a| a.iter().find(|j| j["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no job {name}: {v}"));
    (v, job)
}

/// Waits until `name` has `n` finished runs; returns the latest.
async fn wait_runs(api: &Api, name: &str, n: usize) -> Value {
    let deadline = Instant::now() + SOON;
    loop {
        let (_, job) = job_view(api, name).await;
        let runs = job["last_runs"].as_array().cloned().unwrap_or_default();
        if runs.len() >= n && runs[0]["state"] != "running" {
            return runs[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {n} runs not done: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `name` now through the API and returns the finished run.
async fn run_now(api: &Api, name: &str) -> Value {
    let (status, run) = api
        .post(&format!("/api/v1/jobs/{name}/run?wait=true"), json!({}))
        .await;
    assert_eq!(status, 200, "{run}");
    run
}

fn skipped(run: &Value, reason: &str) -> u64 {
    run["skipped"][reason].as_u64().unwrap_or(0)
}

/// (idempotency key, state) of every message of `category`, read beside the daemon.
fn messages(env: &Env, category: Category) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        env.storage_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open outbox");
    let mut stmt = conn
        .prepare(
            "SELECT coalesce(idempotency_key, ''), state FROM messages WHERE category = ?1 \
             ORDER BY id",
        )
        .expect("prepare");
    stmt.query_map([category.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn watermark(env: &Env, job: &str) -> Option<String> {
    let conn = rusqlite::Connection::open_with_flags(
        env.storage_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open outbox");
    conn.query_row("SELECT value FROM watermarks WHERE job = ?1", [job], |r| {
        r.get(0)
    })
    .ok()
}

async fn opt_out_before_start(env: &Env, number: &str) {
    std::fs::create_dir_all(env.dir.path().join("data")).expect("data dir");
    let store = Store::open(env.storage_path()).await.expect("store");
    let p = phone::normalise(number).expect("number");
    store
        .call(move |c| contacts::opt_out(c, &p, None, "sms", chrono::Utc::now()))
        .await
        .expect("opt out");
}

async fn wait_sent_messages(env: &Env, n: usize) -> Vec<gridsms::sim::SentMessage> {
    let sim = env.sim("m1");
    wait_until("messages sent", SOON, || {
        sim.sent_messages()
            .iter()
            .filter(|m| m.received == m.total)
            .count()
            >= n
    })
    .await;
    sim.sent_messages()
}

// ---------------------------------------------------------------------------------------------

/// Bills: the first run reads only the look-back (no flood of history), bad rows are skipped
/// with reasons and counted, opt-outs are honoured, notices reach the modem, the watermark
/// survives a restart, and the API shows it all.
async fn bills_scenario(db: &TestDb) {
    db.exec_ddl(BILL_DDL);
    for row in [
        bill(
            "A001",
            Some("13800000001"),
            Some("66.00"),
            0,
            "2026-03-07 09:00:00",
            None,
        ), // history
        bill(
            "A002",
            Some("13800000002"),
            Some("128.50"),
            0,
            "2026-03-10 08:00:00",
            None,
        ),
        bill(
            "A002",
            Some("13800000003"),
            Some("128.50"),
            0,
            "2026-03-10 08:00:00",
            None,
        ),
        bill(
            "A002",
            Some("13800000002"),
            Some("128.50"),
            0,
            "2026-03-10 08:00:00",
            None,
        ), // dup
        bill("A003", None, Some("10.00"), 0, "2026-03-10 08:00:00", None),
        bill(
            "A004",
            Some("12345"),
            Some("10.00"),
            0,
            "2026-03-10 08:00:00",
            None,
        ),
        bill(
            "A005",
            Some("13800000005"),
            None,
            0,
            "2026-03-10 08:00:00",
            None,
        ),
        bill(
            "A006",
            Some("13800000006"),
            Some("-5.00"),
            0,
            "2026-03-10 08:00:00",
            None,
        ),
        bill(
            "A007",
            Some("13800000007"),
            Some("20.00"),
            0,
            "2026-03-10 08:00:00",
            None,
        ),
        bill(
            "A008",
            Some("13800000008"),
            Some("20.00"),
            -1,
            "2026-03-10 08:00:00",
            None,
        ),
    ] {
        db.exec(&row);
    }
    let env = env_with("").await;
    let marketing = marketing_toml(
        db.url(),
        &[("bills", BILLS_SQL)],
        "[marketing.bills]\nevery = \"1d\"\nlook_back = \"1d\"\n",
    );
    write_config(&env, &marketing);
    opt_out_before_start(&env, "13800000007").await;
    let (clock, shared_clock) = manual_clock(10, 0);
    let d = env.start(shared_clock.clone()).await;

    // The first run starts by itself.
    let run = wait_runs(&d.api, "bills", 1).await;
    assert_eq!(run["state"], "ok", "{run}");
    assert_eq!(run["trigger"], "schedule", "{run}");
    assert_eq!(
        run["rows_read"], 9,
        "history beyond look_back not read: {run}"
    );
    assert_eq!(run["queued"], 2, "{run}");
    for reason in [
        "duplicate_row",
        "no_phone",
        "invalid_phone",
        "null_amount",
        "negative_amount",
        "opted_out",
        "bad_field",
    ] {
        assert_eq!(skipped(&run, reason), 1, "{reason}: {run}");
    }
    let sent = wait_sent_messages(&env, 2).await;
    let mut to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, [intl("13800000002"), intl("13800000003")]);
    assert!(sent[0].text.contains("¥128.50"), "{}", sent[0].text);
    assert!(sent[0].text.contains("A002"), "{}", sent[0].text);

    // API: read scope sees, only admin triggers, unknown jobs are 404.
    let reader = d.api.with_token(Some(READ_TOKEN));
    let (status, view) = reader.get("/api/v1/jobs").await;
    assert_eq!(status, 200);
    assert_eq!(view["marketing"]["reachable"], true, "{view}");
    assert_eq!(view["jobs"][0]["schedule"], "every 1d", "{view}");
    assert!(view["jobs"][0]["next_run"].is_string(), "{view}");
    let (status, _) = reader.post("/api/v1/jobs/bills/run", json!({})).await;
    assert_eq!(status, 403);
    let (status, _) = d.api.post("/api/v1/jobs/nope/run", json!({})).await;
    assert_eq!(status, 404);

    // The CLI shows the same through the API.
    let api = d.api.base.clone();
    let token = env.dir.path().join("admin.token");
    let out = tokio::task::spawn_blocking(move || {
        let cli = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
                .args(args)
                .arg("--api")
                .arg(&api)
                .arg("--token-file")
                .arg(&token)
                .output()
                .expect("run gridsms jobs")
        };
        (cli(&["jobs"]), cli(&["jobs", "run", "nope"]))
    })
    .await
    .expect("join");
    let (list, nope) = out;
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        text.contains("bills") && text.contains("every 1d"),
        "{text}"
    );
    assert!(
        text.contains("queued 2") && text.contains("duplicate_row 1"),
        "{text}"
    );
    assert!(!nope.status.success());
    assert!(
        String::from_utf8_lossy(&nope.stderr).contains("no job named \"nope\""),
        "{}",
        String::from_utf8_lossy(&nope.stderr)
    );

    // A bill posted later is picked up; the boundary rows come back as duplicates.
    db.exec(&bill(
        "A009",
        Some("13800000009"),
        Some("30.00"),
        0,
        "2026-03-10 09:30:00",
        None,
    ));
    clock.advance(Duration::from_secs(60));
    let run = run_now(&d.api, "bills").await;
    assert_eq!(run["queued"], 1, "{run}");
    assert_eq!(run["trigger"], "manual", "{run}");
    assert!(run["duplicates"].as_u64().unwrap_or(0) >= 2, "{run}");
    wait_sent_messages(&env, 3).await;
    d.stop().await;

    // Restart: the watermark is where it was, nothing is read twice into the outbox.
    let d = env.start(shared_clock).await;
    let run = wait_runs(&d.api, "bills", 3).await;
    assert_eq!(run["state"], "ok", "{run}");
    assert_eq!(run["rows_read"], 1, "only the boundary row again: {run}");
    assert_eq!(run["queued"], 0, "{run}");
    let keys: Vec<String> = messages(&env, Category::Bill)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "bill:A002:2026年2月:0:+8613800000002",
            "bill:A002:2026年2月:0:+8613800000003",
            "bill:A009:2026年2月:0:+8613800000009"
        ]
    );
    d.stop().await;
}

/// Corrections: one notice per revision, never twice; revision 0 is not a correction.
async fn corrections_scenario(db: &TestDb) {
    db.exec_ddl(BILL_DDL);
    db.exec(&bill(
        "C001",
        Some("13800000021"),
        Some("99.00"),
        1,
        "2026-03-05 08:00:00",
        Some("2026-03-10 09:00:00"),
    ));
    db.exec(&bill(
        "C002",
        Some("13800000022"),
        Some("50.00"),
        0,
        "2026-03-05 08:00:00",
        Some("2026-03-10 09:00:00"),
    ));
    let env = env_with("").await;
    write_config(
        &env,
        &marketing_toml(
            db.url(),
            &[("corrections", CORRECTIONS_SQL)],
            "[marketing.corrections]\nenabled = false\n",
        ),
    );
    let (clock, shared_clock) = manual_clock(10, 0);
    let d = env.start(shared_clock).await;
    let (_, job) = job_view(&d.api, "corrections").await;
    assert_eq!(job["state"], "disabled", "{job}");

    let run = run_now(&d.api, "corrections").await;
    assert_eq!(run["queued"], 1, "{run}");
    assert_eq!(skipped(&run, "not_revised"), 1, "{run}");
    let run = run_now(&d.api, "corrections").await;
    assert_eq!(run["queued"], 0, "the same revision again: {run}");
    assert_eq!(run["duplicates"], 1, "{run}");

    db.exec(
        "UPDATE bill SET rev = 2, fee = 95.00, revised = '2026-03-10 09:40:00' WHERE acct = 'C001'",
    );
    clock.advance(Duration::from_secs(60));
    let run = run_now(&d.api, "corrections").await;
    assert_eq!(run["queued"], 1, "{run}");
    let keys: Vec<String> = messages(&env, Category::Bill)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "billfix:C001:2026年2月:1:+8613800000021",
            "billfix:C001:2026年2月:2:+8613800000021"
        ]
    );
    let sent = wait_sent_messages(&env, 2).await;
    assert!(sent.iter().all(|m| m.text.contains("更正")), "{sent:?}");
    assert!(sent.iter().any(|m| m.text.contains("¥95.00")), "{sent:?}");
    d.stop().await;
}

/// Reminders: first after N days, then every M days, at most K; a customer who paid between
/// the list and the re-read is not reminded; queued reminders of an account that paid are
/// cancelled at the next poll. The clock sits in quiet hours so reminders stay queued.
async fn reminders_scenario(db: &TestDb) {
    db.exec_ddl(
        "CREATE TABLE contact (acct {text}, tel {text});
         CREATE TABLE arrear_list (acct {text}, owed {money}, due {date});
         CREATE TABLE ledger (acct {text}, owed {money}, due {date})",
    );
    db.exec(
        "INSERT INTO contact VALUES ('B1', '13800000011'), ('B1', '13900000012'),
             ('B2', '13800000013'), ('B3', '13800000015'), ('B4', '13800000014');
         INSERT INTO arrear_list VALUES ('B1', 88.10, '2026-03-01'), ('B2', 10.00, '2026-03-01'),
             ('B3', 10.00, '2026-03-09'), ('B4', 50.00, '2026-03-01');
         INSERT INTO ledger VALUES ('B1', 88.10, '2026-03-01'), ('B2', 0, '2026-03-01'),
             ('B3', 10.00, '2026-03-09'), ('B4', 50.00, '2026-03-01')",
    );
    let env = env_with("").await;
    write_config(
        &env,
        &marketing_toml(
            db.url(),
            &[
                (
                    "arrears",
                    "SELECT l.acct AS account, c.tel AS phone, l.owed AS amount, \
                     l.due AS due_date FROM arrear_list l JOIN contact c ON c.acct = l.acct \
                     WHERE l.due < :today ORDER BY l.acct",
                ),
                (
                    "account_arrears",
                    "SELECT owed AS amount, due AS due_date FROM ledger \
                     WHERE acct = :account AND owed > 0",
                ),
            ],
            "[marketing.reminders]\nenabled = false\nfirst_after_days = 3\nevery_days = 7\n\
             max_reminders = 3\nexpire_after = \"1d\"\n",
        ),
    );
    let clock = ManualClock::new(shanghai(22, 0));
    let d = env.start(std::sync::Arc::new(clock.clone())).await;

    let run = run_now(&d.api, "reminders").await;
    assert_eq!(run["state"], "ok", "{run}");
    assert_eq!(run["queued"], 3, "B1 twice, B4 once: {run}");
    assert_eq!(
        skipped(&run, "paid"),
        1,
        "B2 paid before the re-read: {run}"
    );
    assert_eq!(skipped(&run, "not_due"), 1, "B3 only 1 day late: {run}");
    let b1: Vec<(String, String)> = messages(&env, Category::Reminder)
        .into_iter()
        .filter(|(k, _)| k.starts_with("reminder:B1:"))
        .collect();
    assert_eq!(b1.len(), 2, "{b1:?}");
    assert!(b1.iter().all(|(_, s)| s == "queued"), "quiet hours: {b1:?}");

    // B1 pays: its queued reminders are cancelled and it is not reminded again.
    db.exec("UPDATE ledger SET owed = 0 WHERE acct = 'B1'");
    let run = run_now(&d.api, "reminders").await;
    assert_eq!(run["cancelled"], 2, "{run}");
    assert_eq!(skipped(&run, "paid"), 1, "B2: {run}");
    assert_eq!(run["queued"], 0, "B4 not due again the same day: {run}");
    let b1_states: Vec<String> = messages(&env, Category::Reminder)
        .into_iter()
        .filter(|(k, _)| k.starts_with("reminder:B1:"))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(b1_states, ["cancelled", "cancelled"]);

    // B4 keeps owing: every 7 days, at most 3 (B3 leaves the list so only B4 counts).
    db.exec("DELETE FROM arrear_list WHERE acct = 'B3'");
    for (days, want) in [(6, 0), (1, 1), (7, 1), (7, 0)] {
        clock.advance(Duration::from_secs(days * 86_400));
        let run = run_now(&d.api, "reminders").await;
        assert_eq!(run["queued"], want, "after {days} more days: {run}");
    }
    let b4: Vec<String> = messages(&env, Category::Reminder)
        .into_iter()
        .filter(|(k, _)| k.starts_with("reminder:B4:"))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        b4,
        [
            "reminder:B4:2026-03-01:1:+8613800000014",
            "reminder:B4:2026-03-01:2:+8613800000014",
            "reminder:B4:2026-03-01:3:+8613800000014"
        ]
    );
    let (_, job) = job_view(&d.api, "reminders").await;
    let last = &job["last_runs"][0];
    assert!(skipped(last, "max_reminders") >= 1, "{last}");
    d.stop().await;
}

/// The database goes away (a URL to nothing) and comes back: the failed run is recorded with
/// its error, status says since when it is unreachable, the watermark stays, and the bill
/// posted meanwhile is queued once it is back.
async fn database_down_scenario(db: &TestDb, dead_url: &str) {
    db.exec_ddl(BILL_DDL);
    db.exec(&bill(
        "D001",
        Some("13800000031"),
        Some("12.00"),
        0,
        "2026-03-10 08:00:00",
        None,
    ));
    let env = env_with("").await;
    let jobs = "[marketing.bills]\nevery = \"1d\"\n";
    write_config(
        &env,
        &marketing_toml(db.url(), &[("bills", BILLS_SQL)], jobs),
    );
    let (clock, shared_clock) = manual_clock(10, 0);
    let d = env.start(shared_clock).await;
    let run = wait_runs(&d.api, "bills", 1).await;
    assert_eq!(run["queued"], 1, "{run}");
    let mark = watermark(&env, "bills").expect("watermark after a good run");

    db.exec(&bill(
        "D002",
        Some("13800000032"),
        Some("13.00"),
        0,
        "2026-03-10 09:00:00",
        None,
    ));
    write_config(
        &env,
        &marketing_toml(dead_url, &[("bills", BILLS_SQL)], jobs),
    );
    assert!(d.running.reload().await, "reload to the dead URL");
    clock.advance(Duration::from_secs(60));
    let run = run_now(&d.api, "bills").await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{run}"
    );
    let (view, job) = job_view(&d.api, "bills").await;
    assert_eq!(view["marketing"]["reachable"], false, "{view}");
    assert!(
        view["marketing"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("marketing database unreachable since 2026-03-10 10:01")),
        "{view}"
    );
    assert_eq!(job["state"], "retrying", "{job}");
    assert_eq!(job["consecutive_failures"], 1, "{job}");
    assert_eq!(watermark(&env, "bills"), Some(mark), "watermark untouched");

    // Back, and (SIGHUP) a new schedule applies without a restart.
    let jobs = "[marketing.bills]\nat = [\"08:30\", \"14:00\"]\n";
    write_config(
        &env,
        &marketing_toml(db.url(), &[("bills", BILLS_SQL)], jobs),
    );
    assert!(d.running.reload().await, "reload back");
    let run = run_now(&d.api, "bills").await;
    assert_eq!(run["state"], "ok", "{run}");
    assert_eq!(run["queued"], 1, "the bill posted while down: {run}");
    let (view, job) = job_view(&d.api, "bills").await;
    assert_eq!(view["marketing"]["reachable"], true, "{view}");
    assert_eq!(job["state"], "idle", "{job}");
    assert_eq!(job["schedule"], "at 08:30, 14:00", "{job}");
    assert_eq!(
        job["next_run"], "2026-03-10T06:00:00Z",
        "14:00 Shanghai: {job}"
    );
    wait_sent_messages(&env, 2).await;
    d.stop().await;
}

/// How a test takes the database away on the same URL.
enum Outage {
    Proxy(DbProxy),
    /// SQLite: the file moves away and back.
    File(std::path::PathBuf),
}

impl Outage {
    fn of(db: &TestDb) -> (Outage, String) {
        match db.kind() {
            Kind::Sqlite => {
                let path = db.url().trim_start_matches("sqlite://").to_owned();
                (Outage::File(path.into()), db.url().to_owned())
            }
            _ => {
                let proxy = DbProxy::start(db);
                let url = proxy.url().to_owned();
                (Outage::Proxy(proxy), url)
            }
        }
    }

    fn cut(&self) {
        match self {
            Outage::Proxy(p) => p.cut(),
            Outage::File(path) => {
                std::fs::rename(path, path.with_extension("away")).expect("move away")
            }
        }
    }

    fn restore(&self) {
        match self {
            Outage::Proxy(p) => p.restore(),
            Outage::File(path) => {
                std::fs::rename(path.with_extension("away"), path).expect("move back")
            }
        }
    }
}

/// The database goes down on the same URL between two scheduled runs: the scheduled run
/// fails, the job retries by itself after 30 s, then 60 s, and once the database is back the
/// retry queues what was posted meanwhile.
async fn retry_backoff_scenario(db: &TestDb) {
    db.exec_ddl(BILL_DDL);
    db.exec(&bill(
        "E001",
        Some("13800000041"),
        Some("12.00"),
        0,
        "2026-03-10 08:00:00",
        None,
    ));
    let (outage, url) = Outage::of(db);
    let env = env_with("").await;
    let jobs = "[marketing.bills]\nevery = \"1h\"\n";
    write_config(&env, &marketing_toml(&url, &[("bills", BILLS_SQL)], jobs));
    let (clock, shared_clock) = manual_clock(10, 0);
    let d = env.start(shared_clock).await;
    let run = wait_runs(&d.api, "bills", 1).await;
    assert_eq!(run["queued"], 1, "{run}");

    db.exec(&bill(
        "E002",
        Some("13800000042"),
        Some("13.00"),
        0,
        "2026-03-10 10:30:00",
        None,
    ));
    outage.cut();
    clock.advance(Duration::from_secs(3600));
    let run = wait_runs(&d.api, "bills", 2).await;
    assert_eq!(
        (run["state"].as_str(), run["trigger"].as_str()),
        (Some("failed"), Some("schedule")),
        "{run}"
    );
    let (_, job) = job_view(&d.api, "bills").await;
    assert_eq!(job["state"], "retrying", "{job}");
    clock.advance(Duration::from_secs(30));
    let run = wait_runs(&d.api, "bills", 3).await;
    assert_eq!(
        (run["state"].as_str(), run["trigger"].as_str()),
        (Some("failed"), Some("retry")),
        "{run}"
    );
    let (view, job) = job_view(&d.api, "bills").await;
    assert_eq!(job["consecutive_failures"], 2, "{job}");
    assert_eq!(view["marketing"]["reachable"], false, "{view}");

    outage.restore();
    clock.advance(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, job) = job_view(&d.api, "bills").await;
    assert_eq!(
        job["last_runs"].as_array().map(Vec::len),
        Some(3),
        "second retry waits 60 s: {job}"
    );
    clock.advance(Duration::from_secs(30));
    let run = wait_runs(&d.api, "bills", 4).await;
    assert_eq!(
        (run["state"].as_str(), run["trigger"].as_str()),
        (Some("ok"), Some("retry")),
        "{run}"
    );
    assert_eq!(run["queued"], 1, "the bill posted while down: {run}");
    let (view, job) = job_view(&d.api, "bills").await;
    assert_eq!(view["marketing"]["reachable"], true, "{view}");
    assert_eq!(job["consecutive_failures"], 0, "{job}");
    d.stop().await;
}

/// `check-config` connects, prepares every query and names a missing column.
fn check_config_scenario(db: &TestDb) {
    db.exec_ddl(BILL_DDL);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gridsms.toml");
    let no_posted_at = "SELECT acct AS account, tel AS phone, ym AS period, fee AS amount \
                        FROM bill WHERE posted >= :since";
    std::fs::write(
        &path,
        marketing_toml(db.url(), &[("bills", no_posted_at)], "[marketing.bills]\n"),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["check-config", "-q", "--config"])
        .arg(&path)
        .output()
        .expect("run check-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("marketing.queries.bills: missing column posted_at"),
        "{stderr}"
    );
    std::fs::write(
        &path,
        marketing_toml(db.url(), &[("bills", BILLS_SQL)], "[marketing.bills]\n"),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .args(["check-config", "-q", "--config"])
        .arg(&path)
        .output()
        .expect("run check-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------

macro_rules! on_every_engine {
    ($scenario:ident, $sqlite:ident, $pg:ident, $my:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().expect("tempdir");
            $scenario(&TestDb::sqlite(dir.path())).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $pg() {
            if let Some(db) = TestDb::postgres() {
                $scenario(&db).await;
            }
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $my() {
            if let Some(db) = TestDb::mysql() {
                $scenario(&db).await;
            }
        }
    };
}

on_every_engine!(bills_scenario, bills_sqlite, bills_postgres, bills_mysql);
on_every_engine!(
    corrections_scenario,
    corrections_sqlite,
    corrections_postgres,
    corrections_mysql
);
on_every_engine!(
    reminders_scenario,
    reminders_sqlite,
    reminders_postgres,
    reminders_mysql
);

on_every_engine!(
    retry_backoff_scenario,
    retry_backoff_sqlite,
    retry_backoff_postgres,
    retry_backoff_mysql
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_and_back_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite(dir.path());
    let gone = format!("sqlite://{}", dir.path().join("moved-away.db").display());
    database_down_scenario(&db, &gone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_and_back_postgres() {
    if let Some(db) = TestDb::postgres() {
        let port = free_port();
        database_down_scenario(&db, &format!("postgres://postgres@127.0.0.1:{port}/test")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_and_back_mysql() {
    if let Some(db) = TestDb::mysql() {
        let port = free_port();
        database_down_scenario(&db, &format!("mysql://root@127.0.0.1:{port}/test")).await;
    }
}

#[test]
fn check_config_names_a_missing_column_on_every_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    for db in TestDb::all(dir.path()) {
        check_config_scenario(&db);
    }
}
