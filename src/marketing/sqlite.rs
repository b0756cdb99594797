//! SQLite marketing source: a file (the embedded demo database, or an exported snapshot of the
//! real one), always opened read-only and with `query_only`, so no query from the config can
//! change it.
//!
//! Each query runs on tokio's blocking pool on a connection of its own, taken from a few idle
//! ones kept open (opening the file and preparing the statement again for every inbound
//! keyword lookup cost more than the lookup). An idle connection is reused only while the path
//! still names the same file: a snapshot replaced or moved away is noticed at the next query,
//! as a fresh open would. Rows go out through the bounded [`RowStream`] channel. A progress
//! handler stops the statement when the consumer has gone or the query timeout has passed, so
//! an abandoned or runaway query does not keep a thread busy.

use super::source::{
    BoxFuture, Columns, Engine, Query, Row, RowStream, Source, SourceConfig, SourceError, Value,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 4;

/// An open connection and the identity (device, inode) of the file it opened.
struct Pooled {
    conn: Connection,
    file: (u64, u64),
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Idle connections; the lock is held only to push or pop one.
#[derive(Clone, Default)]
struct Idle(Arc<Mutex<Vec<Pooled>>>);

impl Idle {
    /// An idle connection to the file `path` names now, or a new one.
    fn checkout(&self, path: &Path, timeout: Duration) -> Result<Pooled, SourceError> {
        let current = file_identity(path);
        let reusable = {
            let mut idle = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if current.is_none() {
                idle.clear();
            }
            idle.retain(|p| Some(p.file) == current);
            idle.pop()
        };
        match reusable {
            Some(p) => Ok(p),
            None => {
                let conn = SqliteSource::connect(path, timeout)?;
                // Identity after opening: a file created between the two checks is fine.
                let file = file_identity(path).unwrap_or((0, 0));
                Ok(Pooled { conn, file })
            }
        }
    }

    fn checkin(&self, pooled: Pooled) {
        pooled.conn.progress_handler(0, None::<fn() -> bool>);
        let mut idle = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(pooled);
        }
    }
}

pub struct SqliteSource {
    path: PathBuf,
    query_timeout: Duration,
    idle: Idle,
}

impl SqliteSource {
    /// `sqlite:///abs/path.db` or `sqlite://relative/path.db`.
    pub fn new(config: &SourceConfig) -> Result<SqliteSource, SourceError> {
        let path = config
            .url
            .trim()
            .split_once("://")
            .map(|(_, p)| p)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| SourceError::BadUrl(config.url.clone()))?;
        Ok(SqliteSource {
            path: PathBuf::from(path),
            query_timeout: config.query_timeout,
            idle: Idle::default(),
        })
    }

    fn connect(path: &Path, timeout: Duration) -> Result<Connection, SourceError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| SourceError::Connect(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(timeout)
            .and_then(|_| conn.execute_batch("PRAGMA query_only = ON"))
            .map_err(|e| SourceError::Connect(format!("{}: {e}", path.display())))?;
        Ok(conn)
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&PathBuf, Duration) -> Result<R, SourceError> + Send + 'static,
    ) -> Result<R, SourceError> {
        let (path, timeout) = (self.path.clone(), self.query_timeout);
        let task = tokio::task::spawn_blocking(move || f(&path, timeout));
        match tokio::time::timeout(self.query_timeout, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(SourceError::Query(format!("query task failed: {join}"))),
            Err(_) => Err(SourceError::Timeout(self.query_timeout)),
        }
    }
}

fn to_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

/// SQLite keeps dates as text; bind them in the form the demo schema and most exports use.
fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Int(n) => S::Integer(*n),
        Value::Float(f) => S::Real(*f),
        Value::Text(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
        Value::Date(d) => S::Text(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(t) => S::Text(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        Value::Instant(t) => S::Text(t.format("%Y-%m-%d %H:%M:%SZ").to_string()),
    }
}

fn query_error(e: rusqlite::Error) -> SourceError {
    SourceError::Query(e.to_string())
}

impl Source for SqliteSource {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn columns<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        let (sql, _) = query.positional(Engine::Sqlite);
        Box::pin(self.blocking(move |path, timeout| {
            let conn = Self::connect(path, timeout)?;
            let stmt = conn.prepare(&sql).map_err(query_error)?;
            Ok(stmt.column_names().into_iter().map(str::to_owned).collect())
        }))
    }

    fn stream(&self, query: &Query, params: &[(&str, Value)]) -> RowStream {
        let (sql, values) = match query.bind(Engine::Sqlite, params) {
            Ok((sql, values)) => (sql, values.into_iter().map(to_sql).collect::<Vec<_>>()),
            Err(e) => return RowStream::failed(e),
        };
        let (tx, stream) = RowStream::channel(self.query_timeout);
        let (path, timeout) = (self.path.clone(), self.query_timeout);
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = match idle.checkout(&path, timeout) {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            let conn = &pooled.conn;
            let run = || -> Result<(), SourceError> {
                let deadline = Instant::now() + timeout;
                let watcher = tx.clone();
                // Interrupts the statement (SQLITE_INTERRUPT) once nobody listens or the time
                // is up; checked every few thousand VM steps.
                conn.progress_handler(
                    4096,
                    Some(move || watcher.is_closed() || Instant::now() > deadline),
                );
                let mut stmt = conn.prepare_cached(&sql).map_err(query_error)?;
                let columns =
                    Columns::new(stmt.column_names().into_iter().map(str::to_owned).collect());
                let n = columns.names().len();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(values.iter()))
                    .map_err(query_error)?;
                loop {
                    let row = match rows.next() {
                        Ok(Some(row)) => row,
                        Ok(None) => return Ok(()),
                        Err(_) if tx.is_closed() => return Ok(()),
                        Err(_) if Instant::now() > deadline => {
                            return Err(SourceError::Timeout(timeout));
                        }
                        Err(e) => return Err(query_error(e)),
                    };
                    let mut values = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(row.get_ref(i).map(to_value).map_err(query_error)?);
                    }
                    if tx
                        .blocking_send(Ok(Row::new(columns.clone(), values)))
                        .is_err()
                    {
                        return Ok(()); // consumer gone: stop quietly
                    }
                }
            };
            let result = run();
            // A statement cut short leaves nothing behind on the connection: reusable.
            idle.checkin(pooled);
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        stream
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.blocking(|path, timeout| {
            let conn = Self::connect(path, timeout)?;
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| SourceError::Connect(e.to_string()))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marketing::source::open;

    fn fixture() -> (tempfile::TempDir, SourceConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mk.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE bills (account TEXT, amount NUMERIC, posted TEXT);
             INSERT INTO bills VALUES ('A1', 12.5, '2026-11-01'), ('A2', NULL, '2026-11-02'),
                                      ('A3', 7, '2026-11-03');",
        )
        .unwrap();
        let config = SourceConfig {
            url: format!("sqlite://{}", path.display()),
            password: None,
            connect_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(5),
        };
        (dir, config)
    }

    #[tokio::test]
    async fn streams_rows_with_named_parameters() {
        let (_dir, config) = fixture();
        let source = open(&config).unwrap();
        let q = Query::parse("SELECT account, amount FROM bills WHERE posted >= :since ORDER BY 1")
            .unwrap();
        assert_eq!(source.columns(&q).await.unwrap(), vec!["account", "amount"]);
        let mut rows = source.stream(&q, &[("since", "2026-11-02".into())]);
        let mut got = Vec::new();
        while let Some(row) = rows.next().await {
            let row = row.unwrap();
            got.push((row.text("account").unwrap(), row.cents("amount").unwrap()));
        }
        assert_eq!(
            got,
            vec![(Some("A2".into()), None), (Some("A3".into()), Some(700))]
        );
        source.ping().await.unwrap();
    }

    async fn first_int(source: &Arc<dyn Source>, sql: &str) -> Result<Option<i64>, SourceError> {
        let q = Query::parse(sql).unwrap();
        let mut rows = source.stream(&q, &[]);
        match rows.next().await {
            Some(Ok(row)) => Ok(row.int("v").unwrap()),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    #[tokio::test]
    async fn idle_connections_follow_a_replaced_or_removed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mk.db");
        let write = |p: &std::path::Path, v: i64| {
            let c = Connection::open(p).unwrap();
            c.execute_batch(&format!(
                "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES ({v});"
            ))
            .unwrap();
        };
        write(&path, 1);
        let source: Arc<dyn Source> = Arc::new(
            SqliteSource::new(&SourceConfig {
                url: format!("sqlite://{}", path.display()),
                password: None,
                connect_timeout: Duration::from_secs(2),
                query_timeout: Duration::from_secs(5),
            })
            .unwrap(),
        );
        for _ in 0..3 {
            assert_eq!(
                first_int(&source, "SELECT v FROM t").await.unwrap(),
                Some(1)
            );
        }
        // A new snapshot moved into place: the idle connection to the old file is dropped.
        let fresh = dir.path().join("fresh.db");
        write(&fresh, 2);
        std::fs::rename(&fresh, &path).unwrap();
        assert_eq!(
            first_int(&source, "SELECT v FROM t").await.unwrap(),
            Some(2)
        );
        // The file gone: an error, not rows from a deleted file still open.
        std::fs::remove_file(&path).unwrap();
        assert!(first_int(&source, "SELECT v FROM t").await.is_err());
    }

    #[tokio::test]
    async fn writes_are_refused() {
        let (_dir, config) = fixture();
        let source = open(&config).unwrap();
        let q = Query::parse("DELETE FROM bills").unwrap();
        let mut rows = source.stream(&q, &[]);
        match rows.next().await {
            Some(Err(SourceError::Query(e))) => assert!(e.contains("readonly"), "{e}"),
            other => panic!("a write went through: {other:?}"),
        }
        let q = Query::parse("SELECT count(*) AS n FROM bills").unwrap();
        let mut rows = source.stream(&q, &[]);
        assert_eq!(rows.next().await.unwrap().unwrap().int("n"), Ok(Some(3)));
    }

    #[tokio::test]
    async fn missing_file_and_bad_sql_are_errors() {
        let (_dir, mut config) = fixture();
        let q = Query::parse("SELECT nope FROM bills").unwrap();
        let source = open(&config).unwrap();
        assert!(matches!(
            source.columns(&q).await,
            Err(SourceError::Query(_))
        ));
        config.url = "sqlite:///nonexistent/dir/x.db".into();
        let source = open(&config).unwrap();
        let err = source.ping().await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(matches!(
            open(&SourceConfig {
                url: "oracle://x".into(),
                ..config
            }),
            Err(SourceError::BadUrl(_))
        ));
    }
}
