//! The one trigger-agnostic executor: every trigger (HTTP, NATS, MQTT, AMQP, Kafka, a
//! component subscribed to events) hands its decoded event to [`Dispatcher::ingress`] and maps
//! the outcome back to its protocol. Adding a transport never touches this module.
//!
//! What a handler produces flows on through the [`Router`]: its results and the events it
//! publishes are matched against the subscriptions, published events go to the named output,
//! and results no reply carried go to every output. All of it lands in the trigger's
//! [`Deliveries`], which the trigger commits before acknowledging. A handler that fails
//! leaves nothing behind: what it published is discarded with it, since the event will be
//! retried or rejected as a whole.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use cloudevent::Event;
use delivery::SubscriptionId;

use crate::handler::{Handler, HandlerError, Publish, PublishError};
use crate::routing::{Deliveries, Router};

/// A component as dispatch sees it: how to run it and which outputs it may publish to.
#[derive(Clone)]
pub struct ComponentEntry {
    /// Runs the component.
    pub handler: Arc<dyn Handler>,
    /// The names of its output bindings (`[component.<id>.outputs]`).
    pub outputs: Arc<BTreeSet<String>>,
    /// How many instances may run at once (`[component.<id>.limits] max_concurrency`): how
    /// many events of one batch run side by side.
    pub max_concurrency: u32,
}

/// Why an event could not be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// A trigger names a component the app does not have (a manifest bug caught at start-up,
    /// so this only happens to embedders).
    #[error("no component named `{0}`")]
    UnknownComponent(String),
    /// The handler failed.
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

/// Why an event that reached a trigger was not accepted: it was not handled, or what it led
/// to could not be stored. Either way the producer should get a negative acknowledgement.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Dispatching failed.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The onward deliveries could not be made durable.
    #[error("cannot store the onward deliveries: {0}")]
    Commit(#[from] delivery::Error),
}

impl ProcessError {
    /// Whether delivering the same event again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProcessError::Dispatch(DispatchError::Handler(error)) => error.is_retryable(),
            ProcessError::Dispatch(DispatchError::UnknownComponent(_)) => false,
            ProcessError::Commit(_) => true,
        }
    }
}

/// Routes events to components and their results onwards.
#[derive(Clone)]
pub struct Dispatcher {
    components: Arc<HashMap<String, Arc<ComponentEntry>>>,
    /// Each component's metric handles, looked up once here rather than per event.
    metrics: Arc<HashMap<String, metrics::ComponentMetrics>>,
    router: Router,
}

impl Dispatcher {
    /// A dispatcher over the given components, by id, whose events flow on through `router`.
    pub fn new(components: HashMap<String, ComponentEntry>, router: Router) -> Self {
        Dispatcher {
            metrics: Arc::new(
                components
                    .keys()
                    .map(|id| (id.clone(), metrics::metrics().component(id)))
                    .collect(),
            ),
            components: Arc::new(
                components
                    .into_iter()
                    .map(|(id, entry)| (id, Arc::new(entry)))
                    .collect(),
            ),
            router,
        }
    }

    /// How many events of one batch `component` handles side by side: its concurrency cap
    /// (one for an unknown component).
    pub fn batch_width(&self, component: &str) -> usize {
        self.components
            .get(component)
            .map_or(1, |c| c.max_concurrency.max(1) as usize)
    }

    /// The router results flow on through.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Takes in one event from outside the app: queues it for the subscriptions it matches
    /// and, when a component handles this trigger, runs it and returns its results (already
    /// matched against the subscriptions; where they go beyond that is the trigger's call,
    /// see [`Dispatcher::forward`]). On failure nothing is queued for this event.
    pub async fn ingress(
        &self,
        component: Option<&str>,
        event: Event,
        deliveries: &mut Deliveries<'_>,
    ) -> Result<Vec<Event>, DispatchError> {
        let mark = deliveries.len();
        deliveries.matching(&event);
        let Some(component) = component else {
            return Ok(Vec::new());
        };
        let result = self.dispatch(component, event, deliveries).await;
        if result.is_err() {
            deliveries.truncate(mark);
        }
        result
    }

    /// Runs `event` through `component`: the events it published are queued for their
    /// outputs and the subscriptions; its results are matched against the subscriptions and
    /// returned.
    pub async fn dispatch(
        &self,
        component: &str,
        event: Event,
        deliveries: &mut Deliveries<'_>,
    ) -> Result<Vec<Event>, DispatchError> {
        let entry = self
            .components
            .get(component)
            .ok_or_else(|| DispatchError::UnknownComponent(component.to_owned()))?;
        let id = event.id().to_owned();
        let hop = delivery::hops::next_hop(&event);
        let published = Arc::new(Published::new(entry.outputs.clone()));
        let outputs: Arc<dyn Publish> = published.clone();
        let metrics = self.metrics.get(component);
        if let Some(m) = metrics {
            m.instances.inc();
        }
        let started = std::time::Instant::now();
        // A copy for the live tap, only while someone watches.
        let tapped = delivery::tap::global()
            .is_watched()
            .then(|| Arc::new(event.clone()));
        // Every log line of this event's handling (the guest's included) names the event,
        // and its trace when it carries one (the distributed-tracing extension).
        let span = tracing::info_span!(
            "event",
            component,
            event_id = %id,
            source = %event.source(),
            ty = %event.ty(),
            traceparent = tracing::field::Empty,
        );
        if let Some(trace) = event.extension("traceparent") {
            span.record(
                "traceparent",
                tracing::field::display(trace.to_canonical_string()),
            );
        }
        // The handling's span, in the trace the event carries; what the handler emits
        // continues the trace under it (the multi-hop rule).
        let trace = delivery::trace::start(
            "event",
            opentelemetry::trace::SpanKind::Consumer,
            &event,
            || {
                vec![opentelemetry::KeyValue::new(
                    "spindle.component",
                    component.to_owned(),
                )]
            },
        );
        let onward = trace.as_ref().map(delivery::trace::TraceSpan::traceparent);
        let handled =
            tracing::Instrument::instrument(entry.handler.handle(event, outputs), span).await;
        if let Some(m) = metrics {
            m.instances.dec();
            let duration = if handled.is_ok() { &m.ok } else { &m.error };
            duration.observe(started.elapsed().as_secs_f64());
        }
        if let Some(mut trace) = trace {
            trace.set(
                "spindle.outcome",
                if handled.is_ok() { "ok" } else { "error" },
            );
        }
        if let Some(event) = tapped {
            delivery::tap::global().offer(|| delivery::tap::Record {
                at: std::time::SystemTime::now(),
                stage: delivery::tap::Stage::Handled {
                    component: component.to_owned(),
                },
                outcome: if handled.is_ok() { "ok" } else { "error" },
                detail: handled.as_ref().err().map(ToString::to_string),
                latency: started.elapsed(),
                event,
            });
        }
        match handled {
            Ok(mut results) => {
                let mut published = published.take();
                // Loop protection: what a handler emits is one hop further than its input.
                for event in published
                    .iter_mut()
                    .map(|(_, e)| e)
                    .chain(results.iter_mut())
                {
                    delivery::hops::set_hops(event, hop);
                    if let Some(traceparent) = &onward {
                        delivery::trace::stamp(event, traceparent);
                    }
                }
                tracing::debug!(component, event_id = %id, results = results.len(),
                    published = published.len(), "handled");
                queue_published(component, published, deliveries);
                for result in &results {
                    deliveries.matching(result);
                }
                Ok(results)
            }
            Err(error) => {
                tracing::warn!(component, event_id = %id, %error, "handler failed");
                Err(error.into())
            }
        }
    }

    /// Queues result events that no reply carried for every output of `component`. With no
    /// outputs declared they have nowhere else to go (subscriptions already got them): that
    /// is logged, never silent.
    pub fn forward(&self, component: &str, events: Vec<Event>, deliveries: &mut Deliveries<'_>) {
        if events.is_empty() {
            return;
        }
        let Some(entry) = self.components.get(component) else {
            return;
        };
        if entry.outputs.is_empty() {
            let ids: Vec<&str> = events.iter().map(Event::id).collect();
            tracing::info!(
                component,
                events = ?ids,
                "result events had no reply to go in and the component declares no outputs; \
                 only matching subscriptions get them"
            );
            return;
        }
        for event in events {
            let mut outputs = entry.outputs.iter().peekable();
            while let Some(output) = outputs.next() {
                if outputs.peek().is_some() {
                    deliveries.output(component, output, event.clone());
                } else {
                    deliveries.output(component, output, event);
                    break;
                }
            }
        }
    }

    /// Delivers an event of subscription `from` to `component` (a `component:<id>` sink). The
    /// event was already matched when it entered the app, so only what the component produces
    /// is routed: matched against the subscriptions (except `from`, which would loop) and
    /// forwarded to its outputs, then committed.
    pub async fn deliver(
        &self,
        component: &str,
        event: Event,
        from: &SubscriptionId,
    ) -> Result<usize, ProcessError> {
        let mut deliveries = self.router.deliveries().excluding(from.clone());
        let results = self.dispatch(component, event, &mut deliveries).await?;
        self.forward(component, results, &mut deliveries);
        Ok(deliveries.commit().await?)
    }

    /// The whole path for a trigger with no reply to give (a broker message): takes the
    /// event in, forwards every result to the component's outputs, and commits. Returns how
    /// many deliveries were stored; once it returns `Ok` the event may be acknowledged.
    pub async fn process(
        &self,
        component: Option<&str>,
        event: Event,
    ) -> Result<usize, ProcessError> {
        let mut deliveries = self.router.deliveries();
        let results = self.ingress(component, event, &mut deliveries).await?;
        if let Some(component) = component {
            self.forward(component, results, &mut deliveries);
        }
        Ok(deliveries.commit().await?)
    }
}

/// Queues what `component` published: for the named outputs, and for the subscriptions each
/// event matches.
pub(crate) fn queue_published(
    component: &str,
    published: Vec<(String, Event)>,
    deliveries: &mut Deliveries<'_>,
) {
    for (output, event) in published {
        deliveries.matching(&event);
        deliveries.output(component, &output, event);
    }
}

/// Collects what a component publishes while it runs; it is queued only if the component
/// succeeds.
pub(crate) struct Published {
    outputs: Arc<BTreeSet<String>>,
    events: Mutex<Vec<(String, Event)>>,
}

impl Published {
    /// A collector accepting events for `outputs` (the component's declared outputs).
    pub(crate) fn new(outputs: Arc<BTreeSet<String>>) -> Self {
        Published {
            outputs,
            events: Mutex::new(Vec::new()),
        }
    }

    /// What was published, by output, in order.
    pub(crate) fn take(&self) -> Vec<(String, Event)> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Publish for Published {
    fn publish(&self, output: &str, event: Event) -> Result<(), PublishError> {
        if !self.outputs.contains(output) {
            return Err(PublishError::UnknownOutput(output.to_owned()));
        }
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((output.to_owned(), event));
        Ok(())
    }
}
