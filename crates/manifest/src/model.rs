//! The typed, validated application model that the rest of Spindle uses.
//!
//! Everything here has already been checked: ids are valid, routes parsed,
//! sink URIs parsed per scheme, durations and sizes converted, relative paths
//! resolved against the manifest directory and defaults filled in. Code that
//! runs the application never looks at strings from `spindle.toml` again.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::route::Route;
use crate::sink::{Endpoint, Sink};
use crate::units::ByteSize;

/// The only manifest format version this crate understands. Written as
/// `spindle_manifest_version = 1` so that a future incompatible format can be
/// told apart (Spin uses `spin_manifest_version = 2` the same way).
pub const MANIFEST_VERSION: i64 = 1;

/// Default for [`HttpIngress::max_body_size`]: 1 MiB, comfortably above the
/// 64 KiB the CloudEvents webhook spec requires receivers to accept.
pub const DEFAULT_MAX_BODY_SIZE: ByteSize = ByteSize(ByteSize::MIB);

/// The smallest `max_body_size` allowed: the CloudEvents HTTP webhook spec
/// requires accepting events of at least 64 KiB.
pub const MIN_MAX_BODY_SIZE: ByteSize = ByteSize(64 * ByteSize::KIB);

/// Default admin (subscriptions API) listener: loopback only, so nothing is
/// exposed to the network unless the manifest says so.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:3001";

/// A listener's timeouts and connection cap: the HTTP server stack's own type, so what
/// `[application.http]` and `[application.admin]` accept is what the listeners run with.
pub use http_server::Limits as ListenerLimits;
/// A listener's certificate and key files: the HTTP server stack's own type.
pub use http_server::TlsFiles;
pub use http_server::trust::ClientTls;

/// Default [`Admin`] `max_connections`: the admin API serves a few operators and scripts.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 64;

/// The largest `max_connections` a listener accepts (each connection is a file descriptor).
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

/// The longest header, body or idle timeout a listener accepts.
pub const MAX_LISTENER_TIMEOUT: Duration = Duration::from_secs(3600);

/// Default per-event deadline: long enough for a handler that calls an API,
/// short enough that a stuck guest does not hold a broker delivery forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default linear-memory cap per instance.
pub const DEFAULT_MEMORY: ByteSize = ByteSize(64 * ByteSize::MIB);

/// Default cap on concurrently running instances of one component.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 100;

/// Default NATS server for triggers that do not name one.
pub const DEFAULT_NATS_ADDRESS: &str = "nats://127.0.0.1:4222";
/// Default MQTT broker for triggers that do not name one.
pub const DEFAULT_MQTT_ADDRESS: &str = "mqtt://127.0.0.1:1883";
/// Default AMQP broker for triggers that do not name one.
pub const DEFAULT_AMQP_ADDRESS: &str = "amqp://127.0.0.1:5672";
/// Default Kafka bootstrap broker for triggers that do not name any.
pub const DEFAULT_KAFKA_BROKER: &str = "127.0.0.1:9092";

/// A whole `spindle.toml`, validated.
///
/// Built only by [`Manifest::from_str`] or [`Manifest::load`], so holding one
/// means every rule in the crate docs has been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// `spindle_manifest_version`; always [`MANIFEST_VERSION`] today.
    pub manifest_version: i64,
    /// Directory the manifest was loaded from; every relative path in the
    /// manifest was resolved against it.
    pub base_dir: PathBuf,
    /// `[application]`: name, metadata and application-wide settings.
    pub application: Application,
    /// `[[trigger.*]]`: what feeds events to which component.
    pub triggers: Triggers,
    /// `[component.<id>]`, keyed (and therefore ordered) by id.
    pub components: BTreeMap<ComponentId, Component>,
    /// `[key_value_store.<label>]`, plus `default` (the embedded store) unless redefined.
    pub key_value_stores: BTreeMap<String, KeyValueStore>,
    /// `[[subscribe]]`: subscriptions this app keeps at other apps' Subscriptions APIs.
    pub subscribe: Vec<RemoteSubscription>,
    /// Where things came from, for diagnostics produced after parsing
    /// (e.g. [`Manifest::check_sources`]).
    pub(crate) origin: Origin,
}

/// File name and line numbers kept for diagnostics that happen after parsing.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Origin {
    pub(crate) file: String,
    pub(crate) source_lines: BTreeMap<ComponentId, usize>,
}

/// A component id: kebab-case, like Spin (`orders`, `order-api`).
///
/// A newtype so an unchecked string can't be used where an id is expected;
/// the only way to get one is through validation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId(pub(crate) String);

impl ComponentId {
    /// Checks and wraps an id, for callers (CLI flags, APIs) that accept a
    /// component name from a user.
    pub fn new(id: &str) -> Result<Self, String> {
        crate::names::check_component_id(id).map(|()| ComponentId(id.to_owned()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ComponentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ComponentId {
    /// Lets `manifest.components.get("orders")` work without building an id.
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// `[application]`: identity and application-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Application name, used in logs and as the default CloudEvents
    /// `source` prefix and Kafka consumer group. Required.
    pub name: String,
    /// Free-form version string, for humans and `spindle` output.
    pub version: Option<String>,
    /// Free-form description.
    pub description: Option<String>,
    /// Authors, as in Spin.
    pub authors: Vec<String>,
    /// `[application.http]`: ingress settings for all HTTP triggers.
    pub http: HttpIngress,
    /// `[application.admin]`: the subscriptions/admin API listener.
    pub admin: Admin,
    /// `[application.egress]`: where Spindle may connect on someone's behalf (sinks, outputs,
    /// the handshake callback, guests' outbound HTTP), `allow`/`deny` rules over the defaults
    /// (see [`http_server::egress`]).
    pub egress: http_server::EgressPolicy,
    /// `max_hops`: loop protection, how many handlers an event may pass through (its
    /// `spindlehops` extension) before it is dead-lettered instead of delivered; default
    /// [`DEFAULT_MAX_HOPS`].
    pub max_hops: u32,
    /// `[application.store]`: bounds on what the state store keeps for all queues together.
    pub store: StoreLimits,
    /// `[application.telemetry] otlp = "http://collector:4318"`: export the spans of every
    /// event's handling and delivery over OTLP (HTTP/protobuf) to this collector. `None`:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` decides, and without it tracing export is off.
    pub otlp: Option<url::Url>,
    /// `public_url = "https://events.example.com"`: where others reach this app's HTTP
    /// trigger (behind a proxy or a load balancer), as the registry document advertises it and
    /// as the sink of the subscriptions Spindle makes elsewhere. `None`: the listener's own
    /// address.
    pub public_url: Option<url::Url>,
    /// `[application.cluster] nats = "nats://..."`: keep the delivery state (subscriptions,
    /// queued deliveries, dead letters) in NATS JetStream, shared by every node that names
    /// the same cluster, instead of the embedded store. `None`: one node, embedded store.
    pub cluster: Option<Cluster>,
}

/// The default of [`Cluster::replicas`].
pub const DEFAULT_CLUSTER_REPLICAS: usize = 1;
/// The replicas a JetStream stream may have, and so [`Cluster::replicas`].
pub const CLUSTER_REPLICAS: std::ops::RangeInclusive<usize> = 1..=5;

/// `[application.cluster]`: where several nodes of one app keep their shared state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// A NATS server of the cluster, `nats://host:port` (`tls://` for TLS).
    pub nats: String,
    /// Replicas of each JetStream stream (1-5; default [`DEFAULT_CLUSTER_REPLICAS`]): 3 on a
    /// 3-node NATS cluster survives losing a node.
    pub replicas: usize,
}

/// Why a replica count is refused.
const REPLICAS_RULE: &str = "replicas must be between 1 and 5 (JetStream's limit)";

impl Cluster {
    /// The cluster at NATS address `nats` (a `nats://`, `tls://` or `nats+tls://` URL with a
    /// host and nothing after it), with `replicas` (1 to 5). The one rule for the manifest's
    /// `[application.cluster]` and `spindle up --cluster`.
    pub fn new(nats: &str, replicas: usize) -> Result<Cluster, String> {
        let valid = url::Url::parse(nats).is_ok_and(|u| {
            transports::registry::by_scheme(u.scheme()).is_some_and(|(t, _)| t.name() == "nats")
                && u.host_str().is_some_and(|h| !h.is_empty())
                && matches!(u.path(), "" | "/")
                && u.query().is_none()
        });
        if !valid {
            return Err(format!(
                "invalid NATS address \"{nats}\" (expected e.g. \"nats://127.0.0.1:4222\")"
            ));
        }
        if !CLUSTER_REPLICAS.contains(&replicas) {
            return Err(REPLICAS_RULE.into());
        }
        Ok(Cluster {
            nats: nats.trim_end_matches('/').to_owned(),
            replicas,
        })
    }
}

/// `[application.store]`: bounds on what the state store keeps, over every subscription and
/// output together. When one is reached, new events bound for a queue are refused (HTTP `503`
/// + `Retry-After`, broker nak) until it drains, never dropped. `None` = unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// `max_queued_events`: queued (pending) deliveries in all.
    pub max_queued_events: Option<u64>,
    /// `max_queued_bytes = "1GiB"`: bytes of queued deliveries in all.
    pub max_queued_bytes: Option<u64>,
    /// `max_dead_letters`: dead letters in all.
    pub max_dead_letters: Option<u64>,
}

impl Default for StoreLimits {
    /// A gibibyte of queued events and a million dead letters: far beyond a healthy app's
    /// needs, well within a small disk.
    fn default() -> Self {
        StoreLimits {
            max_queued_events: None,
            max_queued_bytes: Some(1 << 30),
            max_dead_letters: Some(1_000_000),
        }
    }
}

/// An output's own bounds on what the state store keeps for its queue (`max_queued_events`,
/// `max_queued_bytes`, `max_dead_letters`, `dead_letter_retention` in the output's table),
/// within the app's [`StoreLimits`]. `None` = only the app's bounds; dead letters kept until
/// replayed or purged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueLimits {
    /// The most queued deliveries.
    pub max_queued_events: Option<u64>,
    /// The most bytes of queued deliveries.
    pub max_queued_bytes: Option<u64>,
    /// The most dead letters.
    pub max_dead_letters: Option<u64>,
    /// Dead letters older than this are deleted.
    pub dead_letter_retention: Option<Duration>,
}

/// The default of [`Application::max_hops`].
pub const DEFAULT_MAX_HOPS: u32 = 32;

/// `[application.http]`: how the HTTP ingress protects itself.
///
/// These are application-wide because one listener serves every HTTP route.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpIngress {
    /// Largest accepted request body; larger requests get `413`.
    /// Default [`DEFAULT_MAX_BODY_SIZE`], at least [`MIN_MAX_BODY_SIZE`].
    pub max_body_size: ByteSize,
    /// Origins allowed to deliver events, answered in the webhook
    /// validation handshake as `WebHook-Allowed-Origin`. Empty means "answer
    /// with the requesting origin" (allow everyone who asks).
    pub allowed_origins: Vec<String>,
    /// Requests per minute granted in `WebHook-Allowed-Rate`; `None` means no
    /// limit is advertised.
    pub allowed_rate: Option<u32>,
    /// If set, webhook deliveries must authenticate with
    /// `Authorization: Bearer <token>` or the `access_token` query parameter
    /// (CloudEvents webhook spec §3).
    pub auth_token: Option<Secret>,
    /// `header_timeout`, `body_timeout`, `idle_timeout` and `max_connections`: how the
    /// listener protects itself from slow or greedy clients (defaults: [`ListenerLimits::default`]).
    pub limits: ListenerLimits,
    /// `tls = { cert, key }`: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN), reloading the files
    /// when they change. Plain HTTP when absent.
    pub tls: Option<TlsFiles>,
}

/// `[application.admin]`: the listener for the subscriptions API.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Socket address to listen on; default [`DEFAULT_ADMIN_LISTEN`].
    /// A non-loopback address requires a `token`.
    pub listen: SocketAddr,
    /// Bearer token required on admin requests.
    pub token: Option<Secret>,
    /// The listener's timeouts and connection cap, as for [`HttpIngress::limits`]; at most
    /// [`DEFAULT_ADMIN_MAX_CONNECTIONS`] connections by default.
    pub limits: ListenerLimits,
    /// `tls = { cert, key }`, as for [`HttpIngress::tls`].
    pub tls: Option<TlsFiles>,
}

/// A secret value: written inline, or (better) read at startup from the environment or a
/// file, so it never has to be committed.
///
/// In TOML: `token = "s3cr3t"`, `token = { env = "SPINDLE_ADMIN_TOKEN" }` or
/// `token = { file = "/run/secrets/admin-token" }` (relative to the manifest; one trailing
/// newline is dropped, as `echo` and most secret mounts write one).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The secret itself.
    Literal(String),
    /// The name of an environment variable holding the secret.
    Env(String),
    /// A file holding the secret.
    File(PathBuf),
}

/// Why a [`Secret`] could not be read; names where it was looked for, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is unset or not UTF-8.
    #[error("environment variable {name} is not set (or not UTF-8)")]
    Env {
        /// The variable's name.
        name: String,
    },
    /// The file cannot be read as UTF-8 text.
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

impl Secret {
    /// The secret's value, reading the environment or the file now.
    pub fn resolve(&self) -> Result<String, SecretError> {
        match self {
            Secret::Literal(s) => Ok(s.clone()),
            Secret::Env(var) => {
                std::env::var(var).map_err(|_| SecretError::Env { name: var.clone() })
            }
            Secret::File(path) => {
                let mut text =
                    std::fs::read_to_string(path).map_err(|source| SecretError::File {
                        path: path.clone(),
                        source,
                    })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(text)
            }
        }
    }
}

impl fmt::Debug for Secret {
    /// Never prints the literal, so a `{:?}` of the manifest in a log does
    /// not leak it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Literal(_) => f.write_str("Secret::Literal(<redacted>)"),
            Secret::Env(var) => write!(f, "Secret::Env({var:?})"),
            Secret::File(path) => write!(f, "Secret::File({path:?})"),
        }
    }
}

/// All `[[trigger.<type>]]` entries, grouped by transport, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    /// `[[trigger.http]]`
    pub http: Vec<HttpTrigger>,
    /// `[[trigger.nats]]`
    pub nats: Vec<NatsTrigger>,
    /// `[[trigger.mqtt]]`
    pub mqtt: Vec<MqttTrigger>,
    /// `[[trigger.amqp]]`
    pub amqp: Vec<AmqpTrigger>,
    /// `[[trigger.kafka]]`
    pub kafka: Vec<KafkaTrigger>,
}

impl Triggers {
    /// Total number of triggers of all kinds.
    pub fn len(&self) -> usize {
        self.http.len() + self.nats.len() + self.mqtt.len() + self.amqp.len() + self.kafka.len()
    }

    /// True when the application has no triggers at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every broker trigger, whatever its protocol, in a fixed order (NATS, MQTT, AMQP,
    /// Kafka; each in manifest order), with the receive side its transport starts.
    pub fn brokers(&self) -> Vec<BrokerSource<'_>> {
        let common = |component, max_deliveries, dedup_window| {
            move |source: Box<dyn transports::registry::Source>| BrokerSource {
                source,
                component,
                max_deliveries,
                dedup_window,
            }
        };
        let nats = self.nats.iter().map(|t| {
            common(&t.component, t.max_deliveries, t.dedup_window)(Box::new(
                transports::nats::NatsReceiverConfig::from(t),
            ))
        });
        let mqtt = self.mqtt.iter().map(|t| {
            common(&t.component, t.max_deliveries, t.dedup_window)(Box::new(
                transports::mqtt::MqttReceiverConfig::from(t),
            ))
        });
        let amqp = self.amqp.iter().map(|t| {
            common(&t.component, t.max_deliveries, t.dedup_window)(Box::new(
                transports::amqp::AmqpReceiverConfig::from(t),
            ))
        });
        let kafka = self.kafka.iter().map(|t| {
            common(&t.component, t.max_deliveries, t.dedup_window)(Box::new(
                transports::kafka::KafkaReceiverConfig::from(t),
            ))
        });
        nats.chain(mqtt).chain(amqp).chain(kafka).collect()
    }
}

/// One broker trigger of any protocol: its transport's receive side and what the runtime
/// does with what it receives.
#[derive(Debug)]
pub struct BrokerSource<'a> {
    /// The receive side, in the transport's own settings type.
    pub source: Box<dyn transports::registry::Source>,
    /// The component that handles its events.
    pub component: &'a ComponentId,
    /// How often a message is handed to the component before it is dead-lettered.
    pub max_deliveries: u32,
    /// Its dedup window, if any.
    pub dedup_window: Option<Duration>,
}

/// `[[trigger.http]]`: route HTTP requests to a component.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTrigger {
    /// Which paths this trigger serves (Spin syntax, `/...` for wildcards).
    pub route: Route,
    /// The component that handles the requests. Without one, a `cloudevents` route only
    /// takes events in for the subscriptions (answering `202` once they are stored).
    pub component: Option<ComponentId>,
    /// How requests are handed to the component.
    pub executor: HttpExecutor,
    /// The protocol binder linked to the component, for `executor = "binder"` (default: the
    /// stock `http` binder); `None` for the other executors.
    pub binder: Option<Binder>,
    /// `dedup_window = "10m"`: an event whose (`source`, `id`) this route already handled
    /// within the window is answered `202 Accepted` without handling it again (kept on disk,
    /// so the window holds across restarts). Off by default.
    pub dedup_window: Option<Duration>,
}

/// How an HTTP trigger invokes its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum HttpExecutor {
    /// Decode the request as a CloudEvent (binary, structured or batch mode)
    /// and call the component's CloudEvents handler. The default.
    #[default]
    #[serde(rename = "cloudevents")]
    CloudEvents,
    /// Pass the raw request to a plain `wasi:http/incoming-handler`
    /// component, so existing Spin/wasi-http components run unchanged.
    #[serde(rename = "wasi-http")]
    WasiHttp,
    /// Link the component to a protocol binder component (`binder = ...`), which decodes
    /// the request inside Wasm and calls the component's CloudEvents handler; the
    /// composition is served as a `wasi:http` component.
    #[serde(rename = "binder")]
    Binder,
}

impl HttpExecutor {
    /// Whether requests go to the component as raw HTTP (`wasi-http`, or a binder that
    /// decodes them inside Wasm) rather than as events decoded by the host.
    pub fn is_raw_http(self) -> bool {
        matches!(self, HttpExecutor::WasiHttp | HttpExecutor::Binder)
    }
}

/// `binder = "http"` or `binder = "binders/custom.wasm"`: the protocol binder component a
/// `binder` route links its component to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binder {
    /// One of Spindle's built-in binders.
    Stock(StockBinder),
    /// A binder component file (a component of the `spindle:cloudevents/binder-http` world),
    /// resolved against the application's directory.
    Path(PathBuf),
}

/// Spindle's built-in binders, by the name `binder = "<name>"` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StockBinder {
    /// CloudEvents over HTTP: binary, structured and batched modes and the webhook
    /// handshake, decoded inside Wasm by the same codecs as the host's trigger.
    Http,
}

impl StockBinder {
    /// Every stock binder.
    pub const ALL: [StockBinder; 1] = [StockBinder::Http];

    /// Its name in `spindle.toml`.
    pub fn name(self) -> &'static str {
        match self {
            StockBinder::Http => "http",
        }
    }

    /// The stock binder called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// `[[trigger.nats]]`: subscribe to a NATS subject.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsTrigger {
    /// NATS server; default [`DEFAULT_NATS_ADDRESS`].
    pub address: Endpoint,
    /// Subject to subscribe to; `*` and `>` wildcards allowed.
    pub subject: String,
    /// Queue group, so several Spindle instances share the work instead of
    /// each receiving every message.
    pub queue_group: Option<String>,
    /// Consume through a JetStream consumer (at-least-once) instead of core
    /// NATS (at-most-once).
    pub jetstream: Option<JetStream>,
    /// The component that handles the events.
    pub component: ComponentId,
    /// How often a message is handed to the component before it is dead-lettered (in the
    /// trigger's dead-letter queue) and acknowledged; default [`DEFAULT_MAX_DELIVERIES`].
    pub max_deliveries: u32,
    /// `dedup_window = "10m"`: a message whose (`source`, `id`) this trigger already handled
    /// within the window is acknowledged without handling it again (kept on disk, so the
    /// window holds across restarts). Off by default.
    pub dedup_window: Option<Duration>,
}

/// `jetstream = { stream = "...", durable = "..." }` on a NATS trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStream {
    /// Stream to consume from.
    pub stream: String,
    /// Durable consumer name, so progress survives restarts; `None` creates
    /// an ephemeral consumer.
    pub durable: Option<String>,
}

/// `[[trigger.mqtt]]`: subscribe to an MQTT topic filter.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttTrigger {
    /// MQTT broker; default [`DEFAULT_MQTT_ADDRESS`].
    pub address: Endpoint,
    /// Topic filter; `+` and `#` wildcards allowed.
    pub topic: String,
    /// Subscription QoS; default 1 (at least once).
    pub qos: Qos,
    /// Protocol version; default 5 (needed for binary content mode).
    pub protocol: MqttVersion,
    /// Keep the session (and queued QoS 1/2 messages) across reconnects.
    /// Default false (clean start). Requires an explicit `client_id`.
    pub persistent_session: bool,
    /// MQTT client id; when absent the runtime derives one.
    pub client_id: Option<String>,
    /// The component that handles the events.
    pub component: ComponentId,
    /// How often a message is handed to the component before it is dead-lettered (in the
    /// trigger's dead-letter queue) and acknowledged; default [`DEFAULT_MAX_DELIVERIES`].
    pub max_deliveries: u32,
    /// `dedup_window = "10m"`: a message whose (`source`, `id`) this trigger already handled
    /// within the window is acknowledged without handling it again (kept on disk, so the
    /// window holds across restarts). Off by default.
    pub dedup_window: Option<Duration>,
}

pub use transports::mqtt::{MqttVersion, Qos};

/// `[[trigger.amqp]]`: consume from an AMQP 1.0 source address.
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpTrigger {
    /// AMQP broker; default [`DEFAULT_AMQP_ADDRESS`].
    pub address: Endpoint,
    /// Source address to attach a receiver to, e.g. `/queue/orders`.
    pub source: String,
    /// The component that handles the events.
    pub component: ComponentId,
    /// How often a message is handed to the component before it is dead-lettered (in the
    /// trigger's dead-letter queue) and acknowledged; default [`DEFAULT_MAX_DELIVERIES`].
    pub max_deliveries: u32,
    /// `dedup_window = "10m"`: a message whose (`source`, `id`) this trigger already handled
    /// within the window is acknowledged without handling it again (kept on disk, so the
    /// window holds across restarts). Off by default.
    pub dedup_window: Option<Duration>,
}

/// `[[trigger.kafka]]`: consume a Kafka topic as part of a consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaTrigger {
    /// Bootstrap brokers (`host:port`); default [`DEFAULT_KAFKA_BROKER`].
    pub brokers: Vec<Endpoint>,
    /// Topic to consume.
    pub topic: String,
    /// Consumer group; default `"<application>-<component>"` so two
    /// components reading one topic each see every message.
    pub group: String,
    /// The component that handles the events.
    pub component: ComponentId,
    /// How often a message is handed to the component before it is dead-lettered (in the
    /// trigger's dead-letter queue) and acknowledged; default [`DEFAULT_MAX_DELIVERIES`].
    pub max_deliveries: u32,
    /// `dedup_window = "10m"`: a message whose (`source`, `id`) this trigger already handled
    /// within the window is acknowledged without handling it again (kept on disk, so the
    /// window holds across restarts). Off by default.
    pub dedup_window: Option<Duration>,
}

/// `[[subscribe]]`: a subscription this app keeps at another app's (or any) CloudEvents
/// Subscriptions API, whose sink is one of this app's own HTTP routes. Spindle creates it when
/// it starts (adopting one with the same sink left by an earlier run), checks every `refresh`
/// that it still exists (re-creating it if not), and deletes it when it stops.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSubscription {
    /// Where the Subscriptions API is found.
    pub at: SubscriptionsApi,
    /// The local route the events come in on: a path a `cloudevents` `[[trigger.http]]`
    /// serves. The sink is `[application] public_url` (else the listener's address) + route.
    pub route: String,
    /// Only these event types (the Subscriptions API's `types`); all when empty.
    pub types: Vec<String>,
    /// Only events of this `source`.
    pub source: Option<String>,
    /// A CESQL filter (sent as the `sql` filter dialect), checked by the remote API.
    pub filter: Option<String>,
    /// Bearer token for the remote API.
    pub token: Option<Secret>,
    /// How often the subscription is checked (and re-created if gone); default
    /// [`DEFAULT_SUBSCRIBE_REFRESH`].
    pub refresh: Duration,
}

/// The default of [`RemoteSubscription::refresh`].
pub const DEFAULT_SUBSCRIBE_REFRESH: Duration = Duration::from_secs(30);

/// How a `[[subscribe]]` finds the Subscriptions API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionsApi {
    /// `registry = "http://a:3001/registry"`: an xRegistry document whose `subscriber`
    /// endpoint names the API (discovery: no other address written by hand).
    Registry(url::Url),
    /// `api = "http://a:3001/subscriptions"`: the API's subscriptions collection itself.
    Api(url::Url),
}

/// `[component.<id>]`: one Wasm component and what it is allowed to do.
///
/// Grants (`files`, `allowed_outbound_hosts`, `environment`) default to
/// nothing: a component gets only what the manifest gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// The component's id (the `<id>` in `[component.<id>]`).
    pub id: ComponentId,
    /// Path to the `.wasm` file, resolved against the manifest directory.
    /// It need not exist yet; see [`Manifest::check_sources`].
    pub source: PathBuf,
    /// Free-form description.
    pub description: Option<String>,
    /// How `spindle build` produces `source`.
    pub build: Option<Build>,
    /// Output bindings the guest can emit events to, by name.
    pub outputs: BTreeMap<String, Output>,
    /// Resource limits, with defaults filled in.
    pub limits: Limits,
    /// Read-only configuration values the guest can look up by name: inline, or read at
    /// startup from the environment or a file (`{ env = "NAME" }`, `{ file = "path" }`).
    pub variables: BTreeMap<String, Secret>,
    /// Files and directories preopened read-only for the guest.
    pub files: Vec<FileMount>,
    /// Hosts the guest may connect to, in Spin's `scheme://host[:port]`
    /// format, parsed into the engine's own grant type so that what validates
    /// here is what the engine enforces.
    pub allowed_outbound_hosts: Vec<engine::OutboundHost>,
    /// Environment variables visible to the guest.
    pub environment: BTreeMap<String, String>,
    /// Labels of the key-value stores the guest may open (each one `default` or a
    /// `[key_value_store.<label>]`); none by default.
    pub key_value_stores: Vec<String>,
    /// `consumes = [...]`: the event types the component handles. An event of a declared type
    /// with a `dataschema` is validated before the component sees it. Undeclared types are
    /// still handed over: the list describes, and constrains only what it names.
    pub consumes: Vec<MessageDecl>,
    /// `produces = [...]`: the event types the component emits (results and publishes). An
    /// emitted event of a declared type is validated against its `dataschema`, and gets the
    /// declaration's `dataschema` and `datacontenttype` when it has none.
    pub produces: Vec<MessageDecl>,
}

/// One `consumes`/`produces` entry: `"com.example.greet"`, or
/// `{ type = "...", dataschema = "schemas/greet.json", datacontenttype = "application/json",
/// description = "..." }`. The registry document lists it as a message definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDecl {
    /// The CloudEvents `type`.
    pub ty: String,
    /// The JSON Schema its data follows, if declared.
    pub dataschema: Option<SchemaRef>,
    /// The media type of its data; `application/json` when a schema is declared and this
    /// is not.
    pub datacontenttype: Option<String>,
    /// What the event means, for the registry document.
    pub description: Option<String>,
}

impl MessageDecl {
    /// The media type of its data: the declared one, else `application/json` when a schema
    /// is declared (a JSON Schema validates JSON data).
    pub fn media_type(&self) -> Option<&str> {
        self.datacontenttype
            .as_deref()
            .or_else(|| self.dataschema.as_ref().map(|_| "application/json"))
    }
}

/// Where a declared data schema is: a file of the app or a schema registry's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaRef {
    /// A JSON Schema file, resolved against the manifest's directory.
    File(PathBuf),
    /// An `http(s)` URL serving the schema (another Spindle's
    /// `/registry/schemagroups/<group>/schemas/<id>`, or any schema registry), fetched at
    /// start-up.
    Url(url::Url),
}

impl fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaRef::File(path) => write!(f, "{}", path.display()),
            SchemaRef::Url(url) => write!(f, "{url}"),
        }
    }
}

/// The default of a broker trigger's `max_deliveries`.
pub const DEFAULT_MAX_DELIVERIES: u32 = 10;

/// The label of the store every application has without defining it: the embedded one.
pub const DEFAULT_KEY_VALUE_STORE: &str = "default";

/// `[key_value_store.<label>]`: where a key-value store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStore {
    /// `type = "embedded"`: a file in the state directory, surviving restarts; no server.
    Embedded,
    /// `type = "redis"`, `url = "redis://[user:password@]host:port[/db]"` (or the URL from
    /// `{ env = ... }` / `{ file = ... }` when it holds a password). No TLS (`rediss://`) yet.
    Redis {
        /// The server's URL.
        url: Secret,
    },
}

/// `[component.<id>.build]`: how `spindle build` builds the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// Shell command(s) to run, in order. A single string in the manifest
    /// becomes a one-element list.
    pub commands: Vec<String>,
    /// Directory to run the commands in, resolved against the manifest
    /// directory; the manifest directory itself when not given.
    pub workdir: PathBuf,
}

/// One output binding: where events emitted under this name go.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Destination, parsed per URI scheme.
    pub sink: Sink,
    /// CloudEvents content mode used on the wire; default binary (structured when `format`
    /// names another format than JSON).
    pub mode: ContentMode,
    /// `format = "json" | "protobuf" | "avro"`: the event format of structured mode (the
    /// codec's own type, so what validates is what the sender writes); default JSON.
    pub format: cloudevent::Format,
    /// Extra HTTP headers sent with every delivery (HTTP sinks only), e.g.
    /// an `Authorization` header for the receiving webhook.
    pub headers: BTreeMap<String, String>,
    /// HTTP sinks only: perform the webhook abuse-protection handshake (an `OPTIONS`
    /// request announcing this origin as `WebHook-Request-Origin`) before the first
    /// delivery, as receivers following cloudevents/http-webhook.md require.
    pub webhook_origin: Option<String>,
    /// HTTPS sinks: `tls = { ca, cert, key }`, a CA to trust beside the system's roots and a
    /// client certificate to present (mutual TLS). A broker sink's TLS settings travel with
    /// its address instead ([`Endpoint::tls`](crate::Endpoint::tls)), where its sender
    /// reads them.
    pub tls: Option<ClientTls>,
    /// `ordered = true`: deliver the events of one ordering key (`partitionkey`, else
    /// `source`) strictly in the order the component produced them, one at a time per key.
    pub ordered: bool,
    /// `sequence_gap = "2s"` (with `ordered`): how long an event whose `sequence` extension
    /// skips a number waits for the missing ones before it goes anyway; `None` = the delivery
    /// engine's default (5 s).
    pub sequence_gap: Option<Duration>,
    /// The bounds on this output's queue and dead letters.
    pub limits: QueueLimits,
}

/// CloudEvents content mode for outgoing events: the codec's own type, so what validates is
/// what the bindings write.
pub use cloudevent::ContentMode;

/// `[component.<id>.limits]`: per-component resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deadline for handling one event; default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Linear memory cap per instance; default [`DEFAULT_MEMORY`]. At least
    /// one 64 KiB Wasm page, at most 4 GiB (wasm32).
    pub memory: ByteSize,
    /// Maximum instances handling events at once; default
    /// [`DEFAULT_MAX_CONCURRENCY`]. Excess events wait (or get `429`/are
    /// not acknowledged, depending on the trigger).
    pub max_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
        }
    }
}

/// A file or directory preopened read-only for the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    /// Path on the host, resolved against the manifest directory.
    pub source: PathBuf,
    /// Absolute path the guest sees it at.
    pub destination: String,
}

// ---- Settings the transports take as they are -----------------------------------------------

impl From<&NatsTrigger> for transports::nats::NatsReceiverConfig {
    fn from(t: &NatsTrigger) -> Self {
        transports::nats::NatsReceiverConfig {
            server: t.address.clone(),
            subject: t.subject.clone(),
            queue_group: t.queue_group.clone(),
            jetstream: t
                .jetstream
                .as_ref()
                .map(|j| transports::nats::JetStreamConfig {
                    stream: j.stream.clone(),
                    durable: j.durable.clone(),
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: transports::nats::DEFAULT_MAX_ACK_PENDING,
                }),
        }
    }
}

impl From<&MqttTrigger> for transports::mqtt::MqttReceiverConfig {
    fn from(t: &MqttTrigger) -> Self {
        transports::mqtt::MqttReceiverConfig {
            broker: t.address.clone(),
            topic: t.topic.clone(),
            qos: t.qos,
            version: t.protocol,
            persistent_session: t.persistent_session,
            client_id: t.client_id.clone(),
        }
    }
}

impl From<&AmqpTrigger> for transports::amqp::AmqpReceiverConfig {
    fn from(t: &AmqpTrigger) -> Self {
        transports::amqp::AmqpReceiverConfig {
            broker: t.address.clone(),
            source: t.source.clone(),
            credentials: None,
        }
    }
}

impl From<&KafkaTrigger> for transports::kafka::KafkaReceiverConfig {
    fn from(t: &KafkaTrigger) -> Self {
        transports::kafka::KafkaReceiverConfig::for_group(
            t.brokers.clone(),
            t.topic.clone(),
            t.group.clone(),
        )
    }
}

impl From<&Output> for transports::SendOptions {
    /// The options a manifest output implies: its content mode and event format, defaults
    /// for the rest.
    fn from(output: &Output) -> Self {
        transports::SendOptions {
            format: output.format,
            ..transports::SendOptions::with_mode(output.mode)
        }
    }
}
