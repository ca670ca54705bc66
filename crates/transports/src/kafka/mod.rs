//! Kafka (rdkafka, with its bundled librdkafka): a consumer-group subscription whose offsets
//! are committed only past messages that have been settled, and a producer that waits for
//! the broker's acknowledgement and can key records by `partitionkey`.
//!
//! Settling a received record:
//! - `ack` and `reject` mark it done; the committed offset of its partition advances to
//!   the first record not yet done, so a record still being handled (or waiting for a
//!   retry) is never skipped by a commit. Kafka has no dead-letter: `reject` logs.
//! - `nak(d)` keeps it not done and redelivers it from this process after `d` (a consumer
//!   group has no per-record negative acknowledgement); after a crash the group resumes
//!   from the committed offset, so it comes again.
//!
//! Reconnecting is librdkafka's own (it retries brokers with its capped backoff); its
//! errors are logged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cloudevent::Event;
use cloudevent::kafka::{KafkaRecord, KeyMapping, decode, encode_as};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::delivery::{
    AckHandle, BoxFuture, CHANNEL_CAPACITY, Delivery, Outcome, Receiver, Settle, redeliver_later,
};
use crate::endpoint::Endpoint;
use crate::{AckError, ConnectError, Mode, SendError};

mod transport;

pub use transport::{Kafka, check_topic};

const PROTOCOL: &str = "kafka";

/// What a Kafka trigger consumes: the settings of a manifest `[[trigger.kafka]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaReceiverConfig {
    /// Bootstrap brokers.
    pub brokers: Vec<Endpoint>,
    /// The topic.
    pub topic: String,
    /// Consumer group id.
    pub group: String,
    /// Whether the record key becomes `partitionkey` (when the event has none).
    pub keys: KeyMapping,
    /// Where a group without committed offsets starts: `true` for the oldest record
    /// (nothing published before the first start is lost), `false` for new records only.
    pub from_beginning: bool,
}

impl KafkaReceiverConfig {
    /// A consumer group's settings with the binding's defaults: the record key becomes the
    /// event's `partitionkey`, and a new group starts at the oldest record.
    pub fn for_group(brokers: Vec<Endpoint>, topic: String, group: String) -> Self {
        KafkaReceiverConfig {
            brokers,
            topic,
            group,
            keys: KeyMapping::default(),
            from_beginning: true,
        }
    }
}

impl crate::registry::Source for KafkaReceiverConfig {
    fn transport(&self) -> &'static dyn crate::Transport {
        &Kafka
    }

    fn label(&self) -> String {
        let brokers: Vec<String> = self.brokers.iter().map(ToString::to_string).collect();
        let tls = self.brokers.iter().any(Endpoint::is_tls);
        let scheme = if tls { "kafka+tls" } else { "kafka" };
        format!("{scheme}://{} {}", brokers.join(","), self.topic)
    }

    fn receive(self: Box<Self>) -> crate::registry::ReceiveFuture {
        Box::pin(receive(*self))
    }
}

/// Kafka's `SSL` security protocol when the brokers are reached over TLS (they all are or
/// none is: the manifest gives a trigger's brokers one setting, a sink has one broker).
fn set_tls(config: &mut ClientConfig, brokers: &[Endpoint]) {
    if let Some(settings) = brokers.iter().find_map(|b| b.tls.as_ref()) {
        for (key, value) in crate::tls::kafka_settings(settings) {
            config.set(key, value);
        }
    }
}

fn bootstrap(brokers: &[Endpoint]) -> String {
    brokers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn unreachable(brokers: &str, reason: impl ToString) -> ConnectError {
    ConnectError::Unreachable {
        protocol: PROTOCOL,
        address: brokers.to_owned(),
        reason: reason.to_string(),
    }
}

// ---- Offset tracking -----------------------------------------------------------------

/// Per partition: records handed out and not yet done, the next offset after the highest
/// one handed out, and the position last stored for commit.
struct Partition {
    outstanding: BTreeSet<i64>,
    next: i64,
    stored: i64,
}

/// Which offsets may be committed: only up to the first record not yet settled.
#[derive(Default)]
struct Tracker {
    partitions: Mutex<HashMap<(String, i32), Partition>>,
}

impl Tracker {
    fn received(&self, topic: &str, partition: i32, offset: i64) {
        let mut map = self.partitions.lock().expect("tracker lock");
        // The first record seen is where this consumer started: committing below it
        // would mean nothing, so that is the floor.
        let p = map
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| Partition {
                outstanding: BTreeSet::new(),
                next: offset,
                stored: offset,
            });
        p.outstanding.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// Marks a record done; returns the new commit position (the next offset to read)
    /// when it moved.
    fn done(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let mut map = self.partitions.lock().expect("tracker lock");
        let p = map.get_mut(&(topic.to_owned(), partition))?;
        p.outstanding.remove(&offset);
        let position = p.outstanding.first().copied().unwrap_or(p.next);
        (position > p.stored).then(|| {
            p.stored = position;
            position
        })
    }
}

// ---- Receiving -------------------------------------------------------------------------

/// Connects, joins the consumer group, and starts receiving.
///
/// Fails when no broker answers a metadata request within 10 s. Joining the group happens
/// in the background (a few seconds with the settings used here).
pub async fn receive(config: KafkaReceiverConfig) -> Result<Receiver, ConnectError> {
    let brokers = bootstrap(&config.brokers);
    let mut settings = ClientConfig::new();
    settings
        .set("bootstrap.servers", &brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            if config.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        )
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("reconnect.backoff.max.ms", "5000");
    set_tls(&mut settings, &config.brokers);
    let consumer: StreamConsumer = settings.create().map_err(|e| ConnectError::Setup {
        protocol: PROTOCOL,
        reason: e.to_string(),
    })?;
    let consumer = Arc::new(consumer);
    let probe = consumer.clone();
    let topic = config.topic.clone();
    tokio::task::spawn_blocking(move || {
        probe.fetch_metadata(Some(&topic), Duration::from_secs(10))
    })
    .await
    .map_err(|e| unreachable(&brokers, e))?
    .map_err(|e| unreachable(&brokers, e))?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(|e| ConnectError::Setup {
            protocol: PROTOCOL,
            reason: format!("subscribe to `{}`: {e}", config.topic),
        })?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let task = tokio::spawn(receive_loop(consumer, config, tx));
    Ok(Receiver::new(rx, task))
}

async fn receive_loop(
    consumer: Arc<StreamConsumer>,
    config: KafkaReceiverConfig,
    tx: mpsc::Sender<Delivery>,
) {
    let tracker = Arc::new(Tracker::default());
    let mut backoff = Backoff::default();
    loop {
        let message = match consumer.recv().await {
            Ok(m) => m,
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(protocol = PROTOCOL, topic = %config.topic, %error, ?delay, "consumer error");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        backoff.reset();
        let record = KafkaRecord {
            key: message.key().map(Bytes::copy_from_slice),
            headers: message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|Header { key, value }| {
                            (
                                key.to_owned(),
                                value.map(Bytes::copy_from_slice).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            value: message.payload().map(Bytes::copy_from_slice),
        };
        let handle = KafkaHandle {
            consumer: consumer.clone(),
            tracker: tracker.clone(),
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            record,
            keys: config.keys,
            tx: tx.clone(),
        };
        drop(message);
        tracker.received(&handle.topic, handle.partition, handle.offset);
        let delivery = match decode(&handle.record, config.keys) {
            Ok(event) => Delivery::new(event, AckHandle::new(handle)),
            Err(error) => {
                let origin = format!("{}/{}@{}", handle.topic, handle.partition, handle.offset);
                let payload = handle.record.value.clone().unwrap_or_default();
                let content_type = handle
                    .record
                    .header("content-type")
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .map(str::to_owned);
                Delivery::undecodable(
                    PROTOCOL,
                    &origin,
                    payload,
                    content_type.as_deref(),
                    &error,
                    AckHandle::new(handle),
                )
            }
        };
        if tx.send(delivery).await.is_err() {
            return;
        }
    }
}

/// Kafka settle: mark done (ack, reject) or redeliver locally (nak).
struct KafkaHandle {
    consumer: Arc<StreamConsumer>,
    tracker: Arc<Tracker>,
    topic: String,
    partition: i32,
    offset: i64,
    record: KafkaRecord,
    keys: KeyMapping,
    tx: mpsc::Sender<Delivery>,
}

impl KafkaHandle {
    fn done(&self) -> Result<(), String> {
        if let Some(position) = self.tracker.done(&self.topic, self.partition, self.offset) {
            // librdkafka stores `offset + 1`: the next record to read is `position`.
            self.consumer
                .store_offset(&self.topic, self.partition, position - 1)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Settle for KafkaHandle {
    fn settle(self: Box<Self>, outcome: Outcome) -> BoxFuture<Result<(), AckError>> {
        Box::pin(async move {
            match &outcome {
                Outcome::Ack => {}
                Outcome::Nak(delay) => {
                    let (tx, delay) = (self.tx.clone(), *delay);
                    redeliver_later(tx, delay, move || {
                        let event = decode(&self.record, self.keys).ok()?;
                        Some(Delivery::new(event, AckHandle::new(*self)))
                    });
                    return Ok(());
                }
                Outcome::Reject(reason) => tracing::warn!(
                    protocol = PROTOCOL,
                    topic = %self.topic,
                    partition = self.partition,
                    offset = self.offset,
                    %reason,
                    "event rejected; skipping the record"
                ),
            }
            self.done()
                .map_err(|e| AckError::new(PROTOCOL, &outcome, e))
        })
    }
}

// ---- Sending ---------------------------------------------------------------------------

/// Produces events to one topic and waits for the broker's acknowledgement.
pub struct KafkaSender {
    producer: FutureProducer,
    topic: String,
    mode: Mode,
    format: cloudevent::Format,
    keys: KeyMapping,
}

impl std::fmt::Debug for KafkaSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSender")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSender {
    /// Creates the producer and checks that a broker answers (within 10 s).
    pub async fn connect(
        brokers: &[Endpoint],
        topic: &str,
        mode: Mode,
        keys: KeyMapping,
    ) -> Result<Self, ConnectError> {
        Self::connect_as(brokers, topic, mode, keys, None).await
    }

    /// [`KafkaSender::connect`] with the producer's `client.id` (the Subscriptions API's
    /// Kafka `clientid` setting); librdkafka's default when `None`.
    pub async fn connect_as(
        brokers: &[Endpoint],
        topic: &str,
        mode: Mode,
        keys: KeyMapping,
        client_id: Option<&str>,
    ) -> Result<Self, ConnectError> {
        let bootstrap = bootstrap(brokers);
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &bootstrap)
            .set("message.timeout.ms", "30000")
            .set("reconnect.backoff.max.ms", "5000")
            .set("linger.ms", "5");
        set_tls(&mut config, brokers);
        if let Some(id) = client_id {
            config.set("client.id", id);
        }
        let producer: FutureProducer = config.create().map_err(|e| ConnectError::Setup {
            protocol: PROTOCOL,
            reason: e.to_string(),
        })?;
        let probe = producer.clone();
        let t = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(Some(&t), Duration::from_secs(10))
        })
        .await
        .map_err(|e| unreachable(&bootstrap, e))?
        .map_err(|e| unreachable(&bootstrap, e))?;
        Ok(KafkaSender {
            producer,
            topic: topic.to_owned(),
            mode,
            format: cloudevent::Format::Json,
            keys,
        })
    }

    /// Writes structured mode in `format` from now on (JSON until then).
    pub fn in_format(mut self, format: cloudevent::Format) -> Self {
        self.format = format;
        self
    }

    /// Encodes and produces one event, returning once the broker acknowledged it.
    pub async fn send(&self, event: &Event) -> Result<(), SendError> {
        let record = encode_as(event, self.mode, self.keys, self.format);
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_ref()),
            });
        }
        let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = &record.key {
            out = out.key(key.as_ref());
        }
        if let Some(value) = &record.value {
            out = out.payload(value.as_ref());
        }
        match self.producer.send(out, Duration::from_secs(30)).await {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(classify(error)),
        }
    }
}

/// Errors that sending the same record again cannot fix.
fn classify(error: KafkaError) -> SendError {
    let permanent = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::UnsupportedVersion
        )
    );
    if permanent {
        SendError::permanent(PROTOCOL, error)
    } else {
        SendError::transient(PROTOCOL, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka binding 3.1: "Every implementation MUST, by default, map the user provided
    /// record key to the Kafka record key." A manifest trigger and a manifest output (which
    /// have no key setting) both map it.
    #[test]
    fn triggers_and_outputs_map_the_key_by_default() {
        assert_eq!(
            KafkaReceiverConfig::for_group(vec![], "t".into(), "g".into()).keys,
            KeyMapping::PartitionKey
        );
        assert_eq!(
            crate::SendOptions::with_mode(Mode::Binary).kafka_keys,
            KeyMapping::PartitionKey
        );
    }

    #[test]
    fn commits_stop_at_the_first_unsettled_record() {
        let t = Tracker::default();
        for offset in 10..14 {
            t.received("t", 0, offset);
        }
        // 11 done first: 10 is still out, so nothing may be committed.
        assert_eq!(t.done("t", 0, 11), None);
        assert_eq!(t.done("t", 0, 10), Some(12));
        assert_eq!(t.done("t", 0, 13), None);
        assert_eq!(t.done("t", 0, 12), Some(14));
        // Partitions are independent.
        t.received("t", 1, 5);
        assert_eq!(t.done("t", 1, 5), Some(6));
        assert_eq!(t.done("other", 0, 1), None);
    }
}
