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
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::body::BodyDeadline;
use crate::limits::Limits;
use crate::problem::HttpResponse;
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
        connections.spawn(async move {
            connection(name, stream, limits, handler, stop).await;
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
    handler: H,
    mut stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let activity = Activity::new();
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let guard = requests.request();
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
            drop(guard);
            Ok::<_, Infallible>(response)
        }
        .instrument(span)
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
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
            expiry = activity.expired(&limits) => {
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
