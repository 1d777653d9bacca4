//! HTTPS: a self-signed certificate made at start (rcgen); `listen` serves through it.

use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate and the TLS configuration serving it.
pub(crate) struct Certificate {
    pub(crate) pem: String,
    pub(crate) config: Arc<ServerConfig>,
}

/// Makes a self-signed certificate for `hosts` (names or IP addresses).
pub(crate) fn self_signed(hosts: Vec<String>) -> Result<Certificate, String> {
    let certified = rcgen::generate_simple_self_signed(hosts).map_err(|e| e.to_string())?;
    let pem = certified.cert.pem();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Certificate {
        pem,
        config: Arc::new(config),
    })
}
