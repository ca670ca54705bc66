//! Broker sinks: subscriptions that deliver to a NATS subject, an MQTT topic, an AMQP 1.0
//! address or a Kafka topic, through the publishers of `spindle-transports`.
//!
//! The sink URI says where (`nats://host:port/subject`, `mqtt://host:port/topic?qos=1`,
//! `amqp://host:port/queue/NAME`, `kafka://host:port/topic`; see [`transports::sink`]), the
//! subscription's `protocolsettings` (the Subscriptions API's `NATSSettings`, `MQTTSettings`,
//! `AMQPSettings`, `ApacheKafkaSettings`) may add what the URI cannot carry, and
//! `delivery.mode` picks binary (the default) or structured content mode.
//!
//! Everything is checked when the subscription is created, so a subscription that cannot be
//! honoured is refused with a reason instead of failing every delivery later: a setting this
//! sink cannot honour (an MQTT message expiry, an AMQP link name, a Kafka client id, ...) is
//! an error, never silently ignored. A destination may be given in the URI's path or in the
//! settings (`subject`, `topicname`, `address`); given in both, the two must agree.
//!
//! Connecting is lazy: creating the sink never touches the network (the engine creates a sink
//! to validate every subscription it stores, and a broker that is down must not block or
//! refuse that). The first send connects, later sends share the connection, and a send that
//! fails in a way worth retrying drops it, so the next attempt starts from a fresh one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudevent::Event;
use serde::Deserialize;
use tokio::sync::Mutex;
use transports::amqp::Credentials;
use transports::registry::{self, SettingsRequest};
use transports::{ConnectError, SendError, SendOptions, Sender};
use url::Url;

use super::{SendFuture, SendOutcome, Sink, SinkError, SinkFactory};
use crate::model::{Subscription, SubscriptionId};

/// The URI schemes [`BrokerSinkFactory`] builds sinks for, as registered by
/// [`super::SinkRegistry::with_defaults`]: every transport's.
pub fn schemes() -> impl Iterator<Item = &'static str> {
    registry::broker_schemes()
}

/// Longest wait for connecting to the broker (each transport also bounds its own steps);
/// past it the attempt is a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for one publish and its confirmation. The transports bound their waits
/// (30 s for MQTT, AMQP and Kafka), so this only catches a publisher that hangs regardless:
/// the worker itself waits for sends without a limit.
const SEND_TIMEOUT: Duration = Duration::from_secs(75);
/// Longest wait for a NATS flush, i.e. for a publish to be written to the server.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds [`BrokerSink`]s for `nats:`, `mqtt:`, `amqp:` and `kafka:` sinks. Stateless: each
/// sink owns its connection, so one slow or unreachable broker never holds up another
/// subscription's deliveries.
#[derive(Debug, Clone, Default)]
pub struct BrokerSinkFactory {
    egress: Arc<http_server::EgressPolicy>,
    /// The TLS settings of the operator's broker outputs (`tls = { ca, cert, key }`), which
    /// their stored sink URIs cannot carry.
    per_sink_tls: HashMap<SubscriptionId, transports::ClientTls>,
}

impl BrokerSinkFactory {
    /// The factory under the default egress policy; what a sink needs comes from its
    /// subscription.
    pub fn new() -> Self {
        BrokerSinkFactory::default()
    }

    /// The factory under `policy`: a broker host it refuses (by name, or a literal address)
    /// cannot be a sink.
    pub fn with_egress(self, policy: Arc<http_server::EgressPolicy>) -> Self {
        BrokerSinkFactory {
            egress: policy,
            ..self
        }
    }

    /// The sink of subscription `id`, when its URI is a TLS one (`nats+tls`, `mqtts`,
    /// `amqps`, `kafka+tls`), trusts `tls`'s CA beside the system's roots and presents its
    /// client certificate. For the operator's outputs; a sink without such settings uses the
    /// system's roots alone.
    pub fn with_sink_tls(mut self, id: SubscriptionId, tls: transports::ClientTls) -> Self {
        self.per_sink_tls.insert(id, tls);
        self
    }

    /// Works out, without connecting, where and how a subscription's events would be
    /// published: the parsed destination and the publisher options. This is all the
    /// validation [`SinkFactory::create`] does, exposed so callers can check a subscription
    /// (or show what it resolves to) without building a sink.
    pub fn resolve(subscription: &Subscription) -> Result<BrokerTarget, SinkError> {
        resolve(subscription)
    }
}

impl SinkFactory for BrokerSinkFactory {
    fn create(&self, subscription: &Subscription) -> Result<Arc<dyn Sink>, SinkError> {
        let mut target = resolve(subscription)?;
        if let Some(tls) = self.per_sink_tls.get(&subscription.id)
            && let Some(endpoint) = target.sink.endpoint_mut()
            && endpoint.is_tls()
        {
            endpoint.tls = Some(tls.clone());
        }
        let Some(endpoint) = target.sink.endpoint() else {
            return Err(invalid(subscription, "not a broker sink"));
        };
        if let Err(denied) = self.egress.check_host(&endpoint.host) {
            return Err(invalid(subscription, denied.to_string()));
        }
        Ok(Arc::new(BrokerSink::new(target)))
    }
}

/// Where and how a broker sink publishes: what [`BrokerSinkFactory::resolve`] makes of a
/// subscription, and what [`BrokerSink`] connects with.
#[derive(Debug, Clone)]
pub struct BrokerTarget {
    /// The destination: broker address and subject, topic or address, plus MQTT's QoS,
    /// version and retain flag.
    pub sink: transports::Sink,
    /// Content mode, Kafka key mapping, AMQP credentials.
    pub options: SendOptions,
}

// ---- Resolving a subscription ---------------------------------------------------------------

fn invalid(sub: &Subscription, reason: impl Into<String>) -> SinkError {
    SinkError::Invalid {
        sink: sub.sink.clone(),
        reason: reason.into(),
    }
}

/// The sink credential members a broker sink may use.
#[derive(Deserialize)]
struct RawCredential {
    credentialtype: String,
    identifier: Option<String>,
    secret: Option<String>,
}

/// The checks every broker sink shares (the URI, its scheme against the protocol, no
/// secrets in the URI, the credential), then the transport's own: its `protocolsettings`.
fn resolve(sub: &Subscription) -> Result<BrokerTarget, SinkError> {
    let url = Url::parse(&sub.sink).map_err(|e| invalid(sub, format!("not a valid URI ({e})")))?;
    let scheme = url.scheme().to_owned();
    let protocol = sub.protocol.api_name();
    let Some((transport, _)) = registry::by_scheme(&scheme) else {
        return Err(invalid(
            sub,
            format!(
                "`{scheme}:` is not a broker sink (expected {})",
                schemes().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    if !registry::schemes_of_protocol(protocol).contains(&scheme.as_str()) {
        let expected = registry::schemes_of_protocol(protocol)
            .first()
            .copied()
            .unwrap_or("http");
        return Err(invalid(
            sub,
            format!(
                "a `{scheme}:` sink does not fit protocol {protocol} (expected a `{expected}:` \
                 sink)"
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        let hint = if transport.takes_plain_credentials() {
            "give them as a PLAIN sinkcredential"
        } else {
            "they would be stored and shown in clear"
        };
        return Err(invalid(
            sub,
            format!("credentials in the sink URI are not supported ({hint})"),
        ));
    }
    let policy = sub.delivery_policy().map_err(|e| invalid(sub, e))?;
    let mut options = SendOptions::with_mode(policy.mode);
    options.format = policy.format;
    let credential = credential(sub)?;
    if credential.is_some() && !transport.takes_plain_credentials() {
        return Err(invalid(
            sub,
            format!(
                "sinkcredential: {protocol} sinks take no credentials here (only AMQP takes \
                 PLAIN ones)"
            ),
        ));
    }
    options.amqp_credentials = credential;
    let request = SettingsRequest {
        url: &url,
        protocol,
        settings: sub.protocolsettings.as_ref(),
    };
    let sink = transport
        .subscription_sink(request, &mut options)
        .map_err(|reason| invalid(sub, reason))?;
    Ok(BrokerTarget { sink, options })
}

/// The sink credential, if any: PLAIN only (the broker transports have no token auth).
fn credential(sub: &Subscription) -> Result<Option<Credentials>, SinkError> {
    let Some(value) = &sub.sinkcredential else {
        return Ok(None);
    };
    if value.is_null() {
        return Ok(None);
    }
    let cred: RawCredential = serde_json::from_value(value.clone())
        .map_err(|e| invalid(sub, format!("sinkcredential: {e}")))?;
    match cred.credentialtype.as_str() {
        "PLAIN" => Ok(Some(Credentials {
            username: cred.identifier.unwrap_or_default(),
            password: cred.secret.unwrap_or_default(),
        })),
        "ACCESSTOKEN" | "REFRESHTOKEN" => Err(invalid(
            sub,
            format!(
                "sinkcredential: {} is not supported for {} sinks (only PLAIN, for AMQP)",
                cred.credentialtype,
                sub.protocol.api_name()
            ),
        )),
        other => Err(invalid(sub, format!("unknown credentialtype `{other}`"))),
    }
}

// ---- The sink --------------------------------------------------------------------------------

/// Delivers one subscription's events to one broker destination.
///
/// Holds at most one connection (a [`transports::Sender`]), opened by the first send and
/// shared by concurrent sends. When a send fails in a retryable way, the connection it used
/// is dropped and the next send opens a new one. Concurrent sends that queued behind a failed
/// connection attempt share its failure instead of each waiting for a timeout of their own.
pub struct BrokerSink {
    target: transports::Sink,
    options: SendOptions,
    describe: String,
    /// Connecting and replacing connections, one at a time.
    slot: Mutex<Slot>,
    /// The open connection (a copy of `slot.sender`), for sends to take without waiting.
    open: std::sync::Mutex<Option<Arc<Sender>>>,
}

/// The connection, and the last failure to open one.
#[derive(Default)]
struct Slot {
    sender: Option<Arc<Sender>>,
    failed: Option<(Instant, String)>,
}

impl std::fmt::Debug for BrokerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSink")
            .field("sink", &self.describe)
            .finish_non_exhaustive()
    }
}

impl BrokerSink {
    /// A sink that will connect to `target` on its first send.
    pub fn new(target: BrokerTarget) -> Self {
        BrokerSink {
            // The canonical URI: default port and parameters spelled out, never credentials.
            describe: target.sink.to_string(),
            target: target.sink,
            options: target.options,
            slot: Mutex::new(Slot::default()),
            open: std::sync::Mutex::new(None),
        }
    }

    /// Whether a connection is open (for tests and diagnostics: a freshly created sink has
    /// none).
    pub async fn is_connected(&self) -> bool {
        self.slot.lock().await.sender.is_some()
    }

    async fn deliver(&self, event: &Event) -> SendOutcome {
        let started = Instant::now();
        let sender = match self.connection(started).await {
            Ok(sender) => sender,
            Err(outcome) => return outcome,
        };
        let result = match tokio::time::timeout(SEND_TIMEOUT, publish(&sender, event)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Transient {
                protocol: protocol_of(&self.target),
                reason: format!("no confirmation within {} s", SEND_TIMEOUT.as_secs()),
            }),
        };
        match result {
            Ok(()) => SendOutcome::Delivered,
            Err(e) if e.is_retryable() => {
                if e.is_connection_suspect() {
                    tracing::debug!(sink = %self.describe, error = %e,
                        "send failed; reconnecting on the next attempt");
                    self.discard(&sender).await;
                }
                SendOutcome::Retry {
                    after: None,
                    status: None,
                    reason: e.to_string(),
                }
            }
            Err(e) => SendOutcome::Permanent {
                reason: e.to_string(),
                status: None,
            },
        }
    }

    /// The open connection, or a new one. Returns the outcome to report when none can be had.
    async fn connection(&self, started: Instant) -> Result<Arc<Sender>, SendOutcome> {
        // Fast path, taken by every send while connected: no async lock, no queueing behind
        // the other sends in flight.
        if let Some(sender) = &*self.open.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(sender.clone());
        }
        let mut slot = self.slot.lock().await;
        if let Some(sender) = &slot.sender {
            return Ok(sender.clone());
        }
        // Someone tried (and failed) while this send waited for the lock: same answer.
        if let Some((at, reason)) = &slot.failed
            && *at >= started
        {
            return Err(retry(reason.clone()));
        }
        let connect = Sender::connect(&self.target, self.options.clone());
        let reason = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(sender)) => {
                tracing::info!(sink = %self.describe, "connected");
                let sender = Arc::new(sender);
                slot.sender = Some(sender.clone());
                slot.failed = None;
                *self.open.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
                return Ok(sender);
            }
            Ok(Err(ConnectError::Unsupported(scheme))) => {
                return Err(SendOutcome::Permanent {
                    reason: format!("sink scheme `{scheme}` has no broker transport"),
                    status: None,
                });
            }
            // A refused certificate stays refused until the operator acts: dead-letter
            // with the problem named rather than retrying for the whole retry window.
            Ok(Err(e @ ConnectError::Certificate { .. })) => {
                tracing::warn!(sink = %self.describe, error = %e, "TLS certificate refused");
                return Err(SendOutcome::Permanent {
                    reason: e.to_string(),
                    status: None,
                });
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "cannot connect to {}: no answer within {} s",
                self.describe,
                CONNECT_TIMEOUT.as_secs()
            ),
        };
        tracing::debug!(sink = %self.describe, %reason, "cannot connect; will retry");
        slot.failed = Some((Instant::now(), reason.clone()));
        Err(retry(reason))
    }

    /// Drops the connection a failed send used, unless it was already replaced.
    async fn discard(&self, used: &Arc<Sender>) {
        let taken = {
            let mut slot = self.slot.lock().await;
            match &slot.sender {
                Some(current) if Arc::ptr_eq(current, used) => {
                    *self.open.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    slot.sender.take()
                }
                _ => None,
            }
        };
        if let Some(sender) = taken
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            retire(&runtime, sender);
        }
    }
}

impl Drop for BrokerSink {
    fn drop(&mut self) {
        *self.open.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(sender) = self.slot.get_mut().sender.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            retire(&runtime, sender);
        }
    }
}

impl Sink for BrokerSink {
    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a> {
        Box::pin(self.deliver(event))
    }

    fn describe(&self) -> &str {
        &self.describe
    }

    fn takes_direct_sends(&self) -> bool {
        true
    }
}

fn retry(reason: String) -> SendOutcome {
    SendOutcome::Retry {
        after: None,
        status: None,
        reason,
    }
}

/// Publishes, and for NATS (whose publish only hands the message to the client) flushes, so
/// `Ok` means the message reached the broker and not just a buffer that a dropped
/// connection would lose.
async fn publish(sender: &Sender, event: &Event) -> Result<(), SendError> {
    sender.send(event).await?;
    if let Sender::Nats(nats) = sender {
        match tokio::time::timeout(FLUSH_TIMEOUT, nats.flush()).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(SendError::Transient {
                    protocol: "nats",
                    reason: format!(
                        "not written to the server within {} s",
                        FLUSH_TIMEOUT.as_secs()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Closes a connection that is no longer used, off the caller's path: AMQP detaches its link
/// politely, and Kafka's producer (whose drop waits for librdkafka) is dropped on a blocking
/// thread. Sends still using the connection keep it alive until they finish.
fn retire(runtime: &tokio::runtime::Handle, sender: Arc<Sender>) {
    match Arc::try_unwrap(sender) {
        Ok(Sender::Amqp(amqp)) => {
            runtime.spawn(amqp.close());
        }
        Ok(kafka @ Sender::Kafka(_)) => {
            runtime.spawn_blocking(move || drop(kafka));
        }
        Ok(other) => drop(other),
        Err(shared) => drop(shared),
    }
}

/// The protocol of a destination, for [`SendError`]s made here (they want a `'static` name).
fn protocol_of(sink: &transports::Sink) -> &'static str {
    sink.transport().map_or("http", |t| t.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContentMode;
    use crate::model::Protocol;
    use cloudevent::kafka::KeyMapping;
    use serde_json::Value;
    use serde_json::json;
    use transports::Mode;
    use transports::mqtt::{MqttVersion, Qos};

    fn sub(protocol: Protocol, sink: &str) -> Subscription {
        Subscription::new("s", protocol, sink)
    }

    fn with(mut s: Subscription, settings: Value) -> Subscription {
        s.protocolsettings = Some(settings);
        s
    }

    fn ok(s: &Subscription) -> BrokerTarget {
        match BrokerSinkFactory::resolve(s) {
            Ok(t) => t,
            Err(e) => panic!("{} refused: {e}", s.sink),
        }
    }

    fn reason(s: &Subscription) -> String {
        match BrokerSinkFactory::resolve(s) {
            Ok(t) => panic!("{} accepted as {}", s.sink, t.sink),
            Err(SinkError::Invalid { reason, .. }) => reason,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn uris_resolve_with_defaults() {
        let t = ok(&sub(Protocol::Nats, "nats://127.0.0.1:4222/orders.created"));
        assert_eq!(t.sink.to_string(), "nats://127.0.0.1:4222/orders.created");
        assert_eq!(t.options.mode, Mode::Binary);
        let t = ok(&sub(Protocol::Mqtt5, "mqtt://b/a/b"));
        assert_eq!(
            t.sink.to_string(),
            "mqtt://b:1883/a/b?qos=1&version=5&retain=false"
        );
        let t = ok(&sub(Protocol::Amqp, "amqp://h/exchange/e/k"));
        assert_eq!(t.sink.to_string(), "amqp://h:5672/exchange/e/k");
        assert!(t.options.amqp_credentials.is_none());
        let t = ok(&sub(Protocol::Kafka, "kafka://k/orders"));
        assert_eq!(t.sink.to_string(), "kafka://k:9092/orders");
        // Kafka binding 3.1: the user-provided key (`partitionkey`) is mapped by default.
        assert_eq!(t.options.kafka_keys, KeyMapping::PartitionKey);
    }

    #[test]
    fn protocol_must_fit_the_scheme() {
        for (protocol, sink) in [
            (Protocol::Nats, "mqtt://b/t"),
            (Protocol::Mqtt5, "nats://b/t"),
            (Protocol::Mqtt3, "kafka://b/t"),
            (Protocol::Amqp, "nats://b/t"),
            (Protocol::Kafka, "amqp://b/queue/q"),
            (Protocol::Http, "nats://b/t"),
        ] {
            let r = reason(&sub(protocol, sink));
            assert!(r.contains("does not fit protocol"), "{sink}: {r}");
        }
        assert!(reason(&sub(Protocol::Http, "http://h/")).contains("not a broker sink"));
    }

    #[test]
    fn structured_mode_comes_from_the_delivery_policy() {
        let mut s = sub(Protocol::Nats, "nats://b/x");
        s.delivery.mode = ContentMode::Structured;
        assert_eq!(ok(&s).options.mode, Mode::Structured);
        let mut s = sub(Protocol::Kafka, "kafka://b/x");
        s.config = Some([("delivery.mode".into(), "structured".into())].into());
        assert_eq!(ok(&s).options.mode, Mode::Structured);
    }

    #[test]
    fn destinations_come_from_the_uri_or_the_settings_but_must_agree() {
        let t = ok(&with(
            sub(Protocol::Nats, "nats://b:4223"),
            json!({"subject": "a.b"}),
        ));
        assert_eq!(t.sink.to_string(), "nats://b:4223/a.b");
        let t = ok(&with(
            sub(Protocol::Nats, "nats://b/a.b"),
            json!({"subject": "a.b"}),
        ));
        assert_eq!(t.sink.to_string(), "nats://b:4222/a.b");
        let r = reason(&with(
            sub(Protocol::Nats, "nats://b/a.b"),
            json!({"subject": "c"}),
        ));
        assert!(r.contains("contradicts"), "{r}");
        let r = reason(&sub(Protocol::Nats, "nats://b"));
        assert!(r.contains("protocolsettings.subject"), "{r}");
        let r = reason(&with(
            sub(Protocol::Nats, "nats://b"),
            json!({"subject": "a.*"}),
        ));
        assert!(r.starts_with("protocolsettings.subject"), "{r}");

        let t = ok(&with(
            sub(Protocol::Mqtt5, "mqtt://b?qos=2"),
            json!({"topicname": "x y/z"}),
        ));
        assert_eq!(
            t.sink,
            transports::Sink::Mqtt {
                broker: transports::Endpoint::plain("b", 1883),
                topic: "x y/z".into(),
                qos: Qos::ExactlyOnce,
                version: MqttVersion::V5,
                retain: false,
            }
        );
        for bad in ["a/#", "a/+/b", "a/../b", ""] {
            let r = reason(&with(
                sub(Protocol::Mqtt5, "mqtt://b"),
                json!({ "topicname": bad }),
            ));
            assert!(r.starts_with("protocolsettings.topicname"), "{bad}: {r}");
        }

        let t = ok(&with(
            sub(Protocol::Kafka, "kafka://k:9093/"),
            json!({"topicName": "orders"}),
        ));
        assert_eq!(t.sink.to_string(), "kafka://k:9093/orders");

        let t = ok(&with(
            sub(Protocol::Amqp, "amqp://h"),
            json!({"address": "/queue/orders"}),
        ));
        assert_eq!(t.sink.to_string(), "amqp://h:5672/queue/orders");
        for bad in ["orders", "/queue/a b", "/queues/x", "/queue/a/../b"] {
            let r = reason(&with(
                sub(Protocol::Amqp, "amqp://h"),
                json!({ "address": bad }),
            ));
            assert!(r.starts_with("protocolsettings.address"), "{bad}: {r}");
        }
    }

    #[test]
    fn mqtt_settings_and_versions() {
        let t = ok(&with(
            sub(Protocol::Mqtt5, "mqtt://b/t"),
            json!({"topicname": "t", "qos": 0, "retain": true, "userproperties": {}}),
        ));
        let transports::Sink::Mqtt { qos, retain, .. } = t.sink else {
            panic!()
        };
        assert_eq!((qos, retain), (Qos::AtMostOnce, true));
        // The same in the URI and the settings is fine; different is refused.
        ok(&with(
            sub(Protocol::Mqtt5, "mqtt://b/t?qos=2"),
            json!({"qos": 2}),
        ));
        assert!(
            reason(&with(
                sub(Protocol::Mqtt5, "mqtt://b/t?qos=2"),
                json!({"qos": 1})
            ))
            .contains("contradicts")
        );
        assert!(
            reason(&with(
                sub(Protocol::Mqtt5, "mqtt://b/t?retain=false"),
                json!({"retain": true})
            ))
            .contains("contradicts")
        );
        assert!(
            reason(&with(sub(Protocol::Mqtt5, "mqtt://b/t"), json!({"qos": 3}))).contains("qos 3")
        );
        // Subscriptions 3.2.2.2: `expiry` and `userproperties` SHOULD be supported, and
        // "only [apply] to MQTT 5.0".
        let t = ok(&with(
            sub(Protocol::Mqtt5, "mqtt://b/t"),
            json!({"expiry": 60, "userproperties": {"tenant": "acme", "Correlation-Id": "c1"}}),
        ));
        assert_eq!(t.options.mqtt_expiry, Some(60));
        assert_eq!(
            t.options.mqtt_user_properties,
            // In the order given: MQTT user properties are an ordered list.
            [
                ("tenant".to_owned(), "acme".to_owned()),
                ("Correlation-Id".to_owned(), "c1".to_owned())
            ]
        );
        for (settings, says) in [
            (json!({"expiry": -1}), "expiry -1"),
            (json!({"expiry": 4_294_967_296u64}), "expiry 4294967296"),
            (json!({"expiry": "60"}), "expiry \"60\""),
            (
                json!({"userproperties": {"a": 1}}),
                "userproperties.a must be a string",
            ),
            (json!({"userproperties": {"id": "x"}}), "userproperties.id"),
        ] {
            let r = reason(&with(sub(Protocol::Mqtt5, "mqtt://b/t"), settings));
            assert!(r.contains(says), "{r}");
        }
        for v5_only in [json!({"expiry": 60}), json!({"userproperties": {"a": "b"}})] {
            let r = reason(&with(sub(Protocol::Mqtt3, "mqtt://b/t"), v5_only));
            assert!(r.contains("MQTT 5.0 only"), "{r}");
        }
        let r = reason(&with(
            sub(Protocol::Mqtt5, "mqtt://b/t"),
            json!({"headers": {}}),
        ));
        assert!(
            r.starts_with("protocolsettings: unknown field `headers`"),
            "{r}"
        );

        // MQTT3 forces 3.1.1 and structured mode.
        let t = ok(&sub(Protocol::Mqtt3, "mqtt://b/t"));
        assert!(matches!(
            t.sink,
            transports::Sink::Mqtt {
                version: MqttVersion::V3_1_1,
                ..
            }
        ));
        assert_eq!(t.options.mode, Mode::Structured);
        ok(&sub(Protocol::Mqtt3, "mqtt://b/t?version=3.1.1"));
        assert!(reason(&sub(Protocol::Mqtt3, "mqtt://b/t?version=5")).contains("MQTT5"));
        assert!(reason(&sub(Protocol::Mqtt5, "mqtt://b/t?version=3.1.1")).contains("MQTT3"));
    }

    #[test]
    fn amqp_settings_and_credentials() {
        let mut s = with(
            sub(Protocol::Amqp, "amqp://h/queue/q"),
            json!({"sendersettlementmode": "unsettled", "linkProperties": {}}),
        );
        s.sinkcredential =
            Some(json!({"credentialtype": "PLAIN", "identifier": "u", "secret": "p"}));
        let t = ok(&s);
        assert_eq!(
            t.options.amqp_credentials,
            Some(Credentials {
                username: "u".into(),
                password: "p".into()
            })
        );
        // Subscriptions 3.2.2.3: `linkName` and `linkProperties` SHOULD be supported.
        let t = ok(&with(
            sub(Protocol::Amqp, "amqp://h/queue/q"),
            json!({"linkName": "mine", "linkProperties": {"a": "b"}}),
        ));
        assert_eq!(t.options.amqp_link.name.as_deref(), Some("mine"));
        assert_eq!(
            t.options.amqp_link.properties,
            [("a".to_owned(), "b".to_owned())]
        );
        for (refused, says) in [
            // At-least-once delivery waits for the broker's outcome of every message.
            (json!({"sendersettlementmode": "settled"}), "not supported"),
            (json!({"linkName": ""}), "must not be empty"),
            (json!({"linkProperties": {"a": 1}}), "must be a string"),
        ] {
            let r = reason(&with(sub(Protocol::Amqp, "amqp://h/queue/q"), refused));
            assert!(r.contains(says), "{r}");
        }
        s.sinkcredential = Some(json!({"credentialtype": "ACCESSTOKEN", "accesstoken": "t"}));
        assert!(reason(&s).starts_with("sinkcredential"));
        let r = reason(&sub(Protocol::Amqp, "amqp://u:p@h/queue/q"));
        assert!(r.contains("sinkcredential"), "{r}");
        let mut s = sub(Protocol::Nats, "nats://h/x");
        s.sinkcredential = Some(json!({"credentialtype": "PLAIN", "identifier": "u"}));
        assert!(reason(&s).starts_with("sinkcredential"));
    }

    #[test]
    fn kafka_settings() {
        let t = ok(&with(
            sub(Protocol::Kafka, "kafka://k/t"),
            json!({"topicname": "t", "partitionkeyextractor": "partitionkey", "ackmode": -1}),
        ));
        assert_eq!(t.options.kafka_keys, KeyMapping::PartitionKey);
        // Subscriptions 3.2.2.4: "All other settings SHOULD be supported" (clientid, acks).
        let t = ok(&with(
            sub(Protocol::Kafka, "kafka://k/t"),
            json!({"clientid": "me", "acks": "all"}),
        ));
        assert_eq!(t.options.kafka_client_id.as_deref(), Some("me"));
        for unsupported in [
            json!({"acks": "1"}),
            json!({"ackmode": 0}),
            json!({"partitionkeyextractor": "$.data.id"}),
        ] {
            let r = reason(&with(sub(Protocol::Kafka, "kafka://k/t"), unsupported));
            assert!(r.contains("not supported"), "{r}");
        }
    }

    #[tokio::test]
    async fn create_does_not_connect_and_a_dead_broker_is_a_retry() {
        // Port 9 (discard) on loopback: nothing listens there.
        let s = sub(Protocol::Nats, "nats://127.0.0.1:9/x");
        let sink = BrokerSink::new(ok(&s));
        assert!(!sink.is_connected().await);
        let event = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(40), sink.send(&event))
            .await
            .unwrap();
        assert!(
            matches!(&outcome, SendOutcome::Retry { after: None, status: None, reason } if reason.contains("127.0.0.1:9")),
            "{outcome:?}"
        );
        assert!(!sink.is_connected().await);
    }
}
