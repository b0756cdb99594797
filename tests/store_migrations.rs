//! Schema migrations: from empty, from every earlier version (built by applying exactly the
//! migrations an older binary had), and a newer schema refused.

use chrono::{TimeZone, Utc};
use gridsms::message::{Category, MessageState};
use gridsms::phone::normalise;
use gridsms::store::migrations::{CURRENT_VERSION, MIGRATIONS, apply_up_to, version};
use gridsms::store::{EnqueueOutcome, NewMessage, Store, StoreError};
use rusqlite::Connection;

#[tokio::test]
async fn fresh_database_gets_current_schema_and_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let store = Store::open(&path).await.unwrap();
    let mode: String = store
        .call(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = store
        .call(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let sync: i64 = store
        .call(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(sync, 1, "NORMAL between enqueues");
    drop(store);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
    assert_eq!(CURRENT_VERSION as usize, MIGRATIONS.len());
}

/// Rows an older binary could have written at version `v`.
fn seed(conn: &Connection, v: u32) {
    if v >= 1 {
        conn.execute(
            "INSERT INTO messages (id, recipient, text, category, priority, idempotency_key,
                 content_hash, state, created_at, updated_at, next_attempt_at)
             VALUES (7, '+8613800138000', '旧消息', 'bill', 3, 'old-key', 42, 'queued', 1, 1, 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO segments (message_id, seq, total, state) VALUES (7, 1, 1, 'pending')",
            [],
        )
        .unwrap();
    }
    if v >= 2 {
        conn.execute(
            "INSERT INTO sim_usage VALUES ('8986001', 'month', '2026-11', 0, 5)",
            [],
        )
        .unwrap();
        // From version 2 on, the binary counted its own inserts (no insert trigger).
        conn.execute(
            "INSERT INTO message_counts (state, category, n) VALUES ('queued', 'bill', 1)
             ON CONFLICT (state, category) DO UPDATE SET n = n + 1",
            [],
        )
        .unwrap();
    }
    if v >= 3 {
        conn.execute(
            "INSERT INTO opt_outs (phone, category, via, created_at)
             VALUES ('+8613800138000', '*', 'sms', 1)",
            [],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn upgrades_from_every_earlier_version_keep_data() {
    for v in 0..CURRENT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            apply_up_to(&mut conn, v).unwrap();
            assert_eq!(version(&conn).unwrap(), v);
            seed(&conn, v);
        }
        let store = Store::open(&path)
            .await
            .unwrap_or_else(|e| panic!("upgrade from {v}: {e}"));
        let id = store.get(7).await.unwrap().map(|d| d.message.id);
        assert_eq!(id, if v >= 1 { Some(7) } else { None }, "from version {v}");
        // The upgraded schema is fully usable.
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap();
        let out = store
            .enqueue(
                NewMessage::new(normalise("13900139000").unwrap(), "新", Category::Manual),
                now,
            )
            .await
            .unwrap();
        assert!(out.id() > 0);
        // Counters added by a later migration include rows written before it.
        let queued = store.counts().await.unwrap().by_state(MessageState::Queued);
        assert_eq!(queued, if v >= 1 { 2 } else { 1 }, "from version {v}");
        store
            .record_segments_sent("8986001".into(), 1, now, chrono_tz::Asia::Shanghai)
            .await
            .unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), CURRENT_VERSION, "from version {v}");
    }
}

#[tokio::test]
async fn newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE future (x); PRAGMA user_version = {};",
            CURRENT_VERSION + 1
        ))
        .unwrap();
    }
    let err = Store::open(&path).await.unwrap_err();
    match &err {
        StoreError::SchemaTooNew { found, supported } => {
            assert_eq!(*found, CURRENT_VERSION + 1);
            assert_eq!(*supported, CURRENT_VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(err.to_string().contains("newer than this gridsms supports"));
    let conn = Connection::open(&path).unwrap();
    assert_eq!(version(&conn).unwrap(), CURRENT_VERSION + 1);
    let messages: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'messages'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(messages, 0, "nothing applied to a newer database");
}

#[tokio::test]
async fn unopenable_path_is_a_clear_error() {
    let err = Store::open("/nonexistent-dir/for/gridsms/outbox.db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent-dir/for/gridsms/outbox.db")
    );
}

/// Databases written before batches became id ranges: cancel-by-batch still finds every
/// queued message of a batch (ranges rebuilt by the migration), and nothing else.
#[tokio::test]
async fn cancel_by_batch_works_on_rows_written_before_batch_ranges() {
    let ranges_at = MIGRATIONS
        .iter()
        .position(|m| m.contains("CREATE TABLE message_batches"))
        .expect("the batch-range migration") as u32;
    for v in 1..=ranges_at {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            apply_up_to(&mut conn, v).unwrap();
            for (id, batch) in [
                (10, Some("run-a")),
                (11, Some("run-b")),
                (12, None),
                (13, Some("run-a")),
            ] {
                conn.execute(
                    "INSERT INTO messages (id, recipient, text, category, priority, content_hash,
                         state, batch_id, created_at, updated_at, next_attempt_at)
                     VALUES (?1, '+8613800138000', '旧消息', 'bill', 3, 42, 'queued', ?2, 1, 1, 1)",
                    rusqlite::params![id, batch],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).await.unwrap();
        let n = store
            .cancel(
                gridsms::store::CancelTarget::Batch("run-a".into()),
                Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(n, 2, "from version {v}");
        for (id, state) in [
            (10, MessageState::Cancelled),
            (11, MessageState::Queued),
            (12, MessageState::Queued),
            (13, MessageState::Cancelled),
        ] {
            let got = store.get(id).await.unwrap().unwrap().message.state;
            assert_eq!(got, state, "message {id} from version {v}");
        }
    }
}

/// Everything SQLite keeps about `messages`: columns, then its indexes and triggers with their
/// SQL, whitespace collapsed. Autoindexes have no SQL and are listed by name.
fn messages_schema(conn: &Connection) -> (Vec<String>, Vec<String>) {
    let mut cols = conn.prepare("PRAGMA table_info(messages)").unwrap();
    let columns = cols
        .query_map([], |r| {
            Ok(format!(
                "{} {} notnull={} default={:?} pk={}",
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?
            ))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut objs = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_master
             WHERE tbl_name = 'messages' AND type IN ('index', 'trigger')",
        )
        .unwrap();
    let mut objects = objs
        .query_map([], |r| {
            let sql: Option<String> = r.get(2)?;
            let sql = sql
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            Ok(format!(
                "{} {} {sql}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?
            ))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    objects.sort();
    (columns, objects)
}

/// Each message row as one string, for before/after comparisons.
fn message_rows(conn: &Connection) -> Vec<String> {
    conn.prepare(
        "SELECT quote(id) || '|' || quote(recipient) || '|' || quote(text) || '|' ||
             quote(idempotency_key) || '|' || quote(content_hash) || '|' || quote(state) || '|' ||
             quote(account) || '|' || quote(station) || '|' || quote(prefer_modem) || '|' ||
             quote(sent_at) || '|' || quote(next_attempt_at)
         FROM messages ORDER BY id",
    )
    .unwrap()
    .query_map([], |r| r.get(0))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Version 10 rebuilds `messages` to move the idempotency key into a partial unique index. The
/// rebuild keeps every row, every segment, every column definition, index and trigger, and
/// the constraints keep working afterwards.
#[tokio::test]
async fn messages_rebuild_keeps_rows_segments_indexes_and_constraints() {
    let rebuild_at = MIGRATIONS
        .iter()
        .position(|m| m.contains("CREATE UNIQUE INDEX messages_idempotency"))
        .expect("the rebuild migration") as u32;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let (rows_before, (columns_before, objects_before)) = {
        let mut conn = Connection::open(&path).unwrap();
        apply_up_to(&mut conn, rebuild_at).unwrap();
        conn.execute_batch(
            "INSERT INTO messages (id, recipient, text, category, priority, idempotency_key,
                 content_hash, state, created_at, updated_at, next_attempt_at, account,
                 station, prefer_modem, sent_at)
             VALUES (1, '+8613800138000', '账单', 'bill', 3, 'bill:1001:2026-10', 42,
                     'sent', 1, 2, 1, '1001', 'S01', 'm1', 2),
                    (2, '+8613900139000', '停电', 'outage', 1, NULL, 43,
                     'queued', 3, 3, 5, NULL, NULL, NULL, NULL),
                    (3, '+8613700137000', '催费', 'reminder', 4, NULL, 44,
                     'sending', 4, 4, 4, '1003', NULL, NULL, NULL);
             INSERT INTO segments (message_id, seq, total, state, tp_mr, sim_iccid)
             VALUES (1, 1, 2, 'submitted', 17, '8986001'), (1, 2, 2, 'submitted', 18, '8986001'),
                    (2, 1, 1, 'pending', NULL, NULL), (3, 1, 1, 'submitting', NULL, '8986002');
             INSERT INTO message_counts (state, category, n) VALUES ('sent', 'bill', 1),
                    ('queued', 'outage', 1), ('sending', 'reminder', 1);",
        )
        .unwrap();
        (message_rows(&conn), messages_schema(&conn))
    };
    assert!(
        objects_before
            .iter()
            .any(|o| o.contains("sqlite_autoindex_messages")),
        "before the rebuild the key has a column UNIQUE: {objects_before:?}"
    );

    let store = Store::open(&path).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
    assert_eq!(message_rows(&conn), rows_before);
    let segments: i64 = conn
        .query_row("SELECT count(*) FROM segments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(segments, 4, "no segment cascaded away with the old table");

    let (columns_after, objects_after) = messages_schema(&conn);
    assert_eq!(columns_after, columns_before);
    let mut expected: Vec<String> = objects_before
        .into_iter()
        .filter(|o| !o.contains("sqlite_autoindex_messages"))
        .collect();
    expected.push(
        "index messages_idempotency CREATE UNIQUE INDEX messages_idempotency ON messages \
         (idempotency_key) WHERE idempotency_key IS NOT NULL"
            .into(),
    );
    expected.sort();
    assert_eq!(objects_after, expected);

    // The store's connection has foreign keys back on: deleting a message cascades.
    let fk: i64 = store
        .call(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(fk, 1);
    // Keys stay unique: the old key with other content is a conflict, a new key is queued
    // once, and any number of keyless messages go in.
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap();
    let keyed = |key: &str, text: &str| {
        let mut m = NewMessage::new(normalise("13800138000").unwrap(), text, Category::Bill);
        m.idempotency_key = Some(key.into());
        m
    };
    let err = store
        .enqueue(keyed("bill:1001:2026-10", "另一条"), now)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { existing_id: 1, .. }),
        "{err:?}"
    );
    let first = store.enqueue(keyed("k-new", "新账单"), now).await.unwrap();
    let again = store.enqueue(keyed("k-new", "新账单"), now).await.unwrap();
    assert_eq!(again, EnqueueOutcome::Duplicate(first.id()));
    for _ in 0..3 {
        let out = store
            .enqueue(
                NewMessage::new(normalise("13900139000").unwrap(), "无键", Category::Manual),
                now,
            )
            .await
            .unwrap();
        assert!(matches!(out, EnqueueOutcome::Queued(_)));
    }
    // The count triggers were recreated: a state change moves the counters.
    store
        .call(|c| {
            c.execute("UPDATE messages SET state = 'cancelled' WHERE id = 2", [])?;
            c.execute("DELETE FROM messages WHERE id = 1", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.by_state(MessageState::Cancelled), 1);
    assert_eq!(counts.by_state(MessageState::Sent), 0);
    let left: i64 = conn
        .query_row(
            "SELECT count(*) FROM segments WHERE message_id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        left, 0,
        "the cascade from messages to segments survived the rebuild"
    );
}

/// Rows orphaned before a migration (a hand edit with foreign keys off) do not stop the
/// daemon from opening its database.
#[tokio::test]
async fn orphans_from_before_do_not_block_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        apply_up_to(&mut conn, CURRENT_VERSION - 1).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn.execute(
            "INSERT INTO segments (message_id, seq, total, state) VALUES (99, 1, 1, 'pending')",
            [],
        )
        .unwrap();
    }
    let store = Store::open(&path).await.unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
}
