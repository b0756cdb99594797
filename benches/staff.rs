//! Staff-side benchmark; prints its figures (no pass/fail).
//!
//! `cargo bench --bench staff` — GRIDSMS_BENCH_N sets the number of messages (default
//! 200,000, spread over 30 days, 4 stations, 3 SIMs, every state). Measures: the delivery
//! report over the whole month (on its own read-only connection, as the API runs it), the
//! failed-number report, and audit
//! entries written one per store call (what the API does per request).

use chrono::{DateTime, Duration, TimeZone, Utc};
use gridsms::message::Category;
use gridsms::phone::normalise;
use gridsms::reports::{Period, query};
use gridsms::store::audit::{self, AuditAction, AuditEntry};
use gridsms::store::{NewMessage, Store, outbox};
use std::time::Instant;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("GRIDSMS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("bench.db")).await.unwrap();
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let chunk = chunk.to_vec();
        store
            .call(move |c| {
                let msgs: Vec<NewMessage> = chunk
                    .iter()
                    .map(|&i| {
                        let mut m = NewMessage::new(
                            normalise(&format!("138{:08}", i % 50_000)).unwrap(),
                            "您本月电费为128.50元，请于25日前缴纳。",
                            Category::Bill,
                        );
                        m.account = Some(format!("{:010}", i % 60_000));
                        m.station = Some(format!("3301120{}", i % 4));
                        m
                    })
                    .collect();
                let at = start() + Duration::seconds((chunk[0] as i64) * 2_592_000 / n as i64);
                outbox::enqueue_bulk(c, &msgs, at)?;
                // Give the rows fates and SIMs as a month of dispatching would.
                c.execute_batch(
                    "UPDATE messages SET state = CASE id % 10 WHEN 0 THEN 'failed'
                         WHEN 1 THEN 'expired' WHEN 2 THEN 'sent' ELSE 'delivered' END,
                         modem = 'm' || (id % 3), sim_iccid = '8986000' || (id % 3),
                         last_error = CASE id % 10 WHEN 0 THEN 'CMS 28' END
                     WHERE state = 'queued'",
                )?;
                Ok(())
            })
            .await
            .unwrap();
    }
    println!("seeded {n} messages in {:.1} s", t.elapsed().as_secs_f64());
    let period = Period {
        from: start(),
        to: start() + Duration::days(31),
    };
    // As the API runs them: on a read-only connection of their own, off the store thread.
    let reader = query::open_reader(&dir.path().join("bench.db"), query::REPORT_TIMEOUT).unwrap();
    let t = Instant::now();
    let agg = query::delivery(&reader, period, chrono_tz::Asia::Shanghai, &[]).unwrap();
    let report = agg.finish(period, |_| Some(500));
    let took = t.elapsed();
    println!(
        "delivery report over {n} messages: {:.0} ms ({:.2} µs/message), {} rows, total {} accepted",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / n as f64,
        report.rows.len(),
        report.totals.counts.accepted
    );
    let t = Instant::now();
    let stations = vec!["33011201".to_owned()];
    let agg = query::delivery(&reader, period, chrono_tz::Asia::Shanghai, &stations).unwrap();
    let rows = agg.finish(period, |_| Some(500)).rows.len();
    println!(
        "delivery report for one station: {:.0} ms, {rows} rows",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let failed = query::failed_numbers(&reader, period, 3, &[]).unwrap();
    println!(
        "failed-number report: {:.0} ms, {} numbers",
        t.elapsed().as_secs_f64() * 1e3,
        failed.len()
    );
    let t = Instant::now();
    let k = 2_000;
    for i in 0..k {
        let e = AuditEntry::new(start(), "bench", AuditAction::Send).target(format!("{i}"));
        store.call(move |c| audit::record(c, &e)).await.unwrap();
    }
    println!(
        "audit entries, one store call each: {:.0}/s",
        k as f64 / t.elapsed().as_secs_f64()
    );
}
