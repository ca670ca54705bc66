//! The client TLS settings of broker connections: the same trust as every outbound client
//! of Spindle ([`http_server::trust`]), without ALPN (the broker protocols negotiate none).

/// A fresh client configuration trusting the system's roots.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, String> {
    http_server::trust::client_config(&[], &[])
}
