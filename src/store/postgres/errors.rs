//! PostgreSQL errors as `StoreError`s: a lost or refused connection, a full
//! disk or a read-only server are `Unavailable` (nothing changed, retry
//! later); serialization failures and deadlocks are `Busy`; everything else
//! keeps PostgreSQL's own words.

use crate::store::StoreError;
use tokio_postgres::error::SqlState;

pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // No server answer at all: the connection is gone or was refused.
        return StoreError::Unavailable(format!("PostgreSQL: {e}"));
    };
    let text = format!("PostgreSQL: {}", db.message());
    let code = db.code();
    let class = &code.code()[..2];
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        return StoreError::Busy(text);
    }
    match class {
        // connection exceptions, insufficient resources, operator
        // intervention (shutdown), system errors
        "08" | "53" | "57" | "58" => StoreError::Unavailable(text),
        _ if *code == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::Unavailable(text),
        _ => StoreError::Backend(text),
    }
}

pub(crate) fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        other => StoreError::Unavailable(format!("PostgreSQL pool: {other}")),
    }
}
