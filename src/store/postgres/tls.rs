//! TLS for `sslmode=require` through rustls: the server certificate is
//! verified against the Mozilla roots, plus the CA file named by
//! `PGSSLROOTCERT` (libpq's variable) for a private CA. `sslmode=prefer`
//! (the default) connects without TLS; `disable` never tries it.

use std::sync::Arc;
use tokio_postgres::config::SslMode;

pub type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for this configuration (which may be switched to plain
/// text for `prefer`).
pub fn prepare(config: &mut tokio_postgres::Config) -> Result<Tls, String> {
    if config.get_ssl_mode() == SslMode::Prefer {
        config.ssl_mode(SslMode::Disable);
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Ok(path) = std::env::var("PGSSLROOTCERT") {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| format!("PGSSLROOTCERT {path}: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("PGSSLROOTCERT {path}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("PGSSLROOTCERT {path}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}
