//! # spindle-metrics
//!
//! Spindle's Prometheus metrics, in one process-wide registry ([`metrics()`]) that the crates
//! record into where things happen (the triggers, the executor, the delivery workers, the
//! store) and the admin API serves at `/metrics` ([`encode`]).
//!
//! Label values are bounded by configuration, never by traffic: trigger labels come from the
//! manifest, components from the manifest, subscriptions from the API (each one a queue), and
//! outcomes from small fixed sets. Event ids, sources and types never become labels.
//!
//! Names follow Prometheus conventions: a `spindle_` prefix, `_total` counters, `_seconds`
//! histograms.

#![deny(missing_docs)]

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A trigger and what became of an event it took in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    /// `http`, or a broker trigger as `spindle up` lists it.
    pub trigger: String,
    /// `accepted`, `retry`, `rejected` or `dead_letter`.
    pub outcome: &'static str,
}

/// A component and how a handler call ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerLabels {
    /// The component id.
    pub component: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// A subscription (or output, or trigger queue) and what became of one delivery attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The queue's id.
    pub subscription: String,
    /// `delivered`, `retry` (a failure worth retrying) or `refused` (a permanent failure).
    pub outcome: &'static str,
}

/// A component, for gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    /// The component id.
    pub component: String,
}

/// A subscription, for gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionLabels {
    /// The queue's id.
    pub subscription: String,
}

/// Every metric Spindle keeps.
pub struct Metrics {
    /// `spindle_events_received_total{trigger,outcome}`.
    pub events_received: Family<TriggerLabels, Counter>,
    /// `spindle_handler_duration_seconds{component,outcome}`.
    pub handler_duration: Family<HandlerLabels, Histogram>,
    /// `spindle_handler_instances{component}`: instances running now.
    pub instances: Family<ComponentLabels, Gauge>,
    /// `spindle_delivery_attempts_total{subscription,outcome}`.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// `spindle_dead_letters_total{subscription}`: events given up on.
    pub dead_letters: Family<SubscriptionLabels, Counter>,
    /// `spindle_queue_depth{subscription}`: events waiting, set when scraped.
    pub queue_depth: Family<SubscriptionLabels, Gauge>,
    /// `spindle_queue_bytes{subscription}`: bytes of the events waiting, set when scraped.
    pub queue_bytes: Family<SubscriptionLabels, Gauge>,
    /// `spindle_dead_letters_stored{subscription}`: dead letters kept now, set when scraped.
    pub dead_letters_stored: Family<SubscriptionLabels, Gauge>,
    /// `spindle_store_commit_duration_seconds`: one group commit (write and fsync).
    pub commit_duration: Histogram,
    registry: Registry,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 100 µs to ~26 s.
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 4.0, 10)
}

impl Metrics {
    fn new() -> Self {
        let events_received = Family::<TriggerLabels, Counter>::default();
        let handler_duration = Family::<HandlerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(seconds_buckets())
        });
        let instances = Family::<ComponentLabels, Gauge>::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let queue_depth = Family::<SubscriptionLabels, Gauge>::default();
        let queue_bytes = Family::<SubscriptionLabels, Gauge>::default();
        let dead_letters_stored = Family::<SubscriptionLabels, Gauge>::default();
        let dead_letters = Family::<SubscriptionLabels, Counter>::default();
        let commit_duration = Histogram::new(seconds_buckets());
        let mut registry = Registry::with_prefix("spindle");
        registry.register(
            "events_received",
            "Events taken in by a trigger, by what became of them",
            events_received.clone(),
        );
        registry.register(
            "handler_duration_seconds",
            "Time from instantiation to result of one handler call",
            handler_duration.clone(),
        );
        registry.register(
            "handler_instances",
            "Component instances running now",
            instances.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Delivery attempts to subscriptions, outputs and trigger queues, by outcome",
            deliveries.clone(),
        );
        registry.register(
            "dead_letters",
            "Events dead-lettered, per queue",
            dead_letters.clone(),
        );
        registry.register(
            "queue_depth",
            "Events waiting for delivery, per queue",
            queue_depth.clone(),
        );
        registry.register(
            "queue_bytes",
            "Bytes of the events waiting for delivery, per queue",
            queue_bytes.clone(),
        );
        registry.register(
            "dead_letters_stored",
            "Dead letters kept now, per queue",
            dead_letters_stored.clone(),
        );
        registry.register(
            "store_commit_duration_seconds",
            "One group commit of the delivery store, write and fsync",
            commit_duration.clone(),
        );
        Metrics {
            events_received,
            handler_duration,
            instances,
            deliveries,
            dead_letters,
            queue_depth,
            queue_bytes,
            dead_letters_stored,
            commit_duration,
            registry,
        }
    }
}

/// One component's handles, looked up once (a family lookup hashes and allocates its labels):
/// what the executor updates per event.
#[derive(Clone)]
pub struct ComponentMetrics {
    /// Its `spindle_handler_instances`.
    pub instances: Gauge,
    /// Its `spindle_handler_duration_seconds{outcome="ok"}`.
    pub ok: Histogram,
    /// Its `spindle_handler_duration_seconds{outcome="error"}`.
    pub error: Histogram,
}

/// One trigger's `spindle_events_received_total` counters, by outcome, looked up once.
#[derive(Clone)]
pub struct TriggerMetrics {
    /// `outcome="accepted"`.
    pub accepted: Counter,
    /// `outcome="retry"`.
    pub retry: Counter,
    /// `outcome="rejected"`.
    pub rejected: Counter,
    /// `outcome="dead_letter"`.
    pub dead_letter: Counter,
    /// `outcome="duplicate"`: dropped by the trigger's dedup window.
    pub duplicate: Counter,
}

/// One queue's `spindle_delivery_attempts_total` counters, by outcome, looked up once.
#[derive(Clone)]
pub struct QueueMetrics {
    /// `outcome="delivered"`.
    pub delivered: Counter,
    /// `outcome="retry"`.
    pub retry: Counter,
    /// `outcome="refused"`.
    pub refused: Counter,
}

impl Metrics {
    /// The handles of `component`.
    pub fn component(&self, component: &str) -> ComponentMetrics {
        let duration = |outcome| {
            self.handler_duration
                .get_or_create(&HandlerLabels {
                    component: component.to_owned(),
                    outcome,
                })
                .clone()
        };
        ComponentMetrics {
            instances: self
                .instances
                .get_or_create(&ComponentLabels {
                    component: component.to_owned(),
                })
                .clone(),
            ok: duration("ok"),
            error: duration("error"),
        }
    }

    /// The counters of `trigger`.
    pub fn trigger(&self, trigger: &str) -> TriggerMetrics {
        let counter = |outcome| {
            self.events_received
                .get_or_create(&TriggerLabels {
                    trigger: trigger.to_owned(),
                    outcome,
                })
                .clone()
        };
        TriggerMetrics {
            accepted: counter("accepted"),
            retry: counter("retry"),
            rejected: counter("rejected"),
            dead_letter: counter("dead_letter"),
            duplicate: counter("duplicate"),
        }
    }

    /// The counters of the queue `subscription`.
    pub fn queue(&self, subscription: &str) -> QueueMetrics {
        let counter = |outcome| {
            self.deliveries
                .get_or_create(&DeliveryLabels {
                    subscription: subscription.to_owned(),
                    outcome,
                })
                .clone()
        };
        QueueMetrics {
            delivered: counter("delivered"),
            retry: counter("retry"),
            refused: counter("refused"),
        }
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The Prometheus text exposition of every metric (OpenMetrics text format).
pub fn encode() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &metrics().registry);
    out
}

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_are_exposed() {
        metrics()
            .events_received
            .get_or_create(&TriggerLabels {
                trigger: "http".into(),
                outcome: "accepted",
            })
            .inc();
        metrics()
            .handler_duration
            .get_or_create(&HandlerLabels {
                component: "echo".into(),
                outcome: "ok",
            })
            .observe(0.002);
        let text = encode();
        assert!(
            text.contains(r#"spindle_events_received_total{trigger="http",outcome="accepted"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"spindle_handler_duration_seconds_count{component="echo",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
