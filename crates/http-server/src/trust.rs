//! Whom Spindle's outbound HTTPS clients trust: rustls (no OpenSSL) on the `ring` provider,
//! the system's root certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them, as for
//! OpenSSL tools) plus any extra CA certificates the operator adds.
//!
//! One owner for both clients that leave the host, the sinks' webhook sender and the guests'
//! `wasi:http` requests, so a private CA trusted by one is trusted by the other, and a
//! certificate problem reads the same in a dead letter and in a guest's error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Client TLS settings trusting the system's roots plus `extra_roots` (PEM certificates, e.g.
/// a private CA), offering `alpn` (e.g. `[b"http/1.1"]`). Fails when `extra_roots` is not PEM;
/// warns when no root at all can be found (then no server could ever be verified).
pub fn client_config(extra_roots: &[u8], alpn: &[&[u8]]) -> Result<rustls::ClientConfig, String> {
    client_config_with_identity(extra_roots, alpn, None)
}

/// A client's certificate chain and private key, PEM, for mutual TLS.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").finish_non_exhaustive()
    }
}

/// How one client connection of Spindle (an HTTPS sink, a broker) is secured beyond the
/// defaults, as `spindle.toml` says it with `tls = { ca, cert, key }`: a CA to trust beside the
/// system's roots and a client certificate to present (mutual TLS). Paths, read when a
/// connection is configured, so a renewed file is picked up at the next connect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClientTls {
    /// PEM CA certificates trusted beside the system's roots.
    pub ca: Option<PathBuf>,
    /// The client certificate chain and key (PEM) presented when the server asks for one.
    pub identity: Option<crate::TlsFiles>,
}

impl ClientTls {
    /// The extra CA certificates (empty without `ca`) and the client identity, read from
    /// their files; the error names the file that could not be read.
    pub fn load(&self) -> Result<(Vec<u8>, Option<ClientIdentity>), String> {
        fn read(path: &Path) -> Result<Vec<u8>, String> {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        let ca = match &self.ca {
            Some(path) => read(path)?,
            None => Vec::new(),
        };
        let identity = match &self.identity {
            Some(files) => Some(ClientIdentity {
                cert_pem: read(&files.cert)?,
                key_pem: read(&files.key)?,
            }),
            None => None,
        };
        Ok((ca, identity))
    }

    /// The rustls client configuration these settings describe, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, String> {
        let (ca, identity) = self.load()?;
        client_config_with_identity(&ca, alpn, identity.as_ref())
    }
}

/// [`client_config`] that also presents `identity` when the server asks for a client
/// certificate (mutual TLS).
pub fn client_config_with_identity(
    extra_roots: &[u8],
    alpn: &[&[u8]],
    identity: Option<&ClientIdentity>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system root certificate could not be read");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    let mut extra = 0;
    if !extra_roots.is_empty() {
        for cert in CertificateDer::pem_slice_iter(extra_roots) {
            let cert = cert.map_err(|e| format!("extra CA certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("extra CA certificate: {e}"))?;
            extra += 1;
        }
    }
    if added + extra == 0 {
        tracing::warn!(
            "no root certificates found (install ca-certificates or set SSL_CERT_FILE); outbound HTTPS will fail verification"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(&identity.cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            if chain.is_empty() {
                return Err("client certificate: no certificate in the PEM file".into());
            }
            let key = PrivateKeyDer::from_pem_slice(&identity.key_pem)
                .map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key: {e}"))?
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The TLS failure behind a client error, if it was one, described for a person (e.g.
/// `TLS: invalid peer certificate: UnknownIssuer`).
pub fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(format!("TLS: {tls}"));
        }
        // `io::Error::source` skips the error it wraps, so look inside it explicitly.
        cause = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}
