//! Online backup of the outbox: a consistent copy taken while the daemon keeps writing.
//!
//! `VACUUM INTO` on a connection of its own, opened read-only. It runs inside one read
//! transaction, so the copy is the database as of the moment the backup began (WAL snapshot
//! isolation) and never contains half of a transaction. In WAL mode a reader does not block
//! the writer: the daemon's commits go on appending to the WAL while the copy is made; only
//! checkpoints cannot move past the backup's snapshot until it ends, so the WAL grows a little
//! meanwhile. (The online-backup API restarts whenever another connection writes, which under
//! a steady stream of enqueues may never finish; `VACUUM INTO` has no such problem and also
//! leaves a compact file.)
//!
//! The copy is written to a temporary name beside the target, verified (`integrity_check`,
//! schema version), fsynced and only then renamed into place, so a crash or a failed check
//! never leaves a file at the target path that looks like a good backup.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::migrations;

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub messages: u64,
    pub bytes: u64,
    pub schema_version: u32,
    /// Wall time of the copy and its verification.
    #[serde(serialize_with = "ser_millis")]
    pub elapsed: Duration,
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Why a backup failed. Nothing is left at the target path in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error("database {0} does not exist")]
    NoSource(PathBuf),
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("copy to {path} failed: {source}")]
    Copy {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the copy failed verification: {0}")]
    Verify(String),
    #[error("database schema version {found} is not one this gridsms knows (≤ {supported})")]
    Schema { found: u32, supported: u32 },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Copy the database at `source` to `target`, consistently, while other connections write.
/// Refuses an existing `target` unless `force`. The source must be a gridsms database (a
/// schema version this build knows).
pub fn backup(source: &Path, target: &Path, force: bool) -> Result<BackupSummary, BackupError> {
    let started = Instant::now();
    if !source.exists() {
        return Err(BackupError::NoSource(source.to_owned()));
    }
    if target.exists() && !force {
        return Err(BackupError::Exists(target.to_owned()));
    }
    let tmp = temp_name(target);
    // A stale temp file from a crashed run would make VACUUM INTO fail.
    let _ = std::fs::remove_file(&tmp);
    let result = copy_and_verify(source, &tmp);
    let (messages, schema_version) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| BackupError::Io { what, path, source }
    };
    let synced = File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("cannot sync", &tmp));
    if let Err(e) =
        synced.and_then(|_| std::fs::rename(&tmp, target).map_err(io("cannot rename to", target)))
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory entry is.
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    let bytes = std::fs::metadata(target)
        .map_err(io("cannot stat", target))?
        .len();
    Ok(BackupSummary {
        path: target.to_owned(),
        messages,
        bytes,
        schema_version,
        elapsed: started.elapsed(),
    })
}

/// `dir/.name.tmp-PID`: same directory (rename stays atomic), hidden, unique per process.
fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gridsms-backup".into());
    target.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn copy_and_verify(source: &Path, tmp: &Path) -> Result<(u64, u32), BackupError> {
    let open_err = |path: &Path| {
        let path = path.to_owned();
        move |source| BackupError::Open { path, source }
    };
    // Read-only: the backup never writes to the live database (and never migrates it).
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err(source))?;
    // The daemon's checkpoints may briefly lock the WAL index; wait rather than fail.
    src.busy_timeout(Duration::from_secs(10))
        .map_err(open_err(source))?;
    let found = migrations::version(&src).map_err(|e| BackupError::Verify(e.to_string()))?;
    if found == 0 || found > migrations::CURRENT_VERSION {
        return Err(BackupError::Schema {
            found,
            supported: migrations::CURRENT_VERSION,
        });
    }
    let tmp_str = tmp.to_string_lossy();
    src.execute("VACUUM INTO ?1", [tmp_str.as_ref()])
        .map_err(|source| BackupError::Copy {
            path: tmp.to_owned(),
            source,
        })?;
    drop(src);
    verify(tmp)
}

/// `integrity_check`, the schema version, and the message count of a backup file.
pub fn verify(path: &Path) -> Result<(u64, u32), BackupError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| BackupError::Open {
        path: path.to_owned(),
        source,
    })?;
    let sql = |e: rusqlite::Error| BackupError::Verify(e.to_string());
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(sql)?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql)?
        .take(10)
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    if problems != ["ok"] {
        return Err(BackupError::Verify(problems.join("; ")));
    }
    let version = migrations::version(&conn).map_err(|e| BackupError::Verify(e.to_string()))?;
    if version == 0 || version > migrations::CURRENT_VERSION {
        return Err(BackupError::Schema {
            found: version,
            supported: migrations::CURRENT_VERSION,
        });
    }
    let messages: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .map_err(sql)?;
    Ok((u64::try_from(messages).unwrap_or(0), version))
}
