//! Helpers the crates' tests share (a dev-dependency only, never shipped).
//!
//! [`TestPki`]: a certificate authority made at test time and `localhost` certificates it
//! signs, with the rustls server and client settings the TLS tests need, so no test carries a
//! fixed key and every test of a TLS path uses the same, independent-client-proof PKI (CA and
//! leaf have distinct names, which OpenSSL-based clients such as curl require).

#![deny(missing_docs)]

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test certificate authority.
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate for `localhost` and its key, signed by a [`TestPki`].
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER (to compare with what a server presented).
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// A fresh CA.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Spindle test CA");
        let key = KeyPair::generate().expect("a key");
        TestPki {
            ca: CertifiedIssuer::self_signed(params, key).expect("a CA certificate"),
        }
    }

    /// The CA certificate, PEM (for `SSL_CERT_FILE`, `curl --cacert`, extra roots).
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A new certificate for `localhost`.
    pub fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("a leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: CertificateDer::from(cert.der().to_vec()),
            key_der: key.serialize_der(),
        }
    }

    /// A TLS acceptor presenting `leaf` (and the CA after it).
    pub fn acceptor(&self, leaf: &Leaf) -> tokio_rustls::TlsAcceptor {
        let chain = vec![
            leaf.cert_der.clone(),
            CertificateDer::from(self.ca.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server certificate");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// A TLS connector trusting this CA only.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.der().to_vec()))
            .expect("the CA certificate");
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
