//! MySQL-protocol marketing source (MySQL, MariaDB, OceanBase, TiDB), over mysql_async and
//! its pool.
//!
//! Every checkout first runs `SET SESSION TRANSACTION READ ONLY` (so whatever an earlier query
//! did to the session, the next one cannot write) and the engine's statement time limit:
//! MySQL's `max_execution_time` (ms, SELECT only), else MariaDB's `max_statement_time` (s),
//! else none (found once per source; a server with neither is only bounded by our own waits).
//! Connect and every read are bounded here too.
//!
//! Rows stream from the socket one by one through the bounded [`RowStream`] channel: a slow
//! consumer leaves the server blocked on its send buffer, memory stays flat. A consumer that
//! drops the stream ends the query with `KILL QUERY` from a second connection; the first is
//! drained and goes back to the pool.
//!
//! DECIMAL arrives as its exact text; DATE as a date, DATETIME/TIMESTAMP as local date-times
//! (TIMESTAMP in the session time zone, the server's default); text in utf8mb4.

use super::source::{
    BoxFuture, Columns, Engine, Query, Row, RowStream, Source, SourceConfig, SourceError, Value,
    redact_url,
};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Connections kept per source (see the PostgreSQL adapter).
const POOL_SIZE: usize = 4;

/// Slack on top of the server-side limit before we stop waiting ourselves.
const CLIENT_SLACK: Duration = Duration::from_secs(5);

/// The character set id MySQL gives binary strings (BLOB, VARBINARY).
const BINARY_CHARSET: u16 = 63;

/// Which statement time limit the server understands, found on first use.
const LIMIT_UNKNOWN: u8 = 0;
const LIMIT_MYSQL: u8 = 1;
const LIMIT_MARIADB: u8 = 2;
const LIMIT_NONE: u8 = 3;

pub struct MysqlSource {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    shown_url: String,
    connect_timeout: Duration,
    query_timeout: Duration,
    limit_kind: AtomicU8,
}

pub fn open(config: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    Ok(Arc::new(MysqlSource::new(config)?))
}

impl MysqlSource {
    /// Builds the pool; connects lazily, so a database that is down does not stop start-up.
    pub fn new(config: &SourceConfig) -> Result<MysqlSource, SourceError> {
        let url = config.url.trim();
        let shown_url = redact_url(url);
        // mysql_async knows only the mysql:// scheme.
        let url = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mariadb") => {
                format!("mysql://{rest}")
            }
            _ => url.to_owned(),
        };
        let opts =
            Opts::from_url(&url).map_err(|e| SourceError::BadUrl(format!("{shown_url}: {e}")))?;
        let constraints = PoolConstraints::new(0, POOL_SIZE)
            .ok_or_else(|| SourceError::BadUrl("pool size".into()))?;
        let mut builder = OptsBuilder::from_opts(opts)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    // We set the session up on every checkout anyway; a reset would cost a
                    // round trip and undo it.
                    .with_reset_connection(false)
                    .with_inactive_connection_ttl(Duration::from_secs(60)),
            )
            // Also on connect, so even a connection we never set up ourselves is read-only.
            .setup(vec!["SET SESSION TRANSACTION READ ONLY"])
            .tcp_keepalive(Some(Duration::from_secs(30)));
        if let Some(password) = &config.password {
            builder = builder.pass(Some(password.expose()));
        }
        Ok(MysqlSource {
            inner: Arc::new(Inner {
                pool: Pool::new(builder),
                shown_url,
                connect_timeout: config.connect_timeout,
                query_timeout: config.query_timeout,
                limit_kind: AtomicU8::new(LIMIT_UNKNOWN),
            }),
        })
    }
}

impl Inner {
    /// A pooled connection, read-only and time-limited. A pooled connection the server has
    /// closed meanwhile (wait_timeout, restart) fails its set-up; one fresh attempt follows.
    async fn checkout(&self) -> Result<Conn, SourceError> {
        let mut last = None;
        for _ in 0..2 {
            let mut conn =
                match tokio::time::timeout(self.connect_timeout, self.pool.get_conn()).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return Err(self.connect_error(&e)),
                    Err(_) => return Err(SourceError::Timeout(self.connect_timeout)),
                };
            match self.setup(&mut conn).await {
                Ok(()) => return Ok(conn),
                Err(e) if e.is_transient() => {
                    // Do not hand a broken connection back to the pool.
                    drop(tokio::time::timeout(CLIENT_SLACK, conn.disconnect()).await);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| SourceError::Connect(self.shown_url.clone())))
    }

    async fn setup(&self, conn: &mut Conn) -> Result<(), SourceError> {
        self.bounded(
            self.connect_timeout,
            conn.query_drop("SET SESSION TRANSACTION READ ONLY"),
        )
        .await?;
        let ms = self.query_timeout.as_millis().max(1);
        let mysql = format!("SET SESSION max_execution_time = {ms}");
        let mariadb = format!("SET SESSION max_statement_time = {:.3}", ms as f64 / 1000.0);
        match self.limit_kind.load(Ordering::Relaxed) {
            LIMIT_MYSQL => {
                self.bounded(self.connect_timeout, conn.query_drop(mysql))
                    .await
            }
            LIMIT_MARIADB => {
                self.bounded(self.connect_timeout, conn.query_drop(mariadb))
                    .await
            }
            LIMIT_NONE => Ok(()),
            _ => {
                // First connection: find which variable this server has. An unknown variable
                // is a query error, anything else (lost connection) is reported.
                let kind = match self
                    .bounded(self.connect_timeout, conn.query_drop(mysql))
                    .await
                {
                    Ok(()) => LIMIT_MYSQL,
                    Err(SourceError::Query(_)) => {
                        match self
                            .bounded(self.connect_timeout, conn.query_drop(mariadb))
                            .await
                        {
                            Ok(()) => LIMIT_MARIADB,
                            Err(SourceError::Query(e)) => {
                                tracing::warn!(
                                    url = %self.shown_url,
                                    "marketing database has no statement time limit \
                                     (neither max_execution_time nor max_statement_time): {e}"
                                );
                                LIMIT_NONE
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                };
                self.limit_kind.store(kind, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    async fn bounded<T>(
        &self,
        timeout: Duration,
        fut: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(timeout + CLIENT_SLACK, fut).await {
            Ok(r) => r.map_err(|e| classify(&e, self.query_timeout)),
            Err(_) => Err(SourceError::Timeout(timeout)),
        }
    }

    fn connect_error(&self, e: &mysql_async::Error) -> SourceError {
        match classify(e, self.query_timeout) {
            SourceError::Query(m) | SourceError::Connect(m) => {
                SourceError::Connect(format!("{}: {m}", self.shown_url))
            }
            other => other,
        }
    }

    /// Ends the running statement of connection `id` from another connection.
    async fn kill_query(&self, id: u32) {
        let Ok(Ok(mut other)) =
            tokio::time::timeout(self.connect_timeout, self.pool.get_conn()).await
        else {
            return;
        };
        let _ = tokio::time::timeout(
            self.connect_timeout,
            other.query_drop(format!("KILL QUERY {id}")),
        )
        .await;
    }

    async fn run(
        &self,
        sql: String,
        values: Vec<mysql_async::Value>,
        tx: &mpsc::Sender<Result<Row, SourceError>>,
    ) -> Result<(), SourceError> {
        let timeout = self.query_timeout;
        let mut conn = self.checkout().await?;
        let id = conn.id();
        let stmt = self.bounded(timeout, conn.prep(sql.as_str())).await?;
        let params = if values.is_empty() {
            Params::Empty
        } else {
            Params::Positional(values)
        };
        let mut result = self.bounded(timeout, conn.exec_iter(stmt, params)).await?;
        let meta: Arc<[Column]> = result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
        let columns = Columns::new(meta.iter().map(|c| c.name_str().into_owned()).collect());
        loop {
            let row = match self.bounded(timeout, result.next()).await? {
                Some(row) => row,
                None => return Ok(()),
            };
            if tx.send(Ok(to_row(&columns, &meta, row))).await.is_err() {
                break;
            }
        }
        // The consumer has gone with rows still coming: stop the server, then read what it
        // already sent so the connection is clean for the next query.
        self.kill_query(id).await;
        let drained = tokio::time::timeout(timeout, result.drop_result()).await;
        match drained {
            // KILL QUERY ends the result with "query interrupted" (1317): expected.
            Ok(Ok(())) | Ok(Err(mysql_async::Error::Server(_))) => {
                // A KILL that arrived after the result ended would hit the next statement;
                // this one absorbs it.
                let _ = tokio::time::timeout(timeout, conn.query_drop("DO 0")).await;
            }
            _ => drop(tokio::time::timeout(CLIENT_SLACK, conn.disconnect()).await),
        }
        Ok(())
    }
}

/// Lost connections and time limits are transient; what the server says about the SQL is not.
fn classify(e: &mysql_async::Error, timeout: Duration) -> SourceError {
    use mysql_async::{DriverError, Error};
    match e {
        Error::Server(s) => match s.code {
            // MySQL max_execution_time, MariaDB max_statement_time, lock wait timeout.
            3024 | 1969 | 1205 => SourceError::Timeout(timeout),
            // Too many connections, server shutdown, query or connection killed, deadlock,
            // access denied (the account may be fixed without a config change).
            1040 | 1053 | 1317 | 1927 | 1213 | 1045 | 1044 | 1129 | 1130 => {
                SourceError::Connect(format!("{} ({})", s.message, s.code))
            }
            _ => SourceError::Query(format!("{} ({})", s.message, s.code)),
        },
        Error::Driver(
            d @ (DriverError::StmtParamsMismatch { .. }
            | DriverError::MixedParams
            | DriverError::FromValue { .. }
            | DriverError::FromRow { .. }),
        ) => SourceError::Query(d.to_string()),
        Error::Url(u) => SourceError::BadUrl(u.to_string()),
        other => SourceError::Connect(other.to_string()),
    }
}

fn to_param(v: &Value) -> mysql_async::Value {
    use mysql_async::Value as M;
    let datetime = |t: &NaiveDateTime| {
        use chrono::Datelike;
        M::Date(
            u16::try_from(t.year()).unwrap_or(0),
            t.month() as u8,
            t.day() as u8,
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.nanosecond() / 1000 % 1_000_000,
        )
    };
    match v {
        Value::Null => M::NULL,
        Value::Int(n) => M::Int(*n),
        Value::Float(f) => M::Double(*f),
        Value::Text(s) => M::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => M::Bytes(b.clone()),
        Value::Date(d) => datetime(&d.and_time(NaiveTime::MIN)),
        Value::DateTime(t) => datetime(t),
        Value::Instant(t) => datetime(&t.naive_utc()),
    }
}

fn to_value(col: &Column, v: mysql_async::Value) -> Value {
    use mysql_async::Value as M;
    match v {
        M::NULL => Value::Null,
        M::Int(n) => Value::Int(n),
        M::UInt(n) => i64::try_from(n).map_or_else(|_| Value::Text(n.to_string()), Value::Int),
        M::Float(f) => Value::Float(f.into()),
        M::Double(f) => Value::Float(f),
        M::Date(y, mo, d, h, mi, s, us) => {
            let date = NaiveDate::from_ymd_opt(y.into(), mo.into(), d.into());
            let is_date = matches!(
                col.column_type(),
                ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE
            );
            match date {
                // '0000-00-00' (legacy "no date") has no calendar value: NULL.
                None => Value::Null,
                Some(date) if is_date => Value::Date(date),
                Some(date) => NaiveTime::from_hms_micro_opt(h.into(), mi.into(), s.into(), us)
                    .map_or(Value::Null, |t| Value::DateTime(date.and_time(t))),
            }
        }
        M::Time(neg, days, h, m, s, us) => {
            let hours = u64::from(days) * 24 + u64::from(h);
            let sign = if neg { "-" } else { "" };
            let frac = if us > 0 {
                format!(".{us:06}")
            } else {
                String::new()
            };
            Value::Text(format!("{sign}{hours:02}:{m:02}:{s:02}{frac}"))
        }
        M::Bytes(b) => {
            let binary = col.character_set() == BINARY_CHARSET
                && !matches!(
                    col.column_type(),
                    ColumnType::MYSQL_TYPE_DECIMAL
                        | ColumnType::MYSQL_TYPE_NEWDECIMAL
                        | ColumnType::MYSQL_TYPE_JSON
                );
            if binary || col.column_type() == ColumnType::MYSQL_TYPE_BIT {
                Value::Bytes(b)
            } else {
                match String::from_utf8(b) {
                    Ok(s) => Value::Text(s),
                    Err(e) => Value::Text(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                }
            }
        }
    }
}

fn to_row(columns: &Arc<Columns>, meta: &[Column], row: mysql_async::Row) -> Row {
    // mysql_common's `Row::unwrap` hands over the values as a Vec (it panics only for a value
    // taken out before with `take`, which nothing here does); not `Option::unwrap`.
    let values = row
        .unwrap()
        .into_iter()
        .zip(meta)
        .map(|(v, col)| to_value(col, v))
        .collect();
    Row::new(columns.clone(), values)
}

impl Source for MysqlSource {
    fn engine(&self) -> Engine {
        Engine::Mysql
    }

    fn columns<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        Box::pin(async move {
            let (sql, _) = query.positional(Engine::Mysql);
            let inner = &self.inner;
            let mut conn = inner.checkout().await?;
            let stmt = inner
                .bounded(inner.query_timeout, conn.prep(sql.as_str()))
                .await?;
            Ok(stmt
                .columns()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect())
        })
    }

    fn stream(&self, query: &Query, params: &[(&str, Value)]) -> RowStream {
        let (sql, values) = match query.bind(Engine::Mysql, params) {
            Ok((sql, values)) => (sql, values.into_iter().map(to_param).collect::<Vec<_>>()),
            Err(e) => return RowStream::failed(e),
        };
        let (tx, stream) = RowStream::channel(self.inner.query_timeout);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.run(sql, values, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        stream
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let mut conn = inner.checkout().await?;
            inner
                .bounded(inner.connect_timeout, conn.ping())
                .await
                .map_err(|e| match e {
                    SourceError::Query(m) => SourceError::Connect(m),
                    other => other,
                })
        })
    }
}
