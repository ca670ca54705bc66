//! The limits every listener enforces, with defaults that hold on the internet.

use std::time::Duration;

/// How a listener protects itself from slow or greedy clients.
///
/// The defaults follow what mature servers ship (nginx, Go's `http.Server` guidance): a client
/// gets 10 s to send a request's headers, 30 s for its body, and an idle keep-alive connection
/// is closed after 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the first byte of a request (or from accepting the connection, for its first
    /// request) to the end of its headers. Past it the connection is closed: a client holding
    /// half a header cannot keep a slot forever (slowloris).
    pub header_timeout: Duration,
    /// From the end of the headers to the end of the body. Past it the request is answered
    /// `408 Request Timeout` and the connection closed.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may sit between requests before it is closed.
    pub idle_timeout: Duration,
    /// How many connections are served at once. Further clients wait in the kernel's accept
    /// backlog until a served connection closes; served connections are unaffected.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before dropping their connections.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// Default [`Limits::header_timeout`].
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`Limits::body_timeout`].
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default [`Limits::idle_timeout`].
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default [`Limits::max_connections`]: well under the usual 1024 open-file limit, so the
    /// cap is reached before the process runs out of descriptors.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
    /// Default [`Limits::shutdown_grace`].
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
        }
    }
}
