//! What a CloudEvents HTTP receiver answers: the reply table and the webhook handshake's
//! grants, as pure decisions.
//!
//! Spindle has two HTTP executors that must answer alike: the host's HTTP trigger and the
//! stock HTTP binder component, which does the same work inside Wasm. Both take every
//! decision here, and each only renders it with its own HTTP types.
//!
//! The reply table:
//! - no result event: `202 Accepted` when the event (or what it led to) was stored for
//!   onward delivery, `204 No Content` when nothing followed from it;
//! - one result: `200 OK` with the event, in the request's mode and event format (a batch
//!   request gets a batch);
//! - several results: a batch when the request was a batch or its `Accept` names
//!   `application/cloudevents-batch+json`; otherwise the first result is the reply and the
//!   rest flow on (see [`split_results`]).
//!
//! Refusals: `400` invalid event, `405` other methods, `413` body over the cap, `415`
//! unsupported event format, `422` permanent handler error, `503` + `Retry-After` transient
//! handler error (see [`Refusal`]).

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::format::Format;
use crate::http::{self as binding, Encoded, Mode};
use crate::{Error, Event, Problem};

/// Seconds a producer is asked to wait after a transient handler error.
pub const TRANSIENT_RETRY_AFTER: u64 = 5;
/// The methods a CloudEvents endpoint serves (its `Allow` header).
pub const ALLOW: &str = "POST, OPTIONS";

/// A request the receiver does not accept: the status, a short fixed title for the problem
/// document (RFC 9457), and how long a producer should wait before retrying, if it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The problem's title.
    pub title: &'static str,
    /// `Retry-After` seconds, for refusals worth retrying.
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// The answer to a request whose body is not an acceptable CloudEvent: `415` for a
    /// format the receiver does not read, `413` for a body over the cap, else `400`.
    pub fn decoding(error: &Error) -> Self {
        let (status, title) = match error {
            Error::UnsupportedFormat(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported event format",
            ),
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "Body too large"),
            _ => (StatusCode::BAD_REQUEST, "Invalid CloudEvent"),
        };
        Refusal {
            status,
            title,
            retry_after: None,
        }
    }

    /// The answer when the handler failed: `503` with `Retry-After` when a retry may
    /// succeed, `422` when it never will.
    pub fn handler(retryable: bool) -> Self {
        if retryable {
            Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "Handler asked for a retry",
                retry_after: Some(TRANSIENT_RETRY_AFTER),
            }
        } else {
            Refusal {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                title: "Handler rejected the event",
                retry_after: None,
            }
        }
    }

    /// The answer to a method other than `POST` and `OPTIONS` (with `Allow:` [`ALLOW`]).
    pub fn method() -> Self {
        Refusal {
            status: StatusCode::METHOD_NOT_ALLOWED,
            title: "Method not allowed",
            retry_after: None,
        }
    }

    /// The answer to a body larger than the receiver accepts.
    pub fn too_large() -> Self {
        Refusal {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            title: "Body too large",
            retry_after: None,
        }
    }
}

/// The detail of a `405`.
pub const METHOD_DETAIL: &str =
    "CloudEvents are delivered with POST (and OPTIONS for the webhook handshake)";

/// Each problem of a refused event as a member of the problem document's `problems` list:
/// which batch member, which attribute, what is wrong. Empty when the error names none.
pub fn problems_json(error: &Error) -> Vec<serde_json::Value> {
    error.problems().iter().map(problem_json).collect()
}

fn problem_json(p: &Problem) -> serde_json::Value {
    let mut item = serde_json::json!({ "message": p.message });
    if let Some(index) = p.index {
        item["index"] = index.into();
    }
    if let Some(attribute) = &p.attribute {
        item["attribute"] = attribute.as_str().into();
    }
    item
}

/// Takes the events that go in the reply out of `results`, leaving those that flow on: all
/// of them when the request was a batch or accepts one (`batch_ok`) and there are several,
/// else the first.
pub fn split_results(results: &mut Vec<Event>, in_batch: bool, batch_ok: bool) -> Vec<Event> {
    if in_batch || (results.len() > 1 && batch_ok) {
        std::mem::take(results)
    } else if !results.is_empty() {
        let rest = results.split_off(1);
        std::mem::replace(results, rest)
    } else {
        Vec::new()
    }
}

/// A successful answer: status, headers and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `200`, `202` or `204`.
    pub status: StatusCode,
    /// `Content-Type` and, in binary mode, the `ce-` headers.
    pub headers: HeaderMap,
    /// The reply events, encoded.
    pub body: Bytes,
}

/// The success reply: `reply` in the request's `mode` and event `format` (a batch when the
/// request was one or there are several), else `202 Accepted` when something was `stored`
/// for onward delivery, or `204 No Content`.
pub fn reply(mode: Mode, format: Format, reply: &[Event], stored: bool) -> Reply {
    if reply.is_empty() {
        return Reply {
            status: if stored {
                StatusCode::ACCEPTED
            } else {
                StatusCode::NO_CONTENT
            },
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
    }
    let Encoded { headers, body } = if mode == Mode::Batch || reply.len() > 1 {
        binding::encode_batch_as(reply, format)
    } else {
        binding::encode_as(&reply[0], mode, format)
    };
    Reply {
        status: StatusCode::OK,
        headers,
        body,
    }
}

/// The headers of the webhook validation handshake (cloudevents/http-webhook.md, section 4).
pub mod webhook {
    /// The origin asking to deliver.
    pub const REQUEST_ORIGIN: &str = "webhook-request-origin";
    /// Where the origin wants the grant confirmed by a `GET`, instead of in the answer.
    pub const REQUEST_CALLBACK: &str = "webhook-request-callback";
    /// The requests per minute the origin asks for.
    pub const REQUEST_RATE: &str = "webhook-request-rate";
    /// The origin granted.
    pub const ALLOWED_ORIGIN: &str = "webhook-allowed-origin";
    /// The requests per minute granted (`*`: no limit).
    pub const ALLOWED_RATE: &str = "webhook-allowed-rate";

    /// Whether `origin` may deliver: `patterns` are host names or `*.suffix` wildcards
    /// (case-insensitive), `*` admits anyone, and no patterns at all admit every origin.
    pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
        patterns.is_empty()
            || patterns.iter().any(|pattern| {
                pattern == "*"
                    || pattern.eq_ignore_ascii_case(origin)
                    || pattern.strip_prefix("*.").is_some_and(|suffix| {
                        origin.len() > suffix.len() + 1
                            && origin[origin.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                            && origin.as_bytes()[origin.len() - suffix.len() - 1] == b'.'
                    })
            })
    }

    /// The rate granted for a `WebHook-Request-Rate` value: the lower of the request and the
    /// receiver's `limit`, the limit when none was asked, `*` when the receiver has none.
    pub fn granted_rate(limit: Option<u32>, requested: Option<&str>) -> String {
        let asked = requested
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|r| *r > 0);
        match (limit, asked) {
            (Some(limit), Some(asked)) => asked.min(limit).to_string(),
            (Some(limit), None) => limit.to_string(),
            (None, _) => "*".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::webhook::{granted_rate, origin_allowed};
    use super::*;

    fn event(id: &str) -> Event {
        Event::builder()
            .id(id)
            .source("/t")
            .ty("t")
            .build()
            .unwrap()
    }

    #[test]
    fn one_result_of_a_single_event_is_the_reply_and_the_rest_flow_on() {
        let mut results = vec![event("1"), event("2")];
        let reply = split_results(&mut results, false, false);
        assert_eq!(reply.iter().map(Event::id).collect::<Vec<_>>(), ["1"]);
        assert_eq!(results.iter().map(Event::id).collect::<Vec<_>>(), ["2"]);
        let mut results = vec![event("1"), event("2")];
        assert_eq!(split_results(&mut results, false, true).len(), 2);
        assert!(results.is_empty());
    }

    #[test]
    fn no_result_is_202_when_stored_else_204() {
        assert_eq!(
            reply(Mode::Binary, Format::Json, &[], true).status,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            reply(Mode::Binary, Format::Json, &[], false).status,
            StatusCode::NO_CONTENT
        );
        let r = reply(Mode::Structured, Format::Json, &[event("1")], false);
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.headers[http::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/cloudevents+json")
        );
    }

    #[test]
    fn origin_patterns() {
        let patterns = ["*.example.com".to_owned(), "exact.org".to_owned()];
        assert!(origin_allowed(&patterns, "a.example.com"));
        assert!(origin_allowed(&patterns, "A.Example.COM"));
        assert!(!origin_allowed(&patterns, "example.com"));
        assert!(!origin_allowed(&patterns, "badexample.com"));
        assert!(origin_allowed(&patterns, "exact.org"));
        assert!(!origin_allowed(&patterns, "sub.exact.org"));
        assert!(origin_allowed(&[], "anyone"));
    }

    #[test]
    fn rates() {
        assert_eq!(granted_rate(None, Some("100")), "*");
        assert_eq!(granted_rate(Some(60), Some("100")), "60");
        assert_eq!(granted_rate(Some(60), Some("10")), "10");
        assert_eq!(granted_rate(Some(60), Some("zero")), "60");
    }
}
