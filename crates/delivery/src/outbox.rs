//! Acceptance: the door through which every event bound for a subscription enters.
//!
//! An event is accepted once it is either delivered or durably queued; only then may its
//! producer be told so. When a subscription's worker is idle (nothing queued, no hold) and
//! its sink takes direct sends, the event goes straight to the sink, within the same
//! `max_in_flight` as the worker's sends, and reaches the outbox only if that first attempt
//! fails. A healthy pipeline thus never touches the disk, and a failing one still keeps
//! everything: the failed attempt counts as attempt 1, its `Retry-After` or unreachability
//! holds the worker, and a permanent refusal goes to the dead letters, as if the worker had
//! made it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudevent::Event;

use crate::committer::{Batch, Committer};
use crate::deadletter;
use crate::error::Error;
use crate::model::SubscriptionId;
use crate::sink::SendOutcome;
use crate::store::{self, EntryMeta};
use crate::worker::{Lane, NextAttempt, Workers, next_attempt};

/// Longest wait for a direct send. A sink slower than this is treated as failing: the event
/// is queued for a retry (the abandoned attempt may still arrive: at least once, not at
/// most once) and the worker holds off the sink for a backoff.
const DIRECT_PATIENCE: Duration = Duration::from_secs(1);

/// A handle to accept events for delivery. Cheap to clone; hand one to every trigger.
#[derive(Clone)]
pub struct Outbox {
    pub(crate) committer: Committer,
    pub(crate) workers: Arc<Workers>,
    /// Events past this many hops are dead-lettered, not delivered (see [`crate::hops`]).
    pub(crate) max_hops: Arc<AtomicU32>,
    /// Cluster mode: deliveries go to JetStream, for the subscriptions this node knows.
    pub(crate) cluster: Option<(Arc<crate::cluster::Cluster>, crate::engine::Cache)>,
}

/// A queue entry or dead letter to write.
struct Row {
    id: SubscriptionId,
    value: Vec<u8>,
    /// For a subscription with a dedup window: the event's dedup key and the window. The
    /// entry is written only if the key is not in the window (see [`crate::dedup`]).
    dedup: Option<(String, Duration)>,
}

impl Outbox {
    /// Accepts each event for its subscription, resolving once every one is delivered or
    /// durably queued (fsynced): only then may the caller acknowledge the event upstream
    /// (HTTP 202, broker ack). Events for an idle subscription are sent first and queued
    /// only if that attempt fails (see the module docs); the rest are queued, concurrent
    /// calls sharing one transaction and one fsync (group commit).
    ///
    /// Returns how many deliveries were accepted: entries for subscriptions that do not
    /// exist (any more) are skipped, as deleting a subscription drops its queue anyway.
    /// Cancelling the future does not cancel a write already queued, but abandons direct
    /// sends: a caller cancelled before the answer must not acknowledge (an HTTP client that
    /// hung up got no `202`, so it sends again).
    pub async fn enqueue(&self, deliveries: Vec<(SubscriptionId, Event)>) -> Result<usize, Error> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        if let Some((cluster, subscriptions)) = &self.cluster {
            return self
                .enqueue_in_cluster(cluster, subscriptions, deliveries)
                .await;
        }
        let lanes = self.workers.lanes(deliveries.iter().map(|(id, _)| id));
        let max_hops = self.max_hops.load(Ordering::Relaxed);
        let mut looping = Vec::new();
        let mut direct = Vec::new();
        let mut queued = Vec::new();
        // Once one event of a subscription is queued, its later ones queue behind it.
        let mut queued_subs: Vec<&SubscriptionId> = Vec::new();
        let now = store::now_ms();
        let fresh = EntryMeta {
            attempts: 0,
            first_ms: now,
            next_ms: now,
        };
        for ((id, event), lane) in deliveries.iter().zip(lanes) {
            if crate::hops::hops(event) > max_hops {
                if let Some(lane) = &lane {
                    let reason = crate::hops::loop_reason(event, max_hops);
                    looping.push(dead_letter(lane, id, event, &reason, None, 0));
                }
                continue;
            }
            match lane {
                Some(lane) if !queued_subs.contains(&id) && lane.open_for_direct() => {
                    direct.push((lane, id, event));
                }
                _ => {
                    if !queued_subs.contains(&id) {
                        queued_subs.push(id);
                    }
                    let mut row = entry(id, fresh, event);
                    row.dedup = lane
                        .and_then(|l| l.policy.dedup_window)
                        .map(|window| (crate::dedup::key(id.as_str(), event), window));
                    queued.push(row);
                }
            }
        }
        if direct.is_empty() {
            return self.write(queued, looping).await;
        }
        // Slots are handed out first come, first served: a call's events go in their order.
        let deadline = tokio::time::Instant::now() + DIRECT_PATIENCE;
        let sends = futures::future::join_all(
            direct
                .into_iter()
                .map(|(lane, id, event)| direct_send(lane, id, event, deadline)),
        );
        let (stored, sent) = tokio::join!(self.write(queued, looping), sends);
        let mut accepted = stored?;
        let mut retries = Vec::new();
        let mut dead = Vec::new();
        for (lane, id, event, outcome) in sent {
            let Some(outcome) = outcome else {
                retries.push(entry(id, fresh, event));
                continue;
            };
            lane.record_attempt(&outcome);
            match outcome {
                SendOutcome::Delivered => {
                    tracing::debug!(subscription = %id, event = event.id(),
                        sink = %lane.sink.describe(), "delivered directly");
                    accepted += 1;
                }
                SendOutcome::Retry {
                    after,
                    status,
                    reason,
                } => {
                    let meta = EntryMeta {
                        attempts: 1,
                        ..fresh
                    };
                    match next_attempt(&lane.policy, &meta, after, status, &reason) {
                        NextAttempt::GiveUp(reason) => {
                            dead.push(dead_letter(&lane, id, event, &reason, status, 1));
                        }
                        NextAttempt::At {
                            next_ms,
                            delay,
                            hold,
                        } => {
                            tracing::warn!(
                                subscription = %id, event = event.id(),
                                sink = %lane.sink.describe(), attempts = 1, status = ?status,
                                retry_in = ?delay, "delivery failed, will retry: {reason}"
                            );
                            // As in the worker: the whole sink waits, the worker included.
                            if hold {
                                lane.hold_until(next_ms);
                            }
                            retries.push(entry(id, EntryMeta { next_ms, ..meta }, event));
                        }
                    }
                }
                SendOutcome::Gone { reason, status } => {
                    lane.disable(crate::worker::gone_reason(&reason));
                    let reason =
                        format!("{reason}: the sink is gone, the subscription is disabled");
                    dead.push(dead_letter(&lane, id, event, &reason, status, 1));
                }
                SendOutcome::Permanent { reason, status } => {
                    dead.push(dead_letter(&lane, id, event, &reason, status, 1));
                }
            }
        }
        Ok(accepted + self.write(retries, dead).await?)
    }

    /// Writes queue entries and dead letters in the next group commit, waking the workers
    /// that got entries; returns how many were written.
    async fn write(&self, queued: Vec<Row>, dead: Vec<Row>) -> Result<usize, Error> {
        if queued.is_empty() && dead.is_empty() {
            return Ok(0);
        }
        let workers = self.workers.clone();
        let (accepted, _) = self
            .committer
            .execute_then(
                move |b| {
                    // Quotas first: a call is taken whole or refused whole, unwritten.
                    if let Some(refused) = over_quota(b, &queued, &dead) {
                        return Ok((Err(refused), Vec::new()));
                    }
                    let mut accepted = 0;
                    let mut touched: Vec<String> = Vec::new();
                    let now = store::now_ms();
                    for (row, is_dead) in queued
                        .iter()
                        .map(|r| (r, false))
                        .chain(dead.iter().map(|r| (r, true)))
                    {
                        let id = row.id.as_str();
                        if !b.subscription_exists(id)? {
                            tracing::debug!(subscription = %id, "no such subscription, not queued");
                            continue;
                        }
                        if !is_dead
                            && let Some((key, window)) = &row.dedup
                            && crate::dedup::check_and_record(b, key, *window, now)?
                        {
                            // Accepted before, within the window: acknowledged, not again.
                            tracing::debug!(subscription = %id, "duplicate (source, id) within the dedup window, not queued");
                            accepted += 1;
                            continue;
                        }
                        let seq = b.next_seq();
                        accepted += 1;
                        if is_dead {
                            b.put_dead(id, seq, row.value.as_slice())?;
                            continue;
                        }
                        b.put_queued(id, seq, row.value.as_slice())?;
                        if !touched.iter().any(|t| t == id) {
                            touched.push(id.to_owned());
                        }
                    }
                    Ok((Ok(accepted), touched))
                },
                move |(_, touched)| workers.notify(touched.iter().map(String::as_str)),
            )
            .await?;
        accepted
    }
}

/// The first subscription of this write that a quota refuses, if any (see [`crate::quota`]).
fn over_quota(b: &Batch<'_>, queued: &[Row], dead: &[Row]) -> Option<Error> {
    let mut adding: Vec<(&SubscriptionId, u64, u64)> = Vec::new();
    for row in queued {
        match adding.iter_mut().find(|(id, _, _)| *id == &row.id) {
            Some((_, events, bytes)) => {
                *events += 1;
                *bytes += row.value.len() as u64;
            }
            None => adding.push((&row.id, 1, row.value.len() as u64)),
        }
    }
    for row in dead {
        if !adding.iter().any(|(id, _, _)| *id == &row.id) {
            adding.push((&row.id, 0, 0));
        }
    }
    adding.into_iter().find_map(|(id, events, bytes)| {
        b.quota_refusal(id.as_str(), events, bytes)
            .map(|why| Error::Full {
                subscription: id.clone(),
                why,
            })
    })
}

/// One direct attempt: waits for a send slot, then sends, both by `deadline`. `None` when no
/// slot freed up in time (the event is then queued, unattempted).
async fn direct_send<'a>(
    lane: Arc<Lane>,
    id: &'a SubscriptionId,
    event: &'a Event,
    deadline: tokio::time::Instant,
) -> (
    Arc<Lane>,
    &'a SubscriptionId,
    &'a Event,
    Option<SendOutcome>,
) {
    let slot = match lane.try_slot() {
        Some(slot) => slot,
        None => match tokio::time::timeout_at(deadline, lane.slot()).await {
            Ok(Some(slot)) => slot,
            _ => return (lane, id, event, None),
        },
    };
    if lane.disabled().is_some() {
        // The sink said it is gone while this send waited: it is queued, and the worker
        // dead-letters it unsent.
        lane.release(slot);
        return (lane, id, event, None);
    }
    let outcome = tokio::time::timeout_at(deadline, lane.send(event)).await;
    lane.release(slot);
    let outcome = outcome.unwrap_or_else(|_| SendOutcome::Retry {
        after: None,
        status: None,
        reason: format!("no answer within {} s", DIRECT_PATIENCE.as_secs()),
    });
    (lane, id, event, Some(outcome))
}

/// A queue entry, encoded here on the caller's task so the committer thread only writes.
fn entry(id: &SubscriptionId, meta: EntryMeta, event: &Event) -> Row {
    Row {
        id: id.clone(),
        value: store::encode_entry(meta, &cloudevent::json::encode(event)),
        dedup: None,
    }
}

/// A dead letter for an event refused before (`attempts` 0) or by its direct (first) attempt.
fn dead_letter(
    lane: &Lane,
    id: &SubscriptionId,
    event: &Event,
    reason: &str,
    status: Option<u16>,
    attempts: u32,
) -> Row {
    Row {
        id: id.clone(),
        value: deadletter::abandon(id, lane.sink.describe(), event, reason, attempts, status),
        dedup: None,
    }
}

impl Outbox {
    /// Cluster mode: queues each event of a known subscription in JetStream (an event past
    /// the hop limit goes to its dead letters), resolving once JetStream acknowledged all.
    async fn enqueue_in_cluster(
        &self,
        cluster: &crate::cluster::Cluster,
        subscriptions: &crate::engine::Cache,
        deliveries: Vec<(SubscriptionId, Event)>,
    ) -> Result<usize, Error> {
        let max_hops = self.max_hops.load(Ordering::Relaxed);
        let mut queued = Vec::with_capacity(deliveries.len());
        let mut looping = Vec::new();
        {
            let known = subscriptions.read().unwrap_or_else(|e| e.into_inner());
            for (id, event) in &deliveries {
                let Some(sub) = known.get(id) else { continue };
                if crate::hops::hops(event) > max_hops {
                    looping.push((id.clone(), sub.sink.clone(), event));
                } else {
                    queued.push((id.clone(), event, sub.delivery.dedup_window.is_some()));
                }
            }
        }
        for (id, sink, event) in looping {
            let reason = crate::hops::loop_reason(event, max_hops);
            cluster
                .dead_letter(&id, &sink, event, &reason, 0, None)
                .await?;
        }
        cluster.enqueue(&queued).await
    }
}
