//! `gridsms backup --out FILE`: an online, verified copy of the SQLite outbox, safe while the
//! daemon runs (see [`gridsms::store::backup`]).
use clap::Args;
use gridsms::config::{self, DEFAULT_CONFIG_PATH};
use gridsms::store::backup;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (refused if it exists, unless --force).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Replace an existing file at --out.
    #[arg(long)]
    pub force: bool,
    /// The config file naming the database ([storage] path).
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "GRIDSMS_CONFIG")]
    pub config: PathBuf,
    /// Back up this database file instead of the one in the config.
    #[arg(long, value_name = "FILE")]
    pub database: Option<PathBuf>,
}

/// Exit 0 with a one-line summary; 2 when the config is unusable or --out exists; 1 when the
/// copy or its verification failed.
pub fn run(args: BackupArgs) -> ExitCode {
    let source = match args.database {
        Some(db) => db,
        None => match config::load(&args.config) {
            Ok(loaded) => loaded.config.storage.path,
            Err(e) => {
                for d in e.diagnostics() {
                    eprintln!("error: {d}");
                }
                return ExitCode::from(super::EXIT_BAD_INPUT);
            }
        },
    };
    match backup::backup(&source, &args.out, args.force) {
        Ok(s) => {
            println!(
                "backup {}: {} messages, {:.1} MiB, schema v{}, {:.2} s, integrity ok",
                s.path.display(),
                s.messages,
                s.bytes as f64 / (1024.0 * 1024.0),
                s.schema_version,
                s.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e @ backup::BackupError::Exists(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_BAD_INPUT)
        }
        Err(e) => {
            eprintln!("error: backup of {} failed: {e}", source.display());
            ExitCode::FAILURE
        }
    }
}
