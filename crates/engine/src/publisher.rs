//! The host side of `outbound.publish`: where events a guest publishes go.
//!
//! The caller supplies a [`Publisher`] per call, so the runtime decides per event whether
//! publishing means "append to the durable outbox" or, in tests and `spindle send`, "collect".

use cloudevent::Event;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// The future a [`Publisher`] returns; boxed so `Publisher` stays object-safe.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;

/// Why a publish was refused; surfaces to the guest as the WIT `publish-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The output is not declared for this component (checked by the engine before the
    /// publisher is called).
    #[error("unknown output `{0}`")]
    UnknownOutput(String),
    /// The event is not acceptable (e.g. fails CloudEvents validation).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The publisher could not accept the event.
    #[error("publish failed: {0}")]
    Failed(String),
}

/// Receives the events a guest publishes to its declared outputs during one call.
///
/// Called only for declared output names; the engine answers `unknown-output` itself. Returns
/// once the event is accepted (e.g. persisted to the outbox); the guest waits for it, within
/// its deadline.
pub trait Publisher: Send + Sync {
    /// Accepts `event` for the output named `output`.
    fn publish<'a>(&'a self, output: &'a str, event: Event) -> PublishFuture<'a>;
}

/// A [`Publisher`] that keeps every published event in memory, in order.
///
/// Useful when the caller wants published events in the call result (tests, `spindle send`,
/// an HTTP reply) rather than delivered as they happen.
#[derive(Debug, Default)]
pub struct CollectingPublisher {
    events: Mutex<Vec<(String, Event)>>,
}

impl CollectingPublisher {
    /// Takes the `(output, event)` pairs published so far, leaving the collector empty.
    pub fn take(&self) -> Vec<(String, Event)> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Publisher for CollectingPublisher {
    fn publish<'a>(&'a self, output: &'a str, event: Event) -> PublishFuture<'a> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((output.to_owned(), event));
        Box::pin(std::future::ready(Ok(())))
    }
}
