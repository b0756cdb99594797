//! `gridsms report delivery|failed-numbers|sims [--from] [--to] [--csv]`: the reports through
//! the running daemon's API, as a table, JSON or CSV for spreadsheets (UTF-8 with BOM).

use super::client::{ApiArgs, Client, finish, ok};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gridsms::config::{self, Scope};
use gridsms::reports::{self, DeliveryReport, FailedNumbersReport, SimsReport};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Delivery,
    FailedNumbers,
    Sims,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    pub kind: Kind,
    /// From this local date (2026-11-01) or RFC 3339 time; default: start of this month.
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this local date (inclusive) or RFC 3339 time; default: now.
    #[arg(long)]
    pub to: Option<String>,
    /// CSV (UTF-8 with BOM, for spreadsheet programs) instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
}

fn emit(out: &Option<PathBuf>, text: &str) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            Ok(stdout.flush()?)
        }
    }
}

pub fn run(args: ReportArgs) -> ExitCode {
    finish((|| {
        let client = Client::new(&args.api, Scope::Read)?;
        let name = match args.kind {
            Kind::Delivery => "delivery",
            Kind::FailedNumbers => "failed-numbers",
            Kind::Sims => "sims",
        };
        let mut query = Vec::new();
        for (k, v) in [("from", &args.from), ("to", &args.to)] {
            if let Some(v) = v {
                query.push(format!("{k}={}", super::audit::encode(v)));
            }
        }
        let (status, body) = client.get(&format!("/api/v1/reports/{name}?{}", query.join("&")))?;
        let body = ok(status, body)?;
        if args.api.json {
            return emit(&args.out, &format!("{body}\n"));
        }
        let tz = config::load(&args.api.config)
            .map(|l| l.config.dispatch.timezone)
            .unwrap_or(chrono_tz::Asia::Shanghai);
        let text = match args.kind {
            Kind::Delivery => {
                let r: DeliveryReport =
                    serde_json::from_value(body).context("unexpected delivery report")?;
                if args.csv {
                    reports::csv::delivery(&r)
                } else {
                    table(&reports::csv::delivery(&r))
                }
            }
            Kind::FailedNumbers => {
                let r: FailedNumbersReport =
                    serde_json::from_value(body).context("unexpected failed-number report")?;
                let csv = reports::csv::failed_numbers(&r, tz);
                if args.csv { csv } else { table(&csv) }
            }
            Kind::Sims => {
                let r: SimsReport =
                    serde_json::from_value(body).context("unexpected SIM report")?;
                let csv = reports::csv::sims(&r);
                if args.csv { csv } else { table(&csv) }
            }
        };
        emit(&args.out, &text)
    })())
}

/// The CSV shown on a terminal: no BOM, columns separated by two spaces (quoted cells as is).
fn table(csv: &str) -> String {
    csv.trim_start_matches(reports::csv::BOM)
        .lines()
        .map(|l| l.replace(',', "  "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
