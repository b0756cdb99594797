//! `gridsms audit`: the audit trail through the running daemon's API.

use super::client::{ApiArgs, Client, finish, ok, text};
use clap::Args;
use gridsms::config::Scope;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// From this local date (2026-11-01) or RFC 3339 time.
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this local date (inclusive) or RFC 3339 time.
    #[arg(long)]
    pub to: Option<String>,
    /// Only this token's entries (a non-admin token sees only its own anyway).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (send, send_by_account, broadcast, cancel, config_reload, …).
    #[arg(long)]
    pub action: Option<String>,
    /// Most entries to show (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Minimal percent-encoding for query values (dates, names, RFC 3339 `+`).
pub(super) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub fn run(args: AuditArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args.api, Scope::Read)?;
        let mut query = vec![format!("limit={}", args.limit)];
        for (k, v) in [
            ("from", &args.from),
            ("to", &args.to),
            ("actor", &args.actor),
            ("action", &args.action),
        ] {
            if let Some(v) = v {
                query.push(format!("{k}={}", encode(v)));
            }
        }
        let (status, page) = client.get(&format!("/api/v1/audit?{}", query.join("&")))?;
        let page = ok(status, page)?;
        if args.api.json {
            println!("{page}");
            return Ok(());
        }
        println!(
            "{:>6}  {:<20} {:<18} {:<18} {:>6}  {:<28} target",
            "id", "at", "actor", "action", "count", "result"
        );
        for e in page["entries"].as_array().into_iter().flatten() {
            println!(
                "{:>6}  {:<20} {:<18} {:<18} {:>6}  {:<28} {}",
                text(&e["id"]),
                text(&e["at"]).chars().take(19).collect::<String>(),
                text(&e["actor"]),
                text(&e["action"]),
                text(&e["recipients"]),
                text(&e["result"]),
                text(&e["target"])
            );
        }
        Ok(())
    })())
}
