//! `gridsms modem info|send|listen` (placeholder until the driver lands).
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ModemCommand {
    /// Print the modem's identity as JSON.
    Info {
        #[arg(long)]
        device: String,
    },
}

pub fn run(_cmd: ModemCommand) -> ExitCode {
    eprintln!("gridsms modem: not built yet");
    ExitCode::from(super::EXIT_BAD_INPUT)
}
