//! The TOML configuration, validated as a whole.
//!
//! Data flow: file text → [`raw`] (serde, unknown keys refused, first syntax/shape error with
//! its line and column) → `validate` (every semantic problem at once, each naming its key path,
//! relative paths resolved against the config file's folder, secret files read) → [`Config`],
//! the typed, defaulted configuration the daemon runs on. [`Config::to_toml`] prints the
//! effective configuration with secrets redacted (`gridsms check-config`).
//!
//! Invariant: a [`Config`] value has passed validation; nothing downstream re-checks limits,
//! zones or durations. Problems that do not stop the daemon (a world-readable token file, limits
//! above where carriers' spam checks start) are warnings in [`Loaded::warnings`].

mod demo;
mod duration;
pub mod inbound;
mod locate;
pub mod marketing;
mod outages;
mod raw;
mod staff;
mod templates;
mod validate;

pub use demo::DemoConfig;
pub use duration::{DurationError, format_duration, parse_duration};
pub use inbound::InboundConfig;
pub use locate::{KeyPath, Seg};
pub use outages::OutagesConfig;
pub use staff::{PRICE_UNITS_PER_YUAN, ReportsConfig, price_units};
pub use validate::{DEFAULT_DAILY_LIMIT, DEFAULT_HOURLY_LIMIT, DEFAULT_MONTHLY_LIMIT, Problems};

use crate::dispatch::{Backoff, QuietHours, QuietPolicy, QuotaLimits};
use crate::message::{Carrier, Category};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Where `gridsms run` and `check-config` look without `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/gridsms/gridsms.toml";
/// Config files larger than this are refused rather than read into memory.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it was read from; relative paths in it were resolved against its folder.
    #[serde(skip)]
    pub source: PathBuf,
    pub storage: StorageConfig,
    #[serde(rename = "modem")]
    pub modems: Vec<ModemConfig>,
    pub dispatch: DispatchConfig,
    pub api: ApiConfig,
    pub log: LogConfig,
    /// Notice texts (`[templates]`).
    #[serde(serialize_with = "templates::serialize")]
    pub templates: crate::templates::Templates,
    pub outages: OutagesConfig,
    /// `[demo]`: demo only (config/demo.toml).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<DemoConfig>,
    /// `[marketing]`: the billing database and its polling jobs; `None` = no jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marketing: Option<marketing::MarketingConfig>,
    pub reports: ReportsConfig,
    pub inbound: InboundConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageConfig {
    /// The SQLite outbox file.
    pub path: PathBuf,
    /// Sent and received records are kept at least this long (≥ 150: rules ask ≥ 5 months).
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModemConfig {
    /// Unique; appears in logs, metrics and the API.
    pub name: String,
    pub device: Device,
    pub baud: u32,
    /// The SIM PIN, inline or from a file; `None` when the SIM has no PIN lock.
    #[serde(flatten)]
    pub pin: Option<Pin>,
    /// SMS service centre number to set with AT+CSCA; `None` keeps the SIM's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smsc: Option<String>,
    pub hourly_limit: u32,
    pub daily_limit: u32,
    pub monthly_limit: u32,
    #[serde(serialize_with = "ser_duration")]
    pub min_interval: Duration,
    pub enabled: bool,
    /// Whether recovery may power-cycle the modem (AT+CFUN=1,1).
    pub allow_reset: bool,
    #[serde(serialize_with = "ser_duration")]
    pub send_timeout: Duration,
    /// Overrides the carrier read from the SIM's IMSI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<Carrier>,
    /// Yuan per segment, for cost reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_per_segment: Option<f64>,
}

impl ModemConfig {
    pub fn limits(&self) -> QuotaLimits {
        QuotaLimits {
            hourly: self.hourly_limit,
            daily: self.daily_limit,
            monthly: self.monthly_limit,
        }
    }

    /// The PIN to enter at AT+CPIN, if any.
    pub fn pin(&self) -> Option<&str> {
        match &self.pin {
            Some(Pin::Inline(s)) | Some(Pin::File { pin: s, .. }) => Some(s.expose()),
            None => None,
        }
    }
}

/// Where a modem is: a serial device path (a tty, a udev symlink, a pty link) or a built-in
/// simulated modem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Device {
    Path(PathBuf),
    Sim(SimProfile),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Path(p) => write!(f, "{}", p.display()),
            Device::Sim(p) => write!(f, "sim:{p}"),
        }
    }
}

impl Serialize for Device {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The simulated modem models (`device = "sim:PROFILE"`): the simulator's own profiles.
pub use crate::sim::Profile as SimProfile;

/// A value that must not reach logs or printed configs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference is (bearer token checks).
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let mut diff = a.len() ^ b.len();
        for i in 0..a.len().max(b.len()) {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0);
            diff |= usize::from(x ^ y);
        }
        diff == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// A SIM PIN and where it came from (printed as `pin = "<redacted>"` or `pin_file = "…"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    Inline(Secret),
    File { path: PathBuf, pin: Secret },
}

impl Serialize for Pin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Pin::Inline(secret) => map.serialize_entry("pin", secret)?,
            Pin::File { path, .. } => map.serialize_entry("pin_file", path)?,
        }
        map.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchConfig {
    /// Zone for quiet hours, quota windows and schedules.
    #[serde(serialize_with = "ser_tz")]
    pub timezone: Tz,
    pub quiet_hours: QuietHours,
    pub quiet_hours_categories: Vec<Category>,
    pub max_attempts: u32,
    /// Whether to ask for SMS-STATUS-REPORTs (delivery reports).
    pub status_reports: bool,
    /// TP-VP: how long the SMSC keeps trying to deliver.
    #[serde(serialize_with = "ser_duration")]
    pub validity: Duration,
    #[serde(serialize_with = "ser_backoff")]
    pub backoff: Backoff,
    pub on_crash: OnCrash,
}

impl DispatchConfig {
    pub fn quiet_policy(&self) -> QuietPolicy {
        QuietPolicy {
            tz: self.timezone,
            window: self.quiet_hours,
            categories: self.quiet_hours_categories.clone(),
        }
    }
}

/// What to do with a message found in `sending` at start-up (a crash or power cut mid-send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrashRule {
    /// Queue it again: it may reach the customer twice, it is never silently lost.
    Resend,
    /// Mark it failed ("interrupted by restart"): never twice, maybe never.
    Fail,
}

impl FromStr for CrashRule {
    type Err = crate::message::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "resend" => Ok(CrashRule::Resend),
            "fail" => Ok(CrashRule::Fail),
            _ => Err(crate::message::UnknownName {
                kind: "crash rule",
                value: s.to_owned(),
                expected: "resend, fail",
            }),
        }
    }
}

/// [`CrashRule`] per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OnCrash {
    pub outage: CrashRule,
    pub reply: CrashRule,
    pub manual: CrashRule,
    pub bill: CrashRule,
    pub reminder: CrashRule,
    pub broadcast: CrashRule,
}

impl OnCrash {
    pub fn rule(&self, category: Category) -> CrashRule {
        match category {
            Category::Outage => self.outage,
            Category::Reply => self.reply,
            Category::Manual => self.manual,
            Category::Bill => self.bill,
            Category::Reminder => self.reminder,
            Category::Broadcast => self.broadcast,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    pub tokens: Vec<ApiToken>,
}

impl ApiConfig {
    /// The first token allowed `scope`: what the CLI uses to talk to the local daemon.
    pub fn token_with(&self, scope: Scope) -> Option<&ApiToken> {
        self.tokens.iter().find(|t| t.allows(scope))
    }

    /// The token whose secret is `bearer`, if any.
    pub fn token_for(&self, bearer: &str) -> Option<&ApiToken> {
        self.tokens.iter().find(|t| t.secret.matches(bearer))
    }
}

/// A bearer token: who it is, what it may do, and (when `stations` is not empty) which
/// supply stations' customers it may reach.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    pub name: String,
    pub secret_file: PathBuf,
    /// Read from `secret_file` at load.
    #[serde(skip)]
    pub secret: Secret,
    pub scopes: Vec<Scope>,
    /// Organisation-code prefixes of the supply stations this token is limited to; empty for
    /// a bureau-wide token. See `api::scope`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stations: Vec<String>,
}

impl ApiToken {
    /// Limited to some supply stations.
    pub fn is_station_scoped(&self) -> bool {
        !self.stations.is_empty()
    }

    /// Whether `station` (an organisation code) lies within this token's stations; always
    /// true for a bureau-wide token.
    pub fn covers_station(&self, station: &str) -> bool {
        self.stations.is_empty()
            || self
                .stations
                .iter()
                .any(|p| station.starts_with(p.as_str()))
    }

    /// `admin` includes every other scope.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read messages, modems, queue, reports.
    Read,
    /// Send individual messages.
    Send,
    /// Send outage notices.
    Outage,
    /// Send broadcasts.
    Broadcast,
    /// Everything, bureau-wide.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Read,
        Scope::Send,
        Scope::Outage,
        Scope::Broadcast,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::Outage => "outage",
            Scope::Broadcast => "broadcast",
            Scope::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = crate::message::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| crate::message::UnknownName {
                kind: "scope",
                value: s.to_owned(),
                expected: "read, send, outage, broadcast, admin",
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive: `info`, `gridsms=debug,info`, …
    pub level: String,
    pub format: LogFormat,
}

impl LogConfig {
    /// `auto` resolved: compact when stderr goes to journald (systemd sets `JOURNAL_STREAM`),
    /// pretty otherwise.
    pub fn effective_format(&self, journal_stream: bool) -> LogFormat {
        match self.format {
            LogFormat::Auto if journal_stream => LogFormat::Compact,
            LogFormat::Auto => LogFormat::Pretty,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Pretty,
    Compact,
    Json,
}

impl FromStr for LogFormat {
    type Err = crate::message::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "pretty" => Ok(LogFormat::Pretty),
            "compact" => Ok(LogFormat::Compact),
            "json" => Ok(LogFormat::Json),
            _ => Err(crate::message::UnknownName {
                kind: "log format",
                value: s.to_owned(),
                expected: "auto, pretty, compact, json",
            }),
        }
    }
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_tz<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

fn ser_backoff<S: Serializer>(b: &Backoff, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("backoff", 4)?;
    st.serialize_field("initial", &format_duration(b.initial))?;
    st.serialize_field("max", &format_duration(b.max))?;
    st.serialize_field("multiplier", &b.multiplier)?;
    st.serialize_field("jitter", &b.jitter)?;
    st.end()
}

/// A validated config and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// One problem, located: renders as `file:line:col: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column, when the key is present in the file.
    pub position: Option<(usize, usize)>,
    /// Key path such as `modem[1].daily_limit`; empty for a syntax error.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(Diagnostic),
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// Every problem, one per entry.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ConfigError::Read { path, source } => vec![Diagnostic {
                file: path.clone(),
                position: None,
                key: String::new(),
                message: format!("cannot read: {source}"),
            }],
            ConfigError::Parse(d) => vec![d.clone()],
            ConfigError::Invalid(ds) => ds.clone(),
        }
    }
}

/// serde names Rust types; say what a config author would.
fn humane_serde_message(m: &str) -> String {
    m.replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array")
        .replace("expected a string", "expected a quoted string")
}

fn render_all(ds: &[Diagnostic]) -> String {
    let lines: Vec<String> = ds.iter().map(Diagnostic::to_string).collect();
    lines.join("\n")
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(read_err(std::io::Error::other("larger than 1 MiB")));
    }
    parse(&text, path)
}

/// Validates config `text` as if read from `path` (which names it in diagnostics and anchors
/// its relative paths).
pub fn parse(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    // Notepad on Windows saves UTF-8 with a byte-order mark; TOML does not allow one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let map = locate::SourceMap::new(text);
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span();
        ConfigError::Parse(Diagnostic {
            file: path.to_owned(),
            position: span.as_ref().map(|s| map.line_col(s.start)),
            key: span
                .map(|s| map.path_at(s.start).to_string())
                .unwrap_or_default(),
            message: humane_serde_message(e.message().trim()),
        })
    })?;
    let parent = path.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_owned());
    let mut problems = Problems::default();
    let config = validate::validate(raw, &base, path, &mut problems);
    let locate = |list: Vec<(KeyPath, String)>| -> Vec<Diagnostic> {
        list.into_iter()
            .map(|(key, message)| Diagnostic {
                file: path.to_owned(),
                position: map.span_of(&key).map(|s| map.line_col(s.start)),
                key: key.to_string(),
                message,
            })
            .collect()
    };
    let (errors, warnings) = problems.into_parts();
    // Reported in file order (problems without a position, from defaults, last).
    let sorted = |mut ds: Vec<Diagnostic>| {
        ds.sort_by_key(|d| d.position.unwrap_or((usize::MAX, 0)));
        ds
    };
    match config {
        Some(config) if errors.is_empty() => Ok(Loaded {
            config,
            warnings: sorted(locate(warnings)),
        }),
        _ => Err(ConfigError::Invalid(sorted(locate(errors)))),
    }
}

/// How a modem's configuration changed between two configs (on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemChange {
    Added(String),
    Removed(String),
    /// Device, speed, PIN or SMSC changed: the port must be closed and the modem set up again.
    Reopen(String),
    /// Only limits, intervals, timeouts, `enabled`, carrier or price changed: applied in place.
    Retune(String),
}

/// Changes from `old` to `new` modems, matched by name, in `new`'s order then removals.
pub fn modem_changes(old: &[ModemConfig], new: &[ModemConfig]) -> Vec<ModemChange> {
    let mut out = Vec::new();
    for n in new {
        match old.iter().find(|o| o.name == n.name) {
            None => out.push(ModemChange::Added(n.name.clone())),
            Some(o) if o == n => {}
            Some(o) => {
                let reopen = o.device != n.device
                    || o.baud != n.baud
                    || o.pin() != n.pin()
                    || o.smsc != n.smsc;
                out.push(if reopen {
                    ModemChange::Reopen(n.name.clone())
                } else {
                    ModemChange::Retune(n.name.clone())
                });
            }
        }
    }
    for o in old {
        if !new.iter().any(|n| n.name == o.name) {
            out.push(ModemChange::Removed(o.name.clone()));
        }
    }
    out
}

impl Config {
    /// The effective configuration as TOML, every default filled in, secrets redacted.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Modems with `enabled = true`.
    pub fn enabled_modems(&self) -> impl Iterator<Item = &ModemConfig> {
        self.modems.iter().filter(|m| m.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modems(text: &str) -> Vec<ModemConfig> {
        match parse(text, Path::new("/etc/gridsms/gridsms.toml")) {
            Ok(l) => l.config.modems,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn secrets_compare_whole() {
        let s = Secret::new("abcdef");
        assert!(s.matches("abcdef"));
        for other in ["", "abcde", "abcdeg", "abcdefg", "ABCDEF"] {
            assert!(!s.matches(other), "{other}");
        }
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn names_parse() {
        assert_eq!("admin".parse::<Scope>(), Ok(Scope::Admin));
        assert!("Admin".parse::<Scope>().is_err());
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("fail".parse::<CrashRule>(), Ok(CrashRule::Fail));
        assert_eq!(
            "huawei-e173".parse::<SimProfile>(),
            Ok(SimProfile::HuaweiE173)
        );
        assert_eq!(Device::Sim(SimProfile::Sim800).to_string(), "sim:sim800");
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        assert!(
            parse(
                "\u{feff}[dispatch]\nmax_attempts = 3\n",
                Path::new("x.toml")
            )
            .is_ok()
        );
    }

    #[test]
    fn reload_changes_by_modem() {
        let old = modems(
            "[[modem]]\nname = \"a\"\ndevice = \"sim:sim800\"\n\
             [[modem]]\nname = \"b\"\ndevice = \"sim:sim800\"\n\
             [[modem]]\nname = \"c\"\ndevice = \"sim:sim800\"\n\
             [[modem]]\nname = \"d\"\ndevice = \"sim:sim800\"\n",
        );
        let new = modems(
            "[[modem]]\nname = \"a\"\ndevice = \"sim:sim800\"\n\
             [[modem]]\nname = \"b\"\ndevice = \"sim:huawei-e173\"\n\
             [[modem]]\nname = \"c\"\ndevice = \"sim:sim800\"\nhourly_limit = 10\n\
             [[modem]]\nname = \"e\"\ndevice = \"sim:sim800\"\n",
        );
        assert_eq!(
            modem_changes(&old, &new),
            [
                ModemChange::Reopen("b".into()),
                ModemChange::Retune("c".into()),
                ModemChange::Added("e".into()),
                ModemChange::Removed("d".into()),
            ]
        );
        assert!(modem_changes(&new, &new).is_empty());
    }
}
