//! MQTT 5 and 3.1.1 (rumqttc): subscribe to a topic filter with manual acks, publish with
//! QoS and a broker confirmation.
//!
//! Settling a received message:
//! - `ack` sends the PUBACK / PUBREC only now, after handling (manual acks), so a crash
//!   before that gets the message redelivered when a persistent session reconnects.
//! - `nak(d)` keeps the message unacknowledged on the broker and redelivers it from this
//!   process after `d` (MQTT has no negative acknowledgement).
//! - `reject` acknowledges the message so it is not redelivered (MQTT has no dead-letter),
//!   and logs the reason.
//!
//! Reconnecting: rumqttc reconnects when its event loop is polled after an error; the loop
//! here waits with [`Backoff`] between attempts and subscribes again when the broker did not
//! keep the session.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudevent::Event;
use cloudevent::mqtt::{MqttMessage, Version, decode, encode_as};
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio::sync::{mpsc, oneshot};

use crate::Transport;
use crate::backoff::Backoff;
use crate::delivery::{
    AckHandle, BoxFuture, CHANNEL_CAPACITY, Delivery, Outcome, Receiver, Settle, redeliver_later,
};
use crate::endpoint::Endpoint;
use crate::{AckError, ConnectError, Mode, SendError};

mod transport;

pub use transport::{Mqtt, MqttVersion, Qos, check_topic, registry_protocol};

const PROTOCOL: &str = "mqtt";

/// How long to wait for the broker's CONNACK / SUBACK / PUBACK before calling it a failure.
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// What an MQTT trigger consumes: the settings of a manifest `[[trigger.mqtt]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttReceiverConfig {
    /// The broker, `host:port`.
    pub broker: Endpoint,
    /// Topic filter (`+` and `#` allowed).
    pub topic: String,
    /// Subscription QoS.
    pub qos: Qos,
    /// Protocol version (3.1.1 receives structured mode only).
    pub version: MqttVersion,
    /// Keep the session, and the QoS 1/2 messages queued for it, across disconnections.
    pub persistent_session: bool,
    /// Client id; derived (and unique per process) when `None`. A persistent session needs
    /// a stable one, since the broker finds the session by it.
    pub client_id: Option<String>,
}

impl crate::registry::Source for MqttReceiverConfig {
    fn transport(&self) -> &'static dyn crate::Transport {
        &Mqtt
    }

    fn label(&self) -> String {
        let scheme = crate::sink::scheme_for(Mqtt.schemes(), &self.broker);
        format!("{scheme}://{} {}", self.broker, self.topic)
    }

    /// A shared subscription, `$share/<group>/<filter>` (MQTT 5, and brokers such as
    /// Mosquitto 2 for 3.1.1 too): the broker hands each message to one member.
    fn share(&mut self, group: &str) {
        if !self.topic.starts_with("$share/") {
            self.topic = format!("$share/{group}/{}", self.topic);
        }
    }

    fn receive(self: Box<Self>) -> crate::registry::ReceiveFuture {
        Box::pin(receive(*self))
    }
}

fn version(v: MqttVersion) -> Version {
    match v {
        MqttVersion::V3_1_1 => Version::V3_1_1,
        MqttVersion::V5 => Version::V5,
    }
}

fn unique_client_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "spindle-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

// ---- A small version-neutral layer over rumqttc's two clients ----------------------------

/// An rumqttc client of either protocol version.
#[derive(Clone)]
enum Client {
    V5(rumqttc::v5::AsyncClient),
    V4(rumqttc::AsyncClient),
}

/// A received PUBLISH of either version, kept for the ack.
#[derive(Clone)]
enum Publish {
    V5(p5::Publish),
    V4(rumqttc::Publish),
}

/// What the event loop saw, reduced to what this module acts on.
enum Ev {
    Connected { session_present: bool },
    Publish(Publish),
    Sent(u16),
    Acked(u16, Option<String>),
    Subscribed(Option<String>),
    Other,
}

#[allow(clippy::large_enum_variant)] // one per connection, never moved in a hot path
enum EventLoop {
    V5(rumqttc::v5::EventLoop),
    V4(rumqttc::EventLoop),
}

/// The largest MQTT packet sent or received, both versions: the client library's default
/// (10 KiB) would refuse an ordinary event with a JSON body, and a persistent session would
/// then reconnect forever on one large queued message. 32 MiB covers the largest event the
/// HTTP ingress (`max_body_size`) or a handler (32 MiB of results) can produce, plus headers.
pub const MAX_PACKET_SIZE: usize = (32 << 20) + (64 << 10);

fn options(
    broker: &Endpoint,
    v: MqttVersion,
    client_id: String,
    persistent: bool,
) -> Result<(Client, EventLoop), ConnectError> {
    let tls = match &broker.tls {
        Some(settings) => Some(Arc::new(
            crate::tls::client_config(settings).map_err(setup)?,
        )),
        None => None,
    };
    let host = broker
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    match v {
        MqttVersion::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(client_id, host, broker.port);
            if let Some(tls) = &tls {
                o.set_transport(rumqttc::Transport::tls_with_config(
                    rumqttc::TlsConfiguration::Rustls(tls.clone()),
                ));
            }
            o.set_manual_acks(true)
                .set_keep_alive(Duration::from_secs(10))
                .set_clean_start(!persistent)
                .set_max_packet_size(Some(MAX_PACKET_SIZE as u32));
            if persistent {
                // MQTT 5 ends a session at disconnection unless it has an expiry interval.
                o.set_session_expiry_interval(Some(u32::MAX));
            }
            let (c, l) = rumqttc::v5::AsyncClient::new(o, 1024);
            Ok((Client::V5(c), EventLoop::V5(l)))
        }
        MqttVersion::V3_1_1 => {
            let mut o = rumqttc::MqttOptions::new(client_id, host, broker.port);
            if let Some(tls) = &tls {
                o.set_transport(rumqttc::Transport::tls_with_config(
                    rumqttc::TlsConfiguration::Rustls(tls.clone()),
                ));
            }
            o.set_manual_acks(true)
                .set_keep_alive(Duration::from_secs(10))
                .set_clean_session(!persistent)
                .set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
            let (c, l) = rumqttc::AsyncClient::new(o, 1024);
            Ok((Client::V4(c), EventLoop::V4(l)))
        }
    }
}

fn qos5(q: Qos) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos4(q: Qos) -> rumqttc::QoS {
    use rumqttc::QoS;
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

impl Client {
    async fn subscribe(&self, topic: &str, qos: Qos) -> Result<(), String> {
        match self {
            Client::V5(c) => c
                .subscribe(topic, qos5(qos))
                .await
                .map_err(|e| e.to_string()),
            Client::V4(c) => c
                .subscribe(topic, qos4(qos))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    async fn publish(
        &self,
        topic: &str,
        qos: Qos,
        retain: bool,
        m: MqttMessage,
        extra: &PublishExtras,
    ) -> Result<(), String> {
        match self {
            Client::V5(c) => {
                let mut user_properties = m.user_properties;
                // The subscription's own properties follow the event's; a name the event
                // already uses (one of its attributes, in binary mode) keeps the event's value.
                for (name, value) in &extra.user_properties {
                    if !user_properties.iter().any(|(n, _)| n == name) {
                        user_properties.push((name.clone(), value.clone()));
                    }
                }
                let properties = p5::PublishProperties {
                    content_type: m.content_type,
                    user_properties,
                    message_expiry_interval: extra.expiry,
                    ..Default::default()
                };
                c.publish_with_properties(topic, qos5(qos), retain, m.payload, properties)
                    .await
                    .map_err(|e| e.to_string())
            }
            Client::V4(c) => c
                .publish(topic, qos4(qos), retain, m.payload)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Queues the acknowledgement without waiting: the event loop may itself be waiting for
    /// the handler to take a delivery, so an ack must never block on it.
    async fn ack(&self, publish: &Publish) -> Result<(), String> {
        let queued = match (self, publish) {
            (Client::V5(c), Publish::V5(p)) => c.try_ack(p).map_err(|e| e.to_string()),
            (Client::V4(c), Publish::V4(p)) => c.try_ack(p).map_err(|e| e.to_string()),
            _ => return Err("client and message versions differ".to_owned()),
        };
        if queued.is_err() {
            let (client, publish) = (self.clone(), publish.clone());
            tokio::spawn(async move {
                let r = match (&client, &publish) {
                    (Client::V5(c), Publish::V5(p)) => c.ack(p).await.map_err(|e| e.to_string()),
                    (Client::V4(c), Publish::V4(p)) => c.ack(p).await.map_err(|e| e.to_string()),
                    _ => Ok(()),
                };
                if let Err(error) = r {
                    tracing::warn!(protocol = PROTOCOL, %error, "could not acknowledge a message");
                }
            });
        }
        Ok(())
    }
}

impl Publish {
    fn message(&self) -> MqttMessage {
        match self {
            Publish::V5(p) => {
                let (content_type, user_properties) = p
                    .properties
                    .as_ref()
                    .map(|pr| (pr.content_type.clone(), pr.user_properties.clone()))
                    .unwrap_or_default();
                MqttMessage {
                    content_type,
                    user_properties,
                    payload: p.payload.clone(),
                }
            }
            Publish::V4(p) => MqttMessage {
                content_type: None,
                user_properties: Vec::new(),
                payload: p.payload.clone(),
            },
        }
    }

    fn topic(&self) -> String {
        match self {
            Publish::V5(p) => String::from_utf8_lossy(&p.topic).into_owned(),
            Publish::V4(p) => p.topic.clone(),
        }
    }
}

impl EventLoop {
    async fn poll(&mut self) -> Result<Ev, PollError> {
        match self {
            EventLoop::V5(l) => {
                use p5::Packet;
                use rumqttc::v5::Event;
                Ok(match l.poll().await.map_err(|e| PollError::of(&e))? {
                    Event::Incoming(Packet::ConnAck(a)) => Ev::Connected {
                        session_present: a.session_present,
                    },
                    Event::Incoming(Packet::Publish(p)) => Ev::Publish(Publish::V5(p)),
                    Event::Incoming(Packet::PubAck(a)) => Ev::Acked(
                        a.pkid,
                        match a.reason {
                            p5::PubAckReason::Success | p5::PubAckReason::NoMatchingSubscribers => {
                                None
                            }
                            other => Some(format!("{other:?}")),
                        },
                    ),
                    Event::Incoming(Packet::PubRec(a)) => match a.reason {
                        p5::PubRecReason::Success | p5::PubRecReason::NoMatchingSubscribers => {
                            Ev::Other
                        }
                        other => Ev::Acked(a.pkid, Some(format!("{other:?}"))),
                    },
                    Event::Incoming(Packet::PubComp(a)) => Ev::Acked(
                        a.pkid,
                        match a.reason {
                            p5::PubCompReason::Success => None,
                            other => Some(format!("{other:?}")),
                        },
                    ),
                    Event::Incoming(Packet::SubAck(a)) => Ev::Subscribed(
                        a.return_codes
                            .iter()
                            .find(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                            .map(|c| format!("{c:?}")),
                    ),
                    Event::Outgoing(rumqttc::Outgoing::Publish(pkid)) => Ev::Sent(pkid),
                    _ => Ev::Other,
                })
            }
            EventLoop::V4(l) => {
                use rumqttc::{Event, Packet};
                Ok(match l.poll().await.map_err(|e| PollError::of(&e))? {
                    Event::Incoming(Packet::ConnAck(a)) => Ev::Connected {
                        session_present: a.session_present,
                    },
                    Event::Incoming(Packet::Publish(p)) => Ev::Publish(Publish::V4(p)),
                    Event::Incoming(Packet::PubAck(a)) => Ev::Acked(a.pkid, None),
                    Event::Incoming(Packet::PubComp(a)) => Ev::Acked(a.pkid, None),
                    Event::Incoming(Packet::SubAck(a)) => Ev::Subscribed(
                        a.return_codes
                            .iter()
                            .find(|c| !matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                            .map(|c| format!("{c:?}")),
                    ),
                    Event::Outgoing(rumqttc::Outgoing::Publish(pkid)) => Ev::Sent(pkid),
                    _ => Ev::Other,
                })
            }
        }
    }

    /// Polls until the first CONNACK, so configuration and reachability errors show up
    /// at startup instead of as an endless reconnect loop.
    async fn first_connect(&mut self, broker: &Endpoint) -> Result<(), ConnectError> {
        let unreachable = |reason: String| ConnectError::Unreachable {
            protocol: PROTOCOL,
            address: broker.to_string(),
            reason,
        };
        let deadline = tokio::time::Instant::now() + BROKER_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.poll()).await {
                Err(_) => return Err(unreachable("no CONNACK in time".to_owned())),
                Ok(Err(PollError {
                    text,
                    certificate: true,
                })) => {
                    return Err(ConnectError::Certificate {
                        protocol: PROTOCOL,
                        address: broker.to_string(),
                        problem: text,
                    });
                }
                Ok(Err(e)) => return Err(unreachable(e.text)),
                Ok(Ok(Ev::Connected { .. })) => return Ok(()),
                Ok(Ok(_)) => {}
            }
        }
    }
}

// ---- Receiving -----------------------------------------------------------------------------

/// Connects, subscribes, and starts receiving.
///
/// Returns once the broker has confirmed the subscription (SUBACK), so messages published
/// afterwards are not missed.
pub async fn receive(config: MqttReceiverConfig) -> Result<Receiver, ConnectError> {
    let client_id = config.client_id.clone().unwrap_or_else(unique_client_id);
    let (client, mut eventloop) = options(
        &config.broker,
        config.version,
        client_id,
        config.persistent_session,
    )?;
    eventloop.first_connect(&config.broker).await?;
    client
        .subscribe(&config.topic, config.qos)
        .await
        .map_err(|e| setup(format!("subscribe to `{}`: {e}", config.topic)))?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let deadline = tokio::time::Instant::now() + BROKER_TIMEOUT;
    loop {
        let ev = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .map_err(|_| setup(format!("no SUBACK for `{}` in time", config.topic)))?
            .map_err(|e| setup(format!("subscribe to `{}`: {e}", config.topic)))?;
        match ev {
            Ev::Subscribed(None) => break,
            Ev::Subscribed(Some(code)) => {
                return Err(setup(format!(
                    "the broker refused the subscription to `{}`: {code}",
                    config.topic
                )));
            }
            // A persistent session may start delivering queued messages right away.
            Ev::Publish(p) => deliver(&client, &config, p, &tx).await,
            _ => {}
        }
    }
    let task = tokio::spawn(receive_loop(client, eventloop, config, tx));
    Ok(Receiver::new(rx, task))
}

/// Why polling the connection failed: the client library's error, or the TLS certificate
/// problem behind it (which retrying cannot fix).
#[derive(Debug)]
struct PollError {
    text: String,
    certificate: bool,
}

impl PollError {
    fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        match http_server::trust::certificate_problem(error) {
            Some(problem) => PollError {
                text: problem,
                certificate: true,
            },
            None => PollError {
                text: error.to_string(),
                certificate: false,
            },
        }
    }
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn setup(reason: String) -> ConnectError {
    ConnectError::Setup {
        protocol: PROTOCOL,
        reason,
    }
}

async fn receive_loop(
    client: Client,
    mut eventloop: EventLoop,
    config: MqttReceiverConfig,
    tx: mpsc::Sender<Delivery>,
) {
    let mut backoff = Backoff::default();
    loop {
        if tx.is_closed() {
            return;
        }
        match eventloop.poll().await {
            Ok(Ev::Publish(p)) => deliver(&client, &config, p, &tx).await,
            Ok(Ev::Connected { session_present }) => {
                backoff.reset();
                tracing::info!(protocol = PROTOCOL, broker = %config.broker, session_present, "reconnected");
                if !session_present
                    && let Err(error) = client.subscribe(&config.topic, config.qos).await
                {
                    tracing::warn!(protocol = PROTOCOL, topic = %config.topic, %error, "could not subscribe again");
                }
            }
            Ok(Ev::Subscribed(Some(code))) => {
                tracing::error!(protocol = PROTOCOL, topic = %config.topic, %code, "the broker refused the subscription")
            }
            Ok(_) => {}
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(protocol = PROTOCOL, broker = %config.broker, %error, ?delay, "connection lost; reconnecting");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn deliver(
    client: &Client,
    config: &MqttReceiverConfig,
    publish: Publish,
    tx: &mpsc::Sender<Delivery>,
) {
    let handle = MqttHandle {
        client: client.clone(),
        publish,
        version: version(config.version),
        tx: tx.clone(),
    };
    let message = handle.publish.message();
    let delivery = match decode(&message, handle.version) {
        Ok(event) => Delivery::new(event, AckHandle::new(handle)),
        Err(error) => {
            let topic = handle.publish.topic();
            Delivery::undecodable(
                PROTOCOL,
                &topic,
                message.payload,
                message.content_type.as_deref(),
                &error,
                AckHandle::new(handle),
            )
        }
    };
    let _ = tx.send(delivery).await;
}

/// MQTT settle: ack now, redeliver locally on nak, ack-and-log on reject.
struct MqttHandle {
    client: Client,
    publish: Publish,
    version: Version,
    tx: mpsc::Sender<Delivery>,
}

impl Settle for MqttHandle {
    fn settle(self: Box<Self>, outcome: Outcome) -> BoxFuture<Result<(), AckError>> {
        Box::pin(async move {
            match outcome {
                Outcome::Ack => self
                    .client
                    .ack(&self.publish)
                    .await
                    .map_err(|e| AckError::new(PROTOCOL, &Outcome::Ack, e)),
                Outcome::Nak(delay) => {
                    let tx = self.tx.clone();
                    redeliver_later(tx, delay, move || {
                        let event = decode(&self.publish.message(), self.version).ok()?;
                        Some(Delivery::new(event, AckHandle::new(*self)))
                    });
                    Ok(())
                }
                Outcome::Reject(reason) => {
                    tracing::warn!(protocol = PROTOCOL, topic = %self.publish.topic(), %reason, "event rejected; acknowledging it so it is not redelivered");
                    let outcome = Outcome::Reject(reason);
                    self.client
                        .ack(&self.publish)
                        .await
                        .map_err(|e| AckError::new(PROTOCOL, &outcome, e))
                }
            }
        })
    }
}

// ---- Sending -------------------------------------------------------------------------------

type Confirm = oneshot::Sender<Result<(), SendError>>;

/// Publishes not yet confirmed: those queued to the event loop (in order) and those the loop
/// has written, by packet id, waiting for PUBACK / PUBCOMP.
#[derive(Default)]
struct Pending {
    queued: VecDeque<Confirm>,
    inflight: HashMap<u16, Confirm>,
}

/// Publishes events to one MQTT topic and waits for the broker's confirmation (PUBACK
/// for QoS 1, PUBCOMP for QoS 2; QoS 0 is confirmed once written to the socket).
pub struct MqttSender {
    client: Client,
    topic: String,
    qos: Qos,
    retain: bool,
    extras: PublishExtras,
    version: Version,
    mode: Mode,
    format: cloudevent::Format,
    pending: Arc<Mutex<Pending>>,
    order: tokio::sync::Mutex<()>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MqttSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSender")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Where an MQTT sender publishes, as a manifest `mqtt://` sink says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSinkConfig {
    /// The broker.
    pub broker: Endpoint,
    /// Concrete topic.
    pub topic: String,
    /// Publish QoS.
    pub qos: Qos,
    /// Protocol version (3.1.1 is always structured).
    pub version: MqttVersion,
    /// Whether the broker retains the message.
    pub retain: bool,
    /// Client id; unique per process when `None`.
    pub client_id: Option<String>,
    /// MQTT 5: the Message Expiry Interval (seconds) of every message; none when `None`.
    pub expiry: Option<u32>,
    /// MQTT 5: User Properties added to every message (after the event's own).
    pub user_properties: Vec<(String, String)>,
}

/// What an MQTT 5 sender adds to every PUBLISH besides the event (the Subscriptions API's
/// `expiry` and `userproperties`).
#[derive(Debug, Clone, Default)]
struct PublishExtras {
    expiry: Option<u32>,
    user_properties: Vec<(String, String)>,
}

impl MqttSender {
    /// Connects (waiting for the CONNACK) and starts the event loop that reconnects.
    pub async fn connect(config: MqttSinkConfig, mode: Mode) -> Result<Self, ConnectError> {
        let client_id = config.client_id.clone().unwrap_or_else(unique_client_id);
        let (client, mut eventloop) = options(&config.broker, config.version, client_id, false)?;
        eventloop.first_connect(&config.broker).await?;
        let pending = Arc::new(Mutex::new(Pending::default()));
        let task = tokio::spawn(send_loop(eventloop, pending.clone(), config.broker.clone()));
        Ok(MqttSender {
            client,
            topic: config.topic,
            qos: config.qos,
            retain: config.retain,
            extras: PublishExtras {
                expiry: config.expiry,
                user_properties: config.user_properties,
            },
            version: version(config.version),
            mode,
            format: cloudevent::Format::Json,
            pending,
            order: tokio::sync::Mutex::new(()),
            task,
        })
    }

    /// Writes structured mode in `format` from now on (JSON until then).
    pub fn in_format(mut self, format: cloudevent::Format) -> Self {
        self.format = format;
        self
    }

    /// Encodes and publishes one event, returning once the broker confirmed it.
    pub async fn send(&self, event: &Event) -> Result<(), SendError> {
        let message = encode_as(event, self.version, self.mode, self.format);
        let (confirm, confirmed) = oneshot::channel();
        {
            // Queue order must match the order the event loop sees the publishes in.
            let _order = self.order.lock().await;
            self.pending
                .lock()
                .expect("pending lock")
                .queued
                .push_back(confirm);
            if let Err(e) = self
                .client
                .publish(&self.topic, self.qos, self.retain, message, &self.extras)
                .await
            {
                self.pending.lock().expect("pending lock").queued.pop_back();
                return Err(SendError::transient(PROTOCOL, e));
            }
        }
        match tokio::time::timeout(BROKER_TIMEOUT, confirmed).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SendError::transient(PROTOCOL, "the event loop stopped")),
            Err(_) => Err(SendError::transient(
                PROTOCOL,
                "no confirmation from the broker in time",
            )),
        }
    }
}

impl Drop for MqttSender {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn send_loop(mut eventloop: EventLoop, pending: Arc<Mutex<Pending>>, broker: Endpoint) {
    let mut backoff = Backoff::default();
    loop {
        match eventloop.poll().await {
            Ok(Ev::Sent(pkid)) => {
                let mut p = pending.lock().expect("pending lock");
                if pkid == 0 {
                    if let Some(c) = p.queued.pop_front() {
                        let _ = c.send(Ok(()));
                    }
                } else if !p.inflight.contains_key(&pkid) {
                    // (A known pkid is a retransmission after reconnecting.)
                    if let Some(c) = p.queued.pop_front() {
                        p.inflight.insert(pkid, c);
                    }
                }
            }
            Ok(Ev::Acked(pkid, failure)) => {
                if let Some(c) = pending.lock().expect("pending lock").inflight.remove(&pkid) {
                    let _ = c.send(match failure {
                        None => Ok(()),
                        Some(reason) => Err(SendError::permanent(
                            PROTOCOL,
                            format!("the broker refused the message: {reason}"),
                        )),
                    });
                }
            }
            Ok(Ev::Connected { .. }) => {
                backoff.reset();
                tracing::info!(protocol = PROTOCOL, %broker, "publisher reconnected");
            }
            Ok(_) => {}
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(protocol = PROTOCOL, %broker, %error, ?delay, "publisher connection lost; reconnecting");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
