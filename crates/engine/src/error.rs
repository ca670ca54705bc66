//! Typed errors: loading a component, and handling one event.

use std::time::Duration;

/// Why a component could not be loaded. Loading happens at start-up, so these are
/// configuration or build problems to report to the operator.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The engine configuration is unusable.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The component's configuration is unusable (e.g. a memory cap above the engine's).
    #[error("component `{component}`: invalid configuration: {message}")]
    ComponentConfig {
        /// The component's name.
        component: String,
        /// What is wrong.
        message: String,
    },
    /// Reading the component file failed.
    #[error("component `{component}`: cannot read {path}: {source}")]
    Read {
        /// The component's name.
        component: String,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid component, or compilation failed.
    #[error("component `{component}`: cannot compile: {message}")]
    Compile {
        /// The component's name.
        component: String,
        /// The compiler's explanation.
        message: String,
    },
    /// The component imports something the host does not provide, or does not export
    /// `handle` with the expected signature.
    #[error("component `{component}`: does not fit the host: {message}")]
    Link {
        /// The component's name.
        component: String,
        /// The linker's explanation.
        message: String,
    },
    /// The on-disk compilation cache failed (a write or a directory creation).
    #[error("compilation cache at {path}: {source}")]
    Cache {
        /// The path involved.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Whether a handler's own error is worth retrying; mirrors the WIT `error-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Retry later.
    Transient,
    /// Never retry: dead-letter.
    Permanent,
}

/// Why one event was not handled. Each variant concerns that event only: the engine keeps
/// serving the next one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The component is at its concurrency cap (or the engine's pool is full); nothing ran.
    /// HTTP answers 429; queue consumers nak and retry.
    #[error("component `{component}` is busy")]
    Busy {
        /// The component's name.
        component: String,
    },
    /// The event ran past the component's deadline and was stopped.
    #[error("component `{component}` exceeded its deadline of {deadline:?}")]
    Timeout {
        /// The component's name.
        component: String,
        /// The deadline in force.
        deadline: Duration,
    },
    /// The guest needed more linear memory than its cap and failed.
    #[error("component `{component}` ran out of memory (cap {limit_bytes} bytes)")]
    OutOfMemory {
        /// The component's name.
        component: String,
        /// The cap in force.
        limit_bytes: u64,
    },
    /// The guest trapped (a Rust panic, `unreachable`, a bad memory access...).
    #[error("component `{component}` trapped: {message}")]
    Trap {
        /// The component's name.
        component: String,
        /// The trap with its backtrace/context as wasmtime reports it.
        message: String,
    },
    /// The guest could not be instantiated (e.g. its start function failed).
    #[error("component `{component}` could not be instantiated: {message}")]
    Instantiate {
        /// The component's name.
        component: String,
        /// Wasmtime's explanation.
        message: String,
    },
    /// The guest handed the host more than one event may (see [`crate::budget`]): too many
    /// or too large published events or results.
    #[error("component `{component}` exceeded a limit: {message}")]
    LimitExceeded {
        /// The component's name.
        component: String,
        /// Which limit, and by how much.
        message: String,
    },
    /// The handler returned an error of its own.
    #[error("component `{component}` refused the event ({kind:?}): {message}")]
    Handler {
        /// The component's name.
        component: String,
        /// Retry or not, as the handler decided.
        kind: ErrorKind,
        /// The handler's message.
        message: String,
    },
}

impl HandleError {
    /// Whether trying the same event again later may succeed. The delivery layer uses this to
    /// choose between retry and dead-letter: busy and transient handler errors are retryable;
    /// traps, timeouts and memory exhaustion are deterministic enough to dead-letter.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HandleError::Busy { .. }
                | HandleError::Handler {
                    kind: ErrorKind::Transient,
                    ..
                }
        )
    }
}
