//! A marketing database (SQLite file) with customers on feeders and in transformer areas, the
//! site queries for it, and an outage desk over a real store file.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use gridsms::clock::{Clock, ManualClock};
use gridsms::marketing::outages::OutageDesk;
use gridsms::marketing::source::{SourceConfig, open};
use gridsms::marketing::{Directory, Queries};
use gridsms::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const SCHEMA: &str = "
CREATE TABLE customers (account TEXT, name TEXT, phone TEXT, feeder TEXT, area TEXT, station TEXT);
CREATE TABLE outages (id TEXT, feeder TEXT, areas TEXT, start_time TEXT, end_time TEXT,
                      reason TEXT, area_desc TEXT, status TEXT, updated_at TEXT);
";

pub const QUERIES: &[(&str, &str)] = &[
    (
        "customers_on_feeder",
        "SELECT account, phone, name, station FROM customers WHERE feeder = :feeder",
    ),
    (
        "customers_in_area",
        "SELECT account, phone, name, station FROM customers WHERE area = :area",
    ),
    (
        "outages",
        "SELECT id AS outage_id, feeder, areas, start_time AS start, end_time AS \"end\", reason,
                area_desc AS area, status, updated_at
         FROM outages WHERE updated_at >= :since ORDER BY updated_at",
    ),
];

/// Local Shanghai time on a day of November 2026.
pub fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .single()
        .expect("valid local time")
        .with_timezone(&Utc)
}

pub struct Site {
    pub dir: tempfile::TempDir,
    pub marketing: PathBuf,
    pub store: Store,
    pub clock: ManualClock,
    pub desk: OutageDesk,
}

impl Site {
    /// A store at `store_path` (or a fresh one in the tempdir) and a marketing DB with `rows`
    /// of (account, name, phone, feeder, area, station).
    pub async fn new(rows: &[(&str, &str, Option<&str>, &str, &str)]) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let marketing = dir.path().join("marketing.db");
        write_marketing(&marketing, rows);
        let store = Store::open(dir.path().join("gridsms.db"))
            .await
            .expect("store");
        let clock = ManualClock::new(at(28, 10, 0));
        let desk = desk(&marketing, store.clone(), Arc::new(clock.clone()));
        Site {
            dir,
            marketing,
            store,
            clock,
            desk,
        }
    }

    pub fn marketing_sql(&self, sql: &str) {
        rusqlite::Connection::open(&self.marketing)
            .expect("marketing db")
            .execute_batch(sql)
            .expect("marketing sql");
    }

    /// (recipient, text, state, idempotency_key, expires_at ms) of every outage message.
    pub async fn messages(&self) -> Vec<(String, String, String, String, Option<i64>)> {
        self.store
            .call(|c| {
                let mut s = c.prepare(
                    "SELECT recipient, text, state, idempotency_key, expires_at FROM messages
                     WHERE category = 'outage' ORDER BY id",
                )?;
                let rows = s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .expect("messages")
    }

    /// Recipients of queued messages whose key contains `kind`, sorted.
    pub async fn recipients(&self, kind: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .messages()
            .await
            .into_iter()
            .filter(|m| m.2 == "queued" && m.3.contains(&format!(":{kind}:")))
            .map(|m| m.0)
            .collect();
        out.sort();
        out
    }

    /// Pretend the dispatcher sent everything queued.
    pub async fn mark_all_sent(&self) {
        self.store
            .call(|c| {
                c.execute(
                    "UPDATE messages SET state = 'sent' WHERE state = 'queued'",
                    [],
                )?;
                Ok(())
            })
            .await
            .expect("mark sent");
    }
}

/// A marketing database file with `rows` of (account, name, phone, feeder, area).
pub fn write_marketing(path: &Path, rows: &[(&str, &str, Option<&str>, &str, &str)]) {
    let conn = rusqlite::Connection::open(path).expect("marketing db");
    conn.execute_batch(SCHEMA).expect("schema");
    for (account, name, phone, feeder, area) in rows {
        conn.execute(
            "INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, '33011201')",
            rusqlite::params![account, name, phone, feeder, area],
        )
        .expect("customer");
    }
}

pub fn desk(marketing: &Path, store: Store, clock: Arc<dyn Clock>) -> OutageDesk {
    let source = open(&SourceConfig {
        url: format!("sqlite://{}", marketing.display()),
        password: None,
        connect_timeout: Duration::from_secs(5),
        query_timeout: Duration::from_secs(30),
    })
    .expect("source");
    let queries = Queries::parse(QUERIES.iter().copied()).expect("queries");
    let directory = Directory::new(source, Arc::new(queries), chrono_tz::Asia::Shanghai);
    OutageDesk::new(store, directory, clock)
}
