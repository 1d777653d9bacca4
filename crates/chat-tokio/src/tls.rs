//! The process-wide TLS client configuration (rustls with the webpki roots).
//!
//! Building a root store parses every root certificate (about 150 of them, some hundred KiB),
//! so it is done once per process and shared by every connection of every client, long poll
//! and WebSocket alike.

use std::sync::{Arc, OnceLock};

use chat_core::TransportError;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

static DEFAULT: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();

/// The shared default configuration; [`TransportError::Connect`] if rustls refuses to build
/// one (it does not with the bundled provider, but nothing here may panic).
pub(crate) fn default_config() -> Result<Arc<ClientConfig>, TransportError> {
    DEFAULT
        .get_or_init(|| match build() {
            Ok(config) => Some(Arc::new(config)),
            Err(e) => {
                tracing::warn!(error = %e, "TLS configuration failed");
                None
            }
        })
        .clone()
        .ok_or(TransportError::Connect)
}

fn build() -> Result<ClientConfig, rustls::Error> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // An explicit provider: the process-wide default may be unset, or ambiguous when several
    // crates of the application enable different ones.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_configuration_per_process() {
        let a = default_config().expect("builds");
        let b = default_config().expect("builds");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
