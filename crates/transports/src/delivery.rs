//! The receive side shared by every protocol: a [`Delivery`] is one decoded event plus the
//! [`AckHandle`] that settles it on the broker it came from, and a [`Receiver`] yields them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use cloudevent::Event;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A boxed, sendable future: what a protocol's settle step returns.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How the handler's result maps back to the broker.
///
/// Three outcomes because brokers distinguish them and the runtime must too: success,
/// "try again later" (a transient failure) and "never again" (a poison message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: the broker may forget the message.
    Ack,
    /// Transient failure: deliver the message again, after `retry_after` when given.
    Nak(Option<Duration>),
    /// Permanent failure: do not deliver it again (terminate, reject, dead-letter), for the
    /// reason given (logged, and sent to the broker where the protocol carries one).
    Reject(String),
}

/// Why settling a delivery failed. The message itself is not lost: the broker will deliver
/// it again (that is what an unsettled message means), so callers usually just log this.
#[derive(Debug, thiserror::Error)]
#[error("{protocol}: could not settle the message ({outcome}): {reason}")]
pub struct AckError {
    /// `nats`, `mqtt`, `amqp` or `kafka`.
    pub protocol: &'static str,
    /// `ack`, `nak` or `reject`.
    pub outcome: &'static str,
    /// What the client library said.
    pub reason: String,
}

impl AckError {
    pub(crate) fn new(protocol: &'static str, outcome: &Outcome, reason: impl ToString) -> Self {
        AckError {
            protocol,
            outcome: match outcome {
                Outcome::Ack => "ack",
                Outcome::Nak(_) => "nak",
                Outcome::Reject(_) => "reject",
            },
            reason: reason.to_string(),
        }
    }
}

/// One protocol's way of settling one message.
pub(crate) trait Settle: Send + 'static {
    fn settle(self: Box<Self>, outcome: Outcome) -> BoxFuture<Result<(), AckError>>;
}

/// Settles one received message on its broker: ack, nak or reject, exactly once (the
/// methods take `self`).
///
/// A handle dropped without settling leaves the message unsettled: the broker delivers it
/// again later (JetStream after its ack wait, AMQP and MQTT on the next connection, Kafka
/// after a restart or rebalance, since its offset is never committed past it).
pub struct AckHandle {
    inner: Box<dyn Settle>,
}

impl AckHandle {
    pub(crate) fn new(settle: impl Settle) -> Self {
        AckHandle {
            inner: Box::new(settle),
        }
    }

    /// A handle that settles nothing, for events that did not come from a broker (tests,
    /// in-process feeds) so they can go through the same code path.
    pub fn noop() -> Self {
        struct Noop;
        impl Settle for Noop {
            fn settle(self: Box<Self>, _: Outcome) -> BoxFuture<Result<(), AckError>> {
                Box::pin(async { Ok(()) })
            }
        }
        AckHandle::new(Noop)
    }

    /// The event was handled: tell the broker it can forget the message.
    pub async fn ack(self) -> Result<(), AckError> {
        self.settle(Outcome::Ack).await
    }

    /// A transient failure: have the message delivered again, not before `retry_after`
    /// when given. Each protocol module documents how it redelivers.
    pub async fn nak(self, retry_after: Option<Duration>) -> Result<(), AckError> {
        self.settle(Outcome::Nak(retry_after)).await
    }

    /// A permanent failure: the message must not come back (terminated, rejected or
    /// dead-lettered, depending on the protocol); `reason` is logged.
    pub async fn reject(self, reason: impl Into<String>) -> Result<(), AckError> {
        self.settle(Outcome::Reject(reason.into())).await
    }

    /// Settles with an [`Outcome`] computed elsewhere (the runtime maps handler results
    /// to outcomes once, for every trigger).
    pub async fn settle(self, outcome: Outcome) -> Result<(), AckError> {
        self.inner.settle(outcome).await
    }
}

impl fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckHandle")
    }
}

/// One received event and the handle that settles its message.
#[derive(Debug)]
pub struct Delivery {
    /// The decoded, valid CloudEvent; for a message that was not one, an event wrapping its
    /// raw bytes (see [`Delivery::undecodable`]).
    pub event: Event,
    /// Settles the message on its broker once the event has been handled.
    pub ack: AckHandle,
    /// Set when the message was not a valid CloudEvent: why. It is not for the handler:
    /// the runtime dead-letters [`Delivery::event`] (the raw message) and settles it.
    pub refused: Option<String>,
}

/// The `type` of the event that wraps a message which was not a CloudEvent.
pub const UNDECODABLE_TYPE: &str = "dev.spindle.undecodable";

impl Delivery {
    /// A decoded event and its handle.
    pub(crate) fn new(event: Event, ack: AckHandle) -> Self {
        Delivery {
            event,
            ack,
            refused: None,
        }
    }

    /// A message that is not a valid CloudEvent, kept whole so it can be dead-lettered and
    /// looked at: an event of type [`UNDECODABLE_TYPE`] whose `source` names the protocol
    /// and where the message came from, whose data is the message's payload as received
    /// (with its content type, if it had one), and whose `refused` says why.
    pub(crate) fn undecodable(
        protocol: &'static str,
        origin: &str,
        payload: bytes::Bytes,
        content_type: Option<&str>,
        error: &cloudevent::Error,
        ack: AckHandle,
    ) -> Self {
        tracing::warn!(protocol, origin, %error, "a message that is not a valid CloudEvent: dead-lettering it");
        let source = format!("/{protocol}/{}", http_server::uri::encode_component(origin));
        // Text stays readable in listings (`data`), anything else is `data_base64`.
        let data = match std::str::from_utf8(&payload) {
            Ok(text) => cloudevent::Data::text(text),
            Err(_) => cloudevent::Data::binary(payload),
        };
        let wrap = |source: &str, content_type: &str| {
            Event::builder()
                .id(uuid::Uuid::new_v4().to_string())
                .source(source)
                .ty(UNDECODABLE_TYPE)
                .data_with_type(content_type, data.clone())
                .build()
        };
        // The message's own content type if it is a valid one, else opaque bytes.
        let event = content_type
            .and_then(|ct| wrap(&source, ct).ok())
            .or_else(|| wrap(&source, "application/octet-stream").ok())
            .or_else(|| wrap(&format!("/{protocol}"), "application/octet-stream").ok())
            .expect("a fixed source, type and content type make a valid event");
        // The codec's own reasons mostly say "not a CloudEvent" already.
        let why = error.to_string();
        let refused = if why.starts_with("not a CloudEvent") {
            why
        } else {
            format!("not a CloudEvent: {why}")
        };
        Delivery {
            event,
            ack,
            refused: Some(refused),
        }
    }
}

/// The stream of deliveries of one trigger.
///
/// A message that is not a valid CloudEvent comes as a [`Delivery`] with `refused` set,
/// carrying the raw message, for the runtime to dead-letter. Dropping the receiver stops
/// the task that feeds it and closes its broker connection.
pub struct Receiver {
    rx: mpsc::Receiver<Delivery>,
    task: JoinHandle<()>,
    connection: Option<ConnectionProbe>,
}

/// Tells whether a receiver's broker connection is up now; `Err` says what is wrong.
pub type ConnectionProbe = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl Receiver {
    pub(crate) fn new(rx: mpsc::Receiver<Delivery>, task: JoinHandle<()>) -> Self {
        Receiver {
            rx,
            task,
            connection: None,
        }
    }

    /// This receiver, able to report its connection state (see [`Receiver::connection`]).
    pub(crate) fn with_connection_probe(mut self, probe: ConnectionProbe) -> Self {
        self.connection = Some(probe);
        self
    }

    /// How to ask whether the broker connection is up, for protocols whose client tells
    /// (NATS); `None` where the receive task reconnects without saying (its log does).
    pub fn connection(&self) -> Option<ConnectionProbe> {
        self.connection.clone()
    }

    /// The next delivery; `None` once the receive task has stopped for good (it only
    /// stops when dropped: broker outages are waited out).
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

impl futures::Stream for Receiver {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many decoded deliveries may wait for the handler before the receive task stops
/// reading from the broker (backpressure).
pub(crate) const CHANNEL_CAPACITY: usize = 256;

/// Sends a delivery again after `delay`, for protocols whose broker has no negative
/// acknowledgement (core NATS, MQTT, Kafka): the message stays unacknowledged on the broker
/// meanwhile, so a crash before then still gets it redelivered by the broker.
pub(crate) fn redeliver_later(
    tx: mpsc::Sender<Delivery>,
    delay: Option<Duration>,
    delivery: impl FnOnce() -> Option<Delivery> + Send + 'static,
) {
    tokio::spawn(async move {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(d) = delivery() {
            // A closed channel means the receiver was dropped: the broker keeps the
            // unacknowledged message for the next consumer.
            let _ = tx.send(d).await;
        }
    });
}
