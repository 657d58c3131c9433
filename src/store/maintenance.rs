//! Care of the SQLite file itself: private modes on what `serve` creates, the
//! cheap check at start and the full integrity check (`flowctl db check`), the
//! online backup (`flowctl db backup`), telling real corruption apart from
//! other errors, and the final WAL checkpoint of a clean shutdown.
//! Depends on rusqlite and std only.

use super::{Result, StoreError};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};

/// Small tables checked at every start: they are read before anything else
/// and stay small whatever the number of runs, so `quick_check` on them costs
/// milliseconds. The run tables are checked by `flowctl db check` only.
const CHECKED_AT_START: [&str; 4] = ["workflows", "workflow_versions", "api_keys", "connections"];

/// Problems `db check` prints at most (SQLite stops at 100 by default too).
const MAX_PROBLEMS: usize = 100;

/// Create `dir` and its missing parents with mode 0700, whatever the umask:
/// the data dir holds every run's input and output. An existing dir is kept as is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Create `path` empty with mode 0600 if it does not exist. SQLite gives the
/// `-wal` and `-shm` files the mode of the database file, so this covers them.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether SQLite says the file itself is damaged (not a busy, full or I/O error).
pub fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Start-up errors with the file named and, for the usual causes, what to do.
pub(crate) fn name_the_file(path: &Path, e: StoreError) -> StoreError {
    let reason = match &e {
        StoreError::Unavailable(text)
            if text.contains("read-only") || text.contains("readonly") =>
        {
            format!(
                "it is read-only ({text}); flowctl writes the file, its -wal and -shm files \
                 and their directory: check the modes and the mount"
            )
        }
        StoreError::Unavailable(text) | StoreError::Backend(text) => format!(
            "{text}; check that it and its directory are readable and writable by this user"
        ),
        StoreError::Corrupt(cause) => return corrupt(path, cause),
        _ => return e,
    };
    StoreError::Open {
        path: path.display().to_string(),
        reason,
    }
}

pub(crate) fn corrupt(path: &Path, cause: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "{} ({cause}); stop flowctl, run `flowctl db check --db {}` and restore a backup",
        path.display(),
        path.display()
    ))
}

/// Start-up check: `quick_check` of the small tables (see `CHECKED_AT_START`).
pub(crate) fn check_at_start(conn: &Connection, path: &Path) -> Result<()> {
    for table in CHECKED_AT_START {
        let found: String = conn
            .query_row(&format!("PRAGMA quick_check({table})"), [], |r| r.get(0))
            .map_err(|e| name_the_file(path, e.into()))?;
        if found != "ok" {
            return Err(corrupt(path, &format!("table {table}: {found}")));
        }
    }
    Ok(())
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on a fresh connection; false when busy.
pub(crate) fn checkpoint_truncate(path: &Path) -> Result<bool> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

/// Open an existing database for a maintenance command, changing nothing.
fn open_existing(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(StoreError::Open {
            path: path.display().to_string(),
            reason: "no such database file (pass --db, or set FLOWCTL_DB)".into(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| name_the_file(path, e.into()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// The outcome of a full integrity check.
#[derive(Debug)]
pub struct CheckReport {
    /// Empty when the file is sound; otherwise SQLite's findings, each
    /// prefixed with the table or index it concerns where SQLite says so.
    pub problems: Vec<String>,
    pub runs: Option<i64>,
}

/// `PRAGMA integrity_check` over the whole file, plus foreign keys.
/// A file so damaged that the check cannot run is reported as a problem.
pub fn integrity_check(path: &Path) -> Result<CheckReport> {
    let conn = open_existing(path)?;
    let names = tree_names(&conn);
    let mut problems = Vec::new();
    let check = (|| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare(&format!("PRAGMA integrity_check({MAX_PROBLEMS})"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for row in rows {
            let line = row?;
            if line != "ok" {
                problems.push(with_tree_name(&line, &names));
            }
        }
        let mut fk = conn.prepare("PRAGMA foreign_key_check")?;
        let rows = fk.query_map([], |r| {
            Ok(format!(
                "table {}: row {} refers to a missing row of {}",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or(-1),
                r.get::<_, String>(2)?
            ))
        })?;
        for row in rows {
            problems.push(row?);
        }
        Ok(())
    })();
    match check {
        Ok(()) => {}
        Err(e) if is_corruption(&e) => problems.push(e.to_string()),
        Err(e) => return Err(e.into()),
    }
    let runs = conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .ok();
    Ok(CheckReport { problems, runs })
}

/// Root page → table or index name, when the schema itself is readable.
fn tree_names(conn: &Connection) -> Vec<(i64, String)> {
    let read = || -> rusqlite::Result<Vec<(i64, String)>> {
        let mut stmt = conn.prepare(
            "SELECT rootpage, type || ' ' || name FROM sqlite_schema WHERE rootpage > 0",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    };
    read().unwrap_or_default()
}

/// "Tree 7 page 9 cell 0: …" → "table steps: Tree 7 page 9 cell 0: …".
fn with_tree_name(line: &str, names: &[(i64, String)]) -> String {
    let root = line
        .split_once("Tree ")
        .or_else(|| line.split_once("tree "))
        .and_then(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<i64>().ok())
        });
    match root.and_then(|r| names.iter().find(|(page, _)| *page == r)) {
        Some((_, name)) => format!("{name}: {line}"),
        None => line.to_string(),
    }
}

/// A consistent copy of the database at `dest` (mode 0600) while the server
/// may keep running: `VACUUM INTO` reads one snapshot, so the copy holds
/// every write committed before it started, WAL included. Written beside
/// `dest` and renamed, so a failed backup never leaves a partial file there.
pub fn backup(path: &Path, dest: &Path) -> Result<u64> {
    if dest.exists() {
        return Err(StoreError::Open {
            path: dest.display().to_string(),
            reason: "it already exists; pick a new file name (a backup never overwrites)".into(),
        });
    }
    let conn = open_existing(path)?;
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    let _ = std::fs::remove_file(&partial);
    let io = |e: std::io::Error| StoreError::Open {
        path: dest.display().to_string(),
        reason: e.to_string(),
    };
    create_private_file(&partial).map_err(io)?;
    let copied = conn
        .execute("VACUUM INTO ?1", [partial.display().to_string()])
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            name_the_file(path, e.into())
        });
    copied?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&partial, dest).map_err(io)?;
    Ok(std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_numbers_are_named() {
        let names = vec![(7, "table steps".to_string())];
        assert_eq!(
            with_tree_name("Tree 7 page 9 cell 0: bad", &names),
            "table steps: Tree 7 page 9 cell 0: bad"
        );
        assert_eq!(with_tree_name("row 3 missing", &names), "row 3 missing");
    }
}
