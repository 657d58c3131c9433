//! Connection secrets at rest: round trip, wrong key, key file creation (0600), bad key text.

use flowctl::secrets::{SecretBox, SecretError};

const HEX_KEY: &str = "8f1c2e3d4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

#[test]
fn round_trip_and_fresh_nonces() {
    let key = SecretBox::from_key_text(HEX_KEY).unwrap();
    let a = key.encrypt("sk_live_abc123");
    let b = key.encrypt("sk_live_abc123");
    assert_ne!(a, b, "every encryption uses a fresh nonce");
    assert!(!String::from_utf8_lossy(&a).contains("sk_live_abc123"));
    assert_eq!(key.decrypt(&a).unwrap(), "sk_live_abc123");
    assert_eq!(key.decrypt(&key.encrypt("")).unwrap(), "");
    assert!(!format!("{key:?}").contains(HEX_KEY));
}

#[test]
fn wrong_key_or_tampering_fails() {
    let key = SecretBox::from_key_text(HEX_KEY).unwrap();
    let other = SecretBox::from_key_text(&"11".repeat(32)).unwrap();
    let mut blob = key.encrypt("password");
    assert!(matches!(other.decrypt(&blob), Err(SecretError::Decrypt)));
    let last = blob.len() - 1;
    blob[last] ^= 1;
    assert!(matches!(key.decrypt(&blob), Err(SecretError::Decrypt)));
    assert!(matches!(key.decrypt(b"short"), Err(SecretError::Decrypt)));
}

#[test]
fn bad_key_text_is_a_clear_error() {
    for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(31), "c2hvcnQ="] {
        let err = SecretBox::from_key_text(bad).unwrap_err();
        assert!(matches!(err, SecretError::InvalidKey(_)), "{bad}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("32 bytes") && text.contains("64 hex"),
            "{text}"
        );
    }
    // base64 of 32 bytes, with or without padding, standard or URL-safe.
    SecretBox::from_key_text("j/wuPUtaaXiHlqW0w9Lh8A8eLTxLWml4h5altMPS4fA=").unwrap();
    SecretBox::from_key_text("j_wuPUtaaXiHlqW0w9Lh8A8eLTxLWml4h5altMPS4fA").unwrap();
}

#[test]
fn key_file_is_created_private_then_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/secret.key");
    let (first, created) = SecretBox::load_or_create(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");

    let (second, created) = SecretBox::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(
        second.decrypt(&first.encrypt("same key")).unwrap(),
        "same key"
    );

    std::fs::write(&path, "garbage").unwrap();
    let err = SecretBox::load_or_create(&path).unwrap_err();
    assert!(err.to_string().contains("secret.key"), "{err}");
}
