//! The client TLS settings of broker connections: the same trust as every outbound client
//! of Spindle ([`http_server::trust`]), without ALPN (the broker protocols negotiate none),
//! plus the broker's own CA and client certificate from `spindle.toml`.

use crate::endpoint::ClientTls;

/// The rustls client configuration for a broker reached with `settings`: the system's roots,
/// the settings' CA, and its client certificate (mutual TLS). The files are read now, so a
/// renewed certificate is used from the next (re)connect.
pub(crate) fn client_config(settings: &ClientTls) -> Result<rustls::ClientConfig, String> {
    settings.client_config(&[])
}

/// librdkafka's TLS settings (`security.protocol=ssl` and the files), for Kafka's `SSL`
/// security protocol. librdkafka does TLS with OpenSSL itself, reading the same files; the
/// system's roots are OpenSSL's defaults (`SSL_CERT_FILE` / `SSL_CERT_DIR` apply).
pub(crate) fn kafka_settings(settings: &ClientTls) -> Vec<(&'static str, String)> {
    let mut out = vec![("security.protocol", "ssl".to_owned())];
    if let Some(ca) = &settings.ca {
        out.push(("ssl.ca.location", ca.display().to_string()));
    }
    if let Some(identity) = &settings.identity {
        out.push((
            "ssl.certificate.location",
            identity.cert.display().to_string(),
        ));
        out.push(("ssl.key.location", identity.key.display().to_string()));
    }
    out
}
