//! Cluster mode: the delivery state in NATS JetStream instead of the embedded store, so that
//! several `spindle up` nodes serve one app and none of them holds state the others need.
//!
//! | state | where | how the nodes share it |
//! | --- | --- | --- |
//! | subscriptions | stream `SPINDLE_<ns>_subscriptions`, subject `spindle.<ns>.sub.<hex id>`, one message per subject (a key-value bucket in JetStream's own terms, kept by hand so that it works on every JetStream server) | every node watches the stream and runs what it holds: a subscription stored through any node is live on all as soon as the watch delivers it; a deletion is a tombstone message |
//! | accepted deliveries | stream `SPINDLE_<ns>_deliveries`, subject `spindle.<ns>.deliver.<hex id>`, work-queue retention | one durable pull consumer per subscription, shared by every node: each message goes to one node, is acked once its sink took it, and is redelivered (to any node) when its node dies before settling |
//! | dead letters | stream `SPINDLE_<ns>_dead`, subject `spindle.<ns>.dead.<hex id>` | listed, replayed and purged through any node |
//!
//! An event is accepted (the HTTP `2xx`, the broker ack) once JetStream acknowledged the
//! publish of each of its deliveries: the publishes of one call go out together and their
//! acknowledgements are awaited together. Retries follow the subscription's policy: a
//! failed attempt is a `NAK` with the policy's backoff (or the sink's `Retry-After`) as the
//! redelivery delay, counted by the server (`delivered`), and a message past its attempts or
//! age is published to the dead letters and then terminated. A subscription's `maxInFlight`
//! is its consumer's `max_ack_pending`, which the server enforces across all nodes; an
//! ordered subscription gets `max_ack_pending = 1`, so its events reach the sink one at a
//! time in the order they were accepted, whichever node sends them.
//!
//! A `rateLimit` is split among the live nodes (each publishes a heartbeat every second and
//! paces its sends at the rate divided by the nodes it heard from lately), and a
//! subscription's dedup window holds across nodes for the deliveries stream's duplicate
//! window (a `Nats-Msg-Id` per event). A trigger's or route's `dedup_window` is kept in the
//! stream `SPINDLE_<ns>_seen` (a subject per dedup key, holding when it was handled), so a
//! copy handled by another node is recognised too. The store quotas (`maxQueuedEvents` and
//! friends) do not apply in cluster mode: the subscriptions, deliveries and dead-letter
//! streams are created without size limits, which the operator sets in JetStream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::DeliverPolicy, consumer::pull, stream};
use bytes::Bytes;
use cloudevent::Event;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::deadletter::{self, DeadLetter, DeadLetterSelector};
use crate::error::Error;
use crate::model::{CONFIG_DISABLED, Subscription, SubscriptionId};
use crate::sink::{SendOutcome, Sink};
use crate::store::{self, EntryMeta};
use crate::worker::{NextAttempt, next_attempt};

/// The header carrying a delivery's or dead letter's subscription id.
const SUBSCRIPTION_HEADER: &str = "Spindle-Subscription";
/// The header carrying when an event was accepted (ms since the epoch), for `maxAgeMs`.
const ACCEPTED_HEADER: &str = "Spindle-Accepted-Ms";
/// A subscription tombstone: the subscription was deleted.
const DELETED_HEADER: &str = "Spindle-Deleted";
/// Dead letters: the reason, attempts, last status and when, as headers beside the event.
const DEAD_AT_HEADER: &str = "Spindle-Dead-At-Ms";
/// How long a cluster call (publish acknowledgement, KV write, stream read) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `connect` waits for a NATS cluster to elect its JetStream leader.
const STARTUP_PATIENCE: Duration = Duration::from_secs(45);
/// How often each node reads the whole set of subscriptions again, besides watching it.
const RESYNC_EVERY: Duration = Duration::from_secs(3);
/// How long a worker waits before re-creating its consumer after an error.
const WORKER_RETRY: Duration = Duration::from_secs(1);
/// How long the server waits for a node to settle a delivery before handing it to another
/// node: what a node's death delays its deliveries by. A send that takes longer keeps its
/// message by telling the server it is in progress every [`PROGRESS_EVERY`].
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often a node tells the server a slow send is still in progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// `[application.cluster]`: where the shared state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The NATS server (any node of a NATS cluster), `nats://host:port`.
    pub nats: String,
    /// Names the app's streams and subjects, so several apps can share one NATS
    /// cluster: the application's name, reduced to letters, digits, `-` and `_`.
    pub namespace: String,
    /// Replicas of each stream (1 to 5): 3 on a 3-node NATS cluster survives the
    /// loss of one NATS node.
    pub replicas: usize,
}

impl ClusterConfig {
    /// The settings for app `name` on the NATS server `nats`.
    pub fn new(nats: impl Into<String>, app: &str, replicas: usize) -> Self {
        ClusterConfig {
            nats: nats.into(),
            namespace: namespace(app),
            replicas: replicas.clamp(
                *manifest::CLUSTER_REPLICAS.start(),
                *manifest::CLUSTER_REPLICAS.end(),
            ),
        }
    }
}

/// A change to the subscriptions, as the watch of their stream reports it.
pub(crate) enum Change {
    /// Created or replaced.
    Put(Arc<Subscription>),
    /// Deleted.
    Delete(SubscriptionId),
}

/// The subscriptions as one read of the stream found them.
pub(crate) struct Stored {
    /// Those stored.
    pub subscriptions: Vec<Subscription>,
    /// Those deleted (their last message is a tombstone).
    pub deleted: Vec<SubscriptionId>,
    /// The stream's last sequence when it was read: a watch goes on after it.
    pub last: u64,
}

/// The connection to the cluster's state: the three streams.
pub(crate) struct Cluster {
    config: ClusterConfig,
    js: jetstream::Context,
    subscriptions: stream::Stream,
    deliveries: stream::Stream,
    dead: stream::Stream,
    /// Dedup keys of triggers and routes (`dedup_window`): when each was handled.
    seen: stream::Stream,
    /// The nodes of the cluster, as their heartbeats show them: a `rateLimit` is split among
    /// them.
    members: Arc<Members>,
    /// The running workers, by subscription.
    workers: Mutex<HashMap<SubscriptionId, JoinHandle<()>>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cluster(format!("{what}: {e}"))
}

/// An app's name as a token of NATS names (streams, subjects, queue groups, durable
/// consumers): letters, digits, `-` and `_`, anything else `_`.
pub fn namespace(app: &str) -> String {
    app.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Lower-case hex of some bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A subscription id as one subject token and consumer name: lower-case hex of its bytes
/// (ids may hold `.`, `*`, `>` or `:`, which subjects and names cannot).
fn token(id: &SubscriptionId) -> String {
    hex(id.as_str().as_bytes())
}

/// Bounds a cluster call by [`CALL_TIMEOUT`].
async fn timed<T, E: std::fmt::Display>(
    what: &str,
    call: impl std::future::IntoFuture<Output = Result<T, E>>,
) -> Result<T, Error> {
    match tokio::time::timeout(CALL_TIMEOUT, call.into_future()).await {
        Ok(result) => result.map_err(|e| unavailable(what, e)),
        Err(_) => Err(unavailable(what, "no answer within 10 s")),
    }
}

/// The last message of `subject` in `stream`, `None` when it has none, bounded by
/// [`CALL_TIMEOUT`].
async fn last_message(
    what: &str,
    stream: &stream::Stream,
    subject: &str,
) -> Result<Option<jetstream::message::StreamMessage>, Error> {
    match tokio::time::timeout(
        CALL_TIMEOUT,
        stream.get_last_raw_message_by_subject(subject),
    )
    .await
    {
        Ok(Ok(message)) => Ok(Some(message)),
        Ok(Err(e)) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Ok(Err(e)) => Err(unavailable(what, e)),
        Err(_) => Err(unavailable(what, "no answer within 10 s")),
    }
}

impl Cluster {
    /// Connects to NATS and opens (creating them when missing) the three streams.
    pub async fn connect(config: ClusterConfig) -> Result<Arc<Cluster>, Error> {
        let client = async_nats::ConnectOptions::new()
            .name("spindle-cluster")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .retry_on_initial_connect()
            .connect(config.nats.as_str())
            .await
            .map_err(|e| unavailable(&format!("connecting to {}", config.nats), e))?;
        let js = jetstream::new(client.clone());
        // A NATS cluster that has just started elects its JetStream leader first: until then
        // creating the streams fails, so it is tried again for a while.
        let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
        let (subscriptions, deliveries, dead, seen) = loop {
            match Self::open_state(&js, &config).await {
                Ok(state) => break state,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "JetStream not ready yet; trying again");
                    tokio::time::sleep(WORKER_RETRY).await;
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(nats = %config.nats, namespace = %config.namespace, replicas = config.replicas,
            "joined the cluster: subscriptions, deliveries and dead letters live in JetStream");
        let members = Members::join(&client, &config.namespace).await?;
        Ok(Arc::new(Cluster {
            config,
            js,
            subscriptions,
            deliveries,
            dead,
            seen,
            members,
            workers: Mutex::new(HashMap::new()),
        }))
    }

    /// Opens (creating them when missing) the subscriptions, deliveries and dead-letter
    /// streams.
    async fn open_state(
        js: &jetstream::Context,
        config: &ClusterConfig,
    ) -> Result<
        (
            stream::Stream,
            stream::Stream,
            stream::Stream,
            stream::Stream,
        ),
        Error,
    > {
        let ns = &config.namespace;
        let subscriptions = timed(
            "opening the subscriptions stream",
            js.get_or_create_stream(stream::Config {
                name: format!("SPINDLE_{ns}_subscriptions"),
                description: Some("Spindle: subscriptions, one subject each".into()),
                subjects: vec![format!("spindle.{ns}.sub.*")],
                retention: stream::RetentionPolicy::Limits,
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                num_replicas: config.replicas,
                ..Default::default()
            }),
        )
        .await?;
        let deliveries = timed(
            "opening the deliveries stream",
            js.get_or_create_stream(stream::Config {
                name: format!("SPINDLE_{ns}_deliveries"),
                description: Some(
                    "Spindle: accepted deliveries, one subject per subscription".into(),
                ),
                subjects: vec![format!("spindle.{ns}.deliver.>")],
                retention: stream::RetentionPolicy::WorkQueue,
                // A size limit the operator sets refuses new deliveries (the event is
                // answered 503) instead of dropping accepted ones.
                discard: stream::DiscardPolicy::New,
                storage: stream::StorageType::File,
                num_replicas: config.replicas,
                ..Default::default()
            }),
        )
        .await?;
        let dead = timed(
            "opening the dead-letter stream",
            js.get_or_create_stream(stream::Config {
                name: format!("SPINDLE_{ns}_dead"),
                description: Some("Spindle: dead letters, one subject per subscription".into()),
                subjects: vec![format!("spindle.{ns}.dead.>")],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                num_replicas: config.replicas,
                allow_direct: true,
                ..Default::default()
            }),
        )
        .await?;
        let seen = timed(
            "opening the dedup stream",
            js.get_or_create_stream(stream::Config {
                name: format!("SPINDLE_{ns}_seen"),
                description: Some("Spindle: when each dedup key was handled".into()),
                subjects: vec![format!("spindle.{ns}.seen.*")],
                retention: stream::RetentionPolicy::Limits,
                max_messages_per_subject: 1,
                max_messages: i64::from(crate::model::MAX_DEDUP_ENTRIES),
                max_age: crate::model::MAX_AGE,
                discard: stream::DiscardPolicy::Old,
                storage: stream::StorageType::File,
                num_replicas: config.replicas,
                ..Default::default()
            }),
        )
        .await?;
        Ok((subscriptions, deliveries, dead, seen))
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    fn deliver_subject(&self, id: &SubscriptionId) -> String {
        format!("spindle.{}.deliver.{}", self.config.namespace, token(id))
    }

    fn dead_subject(&self, id: &SubscriptionId) -> String {
        format!("spindle.{}.dead.{}", self.config.namespace, token(id))
    }

    // ---- Subscriptions ---------------------------------------------------------------------

    fn subscription_subject(&self, id: &SubscriptionId) -> String {
        format!("spindle.{}.sub.{}", self.config.namespace, token(id))
    }

    /// Every stored subscription, and the ids of the deleted ones (their tombstones), with
    /// the stream sequence a watch goes on from.
    pub async fn load_subscriptions(&self) -> Result<Stored, Error> {
        let mut stream = self.subscriptions.clone();
        let state = timed("reading the subscriptions", stream.info())
            .await?
            .state
            .clone();
        if state.messages == 0 {
            return Ok(Stored {
                subscriptions: Vec::new(),
                deleted: Vec::new(),
                last: state.last_sequence,
            });
        }
        let consumer = timed(
            "reading the subscriptions",
            self.subscriptions.create_consumer(pull::OrderedConfig {
                filter_subject: format!("spindle.{}.sub.*", self.config.namespace),
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            }),
        )
        .await?;
        let mut messages = timed("reading the subscriptions", consumer.messages()).await?;
        let mut subs = HashMap::new();
        let mut deleted = Vec::new();
        let mut last = state.last_sequence;
        loop {
            let message = match tokio::time::timeout(CALL_TIMEOUT, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => return Err(unavailable("reading the subscriptions", e)),
                Ok(None) => break,
                Err(_) => {
                    return Err(unavailable(
                        "reading the subscriptions",
                        "no answer within 10 s",
                    ));
                }
            };
            let (pending, seq) = match message.info() {
                Ok(info) => (info.pending, info.stream_sequence),
                Err(_) => (0, last),
            };
            last = last.max(seq);
            match subscription_change(&message) {
                Some(Change::Put(sub)) => {
                    subs.insert(sub.id.clone(), (*sub).clone());
                }
                Some(Change::Delete(id)) => {
                    subs.remove(&id);
                    deleted.push(id);
                }
                None => {}
            }
            if pending == 0 {
                break;
            }
        }
        Ok(Stored {
            subscriptions: subs.into_values().collect(),
            deleted,
            last,
        })
    }

    /// The stored record of a subscription (its last message, unless a tombstone).
    async fn current(&self, id: &SubscriptionId) -> Result<Option<Vec<u8>>, Error> {
        let subject = self.subscription_subject(id);
        let last = last_message("reading a subscription", &self.subscriptions, &subject).await?;
        Ok(last
            .filter(|message| message.headers.get(DELETED_HEADER).is_none())
            .map(|message| message.payload.to_vec()))
    }

    /// Publishes to a stream and waits for JetStream to acknowledge it (both bounded).
    async fn publish_acked(
        &self,
        what: &str,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<(), Error> {
        let ack = timed(
            what,
            self.js.publish_with_headers(subject, headers, payload),
        )
        .await?;
        timed(&format!("{what} (acknowledgement)"), ack).await?;
        Ok(())
    }

    /// Whether a subscription is stored.
    async fn stored(&self, id: &SubscriptionId) -> Result<bool, Error> {
        Ok(self.current(id).await?.is_some())
    }

    /// Stores a subscription; returns whether it is new.
    pub async fn put_subscription(&self, sub: &Subscription) -> Result<bool, Error> {
        let existed = self.stored(&sub.id).await?;
        let record = Bytes::from(crate::schema::encode_subscription(sub));
        let mut headers = HeaderMap::new();
        headers.insert(SUBSCRIPTION_HEADER, sub.id.as_str());
        let subject = self.subscription_subject(&sub.id);
        self.publish_acked("storing a subscription", subject, headers, record)
            .await?;
        Ok(!existed)
    }

    /// Deletes a subscription (a tombstone every node's watch sees), its consumer and its
    /// queued deliveries (its dead letters are kept until purged); returns whether it
    /// existed.
    pub async fn delete_subscription(&self, id: &SubscriptionId) -> Result<bool, Error> {
        let existed = self.stored(id).await?;
        let mut headers = HeaderMap::new();
        headers.insert(SUBSCRIPTION_HEADER, id.as_str());
        headers.insert(DELETED_HEADER, "true");
        let subject = self.subscription_subject(id);
        self.publish_acked("deleting a subscription", subject, headers, Bytes::new())
            .await?;
        self.stop_worker(id);
        let _ = timed(
            "deleting a consumer",
            self.deliveries.delete_consumer(&token(id)),
        )
        .await;
        timed(
            "dropping queued deliveries",
            self.deliveries.purge().filter(self.deliver_subject(id)),
        )
        .await?;
        Ok(existed)
    }

    /// Watches the subscriptions after stream sequence `after`, handing every change to
    /// `apply` (on every node, including the one that made it). Every [`RESYNC_EVERY`] it
    /// also reads the whole set again and hands it to `reconcile`, so a node whose watch
    /// stalled (its NATS node died with the watch's consumer) converges all the same.
    pub fn watch(
        self: &Arc<Self>,
        after: u64,
        apply: impl Fn(Change) + Send + Sync + 'static,
        reconcile: impl Fn(Stored) + Send + Sync + 'static,
    ) -> JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut last = after;
            let mut resync = tokio::time::interval(RESYNC_EVERY);
            resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            resync.tick().await;
            loop {
                let consumer = cluster
                    .subscriptions
                    .create_consumer(pull::OrderedConfig {
                        filter_subject: format!("spindle.{}.sub.*", cluster.config.namespace),
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: last + 1,
                        },
                        ..Default::default()
                    })
                    .await;
                let messages = match consumer {
                    Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let mut messages = match messages {
                    Ok(messages) => messages,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch the subscriptions");
                        tokio::time::sleep(WORKER_RETRY).await;
                        continue;
                    }
                };
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(Ok(message)) => {
                                if let Ok(info) = message.info() {
                                    last = last.max(info.stream_sequence);
                                }
                                if let Some(change) = subscription_change(&message) {
                                    apply(change);
                                }
                            }
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "subscription watch interrupted");
                                tokio::time::sleep(WORKER_RETRY).await;
                                break;
                            }
                            None => break,
                        },
                        _ = resync.tick() => match cluster.load_subscriptions().await {
                            Ok(stored) => {
                                let seq = stored.last;
                                reconcile(stored);
                                if seq > last {
                                    // The watch is behind: go on from what was just read.
                                    last = seq;
                                    break;
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot read the subscriptions"),
                        },
                    }
                }
            }
        })
    }

    // ---- Accepting ---------------------------------------------------------------------------

    /// Queues each event for its subscription in the deliveries stream, resolving once
    /// JetStream acknowledged every publish. Returns how many were queued. An event marked
    /// `dedup` carries its subscription, `source` and `id` as `Nats-Msg-Id`, so the stream
    /// drops a copy published within its duplicate window (two minutes), whichever node
    /// took it in.
    pub async fn enqueue(
        &self,
        deliveries: &[(SubscriptionId, &Event, bool)],
    ) -> Result<usize, Error> {
        let now = store::now_ms().to_string();
        let mut acks = Vec::with_capacity(deliveries.len());
        for (id, event, dedup) in deliveries {
            let mut headers = HeaderMap::new();
            headers.insert(SUBSCRIPTION_HEADER, id.as_str());
            headers.insert(ACCEPTED_HEADER, now.as_str());
            if *dedup {
                // The subscription as a token, the source and id as a JSON array: no control
                // characters, which a header value cannot hold, and no ambiguity.
                let key = format!(
                    "{}{}",
                    token(id),
                    serde_json::json!([event.source(), event.id()])
                );
                headers.insert(async_nats::header::NATS_MESSAGE_ID, key.as_str());
            }
            let payload = Bytes::from(cloudevent::json::encode(event));
            let ack = timed(
                "queueing a delivery",
                self.js
                    .publish_with_headers(self.deliver_subject(id), headers, payload),
            )
            .await?;
            acks.push(ack);
        }
        for ack in acks {
            timed("queueing a delivery (acknowledgement)", ack).await?;
        }
        Ok(deliveries.len())
    }

    // ---- Workers -----------------------------------------------------------------------------

    /// Starts (or restarts) the worker of a subscription on this node.
    pub fn start_worker(self: &Arc<Self>, sub: Arc<Subscription>, sink: Arc<dyn Sink>) {
        let cluster = self.clone();
        let id = sub.id.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = cluster.work(&sub, &sink).await {
                    tracing::warn!(subscription = %sub.id, error = %e,
                        "cluster delivery interrupted; resuming");
                }
                tokio::time::sleep(WORKER_RETRY).await;
            }
        });
        let old = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, task);
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Stops a subscription's worker on this node (messages it held are redelivered).
    pub fn stop_worker(&self, id: &SubscriptionId) {
        let task = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Stops every worker on this node, and its heartbeat.
    pub fn stop_all(&self) {
        self.members.leave();
        let tasks: Vec<_> = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, task) in tasks {
            task.abort();
        }
    }

    /// The subscriptions whose worker on this node has stopped (it restarts itself after
    /// errors, so this is a task that panicked).
    pub fn dead_workers(&self) -> Vec<SubscriptionId> {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, task)| task.is_finished())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Pulls the subscription's deliveries from its shared consumer and sends them, up to
    /// its `maxInFlight` at once on this node (and across the cluster, by the consumer's
    /// `max_ack_pending`). Returns on an error of the consumer.
    async fn work(
        self: &Arc<Self>,
        sub: &Arc<Subscription>,
        sink: &Arc<dyn Sink>,
    ) -> Result<(), Error> {
        let policy = &sub.delivery;
        let max_in_flight = if policy.ordered || policy.ordered_by_partitionkey {
            1
        } else {
            policy.max_in_flight.max(1)
        };
        let name = token(&sub.id);
        let config = pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("Spindle deliveries of {}", sub.id)),
            filter_subject: self.deliver_subject(&sub.id),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_deliver: -1,
            max_ack_pending: i64::from(max_in_flight),
            ..Default::default()
        };
        let mut consumer: jetstream::consumer::Consumer<pull::Config> = timed(
            "opening the subscription's consumer",
            self.deliveries
                .get_or_create_consumer(&name, config.clone()),
        )
        .await?;
        if consumer.cached_info().config.max_ack_pending != config.max_ack_pending {
            // A changed maxInFlight or ordering: the consumer is made again with it. What
            // the old one had handed out and not settled is handed out again (at least once).
            timed(
                "replacing the subscription's consumer",
                self.deliveries.delete_consumer(&name),
            )
            .await?;
            consumer = timed(
                "opening the subscription's consumer",
                self.deliveries.create_consumer(config),
            )
            .await?;
        }
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(usize::try_from(max_in_flight).unwrap_or(1).min(256))
            .messages()
            .await
            .map_err(|e| unavailable("pulling deliveries", e))?;
        let permits = Arc::new(Semaphore::new(usize::try_from(max_in_flight).unwrap_or(1)));
        // A `rateLimit` is the cluster's: each node sends its share of it (the work queue
        // hands the nodes a like share of the messages).
        let pacing = |rate: f64| Duration::from_secs_f64(self.members.live() as f64 / rate);
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| unavailable("pulling deliveries", e))?;
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Closed)?;
            let (cluster, sub, sink) = (self.clone(), sub.clone(), sink.clone());
            let one = async move {
                cluster.deliver(&sub, &sink, message).await;
                drop(permit);
            };
            if max_in_flight == 1 {
                // One at a time, in order: the next message waits for this one's outcome.
                one.await;
            } else {
                tokio::spawn(one);
            }
            if let Some(rate) = policy.rate_limit {
                tokio::time::sleep(pacing(rate)).await;
            }
        }
        Err(unavailable(
            "pulling deliveries",
            "the message stream ended",
        ))
    }

    /// One attempt at one message: ack when delivered, nak with the policy's delay when it
    /// may be retried, dead-letter then terminate when not.
    async fn deliver(&self, sub: &Subscription, sink: &Arc<dyn Sink>, message: jetstream::Message) {
        let (attempts, accepted_ms) = match message.info() {
            Ok(info) => (
                u32::try_from(info.delivered).unwrap_or(u32::MAX).max(1),
                header_u64(&message, ACCEPTED_HEADER).unwrap_or_else(|| {
                    u64::try_from(info.published.unix_timestamp_nanos() / 1_000_000)
                        .unwrap_or_default()
                }),
            ),
            Err(_) => (1, store::now_ms()),
        };
        let event = match cloudevent::json::decode(&message.payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(subscription = %sub.id, error = %e,
                    "a queued delivery is not a CloudEvent; dropped");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        if let Some(why) = sub.disabled() {
            let reason = format!("the subscription is disabled ({why})");
            self.give_up(
                sub,
                &event,
                &reason,
                attempts.saturating_sub(1),
                None,
                &message,
            )
            .await;
            return;
        }
        let outcome = {
            let send = sink.send(&event);
            tokio::pin!(send);
            let mut progress = tokio::time::interval(PROGRESS_EVERY);
            progress.tick().await;
            loop {
                tokio::select! {
                    outcome = &mut send => break outcome,
                    _ = progress.tick() => {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                }
            }
        };
        let settled = match outcome {
            SendOutcome::Delivered => message.double_ack().await.map_err(|e| e.to_string()),
            SendOutcome::Retry {
                after,
                status,
                reason,
            } => {
                let meta = EntryMeta {
                    attempts,
                    first_ms: accepted_ms,
                    next_ms: store::now_ms(),
                };
                match next_attempt(&sub.delivery, &meta, after, status, &reason) {
                    NextAttempt::At { delay, .. } => {
                        tracing::warn!(subscription = %sub.id, event = event.id(), attempts,
                            retry_in = ?delay, "delivery failed, will retry: {reason}");
                        message
                            .ack_with(AckKind::Nak(Some(delay)))
                            .await
                            .map_err(|e| e.to_string())
                    }
                    NextAttempt::GiveUp(why) => {
                        self.give_up(sub, &event, &why, attempts, status, &message)
                            .await;
                        Ok(())
                    }
                }
            }
            SendOutcome::Permanent { reason, status } => {
                self.give_up(sub, &event, &reason, attempts, status, &message)
                    .await;
                Ok(())
            }
            SendOutcome::Gone { reason, status } => {
                self.give_up(sub, &event, &reason, attempts, status, &message)
                    .await;
                self.disable(sub, &reason).await;
                Ok(())
            }
        };
        if let Err(e) = settled {
            // Not settled: the server redelivers after the ack wait.
            tracing::warn!(subscription = %sub.id, event = event.id(), error = %e,
                "could not settle a delivery; it will be redelivered");
        }
    }

    /// The sink is gone for good (webhook `410 Gone`): the subscription is stored disabled,
    /// with why and since when, so every node dead-letters what it holds for it until it is
    /// stored again (`PUT`), as one node does.
    async fn disable(&self, sub: &Subscription, why: &str) {
        if sub.disabled().is_some() {
            return;
        }
        // A subscription replaced or deleted meanwhile is newer news than this sink's answer.
        let record = crate::schema::encode_subscription(sub);
        if !matches!(self.current(&sub.id).await, Ok(Some(current)) if current == record) {
            return;
        }
        tracing::warn!(subscription = %sub.id, sink = %sub.sink, reason = %why,
            "subscription disabled in the cluster: the sink is gone; PUT the subscription to \
             enable it again");
        let since = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut disabled = sub.clone();
        disabled
            .config
            .get_or_insert_with(Default::default)
            .insert(CONFIG_DISABLED.to_owned(), format!("{why} ({since})"));
        if let Err(e) = self.put_subscription(&disabled).await {
            tracing::error!(subscription = %sub.id, error = %e,
                "could not store that the subscription is disabled");
        }
    }

    /// Dead-letters the message's event, then terminates the message. If the dead letter
    /// cannot be stored, the message is left unsettled, so it is redelivered: nothing is lost.
    async fn give_up(
        &self,
        sub: &Subscription,
        event: &Event,
        reason: &str,
        attempts: u32,
        status: Option<u16>,
        message: &jetstream::Message,
    ) {
        match self
            .dead_letter(&sub.id, &sub.sink, event, reason, attempts, status)
            .await
        {
            Ok(()) => {
                let _ = message.ack_with(AckKind::Term).await;
            }
            Err(e) => tracing::error!(subscription = %sub.id, event = event.id(), error = %e,
                "could not store a dead letter; the delivery will be retried"),
        }
    }

    // ---- Dedup of triggers and routes -------------------------------------------------------

    fn seen_subject(&self, key: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        format!("spindle.{}.seen.{}", self.config.namespace, hex(&digest))
    }

    /// Whether `key` (see [`crate::dedup::key`]) was handled, by any node, less than
    /// `window` ago.
    pub async fn seen_within(&self, key: &str, window: Duration) -> Result<bool, Error> {
        let subject = self.seen_subject(key);
        let Some(message) = last_message("reading a dedup key", &self.seen, &subject).await? else {
            return Ok(false);
        };
        let at_ms: u64 = std::str::from_utf8(&message.payload)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or_default();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Ok(store::now_ms() < at_ms.saturating_add(window_ms))
    }

    /// Records, for every node, that `key` was handled now.
    pub async fn remember(&self, key: &str) -> Result<(), Error> {
        let now = Bytes::from(store::now_ms().to_string());
        let subject = self.seen_subject(key);
        self.publish_acked("storing a dedup key", subject, HeaderMap::new(), now)
            .await
    }

    // ---- Dead letters ------------------------------------------------------------------------

    /// Stores a dead letter: the event annotated with why, as the embedded store keeps them.
    pub async fn dead_letter(
        &self,
        id: &SubscriptionId,
        sink: &str,
        event: &Event,
        reason: &str,
        attempts: u32,
        status: Option<u16>,
    ) -> Result<(), Error> {
        let record = deadletter::abandon(id, sink, event, reason, attempts, status);
        let json = store::decode_dead(&record)?.1.to_vec();
        let mut headers = HeaderMap::new();
        headers.insert(SUBSCRIPTION_HEADER, id.as_str());
        headers.insert(DEAD_AT_HEADER, store::now_ms().to_string().as_str());
        let subject = self.dead_subject(id);
        self.publish_acked("storing a dead letter", subject, headers, Bytes::from(json))
            .await
    }

    /// Dead letters of one subscription or all, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        subscription: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        let filter = match subscription {
            Some(id) => self.dead_subject(id),
            None => self.all_dead_subjects(),
        };
        Ok(self.read_dead(&filter, 1, u64::MAX, limit).await?.0)
    }

    fn all_dead_subjects(&self) -> String {
        format!("spindle.{}.dead.>", self.config.namespace)
    }

    /// Up to `limit` dead letters under subject `filter`, from stream sequence `from` on and
    /// none past `until`, with the last sequence looked at (unreadable letters are logged and
    /// skipped).
    async fn read_dead(
        &self,
        filter: &str,
        from: u64,
        until: u64,
        limit: usize,
    ) -> Result<(Vec<DeadLetter>, Option<u64>), Error> {
        let mut letters = Vec::new();
        let mut last = None;
        let mut next = from.max(1);
        while letters.len() < limit {
            let message = match tokio::time::timeout(
                CALL_TIMEOUT,
                self.dead.direct_get_next_for_subject(filter, Some(next)),
            )
            .await
            {
                Ok(Ok(message)) => message,
                Ok(Err(e)) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                    break;
                }
                Ok(Err(e)) => return Err(unavailable("reading dead letters", e)),
                Err(_) => return Err(unavailable("reading dead letters", "no answer within 10 s")),
            };
            if message.sequence > until {
                break;
            }
            last = Some(message.sequence);
            next = message.sequence + 1;
            match dead_letter_of(&message) {
                Ok(letter) => letters.push(letter),
                Err(e) => {
                    tracing::error!(seq = message.sequence, error = %e, "unreadable dead letter")
                }
            }
        }
        Ok((letters, last))
    }

    /// Works through the dead letters `selector` names in pages of [`deadletter::CHUNK`],
    /// handing each page to `each`, so a large dead-letter queue is never read whole. Only
    /// letters already there when it starts are taken: a replayed event that fails again is
    /// left for the next replay instead of being chased. Returns what `each` counted.
    async fn in_pages<'a, F, Fut>(
        &'a self,
        selector: &DeadLetterSelector,
        each: F,
    ) -> Result<usize, Error>
    where
        F: Fn(Vec<DeadLetter>) -> Fut,
        Fut: std::future::Future<Output = Result<usize, Error>> + 'a,
    {
        let mut stream = self.dead.clone();
        let until = timed("reading dead letters", stream.info())
            .await?
            .state
            .last_sequence;
        let (filter, from, until) = match selector {
            DeadLetterSelector::All => (self.all_dead_subjects(), 1, until),
            DeadLetterSelector::Subscription(id) => (self.dead_subject(id), 1, until),
            DeadLetterSelector::One(id, seq) => (self.dead_subject(id), *seq, until.min(*seq)),
        };
        let mut from = from;
        let mut count = 0;
        loop {
            let (page, last) = self
                .read_dead(&filter, from, until, deadletter::CHUNK)
                .await?;
            count += each(page).await?;
            match last {
                Some(last) => from = last + 1,
                None => return Ok(count),
            }
        }
    }

    /// Queues the selected dead letters again (stripped of their `deadletter*` extensions,
    /// with a fresh attempt count and age), then removes them. Letters of deleted
    /// subscriptions stay. Returns how many were replayed.
    pub async fn replay(
        &self,
        selector: &DeadLetterSelector,
        exists: impl Fn(&SubscriptionId) -> bool,
    ) -> Result<usize, Error> {
        let exists = &exists;
        self.in_pages(selector, |page| async move {
            let mut count = 0;
            for letter in page {
                if !exists(&letter.subscription) {
                    continue;
                }
                let mut event = letter.event.clone();
                deadletter::strip(&mut event);
                self.enqueue(&[(letter.subscription.clone(), &event, false)])
                    .await?;
                timed(
                    "removing a replayed dead letter",
                    self.dead.delete_message(letter.seq),
                )
                .await?;
                count += 1;
            }
            Ok(count)
        })
        .await
    }

    /// Deletes the selected dead letters for good. Returns how many.
    pub async fn purge(&self, selector: &DeadLetterSelector) -> Result<usize, Error> {
        self.in_pages(selector, |page| async move {
            for letter in &page {
                timed(
                    "purging a dead letter",
                    self.dead.delete_message(letter.seq),
                )
                .await?;
            }
            Ok(page.len())
        })
        .await
    }

    /// Whether JetStream answers for each of the app's streams (each has a leader), within
    /// 2 s each.
    pub async fn readiness(&self) -> Result<(), String> {
        for (what, stream) in [
            ("subscriptions", &self.subscriptions),
            ("deliveries", &self.deliveries),
            ("dead letters", &self.dead),
            ("dedup keys", &self.seen),
        ] {
            let mut stream = stream.clone();
            match tokio::time::timeout(Duration::from_secs(2), stream.info()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(format!(
                        "JetStream at {} refuses the {what} stream: {e}",
                        self.config.nats
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "JetStream at {} did not answer for the {what} stream within 2 s",
                        self.config.nats
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The subscription id a subject token encodes (see [`token`]).
fn decode_token(key: &str) -> Option<SubscriptionId> {
    if !key.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..key.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(key.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok().map(SubscriptionId::from)
}

fn header_u64(message: &jetstream::Message, name: &str) -> Option<u64> {
    message.headers.as_ref()?.get(name)?.as_str().parse().ok()
}

/// A dead letter from its stream message.
fn dead_letter_of(message: &jetstream::message::StreamMessage) -> Result<DeadLetter, Error> {
    let subscription = message
        .headers
        .get(SUBSCRIPTION_HEADER)
        .map(|v| SubscriptionId::from(v.as_str()))
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "dead letter {} has no subscription",
                message.sequence
            ))
        })?;
    let dead_ms = message
        .headers
        .get(DEAD_AT_HEADER)
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .unwrap_or_default();
    DeadLetter::from_stored(store::StoredDead {
        sub: subscription.as_str().to_owned(),
        seq: message.sequence,
        dead_ms,
        json: message.payload.to_vec(),
    })
}

/// What a message of the subscriptions stream says: a subscription stored, or deleted.
fn subscription_change(message: &jetstream::Message) -> Option<Change> {
    let headers = message.headers.as_ref();
    let id = headers
        .and_then(|h| h.get(SUBSCRIPTION_HEADER))
        .map(|v| SubscriptionId::from(v.as_str()))
        .or_else(|| {
            decode_token(
                message
                    .subject
                    .as_str()
                    .rsplit('.')
                    .next()
                    .unwrap_or_default(),
            )
        })?;
    if headers.is_some_and(|h| h.get(DELETED_HEADER).is_some()) {
        return Some(Change::Delete(id));
    }
    match crate::schema::decode_subscription(id.as_str(), &message.payload) {
        Ok(sub) => Some(Change::Put(Arc::new(sub))),
        Err(e) => {
            tracing::error!(subscription = %id, error = %e, "unreadable subscription record");
            None
        }
    }
}

/// How often a node says it is alive, and how long it counts as alive after.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_LIFETIME: Duration = Duration::from_secs(3);

/// The live nodes of a cluster: each node publishes its id on `spindle.<ns>.nodes` every
/// second (core NATS, nothing stored) and counts the ids it heard in the last three.
pub(crate) struct Members {
    seen: Mutex<HashMap<String, tokio::time::Instant>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Members {
    /// Starts this node's heartbeat and listens to the others'.
    async fn join(client: &async_nats::Client, namespace: &str) -> Result<Arc<Members>, Error> {
        let subject = format!("spindle.{namespace}.nodes");
        let me = uuid::Uuid::new_v4().simple().to_string();
        let mut heard = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| unavailable("listening to the cluster's heartbeats", e))?;
        let members = Arc::new(Members {
            seen: Mutex::new(HashMap::from([(me.clone(), tokio::time::Instant::now())])),
            tasks: Mutex::new(Vec::new()),
        });
        let listener = {
            let members = members.clone();
            tokio::spawn(async move {
                while let Some(beat) = heard.next().await {
                    let id = String::from_utf8_lossy(&beat.payload).into_owned();
                    members
                        .seen
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, tokio::time::Instant::now());
                }
            })
        };
        let beat = {
            let (client, members) = (client.clone(), members.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(HEARTBEAT_EVERY);
                loop {
                    every.tick().await;
                    let _ = client.publish(subject.clone(), me.clone().into()).await;
                    let mut seen = members.seen.lock().unwrap_or_else(|e| e.into_inner());
                    // Nodes that stopped are forgotten: the map holds the live ones only.
                    seen.retain(|_, at| at.elapsed() < HEARTBEAT_LIFETIME);
                    seen.insert(me.clone(), tokio::time::Instant::now());
                }
            })
        };
        *members.tasks.lock().unwrap_or_else(|e| e.into_inner()) = vec![listener, beat];
        Ok(members)
    }

    /// How many nodes were heard from lately, this one included (at least 1).
    fn live(&self) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| at.elapsed() < HEARTBEAT_LIFETIME);
        seen.len().max(1)
    }

    /// Stops this node's heartbeat (the others stop counting it within three seconds).
    fn leave(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}
