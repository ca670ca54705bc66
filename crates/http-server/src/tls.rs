//! HTTPS for a listener: rustls (no OpenSSL), HTTP/2 and HTTP/1.1 offered by ALPN, and the
//! certificate and key files reloaded when they change, so a renewed certificate (certbot,
//! cert-manager) takes effect without a restart and without dropping a connection: each new
//! handshake gets the certificate of the moment, established connections keep theirs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// How often the certificate and key files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Where a certificate chain and its private key are, as PEM files (a listener's, or a
/// client's for mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("TLS certificate {cert} / key {key}: {reason}")]
pub struct TlsError {
    cert: String,
    key: String,
    reason: String,
}

/// A listener's TLS settings, ready to accept handshakes; see [`crate::serve_tls`].
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<ReloadingCert>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.resolver.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate and key (failing with a clear error if either is missing or
    /// invalid) and offers `h2` and `http/1.1`.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Stamped before loading: a change in between is then seen at the next check.
        let loaded = stamp(&files);
        let current = load_key(&files, &provider)?;
        let resolver = Arc::new(ReloadingCert {
            stamp: RwLock::new(loaded),
            current: RwLock::new(Arc::new(current)),
            provider: provider.clone(),
            files,
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| resolver.error(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
        })
    }

    /// Reloads the files if they changed since the last look; a change that does not load
    /// (a half-written file) keeps the previous certificate and is logged. Returns whether a
    /// new certificate is in use.
    pub fn reload_if_changed(&self) -> bool {
        self.resolver.reload_if_changed()
    }
}

/// The certificate resolver: the current key, swapped when the files change.
struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    stamp: RwLock<Option<[u8; 32]>>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    fn error(&self, reason: String) -> TlsError {
        error(&self.files, reason)
    }

    fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.files);
        if now.is_none() || *self.stamp.read().unwrap_or_else(|e| e.into_inner()) == now {
            return false;
        }
        match load_key(&self.files, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = now;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "TLS certificate changed but does not load; keeping the previous one");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn error(files: &TlsFiles, reason: String) -> TlsError {
    TlsError {
        cert: files.cert.display().to_string(),
        key: files.key.display().to_string(),
        reason,
    }
}

/// A digest of both files' contents: what tells a change. Contents, not modification times:
/// a renewal written within the file system's timestamp granularity, with the same sizes (a
/// new key of the same kind), would otherwise go unnoticed. The files are a few KiB.
fn stamp(files: &TlsFiles) -> Option<[u8; 32]> {
    let mut digest = Sha256::new();
    digest.update(std::fs::read(&files.cert).ok()?);
    digest.update(std::fs::read(&files.key).ok()?);
    Some(digest.finalize().into())
}

fn load_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| error(files, format!("{}: {e}", p.display())));
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(files, format!("certificate: {e}")))?;
    if chain.is_empty() {
        return Err(error(
            files,
            "no certificate in the certificate file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| error(files, format!("private key: {e}")))?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|e| error(files, format!("{e}")))?;
    Ok(certified)
}
