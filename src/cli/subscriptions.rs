//! `gridsms subscriptions list|approve|reject`: phone ↔ account bindings waiting for staff
//! (DY requests from a number the marketing database does not record for the account).

use super::client::{ApiArgs, Client, finish, ok, text};
use anyhow::Result;
use clap::{Args, Subcommand};
use gridsms::config::Scope;
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SubscriptionsArgs {
    #[command(subcommand)]
    pub command: SubscriptionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Bindings by status (pending by default).
    List {
        /// pending, active, rejected or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Approve a pending binding; the customer is told by SMS.
    Approve(Decide),
    /// Reject a pending binding; the customer is told by SMS.
    Reject(Decide),
}

#[derive(Debug, Args)]
pub struct Decide {
    /// The customer's mobile number.
    pub phone: String,
    /// The account number.
    pub account: String,
    /// Why (kept on the binding).
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn run(args: SubscriptionsArgs) -> ExitCode {
    finish((|| -> Result<()> {
        match args.command {
            SubscriptionsCommand::List { status, limit, api } => {
                let client = Client::new(&api, Scope::Admin)?;
                let (code, body) = client.get(&format!(
                    "/api/v1/subscriptions?status={status}&limit={limit}"
                ))?;
                let body = ok(code, body)?;
                if api.json {
                    println!("{body}");
                    return Ok(());
                }
                println!(
                    "{:<15} {:<14} {:<9} {:<9} {:<20} note",
                    "phone", "account", "source", "status", "since"
                );
                for b in body["subscriptions"].as_array().into_iter().flatten() {
                    println!(
                        "{:<15} {:<14} {:<9} {:<9} {:<20} {}",
                        text(&b["phone"]),
                        text(&b["account"]),
                        text(&b["source"]),
                        text(&b["status"]),
                        text(&b["created_at"]).chars().take(19).collect::<String>(),
                        text(&b["note"])
                    );
                }
                Ok(())
            }
            SubscriptionsCommand::Approve(d) => decide(d, "approve"),
            SubscriptionsCommand::Reject(d) => decide(d, "reject"),
        }
    })())
}

fn decide(d: Decide, action: &str) -> Result<()> {
    let client = Client::new(&d.api, Scope::Admin)?;
    let phone: String = d.phone.chars().filter(|c| !c.is_whitespace()).collect();
    let body = match &d.note {
        Some(n) => json!({"note": n}),
        None => json!({}),
    };
    let (code, answer) = client.post(
        &format!("/api/v1/subscriptions/{phone}/{}/{action}", d.account),
        &body,
    )?;
    let answer = ok(code, answer)?;
    if d.api.json {
        println!("{answer}");
    } else {
        println!(
            "{} {} → {}; customer told by message {}",
            text(&answer["phone"]),
            text(&answer["account"]),
            text(&answer["status"]),
            text(&answer["message_id"])
        );
    }
    Ok(())
}
