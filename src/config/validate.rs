//! From [`RawConfig`] to [`Config`]: defaults, ranges, cross-key rules, relative paths and
//! secret files. Every problem is recorded with its key path; none stops the others from being
//! found.

use super::raw::{RawApi, RawConfig, RawDispatch, RawLog, RawModem, RawOnCrash, RawStorage};
use super::{
    ApiConfig, ApiToken, Config, CrashRule, Device, DispatchConfig, KeyPath, LogConfig, LogFormat,
    ModemConfig, OnCrash, Pin, Scope, Secret, SimProfile, StorageConfig, parse_duration,
};
use crate::dispatch::{Backoff, QuietHours};
use crate::message::{Carrier, Category};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default per-SIM limits: below where carriers' spam checks start on ordinary cards (around
/// 200 an hour or 1,000 a day; a flagged card loses SMS for days).
pub const DEFAULT_HOURLY_LIMIT: u32 = 150;
pub const DEFAULT_DAILY_LIMIT: u32 = 800;
pub const DEFAULT_MONTHLY_LIMIT: u32 = 20_000;
const SPAM_CHECK_HOURLY: u32 = 200;
const SPAM_CHECK_DAILY: u32 = 1_000;
/// TP-VP relative format reaches 63 weeks; SMSCs want at least a few minutes.
const VALIDITY_RANGE: (Duration, Duration) = (
    Duration::from_secs(5 * 60),
    Duration::from_secs(441 * 86_400),
);
const BAUD_RATES: [u32; 8] = [
    9_600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
];
const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_BYTES: u64 = 4096;

/// Problems found while validating, each at a key path. Sections added later validate into the
/// same collector.
#[derive(Debug, Default)]
pub struct Problems {
    errors: Vec<(KeyPath, String)>,
    warnings: Vec<(KeyPath, String)>,
}

impl Problems {
    pub fn error(&mut self, at: &KeyPath, message: impl Into<String>) {
        self.errors.push((at.clone(), message.into()));
    }

    pub fn warn(&mut self, at: &KeyPath, message: impl Into<String>) {
        self.warnings.push((at.clone(), message.into()));
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// (errors, warnings).
    #[allow(clippy::type_complexity)]
    pub fn into_parts(self) -> (Vec<(KeyPath, String)>, Vec<(KeyPath, String)>) {
        (self.errors, self.warnings)
    }
}

/// Builds the config; when `p` holds errors afterwards the result must not be used.
pub fn validate(raw: RawConfig, base: &Path, source: &Path, p: &mut Problems) -> Option<Config> {
    let root = KeyPath::root();
    let storage = storage(
        raw.storage.unwrap_or_default(),
        base,
        &root.key("storage"),
        p,
    );
    let modems = modems(raw.modem, base, &root.key("modem"), p);
    let dispatch = dispatch(raw.dispatch.unwrap_or_default(), &root.key("dispatch"), p);
    let api = api(raw.api.unwrap_or_default(), base, &root.key("api"), p);
    let log = log(raw.log.unwrap_or_default(), &root.key("log"), p);
    let templates =
        super::templates::validate(raw.templates.unwrap_or_default(), &root.key("templates"), p);
    let outages =
        super::outages::validate(raw.outages.unwrap_or_default(), &root.key("outages"), p);
    let demo = raw
        .demo
        .map(|d| super::demo::validate(d, base, &root.key("demo"), p));
    let marketing = raw
        .marketing
        .map(|m| super::marketing::validate(m, base, &root.key("marketing"), p));
    let reports = super::staff::reports(raw.reports, &root.key("reports"), p);
    let inbound = super::inbound::validate(raw.inbound, &root.key("inbound"), p);
    Some(Config {
        source: source.to_owned(),
        storage,
        modems,
        dispatch,
        api,
        log,
        templates,
        outages,
        demo,
        marketing,
        reports,
        inbound,
    })
}

/// `path` made absolute against `base`, with `.` and `..` removed lexically (symlinks are
/// left alone: a udev link must stay the link).
pub(super) fn resolve(base: &Path, path: &str) -> PathBuf {
    use std::path::Component;
    let joined = base.join(path);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub(super) fn int_in(
    p: &mut Problems,
    at: &KeyPath,
    value: Option<i64>,
    default: u32,
    range: RangeInclusive<u32>,
) -> u32 {
    let Some(v) = value else { return default };
    match u32::try_from(v) {
        Ok(v) if range.contains(&v) => v,
        _ => {
            p.error(
                at,
                format!(
                    "{v} is out of range: expected {} to {}",
                    range.start(),
                    range.end()
                ),
            );
            default
        }
    }
}

pub(super) fn duration_in(
    p: &mut Problems,
    at: &KeyPath,
    value: Option<&str>,
    default: Duration,
    (min, max): (Duration, Duration),
) -> Duration {
    let Some(text) = value else { return default };
    match parse_duration(text) {
        Ok(d) if d >= min && d <= max => d,
        Ok(_) => {
            p.error(
                at,
                format!(
                    "{text:?} is out of range: expected {} to {}",
                    super::format_duration(min),
                    super::format_duration(max)
                ),
            );
            default
        }
        Err(e) => {
            p.error(at, e.to_string());
            default
        }
    }
}

fn storage(raw: RawStorage, base: &Path, at: &KeyPath, p: &mut Problems) -> StorageConfig {
    let path = match raw.path.as_deref() {
        None => PathBuf::from("/var/lib/gridsms/gridsms.db"),
        Some("") => {
            p.error(&at.key("path"), "must not be empty");
            PathBuf::new()
        }
        Some(s) => resolve(base, s),
    };
    let retention_days = match raw.retention_days {
        None => 183,
        Some(d) if d < 150 => {
            p.error(
                &at.key("retention_days"),
                format!("{d} days is too short: sent and received records must be kept at least 5 months (150 days)"),
            );
            183
        }
        Some(d) => int_in(p, &at.key("retention_days"), Some(d), 183, 150..=36_500),
    };
    StorageConfig {
        path,
        retention_days,
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn modems(raw: Vec<RawModem>, base: &Path, at: &KeyPath, p: &mut Problems) -> Vec<ModemConfig> {
    if raw.is_empty() {
        p.warn(
            at,
            "no [[modem]] is configured: messages will queue but nothing will be sent",
        );
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut devices: HashMap<PathBuf, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let at = at.index(i);
        let modem = modem(m, base, &at, p);
        if let Some(first) = names.insert(modem.name.clone(), i) {
            p.error(
                &at.key("name"),
                format!("{:?} is already the name of modem[{first}]", modem.name),
            );
        }
        if let Device::Path(path) = &modem.device {
            // A udev symlink and its target are the same port: compare what they point to.
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if let Some(first) = devices.insert(real, i) {
                p.error(
                    &at.key("device"),
                    format!(
                        "{} is already the device of modem[{first}]: one port, one modem",
                        path.display()
                    ),
                );
            }
        }
        out.push(modem);
    }
    if !out.is_empty() && out.iter().all(|m| !m.enabled) {
        p.warn(at, "every modem has enabled = false: nothing will be sent");
    }
    out
}

fn modem(m: RawModem, base: &Path, at: &KeyPath, p: &mut Problems) -> ModemConfig {
    let name = match m.name {
        None => {
            p.error(&at.key("name"), "missing: every modem needs a unique name");
            String::new()
        }
        Some(n) if !is_name(&n) => {
            p.error(
                &at.key("name"),
                format!("{n:?}: use 1 to 32 ASCII letters, digits, '-', '_' or '.'"),
            );
            n
        }
        Some(n) => n,
    };
    let device = match m.device.as_deref() {
        None | Some("") => {
            p.error(
                &at.key("device"),
                "missing: a serial device path (/dev/ttyUSB2, a /dev/gridsms/… udev link, a pty \
                 link) or \"sim:PROFILE\"",
            );
            Device::Path(PathBuf::new())
        }
        Some(d) => match d.strip_prefix("sim:") {
            Some(profile) => match profile.parse::<SimProfile>() {
                Ok(sp) => Device::Sim(sp),
                Err(e) => {
                    p.error(&at.key("device"), e.to_string());
                    Device::Sim(SimProfile::QuectelEc25)
                }
            },
            None => {
                let path = resolve(base, d);
                if !path.exists() {
                    p.warn(
                        &at.key("device"),
                        format!(
                            "{} does not exist now; the modem will be retried until it appears",
                            path.display()
                        ),
                    );
                }
                Device::Path(path)
            }
        },
    };
    let baud = match m.baud {
        None => 115_200,
        Some(b) => {
            match u32::try_from(b) {
                Ok(b) if BAUD_RATES.contains(&b) => b,
                _ => {
                    p.error(&at.key("baud"), format!("{b} is not a standard rate: expected one of 9600, 19200, 38400, 57600, \
                     115200, 230400, 460800, 921600"));
                    115_200
                }
            }
        }
    };
    let pin = pin(m.pin, m.pin_file, base, at, p);
    let smsc = m.smsc.filter(|s| {
        let digits = s.strip_prefix('+').unwrap_or(s);
        let ok = (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            p.error(
                &at.key("smsc"),
                format!("{s:?}: expected an SMSC number such as \"+8613800100500\""),
            );
        }
        ok
    });
    let limit = |p: &mut Problems, key: &str, v, d| int_in(p, &at.key(key), v, d, 1..=10_000_000);
    let hourly_limit = limit(p, "hourly_limit", m.hourly_limit, DEFAULT_HOURLY_LIMIT);
    let daily_limit = limit(p, "daily_limit", m.daily_limit, DEFAULT_DAILY_LIMIT);
    let monthly_limit = limit(p, "monthly_limit", m.monthly_limit, DEFAULT_MONTHLY_LIMIT);
    if hourly_limit > daily_limit {
        p.error(
            &at.key("hourly_limit"),
            format!("{hourly_limit} exceeds daily_limit {daily_limit}"),
        );
    }
    if daily_limit > monthly_limit {
        p.error(
            &at.key("daily_limit"),
            format!("{daily_limit} exceeds monthly_limit {monthly_limit}"),
        );
    }
    if hourly_limit > SPAM_CHECK_HOURLY {
        p.warn(
            &at.key("hourly_limit"),
            format!(
                "{hourly_limit} an hour is above where carriers' spam checks start \
                 (about {SPAM_CHECK_HOURLY}); a flagged card loses SMS for days"
            ),
        );
    }
    if daily_limit > SPAM_CHECK_DAILY {
        p.warn(
            &at.key("daily_limit"),
            format!(
                "{daily_limit} a day is above where carriers' spam checks start \
                 (about {SPAM_CHECK_DAILY}); a flagged card loses SMS for days"
            ),
        );
    }
    let min_interval = duration_in(
        p,
        &at.key("min_interval"),
        m.min_interval.as_deref(),
        Duration::from_secs(2),
        (Duration::ZERO, Duration::from_secs(3600)),
    );
    let send_timeout = duration_in(
        p,
        &at.key("send_timeout"),
        m.send_timeout.as_deref(),
        Duration::from_secs(60),
        (Duration::from_secs(5), Duration::from_secs(600)),
    );
    let carrier = m.carrier.and_then(|c| {
        let known = [
            Carrier::ChinaMobile,
            Carrier::ChinaUnicom,
            Carrier::ChinaTelecom,
            Carrier::ChinaBroadnet,
        ];
        let found = known.into_iter().find(|k| k.as_str() == c);
        if found.is_none() {
            p.error(
                &at.key("carrier"),
                format!(
                    "unknown carrier {c:?} (expected one of: china-mobile, china-unicom, \
                     china-telecom, china-broadnet)"
                ),
            );
        }
        found
    });
    let price_per_segment = m.price_per_segment.filter(|x| {
        let ok = x.is_finite() && *x >= 0.0;
        if !ok {
            p.error(
                &at.key("price_per_segment"),
                format!("{x}: expected yuan per segment, 0 or more (e.g. 0.05)"),
            );
        }
        ok
    });
    ModemConfig {
        name,
        device,
        baud,
        pin,
        smsc,
        hourly_limit,
        daily_limit,
        monthly_limit,
        min_interval,
        enabled: m.enabled.unwrap_or(true),
        allow_reset: m.allow_reset.unwrap_or(true),
        send_timeout,
        carrier,
        price_per_segment,
    }
}

fn is_pin(s: &str) -> bool {
    (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn pin(
    inline: Option<String>,
    file: Option<String>,
    base: &Path,
    at: &KeyPath,
    p: &mut Problems,
) -> Option<Pin> {
    match (inline, file) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            p.error(&at.key("pin_file"), "set either pin or pin_file, not both");
            None
        }
        (Some(pin), None) => {
            if !is_pin(&pin) {
                p.error(&at.key("pin"), "expected 4 to 8 digits");
            }
            Some(Pin::Inline(Secret::new(pin)))
        }
        (None, Some(f)) => {
            let path = resolve(base, &f);
            match read_secret(&path) {
                Ok((pin, world_readable)) => {
                    if !is_pin(&pin) {
                        p.error(
                            &at.key("pin_file"),
                            format!("{} should hold 4 to 8 digits", path.display()),
                        );
                    }
                    if world_readable {
                        p.warn(
                            &at.key("pin_file"),
                            format!("{} is readable by every user; chmod 640 it (owner root, group gridsms)", path.display()),
                        );
                    }
                    Some(Pin::File {
                        path,
                        pin: Secret::new(pin),
                    })
                }
                Err(e) => {
                    p.error(&at.key("pin_file"), e);
                    None
                }
            }
        }
    }
}

/// Reads a small secret file: trimmed contents and whether every user may read it.
pub(super) fn read_secret(path: &Path) -> Result<(String, bool), String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let world_readable = file_is_world_readable(&file);
    let mut text = String::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if text.len() as u64 > MAX_SECRET_BYTES {
        return Err(format!(
            "{shown} is larger than {MAX_SECRET_BYTES} bytes; it should hold one secret"
        ));
    }
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok((secret.to_owned(), world_readable))
}

#[cfg(unix)]
fn file_is_world_readable(file: &std::fs::File) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn file_is_world_readable(_file: &std::fs::File) -> bool {
    false
}

fn dispatch(raw: RawDispatch, at: &KeyPath, p: &mut Problems) -> DispatchConfig {
    let timezone = match raw.timezone.as_deref() {
        None => chrono_tz::Asia::Shanghai,
        Some(name) => name.parse().unwrap_or_else(|_| {
            p.error(
                &at.key("timezone"),
                format!(
                    "unknown time zone {name:?}: expected an IANA name such as \"Asia/Shanghai\""
                ),
            );
            chrono_tz::Asia::Shanghai
        }),
    };
    let default_window = QuietHours {
        start: chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
        end: chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
    };
    let quiet_hours = match raw.quiet_hours.as_deref() {
        None => default_window,
        Some(s) => s.parse().unwrap_or_else(|e| {
            p.error(&at.key("quiet_hours"), format!("{e}"));
            default_window
        }),
    };
    let quiet_hours_categories = match raw.quiet_hours_categories {
        None => Category::ALL
            .into_iter()
            .filter(|c| c.quiet_hours_by_default())
            .collect(),
        Some(list) => {
            let mut cats = Vec::new();
            for (i, name) in list.iter().enumerate() {
                let at = at.key("quiet_hours_categories").index(i);
                match name.parse::<Category>() {
                    Ok(c) if cats.contains(&c) => p.error(&at, format!("{c} is listed twice")),
                    Ok(c) => {
                        if matches!(c, Category::Outage | Category::Reply) {
                            p.warn(
                                &at,
                                format!("{c} messages will wait for the end of quiet hours"),
                            );
                        }
                        cats.push(c);
                    }
                    Err(e) => p.error(&at, e.to_string()),
                }
            }
            cats
        }
    };
    let max_attempts = int_in(p, &at.key("max_attempts"), raw.max_attempts, 5, 1..=100);
    let backoff = backoff(raw.backoff.unwrap_or_default(), &at.key("backoff"), p);
    let validity = duration_in(
        p,
        &at.key("validity"),
        raw.validity.as_deref(),
        Duration::from_secs(24 * 3600),
        VALIDITY_RANGE,
    );
    let on_crash = on_crash(raw.on_crash.unwrap_or_default(), &at.key("on_crash"), p);
    DispatchConfig {
        timezone,
        quiet_hours,
        quiet_hours_categories,
        max_attempts,
        status_reports: raw.status_reports.unwrap_or(true),
        validity,
        backoff,
        on_crash,
    }
}

fn backoff(raw: super::raw::RawBackoff, at: &KeyPath, p: &mut Problems) -> Backoff {
    let d = Backoff::default();
    let day = Duration::from_secs(86_400);
    let initial = duration_in(
        p,
        &at.key("initial"),
        raw.initial.as_deref(),
        d.initial,
        (Duration::from_millis(100), day),
    );
    let max = duration_in(
        p,
        &at.key("max"),
        raw.max.as_deref(),
        d.max.max(initial),
        (Duration::from_millis(100), day),
    );
    if max < initial {
        p.error(
            &at.key("max"),
            format!(
                "{} is shorter than initial {}",
                super::format_duration(max),
                super::format_duration(initial)
            ),
        );
    }
    let multiplier = raw.multiplier.unwrap_or(d.multiplier);
    if !(1.0..=10.0).contains(&multiplier) {
        p.error(
            &at.key("multiplier"),
            format!("{multiplier} is out of range: expected 1.0 to 10.0"),
        );
    }
    let jitter = raw.jitter.unwrap_or(d.jitter);
    if !(0.0..=1.0).contains(&jitter) {
        p.error(
            &at.key("jitter"),
            format!("{jitter} is out of range: expected 0.0 to 1.0 (a share of the delay)"),
        );
    }
    Backoff {
        initial,
        max,
        multiplier,
        jitter,
    }
}

fn on_crash(raw: RawOnCrash, at: &KeyPath, p: &mut Problems) -> OnCrash {
    let mut rule = |key: &str, v: Option<String>| match v {
        None => CrashRule::Resend,
        Some(s) => s.parse().unwrap_or_else(|e: crate::message::UnknownName| {
            p.error(&at.key(key), e.to_string());
            CrashRule::Resend
        }),
    };
    OnCrash {
        outage: rule("outage", raw.outage),
        reply: rule("reply", raw.reply),
        manual: rule("manual", raw.manual),
        bill: rule("bill", raw.bill),
        reminder: rule("reminder", raw.reminder),
        broadcast: rule("broadcast", raw.broadcast),
    }
}

fn api(raw: RawApi, base: &Path, at: &KeyPath, p: &mut Problems) -> ApiConfig {
    let default_listen = std::net::SocketAddr::from(([127, 0, 0, 1], 8727));
    let listen = match raw.listen.as_deref() {
        None => default_listen,
        Some(s) => match s.parse::<std::net::SocketAddr>() {
            Ok(a) => {
                if !a.ip().is_loopback() {
                    p.warn(
                        &at.key("listen"),
                        format!(
                            "{a} is reachable from the network; the API has no TLS, so put it \
                         behind a TLS proxy or keep it on 127.0.0.1"
                        ),
                    );
                }
                a
            }
            Err(_) => {
                p.error(
                    &at.key("listen"),
                    format!("{s:?}: expected ADDRESS:PORT such as \"127.0.0.1:8727\""),
                );
                default_listen
            }
        },
    };
    if raw.tokens.is_empty() {
        p.warn(
            &at.key("tokens"),
            "no [[api.tokens]]: the API will refuse every request",
        );
    }
    let mut tokens: Vec<ApiToken> = Vec::new();
    let mut names = HashSet::new();
    for (i, t) in raw.tokens.into_iter().enumerate() {
        let at = at.key("tokens").index(i);
        let name = match t.name {
            Some(n) if is_name(&n) => n,
            Some(n) => {
                p.error(
                    &at.key("name"),
                    format!("{n:?}: use 1 to 32 ASCII letters, digits, '-', '_' or '.'"),
                );
                n
            }
            None => {
                p.error(
                    &at.key("name"),
                    "missing: every token needs a name (it appears in the audit trail)",
                );
                String::new()
            }
        };
        if !name.is_empty() && !names.insert(name.clone()) {
            p.error(
                &at.key("name"),
                format!("{name:?} is used by another token"),
            );
        }
        let (secret_file, secret) = match t.secret_file.as_deref() {
            None | Some("") => {
                p.error(
                    &at.key("secret_file"),
                    "missing: the file holding this token's bearer secret",
                );
                (PathBuf::new(), Secret::new(""))
            }
            Some(f) => {
                let path = resolve(base, f);
                match read_secret(&path) {
                    Ok((s, world_readable)) => {
                        if s.chars().count() < MIN_SECRET_CHARS {
                            p.error(&at.key("secret_file"), format!("the token in {} is shorter than {MIN_SECRET_CHARS} characters; \
                                 generate one with `openssl rand -hex 32`", path.display()));
                        } else if tokens.iter().any(|o| o.secret.matches(&s)) {
                            p.error(
                                &at.key("secret_file"),
                                format!(
                                    "{} holds the same secret as another token",
                                    path.display()
                                ),
                            );
                        }
                        if world_readable {
                            p.warn(
                                &at.key("secret_file"),
                                format!(
                                    "{} is readable by every user; chmod 640 it (owner root, group gridsms)",
                                    path.display()
                                ),
                            );
                        }
                        (path, Secret::new(s))
                    }
                    Err(e) => {
                        p.error(&at.key("secret_file"), e);
                        (path, Secret::new(""))
                    }
                }
            }
        };
        let mut scopes = Vec::new();
        match t.scopes {
            None => p.error(
                &at.key("scopes"),
                "missing: list what the token may do, e.g. [\"read\", \"send\"]",
            ),
            Some(list) if list.is_empty() => p.error(
                &at.key("scopes"),
                "empty: a token with no scope can do nothing",
            ),
            Some(list) => {
                for (j, s) in list.iter().enumerate() {
                    match s.parse::<Scope>() {
                        Ok(sc) if scopes.contains(&sc) => p.error(
                            &at.key("scopes").index(j),
                            format!("{sc:?} is listed twice"),
                        ),
                        Ok(sc) => scopes.push(sc),
                        Err(e) => p.error(&at.key("scopes").index(j), e.to_string()),
                    }
                }
            }
        }
        let stations =
            super::staff::token_stations(t.stations, scopes.contains(&Scope::Admin), &at, p);
        tokens.push(ApiToken {
            name,
            secret_file,
            secret,
            scopes,
            stations,
        });
    }
    ApiConfig { listen, tokens }
}

fn log(raw: RawLog, at: &KeyPath, p: &mut Problems) -> LogConfig {
    let level = raw.level.unwrap_or_else(|| "info".into());
    // EnvFilter reads a bare word as a target name, so "loud" would pass it: check that bare
    // directives are levels ourselves.
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let bare_ok = level
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains('='))
        .all(|d| LEVELS.contains(&d.to_ascii_lowercase().as_str()));
    let parsed = tracing_subscriber::EnvFilter::builder().parse(&level);
    if !bare_ok || parsed.is_err() || level.trim().is_empty() {
        p.error(
            &at.key("level"),
            format!(
                "{level:?}: expected a level (trace, debug, info, warn, error, off) or \
                 directives such as \"gridsms=debug,info\""
            ),
        );
    }
    let format = match raw.format.as_deref() {
        None => LogFormat::Auto,
        Some(s) => s.parse().unwrap_or_else(|e: crate::message::UnknownName| {
            p.error(&at.key("format"), e.to_string());
            LogFormat::Auto
        }),
    };
    LogConfig { level, format }
}
