//! NATS (async-nats): core subscriptions with an optional queue group, JetStream pull
//! consumers for at-least-once delivery, and publishing in binary (`ce-` headers) or
//! structured mode.
//!
//! Settling:
//! - **core NATS** is at-most-once, so `ack` is a no-op, `reject` only logs, and `nak`
//!   redelivers the event from this process after the delay (the server has no redelivery).
//! - **JetStream**: `ack` acks, `nak(d)` naks with the server-side delay `d`, `reject`
//!   terminates the message (`+TERM`: never redelivered).
//!
//! Reconnecting is async-nats's own: it reconnects forever with its capped backoff and
//! resubscribes core subscriptions; the JetStream loop also recreates its consumer and
//! message stream if they stop (consumer deleted, server wiped), with [`Backoff`].

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use async_nats::{Client, HeaderMap};
use cloudevent::Event;
use cloudevent::nats::{NatsMessage, decode, encode_as};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::Transport;
use crate::backoff::Backoff;
use crate::delivery::{
    AckHandle, BoxFuture, CHANNEL_CAPACITY, Delivery, Outcome, Receiver, Settle, redeliver_later,
};
use crate::endpoint::Endpoint;
use crate::{AckError, ConnectError, Mode, SendError};

mod transport;

pub use transport::{Nats, check_subject};

const PROTOCOL: &str = "nats";

/// What a NATS trigger consumes: the settings of a manifest `[[trigger.nats]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsReceiverConfig {
    /// The server, `host:port`.
    pub server: Endpoint,
    /// The subject (wildcards allowed); for JetStream, the consumer's filter subject.
    pub subject: String,
    /// Core NATS queue group, so several instances share the work.
    pub queue_group: Option<String>,
    /// Consume through JetStream instead of core NATS.
    pub jetstream: Option<JetStreamConfig>,
}

/// A JetStream pull consumer on an existing stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// The stream, which must exist (streams are infrastructure, not something a trigger
    /// should create with guessed limits).
    pub stream: String,
    /// Durable consumer name, so progress survives restarts; `None` for an ephemeral one.
    pub durable: Option<String>,
    /// How long the server waits for a settle before redelivering; longer than the
    /// handler's timeout, or slow handlers would see their events twice.
    pub ack_wait: Duration,
    /// How many messages the server hands out before earlier ones are settled. Messages
    /// waiting in Spindle's buffer count against `ack_wait` too, so this is sized from the
    /// trigger's concurrency: a backlog waits on the server, not in a local buffer where it
    /// would time out and be redelivered while still queued.
    pub max_ack_pending: i64,
}

/// The default [`JetStreamConfig::max_ack_pending`]: a component's default concurrency,
/// twice.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 200;

impl crate::registry::Source for NatsReceiverConfig {
    fn transport(&self) -> &'static dyn crate::Transport {
        &Nats
    }

    fn label(&self) -> String {
        let scheme = crate::sink::scheme_for(Nats.schemes(), &self.server);
        format!("{scheme}://{} {}", self.server, self.subject)
    }

    /// JetStream redelivers what is not settled within its ack wait, and hands out at most
    /// `max_ack_pending` unsettled messages: twice the handler's timeout (at least
    /// [`MIN_ACK_WAIT`]), twice its concurrency, so a backlog waits on the server rather
    /// than in a local buffer where it would time out.
    fn fit_to_handler(&mut self, max_in_flight: u32, timeout: Duration) {
        if let Some(js) = &mut self.jetstream {
            js.ack_wait = MIN_ACK_WAIT.max(timeout * 2);
            js.max_ack_pending = i64::from(max_in_flight).saturating_mul(2).max(1);
        }
    }

    /// A core subscription joins queue group `group`; a JetStream one becomes the shared
    /// durable consumer `group` (an ephemeral consumer per node would hand every node every
    /// message).
    fn share(&mut self, group: &str) {
        match &mut self.jetstream {
            Some(js) => {
                js.durable.get_or_insert_with(|| group.to_owned());
            }
            None => {
                self.queue_group.get_or_insert_with(|| group.to_owned());
            }
        }
    }

    fn receive(self: Box<Self>) -> crate::registry::ReceiveFuture {
        Box::pin(receive(*self))
    }
}

/// The shortest JetStream ack wait: the server redelivers an unsettled message after it.
pub const MIN_ACK_WAIT: Duration = Duration::from_secs(30);

/// Connects to a NATS server, logging disconnections and reconnections.
///
/// Fails if the server is not reachable now (so misconfiguration shows at startup); once
/// connected, the client reconnects forever on its own.
pub async fn connect(server: &Endpoint) -> Result<Client, ConnectError> {
    let scheme = if server.is_tls() { "tls" } else { "nats" };
    let address = format!("{scheme}://{server}");
    let log_address = address.clone();
    let mut options = async_nats::ConnectOptions::new();
    if let Some(settings) = &server.tls {
        let tls =
            crate::tls::client_config(settings).map_err(|problem| ConnectError::Certificate {
                protocol: PROTOCOL,
                address: address.clone(),
                problem,
            })?;
        options = options.require_tls(true).tls_client_config(tls);
    }
    options
        .name("spindle")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .event_callback(move |event| {
            let address = log_address.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!(protocol = PROTOCOL, %address, "connected")
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(protocol = PROTOCOL, %address, "disconnected; reconnecting")
                    }
                    other => tracing::warn!(protocol = PROTOCOL, %address, event = %other, "connection event"),
                }
            }
        })
        .connect(&address)
        .await
        .map_err(|e| ConnectError::connecting(PROTOCOL, address, &e))
}

/// Connects and starts receiving; see [`receive_on`].
pub async fn receive(config: NatsReceiverConfig) -> Result<Receiver, ConnectError> {
    let client = connect(&config.server).await?;
    receive_on(client, config).await
}

/// Starts receiving on an existing client (so one connection can serve many triggers).
///
/// The subscription (or JetStream consumer) is in place when this returns, so messages
/// published afterwards are not missed.
pub async fn receive_on(
    client: Client,
    config: NatsReceiverConfig,
) -> Result<Receiver, ConnectError> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let state = client.clone();
    let address = config.server.to_string();
    let probe: crate::delivery::ConnectionProbe =
        std::sync::Arc::new(move || match state.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            other => Err(format!("NATS connection to {address} is {other:?}")),
        });
    let task = match config.jetstream.clone() {
        None => {
            let subscriber = match &config.queue_group {
                Some(group) => {
                    client
                        .queue_subscribe(config.subject.clone(), group.clone())
                        .await
                }
                None => client.subscribe(config.subject.clone()).await,
            }
            .map_err(|e| setup(format!("cannot subscribe to `{}`: {e}", config.subject)))?;
            // The SUB is only queued so far: make sure the server has it before returning.
            client
                .flush()
                .await
                .map_err(|e| setup(format!("cannot subscribe to `{}`: {e}", config.subject)))?;
            tokio::spawn(core_loop(subscriber, tx))
        }
        Some(js) => {
            let context = jetstream::new(client);
            let messages = open_consumer(&context, &config.subject, &js).await?;
            tokio::spawn(jetstream_loop(context, config.subject, js, messages, tx))
        }
    };
    Ok(Receiver::new(rx, task).with_connection_probe(probe))
}

fn setup(reason: String) -> ConnectError {
    ConnectError::Setup {
        protocol: PROTOCOL,
        reason,
    }
}

/// The codec's picture of a NATS message (headers flattened, repeats kept), for
/// [`cloudevent::nats::decode`]: what every consumer of `async-nats` messages needs.
pub fn to_message(headers: Option<&HeaderMap>, payload: bytes::Bytes) -> NatsMessage {
    let headers = headers
        .map(|h| {
            h.iter()
                .flat_map(|(name, values)| {
                    let name: &str = name.as_ref();
                    values
                        .iter()
                        .map(move |v| (name.to_owned(), v.as_str().to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    NatsMessage { headers, payload }
}

/// The `Content-Type` header of a raw message, if it has one.
fn content_type(raw: &NatsMessage) -> Option<&str> {
    raw.headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str())
}

async fn core_loop(mut subscriber: async_nats::Subscriber, tx: mpsc::Sender<Delivery>) {
    while let Some(message) = subscriber.next().await {
        let subject = message.subject.to_string();
        let raw = to_message(message.headers.as_ref(), message.payload);
        let decoded = decode(&raw);
        let payload = raw.payload.clone();
        let content_type = content_type(&raw).map(str::to_owned);
        let handle = AckHandle::new(CoreHandle {
            tx: tx.clone(),
            subject: subject.clone(),
            raw,
        });
        let delivery = match decoded {
            Ok(event) => Delivery::new(event, handle),
            Err(error) => Delivery::undecodable(
                PROTOCOL,
                &subject,
                payload,
                content_type.as_deref(),
                &error,
                handle,
            ),
        };
        if tx.send(delivery).await.is_err() {
            return;
        }
    }
    tracing::warn!(
        protocol = PROTOCOL,
        "core subscription ended (client closed)"
    );
}

/// Core NATS settle: nothing to tell the server; `nak` redelivers locally.
struct CoreHandle {
    tx: mpsc::Sender<Delivery>,
    subject: String,
    raw: NatsMessage,
}

impl Settle for CoreHandle {
    fn settle(self: Box<Self>, outcome: Outcome) -> BoxFuture<Result<(), AckError>> {
        match outcome {
            Outcome::Ack => {}
            Outcome::Nak(delay) => {
                let tx = self.tx.clone();
                redeliver_later(tx, delay, move || {
                    let event = decode(&self.raw).ok()?;
                    Some(Delivery::new(event, AckHandle::new(*self)))
                });
            }
            Outcome::Reject(reason) => tracing::warn!(
                protocol = PROTOCOL,
                subject = %self.subject,
                %reason,
                "event rejected (core NATS: dropped)"
            ),
        }
        Box::pin(async { Ok(()) })
    }
}

async fn open_consumer(
    context: &jetstream::Context,
    subject: &str,
    config: &JetStreamConfig,
) -> Result<pull::Stream, ConnectError> {
    let stream = context
        .get_stream(&config.stream)
        .await
        .map_err(|e| setup(format!("JetStream stream `{}`: {e}", config.stream)))?;
    let consumer_config = pull::Config {
        durable_name: config.durable.clone(),
        filter_subject: subject.to_owned(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending.max(1),
        ..Default::default()
    };
    let consumer: jetstream::consumer::PullConsumer = match &config.durable {
        Some(durable) => {
            stream
                .get_or_create_consumer(durable, consumer_config)
                .await
        }
        None => stream.create_consumer(consumer_config).await,
    }
    .map_err(|e| setup(format!("JetStream consumer on `{}`: {e}", config.stream)))?;
    consumer
        .messages()
        .await
        .map_err(|e| setup(format!("JetStream pull on `{}`: {e}", config.stream)))
}

/// After this many errors in a row from the pull stream, the consumer is opened anew.
const MAX_CONSECUTIVE_ERRORS: u32 = 3;

async fn jetstream_loop(
    context: jetstream::Context,
    subject: String,
    config: JetStreamConfig,
    mut messages: pull::Stream,
    tx: mpsc::Sender<Delivery>,
) {
    let mut backoff = Backoff::default();
    loop {
        let mut errors = 0;
        while let Some(item) = messages.next().await {
            let message = match item {
                Ok(message) => message,
                Err(error) => {
                    errors += 1;
                    tracing::warn!(protocol = PROTOCOL, stream = %config.stream, %error, "JetStream pull error");
                    let deleted = matches!(error.kind(), pull::MessagesErrorKind::ConsumerDeleted);
                    if deleted || errors >= MAX_CONSECUTIVE_ERRORS {
                        break;
                    }
                    continue;
                }
            };
            errors = 0;
            backoff.reset();
            let raw = to_message(message.headers.as_ref(), message.payload.clone());
            let delivery = match decode(&raw) {
                Ok(event) => Delivery::new(event, AckHandle::new(JetStreamHandle(message))),
                Err(error) => {
                    let subject = message.subject.to_string();
                    Delivery::undecodable(
                        PROTOCOL,
                        &subject,
                        raw.payload.clone(),
                        content_type(&raw),
                        &error,
                        AckHandle::new(JetStreamHandle(message)),
                    )
                }
            };
            if tx.send(delivery).await.is_err() {
                return;
            }
        }
        // The stream ended or kept failing: reopen the consumer until it works again.
        loop {
            if tx.is_closed() {
                return;
            }
            let delay = backoff.next_delay();
            tracing::warn!(protocol = PROTOCOL, stream = %config.stream, ?delay, "reopening the JetStream consumer");
            tokio::time::sleep(delay).await;
            match open_consumer(&context, &subject, &config).await {
                Ok(m) => {
                    tracing::info!(protocol = PROTOCOL, stream = %config.stream, "JetStream consumer reopened");
                    messages = m;
                    break;
                }
                Err(error) => {
                    tracing::warn!(protocol = PROTOCOL, %error, "JetStream consumer not ready yet")
                }
            }
        }
    }
}

/// JetStream settle: ack, nak with delay, or terminate.
struct JetStreamHandle(jetstream::Message);

impl Settle for JetStreamHandle {
    fn settle(self: Box<Self>, outcome: Outcome) -> BoxFuture<Result<(), AckError>> {
        Box::pin(async move {
            let kind = match &outcome {
                Outcome::Ack => AckKind::Ack,
                Outcome::Nak(delay) => AckKind::Nak(*delay),
                Outcome::Reject(reason) => {
                    tracing::warn!(protocol = PROTOCOL, subject = %self.0.subject, %reason, "event rejected; terminating the message");
                    AckKind::Term
                }
            };
            self.0
                .ack_with(kind)
                .await
                .map_err(|e| AckError::new(PROTOCOL, &outcome, e))
        })
    }
}

/// Publishes events to one NATS subject.
///
/// Core NATS publishing is fire-and-forget: `send` returns once the client has the
/// message; while disconnected, the client buffers it and sends it after reconnecting.
/// [`NatsSender::flush`] confirms that what was published reached the server's socket.
/// [`NatsSender::through_jetstream`] makes each send wait for a stream's acknowledgement
/// instead.
#[derive(Debug, Clone)]
pub struct NatsSender {
    client: Client,
    /// Cheap to clone per publish (shared bytes, not a new `String`).
    subject: async_nats::Subject,
    mode: Mode,
    format: cloudevent::Format,
    flusher: Option<mpsc::UnboundedSender<FlushWaiter>>,
    /// Set by [`NatsSender::through_jetstream`]: each send waits for a stream's ack.
    jetstream: Option<jetstream::Context>,
}

/// Someone waiting for a flush that starts after their publish.
type FlushWaiter = tokio::sync::oneshot::Sender<Result<(), String>>;

impl NatsSender {
    /// Connects to `server` for publishing to `subject` in `mode`.
    pub async fn connect(
        server: &Endpoint,
        subject: &str,
        mode: Mode,
    ) -> Result<Self, ConnectError> {
        Ok(Self::on(connect(server).await?, subject, mode))
    }

    /// A sender on an existing client. Within a Tokio runtime, concurrent flushes are
    /// grouped by a task of its own (see [`NatsSender::flush`]).
    pub fn on(client: Client, subject: &str, mode: Mode) -> Self {
        let flusher = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (tx, rx) = mpsc::unbounded_channel();
            runtime.spawn(group_flush(client.clone(), rx));
            tx
        });
        NatsSender {
            client,
            subject: async_nats::Subject::from(subject),
            mode,
            format: cloudevent::Format::Json,
            flusher,
            jetstream: None,
        }
    }

    /// Writes structured mode in `format` from now on (JSON until then).
    pub fn in_format(mut self, format: cloudevent::Format) -> Self {
        self.format = format;
        self
    }

    /// Publishes through JetStream from now on: [`NatsSender::send`] returns only once a
    /// stream has stored the message (its publish acknowledgement), so a delivery counted as
    /// done is as durable as that stream. A subject that no stream captures fails the send
    /// ([`SendError::Deferred`]: the stream may be created later) instead of reaching nobody.
    /// Each message carries a `Nats-Msg-Id` made of the event's `source` and `id`, so the
    /// stream's duplicate window drops a retried send it already stored.
    pub fn through_jetstream(mut self) -> Self {
        self.jetstream = Some(jetstream::new(self.client.clone()));
        // Acknowledged sends need no flushes: dropping the channel ends the flush task.
        self.flusher = None;
        self
    }

    /// Encodes and publishes one event.
    pub async fn send(&self, event: &Event) -> Result<(), SendError> {
        let message = encode_as(event, self.mode, self.format);
        let mut headers = HeaderMap::new();
        for (name, value) in message.headers {
            headers.append(name, value);
        }
        if let Some(jetstream) = &self.jetstream {
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                message_id(event).as_str(),
            );
            let ack = jetstream
                .publish_with_headers(self.subject.clone(), headers, message.payload)
                .await
                .map_err(|e| jetstream_error(&self.subject, e))?;
            ack.await.map_err(|e| jetstream_error(&self.subject, e))?;
            return Ok(());
        }
        self.client
            .publish_with_headers(self.subject.clone(), headers, message.payload)
            .await
            .map_err(|e| match e.kind() {
                async_nats::client::PublishErrorKind::Send => SendError::transient(PROTOCOL, e),
                _ => SendError::permanent(PROTOCOL, e),
            })
    }

    /// Waits until everything published so far has reached the server, so a caller can
    /// turn fire-and-forget into a confirmed send.
    ///
    /// Concurrent callers share flushes (group flush): each flush of the client writes the
    /// socket once, and a flush per event would cost a system call and a wake-up of the
    /// server for every message. A caller joins the next flush to start, which the client
    /// runs after every publish queued before it, so its own message is always covered.
    ///
    /// Through JetStream every send was already acknowledged: nothing to wait for.
    pub async fn flush(&self) -> Result<(), SendError> {
        if self.jetstream.is_some() {
            return Ok(());
        }
        let Some(flusher) = &self.flusher else {
            return self
                .client
                .flush()
                .await
                .map_err(|e| SendError::transient(PROTOCOL, e));
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let answer = match flusher.send(tx) {
            Ok(()) => rx
                .await
                .unwrap_or_else(|_| Err("the flush task stopped".into())),
            Err(_) => Err("the flush task stopped".into()),
        };
        answer.map_err(|reason| SendError::Transient {
            protocol: PROTOCOL,
            reason,
        })
    }
}

/// The JetStream message id of an event: its `source` and `id`, which identify it (a
/// consumer may treat events with both equal as duplicates). A retried send of an event the
/// stream already stored (its ack was lost, or a first attempt timed out and still landed) is
/// then dropped by the stream's duplicate window instead of stored twice. Both parts are
/// percent-encoded as in `ce-` headers, so the space between them is unambiguous.
fn message_id(event: &Event) -> String {
    format!(
        "{} {}",
        cloudevent::header::encode(event.source()),
        cloudevent::header::encode(event.id())
    )
}

/// A failed JetStream publish: refusals of the message itself are permanent; no stream for
/// the subject (yet) is deferred, over a connection that is fine; anything else (no ack in
/// time, a lost connection) is transient.
fn jetstream_error(subject: &str, e: jetstream::context::PublishError) -> SendError {
    use jetstream::context::PublishErrorKind as Kind;
    match e.kind() {
        Kind::StreamNotFound => SendError::Deferred {
            protocol: PROTOCOL,
            reason: format!("no JetStream stream stores subject `{subject}`"),
        },
        Kind::MaxPayloadExceeded | Kind::WrongLastMessageId | Kind::WrongLastSequence => {
            SendError::permanent(PROTOCOL, e)
        }
        _ => SendError::transient(PROTOCOL, e),
    }
}

/// Runs one client flush for every group of waiters that queued up while the previous one
/// ran, and answers them all. Ends when every sender of the client is gone.
async fn group_flush(client: Client, mut waiters: mpsc::UnboundedReceiver<FlushWaiter>) {
    let mut group = Vec::new();
    while waiters.recv_many(&mut group, 4096).await > 0 {
        // Let the sends that are ready to publish do so first, so they share this flush.
        tokio::task::yield_now().await;
        while let Ok(waiter) = waiters.try_recv() {
            group.push(waiter);
        }
        let result = client.flush().await.map_err(|e| e.to_string());
        for waiter in group.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }
}
