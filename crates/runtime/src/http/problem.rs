//! Error responses as RFC 9457 problem details (`application/problem+json`), so a producer
//! learns exactly what was wrong: which attribute, which batch member, why.

use bytes::Bytes;
use cloudevent::Problem;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

/// An HTTP response with a buffered body.
pub type HttpResponse = Response<Full<Bytes>>;

/// A problem response with a title and a detail sentence.
pub fn problem(status: StatusCode, title: &str, detail: impl Into<String>) -> HttpResponse {
    problem_with(status, title, detail.into(), &[])
}

/// A problem response that also lists individual CloudEvents problems.
pub fn problem_with(
    status: StatusCode,
    title: &str,
    detail: String,
    problems: &[Problem],
) -> HttpResponse {
    let mut body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if !problems.is_empty() {
        body["problems"] = problems
            .iter()
            .map(|p| {
                let mut item = json!({ "message": p.message });
                if let Some(index) = p.index {
                    item["index"] = json!(index);
                }
                if let Some(attribute) = &p.attribute {
                    item["attribute"] = json!(attribute);
                }
                item
            })
            .collect();
    }
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// Adds `Retry-After: <seconds>`.
pub fn with_retry_after(mut response: HttpResponse, seconds: u64) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}
