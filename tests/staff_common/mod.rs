//! Shared set-up of the staff tests: the daemon on one simulated modem, extra tokens (a
//! station-scoped one, a bureau-wide broadcaster), and a small marketing database (SQLite)
//! behind the runtime Directory.
#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;
pub use common::*;

use gridsms::marketing::source::{SourceConfig, open};
use gridsms::marketing::{Directory, Queries};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Limited to stations 330112… (33011201 and 33011202, not 33011301).
pub const STATION_TOKEN: &str = "station-token-0123456789abcdef";
/// Bureau-wide, may broadcast and send, not admin.
pub const DESK_TOKEN: &str = "desk-token-0123456789abcdef";

/// The marketing fixture: accounts, phones, stations, feeders and areas.
pub const CUSTOMERS: &str = "
CREATE TABLE customers (account TEXT, phone TEXT, name TEXT, station TEXT, feeder TEXT, area TEXT);
INSERT INTO customers VALUES
  ('A1', '13800000001', '张三', '33011201', 'F1', 'T1'),
  ('A1', '13800000002', '张三', '33011201', 'F1', 'T1'),
  ('A2', '13800000003', '李四', '33011201', 'F1', 'T1'),
  ('A3', '13800000004', '王五', '33011202', 'F2', 'T2'),
  ('A4', NULL,          '赵六', '33011202', 'F2', 'T2'),
  ('A5', '12345',       '钱七', '33011202', 'F2', 'T2'),
  ('A6', '13800000006', '孙八', '33011301', 'F3', 'T3'),
  ('A7', '13800000003', '周九', '33011202', 'F2', 'T2'),
  ('A8', NULL,          '吴十', '33011201', 'F1', 'T1');
";

pub const QUERIES: &[(&str, &str)] = &[
    (
        "account_contacts",
        "SELECT phone, name, station FROM customers WHERE account = :account",
    ),
    (
        "customers_in_station",
        "SELECT account, phone, name, station FROM customers
         WHERE station LIKE :station || '%' ORDER BY account, phone",
    ),
    (
        "customers_on_feeder",
        "SELECT account, phone, name, station FROM customers WHERE feeder = :feeder ORDER BY account",
    ),
    (
        "customers_in_area",
        "SELECT account, phone, name, station FROM customers WHERE area = :area ORDER BY account",
    ),
    (
        "feeder_station",
        "SELECT DISTINCT station FROM customers WHERE feeder = :feeder OR area = :area",
    ),
];

/// The environment: one modem, quiet hours off, extra tokens and `[reports]`.
pub async fn env_with(extra_config: &str) -> Env {
    let env = Env::new(
        vec![modem("m1", Mnc::Mobile).extra("price_per_segment = 0.05")],
        "quiet_hours_categories = []\n",
    )
    .await;
    write_staff_config(&env, extra_config);
    env
}

pub fn write_staff_config(env: &Env, extra_config: &str) {
    for (file, secret) in [("station.token", STATION_TOKEN), ("desk.token", DESK_TOKEN)] {
        let path = env.dir.path().join(file);
        std::fs::write(&path, secret).expect("token file");
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    let text = format!(
        "{}\n[[api.tokens]]\nname = \"station-a\"\nsecret_file = \"station.token\"\n\
         scopes = [\"read\", \"send\", \"outage\", \"broadcast\"]\nstations = [\"330112\"]\n\n\
         [[api.tokens]]\nname = \"desk\"\nsecret_file = \"desk.token\"\n\
         scopes = [\"read\", \"send\", \"broadcast\"]\n\n{extra_config}\n",
        env.config_text()
    );
    std::fs::write(&env.config_path, text).expect("write config");
}

/// A Directory over a fresh SQLite marketing database holding [`CUSTOMERS`].
pub fn marketing(env: &Env) -> Directory {
    let path = env.dir.path().join("marketing.db");
    rusqlite::Connection::open(&path)
        .expect("marketing db")
        .execute_batch(CUSTOMERS)
        .expect("fixture");
    let source = open(&SourceConfig {
        url: format!("sqlite://{}", path.display()),
        password: None,
        connect_timeout: Duration::from_secs(2),
        query_timeout: Duration::from_secs(5),
    })
    .expect("open marketing");
    let queries = Queries::parse(QUERIES.iter().copied()).expect("queries");
    Directory::new(source, Arc::new(queries), chrono_tz::Asia::Shanghai)
}

/// The daemon with the marketing Directory installed.
pub async fn start(env: &Env) -> Daemon {
    let d = env.start_now().await;
    d.running.shared.set_directory(Some(marketing(env)));
    d
}

/// Audit entries (admin view), newest first.
pub async fn audit(api: &Api, query: &str) -> Vec<Value> {
    let (s, b) = api.get(&format!("/api/v1/audit?limit=1000&{query}")).await;
    assert_eq!(s, 200, "{b}");
    b["entries"].as_array().cloned().unwrap_or_default()
}

/// The numbers (E.164) of queued-or-later messages, sorted.
pub async fn recipients_of(api: &Api, ids: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            api.message(*id).await["to"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
        );
    }
    out.sort();
    out
}

/// Opt `phone` out of `category` (None: everything) directly in the store.
pub async fn opt_out(d: &Daemon, phone: &str, category: Option<gridsms::message::Category>) {
    let p = gridsms::phone::normalise(phone).expect("phone");
    let now = d.running.shared.clock.now();
    d.running
        .shared
        .store
        .call(move |c| gridsms::store::contacts::opt_out(c, &p, category, "sms", now))
        .await
        .expect("opt out");
}
