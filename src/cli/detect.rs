//! `gridsms modems detect`: probe serial ports for modems (placeholder until discovery lands).
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Ports to probe; default /dev/ttyUSB*, /dev/ttyACM* and /dev/gridsms/*.
    pub paths: Vec<PathBuf>,
}

pub fn run(_args: DetectArgs) -> ExitCode {
    eprintln!("gridsms modems detect: not built yet");
    ExitCode::FAILURE
}
