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
//! - [`Sender`]: one publisher per [`Sink`], opened by the sink's transport.
//! - [`registry`]: the [`Transport`] of each protocol, found by URI scheme or Subscriptions
//!   API protocol; [`Sink`] (what a sink URI means) and [`Endpoint`] are the types the
//!   manifest and the delivery engine take from here, so a URI that validates is one its
//!   transport can publish to.
//!
//! ## One protocol, one module
//!
//! Each protocol's module (`nats/`, `mqtt/`, `amqp/`, `kafka/`) owns everything about it: the
//! receiver (`receive`, its `*ReceiverConfig`, the type a manifest trigger parses into), the
//! sender, and in its `transport.rs` the [`Transport`] implementation: URI schemes and
//! default ports, the sink URI grammar, the Subscriptions API `protocolsettings` (a typed,
//! `deny_unknown_fields` struct), the xRegistry endpoint description, and how a sender is
//! opened. Nothing outside the module matches on what the protocol's settings mean.
//!
//! Adding a protocol `foo`:
//! 1. `src/foo/mod.rs`: `receive(FooReceiverConfig) -> Receiver` (each [`Delivery`] with an
//!    [`AckHandle`]) and a `FooSender` with `send(&Event)`; decode and encode with the pure
//!    codecs of `spindle-cloudevent` (add the binding there first). `FooReceiverConfig`
//!    implements [`registry::Source`] (its label, and `receive`), through which the runtime
//!    starts every broker trigger.
//! 2. `src/foo/transport.rs`: `pub struct Foo;` and `impl Transport for Foo`.
//! 3. Register it: one line in [`registry::TRANSPORTS`]. Its sink variant goes in [`Sink`]
//!    (with its arm in [`Sink::transport`]) and its publisher in [`Sender`]: both enums live
//!    in this crate. With that, the manifest parses `foo://` outputs, the Subscriptions API
//!    accepts them for the transport's protocols and stores them, the delivery engine
//!    delivers to them and the xRegistry document lists them, without a change elsewhere
//!    (`crates/runtime/tests/transport_registry.rs` checks every registered scheme that way).
//! 4. Triggers: a `[[trigger.foo]]` table in `spindle-manifest` (its raw TOML struct, its
//!    line-accurate validation, and `From<&FooTrigger> for FooReceiverConfig`), listed in
//!    `Triggers::brokers`. The Subscriptions API's `protocol` values are the spec's closed
//!    list (`delivery::Protocol`): a protocol beyond them is reached by its sink scheme.
//! 5. Test it against a real broker (`tests/foo.rs`, started by `scripts/services.sh`).
//!
//! Brokers are reached over TLS when their address says so (`nats+tls://` or `tls://`,
//! `mqtts://`, `amqps://`, `kafka+tls://`), verified against the system's roots
//! (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them) plus the CA of the endpoint's own
//! [`ClientTls`], presenting its client certificate when the broker asks (mutual
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
mod endpoint;
mod error;
pub mod kafka;
pub mod mqtt;
pub mod nats;
pub mod registry;
mod sender;
pub mod sink;
mod tls;

pub use cloudevent::nats::Mode;
pub use delivery::{
    AckError, AckHandle, ConnectionProbe, Delivery, Outcome, Receiver, UNDECODABLE_TYPE,
};
pub use endpoint::{ClientTls, Endpoint};
pub use error::{ConnectError, SendError};
pub use registry::Transport;
pub use sender::{SendOptions, Sender};
pub use sink::{Sink, SinkError};
