//! The subscription model of the CloudEvents Subscriptions API (the OpenAPI `Subscription`
//! schema), plus Spindle's own delivery policy.
//!
//! Field names follow the OpenAPI JSON exactly (all lower case, `protocolsettings`,
//! `sinkcredential`), so the API layer can (de)serialize request bodies straight into these
//! types. Filters are kept as raw JSON: compiling and matching them is the CESQL crate's job.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The identifier of a subscription, unique within this Spindle instance. A newtype so that
/// it cannot be confused with event ids in signatures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(String);

impl SubscriptionId {
    /// Wraps an id chosen by the caller (e.g. from a `PUT /subscriptions/{id}`).
    pub fn new(id: impl Into<String>) -> Self {
        SubscriptionId(id.into())
    }

    /// A fresh random (UUID v4) id, for `POST /subscriptions`.
    pub fn generate() -> Self {
        SubscriptionId(uuid::Uuid::new_v4().to_string())
    }

    /// The id of the queue behind a component's output binding declared in `spindle.toml`
    /// (`output:<component>:<output>`). Output bindings are delivered by the same engine as
    /// subscriptions (retries, dead letters, replay) but are managed by the manifest: they
    /// receive only what their component publishes, never matched events, and the
    /// Subscriptions API does not show them.
    pub fn output(component: &str, output: &str) -> Self {
        SubscriptionId(format!("{OUTPUT_PREFIX}{component}:{output}"))
    }

    /// Whether this is the queue of a manifest output binding (see [`SubscriptionId::output`]).
    pub fn is_output(&self) -> bool {
        self.0.starts_with(OUTPUT_PREFIX)
    }

    /// The id of a broker trigger's dead-letter queue (`trigger:<component>:<n>`, the `n`th
    /// broker trigger of the manifest): messages its component kept failing, or refused for
    /// good, are dead-lettered there (and acknowledged on the broker); replaying them hands
    /// them to the component again.
    pub fn trigger(component: &str, index: usize) -> Self {
        SubscriptionId(format!("{TRIGGER_PREFIX}{component}:{index}"))
    }

    /// The queue of the `index`th HTTP route (`[[trigger.http]]`), which keeps its dedup
    /// window. `/` cannot be in a component id, so it never meets a broker trigger's.
    pub fn route(index: usize) -> Self {
        SubscriptionId(format!("{TRIGGER_PREFIX}route/{index}"))
    }

    /// Whether this is a broker trigger's dead-letter queue (see [`SubscriptionId::trigger`])
    /// or an HTTP route's queue ([`SubscriptionId::route`]).
    pub fn is_trigger(&self) -> bool {
        self.0.starts_with(TRIGGER_PREFIX)
    }

    /// Whether Spindle manages this queue itself (an output binding or a trigger's dead
    /// letters): it is never matched against events, and the Subscriptions API does not
    /// show it.
    pub fn is_internal(&self) -> bool {
        self.is_output() || self.is_trigger()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `config` entry Spindle sets on a subscription it disabled because the sink said it is
/// gone (webhook `410 Gone`); the value says what the sink answered and when. A disabled
/// subscription sends nothing: what is routed to it is dead-lettered at once. Storing the
/// subscription again (`PUT /subscriptions/{id}`, with or without this entry) removes it and
/// enables delivery again.
pub const CONFIG_DISABLED: &str = "spindle.disabled";

/// Prefix of the ids of output-binding queues; reserved, since API ids are UUIDs or
/// existing ids.
const OUTPUT_PREFIX: &str = "output:";
/// Prefix of the ids of broker triggers' dead-letter queues; reserved like [`OUTPUT_PREFIX`].
const TRIGGER_PREFIX: &str = "trigger:";

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SubscriptionId {
    fn from(s: &str) -> Self {
        SubscriptionId(s.to_owned())
    }
}

impl From<String> for SubscriptionId {
    fn from(s: String) -> Self {
        SubscriptionId(s)
    }
}

impl AsRef<str> for SubscriptionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The delivery protocol of a subscription (OpenAPI `Protocol`). Only the sink registry
/// decides which ones can actually be delivered to; the model accepts them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// HTTP webhooks.
    #[serde(rename = "HTTP")]
    Http,
    /// MQTT 3.1.1.
    #[serde(rename = "MQTT3")]
    Mqtt3,
    /// MQTT 5 (`MQTT` is accepted as an alias).
    #[serde(rename = "MQTT5", alias = "MQTT")]
    Mqtt5,
    /// AMQP 1.0.
    #[serde(rename = "AMQP")]
    Amqp,
    /// NATS.
    #[serde(rename = "NATS")]
    Nats,
    /// Apache Kafka.
    #[serde(rename = "KAFKA")]
    Kafka,
}

impl Protocol {
    /// The protocol as the Subscriptions API spells it (`MQTT5`), which is how the
    /// transports' registry knows it.
    pub fn api_name(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Mqtt3 => "MQTT3",
            Protocol::Mqtt5 => "MQTT5",
            Protocol::Amqp => "AMQP",
            Protocol::Nats => "NATS",
            Protocol::Kafka => "KAFKA",
        }
    }

    /// The sink URI schemes this protocol is delivered with: `http`/`https` for HTTP, the
    /// transport's schemes (from the transports' registry) for the others.
    pub fn sink_schemes(self) -> Vec<&'static str> {
        transports::registry::schemes_of_protocol(self.api_name())
    }

    /// The protocol of an API name, as [`Protocol::api_name`] spells it (and `MQTT`, the
    /// API's alias of `MQTT5`).
    pub fn from_api_name(name: &str) -> Option<Protocol> {
        Some(match name {
            "HTTP" => Protocol::Http,
            "MQTT3" => Protocol::Mqtt3,
            "MQTT5" | "MQTT" => Protocol::Mqtt5,
            "AMQP" => Protocol::Amqp,
            "NATS" => Protocol::Nats,
            "KAFKA" => Protocol::Kafka,
            _ => return None,
        })
    }
}

/// How events are laid out in a sink's messages: the codec's own type.
pub use cloudevent::ContentMode;

/// The longest backoff, maximum `Retry-After` or initial backoff a policy may set: 30 days.
/// Every instant computed from a policy stays far from overflow.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest `maxAgeMs`: one year.
pub const MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);
/// Longest dead-letter retention a policy may set: ten years.
pub const MAX_RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The slowest `rateLimit`: one delivery every 1000 s.
pub const MIN_RATE_LIMIT: f64 = 0.001;
/// The fastest `rateLimit` that still means something.
pub const MAX_RATE_LIMIT: f64 = 1_000_000.0;

/// The default of [`DeliveryPolicy::sequence_gap`].
pub const DEFAULT_SEQUENCE_GAP: Duration = Duration::from_secs(5);

/// The default of [`DeliveryPolicy::dedup_max_entries`].
pub const DEFAULT_DEDUP_MAX_ENTRIES: u32 = 100_000;
/// The largest [`DeliveryPolicy::dedup_max_entries`].
pub const MAX_DEDUP_ENTRIES: u32 = 10_000_000;

/// How hard Spindle tries to deliver to one subscription. Not part of the Subscriptions API:
/// carried in the extra `delivery` member of the subscription JSON, all fields optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// First retry delay (and the floor of every jittered delay).
    #[serde(rename = "initialBackoffMs", with = "millis")]
    pub initial_backoff: Duration,
    /// Ceiling of the exponential backoff.
    #[serde(rename = "maxBackoffMs", with = "millis")]
    pub max_backoff: Duration,
    /// Give up (dead-letter) after this many attempts; `None` = no attempt limit.
    #[serde(rename = "maxAttempts")]
    pub max_attempts: Option<u32>,
    /// Give up (dead-letter) once an event has been pending this long; `None` = no age limit.
    #[serde(rename = "maxAgeMs", with = "opt_millis")]
    pub max_age: Option<Duration>,
    /// The longest `Retry-After` a sink may ask for; asking for more dead-letters the event
    /// at once (`retry-after exceeds ...`) rather than parking it for years.
    #[serde(rename = "maxRetryAfterMs", with = "millis")]
    pub max_retry_after: Duration,
    /// Concurrent requests to the sink, so a slow sink is never flooded.
    #[serde(rename = "maxInFlight")]
    pub max_in_flight: u32,
    /// Deliveries per second (token bucket, burst of one second); `None` = unlimited.
    #[serde(rename = "rateLimit")]
    pub rate_limit: Option<f64>,
    /// Deliver events sharing a `partitionkey` extension strictly in order (one at a time per
    /// key, keys in parallel). Events without the extension are unordered.
    #[serde(rename = "orderedByPartitionKey")]
    pub ordered_by_partitionkey: bool,
    /// Deliver the events of one ordering key strictly in the order they were accepted, one at
    /// a time (keys in parallel): the key is the `partitionkey` extension, else the `source`,
    /// so every event is ordered. A failing event holds back the later ones of its key until
    /// it is delivered or dead-lettered; the order holds across sink outages and restarts.
    pub ordered: bool,
    /// With ordering on, events that carry the `sequence` extension go in sequence order
    /// within their key (integers numerically, other values as strings). When the next
    /// integer is missing (`7` is queued, `6` never came), `7` waits this long after it was
    /// accepted for `6`, then goes anyway and the gap is logged. Default
    /// [`DEFAULT_SEQUENCE_GAP`].
    #[serde(rename = "sequenceGapMs", with = "millis")]
    pub sequence_gap: Duration,
    /// Idempotency: an event whose (`source`, `id`) this subscription accepted less than this
    /// long ago is acknowledged and not delivered again. Remembered on disk, so the window
    /// holds across restarts. `None` = no deduplication.
    #[serde(rename = "dedupWindowMs", with = "opt_millis")]
    pub dedup_window: Option<Duration>,
    /// The most (`source`, `id`) pairs remembered for [`DeliveryPolicy::dedup_window`]; past
    /// it the oldest are forgotten first.
    #[serde(rename = "dedupMaxEntries")]
    pub dedup_max_entries: u32,
    /// Quota: the most queued (pending) deliveries; past it new events for this subscription
    /// are refused (`503`, nak) until the queue drains. `None` = only the app's bound. See
    /// [`crate::quota`].
    #[serde(rename = "maxQueuedEvents")]
    pub max_queued_events: Option<u64>,
    /// Quota: the most bytes of queued deliveries (the stored events), as
    /// [`max_queued_events`](Self::max_queued_events).
    #[serde(rename = "maxQueuedBytes")]
    pub max_queued_bytes: Option<u64>,
    /// Quota: the most dead letters kept; once reached, new events for this subscription are
    /// refused until letters are replayed, purged or expire.
    #[serde(rename = "maxDeadLetters")]
    pub max_dead_letters: Option<u64>,
    /// Dead letters older than this are deleted (checked every 30 s). `None` = kept until
    /// replayed or purged.
    #[serde(rename = "deadLetterRetentionMs", with = "opt_millis")]
    pub dead_letter_retention: Option<Duration>,
    /// HTTP content mode for the sink.
    pub mode: ContentMode,
    /// The event format of structured mode: `json` (the default), `protobuf` or `avro`.
    #[serde(skip_serializing_if = "is_json")]
    pub format: cloudevent::Format,
}

fn is_json(format: &cloudevent::Format) -> bool {
    *format == cloudevent::Format::Json
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(60),
            max_attempts: Some(20),
            max_age: Some(Duration::from_secs(24 * 3600)),
            max_retry_after: Duration::from_secs(3600),
            max_in_flight: 16,
            rate_limit: None,
            ordered_by_partitionkey: false,
            ordered: false,
            sequence_gap: DEFAULT_SEQUENCE_GAP,
            dedup_window: None,
            dedup_max_entries: DEFAULT_DEDUP_MAX_ENTRIES,
            max_queued_events: None,
            max_queued_bytes: None,
            max_dead_letters: None,
            dead_letter_retention: None,
            mode: ContentMode::Binary,
            format: cloudevent::Format::Json,
        }
    }
}

impl DeliveryPolicy {
    /// This subscription's own quotas, if it sets any.
    pub(crate) fn limits(&self) -> Option<manifest::StoreLimits> {
        let any = self.max_queued_events.is_some()
            || self.max_queued_bytes.is_some()
            || self.max_dead_letters.is_some();
        any.then_some(manifest::StoreLimits {
            max_queued_events: self.max_queued_events,
            max_queued_bytes: self.max_queued_bytes,
            max_dead_letters: self.max_dead_letters,
        })
    }

    /// Whether deliveries are ordered per key ([`DeliveryPolicy::ordered`] or
    /// [`DeliveryPolicy::ordered_by_partitionkey`]).
    pub fn is_ordered(&self) -> bool {
        self.ordered || self.ordered_by_partitionkey
    }

    /// Whether this is the default policy (then it is left out of the JSON).
    pub fn is_default(&self) -> bool {
        *self == DeliveryPolicy::default()
    }

    /// Checks the values make sense, so a bad policy is refused when the subscription is
    /// created instead of misbehaving at delivery time.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != cloudevent::Format::Json && self.mode == ContentMode::Binary {
            return Err(format!(
                "delivery.format `{}` is an event format for structured mode; set delivery.mode to `structured`",
                self.format
            ));
        }
        let within = |name: &str, d: Duration, max: Duration| {
            if d.is_zero() || d > max {
                Err(format!(
                    "delivery.{name} must be between 1 and {} ms",
                    max.as_millis()
                ))
            } else {
                Ok(())
            }
        };
        within("initialBackoffMs", self.initial_backoff, MAX_BACKOFF)?;
        within("maxBackoffMs", self.max_backoff, MAX_BACKOFF)?;
        within("maxRetryAfterMs", self.max_retry_after, MAX_BACKOFF)?;
        if let Some(age) = self.max_age {
            within("maxAgeMs", age, MAX_AGE)?;
        }
        if let Some(window) = self.dedup_window {
            within("dedupWindowMs", window, MAX_AGE)?;
        }
        within(
            "sequenceGapMs",
            self.sequence_gap,
            Duration::from_secs(3600),
        )?;
        if let Some(retention) = self.dead_letter_retention {
            within("deadLetterRetentionMs", retention, MAX_RETENTION)?;
        }
        for (name, bound) in [
            ("maxQueuedEvents", self.max_queued_events),
            ("maxQueuedBytes", self.max_queued_bytes),
            ("maxDeadLetters", self.max_dead_letters),
        ] {
            if bound == Some(0) {
                return Err(format!("delivery.{name} must be at least 1"));
            }
        }
        if !(1..=MAX_DEDUP_ENTRIES).contains(&self.dedup_max_entries) {
            return Err(format!(
                "delivery.dedupMaxEntries must be between 1 and {MAX_DEDUP_ENTRIES}"
            ));
        }
        if self.max_backoff < self.initial_backoff {
            return Err("delivery.maxBackoffMs must be at least initialBackoffMs".into());
        }
        if self.max_in_flight == 0 {
            return Err("delivery.maxInFlight must be at least 1".into());
        }
        if self.max_attempts == Some(0) {
            return Err("delivery.maxAttempts must be at least 1".into());
        }
        if let Some(rate) = self.rate_limit
            && !(rate.is_finite() && (MIN_RATE_LIMIT..=MAX_RATE_LIMIT).contains(&rate))
        {
            return Err(format!(
                "delivery.rateLimit must be between {MIN_RATE_LIMIT} and {MAX_RATE_LIMIT} deliveries per second"
            ));
        }
        Ok(())
    }
}

/// The body of `POST /subscriptions` (OpenAPI `SubscriptionRequest`): a subscription without
/// its id, which the manager assigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRequest {
    /// Source to which the subscription applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Event types eligible for delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    /// Implementation-specific configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Filter expressions (all must match), opaque here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Value>>,
    /// Where events are delivered.
    pub sink: String,
    /// Credentials for the sink (`credentialtype` PLAIN / ACCESSTOKEN / REFRESHTOKEN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinkcredential: Option<Value>,
    /// The delivery protocol.
    pub protocol: Protocol,
    /// Protocol-specific settings (e.g. HTTP `headers` and `method`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocolsettings: Option<Value>,
    /// Spindle's delivery policy.
    #[serde(default, skip_serializing_if = "DeliveryPolicy::is_default")]
    pub delivery: DeliveryPolicy,
}

impl SubscriptionRequest {
    /// Turns the request into a subscription with the given id.
    pub fn into_subscription(self, id: SubscriptionId) -> Subscription {
        Subscription {
            id,
            source: self.source,
            types: self.types,
            config: self.config,
            filters: self.filters,
            sink: self.sink,
            sinkcredential: self.sinkcredential,
            protocol: self.protocol,
            protocolsettings: self.protocolsettings,
            delivery: self.delivery,
        }
    }
}

/// A subscription (OpenAPI `Subscription`): which events go where, and how hard to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Unique identifier.
    pub id: SubscriptionId,
    /// Source to which the subscription applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Event types eligible for delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    /// Implementation-specific configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Filter expressions (all must match), opaque here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Value>>,
    /// Where events are delivered.
    pub sink: String,
    /// Credentials for the sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinkcredential: Option<Value>,
    /// The delivery protocol.
    pub protocol: Protocol,
    /// Protocol-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocolsettings: Option<Value>,
    /// Spindle's delivery policy.
    #[serde(default, skip_serializing_if = "DeliveryPolicy::is_default")]
    pub delivery: DeliveryPolicy,
}

impl Subscription {
    /// A subscription with just an id, a sink and a protocol, and default everything else:
    /// handy for tests and for `spindle.toml`-declared subscriptions.
    pub fn new(id: impl Into<SubscriptionId>, protocol: Protocol, sink: impl Into<String>) -> Self {
        Subscription {
            id: id.into(),
            source: None,
            types: None,
            config: None,
            filters: None,
            sink: sink.into(),
            sinkcredential: None,
            protocol,
            protocolsettings: None,
            delivery: DeliveryPolicy::default(),
        }
    }

    /// Why the subscription is disabled (its [`CONFIG_DISABLED`] entry), if it is.
    pub fn disabled(&self) -> Option<&str> {
        self.config
            .as_ref()?
            .get(CONFIG_DISABLED)
            .map(String::as_str)
    }

    /// Enables the subscription again: removes the [`CONFIG_DISABLED`] entry (and `config`
    /// with it if nothing else is left). Returns whether it was disabled.
    pub fn enable(&mut self) -> bool {
        let Some(config) = &mut self.config else {
            return false;
        };
        let was = config.remove(CONFIG_DISABLED).is_some();
        if was && config.is_empty() {
            self.config = None;
        }
        was
    }

    /// The URI scheme of the sink, lower-cased: the key of the sink registry.
    pub fn sink_scheme(&self) -> Option<String> {
        let (scheme, _) = self.sink.split_once(':')?;
        let ok = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        ok.then(|| scheme.to_ascii_lowercase())
    }

    /// The delivery policy in force: the `delivery` member, overridden by `config` entries
    /// named `delivery.<member>` (e.g. `"delivery.maxAttempts": "5"`), since `config` is the
    /// Subscriptions API's own place for implementation-specific settings.
    pub fn delivery_policy(&self) -> Result<DeliveryPolicy, String> {
        let mut policy = self.delivery.clone();
        let Some(config) = &self.config else {
            return Ok(policy);
        };
        let overrides: serde_json::Map<String, Value> = config
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("delivery.")?.to_owned(), v)))
            .map(|(k, v)| {
                // Config values are strings: numbers and booleans are read as such.
                let value = match v.as_str() {
                    "null" => Value::Null,
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    text => serde_json::from_str::<serde_json::Number>(text)
                        .map(Value::Number)
                        .unwrap_or_else(|_| Value::String(text.to_owned())),
                };
                (k, value)
            })
            .collect();
        if !overrides.is_empty() {
            let mut merged = serde_json::to_value(&policy).map_err(|e| e.to_string())?;
            if let Value::Object(map) = &mut merged {
                map.extend(overrides);
            }
            policy = serde_json::from_value(merged).map_err(|e| format!("config: {e}"))?;
        }
        Ok(policy)
    }

    /// Checks what this crate relies on: a non-empty id, a sink URI with a scheme, `filters`
    /// entries being objects, and a sane delivery policy.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.as_str().is_empty() {
            return Err("id must not be empty".into());
        }
        if self.sink_scheme().is_none() {
            return Err(format!("sink `{}` is not an absolute URI", self.sink));
        }
        if let Some(filters) = &self.filters
            && let Some(bad) = filters.iter().position(|f| !f.is_object())
        {
            return Err(format!("filters[{bad}] must be an object"));
        }
        self.delivery_policy()?.validate()
    }
}

/// Durations as integer milliseconds in JSON.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Optional durations as integer milliseconds (or `null`) in JSON.
mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_json_round_trips() {
        let json = serde_json::json!({
            "id": "sub-1",
            "source": "/shop",
            "types": ["com.example.order.created"],
            "config": {"a": "b"},
            "filters": [{"prefix": {"type": "com.example."}}, {"sql": "subject = 'x'"}],
            "sink": "http://127.0.0.1:8080/hook",
            "protocol": "HTTP",
            "protocolsettings": {"headers": {"x-k": "v"}, "method": "POST"}
        });
        let sub: Subscription = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(sub.protocol, Protocol::Http);
        assert_eq!(sub.delivery, DeliveryPolicy::default());
        assert_eq!(serde_json::to_value(&sub).unwrap(), json);
        sub.validate().unwrap();
    }

    #[test]
    fn delivery_policy_is_partial_and_in_millis() {
        let json = serde_json::json!({
            "sink": "http://x/", "protocol": "MQTT",
            "delivery": {"maxAttempts": 3, "maxAgeMs": null, "mode": "structured"}
        });
        let req: SubscriptionRequest = serde_json::from_value(json).unwrap();
        assert_eq!(req.protocol, Protocol::Mqtt5);
        assert_eq!(req.delivery.max_attempts, Some(3));
        assert_eq!(req.delivery.max_age, None);
        assert_eq!(req.delivery.mode, ContentMode::Structured);
        assert_eq!(req.delivery.initial_backoff, Duration::from_millis(200));
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back["delivery"]["initialBackoffMs"], 200);
    }

    #[test]
    fn config_entries_override_the_policy() {
        let mut sub = Subscription::new("s", Protocol::Http, "http://h/");
        sub.config = Some(
            [
                ("delivery.maxAttempts", "5"),
                ("delivery.maxAgeMs", "null"),
                ("delivery.orderedByPartitionKey", "true"),
                ("delivery.mode", "structured"),
                ("delivery.rateLimit", "2.5"),
                ("other", "kept out"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        let policy = sub.delivery_policy().unwrap();
        assert_eq!(policy.max_attempts, Some(5));
        assert_eq!(policy.max_age, None);
        assert!(policy.ordered_by_partitionkey);
        assert_eq!(policy.mode, ContentMode::Structured);
        assert_eq!(policy.rate_limit, Some(2.5));
        assert_eq!(policy.max_in_flight, 16);
        sub.config
            .as_mut()
            .unwrap()
            .insert("delivery.maxInFlight".into(), "lots".into());
        assert!(sub.validate().is_err());
        sub.config
            .as_mut()
            .unwrap()
            .insert("delivery.maxInFlight".into(), "0".into());
        assert!(sub.validate().is_err());
    }

    #[test]
    fn validation_catches_bad_sinks_and_policies() {
        let mut sub = Subscription::new("s", Protocol::Http, "not a uri");
        assert!(sub.validate().is_err());
        sub.sink = "HTTP://h/".into();
        assert_eq!(sub.sink_scheme().as_deref(), Some("http"));
        sub.delivery.max_in_flight = 0;
        assert!(sub.validate().is_err());
    }
}
