//! Output binding targets ("sinks"), written as URIs and parsed per scheme.
//!
//! One URI per output keeps the manifest compact and familiar (it is how
//! people already write broker addresses), while parsing it into a [`Sink`]
//! up front means a typo is reported when the manifest is loaded instead of
//! when the first event is emitted at 3 a.m.
//!
//! | scheme | form | default port |
//! | --- | --- | --- |
//! | `http`, `https` | any absolute URL | 80 / 443 |
//! | `nats` | `nats://host:port/subject[?jetstream=true]` | 4222 |
//! | `mqtt` | `mqtt://host:port/topic/levels?qos=1&version=5&retain=false` | 1883 |
//! | `amqp` | `amqp://host:port/queue/NAME` or `/exchange/NAME[/ROUTING_KEY]` | 5672 |
//! | `kafka` | `kafka://host:port/topic` | 9092 |
//!
//! Each broker scheme has a TLS twin with its own default port: `nats+tls` (or NATS's own
//! `tls`, 4222), `mqtts` (8883), `amqps` (5671) and `kafka+tls` (Kafka's `SSL` security
//! protocol, 9093).

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::model::{ClientTls, MqttVersion, Qos};
use crate::names;

/// The schemes a sink URI may use, in the order they are listed in errors.
pub const SINK_SCHEMES: &[&str] = &[
    "http",
    "https",
    "nats",
    "nats+tls",
    "tls",
    "mqtt",
    "mqtts",
    "amqp",
    "amqps",
    "kafka",
    "kafka+tls",
];

/// Why a sink URI was rejected. The manifest wraps this as
/// `invalid sink URI "<uri>": <this>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The text is not a URI at all.
    #[error("not a valid URI ({0})")]
    Syntax(String),
    /// A scheme without a sink implementation.
    #[error(
        "unsupported scheme \"{0}\" (expected http, https, nats, nats+tls, tls, mqtt, mqtts, amqp, amqps, kafka, kafka+tls)"
    )]
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

/// A broker address: host and port, with the scheme's default port filled in, and whether
/// and how the connection uses TLS (`nats+tls://`, `mqtts://`, `amqps://`, `kafka+tls://`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or IP address; IPv6 addresses keep their brackets so that
    /// `format!("{host}:{port}")` is always a valid authority.
    pub host: String,
    /// Port, defaulted per scheme when the URI leaves it out.
    pub port: u16,
    /// Connect over TLS when set: the broker is verified against the system's roots
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them) plus the settings' own CA, and the
    /// settings' client certificate is presented if the broker asks for one.
    pub tls: Option<ClientTls>,
}

impl Endpoint {
    /// A plain (non-TLS) endpoint.
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
            tls: None,
        }
    }

    /// Whether the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where an output binding delivers events, parsed per scheme.
///
/// Each variant carries exactly what the corresponding transport needs, so
/// sink implementations never re-parse strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// POST the event to an HTTP(S) endpoint (CloudEvents HTTP binding).
    Http {
        /// The full target URL, including path and query.
        url: Url,
    },
    /// Publish to a NATS subject (no wildcards).
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
    /// Publish to an MQTT topic.
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
    /// Send to an AMQP 1.0 target address.
    Amqp {
        /// AMQP broker.
        broker: Endpoint,
        /// Target address, `/queue/NAME`, `/exchange/NAME` or
        /// `/exchange/NAME/ROUTING_KEY` (RabbitMQ-style addressing).
        address: String,
    },
    /// Produce to a Kafka topic.
    Kafka {
        /// Bootstrap broker.
        broker: Endpoint,
        /// Topic name.
        topic: String,
    },
}

impl Sink {
    /// The URI scheme this sink was written with, for logs and metrics.
    pub fn scheme(&self) -> &str {
        match self {
            Sink::Http { url } => url.scheme(),
            Sink::Nats { .. } => "nats",
            Sink::Mqtt { .. } => "mqtt",
            Sink::Amqp { .. } => "amqp",
            Sink::Kafka { .. } => "kafka",
        }
    }

    /// The broker endpoint a broker sink connects to (none for HTTP), e.g. to attach the
    /// TLS settings an output declares.
    pub fn endpoint_mut(&mut self) -> Option<&mut Endpoint> {
        match self {
            Sink::Http { .. } => None,
            Sink::Nats { server, .. } => Some(server),
            Sink::Mqtt { broker, .. } | Sink::Amqp { broker, .. } | Sink::Kafka { broker, .. } => {
                Some(broker)
            }
        }
    }
}

impl FromStr for Sink {
    type Err = SinkError;

    /// Parses a sink URI; see the module docs for the accepted forms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = Url::parse(s).map_err(|e| SinkError::Syntax(e.to_string()))?;
        let scheme = url.scheme().to_owned();
        if !SINK_SCHEMES.contains(&scheme.as_str()) {
            return Err(SinkError::UnsupportedScheme(scheme));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SinkError::Credentials);
        }
        if url.fragment().is_some() {
            let hint = if scheme == "mqtt" {
                " (an MQTT '#' wildcard cannot be published to)"
            } else {
                ""
            };
            return Err(SinkError::Invalid(format!(
                "a fragment ('#...') is not allowed{hint}"
            )));
        }
        match scheme.as_str() {
            "http" | "https" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(SinkError::MissingHost("https://example.com/events"));
                }
                Ok(Sink::Http { url })
            }
            // `tls://` is NATS's own name for a TLS server address.
            "nats" | "nats+tls" | "tls" => {
                let server = endpoint(&url, 4222, "nats://127.0.0.1:4222/orders.created")?;
                let mut jetstream = false;
                for (key, value) in url.query_pairs() {
                    match key.as_ref() {
                        "jetstream" => jetstream = bool_param("jetstream", &value)?,
                        other => {
                            return Err(SinkError::Invalid(format!(
                                "unknown query parameter \"{other}\" (expected jetstream)"
                            )));
                        }
                    }
                }
                let subject = path_rest(&url)?;
                if subject.contains('/') {
                    return Err(SinkError::Invalid(format!(
                        "NATS subjects use '.' not '/': did you mean \"{}\"?",
                        subject.replace('/', ".")
                    )));
                }
                names::check_nats_subject(&subject, false).map_err(SinkError::Invalid)?;
                Ok(Sink::Nats {
                    server,
                    subject,
                    jetstream,
                })
            }
            "mqtt" | "mqtts" => {
                let default_port = if scheme == "mqtts" { 8883 } else { 1883 };
                let broker = endpoint(&url, default_port, "mqtt://127.0.0.1:1883/orders/created")?;
                let topic = path_rest(&url)?;
                names::check_mqtt_topic(&topic, false).map_err(SinkError::Invalid)?;
                let (mut qos, mut version, mut retain) = (Qos::AtLeastOnce, MqttVersion::V5, false);
                for (key, value) in url.query_pairs() {
                    match key.as_ref() {
                        "qos" => {
                            qos = match value.as_ref() {
                                "0" => Qos::AtMostOnce,
                                "1" => Qos::AtLeastOnce,
                                "2" => Qos::ExactlyOnce,
                                v => return Err(bad_param("qos", v, "0, 1 or 2")),
                            }
                        }
                        "version" => {
                            version = match value.as_ref() {
                                "5" => MqttVersion::V5,
                                "3.1.1" => MqttVersion::V3_1_1,
                                v => return Err(bad_param("version", v, "\"3.1.1\" or \"5\"")),
                            }
                        }
                        "retain" => retain = bool_param("retain", &value)?,
                        other => {
                            return Err(SinkError::Invalid(format!(
                                "unknown query parameter \"{other}\" (expected qos, version, retain)"
                            )));
                        }
                    }
                }
                Ok(Sink::Mqtt {
                    broker,
                    topic,
                    qos,
                    version,
                    retain,
                })
            }
            "amqp" | "amqps" => {
                let default_port = if scheme == "amqps" { 5671 } else { 5672 };
                let broker = endpoint(&url, default_port, "amqp://127.0.0.1:5672/queue/orders")?;
                no_query(&url)?;
                let address = url.path().to_owned();
                check_amqp_address(&address)?;
                Ok(Sink::Amqp { broker, address })
            }
            "kafka" | "kafka+tls" => {
                let default_port = if scheme == "kafka+tls" { 9093 } else { 9092 };
                let broker = endpoint(&url, default_port, "kafka://127.0.0.1:9092/orders")?;
                no_query(&url)?;
                let topic = path_rest(&url)?;
                names::check_kafka_topic(&topic).map_err(SinkError::Invalid)?;
                Ok(Sink::Kafka { broker, topic })
            }
            _ => Err(SinkError::UnsupportedScheme(scheme)),
        }
    }
}

impl fmt::Display for Sink {
    /// Prints the canonical URI (default ports and parameters spelled out),
    /// which parses back to an equal `Sink`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Http { url } => f.write_str(url.as_str()),
            Sink::Nats {
                server,
                subject,
                jetstream,
            } => {
                let scheme = if server.is_tls() { "nats+tls" } else { "nats" };
                write!(f, "{scheme}://{server}/{subject}")?;
                if *jetstream {
                    f.write_str("?jetstream=true")?;
                }
                Ok(())
            }
            Sink::Mqtt {
                broker,
                topic,
                qos,
                version,
                retain,
            } => {
                let topic: String =
                    percent_encoding::utf8_percent_encode(topic, PATH_ESCAPES).collect();
                let scheme = if broker.is_tls() { "mqtts" } else { "mqtt" };
                write!(
                    f,
                    "{scheme}://{broker}/{topic}?qos={}&version={}&retain={retain}",
                    *qos as u8,
                    version.as_str()
                )
            }
            Sink::Amqp { broker, address } => {
                let scheme = if broker.is_tls() { "amqps" } else { "amqp" };
                write!(f, "{scheme}://{broker}{address}")
            }
            Sink::Kafka { broker, topic } => {
                let scheme = if broker.is_tls() {
                    "kafka+tls"
                } else {
                    "kafka"
                };
                write!(f, "{scheme}://{broker}/{topic}")
            }
        }
    }
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

fn bad_param(name: &str, value: &str, expected: &str) -> SinkError {
    SinkError::Invalid(format!("invalid {name} \"{value}\" (expected {expected})"))
}

/// A `true`/`false` query parameter.
fn bool_param(name: &str, value: &str) -> Result<bool, SinkError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        v => Err(bad_param(name, v, "true or false")),
    }
}

fn endpoint(url: &Url, default_port: u16, example: &'static str) -> Result<Endpoint, SinkError> {
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.to_owned(),
        _ => return Err(SinkError::MissingHost(example)),
    };
    Ok(Endpoint {
        host,
        port: url.port().unwrap_or(default_port),
        tls: matches!(
            url.scheme(),
            "nats+tls" | "tls" | "mqtts" | "amqps" | "kafka+tls"
        )
        .then(ClientTls::default),
    })
}

fn no_query(url: &Url) -> Result<(), SinkError> {
    match url.query() {
        Some(q) => Err(SinkError::Invalid(format!(
            "unexpected query \"?{q}\" ({} sinks take no parameters)",
            url.scheme()
        ))),
        None => Ok(()),
    }
}

/// The path without its leading '/', percent-decoded, and required.
fn path_rest(url: &Url) -> Result<String, SinkError> {
    let raw = url.path().strip_prefix('/').unwrap_or(url.path());
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| SinkError::Invalid("path is not valid UTF-8 after percent-decoding".into()))?
        .into_owned();
    if decoded.is_empty() {
        let what = match url.scheme() {
            "nats" | "nats+tls" | "tls" => "subject",
            _ => "topic",
        };
        return Err(SinkError::Invalid(format!(
            "missing {what}: put it in the path, e.g. \"{}://host:port/orders\"",
            url.scheme()
        )));
    }
    Ok(decoded)
}

fn check_amqp_address(address: &str) -> Result<(), SinkError> {
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
        Err(SinkError::Invalid(format!(
            "invalid AMQP address \"{address}\" (expected /queue/NAME, /exchange/NAME or /exchange/NAME/ROUTING_KEY)"
        )))
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
