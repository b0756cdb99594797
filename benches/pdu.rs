//! PDU codec throughput on one core for a 200-character Chinese bill notice (UCS2, 3
//! segments). Prints decode segments/s and encode messages/s; targets are ≥ 1,000,000
//! segments/s decode and ≥ 300,000 messages/s encode. Run: `cargo bench --bench pdu`.

use gridsms::pdu::{self, SubmitOptions};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Exactly 200 characters.
fn bill_notice() -> String {
    let base = "【国网供电】尊敬的客户：您户号0123456789（城关镇幸福路88号3单元502室）2026年11月电费已出账，本月用电量236千瓦时，应交电费128.50元，账户余额12.30元，请于12月15日前缴清，逾期将产生违约金。可通过网上国网App、支付宝、微信或营业厅缴费。如有疑问请致电95598。回复TD退订。";
    let mut s: String = base.chars().take(200).collect();
    while s.chars().count() < 200 {
        s.push('。');
    }
    s
}

/// CPU time this thread has run, from Linux's schedstat (nanoseconds), so a busy shared
/// machine does not count other processes' time against us.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Calls per wall-clock second and per CPU second (one core), running `f` in batches until
/// `budget` of wall time has passed.
fn rate(budget: Duration, mut f: impl FnMut()) -> (f64, Option<f64>) {
    for _ in 0..1000 {
        f(); // warm-up
    }
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            f();
        }
        calls += 1000;
    }
    let wall = calls as f64 / start.elapsed().as_secs_f64();
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => Some(calls as f64 / ((b - a) as f64 / 1e9)),
        _ => None,
    };
    (wall, cpu)
}

fn show(what: &str, unit: &str, target: &str, (wall, cpu): (f64, Option<f64>)) {
    let cpu = cpu.map_or("n/a".to_string(), |c| format!("{c:.0}"));
    println!(
        "  {what:<14}: {cpu:>10} {unit}/s per CPU-second, {wall:>10.0} {unit}/s wall clock  (target {target})"
    );
}

fn main() {
    let text = bill_notice();
    let opts = SubmitOptions {
        smsc: None,
        status_report: true,
        validity_minutes: Some(1440),
        message_ref: 0,
        concat_ref: 7,
    };
    let segments = match pdu::encode_submit("+8613800138000", &text, &opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("encode failed: {e}");
            std::process::exit(1);
        }
    };
    let raws: Vec<Vec<u8>> = segments.iter().map(|s| s.pdu.clone()).collect();
    let budget = Duration::from_secs(2);

    let encode = rate(budget, || {
        let r = pdu::encode_submit(
            black_box("+8613800138000"),
            black_box(&text),
            black_box(&opts),
        );
        black_box(r.map(|v| v.len()).unwrap_or(0));
    });
    let mut i = 0;
    let decode = rate(budget, || {
        let r = pdu::decode(black_box(&raws[i % raws.len()]));
        i += 1;
        black_box(r.is_ok());
    });
    let hexes: Vec<String> = segments.iter().map(|s| s.hex()).collect();
    let mut j = 0;
    let decode_hex = rate(budget, || {
        let r = pdu::decode_hex(black_box(&hexes[j % hexes.len()]));
        j += 1;
        black_box(r.is_ok());
    });

    println!(
        "pdu bench: 200-character Chinese bill notice, UCS2, {} segments, one thread",
        segments.len()
    );
    show("encode_submit", "messages", ">= 300,000", encode);
    show("decode", "segments", ">= 1,000,000", decode);
    show(
        "decode_hex",
        "segments",
        "none; hex text in, as +CMGL prints it",
        decode_hex,
    );
}
