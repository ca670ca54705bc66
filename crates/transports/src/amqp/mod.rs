//! AMQP 1.0 (fe2o3-amqp), as RabbitMQ's `rabbitmq_amqp1_0` plugin speaks it: a receiving
//! link on a source address, outcomes for settling, and a sending link to `/queue/NAME` or
//! `/exchange/NAME/KEY` that waits for the broker's outcome.
//!
//! Settling a received message: `ack` → *accepted*; `nak(d)` → *released* after `d` (the
//! broker redelivers it; it stays unsettled, so not redelivered, meanwhile); `reject` →
//! *rejected* with the reason as the error description (the broker drops or dead-letters
//! it). Links are detached, not closed, as RabbitMQ expects.
//!
//! Reconnecting: fe2o3-amqp does not reconnect, so both directions reopen connection,
//! session and link with [`Backoff`] when the connection drops. A settle for a message of a
//! previous connection is dropped (the broker redelivers that message anyway).

use std::time::Duration;

use bytes::Bytes;
use cloudevent::Event;
use cloudevent::amqp::{AmqpMessage, AmqpValue, decode, encode_as};
use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::link::delivery::DeliveryInfo;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::definitions::{self, AmqpError};
use fe2o3_amqp::types::messaging::{
    ApplicationProperties, Body, Data, Message, Outcome as AmqpOutcome, Properties,
};
use fe2o3_amqp::types::primitives::{Binary, SimpleValue, Symbol, Timestamp, Uuid, Value};
use fe2o3_amqp::{Connection, Session};
use tokio::sync::{mpsc, oneshot};

use crate::Transport;
use crate::backoff::Backoff;
use crate::delivery::{
    AckHandle, BoxFuture, CHANNEL_CAPACITY, Delivery, Outcome, Receiver, Settle,
};
use crate::endpoint::Endpoint;
use crate::{AckError, ConnectError, Mode, SendError};

mod transport;

pub use transport::{Amqp, check_address};

const PROTOCOL: &str = "amqp";

/// Longest wait for each step of opening a link (connect, begin, attach).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for each step of a shutdown (detach, end, close).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Username and password for SASL PLAIN; without them Spindle uses SASL ANONYMOUS
/// (RabbitMQ maps it to its `default_user`, `guest`), since manifests carry no secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// What an AMQP trigger consumes: the settings of a manifest `[[trigger.amqp]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpReceiverConfig {
    /// The broker, `host:port`.
    pub broker: Endpoint,
    /// Source address, e.g. `/queue/orders`.
    pub source: String,
    /// SASL PLAIN credentials; ANONYMOUS when `None`.
    pub credentials: Option<Credentials>,
}

impl crate::registry::Source for AmqpReceiverConfig {
    fn transport(&self) -> &'static dyn crate::Transport {
        &Amqp
    }

    fn label(&self) -> String {
        let scheme = crate::sink::scheme_for(Amqp.schemes(), &self.broker);
        format!("{scheme}://{} {}", self.broker, self.source)
    }

    fn receive(self: Box<Self>) -> crate::registry::ReceiveFuture {
        Box::pin(receive(*self))
    }
}

fn unique_name(kind: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "spindle-{kind}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An open connection and session (dropped together).
struct Link<L> {
    link: L,
    session: SessionHandle<()>,
    connection: ConnectionHandle<()>,
}

impl<L> Link<L> {
    /// Ends session and connection, each bounded in time: a broker that does not answer
    /// must not hang a shutdown.
    async fn end(mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.session.end()).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.connection.close()).await;
    }
}

async fn open_session(
    broker: &Endpoint,
    credentials: &Option<Credentials>,
) -> Result<(ConnectionHandle<()>, SessionHandle<()>), ConnectError> {
    let unreachable = |reason: String| ConnectError::Unreachable {
        protocol: PROTOCOL,
        address: broker.to_string(),
        reason,
    };
    let profile = match credentials {
        Some(c) => SaslProfile::Plain {
            username: c.username.clone(),
            password: c.password.clone(),
        },
        None => SaslProfile::Anonymous,
    };
    let host = broker.host.trim_start_matches('[').trim_end_matches(']');
    let builder = Connection::builder()
        .container_id(unique_name("container"))
        .hostname(host)
        .sasl_profile(profile);
    let certificate = |problem: String| ConnectError::Certificate {
        protocol: PROTOCOL,
        address: broker.to_string(),
        problem,
    };
    let open = async {
        let tcp = tokio::net::TcpStream::connect((host, broker.port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &broker.tls {
            None => builder
                .open_with_stream(tcp)
                .await
                .map_err(|e| unreachable(e.to_string())),
            // `amqps`: TLS first, then AMQP inside it (RabbitMQ's port 5671).
            Some(settings) => {
                let config = crate::tls::client_config(settings).map_err(certificate)?;
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| certificate(format!("TLS server name {host}: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ConnectError::connecting(PROTOCOL, broker, &e))?;
                builder
                    .open_with_stream(stream)
                    .await
                    .map_err(|e| unreachable(e.to_string()))
            }
        }
    };
    let mut connection = tokio::time::timeout(OPEN_TIMEOUT, open)
        .await
        .map_err(|_| unreachable("connection timed out".to_owned()))??;
    let session = tokio::time::timeout(OPEN_TIMEOUT, Session::begin(&mut connection))
        .await
        .map_err(|_| unreachable("session begin timed out".to_owned()))?
        .map_err(|e| unreachable(e.to_string()))?;
    Ok((connection, session))
}

fn setup(reason: String) -> ConnectError {
    ConnectError::Setup {
        protocol: PROTOCOL,
        reason,
    }
}

async fn open_receiver(
    config: &AmqpReceiverConfig,
) -> Result<Link<fe2o3_amqp::Receiver>, ConnectError> {
    let (connection, mut session) = open_session(&config.broker, &config.credentials).await?;
    let attach = fe2o3_amqp::Receiver::attach(
        &mut session,
        unique_name("receiver"),
        config.source.as_str(),
    );
    let link = tokio::time::timeout(OPEN_TIMEOUT, attach)
        .await
        .map_err(|_| {
            setup(format!(
                "attach a receiver to `{}`: timed out",
                config.source
            ))
        })?
        .map_err(|e| setup(format!("attach a receiver to `{}`: {e}", config.source)))?;
    Ok(Link {
        link,
        session,
        connection,
    })
}

// ---- Type mapping between the codec's picture and fe2o3 ----------------------------------

fn to_amqp_value(v: &SimpleValue) -> AmqpValue {
    match v {
        SimpleValue::Null => AmqpValue::Null,
        SimpleValue::Bool(b) => AmqpValue::Boolean(*b),
        SimpleValue::Ubyte(x) => AmqpValue::Ubyte(*x),
        SimpleValue::Ushort(x) => AmqpValue::Ushort(*x),
        SimpleValue::Uint(x) => AmqpValue::Uint(*x),
        SimpleValue::Ulong(x) => AmqpValue::Ulong(*x),
        SimpleValue::Byte(x) => AmqpValue::Byte(*x),
        SimpleValue::Short(x) => AmqpValue::Short(*x),
        SimpleValue::Int(x) => AmqpValue::Int(*x),
        SimpleValue::Long(x) => AmqpValue::Long(*x),
        SimpleValue::Float(x) => AmqpValue::Float(x.into_inner()),
        SimpleValue::Double(x) => AmqpValue::Double(x.into_inner()),
        SimpleValue::Char(c) => AmqpValue::Char(*c),
        SimpleValue::Timestamp(t) => AmqpValue::Timestamp(t.milliseconds()),
        SimpleValue::Uuid(u) => AmqpValue::Uuid(*u.as_inner()),
        SimpleValue::Binary(b) => AmqpValue::Binary(b.to_vec()),
        SimpleValue::String(s) => AmqpValue::String(s.clone()),
        SimpleValue::Symbol(s) => AmqpValue::Symbol(s.0.clone()),
        // Decimals and described values have no CloudEvents type; the codec reports a
        // `cloudEvents_` property of this kind as such.
        _ => AmqpValue::Null,
    }
}

fn from_amqp_value(v: AmqpValue) -> SimpleValue {
    match v {
        AmqpValue::Null => SimpleValue::Null,
        AmqpValue::Boolean(b) => SimpleValue::Bool(b),
        AmqpValue::Ubyte(x) => SimpleValue::Ubyte(x),
        AmqpValue::Ushort(x) => SimpleValue::Ushort(x),
        AmqpValue::Uint(x) => SimpleValue::Uint(x),
        AmqpValue::Ulong(x) => SimpleValue::Ulong(x),
        AmqpValue::Byte(x) => SimpleValue::Byte(x),
        AmqpValue::Short(x) => SimpleValue::Short(x),
        AmqpValue::Int(x) => SimpleValue::Int(x),
        AmqpValue::Long(x) => SimpleValue::Long(x),
        AmqpValue::Float(x) => SimpleValue::Float(x.into()),
        AmqpValue::Double(x) => SimpleValue::Double(x.into()),
        AmqpValue::Char(c) => SimpleValue::Char(c),
        AmqpValue::Timestamp(ms) => SimpleValue::Timestamp(Timestamp::from_milliseconds(ms)),
        AmqpValue::Uuid(u) => SimpleValue::Uuid(Uuid::from(u)),
        AmqpValue::Binary(b) => SimpleValue::Binary(Binary::from(b)),
        AmqpValue::String(s) => SimpleValue::String(s),
        AmqpValue::Symbol(s) => SimpleValue::Symbol(Symbol(s)),
    }
}

/// The codec's picture of a received message. A body that is an `amqp-value` string or
/// binary is taken as the data (some producers send JSON that way); `amqp-sequence` bodies
/// and other values are not CloudEvents.
fn to_message(message: &Message<Body<Value>>) -> Result<AmqpMessage, cloudevent::Error> {
    let body = match &message.body {
        Body::Empty => None,
        Body::Data(sections) => {
            let mut bytes = Vec::new();
            for Data(section) in sections.iter() {
                bytes.extend_from_slice(section);
            }
            Some(Bytes::from(bytes))
        }
        Body::Value(v) => match &v.0 {
            Value::Binary(b) => Some(Bytes::copy_from_slice(b)),
            Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
            Value::Null => None,
            other => {
                return Err(cloudevent::Error::NotCloudEvent(format!(
                    "the body is an amqp-value of type {other:?}, not a data section"
                )));
            }
        },
        Body::Sequence(_) => {
            return Err(cloudevent::Error::NotCloudEvent(
                "the body is an amqp-sequence, not a data section".to_owned(),
            ));
        }
    };
    Ok(AmqpMessage {
        content_type: message
            .properties
            .as_ref()
            .and_then(|p| p.content_type.as_ref())
            .map(|s| s.0.clone()),
        application_properties: message
            .application_properties
            .as_ref()
            .map(|a| {
                a.0.iter()
                    .map(|(k, v)| (k.clone(), to_amqp_value(v)))
                    .collect()
            })
            .unwrap_or_default(),
        body,
    })
}

/// The fe2o3 message for an encoded event.
fn from_message(m: AmqpMessage) -> Message<Body<Value>> {
    let properties = m.content_type.map(|ct| Properties {
        content_type: Some(Symbol(ct)),
        ..Default::default()
    });
    let application_properties = (!m.application_properties.is_empty()).then(|| {
        ApplicationProperties(
            m.application_properties
                .into_iter()
                .map(|(k, v)| (k, from_amqp_value(v)))
                .collect(),
        )
    });
    let body = match m.body {
        Some(bytes) => Body::Data(vec![Data(Binary::from(bytes.to_vec()))].into()),
        None => Body::Empty,
    };
    Message::builder()
        .properties(properties)
        .application_properties(application_properties)
        .body(body)
        .build()
}

// ---- Receiving -------------------------------------------------------------------------

/// A settle request from an [`AckHandle`] to the task owning the link.
struct SettleRequest {
    generation: u64,
    info: DeliveryInfo,
    outcome: Outcome,
    done: oneshot::Sender<Result<(), String>>,
}

/// Connects, attaches the receiving link, and starts receiving.
pub async fn receive(config: AmqpReceiverConfig) -> Result<Receiver, ConnectError> {
    let link = open_receiver(&config).await?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let task = tokio::spawn(receive_loop(link, config, tx));
    Ok(Receiver::new(rx, task))
}

#[allow(clippy::large_enum_variant)] // built once per message and matched at once: boxing would only add an allocation
enum Step {
    Settle(SettleRequest),
    Received(Result<fe2o3_amqp::Delivery<Body<Value>>, fe2o3_amqp::link::RecvError>),
}

async fn receive_loop(
    mut link: Link<fe2o3_amqp::Receiver>,
    config: AmqpReceiverConfig,
    tx: mpsc::Sender<Delivery>,
) {
    let (settle_tx, mut settle_rx) = mpsc::channel::<SettleRequest>(CHANNEL_CAPACITY);
    let mut generation = 0u64;
    let mut backoff = Backoff::default();
    loop {
        // `recv` is cancel-safe, so waiting on both is sound.
        let step = tokio::select! {
            biased;
            Some(request) = settle_rx.recv() => Step::Settle(request),
            received = link.link.recv::<Body<Value>>() => Step::Received(received),
        };
        match step {
            Step::Settle(request) => settle(&link, generation, request).await,
            Step::Received(Ok(delivery)) => {
                let info = DeliveryInfo::from(&delivery);
                let handle = AckHandle::new(AmqpHandle {
                    generation,
                    info,
                    settle: settle_tx.clone(),
                });
                let message = to_message(delivery.message());
                let delivery = match message.as_ref().map_err(Clone::clone).and_then(decode) {
                    Ok(event) => Delivery::new(event, handle),
                    Err(error) => {
                        let (payload, content_type) = match &message {
                            Ok(m) => (
                                m.body.clone().unwrap_or_default(),
                                m.content_type.as_deref(),
                            ),
                            Err(_) => (Bytes::new(), None),
                        };
                        Delivery::undecodable(
                            PROTOCOL,
                            &config.source,
                            payload,
                            content_type,
                            &error,
                            handle,
                        )
                    }
                };
                // Settle requests keep being served while the trigger has no room for this
                // message: its handlers wait for those settlements before they free a slot,
                // so blocking on the channel alone would deadlock.
                let room = loop {
                    tokio::select! {
                        biased;
                        Some(request) = settle_rx.recv() => {
                            settle(&link, generation, request).await;
                        }
                        room = tx.reserve() => break room,
                    }
                };
                let Ok(room) = room else {
                    detach_receiver(link).await;
                    return;
                };
                room.send(delivery);
            }
            Step::Received(Err(error)) => {
                tracing::warn!(protocol = PROTOCOL, source = %config.source, %error, "receiving link failed; reconnecting");
                loop {
                    if tx.is_closed() {
                        return;
                    }
                    let delay = backoff.next_delay();
                    tokio::time::sleep(delay).await;
                    match open_receiver(&config).await {
                        Ok(new) => {
                            let old = std::mem::replace(&mut link, new);
                            tokio::spawn(detach_receiver(old));
                            generation += 1;
                            backoff.reset();
                            tracing::info!(protocol = PROTOCOL, source = %config.source, "receiving link reopened");
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(protocol = PROTOCOL, %error, ?delay, "broker not reachable yet")
                        }
                    }
                }
            }
        }
    }
}

/// Settles one message on the link it came on; one from an earlier connection cannot be
/// settled any more (the broker redelivers it).
async fn settle(link: &Link<fe2o3_amqp::Receiver>, generation: u64, request: SettleRequest) {
    let result = if request.generation == generation {
        dispose(&link.link, request.info, &request.outcome).await
    } else {
        Err("the message came on a previous connection; the broker redelivers it".to_owned())
    };
    let _ = request.done.send(result);
}

/// Detaches (RabbitMQ expects `detach`, not `close`) and ends session and connection.
async fn detach_receiver(link: Link<fe2o3_amqp::Receiver>) {
    let Link {
        link,
        session,
        connection,
    } = link;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, link.detach()).await;
    Link {
        link: (),
        session,
        connection,
    }
    .end()
    .await;
}

async fn dispose(
    receiver: &fe2o3_amqp::Receiver,
    info: DeliveryInfo,
    outcome: &Outcome,
) -> Result<(), String> {
    match outcome {
        Outcome::Ack => receiver.accept(info).await,
        Outcome::Nak(_) => receiver.release(info).await,
        Outcome::Reject(reason) => {
            let error =
                definitions::Error::new(AmqpError::PreconditionFailed, Some(reason.clone()), None);
            receiver.reject(info, error).await
        }
    }
    .map_err(|e| e.to_string())
}

/// AMQP settle: sends the outcome to the task that owns the link.
struct AmqpHandle {
    generation: u64,
    info: DeliveryInfo,
    settle: mpsc::Sender<SettleRequest>,
}

impl Settle for AmqpHandle {
    fn settle(self: Box<Self>, outcome: Outcome) -> BoxFuture<Result<(), AckError>> {
        Box::pin(async move {
            if let Outcome::Reject(reason) = &outcome {
                tracing::warn!(protocol = PROTOCOL, %reason, "event rejected");
            }
            if let Outcome::Nak(Some(delay)) = outcome {
                // Hold the message (unsettled, so not redelivered) until the delay is over.
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(error) = self.send(Outcome::Nak(None)).await {
                        tracing::warn!(protocol = PROTOCOL, %error, "could not release a message");
                    }
                });
                return Ok(());
            }
            self.send(outcome).await
        })
    }
}

impl AmqpHandle {
    async fn send(self, outcome: Outcome) -> Result<(), AckError> {
        let (done, result) = oneshot::channel();
        let request = SettleRequest {
            generation: self.generation,
            info: self.info,
            outcome: outcome.clone(),
            done,
        };
        if self.settle.send(request).await.is_err() {
            return Err(AckError::new(
                PROTOCOL,
                &outcome,
                "the receiver was dropped",
            ));
        }
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AckError::new(PROTOCOL, &outcome, e)),
            Err(_) => Err(AckError::new(
                PROTOCOL,
                &outcome,
                "the receiver was dropped",
            )),
        }
    }
}

// ---- Sending ---------------------------------------------------------------------------

/// The Subscriptions API's AMQP link settings (`linkName`, `linkProperties`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkSettings {
    /// The link's name; a process-unique one when `None`.
    pub name: Option<String>,
    /// Properties announced when the link attaches.
    pub properties: Vec<(String, String)>,
}

/// Sends events to one target address and waits for the broker's outcome.
///
/// The link is opened at connect time and reopened on the next send after a failure, so a
/// broker restart costs the sends made while it is down (reported as retryable).
pub struct AmqpSender {
    broker: Endpoint,
    address: String,
    credentials: Option<Credentials>,
    mode: Mode,
    format: cloudevent::Format,
    settings: LinkSettings,
    link: tokio::sync::Mutex<Option<Link<fe2o3_amqp::Sender>>>,
}

impl std::fmt::Debug for AmqpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSender")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl AmqpSender {
    /// Connects and attaches a sending link to `address` (`/queue/NAME`,
    /// `/exchange/NAME/KEY`).
    pub async fn connect(
        broker: &Endpoint,
        address: &str,
        credentials: Option<Credentials>,
        mode: Mode,
    ) -> Result<Self, ConnectError> {
        Self::connect_with(broker, address, credentials, mode, LinkSettings::default()).await
    }

    /// [`AmqpSender::connect`] with the link's name and properties set.
    pub async fn connect_with(
        broker: &Endpoint,
        address: &str,
        credentials: Option<Credentials>,
        mode: Mode,
        settings: LinkSettings,
    ) -> Result<Self, ConnectError> {
        let sender = AmqpSender {
            broker: broker.clone(),
            address: address.to_owned(),
            credentials,
            mode,
            format: cloudevent::Format::Json,
            settings,
            link: tokio::sync::Mutex::new(None),
        };
        let link = sender.open().await?;
        *sender.link.lock().await = Some(link);
        Ok(sender)
    }

    async fn open(&self) -> Result<Link<fe2o3_amqp::Sender>, ConnectError> {
        let (connection, mut session) = open_session(&self.broker, &self.credentials).await?;
        let name = self
            .settings
            .name
            .clone()
            .unwrap_or_else(|| unique_name("sender"));
        let mut builder = fe2o3_amqp::Sender::builder()
            .name(name)
            .target(self.address.as_str());
        if !self.settings.properties.is_empty() {
            let mut fields = definitions::Fields::default();
            for (k, v) in &self.settings.properties {
                fields.insert(Symbol(k.clone()), Value::String(v.clone()));
            }
            builder = builder.properties(fields);
        }
        let attach = builder.attach(&mut session);
        let link = tokio::time::timeout(OPEN_TIMEOUT, attach)
            .await
            .map_err(|_| setup(format!("attach a sender to `{}`: timed out", self.address)))?
            .map_err(|e| setup(format!("attach a sender to `{}`: {e}", self.address)))?;
        Ok(Link {
            link,
            session,
            connection,
        })
    }

    /// Writes structured mode in `format` from now on (JSON until then).
    pub fn in_format(mut self, format: cloudevent::Format) -> Self {
        self.format = format;
        self
    }

    /// Encodes and sends one event, returning once the broker accepted it.
    pub async fn send(&self, event: &Event) -> Result<(), SendError> {
        let message = from_message(encode_as(event, self.mode, self.format));
        let mut guard = self.link.lock().await;
        if guard.is_none() {
            let link = self
                .open()
                .await
                .map_err(|e| SendError::transient(PROTOCOL, e))?;
            tracing::info!(protocol = PROTOCOL, address = %self.address, "sending link reopened");
            *guard = Some(link);
        }
        let link = guard.as_mut().expect("link just opened");
        let sent = tokio::time::timeout(Duration::from_secs(30), link.link.send(message)).await;
        match sent {
            Ok(Ok(AmqpOutcome::Accepted(_))) => Ok(()),
            Ok(Ok(AmqpOutcome::Rejected(r))) => Err(SendError::permanent(
                PROTOCOL,
                format!("the broker rejected the message: {:?}", r.error),
            )),
            Ok(Ok(other)) => Err(SendError::transient(
                PROTOCOL,
                format!("the broker did not take the message: {other:?}"),
            )),
            Ok(Err(e)) => {
                tracing::warn!(protocol = PROTOCOL, address = %self.address, error = %e, "sending link failed; reopening on the next send");
                if let Some(old) = guard.take() {
                    tokio::spawn(old.end());
                }
                Err(SendError::transient(PROTOCOL, e))
            }
            Err(_) => {
                if let Some(old) = guard.take() {
                    tokio::spawn(old.end());
                }
                Err(SendError::transient(
                    PROTOCOL,
                    "no outcome from the broker in time",
                ))
            }
        }
    }

    /// Detaches the link (RabbitMQ expects `detach`, not `close`) and closes the connection.
    pub async fn close(self) {
        if let Some(link) = self.link.into_inner() {
            let Link {
                link,
                session,
                connection,
            } = link;
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, link.detach()).await;
            Link {
                link: (),
                session,
                connection,
            }
            .end()
            .await;
        }
    }
}
