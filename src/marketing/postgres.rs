//! PostgreSQL-protocol marketing source (PostgreSQL, KingbaseES, openGauss/GaussDB), over
//! tokio-postgres with a small deadpool pool.
//!
//! Read-only twice over: every session starts with `default_transaction_read_only=on` (a
//! startup option, appended to any `options` the URL carries), and every query runs inside an
//! explicit `BEGIN READ ONLY` transaction, so neither a site query nor a function it calls can
//! write. `statement_timeout` (same startup option) bounds each statement on the server; every
//! wait here is bounded too (connect, pool checkout, each fetch).
//!
//! Rows stream through a portal fetched [`FETCH_ROWS`] at a time: memory stays flat whatever
//! the result size, a slow consumer simply delays the next fetch, and a consumer that drops
//! its [`RowStream`] ends the query at the next batch (the transaction is rolled back and the
//! connection goes back to the pool clean).
//!
//! Values come back in the binary protocol and are mapped to [`Value`] here; NUMERIC is decoded
//! to exact decimal text (any precision). Parameters go out in the text format and the server
//! converts them to whatever type it inferred, so `:since` given as text works against a
//! `timestamp`, a `date` or a `varchar` column alike.

use super::source::{
    BoxFuture, Columns, Engine, Query, Row, RowStream, Source, SourceConfig, SourceError, Value,
    redact_url,
};
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use futures_util::StreamExt;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Statement};

/// Connections kept per source: jobs run one query at a time, lookups (inbound replies, staff)
/// add a few.
const POOL_SIZE: usize = 4;

/// Rows per portal fetch: large enough that round trips do not dominate, small enough that an
/// abandoned query stops quickly.
pub const FETCH_ROWS: i32 = 500;

/// Slack on top of the server-side statement timeout before we give up on a reply ourselves
/// (a dead network never answers at all).
const CLIENT_SLACK: Duration = Duration::from_secs(5);

pub struct PostgresSource {
    pool: Pool,
    /// For errors and logs only: the password is masked.
    shown_url: String,
    connect_timeout: Duration,
    query_timeout: Duration,
}

pub fn open(config: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    Ok(Arc::new(PostgresSource::new(config)?))
}

impl PostgresSource {
    /// Builds the pool; connects lazily, so a database that is down does not stop start-up.
    pub fn new(config: &SourceConfig) -> Result<PostgresSource, SourceError> {
        let shown_url = redact_url(config.url.trim());
        let mut pg: tokio_postgres::Config = config
            .url
            .trim()
            .parse()
            .map_err(|e| SourceError::BadUrl(format!("{shown_url}: {e}")))?;
        if let Some(password) = &config.password {
            pg.password(password.expose());
        }
        pg.connect_timeout(config.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("gridsms");
        }
        let ms = config.query_timeout.as_millis().max(1);
        let ours = format!("-c default_transaction_read_only=on -c statement_timeout={ms}");
        // Keep the URL's own options (a search_path, say); ours come last so they win.
        let options = match pg.get_options() {
            Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
            _ => ours,
        };
        pg.options(options);
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                // Checks a pooled connection with an empty query before handing it out, so a
                // server restart costs no failed poll.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .wait_timeout(Some(config.query_timeout))
            .build()
            .map_err(|e| SourceError::Connect(format!("{shown_url}: {e}")))?;
        Ok(PostgresSource {
            pool,
            shown_url,
            connect_timeout: config.connect_timeout,
            query_timeout: config.query_timeout,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, SourceError> {
        checkout(
            &self.pool,
            &self.shown_url,
            self.connect_timeout,
            self.query_timeout,
        )
        .await
    }
}

async fn checkout(
    pool: &Pool,
    shown_url: &str,
    connect_timeout: Duration,
    query_timeout: Duration,
) -> Result<deadpool_postgres::Object, SourceError> {
    match pool.get().await {
        Ok(client) => Ok(client),
        // Every pooled connection busy for longer than a query may take.
        Err(PoolError::Timeout(TimeoutType::Wait)) => Err(SourceError::Timeout(query_timeout)),
        Err(PoolError::Timeout(_)) => Err(SourceError::Timeout(connect_timeout)),
        Err(PoolError::Backend(e)) => Err(SourceError::Connect(format!(
            "{shown_url}: {}",
            describe(&e)
        ))),
        Err(e) => Err(SourceError::Connect(format!("{shown_url}: {e}"))),
    }
}

/// Awaits `fut` a little longer than `timeout` (the server enforces `timeout` itself); a
/// silent server or network is a transient timeout.
async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(timeout + CLIENT_SLACK, fut).await {
        Ok(r) => r.map_err(|e| classify(&e, timeout)),
        Err(_) => Err(SourceError::Timeout(timeout)),
    }
}

/// One query through a portal inside a read-only transaction, rows into `tx`.
async fn run_query(
    pool: Pool,
    shown_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    sql: String,
    values: Vec<Value>,
    tx: &mpsc::Sender<Result<Row, SourceError>>,
) -> Result<(), SourceError> {
    let mut client = checkout(&pool, &shown_url, connect_timeout, timeout).await?;
    let txn = bounded(timeout, client.build_transaction().read_only(true).start()).await?;
    let stmt = bounded(timeout, txn.prepare(&sql)).await?;
    let columns = Columns::new(column_names(&stmt));
    let portal = bounded(timeout, txn.bind_raw(&stmt, values.iter().map(Param))).await?;
    'fetch: loop {
        let batch = bounded(timeout, txn.query_portal_raw(&portal, FETCH_ROWS)).await?;
        let mut batch = std::pin::pin!(batch);
        loop {
            let item = tokio::time::timeout(timeout + CLIENT_SLACK, batch.next())
                .await
                .map_err(|_| SourceError::Timeout(timeout))?;
            match item {
                None => break,
                Some(Err(e)) => return Err(classify(&e, timeout)),
                Some(Ok(row)) => {
                    // An unreadable value ends the stream with its error (sent by the caller).
                    let row = to_row(&columns, &row)?;
                    if tx.send(Ok(row)).await.is_err() {
                        // Consumer gone: the rollback below closes the portal, which ends
                        // the query on the server.
                        break 'fetch;
                    }
                }
            }
        }
        // CommandComplete (rather than PortalSuspended) ended the batch: no more rows.
        if batch.rows_affected().is_some() {
            break;
        }
    }
    // Nothing was written: rolling back is the cheapest way to end the transaction.
    bounded(timeout, txn.rollback()).await
}

/// The server's message with its SQLSTATE, or the client error; never the connection string.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                s.push_str(&format!("; {detail}"));
            }
            s
        }
        None => match e.source() {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Connection trouble and cancelled statements are transient; anything else the server said
/// about the SQL is a query error.
fn classify(e: &tokio_postgres::Error, timeout: Duration) -> SourceError {
    let Some(db) = e.as_db_error() else {
        // No server message: the socket closed, an I/O error, a protocol surprise.
        return SourceError::Connect(describe(e));
    };
    let code = db.code().code();
    if code == "57014" {
        // query_canceled: statement_timeout fired.
        SourceError::Timeout(timeout)
    } else if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") {
        // connection exception, admin shutdown / crash recovery, insufficient resources.
        SourceError::Connect(describe(e))
    } else {
        SourceError::Query(describe(e))
    }
}

/// One bound parameter, sent as text (bytea as bytes) for the server to convert.
#[derive(Debug)]
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        let text = match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Bytes(b) if *ty == Type::BYTEA => {
                out.extend_from_slice(b);
                return Ok(IsNull::No);
            }
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(s) => s.clone(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::DateTime(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            Value::Instant(t) => t.format("%Y-%m-%d %H:%M:%S%.f+00").to_string(),
        };
        out.extend_from_slice(text.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        match self.0 {
            Value::Bytes(_) if *ty == Type::BYTEA => Format::Binary,
            _ => Format::Text,
        }
    }

    to_sql_checked!();
}

/// One result cell, decoded from the binary protocol by its column type.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, Box<dyn StdError + Sync + Send>> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> Result<Cell, Box<dyn StdError + Sync + Send>> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[derive(Debug, thiserror::Error)]
#[error("type {0} is not supported")]
struct UnsupportedType(String);

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, Box<dyn StdError + Sync + Send>> {
    Ok(match *ty {
        Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
        Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
        Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
        Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
        Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
        Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)?.into()),
        Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
        Type::NUMERIC => Value::Text(numeric_text(raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            Value::Text(std::str::from_utf8(raw)?.to_owned())
        }
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => Value::Text(std::str::from_utf8(json)?.to_owned()),
            _ => return Err("unknown jsonb version".into()),
        },
        Type::BYTEA => Value::Bytes(raw.to_vec()),
        Type::DATE => Value::Date(NaiveDate::from_sql(ty, raw)?),
        Type::TIMESTAMP => Value::DateTime(NaiveDateTime::from_sql(ty, raw)?),
        Type::TIMESTAMPTZ => Value::Instant(DateTime::<Utc>::from_sql(ty, raw)?),
        Type::TIME => Value::Text(NaiveTime::from_sql(ty, raw)?.to_string()),
        Type::UUID => Value::Text(uuid_text(raw)?),
        _ => match ty.kind() {
            // Enum labels travel as their text; a domain as its base type.
            Kind::Enum(_) => Value::Text(std::str::from_utf8(raw)?.to_owned()),
            Kind::Domain(base) => decode(base, raw)?,
            // Extension text types (citext, KingbaseES/openGauss varchar2 and friends) send
            // their text as is.
            _ if ty.name().contains("char") || ty.name().contains("text") => {
                Value::Text(std::str::from_utf8(raw)?.to_owned())
            }
            _ => return Err(Box::new(UnsupportedType(ty.name().to_owned()))),
        },
    })
}

/// NUMERIC's binary form (base-10000 digits, weight, sign, display scale) as exact decimal
/// text: `-1234.50` stays `-1234.50`, 38-digit values included.
pub fn numeric_text(raw: &[u8]) -> Result<String, Box<dyn StdError + Sync + Send>> {
    let word = |i: usize| -> Result<u16, Box<dyn StdError + Sync + Send>> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i64;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err("bad numeric sign".into()),
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        let d = word(8 + 2 * i)?;
        if d > 9999 {
            return Err("bad numeric digit".into());
        }
        digits.push(d);
    }
    let group = |i: i64| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&group(0).to_string());
        for i in 1..=weight {
            out.push_str(&format!("{:04}", group(i)));
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", group(i)));
            i += 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    Ok(out)
}

fn uuid_text(raw: &[u8]) -> Result<String, Box<dyn StdError + Sync + Send>> {
    if raw.len() != 16 {
        return Err("bad uuid".into());
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

fn to_row(columns: &Arc<Columns>, row: &tokio_postgres::Row) -> Result<Row, SourceError> {
    let mut values = Vec::with_capacity(columns.names().len());
    for (i, col) in row.columns().iter().enumerate() {
        match row.try_get::<_, Cell>(i) {
            Ok(Cell(v)) => values.push(v),
            Err(e) => {
                let why = e.source().map(|s| s.to_string()).unwrap_or(e.to_string());
                return Err(SourceError::Query(format!(
                    "column {}: {why}; cast it to text in the query ({}::text)",
                    col.name(),
                    col.name()
                )));
            }
        }
    }
    Ok(Row::new(columns.clone(), values))
}

fn column_names(stmt: &Statement) -> Vec<String> {
    stmt.columns().iter().map(|c| c.name().to_owned()).collect()
}

impl Source for PostgresSource {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn columns<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        Box::pin(async move {
            let (sql, _) = query.positional(Engine::Postgres);
            let client = self.client().await?;
            let stmt = bounded(self.query_timeout, client.prepare(&sql)).await?;
            Ok(column_names(&stmt))
        })
    }

    fn stream(&self, query: &Query, params: &[(&str, Value)]) -> RowStream {
        let (sql, values) = match query.bind(Engine::Postgres, params) {
            Ok((sql, values)) => (sql, values.into_iter().cloned().collect::<Vec<_>>()),
            Err(e) => return RowStream::failed(e),
        };
        let (tx, stream) = RowStream::channel(self.query_timeout);
        let pool = self.pool.clone();
        let shown_url = self.shown_url.clone();
        let (connect_timeout, query_timeout) = (self.connect_timeout, self.query_timeout);
        tokio::spawn(async move {
            if let Err(e) = run_query(
                pool,
                shown_url,
                connect_timeout,
                query_timeout,
                sql,
                values,
                &tx,
            )
            .await
            {
                let _ = tx.send(Err(e)).await;
            }
        });
        stream
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let client = self.client().await?;
            bounded(self.connect_timeout, client.simple_query("SELECT 1"))
                .await
                .map(drop)
                .map_err(|e| match e {
                    SourceError::Query(m) => SourceError::Connect(m),
                    other => other,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NUMERIC's wire form: ndigits, weight, sign, dscale, then base-10000 digits.
    fn wire(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numeric_wire_form_to_exact_text() {
        let cases: &[(Vec<u8>, &str)] = &[
            (wire(0, 0, 2, &[123, 4500]), "123.45"),
            (wire(-1, 0x4000, 2, &[500]), "-0.05"),
            (wire(0, 0, 0, &[]), "0"),
            (wire(0, 0, 2, &[]), "0.00"),
            (wire(1, 0, 0, &[1]), "10000"),
            (wire(-2, 0, 8, &[1]), "0.00000001"),
            (wire(2, 0x4000, 1, &[12, 3456, 7890, 1000]), "-1234567890.1"),
            (wire(0, 0xC000, 0, &[]), "NaN"),
        ];
        for (raw, want) in cases {
            assert_eq!(numeric_text(raw).unwrap(), *want);
        }
        assert!(numeric_text(&[0, 1]).is_err());
        assert!(numeric_text(&wire(0, 0, 0, &[10000])).is_err());
        assert!(numeric_text(&wire(0, 0x1234, 0, &[1])).is_err());
    }

    #[test]
    fn errors_never_carry_the_password() {
        let config = SourceConfig {
            url: "postgres://ro:hunter2@127.0.0.1:1/mk?sslmode=bogus".into(),
            password: None,
            connect_timeout: Duration::from_secs(1),
            query_timeout: Duration::from_secs(1),
        };
        let err = PostgresSource::new(&config).err().unwrap();
        assert!(matches!(err, SourceError::BadUrl(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
