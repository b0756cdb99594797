//! `gridsms contacts import FILE.csv --source legacy`: bring the old outage-notice phone lists
//! (or staff lists) into the contacts store, straight into the SQLite file the config names
//! (the daemon may be running: SQLite's WAL lets both write).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use gridsms::config::{self, DEFAULT_CONFIG_PATH};
use gridsms::inbound::legacy;
use gridsms::store::Store;
use gridsms::store::contacts::ContactSource;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ContactsArgs {
    #[command(subcommand)]
    pub command: ContactsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Import phone,account[,name] rows (UTF-8 with or without BOM, or GBK).
    Import {
        file: PathBuf,
        /// Where the list comes from: legacy (old outage lists) or staff.
        #[arg(long)]
        source: String,
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "GRIDSMS_CONFIG")]
        config: PathBuf,
    },
}

pub fn run(args: ContactsArgs) -> ExitCode {
    let result = match args.command {
        ContactsCommand::Import {
            file,
            source,
            config,
        } => import(&file, &source, &config),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gridsms: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn import(file: &Path, source: &str, config_path: &Path) -> Result<ExitCode> {
    let source = match ContactSource::parse(source) {
        Some(s @ (ContactSource::Legacy | ContactSource::Staff)) => s,
        _ => {
            eprintln!("gridsms: --source must be legacy or staff");
            return Ok(ExitCode::from(super::EXIT_BAD_INPUT));
        }
    };
    let loaded = config::load(config_path)?;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .with_context(|| format!("opening {}", file.display()))?
        .take(legacy::MAX_IMPORT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", file.display()))?;
    if bytes.len() > legacy::MAX_IMPORT_BYTES {
        bail!("{} is larger than 64 MiB; split it", file.display());
    }
    let (text, encoding) = legacy::decode_text(&bytes);
    let parsed = legacy::parse(&text);
    for (line, reason) in &parsed.bad {
        eprintln!("{}:{line}: {reason}", file.display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rows = parsed.rows.clone();
    // Before the daemon's first start the storage folder may not exist yet (it creates it too).
    if let Some(dir) = loaded
        .config
        .storage
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the storage folder {}", dir.display()))?;
    }
    let counts = runtime.block_on(async move {
        let store = Store::open(&loaded.config.storage.path).await?;
        let now = chrono::Utc::now();
        store
            .call_durable(move |c| legacy::import(c, &rows, source, now))
            .await
    })?;
    println!(
        "{}: {} rows read ({encoding}); {} added, {} already known, {} repeated in the file; {} bad rows",
        file.display(),
        parsed.rows.len() + parsed.bad.len(),
        counts.added,
        counts.existing,
        counts.repeated,
        parsed.bad.len()
    );
    Ok(if parsed.rows.is_empty() && !parsed.bad.is_empty() {
        ExitCode::from(super::EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}
