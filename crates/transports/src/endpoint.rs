//! Where a broker is: host, port and TLS settings, shared by every transport's senders and
//! receivers.

use std::fmt;

pub use http_server::trust::ClientTls;

/// A broker address: host and port, with the scheme's default port filled in, and whether
/// and how the connection uses TLS (`nats+tls://`, `mqtts://`, `amqps://`, `kafka+tls://`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or IP address; IPv6 addresses keep their brackets so that
    /// `format!("{host}:{port}")` is always a valid authority.
    pub host: String,
    /// Port, defaulted per scheme when the URI leaves it out.
    pub port: u16,
    /// Connect over TLS when set: the broker is verified against the system's roots
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them) plus the settings' own CA, and the
    /// settings' client certificate is presented if the broker asks for one.
    pub tls: Option<ClientTls>,
}

impl Endpoint {
    /// A plain (non-TLS) endpoint.
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
            tls: None,
        }
    }

    /// Whether the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}
