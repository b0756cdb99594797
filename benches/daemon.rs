//! Daemon benchmarks (`cargo bench --bench daemon`, release). Each prints its figure and the
//! target from issue 4; none asserts (speed belongs here, not in tests).
//!
//! - enqueue: 1,000,000 messages through the store in bulk (target ≥ 200,000 msg/s);
//! - enqueue_keyed: the same with an idempotency key on each, as bill notices have (no
//!   target; printed for comparison);
//! - pool32: 32 simulated modems at 20 ms per send (target ≥ 95 % of 1,600 segments/s), and
//!   the daemon's CPU per segment (utime+stime of the daemon process from /proc);
//! - slow3: 3 simulated modems answering +CMGS 300 ms after Ctrl-Z (target ≥ 9 segments/s);
//! - latency: POST → the simulator's +CMGS on an idle pool (target ≤ 100 ms);
//! - rss: peak RSS (VmHWM) of the daemon with 1,000,000 queued and 32 modems sending
//!   (target ≤ 64 MiB).
//!
//! The daemon runs as the built binary (`gridsms run`), the simulators in this process, so
//! CPU and memory figures are the daemon's alone. Pass bench names to run a subset:
//! `cargo bench --bench daemon -- pool32 latency`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use gridsms::message::Category;
use gridsms::phone;
use gridsms::store::{NewMessage, Store};
use serde_json::json;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const TEXT: &str = "【国网供电】您本月电费已出账，请及时缴纳。";

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if run("latency") {
            latency().await;
        }
        if run("slow3") {
            slow3().await;
        }
        if run("pool32") {
            pool32().await;
        }
        if run("enqueue") || run("rss") {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = dir.path().join("million.db");
            enqueue(&db, Keys::None).await;
            if run("rss") {
                rss(&db).await;
            }
        }
        if run("enqueue_keyed") {
            let dir = tempfile::tempdir().expect("tempdir");
            enqueue(&dir.path().join("keyed.db"), Keys::Bill).await;
        }
    });
}

fn numbers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("139{:08}", i % 100_000_000))
        .collect()
}

/// Whether enqueued messages carry idempotency keys.
#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// None, as staff sends and broadcasts: the figure issue 4 sets a target for.
    None,
    /// One per bill notice, as the marketing jobs make them: printed for comparison.
    Bill,
}

async fn enqueue(db: &Path, keys: Keys) {
    const N: usize = 1_000_000;
    const CHUNK: usize = 100_000;
    let store = Store::open(db).await.expect("store");
    let now = chrono::Utc::now();
    let mut elapsed = Duration::ZERO;
    for c in 0..N / CHUNK {
        let batch: Vec<NewMessage> = (0..CHUNK)
            .map(|i| {
                let n = format!("139{:08}", c * CHUNK + i);
                let to = phone::normalise(&n).expect("number");
                let mut m = NewMessage::new(to, TEXT, Category::Bill);
                if keys == Keys::Bill {
                    m.idempotency_key = Some(format!("bill:{:010}:2026-11", c * CHUNK + i));
                }
                m
            })
            .collect();
        let t = Instant::now();
        store.enqueue_bulk(batch, now).await.expect("enqueue");
        elapsed += t.elapsed();
    }
    let rate = N as f64 / elapsed.as_secs_f64();
    match keys {
        Keys::None => println!(
            "enqueue: {N} messages in {:.2} s (bulk of {CHUNK} per transaction) = {:.0} msg/s (target ≥ 200000)",
            elapsed.as_secs_f64(),
            rate
        ),
        Keys::Bill => println!(
            "enqueue_keyed: {N} bill notices with idempotency keys in {:.2} s (bulk of {CHUNK} per transaction) = {:.0} msg/s (no target; for comparison)",
            elapsed.as_secs_f64(),
            rate
        ),
    }
}

/// Simulators, config and the daemon binary on a fixed port.
struct Bench {
    env: Env,
    child: Child,
    api: Api,
}

async fn start_pool(n: usize, send_delay: Duration, storage: Option<&Path>) -> Bench {
    let modems = (0..n)
        .map(|i| {
            let mnc = if i % 2 == 0 { Mnc::Mobile } else { Mnc::Unicom };
            modem(&format!("m{i:02}"), mnc)
                .send_delay(send_delay)
                .extra("hourly_limit = 1000000\ndaily_limit = 1000000\nmonthly_limit = 10000000")
        })
        .collect();
    let mut env = Env::new(
        modems,
        "quiet_hours_categories = []\nstatus_reports = false\n",
    )
    .await;
    let port = free_port();
    env.listen = format!("127.0.0.1:{port}");
    let mut text = env.config_text();
    if let Some(db) = storage {
        text = text.replacen(
            &format!("{:?}", env.storage_path().display().to_string()),
            &format!("{:?}", db.display().to_string()),
            1,
        );
    }
    std::fs::write(&env.config_path, text).expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gridsms"))
        .arg("run")
        .arg("--config")
        .arg(&env.config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn gridsms");
    let api = Api::new(format!("127.0.0.1:{port}"), ADMIN_TOKEN);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let a = api.clone();
        let ready = tokio::task::spawn_blocking(move || a.try_get_blocking("/api/v1/modems"))
            .await
            .expect("join")
            .and_then(|(_, m)| {
                m.as_array().map(|a| {
                    a.iter()
                        .filter(|m| m["state"] == json!("ready") && m["imsi"].is_string())
                        .count()
                })
            })
            .unwrap_or(0);
        if ready == n {
            break;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("only {ready} of {n} modems ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Bench { env, child, api }
}

impl Bench {
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.env.shutdown_sims().await;
    }

    /// utime+stime of the daemon, in seconds.
    fn cpu(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // fields after the ")" of comm: state is field 3; utime 14, stime 15
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        ticks / clk_tck()
    }

    fn vm_hwm_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    async fn post_all(&self, n: usize) {
        for chunk in numbers(n).chunks(1000) {
            self.api.send(json!({"to": chunk, "text": TEXT})).await;
        }
    }
}

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime+stime of this bench process (the simulated modems and the polling), in seconds.
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / clk_tck()
}

/// What a steady-state window of a run measured.
struct Window {
    /// Segments per second.
    rate: f64,
    /// Daemon CPU seconds per segment.
    daemon_cpu: f64,
    /// This process's (simulators and polling) CPU seconds per segment.
    sims_cpu: f64,
    /// Mean per segment at the simulators: Ctrl-Z → answer, answer → next AT+CMGS (the
    /// daemon's turnaround), prompt → Ctrl-Z (the daemon typing the PDU).
    network: Duration,
    turnaround: Duration,
    typing: Duration,
}

impl Window {
    fn breakdown(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "per segment at the modems: network {:.2} ms, daemon turnaround {:.2} ms, PDU typing {:.2} ms",
            ms(self.network),
            ms(self.turnaround),
            ms(self.typing)
        )
    }
}

/// The steady part of a run of `n` messages (from 10 % to 90 % sent).
async fn throughput(b: &Bench, n: usize) -> Window {
    b.post_all(n).await;
    let lo = n / 10;
    let hi = n * 9 / 10;
    let deadline = Instant::now() + Duration::from_secs(600);
    while b.env.sent_total() < lo {
        assert!(Instant::now() < deadline, "stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let snapshot = || {
        (
            Instant::now(),
            b.env.sent_total(),
            b.cpu(),
            own_cpu(),
            b.env.send_timing(),
        )
    };
    let (t0, s0, c0, o0, m0) = snapshot();
    while b.env.sent_total() < hi {
        assert!(Instant::now() < deadline, "stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (t1, s1, c1, o1, m1) = snapshot();
    let segs = (s1 - s0) as f64;
    let mean = |total: Duration, count: u64| total / (count.max(1) as u32);
    let m = m1 - m0;
    Window {
        rate: segs / (t1 - t0).as_secs_f64(),
        daemon_cpu: (c1 - c0) / segs,
        sims_cpu: (o1 - o0) / segs,
        network: mean(m.network, m.sends),
        turnaround: mean(m.turnaround, m.turnarounds),
        typing: mean(m.typing, m.sends),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn pool32() {
    let b = start_pool(32, Duration::from_millis(20), None).await;
    let w = throughput(&b, 24_000).await;
    println!(
        "pool32: 32 modems × 20 ms: {:.0} segments/s = {:.1} % of 1600 (target ≥ 95 %); \
         daemon CPU {:.0} µs per segment; simulators + bench CPU {:.0} µs per segment \
         (same 2 cores); {}; load average {}",
        w.rate,
        w.rate / 1600.0 * 100.0,
        w.daemon_cpu * 1e6,
        w.sims_cpu * 1e6,
        w.breakdown(),
        load_average()
    );
    b.stop().await;
}

async fn slow3() {
    let b = start_pool(3, Duration::from_millis(300), None).await;
    let w = throughput(&b, 200).await;
    println!(
        "slow3: 3 modems, +CMGS 300 ms after Ctrl-Z: {:.2} segments/s (target ≥ 9; gammu-smsd 2.9, smstools3 4.6); {}",
        w.rate,
        w.breakdown()
    );
    b.stop().await;
}

async fn latency() {
    let b = start_pool(4, Duration::ZERO, None).await;
    let mut samples = Vec::new();
    for i in 0..30 {
        // idle pool: nothing queued, every modem waiting
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = b.env.sent_total();
        let t = Instant::now();
        let to = format!("1390000{i:04}");
        b.api.send(json!({"to": to, "text": TEXT})).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.env.sent_total() <= before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "latency: POST → +CMGS at the simulator on an idle pool (send delay 0): median {:.1} ms, \
         p90 {:.1} ms, max {:.1} ms over {} (target ≤ 100 ms)",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
    b.stop().await;
}

async fn rss(db: &Path) {
    let b = start_pool(32, Duration::from_millis(20), Some(db)).await;
    // let it send a while with the million queued
    let t = Instant::now();
    let s0 = b.env.sent_total();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let sent = b.env.sent_total() - s0;
    let q = b.api.queue().await;
    let hwm = b.vm_hwm_kib();
    println!(
        "rss: 1,000,000 queued, 32 modems sending ({sent} segments in {:.0} s, {} pending): \
         daemon VmHWM {:.1} MiB (target ≤ 64 MiB)",
        t.elapsed().as_secs_f64(),
        q["pending"],
        hwm as f64 / 1024.0
    );
    b.stop().await;
}
