//! Poll and enqueue a whole bureau's bills: 263,000 posted bills (one per account, the size of
//! the original deployment) read by the bills job from the marketing database and committed
//! into a fresh outbox, through the real runner (`marketing::jobs::spawn` + a triggered run).
//! Prints elapsed time, rows/s and peak RSS (VmHWM, reset after the fixture is loaded).
//! Target: ≤ 10 s and ≤ 64 MiB.
//!
//! `GRIDSMS_BENCH_ENGINE=sqlite|postgres|mysql` (default sqlite); postgres/mysql read
//! GRIDSMS_TEST_POSTGRES_URL / GRIDSMS_TEST_MYSQL_URL. `GRIDSMS_BENCH_BILLS=N` changes the size.

// mkdb.rs allows its own dead code.
#[path = "../tests/common/mkdb.rs"]
mod mkdb;

use gridsms::clock::{Clock, ManualClock};
use gridsms::daemon::state::Shared;
use gridsms::store::Store;
use mkdb::TestDb;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DEFAULT_BILLS: usize = 263_000;

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn vm_hwm_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) : utime is the 14th, stime 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn row(k: usize) -> String {
    format!(
        "('{:010}', '138{:08}', '客户{}', '2026年2月', {}.5, {}.{:02}, '2026-03-25', \
         '2026-03-10 08:{:02}:{:02}')",
        3_301_000_000u64 + k as u64,
        k,
        k % 1000,
        100 + k % 400,
        50 + k % 300,
        k % 100,
        (k / 60) % 60,
        k % 60
    )
}

/// Multi-row INSERTs of 1,000 rows (SQLite: all in one transaction on one connection), so
/// loading stays fast and small.
fn load(db: &TestDb, n: usize) {
    db.exec_ddl(
        "CREATE TABLE bill (acct {text}, tel {text}, cust {text}, ym {text}, kwh {num}, \
         fee {money}, due {date}, posted {ts})",
    );
    let sqlite = (db.kind() == mkdb::Kind::Sqlite).then(|| {
        let path = db.url().trim_start_matches("sqlite://").to_owned();
        let conn = rusqlite::Connection::open(path).expect("fixture connection");
        conn.execute_batch("BEGIN").expect("begin");
        conn
    });
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let rows: Vec<String> = (i..end).map(row).collect();
        let sql = format!("INSERT INTO bill VALUES {}", rows.join(","));
        match &sqlite {
            Some(conn) => conn.execute_batch(&sql).expect("insert"),
            None => db.exec(&sql),
        }
        i = end;
    }
    if let Some(conn) = sqlite {
        conn.execute_batch("COMMIT").expect("commit");
    }
}

fn main() {
    let engine = std::env::var("GRIDSMS_BENCH_ENGINE").unwrap_or_else(|_| "sqlite".into());
    let n: usize = std::env::var("GRIDSMS_BENCH_BILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_BILLS);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = match engine.as_str() {
        "sqlite" => Some(TestDb::sqlite(dir.path())),
        "postgres" => TestDb::postgres(),
        "mysql" => TestDb::mysql(),
        other => panic!("GRIDSMS_BENCH_ENGINE={other}: expected sqlite, postgres or mysql"),
    };
    let Some(db) = db else {
        println!("marketing/poll_enqueue_bills [{engine}]: SKIPPED (no database URL)");
        return;
    };
    let t = Instant::now();
    load(&db, n);
    eprintln!("fixture: {n} bills loaded in {:.1?}", t.elapsed());

    let config_path = dir.path().join("gridsms.toml");
    let text = format!(
        "[storage]\npath = \"outbox.db\"\n\n[marketing]\nurl = {:?}\nquery_timeout = \"60s\"\n\n\
         [marketing.queries]\nbills = '''SELECT acct AS account, tel AS phone, cust AS name, \
         ym AS period, kwh, fee AS amount, due AS due_date, posted AS posted_at FROM bill \
         WHERE posted >= :since'''\n\n[marketing.bills]\nenabled = false\nlook_back = \"1d\"\n",
        db.url()
    );
    std::fs::write(&config_path, &text).expect("config");
    let config = gridsms::config::load(&config_path)
        .expect("config loads")
        .config;
    let outbox = config.storage.path.clone();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (run, elapsed, cpu) = rt.block_on(async move {
        let store = Store::open(&outbox).await.expect("outbox");
        let clock = ManualClock::new(
            chrono::DateTime::parse_from_rfc3339("2026-03-10T10:00:00+08:00")
                .expect("time")
                .with_timezone(&chrono::Utc),
        );
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let shared = Shared::new(store, clock, Arc::new(config));
        let stop = CancellationToken::new();
        let task = gridsms::marketing::jobs::spawn(shared.clone(), stop.clone());
        let handle = shared.jobs.get().expect("runner handle").clone();
        // Peak RSS from here on: the fixture's own memory is not ours.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        eprintln!(
            "before the run: VmRSS {:?} KiB, VmHWM {:?} KiB",
            status_kib("VmRSS:"),
            vm_hwm_kib()
        );
        let cpu = cpu_seconds();
        let t = Instant::now();
        let done = handle.trigger("bills").expect("trigger");
        let run = tokio::time::timeout(Duration::from_secs(600), done)
            .await
            .expect("run finished in time")
            .expect("runner answered")
            .expect("run recorded");
        let elapsed = t.elapsed();
        let cpu = cpu_seconds() - cpu;
        eprintln!("after the run: VmRSS {:?} KiB", status_kib("VmRSS:"));
        stop.cancel();
        let _ = task.await;
        (run, elapsed, cpu)
    });
    assert_eq!(run.error, None, "{run:?}");
    assert_eq!(run.stats.queued as usize, n, "{run:?}");
    let hwm = vm_hwm_kib().unwrap_or(0);
    println!(
        "marketing/poll_enqueue_bills [{engine}]: {n} bills read and queued in {:.2} s \
         ({:.0} rows/s; {:.2} s CPU); peak RSS {:.1} MiB (targets: ≤ 10 s, ≤ 64 MiB)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        cpu,
        hwm as f64 / 1024.0
    );
}
