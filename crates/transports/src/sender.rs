//! One [`Sender`] per sink: the protocol-neutral way for delivery code to publish an event.

use cloudevent::Event;
use cloudevent::kafka::KeyMapping;

use crate::amqp::{AmqpSender, Credentials};
use crate::kafka::KafkaSender;
use crate::mqtt::MqttSender;
use crate::nats::NatsSender;
use crate::sink::Sink;
use crate::{ConnectError, Mode, SendError};

/// Settings of a sink that its URI does not carry.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Binary (the default) or structured content mode. MQTT 3.1.1 is always structured.
    pub mode: Mode,
    /// The event format of structured mode; JSON by default (and always on MQTT 3.1.1).
    pub format: cloudevent::Format,
    /// Kafka: how records are keyed; by their `partitionkey` attribute by default (the
    /// binding's "MUST, by default, map the user provided record key").
    pub kafka_keys: KeyMapping,
    /// Kafka: the producer's `client.id`; librdkafka's default when `None`.
    pub kafka_client_id: Option<String>,
    /// MQTT: the client id; unique per process when `None`.
    pub mqtt_client_id: Option<String>,
    /// MQTT 5: the Message Expiry Interval (seconds) of every message; none when `None`.
    pub mqtt_expiry: Option<u32>,
    /// MQTT 5: User Properties added to every message, after the event's own.
    pub mqtt_user_properties: Vec<(String, String)>,
    /// AMQP: SASL PLAIN credentials; ANONYMOUS when `None`.
    pub amqp_credentials: Option<Credentials>,
    /// AMQP: the sending link's name (unique per connection, so a process-unique one when
    /// `None`) and properties.
    pub amqp_link: crate::amqp::LinkSettings,
}

impl SendOptions {
    /// Options with just a content mode, as a manifest output gives them.
    pub fn with_mode(mode: Mode) -> Self {
        SendOptions {
            mode,
            ..SendOptions::default()
        }
    }
}

/// Publishes events to one broker sink (NATS subject, MQTT topic, AMQP address, Kafka
/// topic). HTTP sinks are not here: they belong to the HTTP client side of the runtime.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per sink, created at startup: boxing buys nothing
pub enum Sender {
    /// A NATS subject.
    Nats(NatsSender),
    /// An MQTT topic.
    Mqtt(MqttSender),
    /// An AMQP 1.0 target address.
    Amqp(AmqpSender),
    /// A Kafka topic.
    Kafka(KafkaSender),
}

impl Sender {
    /// Connects to the sink's broker. Fails when it is unreachable now, so a wrong address
    /// shows at startup; once connected, each sender reconnects on its own.
    pub async fn connect(sink: &Sink, options: SendOptions) -> Result<Sender, ConnectError> {
        match sink.transport() {
            Some(transport) => transport.connect(sink, options).await,
            None => Err(ConnectError::Unsupported(sink.scheme().to_owned())),
        }
    }

    /// Encodes and publishes one event. Core NATS returns once the client has it (it is
    /// fire-and-forget), NATS through JetStream once a stream stored it; MQTT (QoS ≥ 1), AMQP
    /// and Kafka once the broker confirmed it.
    pub async fn send(&self, event: &Event) -> Result<(), SendError> {
        match self {
            Sender::Nats(s) => s.send(event).await,
            Sender::Mqtt(s) => s.send(event).await,
            Sender::Amqp(s) => s.send(event).await,
            Sender::Kafka(s) => s.send(event).await,
        }
    }
}
