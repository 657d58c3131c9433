//! Encryption at rest for connection secrets (docs/workflows.md, "Connections"): XChaCha20-Poly1305 under a 32-byte
//! key from a key file (created 0600 on first start) or `FLOWCTL_SECRET_KEY`.
//! Depends on chacha20poly1305, rand and base64 only.
//!
//! Blob layout: a random 24-byte nonce followed by the ciphertext and its 16-byte tag. The
//! extended nonce makes random nonces safe for any number of secrets under one key.
//! Key text: 64 hex characters, or base64 (standard or URL-safe, padding optional) of 32
//! bytes; surrounding whitespace is ignored. The key file holds the key as hex.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "invalid secret key: expected 32 bytes as 64 hex characters or base64 \
         (generate one with `openssl rand -hex 32`), got {0}"
    )]
    InvalidKey(String),
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("secret key file {path}: {reason}")]
    KeyFileContent { path: String, reason: String },
    #[error("a stored secret could not be decrypted: wrong secret key or corrupted data")]
    Decrypt,
}

/// The secret key and its cipher. `Clone`; `Debug` shows no key material.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// HMAC key derived from the secret key (callback tokens, form tokens).
    mac_key: [u8; 32],
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox { key: [REDACTED] }")
    }
}

const KEY_CHECK: &str = "flowctl secret key check";

impl SecretBox {
    /// A `FLOWCTL_SECRET_KEY`-style value: 32 bytes as 64 hex characters or base64.
    pub fn from_key_text(s: &str) -> Result<SecretBox, SecretError> {
        let text = s.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(text)
        } else {
            decode_base64(text).ok_or_else(|| {
                SecretError::InvalidKey(format!("{} characters that are neither", text.len()))
            })?
        };
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SecretError::InvalidKey(format!("{} bytes after decoding", bytes.len()))
        })?;
        Ok(SecretBox::from_key(key))
    }

    fn from_key(key: [u8; 32]) -> SecretBox {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"flowctl mac key\n");
        h.update(key);
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
            mac_key: h.finalize().into(),
        }
    }

    /// HMAC-SHA256 of `data` under a key derived from the secret key: the same
    /// on every node that shares the key, unforgeable without it.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, KeyInit, Mac};
        let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.mac_key)
            .expect("HMAC accepts any key length");
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Read the key file, or create it (parent directories too, 0700) with mode 0600
    /// holding a fresh random key. The bool says whether it was created.
    ///
    /// Creation is atomic and never overwrites: the key is written to a temporary file
    /// that is then hard-linked into place, so two processes starting at once agree on
    /// one key and a crash never leaves a half-written key file.
    pub fn load_or_create(path: &Path) -> Result<(SecretBox, bool), SecretError> {
        let io_err = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return Self::from_file_text(path, &text).map(|b| (b, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(io_err)?;
        }
        let key: [u8; 32] = rand::random();
        let suffix: u64 = rand::random();
        let tmp = path.with_extension(format!("tmp-{suffix:016x}"));
        let written = write_private(&tmp, &encode_hex(&key));
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Persist the new directory entry; best effort on platforms without it.
                    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
                }
                Ok((SecretBox::from_key(key), true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(io_err)?;
                Self::from_file_text(path, &text).map(|b| (b, false))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    fn from_file_text(path: &Path, text: &str) -> Result<SecretBox, SecretError> {
        SecretBox::from_key_text(text).map_err(|e| SecretError::KeyFileContent {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// A value sealed with this key that a store keeps, so every process
    /// sharing the store can tell whether its key is the same (base64).
    pub fn check_value(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.encrypt(KEY_CHECK))
    }

    /// Whether `stored` (a `check_value`) was sealed with this key.
    pub fn opens_check(&self, stored: &str) -> bool {
        base64::engine::general_purpose::STANDARD
            .decode(stored.as_bytes())
            .ok()
            .and_then(|blob| self.decrypt(&blob).ok())
            .as_deref()
            == Some(KEY_CHECK)
    }

    /// Encrypt: random nonce || ciphertext (with tag).
    pub fn encrypt(&self, plaintext: &str) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ciphertext);
        blob
    }

    /// Decrypt a blob made by [`SecretBox::encrypt`] under the same key.
    pub fn decrypt(&self, blob: &[u8]) -> Result<String, SecretError> {
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce_bytes: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Decrypt)?;
        let plaintext = self
            .cipher
            .decrypt(&XNonce::from(nonce_bytes), ciphertext)
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::Decrypt)
    }
}

fn decode_hex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).expect("ascii hex");
            u8::from_str_radix(s, 16).expect("checked hex digits")
        })
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.push('\n');
    s
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_keys_agree() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let bytes = decode_hex(hex);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let a = SecretBox::from_key_text(hex).unwrap();
        let b = SecretBox::from_key_text(&format!("  {b64}\n")).unwrap();
        assert_eq!(b.decrypt(&a.encrypt("x")).unwrap(), "x");
        assert_eq!(format!("{a:?}"), "SecretBox { key: [REDACTED] }");
    }

    #[test]
    fn truncated_blob_is_an_error() {
        let k = SecretBox::from_key_text(&"ab".repeat(32)).unwrap();
        assert!(matches!(k.decrypt(&[0u8; 10]), Err(SecretError::Decrypt)));
    }
}
