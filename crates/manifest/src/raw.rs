//! The serde layer: `spindle.toml` exactly as written, with spans.
//!
//! These types only enforce TOML *shape* (known keys, value types). Every
//! semantic rule lives in `validate`, which turns them into the public model.
//! Values that need a semantic check keep their [`Spanned`] position so the
//! validator can report the line.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::model::{ContentMode, HttpExecutor};

pub(crate) type Str = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub spindle_manifest_version: Option<Spanned<i64>>,
    pub application: Option<Spanned<RawApplication>>,
    #[serde(default)]
    pub trigger: RawTriggers,
    #[serde(default)]
    pub component: BTreeMap<Str, Spanned<RawComponent>>,
    #[serde(default)]
    pub key_value_store: BTreeMap<Str, Spanned<RawKeyValueStore>>,
    #[serde(default)]
    pub subscribe: Vec<Spanned<RawSubscribe>>,
}

/// `[[subscribe]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubscribe {
    pub registry: Option<Str>,
    pub api: Option<Str>,
    pub route: Str,
    #[serde(default)]
    pub types: Vec<Str>,
    pub source: Option<Str>,
    pub filter: Option<Str>,
    pub token: Option<Spanned<StrOr<RawSecretTable>>>,
    pub refresh: Option<Str>,
}

/// `[key_value_store.<label>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeyValueStore {
    #[serde(rename = "type")]
    pub ty: Str,
    pub url: Option<Spanned<StrOr<RawSecretTable>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApplication {
    pub name: Str,
    pub version: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    pub http: Option<RawHttpIngress>,
    pub admin: Option<RawAdmin>,
    pub egress: Option<RawEgress>,
    pub max_hops: Option<Spanned<i64>>,
    pub telemetry: Option<RawTelemetry>,
    pub store: Option<RawQueueLimits>,
    pub public_url: Option<Str>,
    pub cluster: Option<RawCluster>,
}

/// `[application.cluster]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub nats: Str,
    pub replicas: Option<Spanned<i64>>,
}

/// `[application.store]`, and the same bounds in an output's table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueueLimits {
    pub max_queued_events: Option<Spanned<i64>>,
    pub max_queued_bytes: Option<Spanned<StrOrInt>>,
    pub max_dead_letters: Option<Spanned<i64>>,
}

/// `[application.telemetry]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    pub otlp: Option<Str>,
}

/// `[application.egress]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEgress {
    #[serde(default)]
    pub allow: Vec<Str>,
    #[serde(default)]
    pub deny: Vec<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpIngress {
    pub max_body_size: Option<Spanned<StrOrInt>>,
    #[serde(default)]
    pub allowed_origins: Vec<Str>,
    pub allowed_rate: Option<Spanned<i64>>,
    pub auth_token: Option<Spanned<StrOr<RawSecretTable>>>,
    pub header_timeout: Option<Str>,
    pub body_timeout: Option<Str>,
    pub idle_timeout: Option<Str>,
    pub max_connections: Option<Spanned<i64>>,
    pub tls: Option<Spanned<RawTls>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub listen: Option<Str>,
    pub token: Option<Spanned<StrOr<RawSecretTable>>>,
    pub header_timeout: Option<Str>,
    pub body_timeout: Option<Str>,
    pub idle_timeout: Option<Str>,
    pub max_connections: Option<Spanned<i64>>,
    pub tls: Option<Spanned<RawTls>>,
}

/// `tls = { cert = "...", key = "..." }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub cert: Str,
    pub key: Str,
}

/// `{ env = "VAR" }` or `{ file = "path" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecretTable {
    pub env: Option<Str>,
    pub file: Option<Str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTriggers {
    #[serde(default)]
    pub http: Vec<Spanned<RawHttpTrigger>>,
    #[serde(default)]
    pub nats: Vec<Spanned<RawNatsTrigger>>,
    #[serde(default)]
    pub mqtt: Vec<Spanned<RawMqttTrigger>>,
    #[serde(default)]
    pub amqp: Vec<Spanned<RawAmqpTrigger>>,
    #[serde(default)]
    pub kafka: Vec<Spanned<RawKafkaTrigger>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpTrigger {
    pub route: Str,
    pub component: Option<Str>,
    #[serde(default)]
    pub executor: HttpExecutor,
    pub binder: Option<Str>,
    pub dedup_window: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNatsTrigger {
    pub address: Option<Str>,
    pub subject: Str,
    pub queue_group: Option<Str>,
    pub jetstream: Option<RawJetStream>,
    pub component: Str,
    pub max_deliveries: Option<Spanned<i64>>,
    pub tls: Option<Spanned<RawClientTls>>,
    pub dedup_window: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJetStream {
    pub stream: Str,
    pub durable: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMqttTrigger {
    pub address: Option<Str>,
    pub topic: Str,
    pub qos: Option<Spanned<i64>>,
    pub protocol: Option<Str>,
    pub persistent_session: Option<Spanned<bool>>,
    pub client_id: Option<Str>,
    pub component: Str,
    pub max_deliveries: Option<Spanned<i64>>,
    pub tls: Option<Spanned<RawClientTls>>,
    pub dedup_window: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAmqpTrigger {
    pub address: Option<Str>,
    pub source: Str,
    pub component: Str,
    pub max_deliveries: Option<Spanned<i64>>,
    pub tls: Option<Spanned<RawClientTls>>,
    pub dedup_window: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKafkaTrigger {
    pub brokers: Option<Spanned<Vec<Str>>>,
    pub topic: Str,
    pub group: Option<Str>,
    pub component: Str,
    pub max_deliveries: Option<Spanned<i64>>,
    pub tls: Option<Spanned<RawKafkaTls>>,
    pub dedup_window: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawComponent {
    pub source: Str,
    pub description: Option<String>,
    pub build: Option<RawBuild>,
    #[serde(default)]
    pub outputs: BTreeMap<Str, Spanned<StrOr<RawOutputTable>>>,
    pub limits: Option<RawLimits>,
    #[serde(default)]
    pub variables: BTreeMap<Str, Spanned<StrOr<RawSecretTable>>>,
    #[serde(default)]
    pub files: Vec<Spanned<StrOr<RawFileMount>>>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<Str>,
    #[serde(default)]
    pub environment: BTreeMap<Str, String>,
    #[serde(default)]
    pub key_value_stores: Vec<Str>,
    #[serde(default)]
    pub consumes: Vec<Spanned<StrOr<RawMessageDecl>>>,
    #[serde(default)]
    pub produces: Vec<Spanned<StrOr<RawMessageDecl>>>,
}

/// One `consumes`/`produces` entry written as a table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMessageDecl {
    #[serde(rename = "type")]
    pub ty: Str,
    pub dataschema: Option<Str>,
    pub datacontenttype: Option<Str>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBuild {
    pub command: Spanned<OneOrMany>,
    pub workdir: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutputTable {
    pub uri: Str,
    pub mode: Option<ContentMode>,
    pub format: Option<Str>,
    #[serde(default)]
    pub headers: BTreeMap<Str, String>,
    pub webhook_origin: Option<Str>,
    pub tls: Option<Spanned<RawClientTls>>,
    #[serde(default)]
    pub ordered: bool,
    pub sequence_gap: Option<Str>,
    pub max_queued_events: Option<Spanned<i64>>,
    pub max_queued_bytes: Option<Spanned<StrOrInt>>,
    pub max_dead_letters: Option<Spanned<i64>>,
    pub dead_letter_retention: Option<Str>,
}

/// A Kafka trigger's `tls`: `true` (the system's roots) or the settings table. Kafka
/// brokers are listed as `host:port` without a scheme, so TLS is switched on here.
#[derive(Debug)]
pub(crate) enum RawKafkaTls {
    On(bool),
    Settings(RawClientTls),
}

impl<'de> Deserialize<'de> for RawKafkaTls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawKafkaTls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table { ca, cert, key }")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawKafkaTls, E> {
                Ok(RawKafkaTls::On(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawKafkaTls, A::Error> {
                RawClientTls::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawKafkaTls::Settings)
            }
        }
        d.deserialize_any(V)
    }
}

/// `tls = { ca = "...", cert = "...", key = "..." }` on an HTTPS or broker output, or on a
/// broker trigger
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientTls {
    pub ca: Option<Str>,
    pub cert: Option<Str>,
    pub key: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub timeout: Option<Str>,
    pub memory: Option<Spanned<StrOrInt>>,
    pub max_concurrency: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileMount {
    pub source: Str,
    pub destination: Str,
}

/// A size written as a string (`"64MiB"`) or an integer number of bytes.
#[derive(Debug)]
pub(crate) enum StrOrInt {
    Str(String),
    Int(i64),
}

impl<'de> Deserialize<'de> for StrOrInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StrOrInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64MiB\" or an integer number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrOrInt, E> {
                Ok(StrOrInt::Str(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StrOrInt, E> {
                Ok(StrOrInt::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrOrInt, E> {
                Ok(StrOrInt::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written either as a plain string or as a table `T`
/// (e.g. an output `"nats://..."` or `{ uri = "nats://...", mode = "structured" }`).
#[derive(Debug)]
pub(crate) enum StrOr<T> {
    Str(String),
    Table(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StrOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = StrOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrOr<T>, E> {
                Ok(StrOr::Str(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StrOr<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOr::Table)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A build command: one string or a list of strings.
#[derive(Debug)]
pub(crate) struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command string or a list of command strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}
