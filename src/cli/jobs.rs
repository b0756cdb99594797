//! `gridsms jobs` (the marketing jobs through the daemon's API) and `gridsms jobs run NAME`.

use super::client::{ApiArgs, Client, finish, ok, text};
use clap::{Args, Subcommand};
use gridsms::config::Scope;
use serde_json::{Value, json};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run a job now (admin token); prints the run once finished.
    Run {
        /// bills, corrections, reminders, …
        name: String,
        /// Return at once instead of waiting for the run to finish.
        #[arg(long)]
        no_wait: bool,
    },
}

fn skipped(run: &Value) -> String {
    let cells: Vec<String> = run["skipped"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if cells.is_empty() {
        "-".into()
    } else {
        cells.join(", ")
    }
}

fn print_run(r: &Value) {
    println!(
        "  run {:>5} {:<11} {:<8} {}  read {} queued {} dup {} cancelled {} skipped: {}{}",
        text(&r["id"]),
        text(&r["state"]),
        text(&r["trigger"]),
        text(&r["started_at"]),
        r["rows_read"],
        r["queued"],
        r["duplicates"],
        r["cancelled"],
        skipped(r),
        match &r["error"] {
            Value::String(e) => format!("\n        error: {e}"),
            _ => String::new(),
        }
    );
}

pub fn run(args: JobsArgs) -> ExitCode {
    finish((|| {
        if let Some(JobsCommand::Run { name, no_wait }) = &args.command {
            let client = Client::new(&args.api, Scope::Admin)?;
            let wait = if *no_wait { "" } else { "?wait=true" };
            let (status, body) =
                client.post(&format!("/api/v1/jobs/{name}/run{wait}"), &json!({}))?;
            let body = ok(status, body)?;
            if args.api.json {
                println!("{body}");
            } else if body.get("id").is_some() {
                print_run(&body);
            } else {
                println!("{name}: triggered");
            }
            return Ok(());
        }
        let client = Client::new(&args.api, Scope::Read)?;
        let (status, view) = client.get("/api/v1/jobs")?;
        let view = ok(status, view)?;
        if args.api.json {
            println!("{view}");
            return Ok(());
        }
        match &view["marketing"] {
            Value::Null => {
                println!("no [marketing] section: no jobs");
                return Ok(());
            }
            m => println!(
                "marketing database {} ({}): {}",
                text(&m["url"]),
                text(&m["engine"]),
                text(&m["status"])
            ),
        }
        for j in view["jobs"].as_array().into_iter().flatten() {
            println!(
                "{:<12} {:<10} {:<22} next {}{}",
                text(&j["name"]),
                text(&j["state"]),
                text(&j["schedule"]),
                text(&j["next_run"]),
                match &j["last_error"] {
                    Value::String(e) => format!("\n  last error: {e}"),
                    _ => String::new(),
                }
            );
            for r in j["last_runs"].as_array().into_iter().flatten() {
                print_run(r);
            }
        }
        Ok(())
    })())
}
