//! Responses whose body arrives over time (Server-Sent Events), without changing what every
//! other handler returns: a handler answers an [`HttpResponse`] with a [`Streaming`] marker in
//! its extensions, and the server sends the chunks of the marker's channel as the body until
//! the sender is dropped.
//!
//! The request counts as in flight for as long as its body streams, so the connection's idle
//! deadline does not cut a live stream; shutdown waits for it up to the grace period, as for
//! any request, so a stream's producer should end on shutdown.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::problem::HttpResponse;
use crate::watchdog::RequestGuard;

/// The marker a handler puts in a response's extensions to stream its body from a channel.
#[derive(Clone, Debug)]
pub struct Streaming(Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>);

impl Streaming {
    /// A `status` response of `content_type` whose body is what `chunks` yields, sent as it
    /// comes (uncached, so no proxy holds it back).
    pub fn response(
        status: StatusCode,
        content_type: &'static str,
        chunks: mpsc::Receiver<Bytes>,
    ) -> HttpResponse {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
            .extensions_mut()
            .insert(Streaming(Arc::new(Mutex::new(Some(chunks)))));
        response
    }

    fn take(&self) -> Option<mpsc::Receiver<Bytes>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The body the server sends: a handler's buffered body, or a stream that keeps its request
/// in flight until it ends.
pub(crate) enum ServedBody {
    Full(Full<Bytes>),
    Stream {
        chunks: mpsc::Receiver<Bytes>,
        _in_flight: RequestGuard,
    },
}

impl ServedBody {
    /// The response as served: streamed when the handler asked for it (taking `guard` along),
    /// else as it is (dropping `guard`: the request is done).
    pub(crate) fn serve(response: HttpResponse, guard: RequestGuard) -> Response<ServedBody> {
        let (mut parts, body) = response.into_parts();
        let streaming = parts
            .extensions
            .remove::<Streaming>()
            .and_then(|s| s.take());
        let body = match streaming {
            Some(chunks) => ServedBody::Stream {
                chunks,
                _in_flight: guard,
            },
            None => ServedBody::Full(body),
        };
        Response::from_parts(parts, body)
    }
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ServedBody::Full(full) => Pin::new(full).poll_frame(cx),
            ServedBody::Stream { chunks, .. } => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ServedBody::Full(full) => full.is_end_stream(),
            ServedBody::Stream { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ServedBody::Full(full) => full.size_hint(),
            ServedBody::Stream { .. } => SizeHint::default(),
        }
    }
}
