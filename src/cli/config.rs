//! `gridsms check-config`: validate a config file, print its problems or its effective form.
use clap::Args;
use gridsms::config::{self, DEFAULT_CONFIG_PATH};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The config file to check.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "GRIDSMS_CONFIG")]
    pub config: PathBuf,
    /// Print only problems, not the effective configuration.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Exit 0 when valid (warnings go to stderr), 2 with every problem on stderr otherwise.
pub fn run(args: CheckConfigArgs) -> ExitCode {
    match config::load(&args.config) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            if let Some(m) = &loaded.config.marketing {
                let problems = check_marketing(m);
                if !problems.is_empty() {
                    for p in problems {
                        eprintln!("error: {}: {p}", args.config.display());
                    }
                    return ExitCode::from(super::EXIT_BAD_INPUT);
                }
            }
            if !args.quiet {
                match loaded.config.to_toml() {
                    Ok(text) => {
                        println!(
                            "# effective configuration of {} (secrets redacted)",
                            args.config.display()
                        );
                        print!("{text}");
                    }
                    Err(e) => {
                        eprintln!("error: cannot print the configuration: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            for d in e.diagnostics() {
                eprintln!("error: {d}");
            }
            ExitCode::from(super::EXIT_BAD_INPUT)
        }
    }
}

/// Connects to the marketing database (with the configured timeouts), prepares every
/// configured query and names missing columns.
fn check_marketing(m: &gridsms::config::marketing::MarketingConfig) -> Vec<String> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(gridsms::marketing::jobs::check_source(m)),
        Err(e) => vec![format!("cannot start the async runtime: {e}")],
    }
}
