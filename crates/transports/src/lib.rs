//! # spindle-transports
//!
//! The broker edges of Spindle (layer 5 of the design): connect to NATS, MQTT, AMQP 1.0 and
//! Kafka, **receive** decoded CloudEvents each with the handle that settles it on its broker,
//! and **send** events to sinks (encode with the pure codecs of `spindle-cloudevent`, then
//! publish). Nothing here knows about components, routes or subscriptions: the runtime takes
//! a [`Receiver`], dispatches each [`Delivery`], and settles it with [`AckHandle::ack`],
//! [`AckHandle::nak`] or [`AckHandle::reject`]. A message that is not a CloudEvent is
//! handed over too, whole ([`Delivery::refused`]), for the runtime's dead letters.
//!
//! - [`nats`]: core subjects (queue groups) and JetStream durable pull consumers (async-nats).
//! - [`mqtt`]: MQTT 5 and 3.1.1, QoS 0/1/2, persistent sessions, manual acks (rumqttc).
//! - [`amqp`]: AMQP 1.0 links, outcomes accepted / released / rejected (fe2o3-amqp).
//! - [`kafka`]: consumer groups with offsets stored only after handling (rdkafka).
//! - [`Sender`]: one publisher per sink, built from a manifest [`manifest::Sink`].
//!
//! Brokers are reached over TLS when their address says so (`nats+tls://` or `tls://`,
//! `mqtts://`, `amqps://`, `kafka+tls://`), verified against the system's roots
//! (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them) plus the CA of the endpoint's own
//! [`manifest::ClientTls`], presenting its client certificate when the broker asks (mutual
//! TLS). rustls everywhere except Kafka, whose TLS is librdkafka's (OpenSSL). A refused
//! certificate is a [`ConnectError::Certificate`], which retrying cannot fix.
//!
//! Every receiver and sender reconnects on its own after a broker restart (the client
//! crates' reconnect where they have one, a capped exponential [`backoff`] otherwise) and
//! logs what happened with `tracing`.

#![warn(missing_docs)]

pub mod amqp;
pub mod backoff;
mod delivery;
mod error;
pub mod kafka;
pub mod mqtt;
pub mod nats;
mod sender;
mod tls;

pub use cloudevent::nats::Mode;
pub use delivery::{
    AckError, AckHandle, ConnectionProbe, Delivery, Outcome, Receiver, UNDECODABLE_TYPE,
};
pub use error::{ConnectError, SendError};
pub use sender::{SendOptions, Sender};
