//! `gridsms run`: the daemon in the foreground (systemd runs it as Type=notify).
use clap::Args;
use gridsms::config::{self, DEFAULT_CONFIG_PATH};
use gridsms::daemon::{self, RunOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (re-read on SIGHUP).
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "GRIDSMS_CONFIG")]
    pub config: PathBuf,
}

pub fn run(args: RunArgs) -> ExitCode {
    let loaded = match config::load(&args.config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gridsms: {e}");
            return ExitCode::from(super::EXIT_BAD_INPUT);
        }
    };
    if let Err(e) = gridsms::telemetry::init(&loaded.config.log) {
        eprintln!("gridsms: {e}");
        return ExitCode::from(super::EXIT_BAD_INPUT);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gridsms")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gridsms: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(
        loaded.config,
        &args.config,
        RunOptions::default(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "gridsms stopped on an error");
            eprintln!("gridsms: {e}");
            ExitCode::FAILURE
        }
    }
}
