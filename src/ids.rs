//! Random identifiers and API keys (`run_…`, `wfk_…`); no I/O.

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` random base62 characters from the thread-local CSPRNG.
pub fn base62(len: usize) -> String {
    (0..len)
        .map(|_| BASE62[rand::random_range(0..BASE62.len())] as char)
        .collect()
}

pub fn run_id() -> String {
    format!("run_{}", base62(24))
}

pub fn api_key() -> String {
    format!("wfk_{}", base62(32))
}

pub fn key_id() -> String {
    format!("key_{}", base62(16))
}

/// API keys are stored and looked up only as this hex SHA-256.
pub fn hash_api_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
