//! Random identifiers and API keys (`run_…`, `wfk_…`); no I/O.

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` random base62 characters from the thread-local CSPRNG.
pub fn base62(len: usize) -> String {
    (0..len)
        .map(|_| BASE62[rand::random_range(0..BASE62.len())] as char)
        .collect()
}

/// Time-ordered (milliseconds, base62, fixed width) then random: new ids land
/// at the end of the id index instead of on a random page of it.
pub fn run_id() -> String {
    let mut ms = u64::try_from(crate::time::now_ms()).unwrap_or(0);
    let mut stamp = [b'0'; 8];
    for slot in stamp.iter_mut().rev() {
        *slot = BASE62[(ms % 62) as usize];
        ms /= 62;
    }
    format!("run_{}{}", String::from_utf8_lossy(&stamp), base62(16))
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

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_sort_by_creation_time() {
        let a = super::run_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::run_id();
        assert_eq!((a.len(), b.len()), (28, 28));
        assert!(a[..12] < b[..12], "{a} {b}");
    }
}
