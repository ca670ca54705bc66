//! Distributed tracing across hops: the CloudEvents distributed-tracing extension
//! (`traceparent`, `tracestate`, W3C Trace Context) joined to Spindle's `tracing` spans.
//!
//! - A span that works on an event (a handler's `event` span, a delivery attempt's `deliver`
//!   span) takes the event's `traceparent` as its parent ([`adopt`]).
//! - What a handler emits carries the *handler's* trace context onwards ([`stamp`]), so the
//!   next app's spans hang under it and a pipeline of apps is one trace.
//!
//! Spans reach a collector only when the process installed an OpenTelemetry layer (`spindle
//! up` with `[application.telemetry] otlp` or `OTEL_EXPORTER_OTLP_ENDPOINT`) and called
//! [`set_exporting`]; until then nothing here does more than one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};

use cloudevent::{AttributeValue, Event};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Says spans are exported (an OpenTelemetry layer is installed).
pub fn set_exporting(on: bool) {
    EXPORTING.store(on, Ordering::Release);
}

/// Whether spans are exported.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Acquire)
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

/// Makes `span` a child of the trace `event` carries (a no-op without export or without a
/// valid `traceparent`).
pub fn adopt(span: &tracing::Span, event: &Event) {
    if !exporting() {
        return;
    }
    if let Some(remote) = context_of(event) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

/// The W3C `traceparent` of `span`, when it is exported and valid.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
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
