//! `GET /events/tail`: the live tap ([`delivery::tap`]) as Server-Sent Events, for
//! `spindle events tail`. Each record is one `data:` line of JSON (what happened, where, the
//! outcome and latency, the event's context attributes); `?filter=` (CESQL) keeps the events
//! it matches, `?subscription=` the attempts of one subscription, `?component=` the handling
//! of one component. A watcher that falls behind gets an `event: dropped` line saying how
//! many records it lost; the app is never slowed for it. A comment every
//! [`KEEP_ALIVE`] tells a vanished client apart from a quiet app.

use std::time::Duration;

use bytes::Bytes;
use delivery::tap::{Record, Stage};
use http::StatusCode;
use http_server::{HttpResponse, Streaming};
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::query::Query;

/// How often a quiet stream sends a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Chunks buffered towards one client before its watcher starts to fall behind.
const BUFFERED: usize = 64;

/// What one watcher keeps.
struct Selection {
    filter: Option<cesql::Expression>,
    subscription: Option<String>,
    component: Option<String>,
}

impl Selection {
    fn from_query(query: &Query) -> Result<Self, ApiError> {
        let filter = match query.get("filter").filter(|f| !f.trim().is_empty()) {
            None => None,
            Some(sql) => Some(
                cesql::Expression::parse(sql).map_err(|e| ApiError::Invalid {
                    field: "?filter".into(),
                    detail: e.to_string(),
                    position: Some((e.line(), e.column())),
                })?,
            ),
        };
        Ok(Selection {
            filter,
            subscription: query.get("subscription").map(str::to_owned),
            component: query.get("component").map(str::to_owned),
        })
    }

    fn keeps(&self, record: &Record) -> bool {
        let stage = match &record.stage {
            Stage::Handled { component } => {
                self.component.as_deref().is_none_or(|c| c == component)
                    && self.subscription.is_none()
            }
            Stage::Delivery { subscription } => {
                self.subscription
                    .as_deref()
                    .is_none_or(|s| s == subscription.as_str())
                    && self.component.is_none()
            }
        };
        stage
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(record.event.as_ref()))
    }
}

/// The record as the stream's JSON.
fn json(record: &Record) -> serde_json::Value {
    let event = &record.event;
    let mut attributes = serde_json::Map::new();
    attributes.insert("id".into(), event.id().into());
    attributes.insert("source".into(), event.source().into());
    attributes.insert("type".into(), event.ty().into());
    if let Some(subject) = event.subject() {
        attributes.insert("subject".into(), subject.into());
    }
    let mut out = serde_json::json!({
        "at": chrono::DateTime::<chrono::Utc>::from(record.at)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "outcome": record.outcome,
        "latencyMs": (record.latency.as_secs_f64() * 1e6).round() / 1e3,
        "event": attributes,
    });
    match &record.stage {
        Stage::Handled { component } => {
            out["stage"] = "handled".into();
            out["component"] = component.as_str().into();
        }
        Stage::Delivery { subscription } => {
            out["stage"] = "delivery".into();
            out["subscription"] = subscription.as_str().into();
        }
    }
    if let Some(detail) = &record.detail {
        out["detail"] = detail.as_str().into();
    }
    out
}

/// Starts a stream for one client.
pub fn stream(query: &Query) -> Result<HttpResponse, ApiError> {
    let selection = Selection::from_query(query)?;
    let Some(mut watcher) = delivery::tap::global().watch() else {
        return Err(ApiError::Busy(format!(
            "{} tails are open already; close one",
            delivery::tap::MAX_WATCHERS
        )));
    };
    let (chunks, body) = mpsc::channel::<Bytes>(BUFFERED);
    tokio::spawn(async move {
        // Flushed at once, so the client knows the stream is open.
        if chunks
            .send(Bytes::from_static(b": tailing\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.reset();
        loop {
            let chunk = tokio::select! {
                received = watcher.records.recv() => match received {
                    Ok(record) if selection.keeps(&record) => {
                        Bytes::from(format!("data: {}\n\n", json(&record)))
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(lost)) => Bytes::from(format!(
                        "event: dropped\ndata: {{\"dropped\":{lost}}}\n\n"
                    )),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = keep_alive.tick() => Bytes::from_static(b": keep-alive\n\n"),
                _ = watcher.closing.changed() => break,
            };
            // Waits while the client reads slowly: meanwhile the tap keeps going and this
            // watcher falls behind, which the next `dropped` line reports.
            if chunks.send(chunk).await.is_err() {
                break;
            }
        }
    });
    Ok(Streaming::response(
        StatusCode::OK,
        "text/event-stream",
        body,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(stage: Stage, ty: &str) -> Record {
        Record {
            at: std::time::SystemTime::UNIX_EPOCH,
            stage,
            outcome: "ok",
            detail: None,
            latency: Duration::from_micros(1500),
            event: Arc::new(
                cloudevent::Event::builder()
                    .id("1")
                    .source("/s")
                    .ty(ty)
                    .build()
                    .unwrap(),
            ),
        }
    }

    #[test]
    fn a_selection_keeps_what_its_filter_and_names_say() {
        let handled = record(
            Stage::Handled {
                component: "orders".into(),
            },
            "com.example.a",
        );
        let delivered = record(
            Stage::Delivery {
                subscription: "audit".into(),
            },
            "com.example.b",
        );
        let keeps = |query: &str, r: &Record| {
            Selection::from_query(&Query::parse(Some(query)))
                .unwrap()
                .keeps(r)
        };
        assert!(keeps("", &handled) && keeps("", &delivered));
        assert!(keeps("filter=type%20%3D%20%27com.example.a%27", &handled));
        assert!(!keeps(
            "filter=type%20%3D%20%27com.example.a%27",
            &delivered
        ));
        assert!(keeps("subscription=audit", &delivered));
        assert!(!keeps("subscription=audit", &handled));
        assert!(keeps("component=orders", &handled));
        assert!(!keeps("component=billing", &handled));
    }

    #[test]
    fn a_bad_filter_is_refused_with_its_position() {
        match Selection::from_query(&Query::parse(Some("filter=type%20%3D"))) {
            Err(ApiError::Invalid { field, .. }) => assert_eq!(field, "?filter"),
            _ => panic!("accepted"),
        }
    }

    #[test]
    fn records_read_as_json() {
        let v = json(&record(
            Stage::Handled {
                component: "orders".into(),
            },
            "t",
        ));
        assert_eq!(v["stage"], "handled");
        assert_eq!(v["component"], "orders");
        assert_eq!(v["latencyMs"], 1.5);
        assert_eq!(v["event"]["type"], "t");
        assert_eq!(v["at"], "1970-01-01T00:00:00.000Z");
    }
}
