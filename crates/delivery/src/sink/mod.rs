//! Sinks: where a subscription's events go. The delivery engine only knows the [`Sink`]
//! trait and what a send's [`SendOutcome`] means for retrying; each protocol brings its own
//! implementation, built by a [`SinkFactory`] registered for the sink URI's scheme.

pub mod broker;
pub mod egress;
pub mod http;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cloudevent::Event;

use crate::model::Subscription;

pub use self::broker::BrokerSinkFactory;
pub use self::http::HttpSinkFactory;

/// What one delivery attempt came to: the engine's only input for retry decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The sink took the event: it is removed from the outbox.
    Delivered,
    /// A transient failure (timeout, connection refused, 408, 429, 5xx): try again later.
    Retry {
        /// How long the sink asked us to wait (`Retry-After`), overriding the backoff.
        after: Option<Duration>,
        /// The protocol status, if the sink answered.
        status: Option<u16>,
        /// What went wrong, for logs and dead letters.
        reason: String,
    },
    /// The sink is gone for good (webhook `410 Gone`: "the sender SHOULD refrain from
    /// sending any further notifications"): the event is dead-lettered and the whole
    /// subscription disabled until it is stored again (`PUT`).
    Gone {
        /// What the sink said.
        reason: String,
        /// The protocol status (410 for HTTP).
        status: Option<u16>,
    },
    /// The sink will never take this event (e.g. 400, 404, 415): dead-letter it now.
    Permanent {
        /// What went wrong.
        reason: String,
        /// The protocol status, if the sink answered.
        status: Option<u16>,
    },
}

/// The future of one send; boxed so that sinks can be used as trait objects.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// A destination for events of one subscription. Implementations must be cheap to call
/// concurrently (up to the subscription's `max_in_flight` sends at a time) and must never
/// panic: every failure is an outcome.
pub trait Sink: Send + Sync + 'static {
    /// Makes one delivery attempt.
    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a>;

    /// A short description for logs (usually the sink URI, without credentials).
    fn describe(&self) -> &str;

    /// Whether an event may be sent before it is queued, the outbox keeping it only if that
    /// first attempt fails (see [`crate::Outbox::enqueue`]). Worth it for sinks that answer
    /// quickly and do no work of their own (HTTP, brokers); not for a sink that runs a
    /// handler in the caller's task, whose outcome could take as long as the handler.
    fn takes_direct_sends(&self) -> bool {
        false
    }
}

/// Why no sink could be built for a subscription.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// No factory is registered for the sink URI's scheme.
    #[error("no sink for scheme `{scheme}` (supported: {supported})")]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
        /// The registered schemes.
        supported: String,
    },
    /// The sink URI or protocol settings are invalid.
    #[error("invalid sink `{sink}`: {reason}")]
    Invalid {
        /// The sink URI.
        sink: String,
        /// Why.
        reason: String,
    },
}

/// Builds sinks for subscriptions of one URI scheme. Called when a subscription is created,
/// updated, or loaded at start-up; the sink then lives as long as the subscription's worker.
pub trait SinkFactory: Send + Sync + 'static {
    /// Builds the sink, checking the sink URI, protocol settings and credentials.
    fn create(&self, subscription: &Subscription) -> Result<Arc<dyn Sink>, SinkError>;
}

/// How long an HTTP sink may take to answer one delivery before it counts as failed.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sink factories by URI scheme: how protocols (HTTP here, NATS, MQTT, AMQP and Kafka in
/// [`broker`], or an embedder's own) plug in without the engine knowing them.
#[derive(Clone, Default)]
pub struct SinkRegistry {
    factories: HashMap<String, Arc<dyn SinkFactory>>,
}

impl SinkRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        SinkRegistry::default()
    }

    /// A registry with the built-in sinks, so every protocol Spindle can deliver to works
    /// without setup: `http` and `https` webhooks (one client, the system's root
    /// certificates), and the brokers `nats`, `mqtt`, `amqp` and `kafka`
    /// ([`BrokerSinkFactory`]).
    pub fn with_defaults() -> Self {
        Self::with_egress(Arc::new(http_server::EgressPolicy::default()))
    }

    /// [`SinkRegistry::with_defaults`] under an egress policy (`[application.egress]`): sinks
    /// it refuses cannot be created, and HTTP sinks are checked again on every address their
    /// host resolves to.
    pub fn with_egress(policy: Arc<http_server::EgressPolicy>) -> Self {
        let webhooks = HttpSinkFactory::with_settings(DEFAULT_HTTP_TIMEOUT, &[], policy.clone())
            .expect("the default TLS settings always build");
        let brokers = BrokerSinkFactory::new().with_egress(policy);
        Self::with_factories(Arc::new(webhooks), Arc::new(brokers))
    }

    /// The built-in sinks with `webhooks` as the `http`/`https` factory and `brokers` for
    /// every broker scheme (e.g. factories with TLS settings of their own per sink).
    pub fn with_factories(webhooks: Arc<HttpSinkFactory>, brokers: Arc<BrokerSinkFactory>) -> Self {
        let mut registry = SinkRegistry::new();
        registry.register("http", webhooks.clone());
        registry.register("https", webhooks);
        for scheme in broker::schemes() {
            registry.register(scheme, brokers.clone());
        }
        registry
    }

    /// Registers (or replaces) the factory for a scheme.
    pub fn register(&mut self, scheme: &str, factory: Arc<dyn SinkFactory>) -> &mut Self {
        self.factories.insert(scheme.to_ascii_lowercase(), factory);
        self
    }

    /// Builds the sink for a subscription from its sink URI's scheme.
    pub fn create(&self, subscription: &Subscription) -> Result<Arc<dyn Sink>, SinkError> {
        let scheme = subscription
            .sink_scheme()
            .ok_or_else(|| SinkError::Invalid {
                sink: subscription.sink.clone(),
                reason: "not an absolute URI".into(),
            })?;
        match self.factories.get(&scheme) {
            Some(factory) => factory.create(subscription),
            None => {
                let mut supported: Vec<_> = self.factories.keys().cloned().collect();
                supported.sort();
                Err(SinkError::UnsupportedScheme {
                    scheme,
                    supported: supported.join(", "),
                })
            }
        }
    }
}
