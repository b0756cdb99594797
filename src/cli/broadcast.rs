//! `gridsms broadcast` and `gridsms cancel`: staff sends through the running daemon's API.

use super::client::{ApiArgs, Client, finish, ok, text};
use anyhow::bail;
use clap::Args;
use gridsms::config::Scope;
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// The notice; the unsubscribe hint is appended.
    #[arg(long)]
    pub text: String,
    /// Supply-station code (prefix); repeat for several.
    #[arg(long = "station")]
    pub stations: Vec<String>,
    /// Feeder line code; repeat for several.
    #[arg(long = "feeder")]
    pub feeders: Vec<String>,
    /// Transformer area code; repeat for several.
    #[arg(long = "area")]
    pub areas: Vec<String>,
    /// Not before this RFC 3339 time.
    #[arg(long)]
    pub not_before: Option<String>,
    /// Count recipients, segments and cost without queueing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Makes a retried command safe: the same key never queues twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// A message id.
    #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
    pub id: Option<i64>,
    /// A batch id (of a send, an outage notice run or a broadcast).
    #[arg(long)]
    pub batch: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn broadcast(args: BroadcastArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args.api, Scope::Broadcast)?;
        let mut body = json!({
            "text": args.text,
            "audience": {"stations": args.stations, "feeders": args.feeders, "areas": args.areas},
            "dry_run": args.dry_run,
        });
        if let Some(t) = &args.not_before {
            body["not_before"] = json!(t);
        }
        if let Some(k) = &args.idempotency_key {
            body["idempotency_key"] = json!(k);
        }
        let (status, answer) = client.post("/api/v1/broadcasts", &body)?;
        let answer = ok(status, answer)?;
        if args.api.json {
            println!("{answer}");
            return Ok(());
        }
        let verb = if args.dry_run {
            "dry run, nothing queued:"
        } else {
            "queued:"
        };
        println!(
            "{verb} {} recipient(s), {} segment(s), about ¥{}; {} opted out; skipped {}",
            answer["recipients"],
            answer["segments"],
            text(&answer["estimated_cost"]),
            answer["opted_out"],
            answer["skipped"]
        );
        if !args.dry_run {
            println!(
                "broadcast {}: `gridsms cancel --batch {}` stops what is still queued",
                text(&answer["broadcast_id"]),
                text(&answer["broadcast_id"])
            );
        }
        Ok(())
    })())
}

pub fn cancel(args: CancelArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args.api, Scope::Send)?;
        let path = match (&args.id, &args.batch) {
            (Some(id), _) => format!("/api/v1/messages/{id}/cancel"),
            (None, Some(b)) => format!("/api/v1/sends/{}/cancel", super::audit::encode(b)),
            (None, None) => bail!("give --id or --batch"),
        };
        let (status, answer) = client.post(&path, &json!({}))?;
        let answer = ok(status, answer)?;
        if args.api.json {
            println!("{answer}");
        } else {
            println!(
                "cancelled {}; {} already sent or finished",
                answer["cancelled"], answer["already_gone"]
            );
        }
        Ok(())
    })())
}
