//! Spindle's dead-letter administration (`/deadletters`), for `spindle dlq`: list, replay
//! and purge events that could not be delivered. Not part of the Subscriptions API.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use delivery::{DeadLetter, DeadLetterSelector, Delivery, SubscriptionId};
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::problem::{HttpResponse, json_response};
use crate::query::Query;

/// Letters listed when the request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The most letters one listing returns.
pub const MAX_LIMIT: usize = 10_000;

/// The JSON of one dead letter: where it was going, why it was given up, and the event.
pub fn to_json(letter: &DeadLetter) -> Value {
    let event: Value =
        serde_json::from_slice(&cloudevent::json::encode(&letter.event)).unwrap_or(Value::Null);
    json!({
        "subscription": letter.subscription.as_str(),
        "seq": letter.seq,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "status": letter.status,
        "deadAt": DateTime::<Utc>::from(letter.dead_at).to_rfc3339_opts(SecondsFormat::Millis, true),
        "event": event,
    })
}

/// `GET /deadletters[?subscription=ID][&limit=N]`.
pub async fn list(delivery: &Arc<Delivery>, query: &Query) -> Result<HttpResponse, ApiError> {
    let subscription = query.get("subscription").map(SubscriptionId::new);
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "?limit",
                    format!("must be an integer from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let engine = delivery.clone();
    let letters =
        tokio::task::spawn_blocking(move || engine.dead_letters(subscription.as_ref(), limit))
            .await
            .map_err(|_| ApiError::Delivery(delivery::Error::Aborted))??;
    let body = Value::Array(letters.iter().map(to_json).collect());
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /deadletters/replay` with `{"subscription"?: ID, "seq"?: N}` (an empty body
/// replays everything): `{"replayed": count}`.
pub async fn replay(delivery: &Arc<Delivery>, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let (subscription, seq) = if body.iter().all(u8::is_ascii_whitespace) {
        (None, None)
    } else {
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid("/", format!("the body is not valid JSON: {e}")))?;
        let Value::Object(o) = json else {
            return Err(ApiError::invalid("/", "the body must be a JSON object"));
        };
        let subscription = match o.get("subscription") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::invalid("/subscription", "must be a string")),
        };
        let seq = match o.get("seq") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| ApiError::invalid("/seq", "must be a non-negative integer"))?,
            ),
        };
        (subscription, seq)
    };
    let selector = selector(subscription, seq, "/seq")?;
    let replayed = delivery.replay_dead_letters(selector).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "replayed": replayed }),
    ))
}

/// `DELETE /deadletters[?subscription=ID[&seq=N]]`: `{"purged": count}`.
pub async fn purge(delivery: &Arc<Delivery>, query: &Query) -> Result<HttpResponse, ApiError> {
    let seq = match query.get("seq") {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::invalid("?seq", "must be a non-negative integer"))?,
        ),
    };
    let selector = selector(query.get("subscription").map(str::to_owned), seq, "?seq")?;
    let purged = delivery.purge_dead_letters(selector).await?;
    Ok(json_response(StatusCode::OK, &json!({ "purged": purged })))
}

fn selector(
    subscription: Option<String>,
    seq: Option<u64>,
    seq_field: &str,
) -> Result<DeadLetterSelector, ApiError> {
    Ok(match (subscription, seq) {
        (None, None) => DeadLetterSelector::All,
        (Some(s), None) => DeadLetterSelector::Subscription(SubscriptionId::new(s)),
        (Some(s), Some(n)) => DeadLetterSelector::One(SubscriptionId::new(s), n),
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                seq_field,
                "a sequence number needs its subscription",
            ));
        }
    })
}
