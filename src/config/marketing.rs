//! `[marketing]`: how to reach the bureau's marketing (billing) database, the site's SQL
//! (`[marketing.queries]`) and the polling jobs (`[marketing.bills]`, `[marketing.corrections]`,
//! `[marketing.reminders]`) with their schedules and options.
//!
//! The section is optional: no `[marketing]`, no jobs. A job whose table is present is enabled
//! unless `enabled = false`; an enabled job without the queries it runs is an error naming the
//! missing query. Queries are parsed here (named parameters checked against the contract in
//! [`crate::marketing::queries`]); whether their columns exist is only known by preparing them
//! against the database, which `check-config` and the daemon's job runner do.

use super::validate::{duration_in, int_in, read_secret, resolve};
use super::{KeyPath, Problems, Secret, format_duration};
use crate::marketing::queries::{Queries, QueryConfigError};
use chrono::NaiveTime;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMarketing {
    pub url: Option<String>,
    pub password_file: Option<String>,
    pub password_env: Option<String>,
    pub connect_timeout: Option<String>,
    pub query_timeout: Option<String>,
    pub queries: Option<BTreeMap<String, String>>,
    pub bills: Option<RawBills>,
    pub corrections: Option<RawCorrections>,
    pub reminders: Option<RawReminders>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBills {
    pub enabled: Option<bool>,
    pub every: Option<String>,
    pub at: Option<Vec<String>>,
    pub look_back: Option<String>,
    pub expire_after: Option<String>,
}

/// `[marketing.corrections]` takes the same keys as `[marketing.bills]`.
pub type RawCorrections = RawBills;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReminders {
    pub enabled: Option<bool>,
    pub every: Option<String>,
    pub at: Option<Vec<String>>,
    pub first_after_days: Option<i64>,
    pub every_days: Option<i64>,
    pub max_reminders: Option<i64>,
    pub expire_after: Option<String>,
}

/// When a job runs: at a fixed interval, or at local times of day (in `dispatch.timezone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Every(Duration),
    At(Vec<NaiveTime>),
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}", format_duration(*d)),
            Schedule::At(times) => {
                let t: Vec<String> = times
                    .iter()
                    .map(|t| t.format("%H:%M").to_string())
                    .collect();
                write!(f, "at {}", t.join(", "))
            }
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Schedule::Every(d) => map.serialize_entry("every", &format_duration(*d))?,
            Schedule::At(times) => {
                let t: Vec<String> = times
                    .iter()
                    .map(|t| t.format("%H:%M").to_string())
                    .collect();
                map.serialize_entry("at", &t)?
            }
        }
        map.end()
    }
}

/// Where the password came from (printed instead of the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordFrom {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct MarketingConfig {
    /// With a relative SQLite path made absolute against the config file's folder. May carry
    /// a password in its userinfo: print it with `source::redact_url` only.
    #[serde(serialize_with = "ser_url")]
    pub url: String,
    #[serde(skip)]
    pub password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_from: Option<PasswordFrom>,
    #[serde(serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub query_timeout: Duration,
    /// The site's SQL, as written (printed by check-config).
    pub queries: BTreeMap<String, String>,
    /// The same, parsed.
    #[serde(skip)]
    pub parsed: Arc<Queries>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bills: Option<BillsJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrections: Option<CorrectionsJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reminders: Option<RemindersJob>,
}

impl MarketingConfig {
    /// What the runner connects with.
    pub fn source_config(&self) -> crate::marketing::SourceConfig {
        crate::marketing::SourceConfig {
            url: self.url.clone(),
            password: self.password.clone(),
            connect_timeout: self.connect_timeout,
            query_timeout: self.query_timeout,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillsJob {
    pub enabled: bool,
    pub schedule: Schedule,
    /// The first run only considers bills posted within this.
    #[serde(serialize_with = "ser_duration")]
    pub look_back: Duration,
    /// Bill notices not sent within this expire.
    #[serde(serialize_with = "ser_duration")]
    pub expire_after: Duration,
}

/// A corrections job is configured like the bills job.
pub type CorrectionsJob = BillsJob;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemindersJob {
    pub enabled: bool,
    pub schedule: Schedule,
    /// The first reminder goes this many days after the due date.
    pub first_after_days: u32,
    /// Then one every this many days …
    pub every_days: u32,
    /// … at most this many per due date.
    pub max_reminders: u32,
    /// Reminders not sent within this expire (a customer may pay meanwhile).
    #[serde(serialize_with = "ser_duration")]
    pub expire_after: Duration,
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::marketing::source::redact_url(url))
}

/// `every` or `at` (never both); `default` when neither is given. Public to the config module
/// so other polled sections (`[outages]`) read schedules the same way.
pub(crate) fn schedule(
    every: Option<&str>,
    at: Option<&[String]>,
    default: Schedule,
    key: &KeyPath,
    p: &mut Problems,
) -> Schedule {
    match (every, at) {
        (Some(_), Some(_)) => {
            p.error(&key.key("at"), "set either every or at, not both");
            default
        }
        (Some(e), None) => Schedule::Every(duration_in(
            p,
            &key.key("every"),
            Some(e),
            Duration::from_secs(900),
            (Duration::from_secs(10), 7 * DAY),
        )),
        (None, Some([])) => {
            p.error(
                &key.key("at"),
                "empty: list local times such as [\"08:30\"]",
            );
            default
        }
        (None, Some(list)) => {
            let mut times = Vec::new();
            for (i, s) in list.iter().enumerate() {
                match NaiveTime::parse_from_str(s.trim(), "%H:%M") {
                    Ok(t) if times.contains(&t) => {
                        p.error(&key.key("at").index(i), format!("{s:?} is listed twice"))
                    }
                    Ok(t) => times.push(t),
                    Err(_) => p.error(
                        &key.key("at").index(i),
                        format!("{s:?}: expected a local time HH:MM such as \"08:30\""),
                    ),
                }
            }
            times.sort();
            if times.is_empty() {
                default
            } else {
                Schedule::At(times)
            }
        }
        (None, None) => default,
    }
}

fn expire_after(p: &mut Problems, at: &KeyPath, v: Option<&str>, default: Duration) -> Duration {
    duration_in(p, at, v, default, (Duration::from_secs(60), 30 * DAY))
}

fn look_back(p: &mut Problems, at: &KeyPath, v: Option<&str>) -> Duration {
    duration_in(p, at, v, DAY, (Duration::ZERO, 366 * DAY))
}

/// Validates `[marketing]`; `base` is the config file's folder.
pub fn validate(raw: RawMarketing, base: &Path, at: &KeyPath, p: &mut Problems) -> MarketingConfig {
    let url = match raw.url.as_deref().map(str::trim) {
        None | Some("") => {
            p.error(
                &at.key("url"),
                "missing: sqlite:///path/to/file.db, postgres://user@host/db or mysql://user@host/db",
            );
            String::new()
        }
        Some(u) => {
            let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            match scheme.as_deref() {
                Some("sqlite") => {
                    let path = &u["sqlite://".len()..];
                    if path.is_empty() {
                        p.error(&at.key("url"), "sqlite:// needs a file path");
                        u.to_owned()
                    } else {
                        // A relative file is relative to the config file, like every path here.
                        format!("sqlite://{}", resolve(base, path).display())
                    }
                }
                Some("postgres" | "postgresql" | "mysql" | "mariadb") => u.to_owned(),
                _ => {
                    p.error(
                        &at.key("url"),
                        format!(
                            "{:?}: expected sqlite:///path, postgres://… or mysql://…",
                            crate::marketing::source::redact_url(u)
                        ),
                    );
                    u.to_owned()
                }
            }
        }
    };
    let (password, password_from) = match (raw.password_file, raw.password_env) {
        (Some(_), Some(_)) => {
            p.error(
                &at.key("password_env"),
                "set either password_file or password_env, not both",
            );
            (None, None)
        }
        (Some(f), None) => {
            let path = resolve(base, &f);
            match read_secret(&path) {
                Ok((s, world_readable)) => {
                    if world_readable {
                        p.warn(
                            &at.key("password_file"),
                            format!(
                                "{} is readable by every user; chmod 640 it (owner root, group gridsms)",
                                path.display()
                            ),
                        );
                    }
                    (Some(Secret::new(s)), Some(PasswordFrom::File(path)))
                }
                Err(e) => {
                    p.error(&at.key("password_file"), e);
                    (None, Some(PasswordFrom::File(path)))
                }
            }
        }
        (None, Some(var)) => match std::env::var(&var) {
            Ok(v) if !v.trim().is_empty() => {
                (Some(Secret::new(v.trim())), Some(PasswordFrom::Env(var)))
            }
            _ => {
                p.error(
                    &at.key("password_env"),
                    format!("environment variable {var} is not set or empty"),
                );
                (None, Some(PasswordFrom::Env(var)))
            }
        },
        (None, None) => (None, None),
    };
    let connect_timeout = duration_in(
        p,
        &at.key("connect_timeout"),
        raw.connect_timeout.as_deref(),
        Duration::from_secs(10),
        (Duration::from_millis(100), Duration::from_secs(600)),
    );
    let query_timeout = duration_in(
        p,
        &at.key("query_timeout"),
        raw.query_timeout.as_deref(),
        Duration::from_secs(60),
        (Duration::from_millis(100), Duration::from_secs(3600)),
    );
    let queries = raw.queries.unwrap_or_default();
    let parsed = match Queries::parse(queries.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(q) => q,
        Err(errors) => {
            for e in errors {
                let (name, msg) = match &e {
                    QueryConfigError::UnknownName(n) => (n.clone(), e.to_string()),
                    QueryConfigError::Sql { name, error } => (name.clone(), error.to_string()),
                    QueryConfigError::UnknownParam {
                        name,
                        param,
                        allowed,
                    } => (
                        name.clone(),
                        format!("unknown parameter :{param} (this query may use {allowed})"),
                    ),
                };
                let msg = msg
                    .strip_prefix(&format!("[marketing.queries] {name}: "))
                    .map(str::to_owned)
                    .unwrap_or(msg);
                p.error(&at.key("queries").key(&name), msg);
            }
            Queries::default()
        }
    };
    let has = |name: &str| queries.contains_key(name);
    let need = |p: &mut Problems, job: &str, enabled: bool, names: &[&str]| {
        if !enabled {
            return;
        }
        for n in names {
            if !has(n) {
                p.error(
                    &at.key(job),
                    format!("the {job} job needs [marketing.queries] {n} (or set enabled = false)"),
                );
            }
        }
    };
    // Bills and corrections: same keys, same defaults (every 15 min, expire after 3 days).
    let mut bill_like = |b: RawBills, job: &str| {
        let k = at.key(job);
        BillsJob {
            enabled: b.enabled.unwrap_or(true),
            schedule: schedule(
                b.every.as_deref(),
                b.at.as_deref(),
                Schedule::Every(Duration::from_secs(900)),
                &k,
                p,
            ),
            look_back: look_back(p, &k.key("look_back"), b.look_back.as_deref()),
            expire_after: expire_after(
                p,
                &k.key("expire_after"),
                b.expire_after.as_deref(),
                3 * DAY,
            ),
        }
    };
    let bills = raw.bills.map(|b| bill_like(b, "bills"));
    let corrections = raw.corrections.map(|c| bill_like(c, "corrections"));
    for (job, name) in [(&bills, "bills"), (&corrections, "corrections")] {
        if let Some(j) = job {
            need(p, name, j.enabled, &[name]);
        }
    }
    let reminders = raw.reminders.map(|r| {
        let k = at.key("reminders");
        let default_at = Schedule::At(vec![NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default()]);
        let job = RemindersJob {
            enabled: r.enabled.unwrap_or(true),
            schedule: schedule(r.every.as_deref(), r.at.as_deref(), default_at, &k, p),
            first_after_days: int_in(
                p,
                &k.key("first_after_days"),
                r.first_after_days,
                3,
                0..=365,
            ),
            every_days: int_in(p, &k.key("every_days"), r.every_days, 7, 1..=365),
            max_reminders: int_in(p, &k.key("max_reminders"), r.max_reminders, 3, 1..=100),
            expire_after: expire_after(p, &k.key("expire_after"), r.expire_after.as_deref(), DAY),
        };
        need(p, "reminders", job.enabled, &["arrears", "account_arrears"]);
        job
    });
    MarketingConfig {
        url,
        password,
        password_from,
        connect_timeout,
        query_timeout,
        queries,
        parsed: Arc::new(parsed),
        bills,
        corrections,
        reminders,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, parse};
    use std::path::Path;

    fn load(text: &str) -> Result<Config, Vec<String>> {
        parse(text, Path::new("/etc/gridsms/gridsms.toml"))
            .map(|l| l.config)
            .map_err(|e| e.diagnostics().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn no_section_no_jobs_and_relative_sqlite_is_beside_the_config() {
        assert!(load("").unwrap().marketing.is_none());
        let c = load(
            "[marketing]\nurl = \"sqlite://mk/demo.db\"\n\
             [marketing.queries]\nbills = \"SELECT 1 WHERE x >= :since\"\n\
             [marketing.bills]\nat = [\"14:00\", \"08:30\"]\n",
        )
        .unwrap();
        let m = c.marketing.unwrap();
        assert_eq!(m.url, "sqlite:///etc/gridsms/mk/demo.db");
        let bills = m.bills.unwrap();
        assert!(bills.enabled);
        assert_eq!(bills.schedule.to_string(), "at 08:30, 14:00");
        assert_eq!(bills.look_back, std::time::Duration::from_secs(86_400));
        assert_eq!(m.connect_timeout, std::time::Duration::from_secs(10));
    }

    #[test]
    fn every_problem_is_named() {
        let errs = load(
            "[marketing]\nurl = \"sqlite:///x.db\"\npassword_file = \"/nope\"\npassword_env = \"X\"\n\
             [marketing.queries]\nbils = \"SELECT 1\"\narrears = \"SELECT :feeder\"\n\
             [marketing.bills]\nevery = \"15m\"\nat = [\"08:00\"]\n\
             [marketing.reminders]\nat = [\"25:00\"]\nmax_reminders = 0\n",
        )
        .unwrap_err();
        let all = errs.join("\n");
        for needle in [
            "marketing.password_env: set either password_file or password_env",
            "marketing.queries.bils: ",
            "marketing.queries.arrears: unknown parameter :feeder",
            "marketing.bills.at: set either every or at",
            "marketing.bills: the bills job needs [marketing.queries] bills",
            "marketing.reminders.at[0]: \"25:00\"",
            "marketing.reminders.max_reminders: 0 is out of range",
            "marketing.reminders: the reminders job needs [marketing.queries] account_arrears",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn password_never_printed() {
        // SAFETY-free: a unique variable name, set before parsing, read once.
        let var = "GRIDSMS_TEST_MK_PASSWORD_7f3a";
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var(var, "hunter2-secret") };
        let c = load(&format!(
            "[marketing]\nurl = \"postgres://ro:inline-pw@db/mk\"\npassword_env = \"{var}\"\n"
        ))
        .unwrap();
        let m = c.marketing.as_ref().unwrap();
        assert_eq!(m.password.as_ref().unwrap().expose(), "hunter2-secret");
        let text = c.to_toml().unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("inline-pw"), "{text}");
        assert!(text.contains(var), "{text}");
    }
}
