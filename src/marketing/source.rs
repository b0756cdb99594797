//! The one interface to the bureau's marketing (billing) database, whatever engine it runs on.
//!
//! A [`Source`] runs the site's own SQL (from the config) with named parameters (`:since`,
//! `:feeder`, `:account`) and hands rows back one by one over a bounded channel
//! ([`RowStream`]), so a result of any size — 263,000 bills — is never held in memory at once,
//! and a slow consumer (the outbox) slows the read instead of growing a buffer.
//!
//! Adapters are chosen by the URL scheme: `sqlite://` ([`super::sqlite`]), `postgres://`
//! ([`super::postgres`]), `mysql://` ([`super::mysql`]). Every adapter opens its session
//! read-only and bounds every wait (connect, each row) with a timeout; a timeout or a lost
//! connection is a [`SourceError`], which the jobs treat as "database down: wait and retry".
//!
//! Values are normalised into [`Value`] so jobs read a row the same way on every engine:
//! money may arrive as DECIMAL, NUMERIC, REAL or text and is read with [`Row::cents`]; column
//! names compare case-insensitively (Oracle-derived schemas upper-case them).

use crate::config::Secret;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A boxed future, so [`Source`] stays object-safe (`Arc<dyn Source>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Rows in flight between an adapter and its consumer. Small: the point is back-pressure.
pub const ROW_CHANNEL_CAPACITY: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("marketing database URL {0:?}: expected sqlite:///path, postgres://… or mysql://…")]
    BadUrl(String),
    #[error("cannot connect to the marketing database: {0}")]
    Connect(String),
    #[error("marketing database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("marketing query failed: {0}")]
    Query(String),
    #[error("query parameter :{0} has no value")]
    MissingParam(String),
    #[error("bad SQL: {0}")]
    Sql(String),
    #[error("{0} support is not built in yet")]
    Unsupported(&'static str),
}

impl SourceError {
    /// True when waiting and trying again may help (the database is down or slow), false for
    /// errors in the site's SQL that only a config change fixes.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Connect(_) | SourceError::Timeout(_))
    }
}

/// One value of a result row, the same on every engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    /// Text, and exact decimals (DECIMAL/NUMERIC arrive as their decimal text).
    Text(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    /// A timestamp without zone: local time of the bureau (the usual marketing schema).
    DateTime(NaiveDateTime),
    /// A timestamp with zone (PostgreSQL `timestamptz`).
    Instant(DateTime<Utc>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Value::Instant(t)
    }
}

/// Why one field of a row could not be read as asked; the job skips the row with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("column {0} is not in the result")]
    NoColumn(String),
    #[error("column {column}: {value} is not {wanted}")]
    Type {
        column: String,
        value: String,
        wanted: &'static str,
    },
}

/// The column names of a result, shared by all its rows.
#[derive(Debug, PartialEq)]
pub struct Columns(Vec<String>);

impl Columns {
    pub fn new(names: Vec<String>) -> Arc<Columns> {
        Arc::new(Columns(names))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|c| c.eq_ignore_ascii_case(name))
    }
}

/// One result row: values addressed by column name.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<Columns>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(columns: Arc<Columns>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The raw value; `None` when the result has no such column.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.columns.index(column).and_then(|i| self.values.get(i))
    }

    fn field(&self, column: &str) -> Result<&Value, FieldError> {
        self.get(column)
            .ok_or_else(|| FieldError::NoColumn(column.to_owned()))
    }

    fn type_error(column: &str, value: &Value, wanted: &'static str) -> FieldError {
        let mut shown = format!("{value:?}");
        shown.truncate(60);
        FieldError::Type {
            column: column.to_owned(),
            value: shown,
            wanted,
        }
    }

    /// Text, trimmed; numbers are rendered. `None` for NULL or blank.
    pub fn text(&self, column: &str) -> Result<Option<String>, FieldError> {
        let s = match self.field(column)? {
            Value::Null => return Ok(None),
            Value::Text(s) => s.trim().to_owned(),
            Value::Int(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => s.trim().to_owned(),
                Err(_) => return Err(Self::type_error(column, &Value::Null, "UTF-8 text")),
            },
            Value::Date(d) => d.to_string(),
            Value::DateTime(t) => t.to_string(),
            Value::Instant(t) => t.to_rfc3339(),
        };
        Ok((!s.is_empty()).then_some(s))
    }

    /// An integer; text holding an integer is accepted.
    pub fn int(&self, column: &str) -> Result<Option<i64>, FieldError> {
        match self.field(column)? {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(*n)),
            Value::Text(s) if s.trim().is_empty() => Ok(None),
            v @ Value::Text(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Self::type_error(column, v, "an integer")),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(*f as i64)),
            v => Err(Self::type_error(column, v, "an integer")),
        }
    }

    /// A decimal quantity (kWh), as f64 for display.
    pub fn number(&self, column: &str) -> Result<Option<f64>, FieldError> {
        match self.field(column)? {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(*n as f64)),
            Value::Float(f) if f.is_finite() => Ok(Some(*f)),
            Value::Text(s) if s.trim().is_empty() => Ok(None),
            v @ Value::Text(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| Self::type_error(column, v, "a number")),
            v => Err(Self::type_error(column, v, "a number")),
        }
    }

    /// Money in fen (1/100 yuan), read exactly from decimal text; floats are rounded to the
    /// nearest fen. Negative amounts are returned as such: the job decides what they mean.
    pub fn cents(&self, column: &str) -> Result<Option<i64>, FieldError> {
        match self.field(column)? {
            Value::Null => Ok(None),
            Value::Int(n) => n
                .checked_mul(100)
                .map(Some)
                .ok_or_else(|| Self::type_error(column, &Value::Int(*n), "an amount")),
            v @ Value::Float(f) => {
                let c = (f * 100.0).round();
                if c.is_finite() && c.abs() < 9.0e15 {
                    Ok(Some(c as i64))
                } else {
                    Err(Self::type_error(column, v, "an amount"))
                }
            }
            Value::Text(s) if s.trim().is_empty() => Ok(None),
            v @ Value::Text(s) => parse_cents(s.trim())
                .ok_or_else(|| Self::type_error(column, v, "an amount"))
                .map(Some),
            v => Err(Self::type_error(column, v, "an amount")),
        }
    }

    /// A calendar date; timestamps give their date, text may be `2026-11-28`, `2026/11/28` or
    /// `20261128`.
    pub fn date(&self, column: &str) -> Result<Option<NaiveDate>, FieldError> {
        match self.field(column)? {
            Value::Null => Ok(None),
            Value::Date(d) => Ok(Some(*d)),
            Value::DateTime(t) => Ok(Some(t.date())),
            Value::Instant(t) => Ok(Some(t.date_naive())),
            Value::Text(s) if s.trim().is_empty() => Ok(None),
            v @ Value::Text(s) => parse_date(s.trim())
                .or_else(|| parse_datetime(s.trim()).map(|t| t.date()))
                .map(Some)
                .ok_or_else(|| Self::type_error(column, v, "a date")),
            v => Err(Self::type_error(column, v, "a date")),
        }
    }

    /// A point in time. Zone-less values are local time in `tz` (the bureau's zone).
    pub fn instant<Tz: TimeZone>(
        &self,
        column: &str,
        tz: &Tz,
    ) -> Result<Option<DateTime<Utc>>, FieldError> {
        let local = match self.field(column)? {
            Value::Null => return Ok(None),
            Value::Instant(t) => return Ok(Some(*t)),
            Value::DateTime(t) => *t,
            Value::Date(d) => d.and_time(NaiveTime::MIN),
            Value::Text(s) if s.trim().is_empty() => return Ok(None),
            v @ Value::Text(s) => {
                let s = s.trim();
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    return Ok(Some(t.with_timezone(&Utc)));
                }
                parse_datetime(s)
                    .or_else(|| parse_date(s).map(|d| d.and_time(NaiveTime::MIN)))
                    .ok_or_else(|| Self::type_error(column, v, "a date and time"))?
            }
            v => return Err(Self::type_error(column, v, "a date and time")),
        };
        // A local time skipped or repeated by a DST change (not in China, but the zone is
        // configurable) takes the earliest reading.
        tz.from_local_datetime(&local)
            .earliest()
            .map(|t| Some(t.with_timezone(&Utc)))
            .ok_or_else(|| Self::type_error(column, &Value::DateTime(local), "a valid local time"))
    }
}

/// `-12.3` → -1230; at most two decimals (a third non-zero decimal is not money).
pub fn parse_cents(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 2 {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut fen = frac.parse::<i64>().unwrap_or(0);
    if frac.len() == 1 {
        fen *= 10;
    }
    let v = whole.checked_mul(100)?.checked_add(fen)?;
    Some(if neg { -v } else { v })
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

/// The site's SQL with its named parameters found. `:name` outside string literals, quoted
/// identifiers and comments is a parameter; PostgreSQL's `::type` casts are not.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    sql: String,
    /// Byte ranges of each `:name` occurrence in `sql`, in order, with the name.
    occurrences: Vec<(std::ops::Range<usize>, String)>,
}

impl Query {
    pub fn parse(sql: &str) -> Result<Query, SourceError> {
        let b = sql.as_bytes();
        let mut occurrences = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                q @ (b'\'' | b'"' | b'`') => {
                    // Literal or quoted identifier; a doubled quote is an escaped quote.
                    i += 1;
                    loop {
                        match b.get(i) {
                            None => {
                                return Err(SourceError::Sql(format!(
                                    "unterminated {} quote",
                                    q as char
                                )));
                            }
                            Some(&c) if c == q && b.get(i + 1) == Some(&q) => i += 2,
                            Some(&c) if c == q => break,
                            Some(b'\\') if q == b'\'' => i += 2,
                            Some(_) => i += 1,
                        }
                    }
                    i += 1;
                }
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'*') => match sql[i + 2..].find("*/") {
                    Some(end) => i += 2 + end + 2,
                    None => return Err(SourceError::Sql("unterminated /* comment".into())),
                },
                b':' if b.get(i + 1) == Some(&b':') => i += 2,
                b':' if b
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
                {
                    let start = i;
                    i += 1;
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                        i += 1;
                    }
                    occurrences.push((start..i, sql[start + 1..i].to_ascii_lowercase()));
                }
                _ => i += 1,
            }
        }
        Ok(Query {
            sql: sql.to_owned(),
            occurrences,
        })
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Distinct parameter names, in order of first use.
    pub fn param_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (_, n) in &self.occurrences {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        names
    }

    /// The SQL with engine placeholders, and for each placeholder (in order) the parameter
    /// name it takes. PostgreSQL and SQLite number placeholders (a name used twice is bound
    /// once); MySQL's `?` is positional, so a repeated name is bound at each use.
    pub fn positional(&self, engine: Engine) -> (String, Vec<&str>) {
        let distinct = self.param_names();
        let mut out = String::with_capacity(self.sql.len());
        let mut order = Vec::new();
        let mut last = 0;
        for (range, name) in &self.occurrences {
            out.push_str(&self.sql[last..range.start]);
            let n = distinct.iter().position(|d| d == name).unwrap_or(0) + 1;
            match engine {
                Engine::Postgres => out.push_str(&format!("${n}")),
                Engine::Sqlite => out.push_str(&format!("?{n}")),
                Engine::Mysql => {
                    out.push('?');
                    order.push(name.as_str());
                }
            }
            last = range.end;
        }
        out.push_str(&self.sql[last..]);
        if engine != Engine::Mysql {
            order = distinct;
        }
        (out, order)
    }

    /// The values for [`Query::positional`]'s order, from named `params`.
    pub fn bind<'p>(
        &self,
        engine: Engine,
        params: &'p [(&str, Value)],
    ) -> Result<(String, Vec<&'p Value>), SourceError> {
        let (sql, order) = self.positional(engine);
        let values = order
            .into_iter()
            .map(|name| {
                params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
                    .ok_or_else(|| SourceError::MissingParam(name.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((sql, values))
    }
}

/// Rows of a running query. Dropping it stops the query.
pub struct RowStream {
    rx: mpsc::Receiver<Result<Row, SourceError>>,
    row_timeout: Duration,
}

impl RowStream {
    /// A stream and the sender an adapter feeds. `row_timeout` bounds the wait for each row
    /// (the first one included), so a hung database cannot hang a job.
    pub fn channel(row_timeout: Duration) -> (mpsc::Sender<Result<Row, SourceError>>, RowStream) {
        let (tx, rx) = mpsc::channel(ROW_CHANNEL_CAPACITY);
        (tx, RowStream { rx, row_timeout })
    }

    /// A stream that yields one error (adapters report set-up failures this way).
    pub fn failed(error: SourceError) -> RowStream {
        let (tx, stream) = RowStream::channel(Duration::from_secs(1));
        let _ = tx.try_send(Err(error));
        stream
    }

    /// The next row, `None` at the end. An error ends the stream.
    pub async fn next(&mut self) -> Option<Result<Row, SourceError>> {
        match tokio::time::timeout(self.row_timeout, self.rx.recv()).await {
            Ok(item) => item,
            Err(_) => {
                self.rx.close();
                Some(Err(SourceError::Timeout(self.row_timeout)))
            }
        }
    }
}

/// How to reach the marketing database.
#[derive(Clone)]
pub struct SourceConfig {
    pub url: String,
    /// From `password_file` or the environment; never logged.
    pub password: Option<Secret>,
    pub connect_timeout: Duration,
    /// Bounds each statement on the server (where the engine supports it) and each wait for a
    /// row here.
    pub query_timeout: Duration,
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .finish()
    }
}

/// The URL with any password replaced, for logs and status.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{masked}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A read-only connection to the marketing database.
pub trait Source: Send + Sync {
    fn engine(&self) -> Engine;

    /// The columns `query` yields, found by preparing it (not running it); checks the SQL and
    /// the required aliases at start-up and in `check-config`.
    fn columns<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<Vec<String>, SourceError>>;

    /// Run `query`; rows arrive as the database produces them.
    fn stream(&self, query: &Query, params: &[(&str, Value)]) -> RowStream;

    /// A cheap round trip, for status and for waiting until the database is back.
    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>>;
}

/// Opens the adapter `config.url` names. Does not connect yet where the engine allows it:
/// a database that is down at start-up must not stop the daemon.
pub fn open(config: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    let url = config.url.trim();
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => Ok(Arc::new(super::sqlite::SqliteSource::new(config)?)),
        Some("postgres" | "postgresql") => super::postgres::open(config),
        Some("mysql" | "mariadb") => super::mysql::open(config),
        _ => Err(SourceError::BadUrl(redact_url(url))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parameters_outside_literals_comments_and_casts() {
        let q = Query::parse(
            "SELECT a::text, ':nope' AS \"x:y\" -- :comment\n FROM t /* :c */ \
             WHERE f = :feeder AND p > :since AND g = :Feeder",
        )
        .unwrap();
        assert_eq!(q.param_names(), vec!["feeder", "since"]);
        let (pg, order) = q.positional(Engine::Postgres);
        assert!(pg.ends_with("f = $1 AND p > $2 AND g = $1"), "{pg}");
        assert_eq!(order, vec!["feeder", "since"]);
        let (my, order) = q.positional(Engine::Mysql);
        assert!(my.ends_with("f = ? AND p > ? AND g = ?"), "{my}");
        assert_eq!(order, vec!["feeder", "since", "feeder"]);
        let (lite, _) = q.positional(Engine::Sqlite);
        assert!(lite.ends_with("f = ?1 AND p > ?2 AND g = ?1"), "{lite}");
    }

    #[test]
    fn escaped_quotes_and_unterminated_input() {
        let q = Query::parse("SELECT 'it''s :x' FROM t WHERE a = :a").unwrap();
        assert_eq!(q.param_names(), vec!["a"]);
        assert!(Query::parse("SELECT 'open").is_err());
        assert!(Query::parse("SELECT 1 /* open").is_err());
    }

    #[test]
    fn binding_names_every_missing_parameter() {
        let q = Query::parse("SELECT * FROM t WHERE a = :account").unwrap();
        let err = q
            .bind(Engine::Sqlite, &[("since", Value::Int(1))])
            .unwrap_err();
        assert_eq!(err.to_string(), "query parameter :account has no value");
        let params = [("ACCOUNT", Value::from("42"))];
        let (_, vals) = q.bind(Engine::Sqlite, &params).unwrap();
        assert_eq!(vals, vec![&Value::Text("42".into())]);
    }

    #[test]
    fn money_is_read_exactly() {
        assert_eq!(parse_cents("123.45"), Some(12345));
        assert_eq!(parse_cents("123.4"), Some(12340));
        assert_eq!(parse_cents("-0.05"), Some(-5));
        assert_eq!(parse_cents("7"), Some(700));
        assert_eq!(parse_cents("1.2300"), Some(123));
        assert_eq!(parse_cents("1.234"), None);
        assert_eq!(parse_cents("1e3"), None);
        assert_eq!(parse_cents("."), None);
        let cols = Columns::new(vec!["AMOUNT".into(), "f".into(), "n".into()]);
        let row = Row::new(
            cols,
            vec![
                Value::Text("88.10".into()),
                Value::Float(0.1 + 0.2),
                Value::Null,
            ],
        );
        assert_eq!(row.cents("amount"), Ok(Some(8810)));
        assert_eq!(row.cents("f"), Ok(Some(30)));
        assert_eq!(row.cents("n"), Ok(None));
        assert!(matches!(row.cents("missing"), Err(FieldError::NoColumn(_))));
    }

    #[test]
    fn dates_and_local_times() {
        let cols = Columns::new(vec!["d".into(), "t".into(), "bad".into()]);
        let row = Row::new(
            cols,
            vec![
                Value::Text("2026/11/28".into()),
                Value::Text("2026-11-28 08:30:00".into()),
                Value::Text("soon".into()),
            ],
        );
        assert_eq!(
            row.date("d").unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 28)
        );
        let t = row
            .instant("t", &chrono_tz::Asia::Shanghai)
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T00:30:00+00:00");
        assert!(row.date("bad").is_err());
    }

    #[test]
    fn passwords_never_shown() {
        assert_eq!(
            redact_url("postgres://sms:s3cret@db.local:5432/mk"),
            "postgres://sms:***@db.local:5432/mk"
        );
        assert_eq!(redact_url("mysql://ro@h/db"), "mysql://ro@h/db");
        assert_eq!(redact_url("sqlite:///var/x.db"), "sqlite:///var/x.db");
    }
}
