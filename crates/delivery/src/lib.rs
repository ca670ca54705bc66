//! # spindle-delivery
//!
//! Durable, at-least-once delivery of CloudEvents to the sinks of subscriptions (the
//! CloudEvents Subscriptions API model), with retries, backoff, rate and concurrency limits,
//! per-key ordering and dead letters. Nothing accepted is lost: an event is acknowledged to
//! its producer only once its sinks took it or its queue entries are fsynced, and leaves the
//! queue only after its sink took it (or it is moved, atomically, to the dead letters). An
//! idle subscription's healthy sink gets events directly, without touching the disk.
//!
//! - [`Delivery`]: the engine over one state directory (one redb file): subscriptions,
//!   workers, dead letters.
//! - [`Outbox::enqueue`]: acceptance: a direct send when the subscription is idle, else (or
//!   when it fails) durable queueing with group commit.
//! - [`Sink`], [`SinkFactory`], [`SinkRegistry`]: pluggable destinations, keyed by the sink
//!   URI's scheme; [`sink::http`] is the HTTP webhook sink, [`sink::broker`] the NATS,
//!   MQTT, AMQP 1.0 and Kafka sinks (through `spindle-transports`).
//!
//! ```no_run
//! # async fn demo(event: cloudevent::Event) -> Result<(), delivery::Error> {
//! use delivery::{Delivery, Protocol, SinkRegistry, Subscription};
//!
//! let engine = Delivery::open(".spindle", SinkRegistry::with_defaults()).await?;
//! let sub = Subscription::new("audit", Protocol::Http, "http://127.0.0.1:9000/hook");
//! engine.put_subscription(sub.clone()).await?;
//! // Resolves once delivered or durable: now answer 202.
//! engine.outbox().enqueue(vec![(sub.id.clone(), event)]).await?;
//! engine.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod backoff;
pub mod cluster;
mod committer;
pub mod deadletter;
mod dedup;
mod engine;
mod error;
pub mod hops;
pub mod model;
mod outbox;
pub mod quota;
pub mod schema;
pub mod sink;
mod store;
pub mod tap;
pub mod trace;
mod worker;

pub use cluster::ClusterConfig;
pub use deadletter::{DeadLetter, DeadLetterSelector};
pub use engine::Delivery;
pub use error::Error;
pub use model::{
    CONFIG_DISABLED, ContentMode, DEFAULT_SEQUENCE_GAP, DeliveryPolicy, Protocol, Subscription,
    SubscriptionId, SubscriptionRequest,
};
pub use outbox::Outbox;
pub use quota::Usage;
pub use sink::{SendFuture, SendOutcome, Sink, SinkError, SinkFactory, SinkRegistry};
pub use store::DB_FILE;
pub use worker::PARTITION_KEY;
