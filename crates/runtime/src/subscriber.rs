//! A component as a subscriber: a subscription whose sink is `component:<id>` delivers its
//! events to that component of the app, in process, with the delivery engine's retries and
//! dead letters; what the component produces flows on like any handler's results (except back
//! to the subscription that delivered it, which would loop).

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cloudevent::Event;
use delivery::{
    SendFuture, SendOutcome, Sink, SinkError, SinkFactory, Subscription, SubscriptionId,
};

use crate::dispatch::{DispatchError, Dispatcher, ProcessError};
use crate::handler::HandlerError;

/// The sink URI scheme of in-process subscribers.
pub const SCHEME: &str = "component";

/// How long a delivery waits when the app is still starting (the dispatcher is not set).
const STARTING_RETRY: Duration = Duration::from_millis(200);
/// How long a delivery waits when the component is at its concurrency cap.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// Builds `component:<id>` sinks. The dispatcher is set once the app is assembled, since the
/// delivery engine (which needs this factory) is opened first.
#[derive(Clone)]
pub struct ComponentSinkFactory {
    components: Arc<BTreeSet<String>>,
    dispatcher: Arc<OnceLock<Dispatcher>>,
}

impl ComponentSinkFactory {
    /// A factory for the given component ids.
    pub fn new(components: BTreeSet<String>) -> Self {
        ComponentSinkFactory {
            components: Arc::new(components),
            dispatcher: Arc::new(OnceLock::new()),
        }
    }

    /// Connects the sinks to the app's dispatcher; deliveries wait until this is done.
    pub fn set_dispatcher(&self, dispatcher: Dispatcher) {
        let _ = self.dispatcher.set(dispatcher);
    }
}

impl SinkFactory for ComponentSinkFactory {
    fn create(&self, subscription: &Subscription) -> Result<Arc<dyn Sink>, SinkError> {
        let invalid = |reason: String| SinkError::Invalid {
            sink: subscription.sink.clone(),
            reason,
        };
        let (_, name) = subscription
            .sink
            .split_once(':')
            .ok_or_else(|| invalid("expected `component:<id>`".into()))?;
        if !self.components.contains(name) {
            let known: Vec<&str> = self.components.iter().map(String::as_str).collect();
            return Err(invalid(format!(
                "this app has no CloudEvents component `{name}` (it has: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        Ok(Arc::new(ComponentSink {
            subscription: subscription.id.clone(),
            component: name.to_owned(),
            uri: subscription.sink.clone(),
            dispatcher: self.dispatcher.clone(),
        }))
    }
}

/// Delivers to one component of the app.
struct ComponentSink {
    subscription: SubscriptionId,
    component: String,
    uri: String,
    dispatcher: Arc<OnceLock<Dispatcher>>,
}

impl Sink for ComponentSink {
    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a> {
        Box::pin(async move {
            let Some(dispatcher) = self.dispatcher.get() else {
                return SendOutcome::Retry {
                    after: Some(STARTING_RETRY),
                    status: None,
                    reason: "the app is still starting".into(),
                };
            };
            match dispatcher
                .deliver(&self.component, event.clone(), &self.subscription)
                .await
            {
                Ok(_) => SendOutcome::Delivered,
                Err(error) if error.is_retryable() => SendOutcome::Retry {
                    after: matches!(
                        error,
                        ProcessError::Dispatch(DispatchError::Handler(HandlerError::Busy))
                    )
                    .then_some(BUSY_RETRY),
                    status: None,
                    reason: error.to_string(),
                },
                Err(error) => SendOutcome::Permanent {
                    reason: error.to_string(),
                    status: None,
                },
            }
        })
    }

    fn describe(&self) -> &str {
        &self.uri
    }
}
