//! Distributed tracing across hops: the CloudEvents distributed-tracing extension
//! (`traceparent`, `tracestate`, W3C Trace Context) and OpenTelemetry spans.
//!
//! - A span that works on an event (a handler's `event` span, a delivery attempt's `deliver`
//!   span) is a child of the event's `traceparent` ([`start`]).
//! - What a handler emits carries the *handler's* span as its `traceparent`
//!   ([`TraceSpan::traceparent`]), so the next app's spans hang under it and a pipeline of
//!   apps is one trace.
//!
//! The spans are made with the OpenTelemetry API directly (not bridged from `tracing`, which
//! cost several times more per event) and reach a collector only once the process installed
//! a tracer ([`install`]: `spindle up` with `[application.telemetry] otlp` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`); until then [`start`] is one atomic load.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use cloudevent::{AttributeValue, Event};
use opentelemetry::KeyValue;
use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _,
};

static EXPORTING: AtomicBool = AtomicBool::new(false);
static TRACER: RwLock<Option<BoxedTracer>> = RwLock::new(None);

/// Installs the tracer spans are made with (`None`: stop making them).
pub fn install(tracer: Option<BoxedTracer>) {
    EXPORTING.store(tracer.is_some(), Ordering::Release);
    *TRACER.write().unwrap_or_else(|e| e.into_inner()) = tracer;
}

/// Whether spans are made and exported.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Acquire)
}

/// One span on one event; ended when dropped.
pub struct TraceSpan(BoxedSpan);

impl TraceSpan {
    /// The W3C `traceparent` naming this span, for what is emitted under it.
    pub fn traceparent(&self) -> String {
        let context = self.0.span_context();
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    }

    /// Adds an attribute (e.g. the outcome, once known).
    pub fn set(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        self.0.set_attribute(KeyValue::new(key, value));
    }
}

impl Drop for TraceSpan {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Starts span `name` on `event`, a child of the trace the event carries (a new trace
/// without one), with the event's id, source and type (OpenTelemetry's CloudEvents
/// attributes) and `attributes`; `None` while no tracer is installed.
pub fn start(
    name: &'static str,
    kind: SpanKind,
    event: &Event,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Option<TraceSpan> {
    if !exporting() {
        return None;
    }
    let tracer = TRACER.read().unwrap_or_else(|e| e.into_inner());
    let tracer = tracer.as_ref()?;
    let parent = match context_of(event) {
        Some(remote) => opentelemetry::Context::new().with_remote_span_context(remote),
        None => opentelemetry::Context::new(),
    };
    let mut all = vec![
        KeyValue::new("cloudevents.event_id", event.id().to_owned()),
        KeyValue::new("cloudevents.event_source", event.source().to_owned()),
        KeyValue::new("cloudevents.event_type", event.ty().to_owned()),
    ];
    all.extend(attributes());
    let builder = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(all);
    Some(TraceSpan(tracer.build_with_context(builder, &parent)))
}

/// The remote span context an event's `traceparent` (and `tracestate`) names, if valid.
pub fn context_of(event: &Event) -> Option<SpanContext> {
    let text = |name: &str| match event.extension(name)? {
        AttributeValue::String(s) => Some(s.clone()),
        other => Some(other.to_canonical_string()),
    };
    let parent = text("traceparent")?;
    let mut parts = parent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four parts; a later version may add more (W3C Trace Context 4.3).
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace == TraceId::INVALID || span == SpanId::INVALID {
        return None;
    }
    let state = text("tracestate")
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Some(SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags),
        true,
        state,
    ))
}

/// Sets `event`'s `traceparent` to `traceparent` (the emitting handler's span), keeping the
/// vendor `tracestate` it may carry.
pub fn stamp(event: &mut Event, traceparent: &str) {
    let _ = event.set_extension(
        "traceparent",
        AttributeValue::String(traceparent.to_owned()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(parent: &str) -> Event {
        let mut e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        e.set_extension("traceparent", AttributeValue::String(parent.into()))
            .unwrap();
        e
    }

    #[test]
    fn traceparents_parse_per_w3c() {
        let sc = context_of(&with(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ))
        .unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(context_of(&with(bad)).is_none(), "{bad}");
        }
    }
}
