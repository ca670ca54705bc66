//! What the executor needs from whatever runs a handler: one async call per event.
//!
//! The Wasm engine implements [`Handler`] for components; tests and benchmarks implement it
//! natively. Dispatch and every trigger only ever see this trait, which is what keeps them
//! independent of how a handler is run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cloudevent::Event;

/// A boxed future, so handlers can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs one event through a handler.
pub trait Handler: Send + Sync + 'static {
    /// Handles `event`. Events the handler publishes to named outputs while it runs go to
    /// `outputs`; the returned events are its results.
    fn handle(
        &self,
        event: Event,
        outputs: Arc<dyn Publish>,
    ) -> BoxFuture<'_, Result<Vec<Event>, HandlerError>>;
}

/// Where a handler's published events go: the component's output bindings.
pub trait Publish: Send + Sync {
    /// Sends `event` to the output named `output`; fails for an undeclared output.
    fn publish(&self, output: &str, event: Event) -> Result<(), PublishError>;
}

/// Why publishing to an output failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The component declared no output of that name in `spindle.toml`.
    #[error("no output named `{0}` is declared for this component")]
    UnknownOutput(String),
    /// The event's data breaks the schema the component declares for its type (`produces`).
    #[error("{0}")]
    InvalidData(registry::Violations),
    /// The output exists but cannot take the event now.
    #[error("output `{output}` is unavailable: {reason}")]
    Unavailable {
        /// The output's name.
        output: String,
        /// Why.
        reason: String,
    },
}

/// Why a handler produced no result for an event. Each kind maps to a protocol outcome
/// (an HTTP status, a broker ack/nak), so triggers need no knowledge of handlers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// The handler asked to be retried later (for example a dependency was down).
    #[error("transient handler error: {0}")]
    Transient(String),
    /// The handler rejected the event for good: retrying cannot help.
    #[error("permanent handler error: {0}")]
    Permanent(String),
    /// The handler crashed (a trap, such as a Rust panic in the guest).
    #[error("handler crashed: {0}")]
    Trap(String),
    /// The handler ran past its deadline and was stopped.
    #[error("handler exceeded its deadline of {0:?}")]
    Timeout(Duration),
    /// The handler ran out of its memory allowance and was stopped.
    #[error("handler exceeded its memory limit: {0}")]
    OutOfMemory(String),
    /// The component is already running as many instances as it may.
    #[error("component is at its concurrency limit")]
    Busy,
    /// The event's data breaks the schema the component declares for its type (`consumes`):
    /// the producer sent it wrong, and sending it again cannot help.
    #[error("{0}")]
    InvalidEvent(registry::Violations),
    /// The handler emitted an event whose data breaks the schema it declares (`produces`):
    /// a bug in the component, not in the event it was given.
    #[error("the handler produced invalid data: {0}")]
    InvalidResult(registry::Violations),
    /// Spindle itself failed to run the handler.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HandlerError {
    /// Whether redelivering the same event later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HandlerError::Transient(_) | HandlerError::Busy | HandlerError::Internal(_)
        )
    }
}
