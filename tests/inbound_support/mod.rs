//! Shared by the inbound tests: a marketing database fixture (SQLite, through the real
//! source adapter and Directory), a daemon on simulated modems with `[inbound]` configured,
//! waiting for replies, and a fake outage source for TZ.
#![allow(dead_code)]

use crate::common::{self, Daemon, Env, Mnc};
use chrono::{DateTime, Utc};
use gridsms::inbound::{PlannedOutage, UpcomingOutages};
use gridsms::marketing::source::{BoxFuture, SourceConfig, open};
use gridsms::marketing::{Directory, Queries};
use gridsms::sim::SentMessage;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Customers of the fixture: (account, phone, name).
pub const ALICE: (&str, &str) = ("1000001", "13800138000");
pub const BOB: (&str, &str) = ("1000002", "13900139000");
/// Recorded for two accounts.
pub const CAROL: (&str, &str, &str) = ("1000003", "1000004", "13700137000");
/// Recorded for nothing.
pub const STRANGER: &str = "13600136000";

pub fn marketing_db(path: &Path) {
    rusqlite::Connection::open(path)
        .expect("marketing db")
        .execute_batch(
            "CREATE TABLE cust (acct TEXT, tel TEXT, nm TEXT, org TEXT);
             INSERT INTO cust VALUES ('1000001', '13800138000', '张三', 'S01'),
                                     ('1000002', '139 0013 9000', '李四', 'S01'),
                                     ('1000003', '13700137000', '王五', 'S02'),
                                     ('1000004', '+8613700137000', '王五', 'S02');
             CREATE TABLE bill (acct TEXT, ym TEXT, amt TEXT, kwh REAL, due TEXT);
             INSERT INTO bill VALUES ('1000001', '2026-09', '88.00', 200, '2026-10-25'),
                                     ('1000001', '2026-10', '123.45', 256, '2026-11-25'),
                                     ('1000002', '2026-10', '50.10', 110, '2026-11-25');
             CREATE TABLE owe (acct TEXT, amt TEXT, due TEXT, fee TEXT);
             INSERT INTO owe VALUES ('1000001', '123.45', '2026-11-25', '1.20');
             CREATE TABLE supply (acct TEXT, feeder TEXT, area TEXT);
             INSERT INTO supply VALUES ('1000001', '10kV城东线', 'T1'), ('1000002', '10kV城西线', 'T2');",
        )
        .expect("fixture");
}

pub fn directory(path: &Path) -> Directory {
    let source = open(&SourceConfig {
        url: format!("sqlite://{}", path.display()),
        password: None,
        connect_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(5),
    })
    .expect("source");
    let queries = Queries::parse([
        (
            "account_contacts",
            "SELECT tel AS phone, nm AS name, org AS station FROM cust WHERE acct = :account",
        ),
        (
            "accounts_of_phone",
            "SELECT acct AS account, nm AS name FROM cust
             WHERE replace(replace(tel, ' ', ''), '+86', '') = :phone",
        ),
        (
            "latest_bill",
            "SELECT ym AS period, amt AS amount, kwh, due AS due_date FROM bill
             WHERE acct = :account ORDER BY ym DESC LIMIT 1",
        ),
        (
            "account_arrears",
            "SELECT amt AS amount, due AS due_date, fee AS late_fee FROM owe WHERE acct = :account",
        ),
        (
            "feeders_of_account",
            "SELECT feeder, area FROM supply WHERE acct = :account",
        ),
    ])
    .expect("queries");
    Directory::new(source, Arc::new(queries), chrono_tz::Asia::Shanghai)
}

/// A fixed list of planned outages per feeder.
pub struct FakeOutages(pub Vec<PlannedOutage>);

impl UpcomingOutages for FakeOutages {
    fn upcoming<'a>(
        &'a self,
        feeders: &'a [String],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<PlannedOutage>, String>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .filter(|o| feeders.contains(&o.feeder) && o.end > now)
                .cloned()
                .collect())
        })
    }
}

/// One simulated modem "m1", `[inbound]` with `inbound` extra lines.
pub async fn env(inbound: &str) -> Env {
    let dispatch = format!("timezone = \"Asia/Shanghai\"\n\n[inbound]\n{inbound}\n");
    Env::new(vec![common::modem("m1", Mnc::Mobile)], &dispatch).await
}

/// The daemon started on a manual clock with the marketing fixture installed.
pub async fn start(env: &Env, clock: Arc<dyn gridsms::clock::Clock>) -> Daemon {
    let db = env.dir.path().join("marketing.db");
    if !db.exists() {
        marketing_db(&db);
    }
    let d = env.start(clock).await;
    d.running.shared.set_directory(Some(directory(&db)));
    wait_ready(&d).await;
    d
}

/// Waits until modem m1 is ready (its identity known), so injected SMS are read at once.
pub async fn wait_ready(d: &Daemon) {
    let deadline = Instant::now() + common::SOON;
    loop {
        let modems = d.running.shared.modems();
        let ready = !modems.is_empty()
            && modems
                .iter()
                .all(|m| m.state == gridsms::modem::ModemState::Ready && m.own_number.is_some());
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "modems not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Messages the simulator sent to `to` (local 11 digits), whole.
pub fn replies_to(env: &Env, to: &str) -> Vec<String> {
    let intl = common::intl(to);
    env.sims
        .values()
        .flat_map(|s| s.sent_messages())
        .filter(|m: &SentMessage| m.to == intl && m.received == m.total)
        .map(|m| m.text)
        .collect()
}

/// Waits until `to` got at least `n` replies; returns them all.
pub async fn wait_replies(env: &Env, to: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + common::SOON;
    loop {
        let got = replies_to(env, to);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{to} got {} replies, wanted {n}: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The inbox, newest first, through the API.
pub async fn inbox(d: &Daemon) -> Vec<serde_json::Value> {
    let (status, body) = d.api.get("/api/v1/inbox?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    body["messages"].as_array().cloned().unwrap_or_default()
}

/// Waits until the inbox holds `n` messages none of which is still `received`.
pub async fn wait_handled(d: &Daemon, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + common::SOON;
    loop {
        let all = inbox(d).await;
        if all.len() >= n && all.iter().all(|m| m["state"] != "received") {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "inbox not handled: {}",
            serde_json::Value::Array(all)
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Sent so far to `to` (to check that nothing more arrives).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}
