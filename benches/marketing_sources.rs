//! Marketing source benchmark; prints its figures (no pass/fail).
//!
//! `cargo bench --bench marketing_sources` — reads 263,000 posted bills (the bureau's size)
//! through each adapter as a job would (text, money, local time per row) and prints the time
//! and the growth of peak RSS (VmHWM) while streaming. SQLite always; PostgreSQL and MySQL when
//! GRIDSMS_TEST_POSTGRES_URL / GRIDSMS_TEST_MYSQL_URL are set. GRIDSMS_BENCH_N changes the row
//! count. The source alone: polling plus enqueueing is the jobs benchmark's figure.

#[path = "../tests/common/mkdb.rs"]
mod mkdb;

use gridsms::marketing::{Query, Value};
use mkdb::{Kind, TestDb};
use std::time::{Duration, Instant};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `n` bills posted on 2026-11-28, generated inside the database.
fn load(db: &TestDb, n: usize) {
    db.exec_ddl(
        "CREATE TABLE bills (account {text}, phone {text}, name {text}, period {text},
                             amount {money}, kwh {num}, posted_at {ts})",
    );
    let sql = match db.kind() {
        Kind::Postgres => format!(
            "INSERT INTO bills SELECT 'A' || lpad(g::text, 10, '0'), (13800000000 + g)::text,
                 '客户' || g, '2026-11', (g % 40000) / 100.0 + 12.34, g % 900 + 0.5,
                 timestamp '2026-11-28 08:00:00' + (g % 3600) * interval '1 second'
             FROM generate_series(1, {n}) g"
        ),
        Kind::Mysql => {
            db.exec("CREATE TABLE d (n INT); INSERT INTO d VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)");
            format!(
                "INSERT INTO bills SELECT CONCAT('A', LPAD(g, 10, '0')), CAST(13800000000 + g AS CHAR),
                     CONCAT('客户', g), '2026-11', (g % 40000) / 100.0 + 12.34, g % 900 + 0.5,
                     TIMESTAMPADD(SECOND, g % 3600, '2026-11-28 08:00:00')
                 FROM (SELECT a.n + 10*b.n + 100*c.n + 1000*e.n + 10000*f.n + 100000*h.n + 1 AS g
                       FROM d a, d b, d c, d e, d f, d h) ids WHERE g <= {n}"
            )
        }
        Kind::Sqlite => format!(
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n})
             INSERT INTO bills SELECT 'A' || printf('%010d', g), CAST(13800000000 + g AS TEXT),
                 '客户' || g, '2026-11', printf('%.2f', (g % 40000) / 100.0 + 12.34),
                 g % 900 + 0.5, '2026-11-28 08:' || printf('%02d:%02d', (g % 3600) / 60, g % 60)
             FROM s"
        ),
    };
    db.exec(&sql);
}

async fn run(db: TestDb, n: usize) {
    let started = Instant::now();
    load(&db, n);
    let loaded = started.elapsed();
    let mut config = db.source_config();
    config.query_timeout = Duration::from_secs(300);
    let source = gridsms::marketing::source::open(&config).expect("source");
    let query = Query::parse(
        "SELECT account, phone, name, period, amount, kwh, posted_at FROM bills
         WHERE posted_at > :since ORDER BY posted_at, account",
    )
    .expect("query");
    let tz = chrono_tz::Asia::Shanghai;
    let before = vm_hwm_kib();
    let started = Instant::now();
    let mut stream = source.stream(&query, &[("since", Value::from("2026-11-27 00:00:00"))]);
    let (mut rows, mut fen_total, mut first_row) = (0usize, 0i64, None);
    while let Some(row) = stream.next().await {
        let row = row.expect("row");
        first_row.get_or_insert_with(|| started.elapsed());
        let account = row.text("account").ok().flatten();
        let phone = row.text("phone").ok().flatten();
        let fen = row.cents("amount").ok().flatten().unwrap_or(0);
        let at = row.instant("posted_at", &tz).ok().flatten();
        if account.is_some() && phone.is_some() && at.is_some() {
            rows += 1;
            fen_total += fen;
        }
    }
    let took = started.elapsed();
    let grown = vm_hwm_kib().saturating_sub(before);
    println!(
        "{:<8} {rows} rows (sum {}.{:02} yuan): load {:.1} s, first row {:.0} ms, \
         stream {:.2} s ({:.0} rows/s), peak RSS +{:.1} MiB (VmHWM {:.1} MiB)",
        db.kind().as_str(),
        fen_total / 100,
        fen_total % 100,
        loaded.as_secs_f64(),
        first_row.unwrap_or_default().as_secs_f64() * 1000.0,
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        grown as f64 / 1024.0,
        vm_hwm_kib() as f64 / 1024.0,
    );
}

fn main() {
    let n: usize = std::env::var("GRIDSMS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(263_000);
    // `cargo bench` passes --bench; `cargo test --benches` runs this with no flag: stay quick.
    let n = if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        1_000
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    println!("marketing sources: streaming {n} posted bills per engine");
    rt.block_on(run(TestDb::sqlite(dir.path()), n));
    if let Some(db) = TestDb::postgres() {
        rt.block_on(run(db, n));
    }
    if let Some(db) = TestDb::mysql() {
        rt.block_on(run(db, n));
    }
}
