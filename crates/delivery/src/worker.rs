//! Per-subscription delivery workers.
//!
//! A worker keeps a window of its subscription's queue in memory (read from the outbox in
//! sequence order, refilled when the committer says new entries landed), sends due entries
//! through the sink within the subscription's concurrency, rate and ordering limits, and
//! records each outcome through the committer: removed after `Delivered`, rescheduled after a
//! retryable failure, moved to the dead letters when it gives up. An entry leaves the outbox
//! only after its delivery, so a crash at any point means at worst a redelivery.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cloudevent::Event;
use redb::ReadableTable;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};

use crate::backoff::{self, TokenBucket};
use crate::committer::Committer;
use crate::deadletter;
use crate::error::Error;
use crate::model::{DeliveryPolicy, MAX_BACKOFF, Subscription, SubscriptionId};
use crate::sink::{SendOutcome, Sink};
use crate::store::{self, EntryMeta, SharedDb};

/// The extension that orders deliveries when `ordered_by_partitionkey` is on.
pub const PARTITION_KEY: &str = "partitionkey";
/// The sequence extension: with ordering on, events of one key go in its order.
pub const SEQUENCE: &str = "sequence";
/// Queue entries held in memory per worker (at least twice `max_in_flight`).
const WINDOW: usize = 1024;
/// The most ordering keys whose last delivered `sequence` a worker remembers; past it they
/// are all forgotten (gaps are then measured afresh, so nothing waits that should not).
const MAX_SEQUENCE_KEYS: usize = 65_536;
/// Pause after a failed outbox read before trying again.
const READ_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Called once when a subscription's sink says it is gone, with why: the engine records the
/// subscription as disabled (see [`crate::model::CONFIG_DISABLED`]).
pub(crate) type DisableHook = Arc<dyn Fn(String) + Send + Sync>;

/// What a worker shares with the outbox's direct path (see [`crate::Outbox::enqueue`]): its
/// sink, its policy, and enough of its state to tell whether an event may skip the queue.
pub(crate) struct Lane {
    /// The subscription's sink, shared with the worker.
    pub sink: Arc<dyn Sink>,
    /// The subscription's delivery policy.
    pub policy: DeliveryPolicy,
    /// Whether events may be sent before they are queued: only for sinks that take them
    /// quickly and independently, and policies with no order or pace to keep.
    direct: bool,
    /// `max_in_flight` send slots, taken by the worker's sends and the direct ones alike.
    slots: Arc<Semaphore>,
    /// The worker has nothing loaded, nothing more to read and no hold: a new event may go
    /// straight to the sink without overtaking anything.
    idle: AtomicBool,
    /// No send before this (ms since the epoch): a direct send met `Retry-After` or an
    /// unreachable sink, which holds the worker too.
    hold_until_ms: AtomicU64,
    /// Wakes the worker when a direct send frees a slot it may be waiting for.
    slot_freed: Notify,
    /// Set once the subscription is disabled (its sink answered `410 Gone`): why. From then
    /// on nothing is sent; what is queued is dead-lettered.
    disabled: OnceLock<String>,
    /// Tells the engine, the first time the sink says it is gone.
    on_disable: DisableHook,
    /// The queue's `spindle_delivery_attempts_total` counters.
    attempts: metrics::QueueMetrics,
    /// The subscription, for the live tap.
    id: SubscriptionId,
}

impl Lane {
    fn new(
        id: &SubscriptionId,
        sink: Arc<dyn Sink>,
        policy: DeliveryPolicy,
        disabled: Option<String>,
        on_disable: DisableHook,
    ) -> Self {
        // Ordering, a rate limit and deduplication all need every event to pass the queue.
        let direct = sink.takes_direct_sends()
            && !policy.is_ordered()
            && policy.rate_limit.is_none()
            && policy.dedup_window.is_none();
        let disabled_lock = OnceLock::new();
        if let Some(why) = disabled {
            let _ = disabled_lock.set(why);
        }
        Lane {
            disabled: disabled_lock,
            on_disable,
            sink,
            direct,
            slots: Arc::new(Semaphore::new(policy.max_in_flight as usize)),
            policy,
            idle: AtomicBool::new(false),
            hold_until_ms: AtomicU64::new(0),
            slot_freed: Notify::new(),
            attempts: metrics::metrics().queue(id.as_str()),
            id: id.clone(),
        }
    }

    /// Sends `event` to the sink, showing the attempt on the live tap (the event is copied
    /// only when someone watches).
    pub async fn send(&self, event: &Event) -> SendOutcome {
        let started = Instant::now();
        // One span per attempt, in the trace the event carries (when traces are exported).
        let span = crate::trace::start(
            "deliver",
            opentelemetry::trace::SpanKind::Producer,
            event,
            || {
                vec![
                    opentelemetry::KeyValue::new("spindle.subscription", self.id.to_string()),
                    opentelemetry::KeyValue::new("spindle.sink", self.sink.describe().to_string()),
                ]
            },
        );
        let outcome = self.sink.send(event).await;
        if let Some(mut span) = span {
            span.set("spindle.outcome", outcome_name(&outcome));
        }
        crate::tap::global().offer(|| {
            let event = Arc::new(event.clone());
            crate::tap::Record::delivery(&self.id, event, &outcome, started.elapsed())
        });
        outcome
    }

    /// Counts one delivery attempt by its outcome, whoever made it (worker or direct send).
    pub fn record_attempt(&self, outcome: &SendOutcome) {
        match outcome {
            SendOutcome::Delivered => &self.attempts.delivered,
            SendOutcome::Retry { .. } => &self.attempts.retry,
            SendOutcome::Permanent { .. } | SendOutcome::Gone { .. } => &self.attempts.refused,
        }
        .inc();
    }

    /// Whether an event may skip the queue now: the sink takes direct sends and the worker
    /// is idle (so nothing queued would be overtaken).
    pub fn open_for_direct(&self) -> bool {
        self.direct && self.idle.load(Ordering::Acquire) && self.disabled.get().is_none()
    }

    /// Why the subscription is disabled, if it is.
    pub fn disabled(&self) -> Option<&str> {
        self.disabled.get().map(String::as_str)
    }

    /// Disables the subscription because the sink said it is gone (`why` names its answer):
    /// nothing more is sent. The first call tells the engine (which records it and logs it)
    /// and wakes the worker, which dead-letters what is queued.
    pub fn disable(&self, why: String) {
        if self.disabled.set(why.clone()).is_ok() {
            (self.on_disable)(why);
            self.slot_freed.notify_one();
        }
    }

    /// A send slot, if one is free now.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Waits for a send slot (the sink is at `max_in_flight` until one frees up).
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Gives back a slot taken through [`Lane::slot`], waking the worker if it may be
    /// waiting for one.
    pub fn release(&self, slot: OwnedSemaphorePermit) {
        drop(slot);
        if !self.idle.load(Ordering::Acquire) {
            self.slot_freed.notify_one();
        }
    }

    /// Holds every send, the worker's included, until `until_ms`.
    pub fn hold_until(&self, until_ms: u64) {
        self.hold_until_ms.fetch_max(until_ms, Ordering::AcqRel);
    }

    /// Marks the worker busy: new entries were queued, later events must queue behind them.
    fn mark_busy(&self) {
        self.idle.store(false, Ordering::Release);
    }
}

/// The running workers by subscription, so the committer can wake the ones that got work.
#[derive(Default)]
pub(crate) struct Workers {
    map: Mutex<HashMap<SubscriptionId, WorkerHandle>>,
}

impl Workers {
    /// The subscriptions whose worker task has ended (a panic: workers otherwise run until
    /// stopped), for readiness.
    pub fn dead(&self) -> Vec<SubscriptionId> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter(|(_, h)| h.task.as_ref().is_some_and(JoinHandle::is_finished))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Wakes the workers of these subscriptions (new entries are in the outbox).
    pub fn notify<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if let Some(handle) = map.get(&SubscriptionId::new(id)) {
                handle.lane.mark_busy();
                handle.notify.notify_one();
            }
        }
    }

    /// The lanes of these subscriptions (one lookup under the lock for a whole batch).
    pub fn lanes<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a SubscriptionId>,
    ) -> Vec<Option<Arc<Lane>>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        ids.into_iter()
            .map(|id| map.get(id).map(|h| h.lane.clone()))
            .collect()
    }

    /// Installs a worker, returning (and thereby stopping) the previous one.
    pub fn insert(&self, id: SubscriptionId, handle: WorkerHandle) -> Option<WorkerHandle> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(id, handle)
    }

    /// Removes a worker.
    pub fn remove(&self, id: &SubscriptionId) -> Option<WorkerHandle> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id)
    }

    /// Removes every worker.
    pub fn drain(&self) -> Vec<WorkerHandle> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.drain().map(|(_, h)| h).collect()
    }
}

/// A running worker; dropping it stops the worker and its in-flight sends (whose entries stay
/// in the outbox and are sent again later).
pub(crate) struct WorkerHandle {
    notify: Arc<Notify>,
    lane: Arc<Lane>,
    task: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops the worker, returning its task to await its end.
    pub fn stop(mut self) -> Option<JoinHandle<()>> {
        let task = self.task.take();
        if let Some(task) = &task {
            task.abort();
        }
        task
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts the worker of a subscription, under a supervisor: if the worker panics (a bug:
/// sends run in tasks of their own, so a sink cannot), the panic is logged with the
/// subscription, and a fresh worker takes over after a short backoff. Nothing is lost: the
/// worker's queue is a cache of the outbox, so the new one reads it again, and sends that were
/// in flight are retried (at least once).
pub(crate) fn spawn(
    sub: &Subscription,
    sink: Arc<dyn Sink>,
    db: Arc<SharedDb>,
    committer: Committer,
    on_disable: DisableHook,
) -> WorkerHandle {
    let notify = Arc::new(Notify::new());
    // Validated when the subscription was stored.
    let policy = sub
        .delivery_policy()
        .unwrap_or_else(|_| sub.delivery.clone());
    let lane = Arc::new(Lane::new(
        &sub.id,
        sink,
        policy,
        sub.disabled().map(str::to_owned),
        on_disable,
    ));
    let id = sub.id.clone();
    let (l, n) = (lane.clone(), notify.clone());
    let fresh = move || Worker {
        id: id.clone(),
        window: WINDOW.max(l.policy.max_in_flight as usize * 2),
        bucket: l.policy.rate_limit.map(TokenBucket::new),
        lane: l.clone(),
        db: db.clone(),
        committer: committer.clone(),
        notify: n.clone(),
        queue: BTreeMap::new(),
        cursor: 0,
        more: true,
        tasks: JoinSet::new(),
        task_seqs: HashMap::new(),
        acks: Vec::new(),
        hold_until: None,
        last_sequence: HashMap::new(),
    };
    WorkerHandle {
        notify,
        lane,
        task: Some(tokio::spawn(supervise(sub.id.clone(), fresh))),
    }
}

/// Runs workers made by `fresh` one after another, each after the previous one panicked.
/// Stopping (aborting) the supervisor drops the running worker with it.
async fn supervise(id: SubscriptionId, fresh: impl Fn() -> Worker + Send + 'static) {
    let mut restarts: u32 = 0;
    loop {
        // In a set, so dropping the supervisor aborts the worker too.
        let mut running = JoinSet::new();
        running.spawn(fresh().run());
        match running.join_next().await {
            Some(Err(e)) if e.is_panic() => {
                restarts = restarts.saturating_add(1);
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                let backoff = Duration::from_millis(100)
                    .saturating_mul(restarts.min(50))
                    .min(Duration::from_secs(5));
                tracing::error!(subscription = %id, restarts, panic = %message, ?backoff,
                    "delivery worker panicked; starting a fresh one (undelivered events stay queued)");
                tokio::time::sleep(backoff).await;
            }
            // Cancelled with the supervisor, or (never) returned.
            _ => return,
        }
    }
}

/// A queue entry in memory.
struct Pending {
    meta: EntryMeta,
    event: Arc<Event>,
    /// Hash of the partition key when ordering is on (a collision only serializes more).
    key: Option<u64>,
    in_flight: bool,
    /// Status of the last failed attempt in this run, for the dead letter.
    last_status: Option<u16>,
    /// Its `sequence` extension, when ordering is on and it has one.
    sequence: Option<Sequence>,
    /// Whether the gap before it was already logged.
    gap_logged: bool,
}

/// A `sequence` value: an integer when it is one (producers count `9` before `10`), else the
/// string, compared lexicographically as the extension specifies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Sequence {
    Number(u64),
    Text(String),
}

impl Sequence {
    fn of(event: &Event) -> Option<Sequence> {
        let text = event.extension(SEQUENCE)?.to_canonical_string();
        Some(match text.parse::<u64>() {
            Ok(n) => Sequence::Number(n),
            Err(_) => Sequence::Text(text),
        })
    }
}

impl std::fmt::Display for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sequence::Number(n) => write!(f, "{n}"),
            Sequence::Text(t) => f.write_str(t),
        }
    }
}

struct Worker {
    id: SubscriptionId,
    /// The sink and policy, and what the worker shares with the direct path: send slots,
    /// idleness, holds.
    lane: Arc<Lane>,
    db: Arc<SharedDb>,
    committer: Committer,
    notify: Arc<Notify>,
    /// The loaded part of the queue, by sequence.
    queue: BTreeMap<u64, Pending>,
    /// Next sequence to read from the outbox.
    cursor: u64,
    /// Whether the outbox may hold entries beyond `cursor`.
    more: bool,
    window: usize,
    bucket: Option<TokenBucket>,
    tasks: JoinSet<(u64, SendOutcome)>,
    task_seqs: HashMap<tokio::task::Id, u64>,
    /// Delivered entries not yet removed from the outbox.
    acks: Vec<u64>,
    /// No send before this: the sink asked us to wait (`Retry-After`) or is unreachable.
    hold_until: Option<Instant>,
    /// Per ordering key, the highest `sequence` delivered (or dead-lettered) in this run: what
    /// a gap is measured from.
    last_sequence: HashMap<u64, Sequence>,
}

impl Worker {
    async fn run(mut self) {
        tracing::debug!(subscription = %self.id, sink = %self.lane.sink.describe(), "worker started");
        loop {
            if self.more
                && self.queue.len() < self.window
                && let Err(e) = self.refill().await
            {
                tracing::error!(subscription = %self.id, error = %e, "reading the outbox failed");
                tokio::time::sleep(READ_ERROR_PAUSE).await;
                continue;
            }
            let wake = self.dispatch();
            let has_tasks = !self.tasks.is_empty();
            // Idle: nothing loaded or in flight, nothing more to read, no hold. Cleared by
            // the committer when it queues new entries (`Workers::notify`).
            let idle = self.queue.is_empty() && !self.more && !has_tasks && wake.is_none();
            self.lane.idle.store(idle, Ordering::Release);
            let sleep = tokio::time::sleep_until(
                wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
                    .into(),
            );
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id(), if has_tasks => {
                    self.completed(done);
                    // Take every other finished send too, so their acknowledgements share a job.
                    while let Some(done) = self.tasks.try_join_next_with_id() {
                        self.completed(done);
                    }
                    self.flush_acks();
                }
                () = self.notify.notified() => self.more = true,
                () = self.lane.slot_freed.notified() => {}
                () = sleep, if wake.is_some() => {}
            }
        }
    }

    /// Loads the next entries of the queue.
    async fn refill(&mut self) -> Result<(), Error> {
        let limit = self.window - self.queue.len();
        let (db, id, from) = (self.db.get()?, self.id.clone(), self.cursor);
        let rows = tokio::task::spawn_blocking(move || store::read_outbox(&db, &id, from, limit))
            .await
            .map_err(|_| Error::Aborted)??;
        self.more = rows.len() >= limit;
        for row in rows {
            self.cursor = row.seq + 1;
            match cloudevent::json::decode(&row.json) {
                Ok(event) => {
                    let key = ordering_key(&self.lane.policy, &event);
                    let sequence = key.and_then(|_| Sequence::of(&event));
                    self.queue.insert(
                        row.seq,
                        Pending {
                            meta: row.meta,
                            event: Arc::new(event),
                            key,
                            in_flight: false,
                            last_status: None,
                            sequence,
                            gap_logged: false,
                        },
                    );
                }
                // We encoded it, so this is corruption: keep it for inspection, never drop it.
                Err(e) => tracing::error!(
                    subscription = %self.id, seq = row.seq, error = %e,
                    "undecodable outbox entry left in place"
                ),
            }
        }
        Ok(())
    }

    /// Starts every send allowed now; returns when the next timed one becomes due.
    fn dispatch(&mut self) -> Option<Instant> {
        if let Some(why) = self.lane.disabled().map(str::to_owned) {
            return self.drain_disabled(why);
        }
        let now_ms = store::now_ms();
        let now = Instant::now();
        match self.hold_until {
            Some(until) if until > now => return Some(until),
            Some(_) => self.hold_until = None,
            None => {}
        }
        let shared_hold = self.lane.hold_until_ms.load(Ordering::Acquire);
        if shared_hold > now_ms {
            return Some(now + Duration::from_millis(shared_hold - now_ms));
        }
        let heads = self.lane.policy.is_ordered().then(|| self.heads());
        let gap_ms = self.lane.policy.sequence_gap.as_millis() as u64;
        let mut earliest: Option<u64> = None;
        let mut rate_wait = None;
        let mut expired = Vec::new();
        for (&seq, p) in self.queue.iter_mut() {
            // In ordered mode only the head of each key may go.
            if let (Some(heads), Some(key)) = (&heads, p.key)
                && heads.get(&key) != Some(&seq)
            {
                continue;
            }
            if p.in_flight {
                continue;
            }
            if let Some(age) = self.lane.policy.max_age
                && now_ms > p.meta.first_ms.saturating_add(age.as_millis() as u64)
            {
                // Never attempted in time (sink on hold, engine down): give up unsent.
                expired.push(seq);
                continue;
            }
            if p.meta.next_ms > now_ms {
                earliest = Some(earliest.map_or(p.meta.next_ms, |e| e.min(p.meta.next_ms)));
                continue;
            }
            // A gap in the key's integer sequence: wait a while for the missing events.
            if let (Some(key), Some(Sequence::Number(n))) = (p.key, &p.sequence)
                && let Some(Sequence::Number(last)) = self.last_sequence.get(&key)
                && *n > last.saturating_add(1)
            {
                let release = p.meta.first_ms.saturating_add(gap_ms);
                if now_ms < release {
                    earliest = Some(earliest.map_or(release, |e| e.min(release)));
                    continue;
                }
                if !p.gap_logged {
                    p.gap_logged = true;
                    tracing::warn!(
                        subscription = %self.id, event = p.event.id(), sequence = n,
                        missing = %format!("{}..={}", last + 1, n - 1),
                        waited_ms = gap_ms,
                        "sequence gap: delivering without the missing events"
                    );
                }
            }
            let Ok(slot) = self.lane.slots.clone().try_acquire_owned() else {
                break;
            };
            if let Some(bucket) = &mut self.bucket
                && let Err(wait) = bucket.try_take(now)
            {
                rate_wait = Some(now + wait);
                break;
            }
            p.in_flight = true;
            let lane = self.lane.clone();
            let event = p.event.clone();
            let handle = self.tasks.spawn(async move {
                let _slot = slot;
                (seq, lane.send(&event).await)
            });
            self.task_seqs.insert(handle.id(), seq);
        }
        let gave_up = !expired.is_empty();
        for seq in expired {
            let Some(p) = self.queue.get(&seq) else {
                continue;
            };
            let (status, attempts) = (p.last_status, p.meta.attempts);
            let reason = format!(
                "gave up after {attempts} attempts: maximum age of {:?} reached",
                self.lane.policy.max_age.unwrap_or_default()
            );
            self.dead_letter(seq, reason, status);
        }
        if gave_up {
            // Entries behind the expired ones (same partition key) may be sendable now.
            return Some(now);
        }
        let timed = earliest.map(|ms| now + Duration::from_millis(ms.saturating_sub(now_ms)));
        match (timed, rate_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A disabled subscription sends nothing: every loaded entry that is not in flight is
    /// dead-lettered, saying why. Returns "now" while the outbox holds more to read.
    fn drain_disabled(&mut self, why: String) -> Option<Instant> {
        let idle: Vec<u64> = self
            .queue
            .iter()
            .filter(|(_, p)| !p.in_flight)
            .map(|(&seq, _)| seq)
            .collect();
        for seq in idle {
            let status = self.queue.get(&seq).and_then(|p| p.last_status);
            self.dead_letter(
                seq,
                format!("not sent: subscription disabled, {why}"),
                status,
            );
        }
        self.more.then(Instant::now)
    }

    /// Records the outcome of a send.
    fn completed(&mut self, done: Result<(tokio::task::Id, (u64, SendOutcome)), JoinError>) {
        let (seq, outcome) = match done {
            Ok((task, result)) => {
                self.task_seqs.remove(&task);
                result
            }
            Err(e) => {
                let Some(seq) = self.task_seqs.remove(&e.id()) else {
                    return;
                };
                let reason = format!("sink task failed: {e}");
                (
                    seq,
                    SendOutcome::Retry {
                        after: None,
                        status: None,
                        reason,
                    },
                )
            }
        };
        self.lane.record_attempt(&outcome);
        let Some(p) = self.queue.get_mut(&seq) else {
            return;
        };
        p.in_flight = false;
        if let (Some(why), SendOutcome::Retry { reason, status, .. }) =
            (self.lane.disabled(), &outcome)
        {
            // Disabled while this send was out: it is not tried again.
            p.meta.attempts += 1;
            let reason =
                format!("not sent again: subscription disabled, {why}; last error: {reason}");
            let status = *status;
            self.dead_letter(seq, reason, status);
            return;
        }
        match outcome {
            SendOutcome::Delivered => {
                tracing::debug!(
                    subscription = %self.id, event = p.event.id(), sink = %self.lane.sink.describe(),
                    attempts = p.meta.attempts + 1, "delivered"
                );
                if let Some(p) = self.queue.remove(&seq) {
                    self.passed(&p);
                }
                self.acks.push(seq);
            }
            SendOutcome::Retry {
                after,
                status,
                reason,
            } => {
                p.meta.attempts += 1;
                p.last_status = status;
                let (next_ms, delay, hold) =
                    match next_attempt(&self.lane.policy, &p.meta, after, status, &reason) {
                        NextAttempt::At {
                            next_ms,
                            delay,
                            hold,
                        } => (next_ms, delay, hold),
                        NextAttempt::GiveUp(reason) => {
                            self.dead_letter(seq, reason, status);
                            return;
                        }
                    };
                tracing::warn!(
                    subscription = %self.id, event = p.event.id(), sink = %self.lane.sink.describe(),
                    attempts = p.meta.attempts, status = ?status, retry_in = ?delay,
                    "delivery failed, will retry: {reason}"
                );
                p.meta.next_ms = next_ms;
                let meta = p.meta;
                if hold {
                    let now = Instant::now();
                    let until = now.checked_add(delay).unwrap_or(now + MAX_BACKOFF);
                    self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
                }
                let id = self.id.as_str().to_owned();
                self.committer.submit(move |b| {
                    let current = b.outbox().get((id.as_str(), seq))?;
                    if let Some(mut value) = current.map(|v| v.value().to_vec()) {
                        store::set_entry_meta(&mut value, meta);
                        b.put_queued(&id, seq, &value)?;
                    }
                    Ok(())
                });
            }
            SendOutcome::Permanent { reason, status } => {
                p.meta.attempts += 1;
                self.dead_letter(seq, reason, status);
            }
            SendOutcome::Gone { reason, status } => {
                p.meta.attempts += 1;
                self.lane.disable(gone_reason(&reason));
                let reason = format!("{reason}: the sink is gone, the subscription is disabled");
                self.dead_letter(seq, reason, status);
            }
        }
    }

    /// Removes delivered entries from the outbox, in one job.
    fn flush_acks(&mut self) {
        if self.acks.is_empty() {
            return;
        }
        let acks = std::mem::take(&mut self.acks);
        let id = self.id.as_str().to_owned();
        self.committer.submit(move |b| {
            for seq in acks {
                b.remove_queued(&id, seq)?;
            }
            Ok(())
        });
    }

    /// Moves an entry to the dead letters (one transaction: never in both, never in neither).
    fn dead_letter(&mut self, seq: u64, reason: String, status: Option<u16>) {
        let Some(p) = self.queue.remove(&seq) else {
            return;
        };
        self.passed(&p);
        let value = deadletter::abandon(
            &self.id,
            self.lane.sink.describe(),
            &p.event,
            &reason,
            p.meta.attempts,
            status,
        );
        let id = self.id.as_str().to_owned();
        self.committer.submit(move |b| {
            // A subscription deleted meanwhile took its queue with it.
            if b.remove_queued(&id, seq)? {
                b.put_dead(&id, seq, &value)?;
            }
            Ok(())
        });
    }
}

impl Worker {
    /// The entry of each ordering key that may go next: the one in flight, else the lowest
    /// `sequence` (entries without one first), else the oldest.
    fn heads(&self) -> HashMap<u64, u64> {
        let mut heads: HashMap<u64, (bool, Option<&Sequence>, u64)> = HashMap::new();
        for (&seq, p) in &self.queue {
            let Some(key) = p.key else {
                continue;
            };
            let rank = (!p.in_flight, p.sequence.as_ref(), seq);
            heads
                .entry(key)
                .and_modify(|best| {
                    if rank < *best {
                        *best = rank;
                    }
                })
                .or_insert(rank);
        }
        heads
            .into_iter()
            .map(|(key, (_, _, seq))| (key, seq))
            .collect()
    }

    /// Records that an entry left the queue (delivered or dead-lettered): its key's sequence
    /// has moved on.
    fn passed(&mut self, p: &Pending) {
        if let (Some(key), Some(sequence)) = (p.key, &p.sequence) {
            if self.last_sequence.len() >= MAX_SEQUENCE_KEYS
                && !self.last_sequence.contains_key(&key)
            {
                tracing::debug!(subscription = %self.id, keys = MAX_SEQUENCE_KEYS,
                    "forgetting the last sequence of every key (too many keys)");
                self.last_sequence.clear();
            }
            let last = self
                .last_sequence
                .entry(key)
                .or_insert_with(|| sequence.clone());
            if *sequence > *last {
                *last = sequence.clone();
            }
        }
    }
}

/// Why a subscription is disabled, from what its sink answered (e.g. `HTTP 410 Gone: ...`).
pub(crate) fn gone_reason(answer: &str) -> String {
    format!("the sink answered {answer}")
}

/// What follows a failed attempt.
pub(crate) enum NextAttempt {
    /// Try again at `next_ms` (`delay` from now). `hold`: the whole sink waits that long, not
    /// only this entry.
    At {
        next_ms: u64,
        delay: Duration,
        hold: bool,
    },
    /// Stop: the reason for the dead letter.
    GiveUp(String),
}

/// A send's outcome in one word, for spans.
fn outcome_name(outcome: &SendOutcome) -> &'static str {
    match outcome {
        SendOutcome::Delivered => "delivered",
        SendOutcome::Retry { .. } => "retry",
        SendOutcome::Permanent { .. } => "refused",
        SendOutcome::Gone { .. } => "gone",
    }
}

/// The ordering key of an event under `policy` (hashed; a collision only serializes more):
/// `partitionkey`, else (with [`DeliveryPolicy::ordered`]) `source`; `None` when unordered.
fn ordering_key(policy: &DeliveryPolicy, event: &Event) -> Option<u64> {
    let hash = |text: &str| {
        let mut h = DefaultHasher::new();
        text.hash(&mut h);
        h.finish()
    };
    if !policy.is_ordered() {
        return None;
    }
    match event.extension(PARTITION_KEY) {
        Some(key) => Some(hash(&key.to_canonical_string())),
        None if policy.ordered => Some(hash(event.source())),
        None => None,
    }
}

/// Decides what follows a failed attempt (`meta.attempts` already counts it): the backoff, or
/// `Retry-After` when the sink gave one, unless attempts or age are used up. Shared by the
/// worker and the outbox's direct path.
pub(crate) fn next_attempt(
    policy: &DeliveryPolicy,
    meta: &EntryMeta,
    after: Option<Duration>,
    status: Option<u16>,
    reason: &str,
) -> NextAttempt {
    let backoff = backoff::delay(policy, meta.attempts);
    let delay = match after {
        Some(asked) if asked > policy.max_retry_after => {
            return NextAttempt::GiveUp(format!(
                "retry-after of {}s exceeds the subscription's maximum of {}s; last error: {reason}",
                asked.as_secs(),
                policy.max_retry_after.as_secs()
            ));
        }
        // A sink asking for less than the backoff (`Retry-After: 0`) still waits the backoff:
        // it must not get a hot loop of retries.
        Some(asked) => asked.max(backoff),
        None => backoff,
    };
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let next_ms = store::now_ms().saturating_add(delay_ms);
    if let Some(why) = give_up(policy, meta, next_ms) {
        let why = match after {
            Some(_) if why.contains("maximum age") => {
                format!("retry-after exceeds max age ({why})")
            }
            _ => why,
        };
        return NextAttempt::GiveUp(format!("{why}; last error: {reason}"));
    }
    NextAttempt::At {
        next_ms,
        delay,
        // `Retry-After` holds the whole sink (the webhook spec: "refrain from sending
        // further requests until the indicated time"); so does an unreachable sink, rather
        // than every queued entry failing on its own.
        hold: after.is_some() || status.is_none(),
    }
}

/// Why to stop retrying, if it is time to: attempts used up, or the next attempt would come
/// after the event's maximum age.
fn give_up(policy: &DeliveryPolicy, meta: &EntryMeta, next_ms: u64) -> Option<String> {
    if let Some(max) = policy.max_attempts
        && meta.attempts >= max
    {
        return Some(format!("gave up after {} attempts", meta.attempts));
    }
    if let Some(age) = policy.max_age
        && next_ms > meta.first_ms.saturating_add(age.as_millis() as u64)
    {
        return Some(format!(
            "gave up after {} attempts: maximum age of {:?} reached",
            meta.attempts, age
        ));
    }
    None
}

#[cfg(test)]
mod next_attempt_tests {
    use super::*;

    fn meta(attempts: u32) -> EntryMeta {
        EntryMeta {
            attempts,
            first_ms: store::now_ms(),
            next_ms: 0,
        }
    }

    /// A `Retry-After` of u64::MAX seconds used to overflow `Instant + Duration` and kill the
    /// worker; now it is a dead letter naming the limit.
    #[test]
    fn an_absurd_retry_after_is_a_dead_letter_not_a_panic() {
        let policy = DeliveryPolicy {
            max_age: None,
            ..DeliveryPolicy::default()
        };
        let huge = Some(Duration::from_secs(9_241_818_780_928_485_360));
        match next_attempt(&policy, &meta(1), huge, Some(429), "429") {
            NextAttempt::GiveUp(reason) => {
                assert!(reason.contains("retry-after of"), "{reason}");
                assert!(reason.contains("exceeds"), "{reason}");
            }
            NextAttempt::At { .. } => panic!("an absurd Retry-After was accepted"),
        }
    }

    #[test]
    fn a_retry_after_beyond_the_events_age_dead_letters_with_that_reason() {
        let policy = DeliveryPolicy {
            max_age: Some(Duration::from_secs(60)),
            ..DeliveryPolicy::default()
        };
        let after = Some(Duration::from_secs(600));
        match next_attempt(&policy, &meta(1), after, Some(503), "503") {
            NextAttempt::GiveUp(reason) => {
                assert!(reason.contains("retry-after exceeds max age"), "{reason}")
            }
            NextAttempt::At { .. } => panic!("waited past the event's age"),
        }
    }

    /// `Retry-After: 0` from a sink that always fails must not make a hot loop.
    #[test]
    fn a_zero_retry_after_still_waits_the_backoff() {
        let policy = DeliveryPolicy::default();
        for attempts in 1..6 {
            match next_attempt(
                &policy,
                &meta(attempts),
                Some(Duration::ZERO),
                Some(503),
                "",
            ) {
                NextAttempt::At { delay, hold, .. } => {
                    assert!(delay >= policy.initial_backoff, "{delay:?}");
                    assert!(hold);
                }
                NextAttempt::GiveUp(r) => panic!("{r}"),
            }
        }
    }

    #[test]
    fn policies_that_would_overflow_are_refused() {
        for bad in [
            DeliveryPolicy {
                rate_limit: Some(1e-20),
                ..DeliveryPolicy::default()
            },
            DeliveryPolicy {
                max_backoff: Duration::from_secs(u64::MAX),
                ..DeliveryPolicy::default()
            },
            DeliveryPolicy {
                max_age: Some(Duration::from_secs(u64::MAX)),
                ..DeliveryPolicy::default()
            },
            DeliveryPolicy {
                max_retry_after: Duration::ZERO,
                ..DeliveryPolicy::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(DeliveryPolicy::default().validate().is_ok());
    }
}
