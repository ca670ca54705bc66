//! Wasm components as [`Handler`]s: the bridge between the engine's errors and publisher and
//! the runtime's handler errors and output bindings (both speak `cloudevent::Event`).

use std::sync::Arc;

use cloudevent::Event;

use crate::handler::{BoxFuture, Handler, HandlerError, Publish, PublishError};

/// A CloudEvents handler component loaded by the engine.
pub struct WasmHandler {
    inner: engine::Handler,
}

impl WasmHandler {
    /// Wraps a loaded component.
    pub fn new(inner: engine::Handler) -> Self {
        WasmHandler { inner }
    }
}

impl Handler for WasmHandler {
    fn handle(
        &self,
        event: Event,
        outputs: Arc<dyn Publish>,
    ) -> BoxFuture<'_, Result<Vec<Event>, HandlerError>> {
        Box::pin(async move {
            let publisher: Arc<dyn engine::Publisher> = Arc::new(PublisherBridge(outputs));
            self.inner
                .handle(event, publisher)
                .await
                .map_err(handler_error)
        })
    }
}

fn handler_error(error: engine::HandleError) -> HandlerError {
    use engine::HandleError as E;
    match error {
        E::Busy { .. } => HandlerError::Busy,
        E::Timeout { deadline, .. } => HandlerError::Timeout(deadline),
        E::OutOfMemory { .. } => HandlerError::OutOfMemory(error.to_string()),
        E::Trap { .. } | E::LimitExceeded { .. } => HandlerError::Trap(error.to_string()),
        E::Instantiate { .. } => HandlerError::Internal(error.to_string()),
        E::Handler {
            kind: engine::ErrorKind::Transient,
            message,
            ..
        } => HandlerError::Transient(message),
        E::Handler {
            kind: engine::ErrorKind::Permanent,
            message,
            ..
        } => HandlerError::Permanent(message),
    }
}

/// Events a guest publishes go to the component's output bindings.
struct PublisherBridge(Arc<dyn Publish>);

impl engine::Publisher for PublisherBridge {
    fn publish<'a>(&'a self, output: &'a str, event: Event) -> engine::PublishFuture<'a> {
        let result = self.0.publish(output, event).map_err(|e| match e {
            PublishError::UnknownOutput(name) => engine::PublishError::UnknownOutput(name),
            other => engine::PublishError::Failed(other.to_string()),
        });
        Box::pin(std::future::ready(result))
    }
}

/// A `wasi:http/incoming-handler` component behind a `wasi-http` route, or a handler linked
/// to a protocol binder behind a `binder` route.
pub struct WasmHttp {
    inner: engine::HttpHandler,
}

impl WasmHttp {
    /// Wraps a loaded component.
    pub fn new(inner: engine::HttpHandler) -> Self {
        WasmHttp { inner }
    }
}

impl crate::http::RawHttpHandler for WasmHttp {
    fn serve(
        &self,
        request: http::Request<bytes::Bytes>,
        outputs: Arc<dyn Publish>,
    ) -> BoxFuture<'_, Result<http::Response<bytes::Bytes>, HandlerError>> {
        use http_body_util::BodyExt;
        Box::pin(async move {
            let publisher: Arc<dyn engine::Publisher> = Arc::new(PublisherBridge(outputs));
            let response = self
                .inner
                .handle(request.map(http_body_util::Full::new), publisher)
                .await
                .map_err(handler_error)?;
            let (parts, body) = response.into_parts();
            // Bounded like a handler's events: a guest streaming an endless body fails its
            // own request instead of filling the host's memory.
            let limit = engine::budget::MAX_OUTPUT_BYTES;
            let body = http_body_util::Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HandlerError::Trap(format!(
                            "the component's response body is larger than {limit} bytes"
                        ))
                    } else {
                        HandlerError::Trap(format!("the component's response body failed: {e}"))
                    }
                })?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body))
        })
    }
}
