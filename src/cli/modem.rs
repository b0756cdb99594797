//! `gridsms modem info|send|listen`: check one modem by hand before it joins the pool.
//!
//! Each runs the same modem actor as the daemon on the given device, waits for init, does its
//! one job and shuts the actor down. Output is JSON on stdout (the stable contract in the
//! modem-driver issue); diagnostics go to stderr.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use tokio::sync::mpsc;

use gridsms::modem::{self, ModemConfig, ModemEvent, ModemEventKind, ModemHandle, ModemIdentity};
use gridsms::pdu::{
    self, Pdu, StatusClass, SubmitOptions, concat::Outcome, concat::Part, concat::Reassembler,
};

#[derive(Debug, Subcommand)]
pub enum ModemCommand {
    /// Print the modem's identity, registration and signal as one JSON object.
    Info(DeviceArgs),
    /// Send one SMS; prints one JSON line per segment: {"seq": n, "mr": int}.
    Send {
        #[command(flatten)]
        device: DeviceArgs,
        /// Ask the network for delivery reports.
        #[arg(long)]
        status_report: bool,
        /// Recipient number.
        #[arg(long)]
        to: String,
        /// Message text (UTF-8; long texts are split into segments).
        text: String,
    },
    /// Print inbound SMS (multipart reassembled) and status reports as JSON lines.
    Listen {
        #[command(flatten)]
        device: DeviceArgs,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long = "for", value_name = "SECONDS")]
        for_secs: Option<u64>,
        /// Leave messages on the SIM instead of deleting them once printed.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DeviceArgs {
    /// Serial device of the modem (/dev/ttyUSB2, a udev link, a pty).
    #[arg(long)]
    device: String,
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// SIM PIN, entered once if the SIM asks for it.
    #[arg(long)]
    pin: Option<String>,
}

/// Longest wait for the modem to initialise.
const INIT_WAIT: Duration = Duration::from_secs(60);

pub fn run(cmd: ModemCommand) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cmd: ModemCommand) -> Result<ExitCode> {
    match cmd {
        ModemCommand::Info(device) => info(device).await,
        ModemCommand::Send {
            device,
            status_report,
            to,
            text,
        } => send(device, status_report, &to, &text).await,
        ModemCommand::Listen {
            device,
            for_secs,
            keep,
        } => listen(device, for_secs, keep).await,
    }
}

/// Start the actor and wait until it is ready (or give up with its reason).
async fn open(
    args: &DeviceArgs,
) -> Result<(ModemHandle, mpsc::Receiver<ModemEvent>, ModemIdentity)> {
    let mut cfg = ModemConfig::new("cli", args.device.clone());
    cfg.baud = args.baud;
    cfg.pin = args.pin.clone();
    let (tx, mut rx) = mpsc::channel(256);
    let handle = modem::spawn(cfg, tx);
    let wait = async {
        while let Some(ev) = rx.recv().await {
            match ev.kind {
                ModemEventKind::Ready(id) => return Ok(id),
                ModemEventKind::Down { reason } => {
                    return Err(anyhow!("modem at {} not usable: {reason}", args.device));
                }
                _ => {}
            }
        }
        Err(anyhow!("modem actor ended"))
    };
    let result = tokio::time::timeout(INIT_WAIT, wait).await;
    match result {
        Ok(Ok(id)) => Ok((handle, rx, id)),
        Ok(Err(e)) => {
            handle.shutdown().await;
            Err(e)
        }
        Err(_) => {
            handle.shutdown().await;
            bail!(
                "modem at {} did not finish init within {} s",
                args.device,
                INIT_WAIT.as_secs()
            )
        }
    }
}

async fn info(args: DeviceArgs) -> Result<ExitCode> {
    let (handle, _rx, id) = open(&args).await?;
    let status = handle.status().await.context("modem status")?;
    handle.shutdown().await;
    let out = json!({
        "manufacturer": id.manufacturer,
        "model": id.model,
        "revision": id.revision,
        "imei": id.imei,
        "imsi": id.imsi,
        "iccid": id.iccid,
        "operator": status.operator.or(id.operator),
        "registered": status.registered,
        "signal_dbm": status.signal_dbm,
    });
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

async fn send(args: DeviceArgs, status_report: bool, to: &str, text: &str) -> Result<ExitCode> {
    let options = SubmitOptions {
        status_report,
        concat_ref: rand::random(),
        ..SubmitOptions::default()
    };
    let segments = match pdu::encode_submit(to, text, &options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(super::EXIT_BAD_INPUT));
        }
    };
    let (handle, _rx, _) = open(&args).await?;
    let result = handle.send(segments).await;
    handle.shutdown().await;
    let accepted = match &result {
        Ok(mrs) => mrs.as_slice(),
        Err(e) => e.accepted.as_slice(),
    };
    for (i, mr) in accepted.iter().enumerate() {
        println!("{}", json!({"seq": i + 1, "mr": mr}));
    }
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!(
                "error: segment {} not accepted: {} (class: {})",
                e.segment_index + 1,
                e.failure,
                e.class
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn listen(args: DeviceArgs, for_secs: Option<u64>, keep: bool) -> Result<ExitCode> {
    let (handle, mut rx, _) = open(&args).await?;
    let deadline = for_secs.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut reassembler =
        Reassembler::new(Reassembler::DEFAULT_MAX_GROUPS, Reassembler::DEFAULT_TTL_MS);
    let started = tokio::time::Instant::now();
    // Stored messages may be reported again (sweeps); print each storage slot once.
    let mut seen = std::collections::HashSet::new();
    let mut parts_stored: std::collections::HashMap<(String, u16, u8), Vec<u32>> =
        std::collections::HashMap::new();
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let (index, pdu) = match ev.kind {
            ModemEventKind::Inbound { storage_index, pdu }
            | ModemEventKind::StatusReport { storage_index, pdu } => (storage_index, pdu),
            ModemEventKind::Down { reason } => {
                eprintln!("modem down: {reason}");
                continue;
            }
            _ => continue,
        };
        if let Some(i) = index
            && !seen.insert((i, pdu.clone()))
        {
            continue;
        }
        // Storage slots to delete once what they hold has been printed.
        let to_delete: Vec<u32> = match pdu::decode(&pdu) {
            Ok(Pdu::Deliver(d)) => {
                let now_ms = started.elapsed().as_millis() as u64;
                let part = Part::from_deliver(&d);
                let group = (part.sender.clone(), part.reference, part.total);
                let slots = parts_stored.entry(group.clone()).or_default();
                slots.extend(index);
                match reassembler.push(part, now_ms).outcome {
                    Outcome::Complete(m) => {
                        println!(
                            "{}",
                            json!({"from": m.sender, "text": m.text, "timestamp": m.timestamp.to_rfc3339()})
                        );
                        parts_stored.remove(&group).unwrap_or_default()
                    }
                    // A part of a message still incomplete stays on the SIM until the whole
                    // message is printed, so quitting early loses nothing.
                    Outcome::Pending { .. } => Vec::new(),
                    Outcome::Duplicate => index.into_iter().collect(),
                }
            }
            Ok(Pdu::StatusReport(r)) => {
                println!(
                    "{}",
                    json!({"status_report": {
                        "recipient": r.recipient.to_display(),
                        "mr": r.message_ref,
                        "status": r.status,
                        "delivered": r.class() == StatusClass::Delivered,
                    }})
                );
                index.into_iter().collect()
            }
            Ok(Pdu::Submit(_)) => continue,
            Err(e) => {
                // Left on the SIM: a technician may want to look at it with other tools.
                eprintln!("undecodable PDU at index {index:?}: {e}");
                continue;
            }
        };
        if keep {
            continue;
        }
        for i in to_delete {
            if let Err(e) = handle.ack_inbound(i).await {
                eprintln!("could not delete message {i}: {e}");
            }
        }
    }
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
