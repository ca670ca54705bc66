//! The one trigger-agnostic executor: every trigger (HTTP, NATS, MQTT, AMQP, Kafka) hands its
//! decoded event to [`Dispatcher::dispatch`] and maps the outcome back to its protocol.
//! Adding a transport never touches this module.

use std::collections::HashMap;
use std::sync::Arc;

use cloudevent::Event;

use crate::handler::{Handler, HandlerError, Publish};
use crate::outputs::Outputs;

/// A component as dispatch sees it: how to run it and where its events go.
#[derive(Clone)]
pub struct ComponentEntry {
    /// Runs the component.
    pub handler: Arc<dyn Handler>,
    /// Its output bindings.
    pub outputs: Outputs,
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

/// Routes events to components and their results onwards.
#[derive(Clone, Default)]
pub struct Dispatcher {
    components: Arc<HashMap<String, ComponentEntry>>,
}

impl Dispatcher {
    /// A dispatcher over the given components, by id.
    pub fn new(components: HashMap<String, ComponentEntry>) -> Self {
        Dispatcher {
            components: Arc::new(components),
        }
    }

    /// Runs `event` through `component` and returns its result events.
    pub async fn dispatch(
        &self,
        component: &str,
        event: Event,
    ) -> Result<Vec<Event>, DispatchError> {
        let entry = self
            .components
            .get(component)
            .ok_or_else(|| DispatchError::UnknownComponent(component.to_owned()))?;
        let id = event.id().to_owned();
        let outputs: Arc<dyn Publish> = Arc::new(entry.outputs.clone());
        match entry.handler.handle(event, outputs).await {
            Ok(results) => {
                tracing::debug!(component, event_id = %id, results = results.len(), "handled");
                Ok(results)
            }
            Err(error) => {
                tracing::warn!(component, event_id = %id, %error, "handler failed");
                Err(error.into())
            }
        }
    }

    /// Sends result events that no reply carried to every output of `component`. With no
    /// outputs declared they have nowhere to go: that is logged, never silent.
    pub fn forward(&self, component: &str, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let Some(entry) = self.components.get(component) else {
            return;
        };
        if entry.outputs.is_empty() {
            let ids: Vec<&str> = events.iter().map(Event::id).collect();
            tracing::warn!(
                component,
                dropped = ?ids,
                "result events were not part of the reply and the component declares no outputs; \
                 declare an output in spindle.toml or send `Accept: application/cloudevents-batch+json`"
            );
            return;
        }
        for event in &events {
            entry.outputs.broadcast(event);
        }
    }
}
