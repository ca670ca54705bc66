//! Error responses as RFC 9457 problem details (`application/problem+json`), in the same shape
//! as the HTTP trigger's, plus a `field` member (a JSON pointer into the request body, or a
//! query parameter name) so a client learns exactly which input was refused.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

/// An HTTP response with a buffered body: every admin response is small.
pub type HttpResponse = Response<Full<Bytes>>;

/// A problem response with a title and a detail sentence; `extra` members (e.g. `field`,
/// `line`, `column`) are merged into the document.
pub fn problem(
    status: StatusCode,
    title: &str,
    detail: &str,
    extra: Option<Value>,
) -> HttpResponse {
    let mut body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(Value::Object(extra)), Value::Object(map)) = (extra, &mut body) {
        map.extend(extra);
    }
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

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
