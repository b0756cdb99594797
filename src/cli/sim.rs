//! `gridsms sim` (placeholder until the simulator lands).
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Path of the symlink to create for the pty's device.
    #[arg(long)]
    pub link: String,
}

pub fn run(_args: SimArgs) -> ExitCode {
    eprintln!("gridsms sim: not built yet");
    ExitCode::from(super::EXIT_BAD_INPUT)
}
