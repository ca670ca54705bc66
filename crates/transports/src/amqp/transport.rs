//! The AMQP 1.0 transport's rules: its schemes, its sink URIs (RabbitMQ-style addresses),
//! its Subscriptions API settings (`AMQPSettings`) and how a sender is opened.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::AmqpSender;
use crate::endpoint::Endpoint;
use crate::registry::{ConnectFuture, Scheme, SettingsRequest, Transport};
use crate::sink::{self, Sink, SinkError};
use crate::{SendOptions, Sender};

/// AMQP 1.0.
pub struct Amqp;

/// `amqp` and its TLS twin `amqps`.
const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "amqp",
        tls: false,
        default_port: 5672,
    },
    Scheme {
        name: "amqps",
        tls: true,
        default_port: 5671,
    },
];

/// The Subscriptions API's `AMQPSettings`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AmqpSettings {
    address: Option<String>,
    #[serde(rename = "linkName", alias = "linkname")]
    link_name: Option<String>,
    #[serde(alias = "senderSettlementMode")]
    sendersettlementmode: Option<String>,
    #[serde(rename = "linkProperties", alias = "linkproperties")]
    link_properties: Option<Map<String, Value>>,
}

impl Transport for Amqp {
    fn name(&self) -> &'static str {
        "amqp"
    }

    fn schemes(&self) -> &'static [Scheme] {
        SCHEMES
    }

    fn api_protocols(&self) -> &'static [&'static str] {
        &["AMQP"]
    }

    /// SASL PLAIN, RabbitMQ's default.
    fn takes_plain_credentials(&self) -> bool {
        true
    }

    fn example_sink(&self) -> &'static str {
        "amqp://127.0.0.1:5672/queue/orders"
    }

    fn parse_sink(&self, url: &Url, broker: Endpoint) -> Result<Sink, SinkError> {
        sink::no_query(url)?;
        let address = url.path().to_owned();
        check_address(&address).map_err(SinkError::Invalid)?;
        Ok(Sink::Amqp { broker, address })
    }

    fn write_sink(&self, sink: &Sink, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Sink::Amqp { broker, address } = sink else {
            return Err(fmt::Error);
        };
        let scheme = sink::scheme_for(SCHEMES, broker);
        write!(f, "{scheme}://{broker}{address}")
    }

    fn api_protocol(&self, _: &Sink) -> &'static str {
        "AMQP"
    }

    fn destination<'s>(&self, sink: &'s Sink) -> &'s str {
        match sink {
            Sink::Amqp { address, .. } => address,
            _ => "",
        }
    }

    fn destination_noun(&self) -> &'static str {
        "address"
    }

    fn destination_setting(&self) -> &'static str {
        "address"
    }

    /// AMQP addresses are paths already: `/queue/NAME`, taken as the URI's path as is.
    fn destination_path(&self, address: &str) -> Result<String, String> {
        if !address.starts_with('/') {
            return Err(format!(
                "protocolsettings.address \"{address}\" is not an address Spindle can send to \
                 (expected /queue/NAME, /exchange/NAME or /exchange/NAME/ROUTING_KEY)"
            ));
        }
        Ok(percent_encoding::utf8_percent_encode(address, sink::PATH_ESCAPES).to_string())
    }

    fn subscription_sink(
        &self,
        request: SettingsRequest<'_>,
        options: &mut SendOptions,
    ) -> Result<Sink, String> {
        let settings: AmqpSettings = sink::settings(&request)?;
        // Subscriptions 3.2.2.3: `linkName` and `linkProperties` SHOULD be supported. Each
        // sink has its own connection, so a given name stays unique on it.
        if settings.link_name.as_deref() == Some("") {
            return Err("protocolsettings.linkName must not be empty".into());
        }
        options.amqp_link.name = settings.link_name;
        for (name, value) in settings.link_properties.unwrap_or_default() {
            let Value::String(value) = value else {
                return Err(format!(
                    "protocolsettings.linkProperties.{name} must be a string"
                ));
            };
            options.amqp_link.properties.push((name, value));
        }
        match settings.sendersettlementmode.as_deref() {
            None | Some("unsettled") => {}
            Some("settled") => {
                return Err("protocolsettings.sendersettlementmode \"settled\" is not \
                            supported: delivery is at-least-once, so every message waits for \
                            the broker's outcome (\"unsettled\")"
                    .into());
            }
            Some(other) => {
                return Err(format!(
                    "protocolsettings.sendersettlementmode \"{other}\" is not \"settled\" or \
                     \"unsettled\""
                ));
            }
        }
        sink::destination(self, request.url, settings.address)
    }

    fn registry_endpoint(&self, sink: &Sink) -> (&'static str, Value) {
        let Sink::Amqp { broker, address } = sink else {
            return ("AMQP/1.0", Value::Null);
        };
        (
            "AMQP/1.0",
            json!({ "endpoints": [{ "uri": self.endpoint_uri(broker) }], "node": address }),
        )
    }

    fn connect<'a>(&'a self, sink: &'a Sink, options: SendOptions) -> ConnectFuture<'a> {
        Box::pin(async move {
            let Sink::Amqp { broker, address } = sink else {
                return Err(crate::ConnectError::Unsupported(sink.scheme().to_owned()));
            };
            Ok(Sender::Amqp(
                AmqpSender::connect_with(
                    broker,
                    address,
                    options.amqp_credentials,
                    options.mode,
                    options.amqp_link,
                )
                .await?
                .in_format(options.format),
            ))
        })
    }
}

/// A target address Spindle can send to: `/queue/NAME`, `/exchange/NAME` or
/// `/exchange/NAME/ROUTING_KEY` (RabbitMQ's AMQP 1.0 addressing).
pub fn check_address(address: &str) -> Result<(), String> {
    let segments: Vec<&str> = address.strip_prefix('/').unwrap_or("").split('/').collect();
    let ok = match segments.as_slice() {
        ["queue", name] => !name.is_empty(),
        ["exchange", name] => !name.is_empty(),
        ["exchange", name, key] => !name.is_empty() && !key.is_empty(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid AMQP address \"{address}\" (expected /queue/NAME, /exchange/NAME or /exchange/NAME/ROUTING_KEY)"
        ))
    }
}
