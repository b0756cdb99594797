//! A demo marketing (billing) database: supply stations, 10 kV feeders, transformer areas,
//! customers with contact phones (some missing or invalid), bills posted over the last days
//! (today's included), revisions, arrears and planned outages (one starting tomorrow).
//!
//! Demo only: `gridsms demo-db` writes it, and the daemon writes it at start when `[demo]`
//! names a file that does not exist yet (config/demo.toml). Dates are relative to `today`, so
//! the demo shows today's bills whenever it is run; for the same seed, size and day the file's
//! content is identical (a fixed splitmix64 generator, not `rand`, whose streams may change
//! between versions). Table shapes follow the usual marketing-system split (customers,
//! contacts by contact type, receivables, feeder → transformer-area relations) so that the
//! queries in config/demo.toml read like a real site's; docs/marketing.md documents them.

use chrono::{Datelike, Duration as Days, NaiveDate, NaiveDateTime, NaiveTime};
use rusqlite::{Connection, params};
use std::path::Path;

/// Default number of customers: small enough that the demo SIMs' quotas still show movement.
pub const DEFAULT_CUSTOMERS: u32 = 200;
pub const MAX_CUSTOMERS: u32 = 2_000_000;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} already exists; remove it or choose another --out")]
    Exists(String),
    #[error("customers must be 1 to {MAX_CUSTOMERS}")]
    Size,
    #[error("demo database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("demo database {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DemoSummary {
    pub stations: u32,
    pub feeders: u32,
    pub areas: u32,
    pub customers: u32,
    pub contacts: u32,
    pub bills: u32,
    pub bills_posted_today: u32,
    pub revisions: u32,
    pub arrears: u32,
    pub outages: u32,
}

/// splitmix64: tiny, fast, and its output for a seed never changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `pct`/100.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

const SCHEMA: &str = "
-- Supply stations (供电所), by organisation code.
CREATE TABLE org_station (org_code TEXT PRIMARY KEY, org_name TEXT NOT NULL);
-- 10 kV feeder lines and the station that runs them.
CREATE TABLE feeder (feeder_code TEXT PRIMARY KEY, feeder_name TEXT NOT NULL,
                     org_code TEXT NOT NULL REFERENCES org_station);
-- Transformer areas (台区) on each feeder.
CREATE TABLE tr_area (area_code TEXT PRIMARY KEY, area_name TEXT NOT NULL,
                      feeder_code TEXT NOT NULL REFERENCES feeder);
-- Electricity customers (用电户).
CREATE TABLE customer (cons_no TEXT PRIMARY KEY, cons_name TEXT NOT NULL, elec_addr TEXT,
                       area_code TEXT NOT NULL REFERENCES tr_area, org_code TEXT NOT NULL,
                       status TEXT NOT NULL DEFAULT '正常');
-- Contacts by type: 01 = primary mobile for notices, 02 = other contact.
CREATE TABLE contact (cons_no TEXT NOT NULL REFERENCES customer, contact_type TEXT NOT NULL,
                      mobile TEXT, contact_name TEXT);
CREATE INDEX contact_cons ON contact (cons_no);
CREATE INDEX contact_mobile ON contact (mobile);
-- Posted bills; a revision > 0 is a correction of a posted bill.
CREATE TABLE bill (cons_no TEXT NOT NULL, ym TEXT NOT NULL, revision INTEGER NOT NULL,
                   kwh REAL, amount DECIMAL(12,2), due_date DATE, posted_at DATETIME,
                   revised_at DATETIME, PRIMARY KEY (cons_no, ym, revision));
CREATE INDEX bill_posted ON bill (posted_at);
CREATE INDEX bill_revised ON bill (revised_at);
-- Receivables: what is still owed per bill period.
CREATE TABLE receivable (cons_no TEXT NOT NULL, ym TEXT NOT NULL, owed DECIMAL(12,2) NOT NULL,
                         due_date DATE NOT NULL, late_fee DECIMAL(12,2) NOT NULL DEFAULT 0,
                         PRIMARY KEY (cons_no, ym));
-- Planned outages (停电计划): a feeder, or a list of transformer areas.
CREATE TABLE outage_plan (plan_no TEXT PRIMARY KEY, feeder_code TEXT, area_codes TEXT,
                          start_time DATETIME NOT NULL, end_time DATETIME NOT NULL,
                          reason TEXT, scope_desc TEXT, org_code TEXT,
                          status TEXT NOT NULL, updated_at DATETIME NOT NULL);
";

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "沈", "潘", "蒋", "钱", "欧阳",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "建华", "国强", "志明", "海燕", "晓东", "春梅", "文博",
    "子涵", "宇轩", "雨欣",
];
const MOBILE_PREFIXES: &[&str] = &[
    "134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "182",
    "183", "187", "188", "198", "130", "131", "132", "155", "156", "185", "186", "166", "133",
    "153", "180", "181", "189", "199",
];
const TOWNS: &[(&str, &str)] = &[("城关", "城关镇"), ("临江", "临江镇")];
const STREETS: &[&str] = &[
    "东街",
    "西街",
    "南街",
    "北街",
    "新华路",
    "人民路",
    "解放路",
    "滨江路",
];
const REASONS: &[&str] = &["线路检修", "设备检修", "线路改造", "配电变压器增容"];

fn mobile(rng: &mut Rng) -> String {
    format!("{}{:08}", rng.pick(MOBILE_PREFIXES), rng.below(100_000_000))
}

fn datetime(d: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default())
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn ym(d: NaiveDate) -> String {
    format!("{:04}{:02}", d.year(), d.month())
}

fn month_before(d: NaiveDate) -> NaiveDate {
    d.with_day(1)
        .and_then(|first| first.pred_opt())
        .unwrap_or(d)
}

/// Writes a new demo database at `path` (refuses to overwrite). `now` is the bureau's local
/// time: bills are posted over the 5 days up to it (some today), an outage starts tomorrow.
pub fn generate(
    path: &Path,
    customers: u32,
    seed: u64,
    now: NaiveDateTime,
) -> Result<DemoSummary, DemoError> {
    let shown = path.display().to_string();
    if customers == 0 || customers > MAX_CUSTOMERS {
        return Err(DemoError::Size);
    }
    if path.exists() {
        return Err(DemoError::Exists(shown));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DemoError::Io {
            path: shown.clone(),
            source,
        })?;
    }
    // Written under a temporary name and renamed: a daemon never finds half a database.
    let tmp = path.with_extension("db-partial");
    let _ = std::fs::remove_file(&tmp);
    let sql = |source| DemoError::Sqlite {
        path: shown.clone(),
        source,
    };
    let mut conn = Connection::open(&tmp).map_err(sql)?;
    let summary = fill(&mut conn, customers, seed, now).map_err(sql)?;
    drop(conn);
    std::fs::rename(&tmp, path).map_err(|source| DemoError::Io {
        path: shown,
        source,
    })?;
    Ok(summary)
}

fn fill(
    conn: &mut Connection,
    customers: u32,
    seed: u64,
    now: NaiveDateTime,
) -> rusqlite::Result<DemoSummary> {
    let mut rng = Rng(seed);
    let mut s = DemoSummary::default();
    let today = now.date();
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    // Stations, feeders (two per station), transformer areas (three per feeder, more when
    // the demo is large).
    let areas_per_feeder = (customers / 400).clamp(3, 500);
    let mut areas: Vec<(String, String, String, &str)> = Vec::new(); // (code, name, station, town)
    for (si, (short, town)) in TOWNS.iter().enumerate() {
        let org = format!("330112{:02}", si + 1);
        tx.execute(
            "INSERT INTO org_station VALUES (?1, ?2)",
            params![org, format!("{town}供电所")],
        )?;
        s.stations += 1;
        for (fi, line) in ["线", "二线"].iter().enumerate() {
            let feeder = format!("{org}{:02}", fi + 1);
            tx.execute(
                "INSERT INTO feeder VALUES (?1, ?2, ?3)",
                params![feeder, format!("10kV{short}{line}"), org],
            )?;
            s.feeders += 1;
            for ai in 0..areas_per_feeder {
                let code = format!("{feeder}{:03}", ai + 1);
                let street = STREETS[(fi * 4 + ai as usize) % STREETS.len()];
                let name = format!("{town}{street}{}号台区", ai + 1);
                tx.execute(
                    "INSERT INTO tr_area VALUES (?1, ?2, ?3)",
                    params![code, name, feeder],
                )?;
                areas.push((code, name, org.clone(), town));
                s.areas += 1;
            }
        }
    }
    let period = ym(month_before(today));
    let older = ym(month_before(month_before(today)));
    let mut last_phone = String::new();
    {
        let mut cust = tx.prepare("INSERT INTO customer VALUES (?1, ?2, ?3, ?4, ?5, '正常')")?;
        let mut contact = tx.prepare("INSERT INTO contact VALUES (?1, ?2, ?3, ?4)")?;
        let mut bill = tx.prepare("INSERT INTO bill VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        let mut recv = tx.prepare("INSERT INTO receivable VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for i in 0..customers {
            let (area, _, org, town) = &areas[(i as usize) % areas.len()];
            let account = format!("{}{:07}", &org[..4], i + 1);
            let name = format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN));
            let addr = format!("{town}{}{}号", rng.pick(STREETS), 1 + rng.below(180));
            cust.execute(params![account, name, addr, area, org])?;
            s.customers += 1;
            // ~3 % no phone, ~2 % invalid, ~2 % share the previous customer's phone (a
            // landlord's shops), ~10 % a second contact.
            let roll = rng.below(100);
            let phone: Option<String> = match roll {
                0..=2 => None,
                3..=4 => Some(
                    ["1380013800", "0571-8765432", "2380013800", "138001380001"]
                        [rng.below(4) as usize]
                        .to_owned(),
                ),
                5..=6 if !last_phone.is_empty() => Some(last_phone.clone()),
                _ => Some(mobile(&mut rng)),
            };
            if let Some(p) = &phone
                && p.len() == 11
                && p.starts_with('1')
            {
                last_phone = p.clone();
            }
            contact.execute(params![account, "01", phone, name])?;
            s.contacts += 1;
            if rng.chance(10) {
                contact.execute(params![account, "02", mobile(&mut rng), name])?;
                s.contacts += 1;
            }
            // Last month's bill, posted on one of the last 5 days (today ~1 in 5).
            let kwh = 40 + rng.below(560);
            let cents = kwh * 538 / 10 + rng.below(100);
            let day_back = rng.below(5) as i64;
            let posted_day = today - Days::days(day_back);
            let posted = if day_back == 0 {
                // Today's bills were posted this morning, before `now` (or just now).
                datetime(posted_day, 7, 0).min(now) + Days::minutes(rng.below(60) as i64)
            } else {
                datetime(posted_day, 7 + rng.below(10) as u32, rng.below(60) as u32)
            };
            let posted = posted.min(now);
            let due = posted_day + Days::days(20);
            bill.execute(params![
                account,
                period,
                0,
                kwh as f64,
                money(cents),
                due.to_string(),
                ts(posted),
                Option::<String>::None
            ])?;
            s.bills += 1;
            if day_back == 0 {
                s.bills_posted_today += 1;
            }
            // ~3 %: the posted bill was revised this morning (meter reading corrected).
            if rng.chance(3) {
                let fixed = kwh.saturating_sub(20 + rng.below(30));
                let revised = posted.max(datetime(today, 9, 0)).min(now);
                bill.execute(params![
                    account,
                    period,
                    1,
                    fixed as f64,
                    money(fixed * 538 / 10),
                    due.to_string(),
                    ts(posted),
                    ts(revised)
                ])?;
                s.revisions += 1;
            }
            // ~8 %: the month before last is still unpaid, past its due date.
            if rng.chance(8) {
                let owed = 3_000 + rng.below(30_000);
                let overdue = today - Days::days(5 + rng.below(40) as i64);
                let days_late = (today - overdue).num_days().max(0) as u64;
                // Late fee 1‰ a day, as the supply rules set it.
                let fee = owed * days_late / 1000;
                recv.execute(params![
                    account,
                    older,
                    money(owed),
                    overdue.to_string(),
                    money(fee)
                ])?;
                s.arrears += 1;
            }
        }
    }
    // Outages: one on a feeder tomorrow, one by areas in 5 days, one cancelled.
    let tomorrow = today + Days::days(1);
    let feeders: Vec<(String, String)> = {
        let mut st = tx.prepare("SELECT feeder_code, org_code FROM feeder ORDER BY feeder_code")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let updated = ts(now - Days::hours(1));
    let plans = [
        (
            "TD2026-0001",
            Some(feeders[0].0.clone()),
            None,
            datetime(tomorrow, 8, 0),
            datetime(tomorrow, 17, 0),
            REASONS[0],
            "城关镇东街、西街、南街一带".to_owned(),
            feeders[0].1.clone(),
            "planned",
        ),
        (
            "TD2026-0002",
            None,
            Some(
                areas
                    .iter()
                    .filter(|a| a.0.starts_with(&feeders[2].0))
                    .take(2)
                    .map(|a| a.0.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            datetime(today + Days::days(5), 9, 0),
            datetime(today + Days::days(5), 12, 30),
            REASONS[3],
            "临江镇东街一带".to_owned(),
            feeders[2].1.clone(),
            "planned",
        ),
        (
            "TD2026-0003",
            Some(feeders[1].0.clone()),
            None,
            datetime(today + Days::days(3), 8, 30),
            datetime(today + Days::days(3), 16, 0),
            REASONS[2],
            "城关镇西街一带".to_owned(),
            feeders[1].1.clone(),
            "cancelled",
        ),
    ];
    for (no, feeder, area_codes, start, end, reason, desc, org, status) in plans {
        tx.execute(
            "INSERT INTO outage_plan VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                no,
                feeder,
                area_codes,
                ts(start),
                ts(end),
                reason,
                desc,
                org,
                status,
                updated
            ],
        )?;
        s.outages += 1;
    }
    tx.commit()?;
    Ok(s)
}

/// At daemon start: writes `[demo] marketing_db` when it is missing (demo configs only).
pub fn ensure(config: &crate::config::Config, now: chrono::DateTime<chrono::Utc>) {
    let Some(demo) = &config.demo else { return };
    if demo.marketing_db.exists() {
        return;
    }
    let local = now.with_timezone(&config.dispatch.timezone).naive_local();
    match generate(&demo.marketing_db, demo.customers, demo.seed, local) {
        Ok(s) => tracing::info!(
            path = %demo.marketing_db.display(), customers = s.customers,
            bills_today = s.bills_posted_today, outages = s.outages,
            "demo marketing database written"
        ),
        Err(error) => tracing::error!(%error, "cannot write the demo marketing database"),
    }
}

/// The site queries that fit the demo schema (config/demo.toml carries the same text; a test
/// keeps them in step).
pub const QUERIES: &[(&str, &str)] = &[
    (
        "bills",
        "SELECT b.cons_no AS account, c.mobile AS phone, u.cons_name AS name, b.ym AS period,
                b.kwh, b.amount, b.due_date, b.revision, b.posted_at, u.org_code AS station
         FROM bill b JOIN customer u ON u.cons_no = b.cons_no
         JOIN contact c ON c.cons_no = b.cons_no AND c.contact_type = '01'
         WHERE b.revision = 0 AND b.posted_at > :since ORDER BY b.posted_at",
    ),
    (
        "corrections",
        "SELECT b.cons_no AS account, c.mobile AS phone, u.cons_name AS name, b.ym AS period,
                b.revision, b.kwh, b.amount, b.due_date, b.revised_at, u.org_code AS station
         FROM bill b JOIN customer u ON u.cons_no = b.cons_no
         JOIN contact c ON c.cons_no = b.cons_no AND c.contact_type = '01'
         WHERE b.revision > 0 AND b.revised_at > :since ORDER BY b.revised_at",
    ),
    (
        "arrears",
        "SELECT r.cons_no AS account, c.mobile AS phone, u.cons_name AS name, sum(r.owed) AS amount,
                min(r.due_date) AS due_date, sum(r.late_fee) AS late_fee, u.org_code AS station
         FROM receivable r JOIN customer u ON u.cons_no = r.cons_no
         JOIN contact c ON c.cons_no = r.cons_no AND c.contact_type = '01'
         WHERE r.owed > 0 AND r.due_date < :today
         GROUP BY r.cons_no, c.mobile",
    ),
    (
        "account_arrears",
        "SELECT owed AS amount, due_date, late_fee FROM receivable
         WHERE cons_no = :account AND owed > 0 AND due_date < :today",
    ),
    (
        "outages",
        "SELECT plan_no AS outage_id, feeder_code AS feeder, area_codes AS areas,
                start_time AS start, end_time AS \"end\", reason, scope_desc AS area, status,
                org_code AS station, updated_at
         FROM outage_plan WHERE updated_at >= :since ORDER BY updated_at",
    ),
    (
        "customers_on_feeder",
        "SELECT u.cons_no AS account, c.mobile AS phone, u.cons_name AS name, u.org_code AS station
         FROM customer u JOIN tr_area a ON a.area_code = u.area_code
         JOIN contact c ON c.cons_no = u.cons_no
         WHERE a.feeder_code = :feeder",
    ),
    (
        "customers_in_area",
        "SELECT u.cons_no AS account, c.mobile AS phone, u.cons_name AS name, u.org_code AS station
         FROM customer u JOIN contact c ON c.cons_no = u.cons_no WHERE u.area_code = :area",
    ),
    (
        "customers_in_station",
        "SELECT u.cons_no AS account, c.mobile AS phone, u.cons_name AS name, u.org_code AS station
         FROM customer u JOIN contact c ON c.cons_no = u.cons_no
         WHERE u.org_code LIKE :station || '%'",
    ),
    (
        "account_contacts",
        "SELECT c.mobile AS phone, u.cons_name AS name, u.org_code AS station
         FROM customer u JOIN contact c ON c.cons_no = u.cons_no WHERE u.cons_no = :account
         ORDER BY c.contact_type",
    ),
    (
        "accounts_of_phone",
        "SELECT u.cons_no AS account, u.cons_name AS name, u.org_code AS station
         FROM customer u JOIN contact c ON c.cons_no = u.cons_no WHERE c.mobile = :phone",
    ),
    (
        "latest_bill",
        "SELECT ym AS period, amount, kwh, due_date, revision FROM bill
         WHERE cons_no = :account ORDER BY ym DESC, revision DESC LIMIT 1",
    ),
    (
        "feeders_of_account",
        "SELECT a.feeder_code AS feeder, a.area_code AS area
         FROM customer u JOIN tr_area a ON a.area_code = u.area_code WHERE u.cons_no = :account",
    ),
    (
        "feeder_station",
        "SELECT f.org_code AS station FROM feeder f
         WHERE f.feeder_code = :feeder
            OR f.feeder_code = (SELECT feeder_code FROM tr_area WHERE area_code = :area)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_stable() {
        let mut r = Rng(1);
        assert_eq!(r.next(), 0x910A_2DEC_8902_5CC1);
    }
}
