//! The process-wide TLS client configuration (rustls with the webpki roots).
//!
//! Building a root store parses every root certificate (about 150 of them, some hundred KiB),
//! so it is done once per process and shared by every connection of every client, long poll
//! and WebSocket alike.

use std::sync::{Arc, OnceLock};

use chat_core::TransportError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

static DEFAULT: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();

/// The shared default configuration (the webpki roots, no ALPN); [`TransportError::Connect`]
/// if rustls refuses to build one (it does not with the bundled provider, but nothing here
/// may panic).
pub fn default_config() -> Result<Arc<ClientConfig>, TransportError> {
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

/// Why [`tls_config_with_roots`] built no configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRootsError {
    /// The text holds no PEM certificate, or a broken one.
    #[error("not a PEM certificate: {0}")]
    Pem(String),
    /// A certificate is not a usable trust anchor, or rustls refused the configuration.
    #[error("certificate refused: {0}")]
    Refused(String),
}

/// A TLS configuration that trusts the webpki roots and every certificate of `pem` (such as
/// the emulator's self-signed certificate), for
/// the adapters' `ClientBuilder::tls_config` and their transports' `with_tls_config`. It
/// offers no ALPN protocol (HTTP/1.1 only).
pub fn tls_config_with_roots(pem: &[u8]) -> Result<Arc<ClientConfig>, TlsRootsError> {
    let mut extra = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        extra.push(cert.map_err(|e| TlsRootsError::Pem(e.to_string()))?);
    }
    if extra.is_empty() {
        return Err(TlsRootsError::Pem("no certificate found".to_owned()));
    }
    let mut roots = default_roots();
    for cert in extra {
        roots
            .add(cert)
            .map_err(|e| TlsRootsError::Refused(e.to_string()))?;
    }
    with_roots(roots)
        .map(Arc::new)
        .map_err(|e| TlsRootsError::Refused(e.to_string()))
}

fn default_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn build() -> Result<ClientConfig, rustls::Error> {
    with_roots(default_roots())
}

fn with_roots(roots: RootCertStore) -> Result<ClientConfig, rustls::Error> {
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

    #[test]
    fn extra_roots_must_be_pem_certificates() {
        assert!(matches!(
            tls_config_with_roots(b"hello"),
            Err(TlsRootsError::Pem(_))
        ));
        let broken = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            tls_config_with_roots(broken),
            Err(TlsRootsError::Pem(_))
        ));
        // Valid base64, but not a certificate.
        let junk = b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            tls_config_with_roots(junk),
            Err(TlsRootsError::Refused(_))
        ));
    }
}
