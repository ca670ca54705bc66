//! The errors of the admin API, each mapped to one problem response, so handlers just
//! return `Result<HttpResponse, ApiError>` and the status codes live in one place.

use http::{HeaderValue, StatusCode, header};
use http_server::{BearerToken, HttpResponse, Problem};

/// Seconds a client is asked to wait when the store cannot take a write (an I/O error it is
/// recovering from, the engine stopping).
const STORE_RETRY_AFTER: u64 = 5;

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request (body or query) is invalid; `field` names the offending input as a JSON
    /// pointer into the body (`/filters/0/sql`) or a query parameter (`?limit`).
    #[error("{field}: {detail}")]
    Invalid {
        /// Which input.
        field: String,
        /// What is wrong with it.
        detail: String,
        /// For CESQL errors: the 1-based line and column in the expression.
        position: Option<(usize, usize)>,
    },
    /// No such subscription (or route).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path; carries the `Allow` header value.
    #[error("method not allowed (allowed: {0})")]
    MethodNotAllowed(&'static str),
    /// Missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The request body is larger than the API accepts.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not `application/json`.
    #[error("unsupported media type `{0}`; send application/json")]
    UnsupportedMediaType(String),
    /// Too many requests of a bounded kind are open (e.g. live tails).
    #[error("{0}")]
    Busy(String),
    /// The delivery engine failed (store error, shutdown).
    #[error(transparent)]
    Delivery(delivery::Error),
}

impl ApiError {
    /// An invalid-input error without a position.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            detail: detail.into(),
            position: None,
        }
    }

    /// The problem response for this error.
    pub fn into_response(self) -> HttpResponse {
        let detail = self.to_string();
        let problem = match self {
            ApiError::Invalid {
                field, position, ..
            } => {
                let problem =
                    Problem::new(StatusCode::BAD_REQUEST, "Invalid request").member("field", field);
                match position {
                    Some((line, column)) => problem.member("line", line).member("column", column),
                    None => problem,
                }
            }
            ApiError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, "Not found"),
            ApiError::MethodNotAllowed(allow) => {
                Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
                    .header(header::ALLOW, HeaderValue::from_static(allow))
            }
            ApiError::Unauthorized => BearerToken::challenge(),
            ApiError::TooLarge(_) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            }
            ApiError::UnsupportedMediaType(_) => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            }
            ApiError::Busy(_) => Problem::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            ApiError::Delivery(e) => {
                tracing::error!(error = %e, "admin API: delivery engine failed");
                if e.is_transient() {
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Delivery engine unavailable",
                    )
                    .retry_after(STORE_RETRY_AFTER)
                } else {
                    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Delivery engine error")
                }
            }
        };
        problem.detail(detail).into_response()
    }
}

impl From<delivery::Error> for ApiError {
    /// Refusals become 400s naming the field the message points at; the rest are server
    /// errors.
    fn from(e: delivery::Error) -> Self {
        match e {
            delivery::Error::Invalid(msg) => ApiError::invalid(field_of(&msg), msg),
            delivery::Error::Sink(delivery::SinkError::UnsupportedScheme { scheme, supported }) => {
                unsupported_scheme(&scheme, &supported)
            }
            delivery::Error::Sink(delivery::SinkError::Invalid { sink, reason }) => {
                ApiError::invalid(field_of(&reason), format!("sink `{sink}`: {reason}"))
            }
            delivery::Error::NotFound(id) => ApiError::NotFound(format!("no subscription `{id}`")),
            other => ApiError::Delivery(other),
        }
    }
}

/// No sink for the scheme: the protocol's transport is missing (`/protocol`), or the
/// protocol is served but not with this scheme, e.g. `https:` without TLS (`/sink`).
fn unsupported_scheme(scheme: &str, supported: &str) -> ApiError {
    use delivery::Protocol as P;
    let registered: Vec<&str> = supported.split(", ").collect();
    let protocol = [P::Http, P::Mqtt5, P::Amqp, P::Nats, P::Kafka]
        .into_iter()
        .find(|p| p.sink_schemes().contains(&scheme));
    let served = protocol.is_some_and(|p| p.sink_schemes().iter().any(|s| registered.contains(s)));
    if served {
        ApiError::invalid(
            "/sink",
            format!("`{scheme}:` sinks are not supported by this Spindle (supported: {supported})"),
        )
    } else {
        let name = protocol
            .map(crate::validate::protocol_name)
            .unwrap_or_default();
        ApiError::invalid(
            "/protocol",
            format!(
                "protocol {name} is not supported yet: this Spindle has no transport for \
                 `{scheme}:` sinks (supported sink schemes: {supported})"
            ),
        )
    }
}

/// Guesses the body field a delivery-crate message is about from its wording (the crate
/// reports plain strings).
fn field_of(message: &str) -> String {
    let m = message.trim_start_matches("invalid subscription: ");
    // Broker sinks name the setting: `protocolsettings.qos 3 is not 0, 1 or 2`.
    if let Some(rest) = m.strip_prefix("protocolsettings.") {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            return format!("/protocolsettings/{name}");
        }
    }
    for (prefix, field) in [
        ("protocolsettings", "/protocolsettings"),
        ("sinkcredential", "/sinkcredential"),
        ("unknown credentialtype", "/sinkcredential/credentialtype"),
        ("bad method", "/protocolsettings/method"),
        ("bad header", "/protocolsettings/headers"),
        ("bad value for header", "/protocolsettings/headers"),
        ("webhook origin", "/config"),
        ("config", "/config"),
        ("delivery.", "/delivery"),
        ("filters", "/filters"),
        ("id ", "/id"),
    ] {
        if m.starts_with(prefix) {
            return field.to_owned();
        }
    }
    "/sink".to_owned()
}
