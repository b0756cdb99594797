//! Modem driver throughput and overhead, against `gridsms sim` in its own process (so the
//! CPU time measured here is the driver's alone), over a real pseudo-terminal.
//!
//! Prints:
//! - segments/s through one actor against a zero-latency simulated modem, single-segment
//!   messages one after another (as the dispatcher feeds them) and 4-segment messages;
//! - CPU time per segment spent in this process (actor, AT engine, tokio, serial I/O);
//! - the per-segment interval against a modem answering +CMGS 300 ms after Ctrl-Z (target
//!   ≤ 330 ms; gammu-smsd ≈ 905 ms, smstools3 ≈ 645 ms, Kannel ≈ 2.5 s on that setup).
//!
//! Run with `cargo bench --bench modem`. Everything runs on one current-thread runtime, so
//! the main thread's scheduler statistics are the process's CPU time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridsms::modem::{self, ModemConfig, ModemEventKind, ModemHandle};
use gridsms::pdu::{self, EncodedSegment, SubmitOptions};
use tokio::sync::mpsc;

struct Sim {
    child: Child,
    link: PathBuf,
}

impl Sim {
    fn start(dir: &Path, name: &str, send_delay_ms: u64) -> Sim {
        let link = dir.join(name);
        let child = Command::new(env!("CARGO_BIN_EXE_gridsms"))
            .args(["sim", "--profile", "quectel-ec25", "--send-delay-ms"])
            .arg(send_delay_ms.to_string())
            .arg("--link")
            .arg(&link)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gridsms sim starts");
        let t0 = Instant::now();
        while !link.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "simulator link did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sim { child, link }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of the calling thread (ns), from the scheduler's own accounting.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn ready(link: &Path) -> ModemHandle {
    let mut cfg = ModemConfig::new("bench", link.to_string_lossy());
    cfg.health_interval = Duration::from_secs(3600);
    cfg.sweep_interval = Duration::from_secs(3600);
    let (tx, mut rx) = mpsc::channel(1024);
    let handle = modem::spawn(cfg, tx);
    loop {
        match rx.recv().await.map(|e| e.kind) {
            Some(ModemEventKind::Ready(_)) => break,
            Some(ModemEventKind::Down { reason }) => panic!("modem down: {reason}"),
            Some(_) => {}
            None => panic!("actor ended"),
        }
    }
    // Keep draining events so the actor never waits on us.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    handle
}

fn message(text: &str) -> Vec<EncodedSegment> {
    pdu::encode_submit("13800138000", text, &SubmitOptions::default()).expect("encodes")
}

struct Figure {
    segments: usize,
    wall: Duration,
    cpu_ns: u64,
}

async fn run(handle: &ModemHandle, messages: &[Vec<EncodedSegment>]) -> Figure {
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let mut segments = 0;
    for m in messages {
        let mrs = handle.send(m.clone()).await.expect("accepted");
        segments += mrs.len();
    }
    Figure {
        segments,
        wall: t0.elapsed(),
        cpu_ns: thread_cpu_ns().saturating_sub(cpu0),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let single = message("您本月电费为128.50元，请于25日前缴纳。");
    let long_text = "【国网供电】尊敬的客户：因10kV城东线检修停电。".repeat(8);
    let multi = message(
        &long_text[..long_text
            .char_indices()
            .nth(250)
            .map_or(long_text.len(), |(i, _)| i)],
    );
    assert_eq!(single.len(), 1);
    println!(
        "modem driver benchmark (gridsms sim --profile quectel-ec25 on a pty, separate process)"
    );

    runtime.block_on(async {
        let sim = Sim::start(dir.path(), "zero", 0);
        let handle = ready(&sim.link).await;
        let _ = run(&handle, &vec![single.clone(); 20]).await;

        let f = run(&handle, &vec![single.clone(); 500]).await;
        println!(
            "zero-latency, 1-segment messages: {} segments in {:.2} s = {:.0} segments/s; driver CPU {:.0} us/segment",
            f.segments,
            f.wall.as_secs_f64(),
            f.segments as f64 / f.wall.as_secs_f64(),
            f.cpu_ns as f64 / 1e3 / f.segments as f64
        );
        let f = run(&handle, &vec![multi.clone(); 100]).await;
        println!(
            "zero-latency, {}-segment messages: {} segments in {:.2} s = {:.0} segments/s; driver CPU {:.0} us/segment",
            multi.len(),
            f.segments,
            f.wall.as_secs_f64(),
            f.segments as f64 / f.wall.as_secs_f64(),
            f.cpu_ns as f64 / 1e3 / f.segments as f64
        );
        handle.shutdown().await;
        drop(sim);

        let sim = Sim::start(dir.path(), "slow", 300);
        let handle = ready(&sim.link).await;
        let _ = run(&handle, std::slice::from_ref(&single)).await;
        let f = run(&handle, &vec![single.clone(); 10]).await;
        println!(
            "+CMGS after 300 ms, 1-segment messages back to back: {:.1} ms per segment (target <= 330; gammu-smsd ~905)",
            f.wall.as_secs_f64() * 1e3 / f.segments as f64
        );
        let f = run(&handle, &vec![multi.clone(); 3]).await;
        println!(
            "+CMGS after 300 ms, {}-segment messages: {:.1} ms per segment",
            multi.len(),
            f.wall.as_secs_f64() * 1e3 / f.segments as f64
        );
        handle.shutdown().await;
        drop(sim);
    });
}
