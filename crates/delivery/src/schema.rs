//! The store's own record schema, apart from the Subscriptions API's JSON: the API can rename
//! or add fields without turning every state directory into a migration, and the store can
//! change its layout without touching the API.
//!
//! Two versions guard it:
//! - the **store schema** ([`SCHEMA_VERSION`]), kept in the `meta` table: what the whole file
//!   holds. A store written by a newer Spindle is refused with [`Error::NewerSchema`]; one
//!   written by an older one is upgraded in place, in one transaction, when it is opened.
//! - a **record version**, the first byte of every value: subscriptions here
//!   ([`SUBSCRIPTION_RECORD`]), outbox and dead-letter entries in [`crate::store`].
//!
//! History:
//! 1. subscriptions stored as the API's JSON document (no version byte); outbox and
//!    dead-letter entries as record version 1. No `schema_version` key.
//! 2. subscriptions stored as [`SubscriptionRecord`] behind record version 1.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::model::{ContentMode, DeliveryPolicy, Protocol, Subscription, SubscriptionId};

/// The store schema this build writes and understands.
pub const SCHEMA_VERSION: u64 = 2;

/// The key of the store schema in the `meta` table.
pub(crate) const SCHEMA_KEY: &str = "schema_version";

/// The record version of a stored subscription: its first byte.
pub(crate) const SUBSCRIPTION_RECORD: u8 = 1;

/// A subscription as the store keeps it. Field names and encodings are the store's, chosen
/// for stability: durations in milliseconds, enums as fixed lower-case names.
#[derive(Debug, Serialize, Deserialize)]
struct SubscriptionRecord {
    id: String,
    source: Option<String>,
    types: Option<Vec<String>>,
    config: Option<BTreeMap<String, String>>,
    filters: Option<Vec<Value>>,
    sink: String,
    sink_credential: Option<Value>,
    protocol: String,
    protocol_settings: Option<Value>,
    policy: PolicyRecord,
}

#[derive(Debug, Serialize, Deserialize)]
struct PolicyRecord {
    initial_backoff_ms: u64,
    max_backoff_ms: u64,
    max_attempts: Option<u32>,
    max_age_ms: Option<u64>,
    #[serde(default)]
    max_retry_after_ms: Option<u64>,
    max_in_flight: u32,
    rate_limit: Option<f64>,
    /// Added within record version 1: absent in older records (unordered).
    #[serde(default)]
    ordered: bool,
    #[serde(default)]
    dedup_window_ms: Option<u64>,
    /// Added within record version 1: absent in older records (the default gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence_gap_ms: Option<u64>,
    #[serde(default)]
    dedup_max_entries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_queued_events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_queued_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_dead_letters: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead_letter_retention_ms: Option<u64>,
    ordered_by_partition_key: bool,
    mode: String,
    /// Added within record version 1: absent in older records (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "http",
        Protocol::Mqtt3 => "mqtt3",
        Protocol::Mqtt5 => "mqtt5",
        Protocol::Amqp => "amqp",
        Protocol::Nats => "nats",
        Protocol::Kafka => "kafka",
    }
}

fn protocol_of(name: &str) -> Option<Protocol> {
    Some(match name {
        "http" => Protocol::Http,
        "mqtt3" => Protocol::Mqtt3,
        "mqtt5" => Protocol::Mqtt5,
        "amqp" => Protocol::Amqp,
        "nats" => Protocol::Nats,
        "kafka" => Protocol::Kafka,
        _ => return None,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Encodes a subscription as the current record.
pub(crate) fn encode_subscription(sub: &Subscription) -> Vec<u8> {
    let p = &sub.delivery;
    let record = SubscriptionRecord {
        id: sub.id.as_str().to_owned(),
        source: sub.source.clone(),
        types: sub.types.clone(),
        config: sub.config.clone(),
        filters: sub.filters.clone(),
        sink: sub.sink.clone(),
        sink_credential: sub.sinkcredential.clone(),
        protocol: protocol_name(sub.protocol).to_owned(),
        protocol_settings: sub.protocolsettings.clone(),
        policy: PolicyRecord {
            initial_backoff_ms: millis(p.initial_backoff),
            max_backoff_ms: millis(p.max_backoff),
            max_attempts: p.max_attempts,
            max_age_ms: p.max_age.map(millis),
            max_retry_after_ms: Some(millis(p.max_retry_after)),
            max_in_flight: p.max_in_flight,
            rate_limit: p.rate_limit,
            ordered_by_partition_key: p.ordered_by_partitionkey,
            ordered: p.ordered,
            dedup_window_ms: p.dedup_window.map(millis),
            sequence_gap_ms: (p.sequence_gap != crate::model::DEFAULT_SEQUENCE_GAP)
                .then(|| millis(p.sequence_gap)),
            dedup_max_entries: Some(p.dedup_max_entries),
            max_queued_events: p.max_queued_events,
            max_queued_bytes: p.max_queued_bytes,
            max_dead_letters: p.max_dead_letters,
            dead_letter_retention_ms: p.dead_letter_retention.map(millis),
            mode: match p.mode {
                ContentMode::Binary => "binary",
                ContentMode::Structured => "structured",
            }
            .to_owned(),
            format: (p.format != cloudevent::Format::Json).then(|| p.format.name().to_owned()),
        },
    };
    let mut bytes = vec![SUBSCRIPTION_RECORD];
    // Serializing plain data with string keys cannot fail.
    serde_json::to_writer(&mut bytes, &record).expect("a subscription record serializes");
    bytes
}

/// Decodes a stored subscription: the current record, or (schema 1) the API's JSON document
/// the previous format stored. `key` names it in errors.
pub(crate) fn decode_subscription(key: &str, bytes: &[u8]) -> Result<Subscription, Error> {
    let corrupt = |why: String| Error::Corrupt(format!("subscription `{key}`: {why}"));
    match bytes.first() {
        Some(&SUBSCRIPTION_RECORD) => {
            let r: SubscriptionRecord =
                serde_json::from_slice(&bytes[1..]).map_err(|e| corrupt(e.to_string()))?;
            let protocol = protocol_of(&r.protocol)
                .ok_or_else(|| corrupt(format!("unknown protocol `{}`", r.protocol)))?;
            let mode = match r.policy.mode.as_str() {
                "binary" => ContentMode::Binary,
                "structured" => ContentMode::Structured,
                other => return Err(corrupt(format!("unknown content mode `{other}`"))),
            };
            let format = match r.policy.format.as_deref() {
                None => cloudevent::Format::Json,
                Some(name) => cloudevent::Format::from_suffix(name)
                    .ok_or_else(|| corrupt(format!("unknown event format `{name}`")))?,
            };
            let p = r.policy;
            Ok(Subscription {
                id: SubscriptionId::new(r.id),
                source: r.source,
                types: r.types,
                config: r.config,
                filters: r.filters,
                sink: r.sink,
                sinkcredential: r.sink_credential,
                protocol,
                protocolsettings: r.protocol_settings,
                delivery: DeliveryPolicy {
                    initial_backoff: Duration::from_millis(p.initial_backoff_ms),
                    max_backoff: Duration::from_millis(p.max_backoff_ms),
                    max_attempts: p.max_attempts,
                    max_age: p.max_age_ms.map(Duration::from_millis),
                    max_retry_after: p.max_retry_after_ms.map_or(
                        DeliveryPolicy::default().max_retry_after,
                        Duration::from_millis,
                    ),
                    max_in_flight: p.max_in_flight,
                    rate_limit: p.rate_limit,
                    ordered_by_partitionkey: p.ordered_by_partition_key,
                    ordered: p.ordered,
                    sequence_gap: p
                        .sequence_gap_ms
                        .map_or(crate::model::DEFAULT_SEQUENCE_GAP, Duration::from_millis),
                    dedup_window: p.dedup_window_ms.map(Duration::from_millis),
                    dedup_max_entries: p
                        .dedup_max_entries
                        .unwrap_or(crate::model::DEFAULT_DEDUP_MAX_ENTRIES),
                    max_queued_events: p.max_queued_events,
                    max_queued_bytes: p.max_queued_bytes,
                    max_dead_letters: p.max_dead_letters,
                    dead_letter_retention: p.dead_letter_retention_ms.map(Duration::from_millis),
                    mode,
                    format,
                },
            })
        }
        // Schema 1 stored the API document itself.
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string())),
        Some(&version) if version > SUBSCRIPTION_RECORD => Err(Error::NewerSchema {
            what: format!("subscription `{key}` has record version {version}"),
            supported: u64::from(SUBSCRIPTION_RECORD),
        }),
        _ => Err(corrupt("unknown record layout".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_round_trips_through_its_record() {
        let mut sub = Subscription::new("s1", Protocol::Mqtt5, "mqtt://127.0.0.1:1883/t");
        sub.types = Some(vec!["a".into()]);
        sub.protocolsettings = Some(serde_json::json!({"qos": 1}));
        sub.delivery.max_age = None;
        sub.delivery.rate_limit = Some(2.5);
        sub.delivery.mode = ContentMode::Structured;
        let bytes = encode_subscription(&sub);
        assert_eq!(bytes[0], SUBSCRIPTION_RECORD);
        assert_eq!(decode_subscription("s1", &bytes).unwrap(), sub);
        // The API's JSON, as schema 1 stored it, still reads.
        let legacy = serde_json::to_vec(&sub).unwrap();
        assert_eq!(decode_subscription("s1", &legacy).unwrap(), sub);
        assert!(matches!(
            decode_subscription("s1", &[9, b'{', b'}']),
            Err(Error::NewerSchema { .. })
        ));
    }
}
