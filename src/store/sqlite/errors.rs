//! SQLite errors as `StoreError`s: a full disk, a read-only or vanished
//! file are `Unavailable` (retry later, nothing changed), a held lock is
//! `Busy`, everything else keeps SQLite's own words.

use crate::store::StoreError;
use rusqlite::ErrorCode;

/// `other` builds the error for causes that are not about storage space or
/// access (`StoreError::Begin`, `StoreError::Commit`, `StoreError::Backend`).
pub(crate) fn classify(e: rusqlite::Error, other: fn(String) -> StoreError) -> StoreError {
    let text = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Unavailable(format!("disk full ({text})")),
        Some(ErrorCode::ReadOnly) => {
            StoreError::Unavailable(format!("the database is read-only ({text})"))
        }
        Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::Unavailable(text)
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(text),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy(text),
        _ => other(text),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        classify(e, StoreError::Backend)
    }
}
