//! Wasm components as [`Handler`]s: the bridge between the runtime's [`cloudevent::Event`]
//! and the engine's WIT-shaped event, and between the engine's publisher and the runtime's
//! output bindings.

use std::sync::Arc;

use cloudevent::{AttributeType, AttributeValue, Data, Event, EventBuilder};

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
            let results = self
                .inner
                .handle(to_engine(&event), publisher)
                .await
                .map_err(handler_error)?;
            results
                .into_iter()
                .map(|e| {
                    from_engine(e).map_err(|error| {
                        HandlerError::Trap(format!(
                            "the component returned an invalid event: {error}"
                        ))
                    })
                })
                .collect()
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
    fn publish<'a>(&'a self, output: &'a str, event: engine::Event) -> engine::PublishFuture<'a> {
        let result = match from_engine(event) {
            Ok(event) => self.0.publish(output, event).map_err(|e| match e {
                PublishError::UnknownOutput(name) => engine::PublishError::UnknownOutput(name),
                other => engine::PublishError::Failed(other.to_string()),
            }),
            Err(error) => Err(engine::PublishError::InvalidEvent(error.to_string())),
        };
        Box::pin(std::future::ready(result))
    }
}

/// The engine's (WIT) form of an event.
pub fn to_engine(event: &Event) -> engine::Event {
    let time = event.time().map(ToString::to_string);
    engine::Event {
        id: event.id().to_owned(),
        source: event.source().to_owned(),
        specversion: event.specversion().to_owned(),
        ty: event.ty().to_owned(),
        datacontenttype: event.datacontenttype().map(str::to_owned),
        dataschema: event.dataschema().map(str::to_owned),
        subject: event.subject().map(str::to_owned),
        time,
        extensions: event
            .extensions()
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    AttributeValue::Boolean(b) => engine::AttributeValue::Boolean(*b),
                    AttributeValue::Integer(i) => engine::AttributeValue::Integer(*i),
                    AttributeValue::String(s) => engine::AttributeValue::String(s.clone()),
                    AttributeValue::Binary(b) => engine::AttributeValue::Binary(b.clone()),
                    AttributeValue::Uri(s) => engine::AttributeValue::Uri(s.clone()),
                    AttributeValue::UriRef(s) => engine::AttributeValue::UriRef(s.clone()),
                    AttributeValue::Timestamp(t) => {
                        engine::AttributeValue::Timestamp(t.to_string())
                    }
                };
                (name.clone(), value)
            })
            .collect(),
        data: event.data().map(|d| d.as_bytes().to_vec()),
    }
}

/// An event from the engine, checked by every rule an event from the wire is.
pub fn from_engine(event: engine::Event) -> Result<Event, cloudevent::Error> {
    let mut b = EventBuilder::default();
    b.specversion(&event.specversion);
    b.attribute_str("id", &event.id);
    b.attribute_str("source", &event.source);
    b.attribute_str("type", &event.ty);
    for (name, value) in [
        ("datacontenttype", &event.datacontenttype),
        ("dataschema", &event.dataschema),
        ("subject", &event.subject),
        ("time", &event.time),
    ] {
        if let Some(value) = value {
            b.attribute_str(name, value);
        }
    }
    for (name, value) in event.extensions {
        let typed = match value {
            engine::AttributeValue::Boolean(v) => Ok(AttributeValue::Boolean(v)),
            engine::AttributeValue::Integer(v) => Ok(AttributeValue::Integer(v)),
            engine::AttributeValue::String(v) => AttributeValue::parse(AttributeType::String, &v),
            engine::AttributeValue::Binary(v) => Ok(AttributeValue::Binary(v)),
            engine::AttributeValue::Uri(v) => AttributeValue::parse(AttributeType::Uri, &v),
            engine::AttributeValue::UriRef(v) => AttributeValue::parse(AttributeType::UriRef, &v),
            engine::AttributeValue::Timestamp(v) => {
                AttributeValue::parse(AttributeType::Timestamp, &v)
            }
        };
        b.listed_extension(name, typed);
    }
    if let Some(data) = event.data {
        b.set_data(Data::binary(data));
    }
    b.build_decoded()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn guest_event(extensions: Vec<(String, engine::AttributeValue)>) -> engine::Event {
        engine::Event {
            id: "1".into(),
            source: "/guest".into(),
            specversion: "1.0".into(),
            ty: "t".into(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions,
            data: None,
        }
    }

    /// CloudEvents core, context attributes: "Each context attribute MUST only appear at most
    /// once in a CloudEvent." A guest's event naming an extension twice is refused with the
    /// attribute named, not collapsed to one of its values.
    #[test]
    fn a_guest_event_with_a_repeated_extension_is_refused() {
        let ok = from_engine(guest_event(vec![
            ("a".into(), engine::AttributeValue::Integer(1)),
            ("b".into(), engine::AttributeValue::Integer(2)),
        ]))
        .unwrap();
        assert_eq!(ok.extensions().len(), 2);
        let err = from_engine(guest_event(vec![
            ("a".into(), engine::AttributeValue::Integer(1)),
            ("b".into(), engine::AttributeValue::Boolean(true)),
            ("a".into(), engine::AttributeValue::Integer(2)),
        ]))
        .unwrap_err();
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{err}");
        assert_eq!(problems[0].attribute.as_deref(), Some("a"));
        assert!(problems[0].message.contains("more than once"), "{err}");
    }
}
