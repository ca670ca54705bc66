//! HTTPS on the server stack with a CA made at test time: HTTP/2 and HTTP/1.1 by ALPN for an
//! independent client (curl), and a renewed certificate picked up without a restart while an
//! established connection keeps working.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use http_server::{HttpResponse, Limits, Tls, TlsFiles, serve_tls};
use hyper::body::Incoming;
use rustls::pki_types::{CertificateDer, ServerName};
use test_support::TestPki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn version(request: Request<Incoming>) -> HttpResponse {
    http::Response::new(Full::new(Bytes::from(format!("{:?}", request.version()))))
}

/// Writes a fresh `localhost` certificate and key of `pki` into `dir` the way certificate
/// tools do (temporary names, then renamed); returns the certificate.
fn issue(pki: &TestPki, dir: &Path) -> CertificateDer<'static> {
    let leaf = pki.leaf();
    std::fs::write(dir.join("cert.tmp"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("key.tmp"), &leaf.key_pem).unwrap();
    std::fs::rename(dir.join("key.tmp"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.tmp"), dir.join("cert.pem")).unwrap();
    leaf.cert_der
}

async fn start(dir: &Path) -> SocketAddr {
    let tls = Tls::load(TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_tls(
        "test",
        listener,
        Limits::default(),
        tls,
        version,
        std::future::pending(),
    ));
    addr
}

/// The certificate a fresh handshake gets, and the open TLS stream.
async fn handshake(
    pki: &TestPki,
    addr: SocketAddr,
) -> (
    CertificateDer<'static>,
    tokio_rustls::client::TlsStream<TcpStream>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = pki
        .connector()
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let cert = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    (cert.into_owned(), stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_http2_and_http1_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    issue(&pki, dir.path());
    std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).unwrap();
    let addr = start(dir.path()).await;
    let url = format!("https://localhost:{}/", addr.port());
    for (flag, expected) in [("--http2", "HTTP/2.0"), ("--http1.1", "HTTP/1.1")] {
        let mut curl = std::process::Command::new("curl");
        curl.args(["-sS", "--max-time", "20", flag, "--cacert"])
            .arg(dir.path().join("ca.pem"))
            .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
            .arg(&url);
        let out = tokio::task::spawn_blocking(move || curl.output())
            .await
            .unwrap()
            .expect("curl is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let first = issue(&pki, dir.path());
    let addr = start(dir.path()).await;
    let (served, mut open) = handshake(&pki, addr).await;
    assert_eq!(served, first);

    let second = issue(&pki, dir.path());
    assert_ne!(first, second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (served, _) = handshake(&pki, addr).await;
        if served == second {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The connection made with the first certificate still serves.
    open.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    open.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("HTTP/1.1"), "{answer}");

    // A broken renewal (half-written key) keeps the current certificate.
    std::fs::write(dir.path().join("key.pem"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (served, _) = handshake(&pki, addr).await;
    assert_eq!(served, second);
}

#[test]
fn a_missing_or_invalid_certificate_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Tls::load(TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("nope.pem"), "{err}");
    std::fs::write(dir.path().join("cert.pem"), "not pem").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not pem").unwrap();
    let err = Tls::load(TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("certificate"), "{err}");
}
