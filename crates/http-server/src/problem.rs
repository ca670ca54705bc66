//! Error responses as RFC 9457 problem details (`application/problem+json`): one shape for
//! every Spindle endpoint, so a client learns exactly what was wrong wherever it asked.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Map, Value};

/// An HTTP response with a buffered body: what every Spindle handler answers.
pub type HttpResponse = Response<Full<Bytes>>;

/// A problem-details document being built; [`Problem::into_response`] renders it.
///
/// ```
/// use http::StatusCode;
/// use http_server::Problem;
/// let r = Problem::new(StatusCode::BAD_REQUEST, "Invalid subscription")
///     .detail("`sink` is required")
///     .member("field", "/sink")
///     .into_response();
/// assert_eq!(r.status(), 400);
/// ```
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    body: Map<String, Value>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem with its status and a short, fixed title.
    pub fn new(status: StatusCode, title: &str) -> Self {
        let mut body = Map::new();
        body.insert("type".into(), "about:blank".into());
        body.insert("title".into(), title.into());
        body.insert("status".into(), status.as_u16().into());
        Problem {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// The sentence saying what was wrong with this request.
    pub fn detail(self, detail: impl Into<String>) -> Self {
        self.member("detail", detail.into())
    }

    /// An extension member (e.g. `field`, `line`, `problems`).
    pub fn member(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.body.insert(name.to_owned(), value.into());
        self
    }

    /// Asks the client to retry after `seconds` (`Retry-After`).
    pub fn retry_after(self, seconds: u64) -> Self {
        self.header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// Adds a response header (e.g. `Allow`, `WWW-Authenticate`).
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The status this problem is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response: status, `Content-Type: application/problem+json`, headers, the document.
    pub fn into_response(self) -> HttpResponse {
        let body = Value::Object(self.body).to_string();
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<Problem> for HttpResponse {
    fn from(problem: Problem) -> Self {
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_members_and_headers() {
        let r = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Busy")
            .detail("try later")
            .member("field", "/x")
            .retry_after(5)
            .into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], 503);
        assert_eq!(v["title"], "Busy");
        assert_eq!(v["detail"], "try later");
        assert_eq!(v["field"], "/x");
        assert_eq!(v["type"], "about:blank");
    }
}
