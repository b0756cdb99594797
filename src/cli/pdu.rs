//! `gridsms pdu decode|encode` (placeholder until the codec lands).
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Decode one PDU given as hex.
    Decode { hex: String },
}

pub fn run(_cmd: PduCommand) -> ExitCode {
    eprintln!("gridsms pdu: not built yet");
    ExitCode::from(super::EXIT_BAD_INPUT)
}
