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

/// Whether this error, or any error it was caused by, is rustls refusing the server's
/// certificate (unknown issuer, expired, another host's, none at all): the cue for
/// [`TransportError::Certificate`] rather than [`TransportError::Connect`]. It sees through
/// `std::io::Error` (how a TLS stream reports a failed handshake) and through the chain of
/// [`source`](std::error::Error::source)s (how an HTTP client such as reqwest reports it).
pub fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    // Bounded: a chain of causes is short, and a cyclic one must not hang.
    for _ in 0..32 {
        let Some(e) = next else { return false };
        if let Some(rustls) = e.downcast_ref::<rustls::Error>() {
            if matches!(
                rustls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            ) {
                return true;
            }
        }
        // An io::Error's `source` is its inner error's source, not the inner error itself.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if is_certificate_error(inner) {
                return true;
            }
        }
        next = e.source();
    }
    false
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

    #[derive(Debug)]
    struct Wrapper(Box<dyn std::error::Error + Send + Sync>);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("request failed")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn certificate_errors_are_found_however_wrapped() {
        let refused = || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let bare = refused();
        assert!(is_certificate_error(&bare));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, refused());
        assert!(is_certificate_error(&io));
        let chained = Wrapper(Box::new(Wrapper(Box::new(
            std::io::Error::other(refused()),
        ))));
        assert!(is_certificate_error(&chained));
        assert!(is_certificate_error(
            &rustls::Error::NoCertificatesPresented
        ));
        // Other TLS failures, and other errors, are not about the certificate.
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert!(!is_certificate_error(&alert));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, alert);
        assert!(!is_certificate_error(&Wrapper(Box::new(io))));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!is_certificate_error(&refused));
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
