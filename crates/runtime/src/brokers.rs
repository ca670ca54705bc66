//! The broker triggers (`[[trigger.nats]]`, `[[trigger.mqtt]]`, `[[trigger.amqp]]`,
//! `[[trigger.kafka]]`): one loop per trigger that takes deliveries from its
//! [`transports::Receiver`], runs them through the same [`Dispatcher::process`] as every
//! other trigger, and settles each message by the outcome — ack once the handler succeeded
//! and everything it led to is durably queued, nak (redeliver later) on a transient failure.
//!
//! A message that fails `max_deliveries` times in a row (as counted here), or that its
//! component refuses for good, is a poison message: it is dead-lettered in the trigger's
//! own queue (`trigger:<component>:<n>`, listed by `spindle dlq list`; replaying hands it to
//! the component again) and acknowledged, so it cannot block or loop on the broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudevent::Event;
use delivery::{Delivery, Protocol, Subscription, SubscriptionId};
use manifest::Manifest;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use transports::{Outcome, Receiver};

use crate::app::AppError;
use crate::dispatch::{DispatchError, Dispatcher, ProcessError};
use crate::handler::HandlerError;

/// How long a redelivery waits after a transient handler error.
const TRANSIENT_REDELIVERY: Duration = Duration::from_secs(5);
/// How long a redelivery waits when the component is at its concurrency cap.
const BUSY_REDELIVERY: Duration = Duration::from_secs(1);
/// How many failing messages a trigger keeps counts for; beyond it the counts start over
/// (a message may then be tried more than `max_deliveries` times, never fewer).
const MAX_TRACKED_FAILURES: usize = 10_000;

/// One connected broker trigger, not yet running.
pub struct BrokerTrigger {
    /// How it appears in logs and in `spindle up`'s listing, e.g. `nats://127.0.0.1:4222 orders.>`.
    pub label: String,
    /// The component it feeds.
    pub component: String,
    /// How many of its events may be in the handler at once.
    pub max_in_flight: usize,
    receiver: Receiver,
    /// Whether its loop is taking deliveries, for readiness; false once it has ended.
    running: Arc<std::sync::atomic::AtomicBool>,
    /// Where its poison messages go.
    pub dead_letters: SubscriptionId,
    /// How often a message is tried before it is dead-lettered.
    max_deliveries: u32,
    /// Its dedup window, kept as the policy of its queue ([`Delivery::is_duplicate`]).
    dedup_window: Option<Duration>,
}

/// Connects every broker trigger of the manifest. Fails, naming the trigger, when a broker
/// cannot be reached now, so a wrong address shows at start-up; once connected, receivers
/// ride out broker restarts on their own.
pub async fn connect(manifest: &Manifest) -> Result<Vec<BrokerTrigger>, AppError> {
    let mut triggers = Vec::new();
    let limits = |component: &str| {
        manifest
            .components
            .get(component)
            .map(|c| (c.limits.max_concurrency, c.limits.timeout))
            .unwrap_or((100, Duration::from_secs(5)))
    };
    let failed = |label: &str, error: transports::ConnectError| {
        AppError::Config(format!("[[trigger.{label}]]: {error}"))
    };
    for trigger in manifest.triggers.brokers() {
        let (max, timeout) = limits(trigger.component.as_str());
        let mut source = trigger.source;
        source.fit_to_handler(max, timeout);
        if manifest.application.cluster.is_some() {
            // Every node runs this trigger: as one member of a group, so each message is
            // handled once in the cluster.
            source.share(&share_group(
                manifest,
                trigger.component.as_str(),
                triggers.len(),
            ));
        }
        let label = source.label();
        let kind = source.transport().name();
        let receiver = source.receive().await.map_err(|e| failed(kind, e))?;
        triggers.push(BrokerTrigger::new(
            label,
            trigger.component.as_str(),
            max,
            receiver,
            trigger.max_deliveries,
            triggers.len(),
            trigger.dedup_window,
        ));
    }
    Ok(triggers)
}

/// The group the nodes of a cluster share a broker trigger's work in: the app, the
/// component and the trigger's position, in characters every protocol takes in a name.
fn share_group(manifest: &Manifest, component: &str, index: usize) -> String {
    let app = delivery::cluster::namespace(&manifest.application.name);
    format!("spindle-{app}-{component}-{index}")
}

impl BrokerTrigger {
    fn new(
        label: String,
        component: &str,
        max_in_flight: u32,
        receiver: Receiver,
        max_deliveries: u32,
        index: usize,
        dedup_window: Option<Duration>,
    ) -> Self {
        BrokerTrigger {
            label,
            component: component.to_owned(),
            max_in_flight: usize::try_from(max_in_flight.max(1)).unwrap_or(1),
            receiver,
            running: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            dead_letters: SubscriptionId::trigger(component, index),
            max_deliveries: max_deliveries.max(1),
            dedup_window,
        }
    }

    /// A flag that turns false when this trigger's loop ends (its receiver stopped for good,
    /// or the app is stopping).
    pub fn running(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.running.clone()
    }

    /// Its broker connection's state, where the protocol's client reports it.
    pub fn connection(&self) -> Option<transports::ConnectionProbe> {
        self.receiver.connection()
    }

    /// Takes deliveries until `stop` turns true, then waits for the events in flight to be
    /// handled and settled, and closes the broker connection.
    pub async fn run(
        mut self,
        dispatcher: Dispatcher,
        delivery: Arc<Delivery>,
        mut stop: watch::Receiver<bool>,
    ) {
        tracing::info!(trigger = %self.label, component = %self.component, "broker trigger running");
        let permits = Arc::new(Semaphore::new(self.max_in_flight));
        let poison = Arc::new(Poison {
            queue: self.dead_letters.clone(),
            sink: format!("component:{}", self.component),
            max_deliveries: self.max_deliveries,
            failures: Mutex::new(HashMap::new()),
            delivery,
        });
        let received = Arc::new(metrics::metrics().trigger(&self.label));
        let mut in_flight = JoinSet::new();
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let Ok(permit) = permit else { break };
            let delivery = tokio::select! {
                delivery = self.receiver.recv() => delivery,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let Some(delivery) = delivery else {
                tracing::error!(trigger = %self.label, "receiver stopped");
                self.running
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                break;
            };
            // Reap finished tasks so the set does not grow without bound.
            while in_flight.try_join_next().is_some() {}
            let dispatcher = dispatcher.clone();
            let component = self.component.clone();
            let label = self.label.clone();
            let poison = poison.clone();
            let received = received.clone();
            let dedup = self.dedup_window.is_some();
            in_flight.spawn(async move {
                let _permit = permit;
                let event_id = delivery.event.id().to_owned();
                if let Some(why) = delivery.refused {
                    // Not a CloudEvent: kept whole in the trigger's dead letters, then
                    // acknowledged (refused on the broker if even that fails).
                    let outcome = poison
                        .settle(&label, delivery.event, Outcome::Reject(why), true)
                        .await;
                    match outcome {
                        Outcome::Ack => received.dead_letter.inc(),
                        _ => received.rejected.inc(),
                    };
                    if let Err(error) = delivery.ack.settle(outcome).await {
                        tracing::warn!(trigger = %label, event_id, %error, "cannot settle the message");
                    }
                    return;
                }
                let event = delivery.event.clone();
                if dedup && crate::dedup::is_duplicate(&poison.delivery, &poison.queue, &label, &event).await {
                    received.duplicate.inc();
                    if let Err(error) = delivery.ack.settle(Outcome::Ack).await {
                        tracing::warn!(trigger = %label, event_id, %error, "cannot settle the message");
                    }
                    return;
                }
                let result = dispatcher.process(Some(&component), delivery.event).await;
                if dedup && result.is_ok() {
                    crate::dedup::remember(&poison.delivery, &poison.queue, &label, &event).await;
                }
                // Only the handler's own failures count towards max_deliveries: a busy
                // component or a store that cannot take the onward deliveries is not the
                // message's fault.
                let counts = matches!(
                    &result,
                    Err(ProcessError::Dispatch(DispatchError::Handler(e)))
                        if !matches!(e, HandlerError::Busy)
                );
                let outcome = poison
                    .settle(&label, event, outcome_of(&result), counts)
                    .await;
                let counter = match &outcome {
                    Outcome::Ack if result.is_ok() => &received.accepted,
                    Outcome::Ack => &received.dead_letter,
                    Outcome::Nak(_) => &received.retry,
                    Outcome::Reject(_) => &received.rejected,
                };
                counter.inc();
                if let Err(error) = delivery.ack.settle(outcome).await {
                    // The broker will deliver it again: at least once still holds.
                    tracing::warn!(trigger = %label, event_id, %error, "cannot settle the message");
                }
            });
        }
        let pending = in_flight.len();
        if pending > 0 {
            tracing::info!(trigger = %self.label, pending, "finishing events in flight");
        }
        while in_flight.join_next().await.is_some() {}
        tracing::info!(trigger = %self.label, "broker trigger stopped");
    }
}

/// A trigger's poison-message handling: failure counts by message, and its dead-letter queue.
struct Poison {
    queue: SubscriptionId,
    sink: String,
    max_deliveries: u32,
    /// Consecutive failures by message (source and id).
    failures: Mutex<HashMap<(String, String), u32>>,
    delivery: Arc<Delivery>,
}

impl Poison {
    /// The settlement of `event` after processing: the processing outcome, unless the
    /// message is poison (refused for good, or failed `max_deliveries` times, counting only
    /// failures where `counts`): then it is dead-lettered and acknowledged (rejected as
    /// before if even that fails).
    async fn settle(&self, trigger: &str, event: Event, outcome: Outcome, counts: bool) -> Outcome {
        let key = (event.source().to_owned(), event.id().to_owned());
        let (reason, attempts) = {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            match &outcome {
                Outcome::Ack => {
                    failures.remove(&key);
                    return outcome;
                }
                Outcome::Nak(_) if !counts => return outcome,
                Outcome::Nak(_) => {
                    if failures.len() >= MAX_TRACKED_FAILURES && !failures.contains_key(&key) {
                        failures.clear();
                    }
                    let count = failures.entry(key.clone()).or_insert(0);
                    *count += 1;
                    if *count < self.max_deliveries {
                        return outcome;
                    }
                    let attempts = *count;
                    failures.remove(&key);
                    (
                        format!(
                            "the component failed it {attempts} times (max_deliveries = {})",
                            self.max_deliveries
                        ),
                        attempts,
                    )
                }
                Outcome::Reject(why) => {
                    failures.remove(&key);
                    (format!("refused for good: {why}"), 1)
                }
            }
        };
        match self
            .delivery
            .dead_letter(&self.queue, &self.sink, &event, &reason, attempts)
            .await
        {
            Ok(()) => {
                tracing::warn!(trigger, event_id = event.id(), queue = %self.queue, %reason,
                    "poison message dead-lettered and acknowledged");
                Outcome::Ack
            }
            Err(error) => {
                tracing::error!(trigger, event_id = event.id(), %error,
                    "cannot dead-letter a poison message; refusing it on the broker");
                Outcome::Reject(reason)
            }
        }
    }
}

/// A queue Spindle keeps for a trigger: a broker trigger's dead letters (replayed to its
/// component) and dedup window, or an HTTP route's dedup window.
pub struct TriggerQueue {
    /// The queue's id.
    pub id: SubscriptionId,
    /// The component its replays go to.
    pub component: String,
    /// Its dedup window.
    pub dedup_window: Option<Duration>,
    /// The trigger, for errors.
    pub label: String,
}

impl From<&BrokerTrigger> for TriggerQueue {
    fn from(t: &BrokerTrigger) -> Self {
        TriggerQueue {
            id: t.dead_letters.clone(),
            component: t.component.clone(),
            dedup_window: t.dedup_window,
            label: t.label.clone(),
        }
    }
}

/// Makes every trigger's queue exist with its settings, and removes those of triggers no
/// longer in the manifest.
pub async fn set_up_trigger_queues(
    delivery: &Delivery,
    queues: &[TriggerQueue],
) -> Result<(), AppError> {
    let wanted: HashMap<&SubscriptionId, &TriggerQueue> =
        queues.iter().map(|q| (&q.id, q)).collect();
    for existing in delivery.subscriptions() {
        if existing.id.is_trigger() && !wanted.contains_key(&existing.id) {
            delivery.delete_subscription(&existing.id).await?;
        }
    }
    for (id, trigger) in wanted {
        let mut queue = Subscription::new(
            id.as_str(),
            Protocol::Http,
            format!("{}:{}", crate::subscriber::SCHEME, trigger.component),
        );
        queue.delivery.dedup_window = trigger.dedup_window;
        if delivery
            .subscription(id)
            .is_some_and(|s| s.sink == queue.sink && s.delivery == queue.delivery)
        {
            continue;
        }
        delivery
            .put_subscription(queue)
            .await
            .map_err(|e| AppError::Config(format!("trigger {}: its queue: {e}", trigger.label)))?;
    }
    Ok(())
}

/// How a broker message is settled after processing.
fn outcome_of(result: &Result<usize, ProcessError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ack,
        Err(ProcessError::Dispatch(DispatchError::Handler(HandlerError::Busy))) => {
            Outcome::Nak(Some(BUSY_REDELIVERY))
        }
        Err(error) if error.is_retryable() => Outcome::Nak(Some(TRANSIENT_REDELIVERY)),
        Err(error) => Outcome::Reject(error.to_string()),
    }
}
