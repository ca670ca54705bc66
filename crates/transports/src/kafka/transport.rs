//! The Kafka transport's rules: its schemes, its sink URIs, its Subscriptions API settings
//! (`ApacheKafkaSettings`) and how a sender is opened.

use std::fmt;

use cloudevent::kafka::KeyMapping;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::KafkaSender;
use crate::endpoint::Endpoint;
use crate::registry::{ConnectFuture, Scheme, SettingsRequest, Transport};
use crate::sink::{self, Sink, SinkError};
use crate::{SendOptions, Sender};

/// Apache Kafka (and the protocol's other brokers).
pub struct Kafka;

/// `kafka` and its TLS twin `kafka+tls` (Kafka's `SSL` security protocol).
const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "kafka",
        tls: false,
        default_port: 9092,
    },
    Scheme {
        name: "kafka+tls",
        tls: true,
        default_port: 9093,
    },
];

/// The Subscriptions API's `ApacheKafkaSettings`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KafkaSettings {
    #[serde(alias = "topicName")]
    topicname: Option<String>,
    #[serde(alias = "partitionKeyExtractor")]
    partitionkeyextractor: Option<String>,
    #[serde(alias = "clientId")]
    clientid: Option<String>,
    #[serde(alias = "ackMode")]
    ackmode: Option<i64>,
    /// The prose spec's `acks` (a string); the OpenAPI's is `ackmode`.
    acks: Option<String>,
}

impl Transport for Kafka {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn schemes(&self) -> &'static [Scheme] {
        SCHEMES
    }

    fn api_protocols(&self) -> &'static [&'static str] {
        &["KAFKA"]
    }

    fn example_sink(&self) -> &'static str {
        "kafka://127.0.0.1:9092/orders"
    }

    fn parse_sink(&self, url: &Url, broker: Endpoint) -> Result<Sink, SinkError> {
        sink::no_query(url)?;
        let topic = sink::path_rest(url, "topic")?;
        check_topic(&topic).map_err(SinkError::Invalid)?;
        Ok(Sink::Kafka { broker, topic })
    }

    fn write_sink(&self, sink: &Sink, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Sink::Kafka { broker, topic } = sink else {
            return Err(fmt::Error);
        };
        let scheme = sink::scheme_for(SCHEMES, broker);
        write!(f, "{scheme}://{broker}/{topic}")
    }

    fn api_protocol(&self, _: &Sink) -> &'static str {
        "KAFKA"
    }

    fn destination<'s>(&self, sink: &'s Sink) -> &'s str {
        match sink {
            Sink::Kafka { topic, .. } => topic,
            _ => "",
        }
    }

    fn destination_noun(&self) -> &'static str {
        "topic"
    }

    fn destination_setting(&self) -> &'static str {
        "topicname"
    }

    fn subscription_sink(
        &self,
        request: SettingsRequest<'_>,
        options: &mut SendOptions,
    ) -> Result<Sink, String> {
        let settings: KafkaSettings = sink::settings(&request)?;
        // Subscriptions 3.2.2.4: `clientid` and `acks` SHOULD be supported. The client id is
        // the producer's `client.id`; `acks` can only be what at-least-once delivery needs,
        // the acknowledgement of all in-sync replicas.
        if settings.clientid.as_deref() == Some("") {
            return Err("protocolsettings.clientid must not be empty".into());
        }
        options.kafka_client_id = settings.clientid;
        match settings.acks.as_deref() {
            None | Some("all") | Some("-1") => {}
            Some(other) => {
                return Err(format!(
                    "protocolsettings.acks \"{other}\" is not supported: records are always \
                     acknowledged by all in-sync replicas (\"all\", \"-1\"), as at-least-once \
                     delivery needs"
                ));
            }
        }
        match settings.ackmode {
            None | Some(-1) => {}
            Some(other) => {
                return Err(format!(
                    "protocolsettings.ackmode {other} is not supported: records are always \
                     acknowledged by all in-sync replicas (acks=all, -1), as at-least-once \
                     delivery needs"
                ));
            }
        }
        options.kafka_keys = match settings.partitionkeyextractor.as_deref() {
            None | Some("") | Some("partitionkey") => KeyMapping::PartitionKey,
            Some("none") => KeyMapping::None,
            Some(other) => {
                return Err(format!(
                    "protocolsettings.partitionkeyextractor \"{other}\" is not supported \
                     (\"partitionkey\" keys records by the event's `partitionkey` extension, \
                     the default; \"none\" leaves them unkeyed)"
                ));
            }
        };
        sink::destination(self, request.url, settings.topicname)
    }

    fn registry_endpoint(&self, sink: &Sink) -> (&'static str, Value) {
        let Sink::Kafka { broker, topic } = sink else {
            return ("KAFKA", Value::Null);
        };
        (
            "KAFKA",
            json!({ "endpoints": [{ "uri": self.endpoint_uri(broker) }], "topic": topic }),
        )
    }

    fn connect<'a>(&'a self, sink: &'a Sink, options: SendOptions) -> ConnectFuture<'a> {
        Box::pin(async move {
            let Sink::Kafka { broker, topic } = sink else {
                return Err(crate::ConnectError::Unsupported(sink.scheme().to_owned()));
            };
            Ok(Sender::Kafka(
                KafkaSender::connect_as(
                    std::slice::from_ref(broker),
                    topic,
                    options.mode,
                    options.kafka_keys,
                    options.kafka_client_id.as_deref(),
                )
                .await?
                .in_format(options.format),
            ))
        })
    }
}

/// A Kafka topic name as the broker accepts it: 1–249 characters from
/// `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn check_topic(topic: &str) -> Result<(), String> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid Kafka topic \"{topic}\": use 1-249 characters from letters, digits, '.', '_' and '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topics() {
        assert!(check_topic("orders.v1_x-y").is_ok());
        assert!(check_topic("orders/x").is_err());
        assert!(check_topic("..").is_err());
        assert!(check_topic(&"a".repeat(250)).is_err());
    }
}
