//! Helpers the crates' tests share (a dev-dependency only, never shipped).
//!
//! [`TestPki`]: a certificate authority made at test time and `localhost` certificates it
//! signs, with the rustls server and client settings the TLS tests need, so no test carries a
//! fixed key and every test of a TLS path uses the same, independent-client-proof PKI (CA and
//! leaf have distinct names, which OpenSSL-based clients such as curl require).

//!
//! [`SmallDisk`]: a tmpfs a test can fill, for what a full disk does.

#![deny(missing_docs)]

mod small_disk;
pub use small_disk::SmallDisk;

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

    /// A TLS acceptor presenting `leaf` that also requires a client certificate signed by
    /// this CA (mutual TLS).
    pub fn mtls_acceptor(&self, leaf: &Leaf) -> tokio_rustls::TlsAcceptor {
        let chain = vec![
            leaf.cert_der.clone(),
            CertificateDer::from(self.ca.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.der().to_vec()))
            .expect("the CA certificate");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .expect("a client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
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

/// A request an [`HttpsServer`] received: its method, path, headers and body.
pub type ReceivedRequest = (http::Method, String, http::HeaderMap, bytes::Bytes);

/// An HTTPS server on 127.0.0.1 for tests: a fresh [`TestPki`], a certificate for
/// `localhost`, HTTP/1.1, `200` with a fixed body to every request, and every request passed
/// on through [`HttpsServer::requests`]. It runs on its own thread until the process ends.
pub struct HttpsServer {
    /// The port it listens on.
    pub port: u16,
    /// Its CA certificate, PEM (write it to a file for `SSL_CERT_FILE`).
    pub ca_pem: String,
    /// What it received, in order.
    pub requests: std::sync::mpsc::Receiver<ReceivedRequest>,
}

impl HttpsServer {
    /// Starts a server answering `reply` (as `text/plain`).
    pub fn start(reply: &'static [u8]) -> Self {
        let pki = TestPki::new();
        let acceptor = pki.acceptor(&pki.leaf());
        Self::serve(pki, acceptor, reply)
    }

    /// [`HttpsServer::start`] requiring a client certificate signed by its CA (mutual TLS);
    /// also returns a client certificate it accepts.
    pub fn start_mtls(reply: &'static [u8]) -> (Self, Leaf) {
        let pki = TestPki::new();
        let acceptor = pki.mtls_acceptor(&pki.leaf());
        let client = pki.leaf();
        (Self::serve(pki, acceptor, reply), client)
    }

    fn serve(pki: TestPki, acceptor: tokio_rustls::TlsAcceptor, reply: &'static [u8]) -> Self {
        use http_body_util::{BodyExt, Full};
        let (tx, requests) = std::sync::mpsc::channel();
        let port = serve_tls_connections(acceptor, move |stream| {
            let tx = tx.clone();
            async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let _ = tx.send((
                                parts.method,
                                parts.uri.path().to_owned(),
                                parts.headers,
                                body,
                            ));
                            let mut response =
                                http::Response::new(Full::new(bytes::Bytes::from_static(reply)));
                            response.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("text/plain"),
                            );
                            Ok::<_, hyper::Error>(response)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            }
        });
        HttpsServer {
            port,
            ca_pem: pki.ca_pem(),
            requests,
        }
    }
}

/// Accepts TLS connections with `acceptor` on a free port of 127.0.0.1, on a thread and
/// runtime of their own (so they outlive any test's runtime), and hands each completed
/// handshake to `handle`, each connection on a task of its own. Returns the port.
fn serve_tls_connections<F, Fut>(acceptor: tokio_rustls::TlsAcceptor, handle: F) -> u16
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // The handshake on the connection's own task: a stalled client holds up
                // no one else.
                let (acceptor, handle) = (acceptor.clone(), handle.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        handle(tls).await;
                    }
                });
            }
        });
    });
    port
}

/// A TLS-terminating TCP proxy on 127.0.0.1 for tests: it accepts TLS with the given
/// acceptor (e.g. [`TestPki::mtls_acceptor`], so clients must present a certificate) and
/// relays the plain bytes to `upstream`. It puts a broker that speaks no TLS itself (the
/// shared RabbitMQ, a Tansu Kafka broker) behind a real TLS endpoint. Runs on its own thread
/// until the process ends.
pub struct TlsProxy {
    /// The port it listens on.
    pub port: u16,
    handshakes: Arc<std::sync::atomic::AtomicUsize>,
}

impl TlsProxy {
    /// Starts relaying TLS connections on a free port to `upstream`.
    pub fn start(acceptor: tokio_rustls::TlsAcceptor, upstream: std::net::SocketAddr) -> Self {
        let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = handshakes.clone();
        let port = serve_tls_connections(acceptor, move |mut tls| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            }
        });
        TlsProxy { port, handshakes }
    }

    /// How many TLS handshakes it has completed.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(std::sync::atomic::Ordering::SeqCst)
    }
}
