//! The native servers the app is measured against or delivers to: an echo server doing the
//! CloudEvents decode and encode without Wasm, and a sink that counts what it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cloudevent::http::{self as binding, Message};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server accepting on its own task; aborted when dropped (its connections end when the
/// client closes them).
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve<F, Fut>(handle: F) -> anyhow::Result<Server>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handle = handle.clone();
            let service = hyper::service::service_fn(move |request| {
                let response = handle(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(Server { addr, accept })
}

/// What the app's HTTP trigger does for an echo component, minus Wasm, routing and the
/// outbox: read the body, decode the CloudEvent (`cloudevent::http::decode`), encode the same
/// event in the request's mode (`cloudevent::http::encode`) and reply `200`.
pub async fn native_echo() -> anyhow::Result<Server> {
    serve(|request: Request<Incoming>| async move {
        let (parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return status(StatusCode::BAD_REQUEST);
        };
        let encoded = match binding::decode(&parts.headers, body) {
            Ok(Message::Event(event, mode)) => binding::encode(&event, mode),
            Ok(Message::Batch(events)) => binding::encode_batch(&events),
            Err(_) => return status(StatusCode::BAD_REQUEST),
        };
        let mut response = Response::new(Full::new(encoded.body));
        *response.headers_mut() = encoded.headers;
        response
    })
    .await
}

/// A subscription's sink: answers `200` to every request that carries a CloudEvent (binary
/// or structured mode, told by its headers; the body is read but not decoded) and counts them.
pub async fn counting_sink(received: Arc<AtomicU64>) -> anyhow::Result<Server> {
    serve(move |request: Request<Incoming>| {
        let received = received.clone();
        async move {
            let is_event = request.headers().contains_key("ce-id")
                || request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/cloudevents"));
            let read = request.into_body().collect().await.is_ok();
            if !(is_event && read) {
                return status(StatusCode::BAD_REQUEST);
            }
            received.fetch_add(1, Ordering::Relaxed);
            status(StatusCode::OK)
        }
    })
    .await
}

/// An OTLP/HTTP collector that takes every export (`200`) and counts the bytes, for the cost
/// of trace export.
pub async fn otlp_sink(bytes: Arc<AtomicU64>) -> anyhow::Result<Server> {
    serve(move |request: Request<Incoming>| {
        let bytes = bytes.clone();
        async move {
            if let Ok(body) = request.into_body().collect().await {
                bytes.fetch_add(body.to_bytes().len() as u64, Ordering::Relaxed);
            }
            status(StatusCode::OK)
        }
    })
    .await
}

/// An upstream service for guests to call: `200` with a short text body to every request.
pub async fn ok_server() -> anyhow::Result<Server> {
    serve(|request: Request<Incoming>| async move {
        let _ = request.into_body().collect().await;
        Response::new(Full::new(Bytes::from_static(b"1.08")))
    })
    .await
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
