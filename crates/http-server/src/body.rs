//! Reading a request body under the listener's size cap and body-read timeout.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use tokio::time::Instant;

use crate::problem::Problem;

/// When the body of this request must have arrived: put in the request's extensions by
/// [`crate::serve`] (from [`crate::Limits::body_timeout`]) and honoured by [`read_body`]. A
/// request without one (a test calling a handler directly) has no body deadline.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Instant);

impl BodyDeadline {
    /// The deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        BodyDeadline(Instant::now() + timeout)
    }
}

/// Reads `request`'s body whole, refusing it with a ready answer when it is larger than
/// `limit` bytes (`413`, checked against `Content-Length` before reading), arrives after the
/// request's [`BodyDeadline`] (`408`, with `Connection: close` since the rest of the body is
/// still on the wire) or breaks off (`400`).
pub async fn read_body<B>(
    request: Request<B>,
    limit: usize,
) -> Result<(http::request::Parts, Bytes), Problem>
where
    B: Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "Body too large").detail(format!(
            "the body exceeds this endpoint's limit of {limit} bytes"
        ))
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large().header(header::CONNECTION, HeaderValue::from_static("close")));
    }
    let deadline = request.extensions().get::<BodyDeadline>().copied();
    let (parts, body) = request.into_parts();
    let collect = Limited::new(body, limit).collect();
    let collected = match deadline {
        Some(BodyDeadline(at)) => match tokio::time::timeout_at(at, collect).await {
            Ok(collected) => collected,
            Err(_) => {
                return Err(Problem::new(StatusCode::REQUEST_TIMEOUT, "Body too slow")
                    .detail("the request body did not arrive within this endpoint's body timeout")
                    .header(header::CONNECTION, HeaderValue::from_static("close")));
            }
        },
        None => collect.await,
    };
    match collected {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(too_large().header(header::CONNECTION, HeaderValue::from_static("close")))
        }
        Err(error) => Err(Problem::new(StatusCode::BAD_REQUEST, "Unreadable body")
            .detail(format!("cannot read the request body: {error}"))),
    }
}
