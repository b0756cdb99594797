//! The PostgreSQL and MySQL marketing sources against the real servers on this machine
//! (GRIDSMS_TEST_POSTGRES_URL, GRIDSMS_TEST_MYSQL_URL), and the cross-engine test databases
//! of tests/common/mkdb.rs.

mod common;

use common::mkdb::{Kind, TestDb};

/// Each engine's test database is isolated, writable through `exec`, and gone after drop.
#[test]
fn test_databases_are_isolated_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for db in TestDb::all(dir.path()) {
        db.exec_ddl("CREATE TABLE t (id {pk}, name {text}, amount {money}, at {ts})");
        db.exec("INSERT INTO t (name, amount, at) VALUES ('张三', 12.50, '2026-11-28 08:00:00')");
        assert_eq!(db.scalar("SELECT name FROM t").as_deref(), Some("张三"));
        assert_eq!(db.scalar("SELECT count(*) FROM t").as_deref(), Some("1"));
        assert!(db.try_exec("SELECT * FROM no_such_table").is_err());
        names.push((db.kind(), db.name().to_owned()));
    }
    // After drop: the schema / database no longer exists.
    for (kind, name) in names {
        let check = match kind {
            Kind::Sqlite => continue,
            Kind::Postgres => TestDb::postgres().unwrap().scalar(&format!(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{name}'"
            )),
            Kind::Mysql => TestDb::mysql().unwrap().scalar(&format!(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{name}'"
            )),
        };
        assert_eq!(check.as_deref(), Some("0"), "{name} left behind");
    }
}
