//! Host name resolution for actions that open their own sockets (SMTP),
//! without glibc's NSS: the release binary is static and runs where no
//! `libnss_*.so` exists. Reads `/etc/hosts` and `/etc/resolv.conf` (the same
//! resolver reqwest uses for HTTP). Never falls back to a public DNS server.

use super::ActionError;
use hickory_resolver::config::ResolverConfig;
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{Resolver, TokioResolver};
use std::net::IpAddr;
use std::sync::OnceLock;

fn resolver() -> &'static TokioResolver {
    static RESOLVER: OnceLock<TokioResolver> = OnceLock::new();
    RESOLVER.get_or_init(|| {
        Resolver::builder_tokio()
            .unwrap_or_else(|e| {
                // No usable resolv.conf: /etc/hosts only, no name servers.
                tracing::warn!("no DNS configuration ({e}); resolving from /etc/hosts only");
                Resolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![]),
                    TokioConnectionProvider::default(),
                )
            })
            .build()
    })
}

/// An IP literal as is; a name through `/etc/hosts`, then DNS.
pub(crate) async fn resolve(host: &str) -> Result<IpAddr, ActionError> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(ip);
    }
    let found = resolver().lookup_ip(host).await.map_err(|e| {
        ActionError::new("SMTP", format!("cannot resolve host '{host}': {e}"), true)
    })?;
    found
        .iter()
        .next()
        .ok_or_else(|| ActionError::new("SMTP", format!("host '{host}' has no address"), true))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn literals_and_hosts_file_names() {
        assert_eq!(
            super::resolve("127.0.0.1").await.unwrap().to_string(),
            "127.0.0.1"
        );
        assert_eq!(super::resolve("[::1]").await.unwrap().to_string(), "::1");
        assert!(super::resolve("localhost").await.unwrap().is_loopback());
    }
}
