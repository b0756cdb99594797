//! `gridsms inbox`: what customers texted in and how each message was handled (from the
//! running daemon's API).

use super::client::{ApiArgs, Client, finish, ok, text};
use anyhow::Result;
use clap::Args;
use gridsms::config::Scope;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Only messages from this sender (a mobile number in any usual form, or a short code).
    #[arg(long)]
    pub sender: Option<String>,
    /// received, replied, handled, ignored, rate_limited or failed.
    #[arg(long)]
    pub state: Option<String>,
    /// At most this many (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Continue after a previous page (its `next_cursor`).
    #[arg(long)]
    pub cursor: Option<i64>,
    #[command(flatten)]
    pub api: ApiArgs,
}

fn query(args: &InboxArgs) -> String {
    let mut q = vec![format!("limit={}", args.limit)];
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    if let Some(s) = &args.sender {
        q.push(format!("sender={}", enc(s)));
    }
    if let Some(s) = &args.state {
        q.push(format!("state={}", enc(s)));
    }
    if let Some(c) = args.cursor {
        q.push(format!("cursor={c}"));
    }
    q.join("&")
}

pub fn run(args: InboxArgs) -> ExitCode {
    finish((|| -> Result<()> {
        let client = Client::new(&args.api, Scope::Read)?;
        let (status, page) = client.get(&format!("/api/v1/inbox?{}", query(&args)))?;
        let page = ok(status, page)?;
        if args.api.json {
            println!("{page}");
            return Ok(());
        }
        println!(
            "{:>7}  {:<20} {:<15} {:<12} {:<12} {:<8} text / note",
            "id", "received", "from", "state", "command", "reply"
        );
        for m in page["messages"].as_array().into_iter().flatten() {
            let note = m["note"]
                .as_str()
                .map(|n| format!(" [{n}]"))
                .unwrap_or_default();
            println!(
                "{:>7}  {:<20} {:<15} {:<12} {:<12} {:<8} {}{note}",
                text(&m["id"]),
                text(&m["received_at"]).chars().take(19).collect::<String>(),
                text(&m["sender"]),
                text(&m["state"]),
                text(&m["command"]),
                text(&m["reply_id"]),
                text(&m["text"]).replace('\n', " ")
            );
        }
        if let Some(c) = page["next_cursor"].as_i64() {
            println!("more: --cursor {c}");
        }
        Ok(())
    })())
}
