//! Spindle's stock HTTP protocol binder: a component that serves `wasi:http/incoming-handler`
//! and calls the linked CloudEvents handler (`spindle:cloudevents/binder-http` world).
//!
//! It does inside Wasm what Spindle's HTTP trigger does in the host, with the same pure code
//! (the `spindle-cloudevent` crate): binary, structured and batched modes in every event
//! format, the webhook validation handshake, and replies and refusals from one table
//! (`cloudevent::receiver`). What it cannot do, having no host around it: results it has no
//! reply for are answered as a batch (the host would forward them to the component's
//! outputs), and a handshake that offers a callback is answered directly.
//!
//! Settings, read from the linked component's variables (`config`):
//! - `webhook-allowed-origins`: comma-separated origins granted in the handshake (`*.suffix`
//!   wildcards; none set grants every origin);
//! - `webhook-allowed-rate`: requests per minute granted (none set grants `*`);
//! - `max-body-size`: the largest request body in bytes (default 1 MiB; `413` above).

wit_bindgen::generate!({
    world: "binder-http",
    path: "../../wit",
    generate_all,
});

mod convert;
mod io;

use bytes::Bytes;
use cloudevent::http::{self as binding, Mode};
use cloudevent::receiver::{self, Refusal, webhook};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

/// The largest request body by default, as the host's `[application.http] max_body_size`.
const DEFAULT_MAX_BODY: usize = 1024 * 1024;

struct Binder;

impl Guest for Binder {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = io::headers(&request);
        let answer = match request.method() {
            Method::Post => {
                let limit = max_body_size();
                match io::read_body(request, limit) {
                    Ok(body) => cloudevents(&headers, body),
                    Err(io::BodyError::TooLarge) => problem(
                        Refusal::too_large(),
                        &format!("the body is larger than {limit} bytes"),
                        None,
                    ),
                    Err(io::BodyError::Failed(why)) => problem(
                        Refusal {
                            status: StatusCode::BAD_REQUEST,
                            title: "Cannot read the body",
                            retry_after: None,
                        },
                        &why,
                        None,
                    ),
                }
            }
            Method::Options => handshake(&headers),
            _ => {
                let mut answer = problem(Refusal::method(), receiver::METHOD_DETAIL, None);
                answer
                    .headers
                    .insert(header::ALLOW, HeaderValue::from_static(receiver::ALLOW));
                answer
            }
        };
        io::respond(response_out, answer);
    }
}

/// A response, before it is written to the `wasi:http` response.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A `POST`: decode, run the handler on each event in order, reply per the table.
fn cloudevents(headers: &HeaderMap, body: Bytes) -> Answer {
    let message = match binding::decode(headers, body) {
        Ok(message) => message,
        Err(error) => {
            let problems = receiver::problems_json(&error);
            return problem(
                Refusal::decoding(&error),
                &error.to_string(),
                (!problems.is_empty()).then_some(problems),
            );
        }
    };
    let mode = message.mode();
    let format = binding::format_of(headers);
    let in_batch = mode == Mode::Batch;
    let mut results = Vec::new();
    for (index, event) in message.into_events().into_iter().enumerate() {
        let location = if in_batch {
            format!("event [{index}] (id `{}`)", event.id())
        } else {
            format!("event `{}`", event.id())
        };
        match handle(&convert::to_wit(&event)) {
            Ok(out) => {
                for result in out {
                    match convert::from_wit(result) {
                        Ok(result) => results.push(result),
                        Err(error) => {
                            return problem(
                                Refusal {
                                    status: StatusCode::INTERNAL_SERVER_ERROR,
                                    title: "Handler failed",
                                    retry_after: None,
                                },
                                &format!(
                                    "{location}: the handler returned an invalid event: {error}"
                                ),
                                None,
                            );
                        }
                    }
                }
            }
            Err(error) => {
                return problem(
                    Refusal::handler(
                        error.kind == spindle::cloudevents::types::ErrorKind::Transient,
                    ),
                    &format!("{location}: {}", error.message),
                    None,
                );
            }
        }
    }
    // A binder has no outputs to forward results to: every result is in the reply (a batch
    // when there are several).
    let reply = receiver::reply(mode, format, &results, false);
    Answer {
        status: reply.status,
        headers: reply.headers,
        body: reply.body,
    }
}

/// An `OPTIONS`: the webhook validation handshake, answered with the grant in the headers.
fn handshake(headers: &HeaderMap) -> Answer {
    let mut answer = Answer {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: Bytes::new(),
    };
    answer
        .headers
        .insert(header::ALLOW, HeaderValue::from_static(receiver::ALLOW));
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(origin) = text(webhook::REQUEST_ORIGIN) else {
        return answer;
    };
    let allowed: Vec<String> = spindle::cloudevents::config::get("webhook-allowed-origins")
        .map(|list| {
            list.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !webhook::origin_allowed(&allowed, origin) {
        log_refusal("webhook handshake refused: origin not allowed", origin);
        return problem(
            Refusal {
                status: StatusCode::FORBIDDEN,
                title: "Origin not allowed",
                retry_after: None,
            },
            &format!("`{origin}` is not among this endpoint's allowed origins"),
            None,
        );
    }
    let limit = spindle::cloudevents::config::get("webhook-allowed-rate")
        .and_then(|v| v.trim().parse::<u32>().ok());
    let rate = webhook::granted_rate(limit, text(webhook::REQUEST_RATE));
    for (name, value) in [
        (webhook::ALLOWED_ORIGIN, origin),
        (webhook::ALLOWED_RATE, rate.as_str()),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            answer.headers.insert(HeaderName::from_static(name), value);
        }
    }
    answer
}

fn log_refusal(message: &str, origin: &str) {
    spindle::cloudevents::log::log(
        spindle::cloudevents::log::Level::Warn,
        message,
        &[("origin".to_owned(), origin.to_owned())],
    );
}

/// A problem-details document (RFC 9457) for a refusal, shaped as the host's.
fn problem(refusal: Refusal, detail: &str, problems: Option<Vec<serde_json::Value>>) -> Answer {
    let mut document = serde_json::json!({
        "type": "about:blank",
        "title": refusal.title,
        "status": refusal.status.as_u16(),
        "detail": detail,
    });
    if let Some(problems) = problems {
        document["problems"] = problems.into();
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(seconds) = refusal.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Answer {
        status: refusal.status,
        headers,
        body: Bytes::from(document.to_string()),
    }
}

fn max_body_size() -> usize {
    spindle::cloudevents::config::get("max-body-size")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_BODY)
}

export!(Binder);
