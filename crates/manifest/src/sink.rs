//! Output binding targets ("sinks"), written as URIs: the transports' own type.
//!
//! A sink URI is parsed by the transport its scheme names (`spindle-transports`), so a sink
//! the manifest accepts is one the delivery engine can publish to: one grammar, one owner.
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

pub use transports::sink::{PATH_ESCAPES, Sink, SinkError, sink_schemes};
pub use transports::{ClientTls, Endpoint};
