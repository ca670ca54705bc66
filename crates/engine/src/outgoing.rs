//! Outgoing HTTP from guests (`wasi:http/outgoing-handler`), for both kinds of component.
//!
//! A request goes out only when one of the component's `allowed_outbound_hosts` grants its
//! scheme, host and port ([`OutboundHost::allows`]); anything else fails inside the guest with
//! `HTTP-request-denied` and a warning naming the component and the host. An allowed request
//! is bounded the way the event is: it must connect, answer and finish before the event's
//! deadline, and its response body is capped at [`MAX_RESPONSE_BODY`]. HTTPS verifies the
//! server against the system's roots plus the engine's extra CA certificates
//! ([`crate::EngineConfig::extra_roots`]); a certificate that does not verify is logged with
//! the reason (unknown issuer, expired, name mismatch) and reaches the guest as
//! `TLS-certificate-error`.

use crate::outbound::OutboundHost;
use http::uri::Scheme;
use http_body_util::{BodyExt, Limited};
use http_server::EgressPolicy;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The largest response body a guest may receive for one outgoing request; beyond it the body
/// ends with `HTTP-response-body-size`.
pub const MAX_RESPONSE_BODY: usize = 32 << 20;

/// What every guest request of an engine shares: the egress policy, and the client TLS
/// settings, built at the first HTTPS request (loading the system's roots takes milliseconds
/// that most engines never need to spend).
#[derive(Debug, Default)]
pub(crate) struct OutgoingShared {
    extra_roots: Vec<u8>,
    config: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    egress: Arc<EgressPolicy>,
}

impl OutgoingShared {
    pub(crate) fn new(extra_roots: Vec<u8>, egress: Arc<EgressPolicy>) -> Self {
        OutgoingShared {
            extra_roots,
            config: OnceLock::new(),
            egress,
        }
    }

    fn config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        self.config
            .get_or_init(|| {
                http_server::trust::client_config(&self.extra_roots, &[b"http/1.1"]).map(Arc::new)
            })
            .clone()
    }
}

/// The `wasi:http` hooks of one instance: its component's grants and its event's deadline.
pub(crate) struct OutgoingHttp {
    component: Arc<str>,
    grants: Arc<[OutboundHost]>,
    shared: Arc<OutgoingShared>,
    deadline: Instant,
}

impl OutgoingHttp {
    pub(crate) fn new(
        component: Arc<str>,
        grants: Arc<[OutboundHost]>,
        shared: Arc<OutgoingShared>,
        deadline: Instant,
    ) -> Self {
        OutgoingHttp {
            component,
            grants,
            shared,
            deadline,
        }
    }

    /// Whether the grants allow a request to `uri`; logs a refusal.
    fn permits(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let host = uri.host().unwrap_or("");
        let port = uri
            .port_u16()
            .or_else(|| crate::default_port(scheme))
            .unwrap_or(0);
        let allowed = self.grants.iter().any(|g| g.allows(scheme, host, port));
        if !allowed {
            tracing::warn!(
                component = %self.component,
                host = %format_args!("{scheme}://{host}:{port}"),
                "outbound HTTP request denied: the host is not in the component's allowed_outbound_hosts"
            );
        }
        allowed
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if !self.permits(request.uri()) {
            return Box::new(std::future::ready(Err(Error::HttpRequestDenied)));
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let connect = options
            .and_then(|o| o.connect_timeout)
            .map_or(remaining, |t| t.min(remaining));
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .map_or(remaining, |t| t.min(remaining));
        let shared = self.shared.clone();
        let component = self.component.clone();
        Box::new(async move {
            let (response, conn) = send(request, &shared, &component, connect, first_byte).await?;
            // The connection is driven apart from the guest, never past the event's deadline.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(remaining, conn).await;
            });
            Ok((
                response,
                Box::new(std::future::ready(Ok(())))
                    as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// Resolves `host` and connects to the first address the egress policy allows (a name that
/// resolves only to refused addresses, e.g. a cloud metadata address, is refused whatever the
/// component's grants say).
async fn connect(
    host: &str,
    port: u16,
    egress: &EgressPolicy,
    component: &str,
) -> Result<TcpStream, Error> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Error::DnsError {
            rcode: None,
            info_code: None,
        })?;
    let mut last = None;
    let mut refusal = None;
    for addr in addrs {
        if let Err(denied) = egress.check_addr(host, addr.ip()) {
            refusal.get_or_insert(denied);
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    match (last, refusal) {
        (Some(e), _) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(Error::ConnectionRefused)
        }
        (Some(e), _) => Err(Error::Connect(e)),
        (None, Some(denied)) => {
            tracing::warn!(component, %denied, "outbound HTTP request denied");
            Err(Error::DestinationIpProhibited)
        }
        (None, None) => Err(Error::DestinationNotFound),
    }
}

/// The connection task of one request: drives I/O until the response body is read.
type Connection = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Connects (with TLS for `https`), sends `request` over HTTP/1.1 and returns the response
/// with its body capped, plus the task that drives the connection.
async fn send(
    mut request: http::Request<WasiBody>,
    shared: &OutgoingShared,
    component: &str,
    connect_timeout: Duration,
    first_byte_timeout: Duration,
) -> Result<(http::Response<WasiBody>, Connection), Error> {
    let uri = request.uri().clone();
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri
        .host()
        .ok_or(Error::HttpRequestUriInvalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::time::timeout(
        connect_timeout,
        connect(&host, port, &shared.egress, component),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    let _ = tcp.set_nodelay(true);
    // Only the path and query go on the request line; the authority is in `Host`.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let (mut sender, conn): (_, Connection) = if https {
        let config = shared.config().map_err(|reason| {
            tracing::warn!(component, %reason, "outbound HTTPS is unavailable");
            Error::ConfigurationError
        })?;
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
        let stream = tokio::time::timeout(connect_timeout, handshake)
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(|e| {
                let problem = http_server::trust::certificate_problem(&e);
                tracing::warn!(
                    component,
                    host = %format_args!("https://{host}:{port}"),
                    error = problem.as_deref().unwrap_or(&e.to_string()),
                    "outbound HTTPS handshake failed"
                );
                match problem {
                    Some(_) => Error::TlsCertificateError,
                    None => Error::Tls(e),
                }
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        (sender, Box::pin(async move { drop(conn.await) }))
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        (sender, Box::pin(async move { drop(conn.await) }))
    };

    // The response arrives while the connection is driven alongside.
    let mut conn = Some(conn);
    let response = {
        let send = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
        tokio::pin!(send);
        loop {
            match conn.as_mut() {
                Some(c) => tokio::select! {
                    r = &mut send => break r,
                    () = c => conn = None,
                },
                None => break (&mut send).await,
            }
        }
    }
    .map_err(|_| Error::ConnectionReadTimeout)?
    .map_err(Error::from)?;
    let response = response.map(|body| {
        Limited::new(body, MAX_RESPONSE_BODY)
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => Error::from(*e),
                Err(_) => Error::HttpResponseBodySize(Some(MAX_RESPONSE_BODY as u64)),
            })
            .boxed_unsync()
    });
    let conn = conn.unwrap_or_else(|| Box::pin(std::future::ready(())));
    Ok((response, conn))
}
