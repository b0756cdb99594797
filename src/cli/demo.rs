//! `gridsms demo-db --out FILE [--customers N] [--seed S] [--now "YYYY-MM-DD HH:MM"]`: write a
//! demo marketing database (see `gridsms::marketing::demo`). Demo only.

use anyhow::{Context, Result};
use clap::Args;
use gridsms::marketing::demo;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DemoDbArgs {
    /// The SQLite file to create (refused if it exists).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = demo::DEFAULT_CUSTOMERS)]
    pub customers: u32,
    /// Same seed, size and --now: the same content.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Local time the data is relative to (bills posted up to it, an outage tomorrow);
    /// now in Asia/Shanghai by default.
    #[arg(long)]
    pub now: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DemoDbArgs) -> ExitCode {
    match write(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridsms: {e:#}");
            ExitCode::from(super::EXIT_BAD_INPUT)
        }
    }
}

fn write(args: &DemoDbArgs) -> Result<()> {
    let now = match &args.now {
        Some(t) => chrono::NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M")
            .with_context(|| format!("--now {t:?}: expected \"2026-11-28 10:00\""))?,
        None => chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .naive_local(),
    };
    let s = demo::generate(&args.out, args.customers, args.seed, now)?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "{}: {} stations, {} feeders, {} transformer areas, {} customers ({} contacts), \
             {} bills ({} posted today, {} revised), {} in arrears, {} planned outages",
            args.out.display(),
            s.stations,
            s.feeders,
            s.areas,
            s.customers,
            s.contacts,
            s.bills,
            s.bills_posted_today,
            s.revisions,
            s.arrears,
            s.outages
        );
    }
    Ok(())
}
