//! Outbox benchmark; prints its figures (no pass/fail).
//!
//! `cargo bench --bench store` — set GRIDSMS_BENCH_N to change the queue size (default
//! 1,000,000). Measures: bulk enqueue through the store thread in 10,000-message transactions
//! (target ≥ 200,000 messages/s); the file size; claim latency with the whole queue waiting
//! (by priority, and with quiet hours holding back every bill); full send cycles per second
//! (claim, two segment writes, mark_sent); counts over the full table; and how long the first
//! start after the upgrade to schema 10 takes with that many messages.

use chrono::{DateTime, Duration, TimeZone, Utc};
use gridsms::message::Category;
use gridsms::phone::{E164, normalise};
use gridsms::store::{ClaimFilter, NewMessage, SegmentSubmit, SimRef, Store};
use std::time::Instant;

const CHUNK: usize = 10_000;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap()
}

fn number(i: usize) -> E164 {
    let prefixes = ["138", "139", "186", "133", "199", "150"];
    normalise(&format!(
        "{}{:08}",
        prefixes[i % prefixes.len()],
        i % 100_000_000
    ))
    .unwrap()
}

fn bill(i: usize) -> NewMessage {
    let mut m = NewMessage::new(
        number(i),
        format!(
            "【国网某供电公司】尊敬的客户，您户号{:010}本月电费{}.{:02}元，请于月底前缴纳。详询95598。",
            i,
            50 + i % 400,
            i % 100
        ),
        Category::Bill,
    );
    m.idempotency_key = Some(format!("bill:2026-11:{i:010}"));
    m.batch_id = Some("bills-2026-11".into());
    m.origin = Some("job:bills".into());
    m
}

/// CPU seconds used (user + system) by the process, or by its thread named `thread`, from
/// /proc; 0 if unavailable.
fn cpu_seconds(thread: Option<&str>) -> f64 {
    let stat_path = match thread {
        None => "/proc/self/stat".to_string(),
        Some(name) => {
            let found = std::fs::read_dir("/proc/self/task").ok().and_then(|d| {
                d.flatten().find(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
                })
            });
            match found {
                Some(t) => t.path().join("stat").display().to_string(),
                None => return 0.0,
            }
        }
    };
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let n: usize = std::env::var("GRIDSMS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return;
        }
    };
    if let Err(e) = rt.block_on(run(n)) {
        eprintln!("benchmark failed: {e}");
    }
}

/// What the dispatcher writes for one one-segment message: claim, submitting, submitted.
/// Returns how many messages it cycled (0 when nothing was due).
async fn send_cycle(
    store: &Store,
    sim: &SimRef,
    k: usize,
) -> Result<usize, gridsms::store::StoreError> {
    let claimed = store
        .claim_next(now(), ClaimFilter::default(), Some(sim.clone()))
        .await?;
    let n = claimed.len();
    for c in claimed {
        let id = c.message.id;
        store
            .mark_segment_submitting(
                SegmentSubmit {
                    message_id: id,
                    seq: 1,
                    total: 1,
                    concat_ref: None,
                    sim_iccid: sim.iccid.clone(),
                },
                now(),
            )
            .await?;
        store
            .mark_segment_submitted(id, 1, (k % 256) as u8, now())
            .await?;
    }
    Ok(n)
}

async fn run(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let store = Store::open(&path).await?;
    println!(
        "store bench: {n} messages, {} per transaction, file {}",
        CHUNK,
        path.display()
    );

    // Build the messages while the previous chunk commits, as a job reading rows would.
    let started = Instant::now();
    let cpu0 = cpu_seconds(None);
    let store_cpu0 = cpu_seconds(Some("gridsms-store"));
    let mut pending = None;
    for start in (0..n).step_by(CHUNK) {
        let chunk: Vec<NewMessage> = (start..(start + CHUNK).min(n)).map(bill).collect();
        if let Some(h) = pending.take() {
            let _: Vec<_> = h.await??;
        }
        let s = store.clone();
        pending = Some(tokio::spawn(
            async move { s.enqueue_bulk(chunk, now()).await },
        ));
    }
    if let Some(h) = pending.take() {
        let _: Vec<_> = h.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(None) - cpu0;
    let store_cpu = cpu_seconds(Some("gridsms-store")) - store_cpu0;
    println!(
        "bulk enqueue: {n} messages in {secs:.2} s wall = {:.0} messages/s (target >= 200000); \
         store thread CPU {store_cpu:.2} s = {:.0} messages per CPU-second; process CPU \
         {cpu:.2} s incl. building the messages; load average {}",
        n as f64 / secs,
        n as f64 / store_cpu.max(0.01),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let wal = path.with_extension("db-wal");
    let size = std::fs::metadata(&path)?.len() + std::fs::metadata(&wal).map_or(0, |m| m.len());
    println!(
        "database file + WAL: {:.1} MiB ({:.0} bytes per message)",
        size as f64 / 1048576.0,
        size as f64 / n as f64
    );

    // Duplicate resubmission of a whole chunk (a job re-run): all recognised.
    let t = Instant::now();
    let chunk: Vec<NewMessage> = (0..CHUNK.min(n)).map(bill).collect();
    let out = store.enqueue_bulk(chunk, now()).await?;
    println!(
        "re-enqueue of {} already-queued messages (duplicates): {:.1} ms",
        out.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    // A few urgent messages behind a queue of a million bills.
    let mut urgent = Vec::new();
    for i in 0..200 {
        urgent.push(NewMessage::new(number(i), "【停电通知】", Category::Outage));
    }
    store.enqueue_bulk(urgent, now()).await?;
    let sim = SimRef {
        modem: "bench".into(),
        iccid: "89860000000000000000".into(),
    };

    let night = ClaimFilter {
        limit: 1,
        categories: Some(vec![Category::Outage, Category::Reply]),
    };
    let t = Instant::now();
    let c = cpu_seconds(Some("gridsms-store"));
    let mut got = 0;
    for _ in 0..100 {
        got += store
            .claim_next(now(), night.clone(), Some(sim.clone()))
            .await?
            .len();
    }
    println!(
        "claim_next with {n} bills held back by quiet hours: {:.0} us per claim wall, {:.0} us \
         store-thread CPU ({got} claimed)",
        t.elapsed().as_secs_f64() * 1e6 / 100.0,
        (cpu_seconds(Some("gridsms-store")) - c) * 1e6 / 100.0
    );
    let t = Instant::now();
    let c = cpu_seconds(Some("gridsms-store"));
    for _ in 0..100 {
        store
            .claim_next(now(), ClaimFilter::default(), Some(sim.clone()))
            .await?;
    }
    println!(
        "claim_next by priority over {n} queued: {:.0} us per claim wall, {:.0} us store-thread CPU",
        t.elapsed().as_secs_f64() * 1e6 / 100.0,
        (cpu_seconds(Some("gridsms-store")) - c) * 1e6 / 100.0
    );
    let early = now() - Duration::hours(1);
    let t = Instant::now();
    let c = cpu_seconds(Some("gridsms-store"));
    for _ in 0..100 {
        store
            .claim_next(early, ClaimFilter::default(), None)
            .await?;
    }
    println!(
        "claim_next when none of {n} is due yet: {:.0} us per (empty) claim wall, {:.0} us \
         store-thread CPU",
        t.elapsed().as_secs_f64() * 1e6 / 100.0,
        (cpu_seconds(Some("gridsms-store")) - c) * 1e6 / 100.0
    );

    // Full send cycles: what the dispatcher writes per one-segment message.
    let cycles = 20_000.min(n);
    let t = Instant::now();
    let c = cpu_seconds(Some("gridsms-store"));
    for k in 0..cycles {
        send_cycle(&store, &sim, k).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "send cycle (claim + submitting + submitted), one at a time: {:.0} messages/s ({:.0} us \
         each wall, {:.0} us store-thread CPU)",
        cycles as f64 / secs,
        secs * 1e6 / cycles as f64,
        (cpu_seconds(Some("gridsms-store")) - c) * 1e6 / cycles as f64
    );
    // The same cycle from 32 concurrent tasks, like 32 modem actors sharing the store.
    let per_task = (cycles / 32).max(1);
    let t = Instant::now();
    let c = cpu_seconds(Some("gridsms-store"));
    let mut tasks = Vec::new();
    for m in 0..32 {
        let store = store.clone();
        let sim = SimRef {
            modem: format!("modem-{m}"),
            iccid: format!("8986{m:016}"),
        };
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            for k in 0..per_task {
                done += send_cycle(&store, &sim, k).await?;
            }
            Ok::<usize, gridsms::store::StoreError>(done)
        }));
    }
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "send cycle from 32 concurrent tasks: {:.0} messages/s ({:.0} us store-thread CPU each)",
        done as f64 / secs,
        (cpu_seconds(Some("gridsms-store")) - c) * 1e6 / done.max(1) as f64
    );

    let t = Instant::now();
    let mut claimed = 0;
    for _ in 0..100 {
        claimed += store
            .claim_next(
                now(),
                ClaimFilter {
                    limit: 100,
                    categories: None,
                },
                None,
            )
            .await?
            .len();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "claim_next in batches of 100: {:.0} messages/s",
        claimed as f64 / secs
    );

    let t = Instant::now();
    let counts = store.counts().await?;
    println!(
        "counts by state and category over {} messages: {:.1} ms",
        counts.total(),
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(store);
    upgrade_to_current(n).await
}

/// The first start after an upgrade that rebuilds `messages` (schema version 10) copies the
/// whole table inside the start-up migration; operators need to know how long that holds the
/// start (systemd's TimeoutStartSec).
async fn upgrade_to_current(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    use gridsms::store::migrations::{CURRENT_VERSION, apply_up_to};
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL")?;
        apply_up_to(&mut conn, CURRENT_VERSION - 1)?;
        // Half keyed like bill notices, one segment each, nine in ten finished.
        conn.execute(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1)
             INSERT INTO messages (id, recipient, text, category, priority, idempotency_key,
                 content_hash, state, created_at, updated_at, next_attempt_at, account)
             SELECT i, '+86139' || printf('%08d', i),
                 '【国网某供电公司】尊敬的客户，您本月电费已出账，请于月底前缴纳。详询95598。',
                 'bill', 3, CASE WHEN i % 2 = 0 THEN 'bill:2026-11:' || i END, i,
                 CASE WHEN i % 10 = 0 THEN 'queued' ELSE 'delivered' END, i, i, i,
                 printf('%010d', i)
             FROM c",
            [n as i64],
        )?;
        conn.execute(
            "INSERT INTO segments (message_id, seq, total, state, tp_mr, sim_iccid)
             SELECT id, 1, 1, 'delivered', id % 256, '89860000000000000000' FROM messages",
            [],
        )?;
    }
    let t = Instant::now();
    let store = Store::open(&path).await?;
    println!(
        "upgrade from schema {} to {CURRENT_VERSION} (rebuilds messages) with {n} messages and \
         {n} segments: {:.1} s at first start",
        CURRENT_VERSION - 1,
        t.elapsed().as_secs_f64()
    );
    drop(store);
    Ok(())
}
