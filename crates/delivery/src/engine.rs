//! The delivery engine: owns the store, the committer, the subscriptions and their workers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cloudevent::Event;
use redb::ReadableTable;

use crate::cluster::{Change, Cluster, ClusterConfig};
use crate::committer::Committer;
use crate::deadletter::{self, DeadLetter, DeadLetterSelector};
use crate::error::Error;
use crate::model::{CONFIG_DISABLED, Subscription, SubscriptionId, SubscriptionRequest};
use crate::outbox::Outbox;
use crate::quota::{Quotas, Usage};
use crate::sink::SinkRegistry;
use crate::store::{self, SharedDb};
use crate::worker::{self, DisableHook, Workers};

/// The subscriptions in memory, by id.
pub(crate) type Cache = Arc<RwLock<BTreeMap<SubscriptionId, Arc<Subscription>>>>;

/// How long `open` waits for a previous instance in this process to release the file.
const OPEN_RETRY: Duration = Duration::from_secs(5);

/// The delivery engine of one state directory. Create it once at start-up
/// ([`Delivery::open`]), share it (e.g. in an `Arc`), and call [`Delivery::shutdown`] on the
/// way out. Every pending delivery found at start-up is resumed.
pub struct Delivery {
    db: Arc<SharedDb>,
    committer: Committer,
    /// What the store holds and may hold, per subscription and in all.
    quotas: Arc<Quotas>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    workers: Arc<Workers>,
    sinks: SinkRegistry,
    subscriptions: Cache,
    /// Bumped on every subscription change, so matchers can cache compiled filters.
    generation: Arc<AtomicU64>,
    /// Serializes subscription changes so the store, the cache and the workers agree.
    admin: Arc<tokio::sync::Mutex<()>>,
    /// The hop limit of loop protection, see [`crate::hops`].
    max_hops: Arc<std::sync::atomic::AtomicU32>,
    /// Forgets dedup keys that left their window (see [`crate::dedup`]) and dead letters past
    /// their retention.
    pruner: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Cluster mode: the shared state in JetStream (see [`crate::cluster`]), and the watch
    /// that applies subscription changes made through any node.
    cluster: Option<Arc<Cluster>>,
    watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Delivery {
    /// Opens (or creates) the store in `state_dir`, loads the subscriptions and starts their
    /// workers. Must be called within a Tokio runtime. A subscription whose sink cannot be
    /// built (e.g. its protocol is not compiled in) keeps its queue but gets no worker.
    pub async fn open(state_dir: impl AsRef<Path>, sinks: SinkRegistry) -> Result<Self, Error> {
        Self::open_with(state_dir, sinks, None).await
    }

    /// Like [`Delivery::open`], in cluster mode when `cluster` is given: subscriptions, queued
    /// deliveries and dead letters live in NATS JetStream, shared with every node of the same
    /// cluster and namespace (see [`crate::cluster`]); the state directory keeps only what is
    /// per node (dedup windows, the compiled-component cache). Fails when the cluster cannot
    /// be reached or its streams cannot be created.
    pub async fn open_with(
        state_dir: impl AsRef<Path>,
        sinks: SinkRegistry,
        cluster: Option<ClusterConfig>,
    ) -> Result<Self, Error> {
        let cluster = match cluster {
            Some(config) => Some(Cluster::connect(config).await?),
            None => None,
        };
        let dir = state_dir.as_ref().to_owned();
        let opened_dir = dir.clone();
        let (db, next_seq, subs) = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + OPEN_RETRY;
            let (db, next_seq) = loop {
                match store::open(&dir) {
                    Err(Error::Store(e))
                        if matches!(*e, redb::Error::DatabaseAlreadyOpen)
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    other => break other?,
                }
            };
            let subs = store::load_subscriptions(&db)?;
            Ok::<_, Error>((db, next_seq, subs))
        })
        .await
        .map_err(|_| Error::Aborted)??;
        let quotas = Arc::new(Quotas::load(&db)?);
        let db = Arc::new(SharedDb::new(opened_dir, db));
        let (committer, thread) = Committer::start(db.clone(), quotas.clone(), next_seq);
        let delivery = Delivery {
            db,
            committer,
            quotas,
            thread: Mutex::new(Some(thread)),
            workers: Arc::new(Workers::default()),
            sinks,
            subscriptions: Arc::new(RwLock::new(BTreeMap::new())),
            generation: Arc::new(AtomicU64::new(0)),
            admin: Arc::new(tokio::sync::Mutex::new(())),
            max_hops: Arc::new(std::sync::atomic::AtomicU32::new(
                crate::hops::DEFAULT_MAX_HOPS,
            )),
            pruner: Mutex::new(None),
            cluster,
            watch: Mutex::new(None),
        };
        *delivery.pruner.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokio::spawn(
            housekeeping(delivery.committer.clone(), delivery.subscriptions.clone()),
        ));
        let (subs, watch_after) = match &delivery.cluster {
            Some(cluster) => {
                let stored = cluster.load_subscriptions().await?;
                (stored.subscriptions, stored.last)
            }
            None => (subs, 0),
        };
        for sub in subs {
            delivery.start(Arc::new(sub));
        }
        if let Some(cluster) = &delivery.cluster {
            let (apply, reconcile) = (delivery.applier(), delivery.applier());
            *delivery.watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(cluster.watch(
                watch_after,
                move |change| apply.apply(change),
                move |subs| reconcile.reconcile(subs),
            ));
        }
        tracing::info!(
            subscriptions = delivery.subscriptions().len(),
            "delivery engine started"
        );
        Ok(delivery)
    }

    /// Records a subscription in the cache and (re)starts its worker.
    fn start(&self, sub: Arc<Subscription>) {
        if self.cluster.is_some() {
            self.applier().put(sub);
            return;
        }
        match self.sinks.create(&sub) {
            Ok(sink) => {
                if let Some(why) = sub.disabled() {
                    tracing::warn!(subscription = %sub.id, sink = %sub.sink, reason = %why,
                        "subscription is disabled: what is routed to it is dead-lettered; \
                         PUT the subscription to enable it again");
                }
                let handle = worker::spawn(
                    &sub,
                    sink,
                    self.db.clone(),
                    self.committer.clone(),
                    self.disable_hook(&sub),
                );
                self.workers.insert(sub.id.clone(), handle);
            }
            Err(e) => {
                tracing::error!(subscription = %sub.id, sink = %sub.sink, error = %e,
                    "no sink for subscription: its events wait in the outbox");
                self.workers.remove(&sub.id);
            }
        }
        self.quotas
            .set_subscription(sub.id.as_str(), sub.delivery.limits());
        self.write_cache().insert(sub.id.clone(), sub);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// What applies a subscription change in cluster mode, on this node: the cache and the
    /// worker. Shared with the watch of the subscriptions stream.
    fn applier(&self) -> Applier {
        Applier {
            cluster: self.cluster.clone(),
            sinks: self.sinks.clone(),
            cache: self.subscriptions.clone(),
            generation: self.generation.clone(),
        }
    }

    /// The cluster this node joined, if any: its NATS address and namespace.
    pub fn cluster(&self) -> Option<&ClusterConfig> {
        self.cluster.as_deref().map(Cluster::config)
    }

    /// Sets the bounds on what the store keeps for all subscriptions together (see
    /// [`crate::quota`]); each subscription's own are in its delivery policy.
    pub fn set_limits(&self, limits: manifest::StoreLimits) {
        self.quotas.set_global(limits);
    }

    /// What the store holds (queued deliveries and dead letters, counts and bytes), for one
    /// subscription or all. Kept in memory: no store read.
    pub fn usage(&self, subscription: Option<&SubscriptionId>) -> Usage {
        self.quotas.usage(subscription.map(SubscriptionId::as_str))
    }

    /// What a worker calls when the sink of `sub` says it is gone (webhook `410 Gone`):
    /// records the subscription as disabled, durably, with a [`CONFIG_DISABLED`] entry saying
    /// why and since when, so the Subscriptions API shows it and a restart keeps it. Skipped
    /// if the subscription was replaced or deleted meanwhile (a `PUT` is newer news).
    fn disable_hook(&self, sub: &Arc<Subscription>) -> DisableHook {
        let sub = sub.clone();
        let cache = self.subscriptions.clone();
        let generation = self.generation.clone();
        let admin = self.admin.clone();
        let committer = self.committer.clone();
        Arc::new(move |why: String| {
            tracing::warn!(subscription = %sub.id, sink = %sub.sink, reason = %why,
                "subscription disabled: the sink is gone; nothing more is sent to it and \
                 pending events are dead-lettered; PUT the subscription to enable it again");
            let (sub, cache, generation, admin, committer) = (
                sub.clone(),
                cache.clone(),
                generation.clone(),
                admin.clone(),
                committer.clone(),
            );
            let since = httpdate::fmt_http_date(std::time::SystemTime::now());
            tokio::spawn(async move {
                let _admin = admin.lock().await;
                let current = cache
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&sub.id)
                    .cloned();
                if !current.is_some_and(|c| Arc::ptr_eq(&c, &sub)) {
                    return;
                }
                let mut disabled = (*sub).clone();
                disabled
                    .config
                    .get_or_insert_with(BTreeMap::new)
                    .insert(CONFIG_DISABLED.to_owned(), format!("{why} ({since})"));
                let record = crate::schema::encode_subscription(&disabled);
                let key = disabled.id.as_str().to_owned();
                let stored = committer
                    .execute(move |b| {
                        if b.subscriptions.get(key.as_str())?.is_some() {
                            b.subscriptions.insert(key.as_str(), record.as_slice())?;
                        }
                        Ok(())
                    })
                    .await;
                if let Err(e) = stored {
                    tracing::error!(subscription = %sub.id, error = %e,
                        "could not store that the subscription is disabled");
                }
                cache
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(sub.id.clone(), Arc::new(disabled));
                generation.fetch_add(1, Ordering::Release);
            });
        })
    }

    /// Dead-letters `event` under the queue `id` (which must exist) without delivering it,
    /// e.g. a broker message its trigger's component kept failing; `attempts` is how often it
    /// was tried. Resolves once the dead letter is durable.
    pub async fn dead_letter(
        &self,
        id: &SubscriptionId,
        sink: &str,
        event: &cloudevent::Event,
        reason: &str,
        attempts: u32,
    ) -> Result<(), Error> {
        if let Some(cluster) = &self.cluster {
            if self.subscription(id).is_none() {
                return Err(Error::NotFound(id.clone()));
            }
            return cluster
                .dead_letter(id, sink, event, reason, attempts, None)
                .await;
        }
        let value = deadletter::abandon(id, sink, event, reason, attempts, None);
        let key = id.as_str().to_owned();
        let stored = self
            .committer
            .execute(move |b| {
                if !b.subscription_exists(&key)? {
                    return Ok(false);
                }
                let seq = b.next_seq();
                b.put_dead(key.as_str(), seq, value.as_slice())?;
                Ok(true)
            })
            .await?;
        if stored {
            Ok(())
        } else {
            Err(Error::NotFound(id.clone()))
        }
    }

    /// Readiness of the engine: the store takes a write (an empty transaction, committed
    /// and synced like any other) and its filesystem has room for more, and every
    /// subscription's worker is running. Each entry
    /// names a check and says what is wrong, if anything.
    pub async fn readiness(&self) -> Vec<(String, Result<(), String>)> {
        if let Some(cluster) = &self.cluster {
            return vec![
                ("cluster".to_owned(), cluster.readiness().await),
                (
                    "delivery-workers".to_owned(),
                    workers_check(&cluster.dead_workers()),
                ),
            ];
        }
        let store = match tokio::time::timeout(
            Duration::from_secs(2),
            self.committer.execute(|_| Ok(())),
        )
        .await
        {
            Ok(Ok(())) => match self.db.free_bytes() {
                Ok(free) if free < store::MIN_FREE_BYTES => Err(format!(
                    "the state directory's filesystem has {} KiB free, below {} MiB: writes will fail",
                    free / 1024,
                    store::MIN_FREE_BYTES / (1024 * 1024)
                )),
                _ => Ok(()),
            },
            Ok(Err(e)) => Err(format!("the store refuses writes: {e}")),
            Err(_) => Err("the store did not commit within 2 s".to_owned()),
        };
        let workers = workers_check(&self.workers.dead());
        vec![
            ("store".to_owned(), store),
            ("delivery-workers".to_owned(), workers),
        ]
    }

    /// Sets the hop limit of loop protection ([`crate::hops`]): an event that has passed
    /// through more handlers than this is dead-lettered instead of delivered.
    pub fn set_max_hops(&self, max: u32) {
        self.max_hops
            .store(max, std::sync::atomic::Ordering::Relaxed);
    }

    /// A number that changes whenever a subscription is created, replaced or deleted: lets
    /// callers that derive state from [`Delivery::subscriptions`] (compiled filters) know
    /// when to rebuild it without comparing the subscriptions themselves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn write_cache(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<SubscriptionId, Arc<Subscription>>> {
        self.subscriptions
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The handle through which triggers queue events for delivery.
    pub fn outbox(&self) -> Outbox {
        Outbox {
            committer: self.committer.clone(),
            workers: self.workers.clone(),
            max_hops: self.max_hops.clone(),
            cluster: self
                .cluster
                .clone()
                .map(|c| (c, self.subscriptions.clone())),
        }
    }

    /// Every subscription (from memory: cheap enough to call per event for matching).
    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        let cache = self.subscriptions.read().unwrap_or_else(|e| e.into_inner());
        cache.values().cloned().collect()
    }

    /// One subscription.
    pub fn subscription(&self, id: &SubscriptionId) -> Option<Arc<Subscription>> {
        let cache = self.subscriptions.read().unwrap_or_else(|e| e.into_inner());
        cache.get(id).cloned()
    }

    /// Whether `event` was already handled by trigger (or subscription) `id` within its dedup
    /// window (`DeliveryPolicy::dedup_window`); always `false` without one. Pair with
    /// [`Delivery::remember`] once the event is handled.
    pub async fn is_duplicate(&self, id: &SubscriptionId, event: &Event) -> Result<bool, Error> {
        let Some(window) = self.subscription(id).and_then(|s| s.delivery.dedup_window) else {
            return Ok(false);
        };
        let key = crate::dedup::key(id.as_str(), event);
        if let Some(cluster) = &self.cluster {
            return cluster.seen_within(&key, window).await;
        }
        // A read: no write transaction, no commit.
        let db = self.db.get()?;
        tokio::task::spawn_blocking(move || {
            crate::dedup::seen_in(&db, &key, window, store::now_ms())
        })
        .await
        .map_err(|_| Error::Aborted)?
    }

    /// Records, durably, that trigger (or subscription) `id` handled `event`, so a copy
    /// within its dedup window is recognised by [`Delivery::is_duplicate`]. Does nothing
    /// without a window.
    pub async fn remember(&self, id: &SubscriptionId, event: &Event) -> Result<(), Error> {
        let Some(window) = self.subscription(id).and_then(|s| s.delivery.dedup_window) else {
            return Ok(());
        };
        let key = crate::dedup::key(id.as_str(), event);
        if let Some(cluster) = &self.cluster {
            return cluster.remember(&key).await;
        }
        self.committer
            .execute(move |b| {
                crate::dedup::check_and_record(b, &key, window, store::now_ms()).map(|_| ())
            })
            .await
    }

    /// Creates a subscription with a fresh id (`POST /subscriptions`).
    pub async fn create_subscription(
        &self,
        request: SubscriptionRequest,
    ) -> Result<Arc<Subscription>, Error> {
        let sub = request.into_subscription(SubscriptionId::generate());
        let id = sub.id.clone();
        self.put_subscription(sub).await?;
        self.subscription(&id).ok_or(Error::NotFound(id))
    }

    /// Creates or replaces a subscription (`PUT /subscriptions/{id}`), durably, and (re)starts
    /// its worker; pending deliveries are kept across a replacement. Returns whether it was
    /// created. Refused if the subscription is invalid or no sink can be built for it.
    /// Storing a subscription enables it: a [`CONFIG_DISABLED`] entry is removed.
    pub async fn put_subscription(&self, mut sub: Subscription) -> Result<bool, Error> {
        if sub.enable() {
            tracing::info!(subscription = %sub.id, "subscription enabled again");
        }
        sub.validate().map_err(Error::Invalid)?;
        // Building the sink checks the URI, settings and credentials before anything is stored.
        self.sinks.create(&sub)?;
        if let Some(cluster) = &self.cluster {
            let _admin = self.admin.lock().await;
            let created = cluster.put_subscription(&sub).await?;
            tracing::info!(subscription = %sub.id, sink = %sub.sink, created,
                "subscription stored in the cluster");
            self.start(Arc::new(sub));
            return Ok(created);
        }
        let record = crate::schema::encode_subscription(&sub);
        let _admin = self.admin.lock().await;
        let id = sub.id.as_str().to_owned();
        let created = self
            .committer
            .execute(move |b| {
                let existed = b.subscriptions.get(id.as_str())?.is_some();
                b.subscriptions.insert(id.as_str(), record.as_slice())?;
                b.set_subscription_exists(&id, true);
                Ok(!existed)
            })
            .await?;
        tracing::info!(subscription = %sub.id, sink = %sub.sink, created, "subscription stored");
        self.start(Arc::new(sub));
        Ok(created)
    }

    /// Deletes a subscription: stops its worker and drops its pending deliveries (its dead
    /// letters are kept until purged). Returns whether it existed.
    pub async fn delete_subscription(&self, id: &SubscriptionId) -> Result<bool, Error> {
        let _admin = self.admin.lock().await;
        if let Some(cluster) = &self.cluster {
            let existed = cluster.delete_subscription(id).await?;
            self.applier().apply(Change::Delete(id.clone()));
            tracing::info!(subscription = %id, existed, "subscription deleted from the cluster");
            return Ok(existed);
        }
        if let Some(handle) = self.workers.remove(id)
            && let Some(task) = handle.stop()
        {
            let _ = task.await;
        }
        let key = id.as_str().to_owned();
        let existed = self
            .committer
            .execute(move |b| {
                let existed = b.subscriptions.remove(key.as_str())?.is_some();
                b.set_subscription_exists(&key, false);
                crate::dedup::forget_all(b, &key)?;
                Ok(existed)
            })
            .await?;
        // Gone from the subscriptions first, so nothing is queued for it any more; its queue
        // then goes in steps, each its own commit, interleaved with ingest.
        loop {
            let key = id.as_str().to_owned();
            let removed = self
                .committer
                .execute(move |b| {
                    let seqs: Vec<u64> = b
                        .outbox()
                        .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))?
                        .take(deadletter::CHUNK)
                        .map(|row| row.map(|(k, _)| k.value().1))
                        .collect::<Result<_, _>>()?;
                    for seq in &seqs {
                        b.remove_queued(key.as_str(), *seq)?;
                    }
                    Ok(seqs.len())
                })
                .await?;
            if removed < deadletter::CHUNK {
                break;
            }
        }
        self.write_cache().remove(id);
        self.quotas.set_subscription(id.as_str(), None);
        self.generation.fetch_add(1, Ordering::Release);
        tracing::info!(subscription = %id, existed, "subscription deleted");
        Ok(existed)
    }

    /// Pending (not yet delivered or dead-lettered) deliveries, of one subscription or all:
    /// what the store holds, as counted by its writes ([`Delivery::usage`]), without a scan.
    pub fn pending(&self, subscription: Option<&SubscriptionId>) -> u64 {
        self.usage(subscription).queued
    }

    /// Dead letters, of one subscription or all, at most `limit`, oldest first per
    /// subscription. Reads the store.
    pub fn dead_letters(
        &self,
        subscription: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        if let Some(cluster) = &self.cluster {
            // Called from a blocking context (the API reads through `spawn_blocking`).
            return tokio::runtime::Handle::current()
                .block_on(cluster.dead_letters(subscription, limit));
        }
        store::read_dead(&*self.db.get()?, subscription, limit)?
            .into_iter()
            .map(DeadLetter::from_stored)
            .collect()
    }

    /// Moves dead letters back to their subscription's queue with a fresh attempt count and
    /// age, stripped of their `deadletter*` extensions. Letters of deleted subscriptions stay.
    /// Works in steps of [`deadletter::CHUNK`] letters, each its own commit, so ingest goes on
    /// meanwhile. Returns how many were replayed.
    pub async fn replay_dead_letters(&self, selector: DeadLetterSelector) -> Result<usize, Error> {
        if let Some(cluster) = &self.cluster {
            return cluster
                .replay(&selector, |id| self.subscription(id).is_some())
                .await;
        }
        let selector = Arc::new(selector);
        let mut cursor = deadletter::Cursor::default();
        let mut count = 0;
        loop {
            let (workers, selector) = (self.workers.clone(), selector.clone());
            let step = self
                .committer
                .execute_then(
                    move |b| deadletter::replay(b, &selector, &cursor),
                    move |step: &deadletter::Step| {
                        workers.notify(step.touched.iter().map(String::as_str))
                    },
                )
                .await?;
            count += step.count;
            match step.next {
                Some(next) => cursor = next,
                None => return Ok(count),
            }
        }
    }

    /// Deletes the dead letters past their subscription's `deadLetterRetentionMs` now (the
    /// engine also does so every 30 s). Returns how many.
    pub async fn expire_dead_letters(&self) -> Result<usize, Error> {
        expire_dead_letters(&self.committer, &self.subscriptions).await
    }

    /// Deletes dead letters for good, in steps of [`deadletter::CHUNK`] like
    /// [`replay_dead_letters`](Self::replay_dead_letters). Returns how many.
    pub async fn purge_dead_letters(&self, selector: DeadLetterSelector) -> Result<usize, Error> {
        if let Some(cluster) = &self.cluster {
            return cluster.purge(&selector).await;
        }
        let selector = Arc::new(selector);
        let mut cursor = deadletter::Cursor::default();
        let mut count = 0;
        loop {
            let selector = selector.clone();
            let step = self
                .committer
                .execute(move |b| deadletter::purge(b, &selector, &cursor))
                .await?;
            count += step.count;
            match step.next {
                Some(next) => cursor = next,
                None => return Ok(count),
            }
        }
    }

    /// Stops the workers (in-flight sends are abandoned and will be redone), lets the
    /// committer finish what was queued, and closes the store.
    pub async fn shutdown(self) {
        self.stop().await;
    }

    /// What [`Delivery::shutdown`] does, for an engine that is shared (an `Arc` held by the
    /// triggers, the admin API and in-process subscribers): the store closes when the last
    /// handle is dropped. Nothing can be queued after this.
    pub async fn stop(&self) {
        if let Some(pruner) = self.pruner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pruner.abort();
        }
        if let Some(watch) = self.watch.lock().unwrap_or_else(|e| e.into_inner()).take() {
            watch.abort();
        }
        if let Some(cluster) = &self.cluster {
            cluster.stop_all();
        }
        let tasks: Vec<_> = self
            .workers
            .drain()
            .into_iter()
            .filter_map(|h| h.stop())
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        self.committer.shutdown();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        tracing::info!("delivery engine stopped");
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        drop(self.workers.drain());
        self.committer.shutdown();
    }
}

/// The readiness check of the delivery workers: red, naming them, when some have stopped.
fn workers_check(dead: &[SubscriptionId]) -> Result<(), String> {
    if dead.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = dead.iter().map(SubscriptionId::as_str).collect();
    Err(format!("delivery stopped for {}", names.join(", ")))
}

/// Applies subscription changes on this node in cluster mode: the cache matchers read and
/// the worker that delivers. Changes come from this node's API calls and, through the
/// stream's watch, from every other node's.
#[derive(Clone)]
struct Applier {
    cluster: Option<Arc<Cluster>>,
    sinks: SinkRegistry,
    cache: Cache,
    generation: Arc<AtomicU64>,
}

impl Applier {
    fn apply(&self, change: Change) {
        match change {
            Change::Put(sub) => self.put(sub),
            Change::Delete(id) => {
                if let Some(cluster) = &self.cluster {
                    cluster.stop_worker(&id);
                }
                let removed = self
                    .cache
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if removed.is_some() {
                    self.generation.fetch_add(1, Ordering::Release);
                    tracing::info!(subscription = %id, "subscription removed on this node");
                }
            }
        }
    }

    /// Brings this node up to a full read of the subscriptions: what changed is (re)started,
    /// what was deleted removed. Only tombstones remove: a subscription this node stored a
    /// moment after the read began is not in it, and must not be dropped for that.
    fn reconcile(&self, stored: crate::cluster::Stored) {
        for id in stored.deleted {
            self.apply(Change::Delete(id));
        }
        for sub in stored.subscriptions {
            self.put(Arc::new(sub));
        }
    }

    /// Runs `sub` on this node, unless it already runs exactly this record (a node's own
    /// change comes back through the watch).
    fn put(&self, sub: Arc<Subscription>) {
        let record = crate::schema::encode_subscription(&sub);
        let unchanged = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sub.id)
            .is_some_and(|current| crate::schema::encode_subscription(current) == record);
        if unchanged {
            return;
        }
        if let Some(cluster) = &self.cluster {
            match self.sinks.create(&sub) {
                Ok(sink) => cluster.start_worker(sub.clone(), sink),
                Err(e) => {
                    cluster.stop_worker(&sub.id);
                    tracing::error!(subscription = %sub.id, sink = %sub.sink, error = %e,
                        "no sink for subscription on this node: its events wait in the cluster");
                }
            }
        }
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sub.id.clone(), sub.clone());
        self.generation.fetch_add(1, Ordering::Release);
        tracing::info!(subscription = %sub.id, sink = %sub.sink, "subscription running on this node");
    }
}

/// How often dedup keys past their window are forgotten and dead letters past their
/// retention deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// Keeps every dedup window to its time and size and every dead-letter queue to its
/// retention, forever (aborted when the engine stops).
async fn housekeeping(committer: Committer, subscriptions: Cache) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        let subs: Vec<Arc<Subscription>> = subscriptions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.delivery.dedup_window.is_some())
            .cloned()
            .collect();
        for sub in subs {
            if let Some(window) = sub.delivery.dedup_window {
                let (id, max) = (sub.id.as_str().to_owned(), sub.delivery.dedup_max_entries);
                let pruned = committer
                    .execute(move |b| crate::dedup::prune(b, &id, window, max, store::now_ms()))
                    .await;
                if let Err(error) = pruned {
                    tracing::warn!(%error, "could not prune the dedup window");
                }
            }
        }
        if let Err(error) = expire_dead_letters(&committer, &subscriptions).await {
            tracing::warn!(%error, "could not expire dead letters");
        }
    }
}

/// Deletes the dead letters past their subscription's retention; returns how many.
async fn expire_dead_letters(committer: &Committer, subscriptions: &Cache) -> Result<usize, Error> {
    let subs: Vec<(SubscriptionId, Duration)> = subscriptions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter_map(|s| Some((s.id.clone(), s.delivery.dead_letter_retention?)))
        .collect();
    let mut expired = 0;
    for (id, retention) in subs {
        expired += expire_subscription_letters(committer, &id, retention).await?;
    }
    Ok(expired)
}

/// Deletes the dead letters of `id` older than `retention`, in steps, logging how many.
async fn expire_subscription_letters(
    committer: &Committer,
    id: &SubscriptionId,
    retention: Duration,
) -> Result<usize, Error> {
    let cutoff =
        store::now_ms().saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
    let mut after = None;
    let mut expired = 0;
    loop {
        let sub = id.as_str().to_owned();
        let (count, next) = committer
            .execute(move |b| deadletter::expire(b, &sub, cutoff, after))
            .await?;
        expired += count;
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if expired > 0 {
        tracing::info!(subscription = %id, expired, retention = ?retention,
            "dead letters past their retention deleted");
    }
    Ok(expired)
}
