//! Which handler serves which method and path, and the `Allow` sets `OPTIONS` reports.

use std::sync::Arc;

use bytes::Bytes;
use delivery::Delivery;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

use crate::error::ApiError;
use crate::problem::{HttpResponse, bytes_response, empty};
use crate::query::{Query, decode};
use crate::{deadletters, openapi, subscriptions, tail};

const ALLOW_COLLECTION: &str = "GET, POST, OPTIONS";
const ALLOW_ITEM: &str = "GET, PUT, DELETE, OPTIONS";
const ALLOW_DEADLETTERS: &str = "GET, DELETE, OPTIONS";
const ALLOW_REPLAY: &str = "POST, OPTIONS";
const ALLOW_READ: &str = "GET, HEAD";

/// One request, its body already read.
pub struct Call<'a> {
    /// The method.
    pub method: &'a Method,
    /// The target.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// `/readyz`: `200` when the delivery engine takes writes and runs every worker and the
/// embedder's checks (the triggers) pass, else `503`; the body lists each check.
async fn readyz(delivery: &Delivery, extra: Option<&crate::ReadinessProbe>) -> HttpResponse {
    let checks = crate::readiness(delivery, extra).await;
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let checks: Vec<serde_json::Value> = checks
        .into_iter()
        .map(|(name, result)| match result {
            Ok(()) => serde_json::json!({"name": name, "ok": true}),
            Err(why) => serde_json::json!({"name": name, "ok": false, "detail": why}),
        })
        .collect();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": checks,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    bytes_response(status, "application/json", body.to_string().into())
}

/// The routes that answer without a token: probes and the API description.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/openapi.yaml" | "/openapi.json"
    )
}

/// Dispatches an authorized request to its handler.
pub async fn route(
    delivery: &Arc<Delivery>,
    config: &crate::AdminConfig,
    call: Call<'_>,
) -> Result<HttpResponse, ApiError> {
    let readiness = config.readiness.as_ref();
    let path = call.uri.path();
    let method = call.method;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] => read_only(method, || {
            bytes_response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
        }),
        ["readyz"] if matches!(*method, Method::GET | Method::HEAD) => {
            Ok(readyz(delivery, readiness).await)
        }
        ["readyz"] => Err(ApiError::MethodNotAllowed(ALLOW_READ)),
        ["metrics"] => read_only(method, || {
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let m = metrics::metrics();
            for sub in delivery.subscriptions() {
                // Counted in memory as the store is written: no scan per scrape.
                let usage = delivery.usage(Some(&sub.id));
                let labels = metrics::SubscriptionLabels {
                    subscription: sub.id.as_str().to_owned(),
                };
                m.queue_depth
                    .get_or_create(&labels)
                    .set(gauge(usage.queued));
                m.queue_bytes
                    .get_or_create(&labels)
                    .set(gauge(usage.queued_bytes));
                m.dead_letters_stored
                    .get_or_create(&labels)
                    .set(gauge(usage.dead));
            }
            bytes_response(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                metrics::encode().into(),
            )
        }),
        ["events", "tail"] => match *method {
            Method::GET => tail::stream(&Query::parse(call.uri.query())),
            _ => Err(ApiError::MethodNotAllowed("GET")),
        },
        ["registry", ..] => match *method {
            Method::GET | Method::HEAD => crate::discovery::get(
                config.registry.as_deref(),
                path.trim_start_matches('/').trim_start_matches("registry"),
            ),
            _ => Err(ApiError::MethodNotAllowed(ALLOW_READ)),
        },
        ["openapi.yaml"] => read_only(method, || {
            bytes_response(StatusCode::OK, "application/yaml", openapi::YAML.into())
        }),
        ["openapi.json"] => read_only(method, || {
            bytes_response(StatusCode::OK, "application/json", openapi::json())
        }),
        ["subscriptions"] => match *method {
            Method::GET => Ok(subscriptions::list(
                delivery,
                &Query::parse(call.uri.query()),
            )),
            Method::POST => {
                json_body(call.headers)?;
                subscriptions::create(delivery, call.headers, &call.body).await
            }
            Method::OPTIONS => Ok(options(ALLOW_COLLECTION)),
            _ => Err(ApiError::MethodNotAllowed(ALLOW_COLLECTION)),
        },
        ["subscriptions", id] if !id.is_empty() => {
            let id = decode(id);
            match *method {
                Method::GET => subscriptions::get(delivery, &id),
                Method::PUT => {
                    json_body(call.headers)?;
                    subscriptions::update(delivery, &id, &call.body).await
                }
                Method::DELETE => subscriptions::delete(delivery, &id).await,
                Method::OPTIONS => Ok(options(ALLOW_ITEM)),
                _ => Err(ApiError::MethodNotAllowed(ALLOW_ITEM)),
            }
        }
        ["deadletters"] => {
            let query = Query::parse(call.uri.query());
            match *method {
                Method::GET => deadletters::list(delivery, &query).await,
                Method::DELETE => deadletters::purge(delivery, &query).await,
                Method::OPTIONS => Ok(options(ALLOW_DEADLETTERS)),
                _ => Err(ApiError::MethodNotAllowed(ALLOW_DEADLETTERS)),
            }
        }
        ["deadletters", "replay"] => match *method {
            Method::POST => {
                // An empty body means "replay everything"; any body must be declared JSON.
                if !call.body.is_empty() {
                    json_body(call.headers)?;
                }
                deadletters::replay(delivery, &call.body).await
            }
            Method::OPTIONS => Ok(options(ALLOW_REPLAY)),
            _ => Err(ApiError::MethodNotAllowed(ALLOW_REPLAY)),
        },
        _ => Err(ApiError::NotFound(format!("no resource at `{path}`"))),
    }
}

fn read_only(
    method: &Method,
    respond: impl FnOnce() -> HttpResponse,
) -> Result<HttpResponse, ApiError> {
    match *method {
        Method::GET | Method::HEAD => Ok(respond()),
        _ => Err(ApiError::MethodNotAllowed(ALLOW_READ)),
    }
}

/// `200 OK` with the `Allow` header, as the spec's `OPTIONS` operations answer.
fn options(allow: &'static str) -> HttpResponse {
    let mut r = empty(StatusCode::OK);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Refuses writes whose body is not declared as JSON (`Content-Type: application/json` or a
/// `+json` type), including writes with no `Content-Type`.
fn json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    // Required, not just checked when present: a browser can send a body without a JSON
    // content type cross-origin with no CORS preflight, so only JSON proves a real client.
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType("(none)".into()));
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(essence.to_owned()))
    }
}
