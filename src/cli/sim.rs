//! `gridsms sim`: run one simulated modem on a pty with a symlink at `--link`, until SIGINT or
//! SIGTERM. Prints one JSON line with its device when it is up, then one JSON line per SMS
//! segment it accepts; logs (stderr, `RUST_LOG` to change) show every command it receives.
//!
//! ```text
//! gridsms sim --link /tmp/modem-1 --profile sim800 --fault cms:500:2 --inbox-file inbox.txt
//! gammu -c rc identify        # rc: [gammu] device = /tmp/modem-1, connection = at
//! minicom -D /tmp/modem-1     # AT, AT+CMGF=1, AT+CMGL="ALL", ...
//! ```

use anyhow::Context;
use clap::Args;
use gridsms::sim::{self, Fault, Profile, SimOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Path of the symlink to create for the pty's device (a stale simulator link there is
    /// replaced; anything else is left alone and the command fails).
    #[arg(long)]
    pub link: PathBuf,
    /// Modem to imitate: quectel-ec25, sim800 or huawei-e173.
    #[arg(long, default_value = "quectel-ec25")]
    pub profile: Profile,
    /// Milliseconds between the PDU's Ctrl-Z and the +CMGS answer.
    #[arg(long, default_value_t = 50)]
    pub send_delay_ms: u64,
    /// Milliseconds between a +CMGS and its status report (when one was requested).
    #[arg(long, default_value_t = 100)]
    pub report_delay_ms: u64,
    /// Fault at start, repeatable: cms:CODE[:COUNT], noreg:DUR, silent:DUR, garbage:BYTES,
    /// unplug:DUR, storage-full, slow-prompt:DUR.
    #[arg(long = "fault")]
    pub faults: Vec<Fault>,
    /// SIM PIN the card asks for (none by default).
    #[arg(long)]
    pub pin: Option<String>,
    /// Inbound SMS to deliver at start: one per line, "SENDER TEXT" (blank lines and lines
    /// starting with # skipped).
    #[arg(long)]
    pub inbox_file: Option<PathBuf>,
}

pub fn run(args: SimArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,gridsms::sim=debug")),
        )
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gridsms sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridsms sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_inbox(path: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (from, body) = line
            .split_once(char::is_whitespace)
            .with_context(|| format!("{}:{}: expected \"SENDER TEXT\"", path.display(), n + 1))?;
        out.push((from.to_string(), body.trim_start().to_string()));
    }
    Ok(out)
}

async fn serve(args: SimArgs) -> anyhow::Result<()> {
    let inbox = match &args.inbox_file {
        Some(path) => read_inbox(path)?,
        None => Vec::new(),
    };
    let mut options = SimOptions::new(args.profile);
    options.send_delay = Duration::from_millis(args.send_delay_ms);
    options.report_delay = Duration::from_millis(args.report_delay_ms);
    options.faults = args.faults;
    options.pin = args.pin;
    let handle = sim::spawn_linked(options, &args.link)
        .await
        .with_context(|| format!("starting a simulated {} modem", args.profile))?;
    println!(
        "{}",
        serde_json::json!({
            "link": args.link,
            "pty": handle.pty_path(),
            "profile": args.profile.to_string(),
        })
    );
    for (from, text) in inbox {
        handle.inject_sms(&from, &text);
    }
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut printed = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {}
        }
        let (fresh, next) = handle.sent_since(printed);
        printed = next;
        for s in fresh {
            println!(
                "{}",
                serde_json::json!({
                    "sent": {
                        "to": s.to,
                        "text": s.text,
                        "mr": s.mr,
                        "status_report": s.status_report_requested,
                        "concat": s.concat.map(|c| serde_json::json!({"ref": c.reference, "total": c.total, "seq": c.seq})),
                        "pdu": s.pdu_hex,
                    }
                })
            );
        }
    }
    handle.shutdown().await;
    Ok(())
}
