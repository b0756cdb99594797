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
