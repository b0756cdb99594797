//! Logging setup: readable on a terminal, compact under journald (which adds its own
//! timestamps), JSON for log shippers. Phone numbers are masked by the callers at info level and
//! above (`phone::mask`); AT traffic is logged at trace level by the modem actors.

use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log level {level:?}: {reason}")]
    Level { level: String, reason: String },
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the config's level so a
/// technician can raise verbosity for one run without editing the config.
pub fn init(log: &LogConfig) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(&env),
        _ => EnvFilter::try_new(&log.level),
    }
    .map_err(|e| TelemetryError::Level {
        level: log.level.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let result = match log.effective_format(journald) {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Compact => builder.compact().without_time().with_ansi(false).try_init(),
        LogFormat::Pretty | LogFormat::Auto => builder.try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadyInstalled)
}
