//! The registry of transports: every protocol Spindle speaks, each one module that owns its
//! rules, listed once in [`TRANSPORTS`].
//!
//! Nothing outside a protocol's module knows the protocol's rules: the manifest parses sink
//! URIs through [`Sink::from_str`](std::str::FromStr), which finds the module by the URI's
//! scheme here; the delivery engine turns a subscription's `protocolsettings` into a sink
//! through [`Transport::subscription_sink`]; the Subscriptions API checks a sink's scheme
//! against [`schemes_of_protocol`]; senders are opened with [`Transport::connect`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::endpoint::Endpoint;
use crate::sink::{Sink, SinkError};
use crate::{ConnectError, Receiver, SendOptions, Sender};

/// Every transport, in the order schemes are listed in messages. Adding a protocol adds
/// its module and one line here (see the crate docs for the steps).
pub static TRANSPORTS: &[&dyn Transport] = &[
    &crate::nats::Nats,
    &crate::mqtt::Mqtt,
    &crate::amqp::Amqp,
    &crate::kafka::Kafka,
];

/// One URI scheme of a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// The scheme as written before `://`, lower case.
    pub name: &'static str,
    /// Whether addresses of this scheme are reached over TLS.
    pub tls: bool,
    /// The port an address of this scheme means when it names none.
    pub default_port: u16,
}

/// What the Subscriptions API's `protocolsettings` may change of a sink, and the request
/// they came with: the input of [`Transport::subscription_sink`].
#[derive(Debug, Clone, Copy)]
pub struct SettingsRequest<'a> {
    /// The subscription's sink URI (scheme already matched to the transport).
    pub url: &'a Url,
    /// The subscription's `protocol`, as the API spells it (`MQTT3`).
    pub protocol: &'a str,
    /// The subscription's `protocolsettings` (absent or `null`: the defaults).
    pub settings: Option<&'a Value>,
}

/// One protocol: its URI schemes, its sink URI grammar, its Subscriptions API settings and
/// its sender. Implemented by a unit type in the protocol's module and listed in
/// [`TRANSPORTS`]; receivers are started from the protocol's typed trigger settings
/// (e.g. [`crate::nats::NatsReceiverConfig`]).
pub trait Transport: Sync + 'static {
    /// The protocol's name in logs, metrics and messages: `nats`.
    fn name(&self) -> &'static str;

    /// The sink URI schemes, the plain one first.
    fn schemes(&self) -> &'static [Scheme];

    /// The Subscriptions API `protocol` values delivered through this transport.
    fn api_protocols(&self) -> &'static [&'static str];

    /// Whether a subscription's sink may carry a `PLAIN` sink credential (user name and
    /// password) for this transport.
    fn takes_plain_credentials(&self) -> bool {
        false
    }

    /// A complete sink URI of the plain scheme, shown when one lacks its host.
    fn example_sink(&self) -> &'static str;

    /// Parses a sink URI whose scheme is this transport's, given the broker endpoint it
    /// names (default port and TLS filled in; credentials and fragments already refused).
    fn parse_sink(&self, url: &Url, endpoint: Endpoint) -> Result<Sink, SinkError>;

    /// Writes the canonical URI of one of this transport's sinks (default port and
    /// parameters spelled out), which parses back to an equal sink.
    fn write_sink(&self, sink: &Sink, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// The Subscriptions API `protocol` value a sink of this transport is delivered with.
    fn api_protocol(&self, sink: &Sink) -> &'static str;

    /// The destination as the sink URI's path names it: subject, topic or address.
    fn destination<'s>(&self, sink: &'s Sink) -> &'s str;

    /// What the destination is called in messages: `subject`, `topic`, `address`.
    fn destination_noun(&self) -> &'static str;

    /// The name of the `protocolsettings` member that may carry the destination instead of
    /// the URI's path (`subject`, `topicname`, `address`).
    fn destination_setting(&self) -> &'static str;

    /// The sink URI path that names a destination given in `protocolsettings`: `/` and the
    /// destination, percent-encoded, unless the transport's destinations are paths already.
    fn destination_path(&self, destination: &str) -> Result<String, String> {
        Ok(format!(
            "/{}",
            percent_encoding::utf8_percent_encode(destination, crate::sink::PATH_ESCAPES)
        ))
    }

    /// The sink a subscription delivers to, from its URI and `protocolsettings`, setting
    /// what the settings say about publishing in `options`. Settings this transport cannot
    /// honour are an error (naming the member), never ignored.
    fn subscription_sink(
        &self,
        request: SettingsRequest<'_>,
        options: &mut SendOptions,
    ) -> Result<Sink, String>;

    /// A broker's address as a URI for independent clients (an xRegistry endpoint's `uri`):
    /// `scheme://host:port` with the transport's plain or TLS scheme.
    fn endpoint_uri(&self, endpoint: &Endpoint) -> String {
        let scheme = crate::sink::scheme_for(self.schemes(), endpoint);
        format!("{scheme}://{}:{}", endpoint.host, endpoint.port)
    }

    /// How an xRegistry endpoint describes the sink: its `protocol` and `protocoloptions`.
    fn registry_endpoint(&self, sink: &Sink) -> (&'static str, Value);

    /// Connects a publisher to the sink's broker. Fails when it is unreachable now;
    /// once connected, the sender reconnects on its own.
    fn connect<'a>(&'a self, sink: &'a Sink, options: SendOptions) -> ConnectFuture<'a>;
}

impl fmt::Debug for dyn Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The transport of a sink URI scheme (`mqtts` → MQTT).
pub fn by_scheme(scheme: &str) -> Option<(&'static dyn Transport, Scheme)> {
    TRANSPORTS.iter().find_map(|t| {
        t.schemes()
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(scheme))
            .map(|s| (*t, *s))
    })
}

/// The transport of a Subscriptions API `protocol` value (`MQTT5` → MQTT).
pub fn by_api_protocol(protocol: &str) -> Option<&'static dyn Transport> {
    TRANSPORTS
        .iter()
        .copied()
        .find(|t| t.api_protocols().contains(&protocol))
}

/// Every broker sink scheme, in [`TRANSPORTS`] order.
pub fn broker_schemes() -> impl Iterator<Item = &'static str> {
    TRANSPORTS
        .iter()
        .flat_map(|t| t.schemes().iter().map(|s| s.name))
}

/// The sink URI schemes of a Subscriptions API `protocol` value: `http`/`https` for
/// `HTTP` (the webhook sink, which is not a broker transport), the transport's for the
/// others, none for an unknown protocol.
pub fn schemes_of_protocol(protocol: &str) -> Vec<&'static str> {
    if protocol == "HTTP" {
        return vec!["http", "https"];
    }
    by_api_protocol(protocol)
        .map(|t| t.schemes().iter().map(|s| s.name).collect())
        .unwrap_or_default()
}

/// What [`Transport::connect`] returns: boxed, so transports can be trait objects.
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Sender, ConnectError>> + Send + 'a>>;

/// What [`Source::receive`] returns.
pub type ReceiveFuture = Pin<Box<dyn Future<Output = Result<Receiver, ConnectError>> + Send>>;

/// The receive side of a trigger, whatever its protocol: what a `[[trigger.<protocol>]]`
/// table parses into (each protocol's `*ReceiverConfig`), and all the runtime needs to start
/// it. The runtime starts every broker trigger through this one interface.
pub trait Source: Send + fmt::Debug {
    /// The transport it receives through.
    fn transport(&self) -> &'static dyn Transport;

    /// Where it receives from, for logs and `spindle up`'s listing:
    /// `nats://127.0.0.1:4222 orders.>`.
    fn label(&self) -> String;

    /// Sizes what the broker hands out ahead of settlement to the handler behind it: at
    /// most `max_in_flight` events at once, each settled within `timeout`. Most protocols
    /// need nothing; JetStream sizes its ack wait and pending limit from it.
    fn fit_to_handler(&mut self, max_in_flight: u32, timeout: Duration) {
        let _ = (max_in_flight, timeout);
    }

    /// Makes this receiver one member of `group`, a set of receivers (one per node of a
    /// cluster) that share the work: each message goes to one of them. What that takes is
    /// the protocol's: a NATS queue group or shared JetStream durable, an MQTT shared
    /// subscription; AMQP queues and Kafka consumer groups share already. Settings the
    /// manifest gave explicitly are kept.
    fn share(&mut self, group: &str) {
        let _ = group;
    }

    /// Connects and starts receiving. Fails when the broker cannot be reached now, so a
    /// wrong address shows at start-up; once connected, the receiver reconnects on its own.
    fn receive(self: Box<Self>) -> ReceiveFuture;
}
