//! Schema migrations: an append-only list keyed on SQLite's `PRAGMA user_version`.
//!
//! Version N means the first N entries of [`MIGRATIONS`] have been applied. At open, every
//! missing entry runs inside one `BEGIN IMMEDIATE` transaction together with the new
//! `user_version`, so a crash mid-upgrade leaves the previous version intact. A database whose
//! version is higher than this build knows is refused (an older binary must not write into a
//! schema it does not understand). Never edit or reorder an entry that has shipped; append.
//!
//! Connection pragmas are set by [`configure`], outside any transaction, because
//! `journal_mode` and `foreign_keys` are no-ops inside one.

use super::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use std::time::Duration;

/// Every schema change ever shipped, oldest first. Times are UTC milliseconds since the epoch.
pub const MIGRATIONS: &[&str] = &[
    // 1: the outbox and its segments.
    r#"
    CREATE TABLE messages (
        id               INTEGER PRIMARY KEY,
        recipient        TEXT    NOT NULL,           -- E.164, +86...
        text             TEXT    NOT NULL,
        category         TEXT    NOT NULL,
        priority         INTEGER NOT NULL,
        not_before       INTEGER,
        expires_at       INTEGER,
        idempotency_key  TEXT    UNIQUE,
        content_hash     INTEGER NOT NULL,           -- compared only between rows of one key
        state            TEXT    NOT NULL DEFAULT 'queued',
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT,
        modem            TEXT,                       -- modem name of the last claim
        sim_iccid        TEXT,                       -- SIM identity of the last claim
        origin           TEXT,                       -- who made it: api token, job name
        batch_id         TEXT,                       -- for cancelling a whole run
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        next_attempt_at  INTEGER NOT NULL,           -- max(not_before, retry time)
        sent_at          INTEGER,
        delivered_at     INTEGER
    );
    -- The dispatcher's hot query: queued, due, by priority then due time.
    CREATE INDEX messages_ready ON messages (priority, category, next_attempt_at)
        WHERE state = 'queued';
    CREATE INDEX messages_expiry ON messages (expires_at)
        WHERE state = 'queued' AND expires_at IS NOT NULL;
    -- Start-up recovery finds what a crash left in flight without a table scan.
    CREATE INDEX messages_sending ON messages (id) WHERE state = 'sending';
    CREATE INDEX messages_batch ON messages (batch_id) WHERE batch_id IS NOT NULL;
    CREATE INDEX messages_recipient ON messages (recipient);

    CREATE TABLE segments (
        message_id    INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        seq           INTEGER NOT NULL,              -- 1-based, as in the UDH
        total         INTEGER NOT NULL,
        concat_ref    INTEGER,                       -- UDH reference, reused on resend
        tp_mr         INTEGER,                       -- from +CMGS
        sim_iccid     TEXT,
        state         TEXT    NOT NULL DEFAULT 'pending',
        status        INTEGER,                       -- TP-ST of the last status report
        submitted_at  INTEGER,
        reported_at   INTEGER,
        PRIMARY KEY (message_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX segments_report ON segments (sim_iccid, tp_mr) WHERE state = 'submitted';
    "#,
    // 2: per-SIM quota counters and the failed-number report.
    r#"
    CREATE TABLE sim_usage (
        sim_iccid     TEXT    NOT NULL,
        period        TEXT    NOT NULL,              -- 'hour' | 'day' | 'month'
        bucket        TEXT    NOT NULL,              -- local label: 2026-11-28T14, 2026-11-28, 2026-11
        bucket_start  INTEGER NOT NULL,              -- UTC ms, for pruning
        segments      INTEGER NOT NULL,
        PRIMARY KEY (sim_iccid, period, bucket)
    ) WITHOUT ROWID;

    CREATE TABLE failed_numbers (
        recipient       TEXT PRIMARY KEY,
        failures        INTEGER NOT NULL,
        first_failed_at INTEGER NOT NULL,
        last_failed_at  INTEGER NOT NULL,
        last_error      TEXT
    ) WITHOUT ROWID;

    -- Retention walks finished messages oldest first without touching the queue.
    CREATE INDEX messages_finished ON messages (updated_at)
        WHERE state NOT IN ('queued', 'sending');

    -- Counts by state and category for /metrics and /api/v1/queue: counting a million rows per
    -- scrape would stall the store thread (and so sending) each time. State changes and
    -- deletes are counted by triggers; inserts by enqueue itself, once per category and
    -- transaction, because a per-row insert trigger halved bulk-enqueue speed. Any new code
    -- path that inserts messages must add to message_counts too.
    CREATE TABLE message_counts (
        state     TEXT    NOT NULL,
        category  TEXT    NOT NULL,
        n         INTEGER NOT NULL,
        PRIMARY KEY (state, category)
    ) WITHOUT ROWID;
    INSERT INTO message_counts (state, category, n)
        SELECT state, category, count(*) FROM messages GROUP BY state, category;
    CREATE TRIGGER messages_count_update AFTER UPDATE OF state, category ON messages
        WHEN OLD.state IS NOT NEW.state OR OLD.category IS NOT NEW.category BEGIN
        UPDATE message_counts SET n = n - 1 WHERE state = OLD.state AND category = OLD.category;
        INSERT INTO message_counts (state, category, n) VALUES (NEW.state, NEW.category, 1)
            ON CONFLICT (state, category) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
        UPDATE message_counts SET n = n - 1 WHERE state = OLD.state AND category = OLD.category;
    END;
    "#,
    // 3: contacts (phone <-> account bindings from every source) and opt-outs.
    r#"
    CREATE TABLE contacts (
        phone       TEXT    NOT NULL,              -- E.164
        account     TEXT    NOT NULL,
        source      TEXT    NOT NULL,              -- 'marketing' | 'sms' | 'staff' | 'legacy'
        status      TEXT    NOT NULL,              -- 'active' | 'pending' | 'rejected'
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        decided_by  TEXT,                          -- staff token that approved or rejected
        note        TEXT,
        PRIMARY KEY (phone, account, source)
    ) WITHOUT ROWID;
    CREATE INDEX contacts_account ON contacts (account);
    CREATE INDEX contacts_pending ON contacts (created_at) WHERE status = 'pending';

    -- An opt-out beats every source of a binding. category '*' means every notice.
    CREATE TABLE opt_outs (
        phone       TEXT    NOT NULL,              -- E.164
        category    TEXT    NOT NULL,              -- a category name or '*'
        via         TEXT    NOT NULL,              -- 'sms' | 'staff' | 'api'
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (phone, category)
    ) WITHOUT ROWID;
    "#,
    // 4: the account and supply station a message concerns (reports, scopes, failed numbers).
    r#"
    ALTER TABLE messages ADD COLUMN account TEXT;
    ALTER TABLE messages ADD COLUMN station TEXT;
    "#,
    // 5: marketing jobs: job runs, watermarks, reminder state (see store/jobs.rs).
    super::jobs::MIGRATION,
    // 6: batches as id ranges instead of a per-row index. Bulk enqueue paid for
    // messages_batch on every row (about a sixth of its CPU); one enqueue call inserts a
    // batch's rows in one transaction, so their ids form a range, and cancel-by-batch walks
    // those ranges by rowid. Ranges of earlier rows are rebuilt here as one min..max range per
    // batch (cancel re-checks batch_id, so other rows inside a range are never touched).
    r#"
    CREATE TABLE message_batches (
        batch_id  TEXT    NOT NULL,
        first_id  INTEGER NOT NULL,
        last_id   INTEGER NOT NULL,
        PRIMARY KEY (batch_id, first_id)
    ) WITHOUT ROWID;
    INSERT INTO message_batches (batch_id, first_id, last_id)
        SELECT batch_id, min(id), max(id) FROM messages
        WHERE batch_id IS NOT NULL GROUP BY batch_id;
    DROP INDEX messages_batch;
    "#,
    // 7: outages (polled or entered at the 95598 desk) and the notices sent per phone.
    r#"
    CREATE TABLE outages (
        id                 INTEGER PRIMARY KEY,
        source             TEXT    NOT NULL,         -- 'marketing' | 'manual'
        external_id        TEXT,                     -- the marketing system's outage id
        feeder             TEXT,                     -- feeder line code
        areas              TEXT,                     -- JSON array of transformer-area codes
        area_text          TEXT,                     -- the area as people name it
        station            TEXT,                     -- supply station (organisation code)
        start_at           INTEGER NOT NULL,
        end_at             INTEGER NOT NULL,
        reason             TEXT,
        status             TEXT    NOT NULL,         -- 'planned' | 'changed' | 'cancelled'
        version            INTEGER NOT NULL DEFAULT 1,
        created_by         TEXT,                     -- API token name, or 'marketing'
        created_at         INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL,
        announced_at       INTEGER,                  -- every planned notice committed
        reminded_at        INTEGER,                  -- day-before reminder done
        source_updated_at  TEXT,                     -- marketing's change time: the poll watermark
        UNIQUE (source, external_id)
    );
    CREATE INDEX outages_upcoming ON outages (start_at) WHERE status != 'cancelled';

    -- One row per outage, phone, notice kind and outage version: the dedup set, and the list
    -- of phones that change and cancellation notices go to.
    CREATE TABLE outage_notices (
        outage_id   INTEGER NOT NULL REFERENCES outages (id) ON DELETE CASCADE,
        phone       TEXT    NOT NULL,                -- E.164
        kind        TEXT    NOT NULL,                -- 'planned' | 'reminder' | 'changed' | 'cancelled'
        version     INTEGER NOT NULL,
        account     TEXT,
        name        TEXT,
        message_id  INTEGER,                         -- no FK: messages are pruned on their own
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (outage_id, kind, phone, version)
    ) WITHOUT ROWID;
    "#,
    // 8: inbound: raw PDUs (deduplicated, kept until reassembled), the inbox, reply rate
    // limits, and the modem a reply should preferably leave from.
    r#"
    CREATE TABLE inbound_pdus (
        id             INTEGER PRIMARY KEY,
        dedupe_key     TEXT    NOT NULL UNIQUE,    -- hash of SIM, slot, PDU octets: read twice = once
        modem          TEXT    NOT NULL,
        sim            TEXT    NOT NULL,
        storage_index  INTEGER,
        pdu            BLOB    NOT NULL,           -- as the modem printed it, SMSC field first
        received_at    INTEGER NOT NULL,
        state          TEXT    NOT NULL,           -- 'pending' | 'done' | 'duplicate' | 'bad'
        group_key      TEXT,                       -- multipart: sender|reference|total
        inbox_id       INTEGER
    );
    CREATE INDEX inbound_pdus_pending ON inbound_pdus (id) WHERE state = 'pending';
    CREATE INDEX inbound_pdus_group ON inbound_pdus (group_key) WHERE state = 'pending';

    CREATE TABLE inbox (
        id           INTEGER PRIMARY KEY,
        sender       TEXT    NOT NULL,             -- as received: +86..., 10086, alphanumeric
        text         TEXT    NOT NULL,
        modem        TEXT    NOT NULL,
        sim          TEXT,
        received_at  INTEGER NOT NULL,
        parts        INTEGER NOT NULL,
        state        TEXT    NOT NULL,             -- 'received' | 'replied' | 'handled' | 'ignored' | 'rate_limited' | 'failed'
        command      TEXT,
        account      TEXT,
        reply_id     INTEGER,                      -- messages.id of the answer
        note         TEXT,
        handled_at   INTEGER
    );
    CREATE INDEX inbox_sender ON inbox (sender, id);
    CREATE INDEX inbox_received ON inbox (received_at);
    CREATE INDEX inbox_open ON inbox (id) WHERE state = 'received';

    -- Fixed-window reply counters (per phone, per phone for unknown text, overall), persisted
    -- so a restart does not hand a spammer a fresh allowance.
    CREATE TABLE inbound_rate (
        key           TEXT    NOT NULL,
        window_start  INTEGER NOT NULL,
        n             INTEGER NOT NULL,
        PRIMARY KEY (key, window_start)
    ) WITHOUT ROWID;

    ALTER TABLE messages ADD COLUMN prefer_modem TEXT;
    "#,
    // 9: staff — the append-only audit trail (see store::audit). No index on
    // messages.created_at for the reports: every enqueued row would pay for it, while a report
    // scans on its own read-only connection, off the sending path.
    r#"
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        actor       TEXT    NOT NULL,              -- token name, job name, 'sighup'
        action      TEXT    NOT NULL,              -- store::audit::AuditAction
        target      TEXT,
        recipients  INTEGER NOT NULL DEFAULT 0,
        result      TEXT    NOT NULL,              -- 'ok' | 'refused: ...' | 'error: ...'
        detail      TEXT,                          -- JSON
        batch_id    TEXT
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_actor ON audit (actor, id);
    -- The retention gate: rows older than prune_before may be deleted, no others, and the
    -- gate only moves forward (store::audit::prune never moves it closer than 183 days).
    CREATE TABLE audit_retention (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        prune_before  INTEGER NOT NULL
    );
    INSERT INTO audit_retention (id, prune_before) VALUES (1, 0);
    CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit BEGIN
        SELECT RAISE(ABORT, 'the audit trail is append-only');
    END;
    CREATE TRIGGER audit_delete_only_by_retention BEFORE DELETE ON audit
        WHEN OLD.at >= (SELECT prune_before FROM audit_retention WHERE id = 1) BEGIN
        SELECT RAISE(ABORT, 'audit entries are deleted only by retention');
    END;
    CREATE TRIGGER audit_retention_forward BEFORE UPDATE ON audit_retention
        WHEN NEW.prune_before < OLD.prune_before BEGIN
        SELECT RAISE(ABORT, 'the audit retention gate only moves forward');
    END;
    CREATE TRIGGER audit_retention_kept BEFORE DELETE ON audit_retention BEGIN
        SELECT RAISE(ABORT, 'the audit retention gate cannot be removed');
    END;
    "#,
    // 10: idempotency keys in a partial unique index. The column-level UNIQUE of version 1
    // indexed every row, keyless ones included (SQLite indexes NULLs), and that index was the
    // largest single cost of a keyless bulk enqueue. SQLite cannot drop the index of a column
    // constraint, so the table is rebuilt (SQLite's documented 12-step procedure; `migrate`
    // turns foreign keys off around it so dropping the old table does not cascade into
    // `segments`, and checks them before committing). Columns keep their order and
    // definitions; indexes and triggers are recreated exactly as versions 1, 2 and 5 made
    // them.
    r#"
    CREATE TABLE messages_rebuilt (
        id               INTEGER PRIMARY KEY,
        recipient        TEXT    NOT NULL,           -- E.164, +86...
        text             TEXT    NOT NULL,
        category         TEXT    NOT NULL,
        priority         INTEGER NOT NULL,
        not_before       INTEGER,
        expires_at       INTEGER,
        idempotency_key  TEXT,                       -- unique when set: messages_idempotency
        content_hash     INTEGER NOT NULL,           -- compared only between rows of one key
        state            TEXT    NOT NULL DEFAULT 'queued',
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT,
        modem            TEXT,                       -- modem name of the last claim
        sim_iccid        TEXT,                       -- SIM identity of the last claim
        origin           TEXT,                       -- who made it: api token, job name
        batch_id         TEXT,                       -- for cancelling a whole run
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        next_attempt_at  INTEGER NOT NULL,           -- max(not_before, retry time)
        sent_at          INTEGER,
        delivered_at     INTEGER,
        account          TEXT,
        station          TEXT,
        prefer_modem     TEXT
    );
    INSERT INTO messages_rebuilt (id, recipient, text, category, priority, not_before,
            expires_at, idempotency_key, content_hash, state, attempts, last_error, modem,
            sim_iccid, origin, batch_id, created_at, updated_at, next_attempt_at, sent_at,
            delivered_at, account, station, prefer_modem)
        SELECT id, recipient, text, category, priority, not_before, expires_at,
            idempotency_key, content_hash, state, attempts, last_error, modem, sim_iccid,
            origin, batch_id, created_at, updated_at, next_attempt_at, sent_at, delivered_at,
            account, station, prefer_modem
        FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_rebuilt RENAME TO messages;

    CREATE UNIQUE INDEX messages_idempotency ON messages (idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX messages_ready ON messages (priority, category, next_attempt_at)
        WHERE state = 'queued';
    CREATE INDEX messages_expiry ON messages (expires_at)
        WHERE state = 'queued' AND expires_at IS NOT NULL;
    CREATE INDEX messages_sending ON messages (id) WHERE state = 'sending';
    CREATE INDEX messages_recipient ON messages (recipient);
    CREATE INDEX messages_finished ON messages (updated_at)
        WHERE state NOT IN ('queued', 'sending');
    CREATE INDEX messages_account_queued ON messages (category, account)
        WHERE state = 'queued' AND account IS NOT NULL;
    CREATE TRIGGER messages_count_update AFTER UPDATE OF state, category ON messages
        WHEN OLD.state IS NOT NEW.state OR OLD.category IS NOT NEW.category BEGIN
        UPDATE message_counts SET n = n - 1 WHERE state = OLD.state AND category = OLD.category;
        INSERT INTO message_counts (state, category, n) VALUES (NEW.state, NEW.category, 1)
            ON CONFLICT (state, category) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
        UPDATE message_counts SET n = n - 1 WHERE state = OLD.state AND category = OLD.category;
    END;
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// How commits reach the disk by default. See the store module docs for why enqueue
/// transactions are raised to FULL.
pub(crate) const BASE_SYNCHRONOUS: &str = "NORMAL";

/// Set the per-connection pragmas. Must run outside a transaction.
pub fn configure(conn: &Connection, busy_timeout: Duration) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout)?;
    // WAL: readers never block the writer, and a commit is one sequential append.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(StoreError::Pragma(format!(
            "journal_mode is {mode}, wanted wal"
        )));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {BASE_SYNCHRONOUS};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8192;"
    ))?;
    Ok(())
}

/// Read the schema version.
pub fn version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("user_version {v}")))
}

/// Bring the schema to [`CURRENT_VERSION`]; returns the version found before.
pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    apply_up_to(conn, CURRENT_VERSION)
}

/// Apply migrations until the schema is at `target`. Public so tests can build every past
/// version exactly as an old binary left it.
#[doc(hidden)]
pub fn apply_up_to(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    // A migration may rebuild a parent table (version 10 rebuilds `messages`); with foreign
    // keys on, dropping the old table would delete every child row. SQLite's documented
    // procedure: keys off outside the transaction, verify them before committing, restore.
    let keys_were_on: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    if keys_were_on {
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    }
    let applied = apply_in_transaction(conn, target);
    if keys_were_on {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    applied
}

fn apply_in_transaction(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    if found > CURRENT_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    let target = target.min(CURRENT_VERSION);
    let broken_before = if target > found {
        foreign_key_violations(&tx)?
    } else {
        0
    };
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(found as usize)
    {
        tx.execute_batch(sql)
            .map_err(|source| StoreError::Migration {
                version: i as u32 + 1,
                source,
            })?;
    }
    if target > found {
        // Rows orphaned before (only a hand edit with keys off makes them) are not this
        // migration's doing and must not stop the daemon; new ones are.
        let broken_after = foreign_key_violations(&tx)?;
        if broken_after > broken_before {
            return Err(StoreError::Corrupt(format!(
                "migrating to version {target} would orphan {} rows",
                broken_after - broken_before
            )));
        }
        tx.pragma_update(None, "user_version", target)?;
    }
    tx.commit()?;
    Ok(found)
}

/// Rows whose foreign key points at nothing, over the whole database.
fn foreign_key_violations(conn: &Connection) -> Result<usize, StoreError> {
    let mut check = conn.prepare("PRAGMA foreign_key_check")?;
    let mut rows = check.query([])?;
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}
