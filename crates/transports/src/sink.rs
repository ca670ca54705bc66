//! Output binding targets ("sinks"), written as URIs and parsed by the transport their
//! scheme names.
//!
//! One URI per output keeps the manifest compact and familiar (it is how people already
//! write broker addresses), while parsing it into a [`Sink`] up front means a typo is
//! reported when the manifest is loaded instead of when the first event is emitted at 3 a.m.
//! The grammar of each broker scheme lives in its transport's module (see
//! [`crate::registry`]); HTTP sinks are any absolute `http`/`https` URL.

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::endpoint::{ClientTls, Endpoint};
use crate::mqtt::{MqttVersion, Qos};
use crate::registry::{self, SettingsRequest, Transport};

/// Every sink URI scheme: `http` and `https`, then each transport's, in
/// [`registry::TRANSPORTS`] order.
pub fn sink_schemes() -> Vec<&'static str> {
    ["http", "https"]
        .into_iter()
        .chain(registry::broker_schemes())
        .collect()
}

/// Why a sink URI was rejected. The manifest wraps this as
/// `invalid sink URI "<uri>": <this>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The text is not a URI at all.
    #[error("not a valid URI ({0})")]
    Syntax(String),
    /// A scheme without a sink implementation.
    #[error("unsupported scheme \"{0}\" (expected {expected})", expected = sink_schemes().join(", "))]
    UnsupportedScheme(String),
    /// Brokers and HTTP endpoints are always reached by host.
    #[error("missing host (expected e.g. \"{0}\")")]
    MissingHost(&'static str),
    /// Secrets do not belong in a manifest that is committed to git.
    #[error("credentials in the URI are not supported (keep secrets out of spindle.toml)")]
    Credentials,
    /// The path, query or fragment does not fit the scheme.
    #[error("{0}")]
    Invalid(String),
}

/// Where an output binding delivers events, parsed per scheme.
///
/// Each variant carries exactly what its transport needs, so senders never re-parse
/// strings. What a variant means (its URI grammar, its settings, how it is published to)
/// is its transport's business: [`Sink::transport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// POST the event to an HTTP(S) endpoint (CloudEvents HTTP binding).
    Http {
        /// The full target URL, including path and query.
        url: Url,
    },
    /// Publish to a NATS subject (no wildcards): [`crate::nats`].
    Nats {
        /// NATS server.
        server: Endpoint,
        /// Concrete subject, e.g. `orders.created`.
        subject: String,
        /// `?jetstream=true`: publish through JetStream and count an event as delivered only
        /// once a stream has stored it (its publish acknowledgement). Without it, core NATS:
        /// delivered once the server has the message, whoever listens.
        jetstream: bool,
    },
    /// Publish to an MQTT topic: [`crate::mqtt`].
    Mqtt {
        /// MQTT broker.
        broker: Endpoint,
        /// Concrete topic (no `+`/`#`), e.g. `sensors/1/temp`.
        topic: String,
        /// Delivery guarantee, `?qos=` (default 1).
        qos: Qos,
        /// Protocol version, `?version=` (default 5). Binary content mode
        /// needs MQTT 5 user properties.
        version: MqttVersion,
        /// Whether the broker should retain the message, `?retain=` (default false).
        retain: bool,
    },
    /// Send to an AMQP 1.0 target address: [`crate::amqp`].
    Amqp {
        /// AMQP broker.
        broker: Endpoint,
        /// Target address, `/queue/NAME`, `/exchange/NAME` or
        /// `/exchange/NAME/ROUTING_KEY` (RabbitMQ-style addressing).
        address: String,
    },
    /// Produce to a Kafka topic: [`crate::kafka`].
    Kafka {
        /// Bootstrap broker.
        broker: Endpoint,
        /// Topic name.
        topic: String,
    },
}

impl Sink {
    /// The transport that publishes to this sink; `None` for HTTP, which the delivery
    /// engine's webhook sink serves.
    pub fn transport(&self) -> Option<&'static dyn Transport> {
        Some(match self {
            Sink::Http { .. } => return None,
            Sink::Nats { .. } => &crate::nats::Nats,
            Sink::Mqtt { .. } => &crate::mqtt::Mqtt,
            Sink::Amqp { .. } => &crate::amqp::Amqp,
            Sink::Kafka { .. } => &crate::kafka::Kafka,
        })
    }

    /// The URI scheme this sink was written with, its TLS twin folded into the plain one
    /// (`mqtts` → `mqtt`), for logs and metrics.
    pub fn scheme(&self) -> &str {
        match (self, self.transport()) {
            (Sink::Http { url }, _) => url.scheme(),
            (_, Some(transport)) => transport.name(),
            (_, None) => "",
        }
    }

    /// The broker endpoint a broker sink connects to (none for HTTP).
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            Sink::Http { .. } => None,
            Sink::Nats { server, .. } => Some(server),
            Sink::Mqtt { broker, .. } | Sink::Amqp { broker, .. } | Sink::Kafka { broker, .. } => {
                Some(broker)
            }
        }
    }

    /// The broker endpoint, mutable, e.g. to attach the TLS settings an output declares.
    pub fn endpoint_mut(&mut self) -> Option<&mut Endpoint> {
        match self {
            Sink::Http { .. } => None,
            Sink::Nats { server, .. } => Some(server),
            Sink::Mqtt { broker, .. } | Sink::Amqp { broker, .. } | Sink::Kafka { broker, .. } => {
                Some(broker)
            }
        }
    }

    /// The Subscriptions API `protocol` value this sink is delivered with (`HTTP`, `MQTT3`).
    pub fn api_protocol(&self) -> &'static str {
        match self.transport() {
            Some(transport) => transport.api_protocol(self),
            None => "HTTP",
        }
    }
}

impl FromStr for Sink {
    type Err = SinkError;

    /// Parses a sink URI: the checks every scheme shares here, the rest in the transport
    /// the scheme names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = Url::parse(s).map_err(|e| SinkError::Syntax(e.to_string()))?;
        let scheme = url.scheme().to_owned();
        let transport = match scheme.as_str() {
            "http" | "https" => None,
            _ => Some(registry::by_scheme(&scheme).ok_or(SinkError::UnsupportedScheme(scheme))?),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SinkError::Credentials);
        }
        if url.fragment().is_some() {
            let hint = if url.scheme().starts_with("mqtt") {
                " (an MQTT '#' wildcard cannot be published to)"
            } else {
                ""
            };
            return Err(SinkError::Invalid(format!(
                "a fragment ('#...') is not allowed{hint}"
            )));
        }
        let Some((transport, scheme)) = transport else {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(SinkError::MissingHost("https://example.com/events"));
            }
            return Ok(Sink::Http { url });
        };
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err(SinkError::MissingHost(transport.example_sink())),
        };
        let endpoint = Endpoint {
            host,
            port: url.port().unwrap_or(scheme.default_port),
            tls: scheme.tls.then(ClientTls::default),
        };
        transport.parse_sink(&url, endpoint)
    }
}

impl fmt::Display for Sink {
    /// Prints the canonical URI (default ports and parameters spelled out),
    /// which parses back to an equal `Sink`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.transport()) {
            (Sink::Http { url }, _) => f.write_str(url.as_str()),
            (_, Some(transport)) => transport.write_sink(self, f),
            (_, None) => Ok(()),
        }
    }
}

/// The scheme an endpoint is written with: the transport's plain or TLS one.
pub(crate) fn scheme_for(
    schemes: &'static [registry::Scheme],
    endpoint: &Endpoint,
) -> &'static str {
    schemes
        .iter()
        .find(|s| s.tls == endpoint.is_tls())
        .or(schemes.first())
        .map_or("", |s| s.name)
}

/// Characters percent-encoded when a topic, subject or address is put into a sink URI's path:
/// what would otherwise end the path or be read as an escape. `/` stays, since MQTT topics
/// and AMQP addresses are made of levels.
pub const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'#')
    .add(b'?')
    .add(b'%')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

pub(crate) fn bad_param(name: &str, value: &str, expected: &str) -> SinkError {
    SinkError::Invalid(format!("invalid {name} \"{value}\" (expected {expected})"))
}

/// A `true`/`false` query parameter.
pub(crate) fn bool_param(name: &str, value: &str) -> Result<bool, SinkError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        v => Err(bad_param(name, v, "true or false")),
    }
}

/// Refuses a query on a scheme that takes no parameters.
pub(crate) fn no_query(url: &Url) -> Result<(), SinkError> {
    match url.query() {
        Some(q) => Err(SinkError::Invalid(format!(
            "unexpected query \"?{q}\" ({} sinks take no parameters)",
            url.scheme()
        ))),
        None => Ok(()),
    }
}

/// The path without its leading '/', percent-decoded, and required; `what` names it
/// (subject, topic) when it is missing.
pub(crate) fn path_rest(url: &Url, what: &str) -> Result<String, SinkError> {
    let raw = url.path().strip_prefix('/').unwrap_or(url.path());
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| SinkError::Invalid("path is not valid UTF-8 after percent-decoding".into()))?
        .into_owned();
    if decoded.is_empty() {
        return Err(SinkError::Invalid(format!(
            "missing {what}: put it in the path, e.g. \"{}://host:port/orders\"",
            url.scheme()
        )));
    }
    Ok(decoded)
}

/// `protocolsettings` as a transport's settings type (absent or `null`: the defaults).
pub(crate) fn settings<T: serde::de::DeserializeOwned + Default>(
    request: &SettingsRequest<'_>,
) -> Result<T, String> {
    match request.settings {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("protocolsettings: {e} (for protocol {})", request.protocol)),
    }
}

/// The sink of a subscription, taking the destination (subject, topic, address) from the
/// URI's path or from the `protocolsettings` member `from_settings`: one of them must give
/// it, and if both do they must agree.
pub(crate) fn destination(
    transport: &dyn Transport,
    url: &Url,
    from_settings: Option<String>,
) -> Result<Sink, String> {
    let (what, name) = (
        transport.destination_noun(),
        transport.destination_setting(),
    );
    let has_path = !matches!(url.path(), "" | "/");
    let parse = |uri: &str| uri.parse::<Sink>().map_err(|e| e.to_string());
    match from_settings {
        None if !has_path => Err(format!(
            "missing {what}: put it in the sink URI's path or in protocolsettings.{name}"
        )),
        None => parse(url.as_str()),
        Some(wanted) if has_path => {
            let sink = parse(url.as_str())?;
            let in_uri = transport.destination(&sink);
            if in_uri != wanted {
                return Err(format!(
                    "protocolsettings.{name} \"{wanted}\" contradicts \"{in_uri}\" in the \
                     sink URI: give it in one place"
                ));
            }
            Ok(sink)
        }
        Some(wanted) => {
            if wanted.is_empty() {
                return Err(format!("protocolsettings.{name} is empty"));
            }
            let path = transport.destination_path(&wanted)?;
            let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
            let uri = format!("{}{path}{query}", &url[..url::Position::BeforePath]);
            let sink = uri
                .parse::<Sink>()
                .map_err(|e| format!("protocolsettings.{name}: {e}"))?;
            // The URI parser normalizes paths (`a/../b`); a destination must be taken as is.
            if transport.destination(&sink) != wanted {
                return Err(format!(
                    "protocolsettings.{name} \"{wanted}\" is not a valid {name}"
                ));
            }
            Ok(sink)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Sink, SinkError> {
        s.parse()
    }

    fn ep(host: &str, port: u16) -> Endpoint {
        Endpoint::plain(host, port)
    }

    #[test]
    fn http_and_https() {
        let s = parse("http://127.0.0.1:3001/shipping").unwrap();
        assert!(matches!(&s, Sink::Http { url } if url.path() == "/shipping"));
        assert_eq!(s.scheme(), "http");
        assert!(parse("https://example.com/hook?x=1").is_ok());
        assert!(matches!(parse("http://:80/x"), Err(SinkError::Syntax(_))));
    }

    #[test]
    fn unsupported_scheme_lists_alternatives() {
        let e = parse("htp:/x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported scheme \"htp\" (expected http, https, nats, nats+tls, tls, mqtt, mqtts, amqp, amqps, kafka, kafka+tls)"
        );
        assert!(matches!(parse("not a uri"), Err(SinkError::Syntax(_))));
        assert!(matches!(parse(""), Err(SinkError::Syntax(_))));
    }

    #[test]
    fn nats() {
        assert_eq!(
            parse("nats://127.0.0.1:4222/audit").unwrap(),
            Sink::Nats {
                server: ep("127.0.0.1", 4222),
                subject: "audit".into(),
                jetstream: false,
            }
        );
        assert_eq!(
            parse("nats://broker/orders.created").unwrap(),
            Sink::Nats {
                server: ep("broker", 4222),
                subject: "orders.created".into(),
                jetstream: false,
            }
        );
        assert_eq!(
            parse("nats://broker/orders.created?jetstream=true").unwrap(),
            Sink::Nats {
                server: ep("broker", 4222),
                subject: "orders.created".into(),
                jetstream: true,
            }
        );
        assert!(
            parse("nats://broker/a?jetstream=yes")
                .unwrap_err()
                .to_string()
                .contains("invalid jetstream \"yes\" (expected true or false)")
        );
        assert!(
            parse("nats://broker/")
                .unwrap_err()
                .to_string()
                .contains("missing subject")
        );
        assert!(parse("nats://broker/orders.*").is_err());
        assert!(
            parse("nats://broker/orders/created")
                .unwrap_err()
                .to_string()
                .contains("orders.created")
        );
        assert!(parse("nats://broker/a?x=1").is_err());
        assert!(matches!(parse("nats:///a"), Err(SinkError::MissingHost(_))));
        assert_eq!(parse("nats://u:p@broker/a"), Err(SinkError::Credentials));
    }

    #[test]
    fn mqtt() {
        assert_eq!(
            parse("mqtt://127.0.0.1:1883/sensors/1/temp?qos=2&version=3.1.1&retain=true").unwrap(),
            Sink::Mqtt {
                broker: ep("127.0.0.1", 1883),
                topic: "sensors/1/temp".into(),
                qos: Qos::ExactlyOnce,
                version: MqttVersion::V3_1_1,
                retain: true,
            }
        );
        assert_eq!(
            parse("mqtt://b/t%20x").unwrap(),
            Sink::Mqtt {
                broker: ep("b", 1883),
                topic: "t x".into(),
                qos: Qos::AtLeastOnce,
                version: MqttVersion::V5,
                retain: false,
            }
        );
        assert!(
            parse("mqtt://b/t?qos=3")
                .unwrap_err()
                .to_string()
                .contains("invalid qos \"3\"")
        );
        assert!(parse("mqtt://b/t?version=4").is_err());
        assert!(parse("mqtt://b/t?retain=yes").is_err());
        assert!(
            parse("mqtt://b/t?foo=1")
                .unwrap_err()
                .to_string()
                .contains("unknown query parameter")
        );
        assert!(parse("mqtt://b/t/+").is_err());
        assert!(
            parse("mqtt://b/t/#")
                .unwrap_err()
                .to_string()
                .contains("fragment")
        );
        assert!(parse("mqtt://b/%FF").is_err());
    }

    #[test]
    fn tls_schemes_mean_the_same_protocol_over_tls() {
        for (uri, port) in [
            ("nats+tls://b/orders", 4222),
            ("tls://b:4443/orders", 4443),
            ("mqtts://b/orders/x", 8883),
            ("amqps://b/queue/orders", 5671),
            ("kafka+tls://b/orders", 9093),
        ] {
            let mut sink = parse(uri).unwrap();
            let endpoint = sink.endpoint_mut().expect("a broker sink");
            assert!(endpoint.is_tls(), "{uri}");
            assert_eq!(endpoint.port, port, "{uri}");
            assert_eq!(parse(&sink.to_string()).unwrap(), sink, "{uri} round-trips");
        }
        assert!(!match parse("nats://b/o").unwrap() {
            Sink::Nats { server, .. } => server.is_tls(),
            _ => true,
        });
    }

    #[test]
    fn amqp() {
        assert_eq!(
            parse("amqp://127.0.0.1/queue/orders").unwrap(),
            Sink::Amqp {
                broker: ep("127.0.0.1", 5672),
                address: "/queue/orders".into()
            }
        );
        assert!(parse("amqp://h:5673/exchange/events/orders.created").is_ok());
        assert!(parse("amqp://h/exchange/events").is_ok());
        for bad in [
            "amqp://h/orders",
            "amqp://h/queue/",
            "amqp://h/queue/a/b",
            "amqp://h",
            "amqp://h/exchange//k",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kafka() {
        assert_eq!(
            parse("kafka://k:9093/orders").unwrap(),
            Sink::Kafka {
                broker: ep("k", 9093),
                topic: "orders".into()
            }
        );
        assert_eq!(
            parse("kafka://k/orders").unwrap(),
            Sink::Kafka {
                broker: ep("k", 9092),
                topic: "orders".into()
            }
        );
        assert!(parse("kafka://k/a/b").is_err());
        assert!(parse("kafka://k/").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "http://127.0.0.1:3001/shipping",
            "nats://127.0.0.1:4222/audit",
            "nats://[::1]/audit",
            "nats://h/orders.created?jetstream=true",
            "mqtt://b/sensors/a%20b?qos=0",
            "amqp://h/exchange/e/k",
            "kafka://k/orders",
        ] {
            let sink = parse(s).unwrap();
            assert_eq!(parse(&sink.to_string()).unwrap(), sink, "{s} -> {sink}");
        }
    }
}
