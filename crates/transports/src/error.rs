//! Errors of connecting and sending, shaped for the caller's retry decision.

/// Why a receiver or sender could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The broker could not be reached or refused the connection; worth retrying later.
    #[error("cannot connect to {protocol} broker at {address}: {reason}")]
    Unreachable {
        /// `nats`, `mqtt`, `amqp` or `kafka`.
        protocol: &'static str,
        /// The address tried.
        address: String,
        /// What the client library said.
        reason: String,
    },
    /// The broker is up but the configuration does not work with it (a missing JetStream
    /// stream, a refused subscription, an invalid option).
    #[error("{protocol}: {reason}")]
    Setup {
        /// `nats`, `mqtt`, `amqp` or `kafka`.
        protocol: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The broker's TLS certificate was refused (expired, unknown issuer, name mismatch) or
    /// the TLS settings cannot be used: retrying will not help until the operator fixes
    /// them, so a sink dead-letters instead of retrying.
    #[error("cannot connect to {protocol} broker at {address}: {problem}")]
    Certificate {
        /// `nats`, `mqtt` or `amqp`.
        protocol: &'static str,
        /// The address tried.
        address: String,
        /// What is wrong, e.g. `TLS: invalid peer certificate: UnknownIssuer`.
        problem: String,
    },
    /// The sink's scheme has no broker transport here (HTTP sinks are the runtime's).
    #[error("sink scheme `{0}` is not a broker transport")]
    Unsupported(String),
}

impl ConnectError {
    /// A failure to connect, as [`ConnectError::Certificate`] when a TLS certificate problem
    /// caused it, else [`ConnectError::Unreachable`].
    pub(crate) fn connecting(
        protocol: &'static str,
        address: impl ToString,
        error: &(dyn std::error::Error + 'static),
    ) -> Self {
        match http_server::trust::certificate_problem(error) {
            Some(problem) => ConnectError::Certificate {
                protocol,
                address: address.to_string(),
                problem,
            },
            None => ConnectError::Unreachable {
                protocol,
                address: address.to_string(),
                reason: error.to_string(),
            },
        }
    }

    /// Whether retrying the same connection can succeed without a change of configuration.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ConnectError::Unreachable { .. })
    }
}

/// Why an event could not be sent. [`SendError::is_retryable`] is what delivery code looks at.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The broker is unreachable or the connection dropped mid-send; the same event may
    /// succeed later.
    #[error("{protocol} send failed (retryable): {reason}")]
    Transient {
        /// `nats`, `mqtt`, `amqp` or `kafka`.
        protocol: &'static str,
        /// What happened.
        reason: String,
    },
    /// The broker is reachable and the connection healthy, but cannot take the event yet
    /// (no JetStream stream stores the subject): retry later, over the same connection.
    #[error("{protocol} send deferred (retryable): {reason}")]
    Deferred {
        /// `nats`, `mqtt`, `amqp` or `kafka`.
        protocol: &'static str,
        /// What the broker is missing.
        reason: String,
    },
    /// The broker refused this event for good (too large, not allowed, invalid target);
    /// retrying the same event will fail the same way, so dead-letter it.
    #[error("{protocol} send failed (permanent): {reason}")]
    Permanent {
        /// `nats`, `mqtt`, `amqp` or `kafka`.
        protocol: &'static str,
        /// What happened.
        reason: String,
    },
}

impl SendError {
    /// Whether sending the same event again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SendError::Transient { .. } | SendError::Deferred { .. }
        )
    }

    /// Whether the connection the send went over may be broken (so a new one should be
    /// opened for the retry).
    pub fn is_connection_suspect(&self) -> bool {
        matches!(self, SendError::Transient { .. })
    }

    pub(crate) fn transient(protocol: &'static str, reason: impl ToString) -> Self {
        SendError::Transient {
            protocol,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn permanent(protocol: &'static str, reason: impl ToString) -> Self {
        SendError::Permanent {
            protocol,
            reason: reason.to_string(),
        }
    }
}
