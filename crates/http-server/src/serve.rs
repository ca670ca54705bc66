//! The accept loop: connection cap, per-connection watchdog, request id and span, graceful
//! shutdown.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::body::BodyDeadline;
use crate::limits::Limits;
use crate::problem::HttpResponse;
use crate::stream::ServedBody;
use crate::tls::Tls;
use crate::watchdog::{Activity, Watched};

/// The header that carries a request's id, in and out.
const REQUEST_ID: &str = "x-request-id";

/// The id of one request: the client's `x-request-id` when it is a sane token (1 to 128
/// visible ASCII characters), else a fresh random one. It is echoed in the response, recorded
/// on the request's span, and put in the request's extensions for handlers that log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    fn of<B>(request: &Request<B>) -> Self {
        let given = request.headers().get(REQUEST_ID).filter(|v| {
            let b = v.as_bytes();
            (1..=128).contains(&b.len()) && b.iter().all(|c| (0x21..=0x7e).contains(c))
        });
        match given {
            Some(v) => RequestId(v.clone()),
            None => {
                let fresh = format!("{:032x}", fastrand::u128(..));
                RequestId(HeaderValue::from_str(&fresh).expect("hex digits are a header value"))
            }
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serves HTTP/1.1 connections from `listener` with `handler` until `shutdown` resolves, then
/// stops accepting, lets in-flight requests finish (up to [`Limits::shutdown_grace`]) and
/// returns. `name` names the listener in logs and spans (`trigger`, `admin`).
///
/// Each request reaches `handler` with a [`RequestId`] and a [`BodyDeadline`] in its
/// extensions; read its body with [`crate::read_body`] so the deadline holds.
pub async fn serve<H, F>(
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    accept_loop(name, listener, limits, None, handler, shutdown).await
}

/// [`serve`] over TLS: HTTP/2 or HTTP/1.1 as the client's ALPN asks, the handshake within
/// [`Limits::header_timeout`], and the certificate files checked for a change every
/// [`crate::tls::RELOAD_CHECK`] (new handshakes get the new certificate; established
/// connections are not touched).
pub async fn serve_tls<H, F>(
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    tls: Tls,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let watcher = tls.clone();
    let reload = tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::tls::RELOAD_CHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let watcher = watcher.clone();
            // File reads and key parsing stay off the async threads.
            let _ = tokio::task::spawn_blocking(move || watcher.reload_if_changed()).await;
        }
    });
    let served = accept_loop(name, listener, limits, Some(tls), handler, shutdown).await;
    reload.abort();
    served
}

async fn accept_loop<H, F>(
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    tls: Option<Tls>,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    let mut warned_full = false;
    loop {
        while connections.try_join_next().is_some() {}
        // Take a slot before accepting: over the cap, clients wait in the kernel's backlog and
        // the connections already served are not disturbed.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                warned_full = false;
                permit
            }
            Err(_) => {
                if !warned_full {
                    tracing::warn!(
                        listener = name,
                        max_connections = limits.max_connections,
                        "connection cap reached; new clients wait until a connection closes"
                    );
                    warned_full = true;
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(listener = name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            connection(name, stream, limits, tls, handler, stop).await;
            tracing::trace!(listener = name, %peer, "connection closed");
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tracing::info!(
        listener = name,
        "stopped accepting; finishing in-flight requests"
    );
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            listener = name,
            "grace period over; dropping remaining connections"
        );
        connections.abort_all();
    }
    Ok(())
}

/// Serves one connection until it ends, its watchdog expires or shutdown asks it to finish.
async fn connection<H, F>(
    name: &'static str,
    stream: tokio::net::TcpStream,
    limits: Limits,
    tls: Option<Tls>,
    handler: H,
    stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let activity = Activity::new();
    let socket = Watched::new(stream, activity.clone());
    let service = service(name, limits, activity.clone(), handler);
    match tls {
        None => {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service);
            drive(name, conn, &activity, &limits, stop).await;
        }
        Some(tls) => {
            // The handshake is part of the request head: it gets the header deadline.
            let handshake =
                tokio::time::timeout(limits.header_timeout, tls.acceptor.accept(socket));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(listener = name, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(listener = name, "TLS handshake too slow");
                    return;
                }
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            drive(name, conn, &activity, &limits, stop).await;
        }
    }
}

/// The per-request service: request id, span, body deadline, activity tracking.
fn service<H, F>(
    name: &'static str,
    limits: Limits,
    activity: Arc<Activity>,
    handler: H,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = http::Response<ServedBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<ServedBody>, Infallible>> + Send + 'static,
> + Clone
+ Send
+ 'static
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let guard = activity.request();
        let id = RequestId::of(&request);
        let span = tracing::info_span!(
            "request",
            listener = name,
            method = %request.method(),
            path = request.uri().path(),
            request_id = %id,
        );
        let extensions = request.extensions_mut();
        extensions.insert(BodyDeadline::after(limits.body_timeout));
        extensions.insert(id.clone());
        let handler = handler.clone();
        async move {
            let mut response = handler(request).await;
            tracing::debug!(status = response.status().as_u16(), "answered");
            response.headers_mut().insert(REQUEST_ID, id.0);
            Ok::<_, Infallible>(ServedBody::serve(response, guard))
        }
        .instrument(span)
    })
}

/// Polls a connection until it ends, its watchdog expires (then it is dropped: closed), or
/// shutdown asks it to finish its requests in flight.
async fn drive<C>(
    name: &'static str,
    conn: C,
    activity: &Activity,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: fmt::Display,
{
    tokio::pin!(conn);
    let mut finishing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(listener = name, %error, "connection ended with an error");
                }
                return;
            }
            expiry = activity.expired(limits) => {
                tracing::debug!(listener = name, ?expiry, "closing a connection past its deadline");
                return;
            }
            changed = stop.changed(), if !finishing => {
                let _ = changed;
                conn.as_mut().graceful_shutdown();
                finishing = true;
            }
        }
    }
}
