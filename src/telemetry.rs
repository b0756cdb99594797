//! Logging setup: readable on a terminal, compact under journald (which adds its own
//! timestamps), JSON for log shippers. Phone numbers are masked by the callers at info level and
//! above (`phone::mask`); AT traffic is logged at trace level by the modem actors.

use std::str::FromStr;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact under journald (JOURNAL_STREAM set), pretty on a terminal.
    Auto,
    Pretty,
    Compact,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "pretty" => Ok(LogFormat::Pretty),
            "compact" => Ok(LogFormat::Compact),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?} (expected auto, pretty, compact or json)"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log level {level:?}: {reason}")]
    Level { level: String, reason: String },
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber. `level` is a tracing filter (`info`, `gridsms=debug,warn`);
/// `RUST_LOG`, when set, wins so a technician can raise verbosity without editing the config.
pub fn init(level: &str, format: LogFormat) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(&env),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| TelemetryError::Level {
        level: level.to_owned(),
        reason: e.to_string(),
    })?;
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match resolve(format, under_journald) {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Compact => builder.compact().without_time().with_ansi(false).try_init(),
        _ => builder.try_init(),
    };
    result.map_err(|_| TelemetryError::AlreadyInstalled)
}

fn resolve(format: LogFormat, under_journald: bool) -> LogFormat {
    match format {
        LogFormat::Auto if under_journald => LogFormat::Compact,
        LogFormat::Auto => LogFormat::Pretty,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_compact_under_journald_and_pretty_on_a_terminal() {
        assert_eq!(resolve(LogFormat::Auto, true), LogFormat::Compact);
        assert_eq!(resolve(LogFormat::Auto, false), LogFormat::Pretty);
        assert_eq!(resolve(LogFormat::Json, true), LogFormat::Json);
    }

    #[test]
    fn formats_parse_and_unknown_ones_are_named() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        let err = "xml".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("xml"), "{err}");
    }
}
