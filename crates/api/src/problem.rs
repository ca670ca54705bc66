//! The admin API's success responses: JSON documents, other bodies, empty answers. Errors are
//! [`http_server::Problem`] documents, built in [`crate::error`].

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
pub use http_server::HttpResponse;
use serde_json::Value;

/// A JSON response.
pub fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    bytes_response(status, "application/json", Bytes::from(body.to_string()))
}

/// A response with a body of the given media type.
pub fn bytes_response(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An empty response (e.g. `OPTIONS`, `DELETE`).
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
