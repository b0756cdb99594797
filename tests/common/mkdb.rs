//! Fresh, isolated marketing databases for tests that must pass on every engine.
//!
//! ```ignore
//! let dir = tempfile::tempdir().unwrap();
//! for db in TestDb::all(dir.path()) {          // sqlite + the servers whose URL is set
//!     db.exec(&db.ddl("CREATE TABLE bills (account {text}, amount {money}, posted_at {ts})"));
//!     db.exec("INSERT INTO bills VALUES ('A1', 12.50, '2026-11-28 08:00:00')");
//!     let source = db.source();                 // read-only, through the real adapter
//!     ...
//! }                                             // schema / database dropped here
//! ```
//!
//! - `TestDb::sqlite(dir)`: a new file in `dir`.
//! - `TestDb::postgres()`: a new schema in GRIDSMS_TEST_POSTGRES_URL's database; [`TestDb::url`]
//!   carries `options=-c search_path=<schema>` so the adapter's session lands in it.
//! - `TestDb::mysql()`: a new utf8mb4 database on GRIDSMS_TEST_MYSQL_URL's server.
//!
//! [`DbProxy`] relays to a server's test database so a test can take it down and bring it
//! back on the same URL.
//!
//! The server constructors return `None` after printing a loud SKIPPED line when the variable
//! is unset, and panic instead when GRIDSMS_REQUIRE_EXTERNAL=1 (CI). Fixtures go through
//! [`TestDb::exec`] on a WRITABLE admin connection (owned by a thread with its own runtime, so
//! the API is synchronous and callable from sync and async tests alike); the URL handed to
//! gridsms is the read-only side. Names are unique per process and call, so parallel tests do
//! not collide, and everything is dropped when the `TestDb` is.
#![allow(dead_code)]

use gridsms::marketing::{Source, SourceConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const POSTGRES_ENV: &str = "GRIDSMS_TEST_POSTGRES_URL";
pub const MYSQL_ENV: &str = "GRIDSMS_TEST_MYSQL_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        }
    }
}

/// The URL in `var`, or `None` after a SKIPPED line; panics under GRIDSMS_REQUIRE_EXTERNAL=1.
pub fn external_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            let strict = std::env::var("GRIDSMS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1");
            assert!(!strict, "GRIDSMS_REQUIRE_EXTERNAL=1 but {var} is not set");
            println!("SKIPPED: {var} not set; this engine's tests did not run");
            None
        }
    }
}

/// A name no other test (in this or a parallel process) uses.
pub fn unique_name(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{:x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

type Reply = mpsc::SyncSender<Result<Vec<Vec<Option<String>>>, String>>;

enum Cmd {
    /// Run statements, no result.
    Exec(String, Reply),
    /// Run one query, every value as text.
    Query(String, Reply),
}

/// A fresh database of one engine, dropped with this value.
pub struct TestDb {
    kind: Kind,
    url: String,
    /// Schema (PG), database (MySQL) or file name (SQLite).
    name: String,
    sqlite_path: Option<PathBuf>,
    /// Commands for the admin thread; the lock keeps one in flight, so `try_send` on this
    /// one-slot channel never finds it full (and works inside or outside a runtime).
    admin: Mutex<Option<tokio::sync::mpsc::Sender<Cmd>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestDb {
    /// SQLite, plus PostgreSQL and MySQL when their URL is set.
    pub fn all(dir: &Path) -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite(dir)];
        dbs.extend(TestDb::postgres());
        dbs.extend(TestDb::mysql());
        dbs
    }

    pub fn sqlite(dir: &Path) -> TestDb {
        let name = unique_name("mk");
        let path = dir.join(format!("{name}.db"));
        rusqlite::Connection::open(&path)
            .and_then(|c| c.execute_batch("PRAGMA journal_mode = WAL"))
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TestDb {
            kind: Kind::Sqlite,
            url: format!("sqlite://{}", path.display()),
            name,
            sqlite_path: Some(path),
            admin: Mutex::new(None),
            thread: None,
        }
    }

    pub fn postgres() -> Option<TestDb> {
        let base = external_url(POSTGRES_ENV)?;
        let schema = unique_name("gridsms_t");
        let url = with_query_param(&base, "options", &format!("-c%20search_path%3D{schema}"));
        Some(TestDb::server(Kind::Postgres, base, schema, url))
    }

    pub fn mysql() -> Option<TestDb> {
        let base = external_url(MYSQL_ENV)?;
        let db = unique_name("gridsms_t");
        let url = with_path(&base, &db);
        Some(TestDb::server(Kind::Mysql, base, db, url))
    }

    fn server(kind: Kind, base: String, name: String, url: String) -> TestDb {
        let (tx, rx) = tokio::sync::mpsc::channel::<Cmd>(1);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
        let thread_name = name.clone();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            match kind {
                Kind::Postgres => rt.block_on(pg_admin(base, thread_name, rx, ready_tx)),
                Kind::Mysql => rt.block_on(my_admin(base, thread_name, rx, ready_tx)),
                Kind::Sqlite => unreachable!(),
            }
        });
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{} test database {name}: {e}", kind.as_str()),
            Err(_) => panic!("{} test database {name}: no answer", kind.as_str()),
        }
        TestDb {
            kind,
            url,
            name,
            sqlite_path: None,
            admin: Mutex::new(Some(tx)),
            thread: Some(thread),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The schema (PG), database (MySQL) or file stem (SQLite) this test owns.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL gridsms uses (its session lands in this test's schema/database).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A source config for [`TestDb::url`], with short test timeouts.
    pub fn source_config(&self) -> SourceConfig {
        SourceConfig {
            url: self.url.clone(),
            password: None,
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(30),
        }
    }

    /// The real adapter for this database.
    pub fn source(&self) -> Arc<dyn Source> {
        gridsms::marketing::source::open(&self.source_config())
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.kind.as_str()))
    }

    /// Portable DDL: `{text}`, `{int}`, `{pk}`, `{money}`, `{num}`, `{date}`, `{ts}` become this
    /// engine's types.
    pub fn ddl(&self, sql: &str) -> String {
        let map: &[(&str, [&str; 3])] = &[
            // [sqlite, postgres, mysql]
            ("{text}", ["TEXT", "TEXT", "VARCHAR(255)"]),
            ("{int}", ["INTEGER", "BIGINT", "BIGINT"]),
            (
                "{pk}",
                [
                    "INTEGER PRIMARY KEY",
                    "BIGSERIAL PRIMARY KEY",
                    "BIGINT AUTO_INCREMENT PRIMARY KEY",
                ],
            ),
            ("{money}", ["NUMERIC", "NUMERIC(12,2)", "DECIMAL(12,2)"]),
            ("{num}", ["NUMERIC", "NUMERIC(14,3)", "DECIMAL(14,3)"]),
            ("{date}", ["TEXT", "DATE", "DATE"]),
            ("{ts}", ["TEXT", "TIMESTAMP", "DATETIME"]),
        ];
        let i = match self.kind {
            Kind::Sqlite => 0,
            Kind::Postgres => 1,
            Kind::Mysql => 2,
        };
        map.iter()
            .fold(sql.to_owned(), |s, (from, to)| s.replace(from, to[i]))
    }

    /// Runs fixture SQL (several statements allowed) with write access; panics on error.
    pub fn exec(&self, sql: &str) {
        if let Err(e) = self.try_exec(sql) {
            panic!("{} fixture SQL failed: {e}\n{sql}", self.kind.as_str());
        }
    }

    /// [`TestDb::ddl`] then [`TestDb::exec`].
    pub fn exec_ddl(&self, sql: &str) {
        self.exec(&self.ddl(sql));
    }

    pub fn try_exec(&self, sql: &str) -> Result<(), String> {
        match &self.sqlite_path {
            Some(path) => rusqlite::Connection::open(path)
                .and_then(|c| c.execute_batch(sql))
                .map_err(|e| e.to_string()),
            None => self.ask(|reply| Cmd::Exec(sql.to_owned(), reply)).map(drop),
        }
    }

    /// Rows of `sql` on the admin connection, every value as text (NULL → None).
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let rows = match &self.sqlite_path {
            Some(path) => sqlite_query(path, sql),
            None => self.ask(|reply| Cmd::Query(sql.to_owned(), reply)),
        };
        rows.unwrap_or_else(|e| panic!("{} query failed: {e}\n{sql}", self.kind.as_str()))
    }

    /// The first column of the first row, as text.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.query(sql).into_iter().next()?.into_iter().next()?
    }

    fn ask(&self, cmd: impl FnOnce(Reply) -> Cmd) -> Result<Vec<Vec<Option<String>>>, String> {
        let admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let (tx, rx) = mpsc::sync_channel(1);
        admin
            .as_ref()
            .ok_or("no admin connection")?
            .try_send(cmd(tx))
            .map_err(|_| "admin thread gone".to_owned())?;
        rx.recv_timeout(Duration::from_secs(300))
            .map_err(|_| "admin connection did not answer".to_owned())?
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Closing the channel makes the admin thread drop the schema/database and exit.
        self.admin
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

fn sqlite_query(path: &Path, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    use rusqlite::types::ValueRef;
    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    let n = stmt.column_count();
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => None,
                ValueRef::Integer(v) => Some(v.to_string()),
                ValueRef::Real(v) => Some(v.to_string()),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Some(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.push(vals);
    }
    Ok(out)
}

async fn pg_admin(
    base: String,
    schema: String,
    mut rx: tokio::sync::mpsc::Receiver<Cmd>,
    ready: mpsc::SyncSender<Result<(), String>>,
) {
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(&base, tokio_postgres::NoTls),
    )
    .await;
    let client = match connected {
        Ok(Ok((client, conn))) => {
            tokio::spawn(conn);
            client
        }
        Ok(Err(e)) => return drop(ready.send(Err(e.to_string()))),
        Err(_) => return drop(ready.send(Err("connect timed out".into()))),
    };
    if !SWEPT_POSTGRES.swap(true, Ordering::Relaxed)
        && let Ok(msgs) = client
            .simple_query(
                "SELECT schema_name FROM information_schema.schemata \
                 WHERE schema_name LIKE 'gridsms\\_t\\_%'",
            )
            .await
    {
        for m in msgs {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m
                && let Some(name) = r.get(0).filter(|n| is_orphan(n))
            {
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await;
            }
        }
    }
    let setup = format!("CREATE SCHEMA {schema}; SET search_path TO {schema}");
    if let Err(e) = client.batch_execute(&setup).await {
        return drop(ready.send(Err(e.to_string())));
    }
    let _ = ready.send(Ok(()));
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Exec(sql, reply) => {
                let r = client.batch_execute(&sql).await.map_err(pg_error);
                let _ = reply.send(r.map(|_| Vec::new()));
            }
            Cmd::Query(sql, reply) => {
                let r = client
                    .simple_query(&sql)
                    .await
                    .map_err(pg_error)
                    .map(|msgs| {
                        msgs.into_iter()
                            .filter_map(|m| match m {
                                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                                    (0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect(),
                                ),
                                _ => None,
                            })
                            .collect()
                    });
                let _ = reply.send(r);
            }
        }
    }
    let _ = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await;
}

fn pg_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

async fn my_admin(
    base: String,
    db: String,
    mut rx: tokio::sync::mpsc::Receiver<Cmd>,
    ready: mpsc::SyncSender<Result<(), String>>,
) {
    use mysql_async::prelude::Queryable;
    let opts = match mysql_async::Opts::from_url(&base) {
        Ok(o) => o,
        Err(e) => return drop(ready.send(Err(e.to_string()))),
    };
    let connected =
        tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts)).await;
    let mut conn = match connected {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return drop(ready.send(Err(e.to_string()))),
        Err(_) => return drop(ready.send(Err("connect timed out".into()))),
    };
    if !SWEPT_MYSQL.swap(true, Ordering::Relaxed)
        && let Ok(names) = conn
            .query::<String, _>(
                "SELECT schema_name FROM information_schema.schemata \
                 WHERE schema_name LIKE 'gridsms\\_t\\_%'",
            )
            .await
    {
        for name in names.iter().filter(|n| is_orphan(n)) {
            let _ = conn
                .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                .await;
        }
    }
    let setup = format!(
        "CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; USE `{db}`"
    );
    if let Err(e) = conn.query_drop(&setup).await {
        return drop(ready.send(Err(e.to_string())));
    }
    let _ = ready.send(Ok(()));
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Exec(sql, reply) => {
                let r = conn.query_drop(&sql).await.map_err(|e| e.to_string());
                let _ = reply.send(r.map(|_| Vec::new()));
            }
            Cmd::Query(sql, reply) => {
                let r = conn
                    .query::<mysql_async::Row, _>(&sql)
                    .await
                    .map_err(|e| e.to_string())
                    .map(|rows| {
                        rows.into_iter()
                            .map(|row| {
                                (0..row.len())
                                    .map(|i| match row.as_ref(i) {
                                        None | Some(mysql_async::Value::NULL) => None,
                                        Some(mysql_async::Value::Bytes(b)) => {
                                            Some(String::from_utf8_lossy(b).into_owned())
                                        }
                                        Some(v) => {
                                            Some(v.as_sql(true).trim_matches('\'').to_owned())
                                        }
                                    })
                                    .collect()
                            })
                            .collect()
                    });
                let _ = reply.send(r);
            }
        }
    }
    let _ = conn
        .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await;
    let _ = conn.disconnect().await;
}

static SWEPT_POSTGRES: AtomicBool = AtomicBool::new(false);
static SWEPT_MYSQL: AtomicBool = AtomicBool::new(false);

/// A `gridsms_t_<pid>_…` schema/database whose test process is gone (killed before its
/// `TestDb` was dropped); the first `TestDb` of each engine in a process drops those.
fn is_orphan(name: &str) -> bool {
    name.strip_prefix("gridsms_t_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        })
}

/// `url` with `key=value` (value already percent-encoded) added to its query string.
pub fn with_query_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// `scheme://authority/db?query` with `db` replaced.
pub fn with_path(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("mysql", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    match query {
        Some(q) => format!("{scheme}://{authority}/{db}?{q}"),
        None => format!("{scheme}://{authority}/{db}"),
    }
}

/// A TCP relay between gridsms and a test database server, to take "the database" down and
/// bring it back on the same address (jobs: wait, retry, pick up where they left off).
///
/// ```ignore
/// let db = TestDb::postgres()?;
/// let proxy = DbProxy::start(&db);
/// let source = open(&SourceConfig { url: proxy.url().into(), ..db.source_config() });
/// proxy.cut();      // open connections reset, new ones refused
/// proxy.restore();  // listening again on the same port
/// ```
pub struct DbProxy {
    url: String,
    shared: Arc<ProxyShared>,
    thread: Option<JoinHandle<()>>,
}

struct ProxyShared {
    port: u16,
    target: std::net::SocketAddr,
    listener: Mutex<Option<std::net::TcpListener>>,
    /// Both ends of every relayed connection, to reset them on `cut`.
    conns: Mutex<Vec<std::net::TcpStream>>,
    stop: std::sync::atomic::AtomicBool,
}

impl DbProxy {
    /// Relays to `db`'s server; panics for SQLite (no server: rename the file instead).
    pub fn start(db: &TestDb) -> DbProxy {
        use std::net::ToSocketAddrs;
        let default_port = match db.kind() {
            Kind::Postgres => 5432,
            Kind::Mysql => 3306,
            Kind::Sqlite => panic!("DbProxy needs a database server"),
        };
        let (host, port) = host_port(db.url(), default_port);
        let target = (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve {host}:{port}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let local = listener.local_addr().expect("proxy address").port();
        let mut url = replace_host_port(db.url(), &format!("127.0.0.1:{local}"));
        if db.kind() == Kind::Mysql {
            // mysql_async moves loopback connections to the server's unix socket, which
            // would bypass the relay.
            url = with_query_param(&url, "prefer_socket", "false");
        }
        let shared = Arc::new(ProxyShared {
            port: local,
            target,
            listener: Mutex::new(Some(listener)),
            conns: Mutex::new(Vec::new()),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let accept = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(&accept));
        DbProxy {
            url,
            shared,
            thread: Some(thread),
        }
    }

    /// `db.url()` pointed at the relay.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database goes away: established connections are reset, new ones refused.
    pub fn cut(&self) {
        let mut listener = self
            .shared
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        listener.take();
        for s in self
            .shared
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// The database is back on the same address.
    pub fn restore(&self) {
        let mut listener = self
            .shared
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if listener.is_none() {
            let l = std::net::TcpListener::bind(("127.0.0.1", self.shared.port))
                .expect("re-binding the proxy port");
            l.set_nonblocking(true).expect("nonblocking listener");
            *listener = Some(l);
        }
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(shared: &Arc<ProxyShared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let accepted = {
            let guard = shared.listener.lock().unwrap_or_else(|e| e.into_inner());
            guard.as_ref().map(|l| l.accept())
        };
        match accepted {
            Some(Ok((client, _))) => relay(shared, client),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn relay(shared: &Arc<ProxyShared>, client: std::net::TcpStream) {
    let Ok(server) = std::net::TcpStream::connect_timeout(&shared.target, Duration::from_secs(5))
    else {
        return;
    };
    let _ = client.set_nonblocking(false);
    let pipes = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    );
    let (Ok(mut c_read), Ok(mut s_write), Ok(mut c_write), Ok(mut s_read)) = pipes else {
        return;
    };
    {
        let mut conns = shared.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.push(client);
        conns.push(server);
    }
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(std::net::Shutdown::Both);
        let _ = c_read.shutdown(std::net::Shutdown::Both);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s_read, &mut c_write);
        let _ = c_write.shutdown(std::net::Shutdown::Both);
        let _ = s_read.shutdown(std::net::Shutdown::Both);
    });
}

/// Host and port of `scheme://user:pass@host:port/...`.
fn host_port(url: &str, default_port: u16) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(default_port)),
        None => (hostport.to_owned(), default_port),
    }
}

/// `url` with its host:port replaced, user, path and query kept.
fn replace_host_port(url: &str, hostport: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{userinfo}{hostport}{tail}")
}
