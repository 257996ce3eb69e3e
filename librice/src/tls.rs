//! The TLS client configuration for TURN servers over TLS (RFC 8656 §3.1): the Mozilla
//! root certificates (webpki-roots), or, when asked for tests against self-signed servers,
//! no certificate verification at all.
//!
//! Built once per process, on first use, for each of the two kinds (a `OnceLock` each), and
//! shared by every agent: building one parses the root store, which is not free.
//!
//! The crypto provider is the process default if the application installed one
//! (`CryptoProvider::install_default`, e.g. for FIPS), otherwise rustls's recommended
//! aws-lc-rs provider (rustls 0.23.48 deprecated the ring provider: it has no post-quantum
//! key exchange).

use std::sync::{Arc, OnceLock};

use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use futures_rustls::rustls::{
    ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// The process's client configuration verifying servers against the web's root
/// certificates, or, with `insecure`, accepting any certificate (never use that outside
/// tests). An error means the crypto provider cannot do TLS 1.2 or 1.3 (only possible with
/// a process-default provider the application installed).
pub(crate) fn client_config(insecure: bool) -> Result<Arc<ClientConfig>, Error> {
    static VERIFIED: OnceLock<Result<Arc<ClientConfig>, Error>> = OnceLock::new();
    static INSECURE: OnceLock<Result<Arc<ClientConfig>, Error>> = OnceLock::new();
    let cell = if insecure { &INSECURE } else { &VERIFIED };
    cell.get_or_init(|| build(insecure)).clone()
}

fn build(insecure: bool) -> Result<Arc<ClientConfig>, Error> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(aws_lc_rs::default_provider()));
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Accepts any server certificate; signatures are still checked, so the handshake itself
/// is sound, but the server is not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        futures_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        futures_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One configuration per kind per process: every agent shares it.
    #[test]
    fn built_once_per_kind() {
        let verified = client_config(false).unwrap();
        let insecure = client_config(true).unwrap();
        assert!(Arc::ptr_eq(&verified, &client_config(false).unwrap()));
        assert!(Arc::ptr_eq(&insecure, &client_config(true).unwrap()));
        assert!(!Arc::ptr_eq(&verified, &insecure));
    }
}
