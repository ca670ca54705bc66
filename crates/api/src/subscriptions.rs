//! The CloudEvents Subscriptions API proper: `/subscriptions` and `/subscriptions/{id}`.

use std::sync::Arc;

use delivery::{Delivery, Subscription, SubscriptionId};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::error::ApiError;
use crate::problem::{HttpResponse, json_response};
use crate::query::Query;
use crate::validate::{protocol_name, redact, restore_secrets, subscription_request};

/// The JSON of a subscription as the API shows it (secrets redacted).
pub fn to_json(sub: &Subscription) -> Value {
    let mut json = serde_json::to_value(sub).unwrap_or(Value::Null);
    redact(&mut json);
    json
}

/// `GET /subscriptions[?protocol=P][&source=S][&type=T]`: every subscription, by id, or
/// those with that protocol, that `source`, and `type` among their `types` (the spec lets
/// bindings add such filter constraints to the Query operation).
pub fn list(delivery: &Delivery, query: &Query) -> HttpResponse {
    let protocol = query.get("protocol");
    let source = query.get("source");
    let ty = query.get("type");
    let subs: Vec<Value> = delivery
        .subscriptions()
        .iter()
        .filter(|s| !s.id.is_internal())
        .filter(|s| protocol.is_none_or(|p| protocol_name(s.protocol) == p))
        .filter(|s| source.is_none_or(|src| s.source.as_deref() == Some(src)))
        .filter(|s| ty.is_none_or(|t| s.types.as_ref().is_some_and(|ts| ts.iter().any(|x| x == t))))
        .map(|s| to_json(s))
        .collect();
    json_response(StatusCode::OK, &Value::Array(subs))
}

/// `POST /subscriptions`: creates one with a fresh id; 201 with its `Location`.
pub async fn create(
    delivery: &Arc<Delivery>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let (request, _) = subscription_request(body)?;
    let sub = delivery.create_subscription(request).await?;
    let mut response = json_response(StatusCode::CREATED, &to_json(&sub));
    let path = format!(
        "/subscriptions/{}",
        http_server::uri::encode_component(sub.id.as_str())
    );
    let location = match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("http://{host}{path}"),
        None => path,
    };
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /subscriptions/{id}`.
pub fn get(delivery: &Delivery, id: &str) -> Result<HttpResponse, ApiError> {
    let sub = existing(delivery, id)?;
    Ok(json_response(StatusCode::OK, &to_json(&sub)))
}

/// `PUT /subscriptions/{id}`: replaces an existing subscription (404 if there is none, as
/// the spec has `PUT` update only). The body's `id`, if any, must be the path's.
pub async fn update(
    delivery: &Arc<Delivery>,
    id: &str,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let old = existing(delivery, id)?;
    let (mut request, object) = subscription_request(body)?;
    match object.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(given)) if given == id => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "/id",
                format!("{other} differs from the id in the path (`{id}`)"),
            ));
        }
    }
    restore_secrets(&mut request.sinkcredential, old.sinkcredential.as_ref());
    let sub = request.into_subscription(SubscriptionId::new(id));
    delivery.put_subscription(sub).await?;
    let stored = existing(delivery, id)?;
    Ok(json_response(StatusCode::OK, &to_json(&stored)))
}

/// `DELETE /subscriptions/{id}`: 200 with the deleted subscription (the spec's Delete
/// returns it), or 404.
pub async fn delete(delivery: &Arc<Delivery>, id: &str) -> Result<HttpResponse, ApiError> {
    let sub = existing(delivery, id)?;
    if delivery
        .delete_subscription(&SubscriptionId::new(id))
        .await?
    {
        Ok(json_response(StatusCode::OK, &to_json(&sub)))
    } else {
        Err(not_found(id))
    }
}

/// A subscription the API may show and change: output bindings are `spindle.toml`'s, so
/// they are not found here (their dead letters are still under `/deadletters`).
fn existing(delivery: &Delivery, id: &str) -> Result<Arc<Subscription>, ApiError> {
    let id = SubscriptionId::new(id);
    delivery
        .subscription(&id)
        .filter(|_| !id.is_internal())
        .ok_or_else(|| not_found(id.as_str()))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no subscription `{id}`"))
}
