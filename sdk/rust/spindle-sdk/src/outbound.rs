//! Publishing to outputs declared in `spindle.toml`.

use crate::__bindings::spindle::cloudevents::outbound as wit;
use crate::event::Event;

/// Why [`publish`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The output is not declared for this component in `spindle.toml`.
    #[error("unknown output `{0}`")]
    UnknownOutput(String),
    /// The runtime rejected the event as invalid.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The runtime could not accept the event right now.
    #[error("publish failed: {0}")]
    Failed(String),
}

/// Sends `event` to the output named `output`, in addition to what the handler returns.
///
/// Use it for side channels (audit, notifications); the runtime delivers at-least-once. With
/// `?` in a handler an error becomes permanent; map [`PublishError::Failed`] to
/// [`crate::Error::transient`] if a retry could help.
pub fn publish(output: &str, event: Event) -> Result<(), PublishError> {
    wit::publish(output, &event.into_wit()).map_err(|e| match e {
        wit::PublishError::UnknownOutput(o) => PublishError::UnknownOutput(o),
        wit::PublishError::InvalidEvent(m) => PublishError::InvalidEvent(m),
        wit::PublishError::Failed(m) => PublishError::Failed(m),
    })
}
