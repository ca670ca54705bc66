//! Errors of the delivery crate.

use std::sync::Arc;

use crate::model::SubscriptionId;

/// Everything that can go wrong when managing subscriptions, accepting events or handling
/// dead letters. Delivery failures are not errors: they are retried or dead-lettered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The embedded database failed (I/O, corruption, lock held by another process). Shared
    /// with `Arc` because one failed commit fails every caller of that batch.
    #[error("state store: {0}")]
    Store(#[from] Arc<redb::Error>),
    /// The write batch this request was part of was abandoned after an earlier store failure.
    #[error("state store: the write batch was aborted (see the logs for the cause)")]
    Aborted,
    /// The store hit an I/O error (a full disk, say) and is being closed and opened again;
    /// nothing was written. Callers answer "try again later" (HTTP `503`, a broker nak).
    #[error(
        "state store: recovering from an I/O error (is the disk full?); nothing was written, try again shortly"
    )]
    Recovering,
    /// A quota is reached (see [`crate::quota`]): the subscription takes no new events until
    /// its queue drains or its dead letters are replayed, purged or expire. Nothing was
    /// written; callers answer "try again later" (HTTP `503`, a broker nak).
    #[error("subscription `{subscription}` is full: {why}; nothing was accepted, try again later")]
    Full {
        /// The subscription.
        subscription: SubscriptionId,
        /// Which bound, and where usage stands.
        why: String,
    },
    /// The engine was shut down.
    #[error("the delivery engine is shut down")]
    Closed,
    /// The state directory could not be created.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A subscription was refused (bad sink, policy or fields).
    #[error("invalid subscription: {0}")]
    Invalid(String),
    /// No sink could be built for the subscription.
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// The subscription does not exist.
    #[error("no subscription `{0}`")]
    NotFound(SubscriptionId),
    /// The state directory was written by a newer Spindle, in a layout this build does not
    /// know: refused rather than misread.
    #[error(
        "state store: {what}, but this Spindle understands up to {supported}; it was written by a newer Spindle: run that version, or start with another --state-dir"
    )]
    NewerSchema {
        /// What was found.
        what: String,
        /// The newest version this build understands.
        supported: u64,
    },
    /// A stored record could not be decoded (should never happen: we wrote it).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// Cluster mode: JetStream did not take a write or answer a read (the NATS cluster is
    /// unreachable or has no quorum); nothing was accepted, try again shortly.
    #[error("cluster store: {0}; nothing was accepted, try again shortly")]
    Cluster(String),
}

impl Error {
    /// Whether trying again later may succeed (the store failed or is recovering, the
    /// engine is stopping): callers answer `503` + `Retry-After` or nak, never "bad request".
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Store(_)
                | Error::Aborted
                | Error::Closed
                | Error::Recovering
                | Error::Full { .. }
                | Error::Cluster(_)
        )
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Store(Arc::new(e))
    }
}

/// Shorthand for redb's umbrella error, which every store step converts into.
pub(crate) fn store<E: Into<redb::Error>>(e: E) -> Error {
    Error::Store(Arc::new(e.into()))
}
