//! Inbound benchmark; prints its figures (no pass/fail).
//!
//! `cargo bench --bench inbound` — GRIDSMS_BENCH_N sets the number of customers texting in
//! (default 5,000). Measures stored PDU → queued reply: N single-part SMS-DELIVER PDUs are
//! written to `inbound_pdus` as the intake would have stored them, then the pipeline starts
//! (as after a restart) and reassembles, creates inbox rows, runs the router (keyword parse,
//! marketing lookups in a SQLite fixture, binding check, rate limits) and commits each reply
//! to the outbox. Target ≥ 2,000 messages/s. Mix: half `CX` (phone → account → latest bill:
//! two marketing queries), a quarter `QF <account>` (binding check + arrears), a quarter `BZ`.

use chrono::{TimeZone, Utc};
use gridsms::clock::{Clock, ManualClock};
use gridsms::daemon::state::Shared;
use gridsms::marketing::source::{SourceConfig, open};
use gridsms::marketing::{Directory, Queries};
use gridsms::message::{Category, MessageState};
use gridsms::pdu::{self, DeliverOptions};
use gridsms::store::Store;
use gridsms::store::inbox::{self, NewPdu};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn phone(i: usize) -> String {
    format!("138{:08}", i)
}

fn account(i: usize) -> String {
    format!("{:07}", 3_000_000 + i)
}

fn marketing(path: &Path, n: usize) {
    let mut c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE cust (acct TEXT, tel TEXT, nm TEXT);
         CREATE TABLE bill (acct TEXT, ym TEXT, amt TEXT, kwh REAL, due TEXT);
         CREATE TABLE owe (acct TEXT, amt TEXT, due TEXT);
         CREATE INDEX cust_acct ON cust (acct); CREATE INDEX cust_tel ON cust (tel);
         CREATE INDEX bill_acct ON bill (acct, ym); CREATE INDEX owe_acct ON owe (acct);",
    )
    .unwrap();
    let tx = c.transaction().unwrap();
    for i in 0..n {
        tx.execute(
            "INSERT INTO cust VALUES (?1, ?2, '客户')",
            [account(i), phone(i)],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO bill VALUES (?1, '2026-10', '123.45', 256, '2026-11-25')",
            [account(i)],
        )
        .unwrap();
        if i % 2 == 0 {
            tx.execute(
                "INSERT INTO owe VALUES (?1, '20.00', '2026-11-25')",
                [account(i)],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn directory(path: &Path) -> Directory {
    let source = open(&SourceConfig {
        url: format!("sqlite://{}", path.display()),
        password: None,
        connect_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let queries = Queries::parse([
        (
            "account_contacts",
            "SELECT tel AS phone, nm AS name FROM cust WHERE acct = :account",
        ),
        (
            "accounts_of_phone",
            "SELECT acct AS account, nm AS name FROM cust WHERE tel = :phone",
        ),
        (
            "latest_bill",
            "SELECT ym AS period, amt AS amount, kwh, due AS due_date FROM bill
             WHERE acct = :account ORDER BY ym DESC LIMIT 1",
        ),
        (
            "account_arrears",
            "SELECT amt AS amount, due AS due_date FROM owe WHERE acct = :account",
        ),
    ])
    .unwrap();
    Directory::new(source, Arc::new(queries), chrono_tz::Asia::Shanghai)
}

/// CPU seconds (user + system) this process used so far, from /proc; 0 if unavailable.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let n: usize = std::env::var("GRIDSMS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    // GRIDSMS_BENCH_MIX=help: every SMS is BZ (no marketing lookups: the store's share).
    let help_only = std::env::var("GRIDSMS_BENCH_MIX").is_ok_and(|m| m == "help");
    let dir = tempfile::tempdir().unwrap();
    let mk = dir.path().join("marketing.db");
    marketing(&mk, n);
    let config_path = dir.path().join("gridsms.toml");
    let text = format!(
        "[storage]\npath = {:?}\n[inbound]\nper_phone_per_hour = 100\ntotal_per_hour = 10000000\n",
        dir.path().join("gridsms.db").display().to_string()
    );
    std::fs::write(&config_path, &text).unwrap();
    let config = gridsms::config::load(&config_path).unwrap().config;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::open(&config.storage.path).await.unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
        let ts = chrono::FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 28, 10, 0, 0)
            .unwrap();
        let opts = DeliverOptions {
            smsc: Some("+8613800100500".into()),
            timestamp: ts,
            concat_ref: 0,
            concat_16bit: false,
        };
        let rows: Vec<NewPdu> = (0..n)
            .map(|i| {
                let text = match i % 4 {
                    _ if help_only => "BZ".to_owned(),
                    0 | 1 => "CX".to_owned(),
                    2 => format!("QF {}", account(i)),
                    _ => "BZ".to_owned(),
                };
                NewPdu {
                    modem: "m1".into(),
                    sim: "89860000000000000001".into(),
                    storage_index: Some(i as u32),
                    pdu: pdu::encode_deliver(&format!("+86{}", phone(i)), &text, &opts)
                        .unwrap()
                        .remove(0),
                    received_at: now,
                    group_key: None,
                    decodable: true,
                }
            })
            .collect();
        for chunk in rows.chunks(1000) {
            let chunk = chunk.to_vec();
            store
                .call_durable(move |c| inbox::store_pdus(c, &chunk))
                .await
                .unwrap();
        }
        let shared = Shared::new(store.clone(), clock, Arc::new(config));
        shared.set_directory(Some(directory(&mk)));
        let stop = CancellationToken::new();
        let started = Instant::now();
        let cpu0 = cpu_seconds();
        let task = gridsms::inbound::pipeline::start(shared.clone(), stop.clone())
            .await
            .unwrap();
        loop {
            let counts = store.counts().await.unwrap();
            let replies = counts.by_category(Category::Reply);
            if replies as usize >= n {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "stuck at {replies}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let queued = store.counts().await.unwrap().by_state(MessageState::Queued);
        println!(
            "inbound: {n} stored PDUs -> {queued} queued replies in {secs:.2} s = {:.0} messages/s (target >= 2,000/s)",
            n as f64 / secs
        );
        println!(
            "inbound: {cpu:.2} CPU s in this process = {:.0} µs CPU per message ({:.0} messages per CPU second; load average {})",
            cpu * 1e6 / n as f64,
            n as f64 / cpu.max(1e-9),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap_or("?")
        );
        stop.cancel();
        let _ = task.await;
    });
}
