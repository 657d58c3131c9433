//! One server per database file: an exclusive OS lock (`flock`) on the
//! database file itself, so every path to the same file (symlink, hard
//! link, relative or absolute) meets the same lock. SQLite's own locks are
//! POSIX record locks, which do not interact with `flock` on Linux; the
//! handle stays open for the life of the store, so closing it never drops
//! SQLite's locks early.

use crate::store::{Result, StoreError};
use std::fs::File;
use std::path::Path;

pub(super) fn lock_database_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let mut options = File::options();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            Err(StoreError::InUse(format!(
                "another flowctl serve is using the database file {} (reached here as {}); stop it or pass a different --db",
                real.display(),
                path.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Open {
            path: path.display().to_string(),
            reason: format!("cannot lock the file: {e}"),
        }),
    }
}
