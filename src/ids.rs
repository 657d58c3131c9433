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
    hex(&Sha256::digest(key.as_bytes()))
}

/// Lowercase hex in one allocation (a `format!` per byte showed in profiles).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// A random (version 4) UUID in its usual text form, from the thread-local
/// generator: no system call per request id.
pub fn uuid_v4() -> String {
    let mut b = rand::random::<[u8; 16]>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_and_uuids_have_their_usual_text_form() {
        assert_eq!(
            super::hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let u = super::uuid_v4();
        let parts: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{u}");
        assert_eq!(&u[14..15], "4", "{u}");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, super::uuid_v4());
    }

    #[test]
    fn run_ids_sort_by_creation_time() {
        let a = super::run_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::run_id();
        assert_eq!((a.len(), b.len()), (28, 28));
        assert!(a[..12] < b[..12], "{a} {b}");
    }
}
