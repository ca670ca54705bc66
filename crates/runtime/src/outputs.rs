//! Output bindings (`[component.<id>.outputs]`): named sinks a component's events flow on
//! to. Each one is a queue of the delivery engine, like a subscription without filters, so
//! outputs get the same durability, retries with backoff, `Retry-After`, webhook handshake
//! and dead letters (`spindle dlq list` shows them under `output:<component>:<name>`).

use std::collections::BTreeMap;

use delivery::{Delivery, DeliveryPolicy, Protocol, Subscription, SubscriptionId};
use manifest::{Manifest, Output};

use crate::app::AppError;

/// The HTTP sink factory of the app: the egress policy, and each HTTPS output's own TLS
/// settings (`tls = { ca, cert, key }`), read from their files now so a missing or malformed
/// one stops `spindle up` with the output named.
pub fn http_sinks(
    manifest: &Manifest,
    egress: std::sync::Arc<http_server::EgressPolicy>,
) -> Result<delivery::sink::HttpSinkFactory, AppError> {
    let mut factory = delivery::sink::HttpSinkFactory::with_settings(
        delivery::sink::DEFAULT_HTTP_TIMEOUT,
        &[],
        egress,
    )
    .map_err(AppError::Config)?;
    for (component, c) in &manifest.components {
        for (name, output) in &c.outputs {
            let Some(tls) = &output.tls else { continue };
            let key = format!("[component.{}.outputs] {name}: tls", component.as_str());
            let (ca, identity) = tls
                .load()
                .map_err(|e| AppError::Config(format!("{key}: {e}")))?;
            factory = factory
                .with_sink_tls(
                    SubscriptionId::output(component.as_str(), name),
                    &ca,
                    identity.as_ref(),
                )
                .map_err(|e| AppError::Config(format!("{key}: {e}")))?;
        }
    }
    Ok(factory)
}

/// The broker sink factory of the app: the egress policy, and each TLS broker output's own
/// settings (`tls = { ca, cert, key }` beside `nats+tls://`, `mqtts://`, `amqps://` or
/// `kafka+tls://`). The files are read once now, so a missing or malformed one stops
/// `spindle up` with the output named; the sinks read them again at each connect.
pub fn broker_sinks(
    manifest: &Manifest,
    egress: std::sync::Arc<http_server::EgressPolicy>,
) -> Result<delivery::sink::BrokerSinkFactory, AppError> {
    let mut factory = delivery::sink::BrokerSinkFactory::new().with_egress(egress);
    for (component, c) in &manifest.components {
        for (name, output) in &c.outputs {
            let mut sink = output.sink.clone();
            let Some(tls) = sink.endpoint_mut().and_then(|e| e.tls.take()) else {
                continue;
            };
            if tls == manifest::ClientTls::default() {
                continue;
            }
            let key = format!("[component.{}.outputs] {name}: tls", component.as_str());
            tls.client_config(&[])
                .map_err(|e| AppError::Config(format!("{key}: {e}")))?;
            factory = factory.with_sink_tls(SubscriptionId::output(component.as_str(), name), tls);
        }
    }
    Ok(factory)
}

/// Makes the queue of every output binding in the manifest match it: each output is a
/// subscription-like queue (`output:<component>:<name>`) with the engine's retries and dead
/// letters. Queues of outputs no longer in the manifest are removed, with a warning when
/// they still held events.
pub async fn set_up(delivery: &Delivery, manifest: &Manifest) -> Result<(), AppError> {
    let mut wanted = BTreeMap::new();
    for (component, c) in &manifest.components {
        for (name, output) in &c.outputs {
            let sub = subscription(component.as_str(), name, output);
            wanted.insert(sub.id.clone(), sub);
        }
    }
    for existing in delivery.subscriptions() {
        if existing.id.is_output() && !wanted.contains_key(&existing.id) {
            let pending = delivery.pending(Some(&existing.id));
            if pending > 0 {
                tracing::warn!(output = %existing.id, pending, sink = %existing.sink,
                    "output removed from spindle.toml; dropping its undelivered events");
            }
            delivery.delete_subscription(&existing.id).await?;
        }
    }
    for (id, sub) in wanted {
        let unchanged = delivery.subscription(&id).is_some_and(|s| *s == sub);
        if !unchanged {
            let sink = sub.sink.clone();
            delivery
                .put_subscription(sub)
                .await
                .map_err(|e| AppError::Config(format!("output `{id}` to {sink}: {e}")))?;
        }
    }
    Ok(())
}

/// The delivery queue behind one output binding: a subscription with the reserved id
/// [`SubscriptionId::output`], no filters (it only gets what the component publishes), the
/// output's content mode, its HTTP headers as `protocolsettings`, and its handshake origin.
pub fn subscription(component: &str, name: &str, output: &Output) -> Subscription {
    let id = SubscriptionId::output(component, name);
    // Every sink's protocol is one the API names: the registry's transports speak them.
    let protocol = Protocol::from_api_name(output.sink.api_protocol()).unwrap_or(Protocol::Http);
    let mut sub = Subscription::new(id, protocol, output.sink.to_string());
    sub.delivery = DeliveryPolicy {
        mode: output.mode,
        format: output.format,
        ordered: output.ordered,
        sequence_gap: output
            .sequence_gap
            .unwrap_or(delivery::DEFAULT_SEQUENCE_GAP),
        max_queued_events: output.limits.max_queued_events,
        max_queued_bytes: output.limits.max_queued_bytes,
        max_dead_letters: output.limits.max_dead_letters,
        dead_letter_retention: output.limits.dead_letter_retention,
        ..DeliveryPolicy::default()
    };
    if !output.headers.is_empty() {
        sub.protocolsettings = Some(serde_json::json!({ "headers": output.headers }));
    }
    if let Some(origin) = &output.webhook_origin {
        sub.config = Some(BTreeMap::from([(
            delivery::sink::http::CONFIG_WEBHOOK_ORIGIN.to_owned(),
            origin.clone(),
        )]));
    }
    sub
}
