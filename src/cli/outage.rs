//! `gridsms outage`: the 95598 desk's planned-outage notices through the running daemon's API.
//!
//! ```text
//! gridsms outage --feeder 10KV-CG-01 --start "2026-11-29 08:00" --end "2026-11-29 18:00" --reason 线路检修
//! gridsms outage --area T0001 --area T0002 --start … --end …
//! gridsms outage list | show ID | cancel ID
//! ```
//! Times are local (`[dispatch] timezone`) or RFC 3339.

use super::client::{ApiArgs, Client, finish, ok, text};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use gridsms::config::Scope;
use serde_json::{Value, json};
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OutageArgs {
    #[command(subcommand)]
    pub command: Option<OutageCommand>,
    #[command(flatten)]
    pub create: CreateArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Feeder line code: every customer on it is notified.
    #[arg(long, conflicts_with = "areas")]
    pub feeder: Option<String>,
    /// Transformer-area code; repeat for several.
    #[arg(long = "area", id = "areas")]
    pub areas: Vec<String>,
    /// Start, local time ("2026-11-29 08:00") or RFC 3339.
    #[arg(long)]
    pub start: Option<String>,
    /// End, same forms.
    #[arg(long)]
    pub end: Option<String>,
    /// Reason as customers read it (线路检修).
    #[arg(long)]
    pub reason: Option<String>,
    /// The affected area as people name it (城关镇东街一带).
    #[arg(long)]
    pub area_text: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OutageCommand {
    /// Cancel an outage: everyone told gets a cancellation notice.
    Cancel { id: i64 },
    /// The latest outages.
    List,
    /// One outage and its notices.
    Show { id: i64 },
}

pub fn run(args: OutageArgs) -> ExitCode {
    finish(match args.command {
        None => create(args.create, &args.api),
        Some(OutageCommand::Cancel { id }) => cancel(id, &args.api),
        Some(OutageCommand::List) => list(&args.api),
        Some(OutageCommand::Show { id }) => show(id, &args.api),
    })
}

fn print_announced(a: &Value, verb: &str) {
    let reasons: Vec<String> = a["skipped_by_reason"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "outage {}: {verb} {} phone(s); skipped {}{}",
        a["outage_id"],
        a["recipients"],
        a["skipped"],
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
    if a["short_notice"] == json!(true) {
        println!("warning: the outage starts sooner than [outages] min_lead");
    }
}

fn create(c: CreateArgs, api: &ApiArgs) -> Result<()> {
    if c.feeder.is_none() && c.areas.is_empty() {
        bail!("give --feeder CODE or --area CODE (repeatable); see `gridsms outage --help`");
    }
    let (Some(start), Some(end)) = (c.start, c.end) else {
        bail!("give --start and --end");
    };
    let client = Client::new(api, Scope::Outage)?;
    let mut body = json!({"start": start, "end": end});
    if let Some(f) = c.feeder {
        body["feeder"] = json!(f);
    }
    if !c.areas.is_empty() {
        body["areas"] = json!(c.areas);
    }
    if let Some(r) = c.reason {
        body["reason"] = json!(r);
    }
    if let Some(a) = c.area_text {
        body["area"] = json!(a);
    }
    let (status, answer) = client.post("/api/v1/outages", &body)?;
    let answer = ok(status, answer)?;
    if api.json {
        println!("{answer}");
    } else {
        print_announced(&answer, "notices queued for");
    }
    Ok(())
}

fn cancel(id: i64, api: &ApiArgs) -> Result<()> {
    let client = Client::new(api, Scope::Outage)?;
    let (status, answer) = client.post(&format!("/api/v1/outages/{id}/cancel"), &json!({}))?;
    let answer = ok(status, answer)?;
    if api.json {
        println!("{answer}");
    } else {
        print_announced(&answer, "cancelled; cancellation notices queued for");
    }
    Ok(())
}

fn list(api: &ApiArgs) -> Result<()> {
    let client = Client::new(api, Scope::Read)?;
    let (status, answer) = client.get("/api/v1/outages")?;
    let answer = ok(status, answer)?;
    if api.json {
        println!("{answer}");
        return Ok(());
    }
    println!(
        "{:>6}  {:<10} {:<9} {:<16} {:<26} {:<26} told",
        "id", "source", "status", "feeder/areas", "start", "end"
    );
    for o in answer.as_array().into_iter().flatten() {
        let target = match &o["feeder"] {
            Value::Null => o["areas"]
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
            f => text(f),
        };
        println!(
            "{:>6}  {:<10} {:<9} {:<16} {:<26} {:<26} {}",
            text(&o["id"]),
            text(&o["source"]),
            text(&o["status"]),
            target,
            text(&o["start"]),
            text(&o["end"]),
            text(&o["told"])
        );
    }
    Ok(())
}

fn show(id: i64, api: &ApiArgs) -> Result<()> {
    let client = Client::new(api, Scope::Read)?;
    let (status, o) = client.get(&format!("/api/v1/outages/{id}"))?;
    let o = ok(status, o)?;
    if api.json {
        println!("{o}");
        return Ok(());
    }
    for key in [
        "id",
        "source",
        "external_id",
        "status",
        "version",
        "feeder",
        "areas",
        "area_text",
        "start",
        "end",
        "reason",
        "created_by",
        "told",
        "notices",
    ] {
        println!("{key:>12}: {}", text(&o[key]));
    }
    Ok(())
}
