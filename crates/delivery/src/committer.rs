//! Group commit: the single writer of the database.
//!
//! Every write (accepted events, acknowledgements, reschedules, dead letters, subscription
//! changes) is a job sent to one thread. The thread takes everything queued while its previous
//! commit ran, applies it in ONE write transaction and pays ONE fsync for all of it, then
//! answers every job. Throughput thus grows with concurrency instead of being capped at one
//! fsync per event, and nobody is told "accepted" before the data is on disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::mpsc;

use redb::{Database, ReadableTable, Table};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::error::Error;
use crate::quota::{Delta, Quotas};
use crate::store::{self, DEAD_LETTERS, DEDUP, META, NEXT_SEQ, OUTBOX, SUBSCRIPTIONS, SharedDb};

/// Most jobs folded into one transaction, so one commit's latency stays bounded.
const MAX_JOBS_PER_COMMIT: usize = 4096;
/// Lingering for late joiners lasts at most this fraction of the previous commit...
const LINGER_FRACTION: u32 = 4;
/// ...and never more than this.
const MAX_LINGER: Duration = Duration::from_millis(2);
/// Polling step while lingering.
const LINGER_STEP: Duration = Duration::from_micros(50);

/// A queue or dead-letter table: (subscription, sequence) -> stored record.
type QueueTable<'t> = Table<'t, (&'static str, u64), &'static [u8]>;

/// What a job is given: the open tables of the current write transaction. The queue and the
/// dead letters are written only through its methods, which count what they change for the
/// [quotas](crate::quota).
pub(crate) struct Batch<'t> {
    /// Subscriptions by id.
    pub subscriptions: Table<'t, &'static str, &'static [u8]>,
    /// Pending deliveries.
    outbox: QueueTable<'t>,
    /// Dead letters.
    dead: QueueTable<'t>,
    /// Deduplication keys (see [`crate::dedup`]).
    pub dedup: Table<'t, &'static str, u64>,
    next_seq: u64,
    known: HashMap<String, bool>,
    quotas: &'t Quotas,
    /// What this batch changed, per subscription: applied to the quotas once durable.
    deltas: HashMap<String, Delta>,
}

impl<'t> Batch<'t> {
    fn new(
        txn: &'t redb::WriteTransaction,
        next_seq: u64,
        quotas: &'t Quotas,
    ) -> Result<Self, redb::Error> {
        Ok(Batch {
            subscriptions: txn.open_table(SUBSCRIPTIONS)?,
            outbox: txn.open_table(OUTBOX)?,
            dead: txn.open_table(DEAD_LETTERS)?,
            dedup: txn.open_table(DEDUP)?,
            next_seq,
            known: HashMap::new(),
            quotas,
            deltas: HashMap::new(),
        })
    }

    fn delta(&mut self, id: &str) -> &mut Delta {
        if !self.deltas.contains_key(id) {
            self.deltas.insert(id.to_owned(), Delta::default());
        }
        self.deltas.get_mut(id).expect("just inserted")
    }

    /// The queue, for reading.
    pub fn outbox(&self) -> &QueueTable<'t> {
        &self.outbox
    }

    /// The dead letters, for reading.
    pub fn dead(&self) -> &QueueTable<'t> {
        &self.dead
    }

    /// Writes a queue entry (new, or rewritten in place).
    pub fn put_queued(&mut self, id: &str, seq: u64, value: &[u8]) -> Result<(), redb::Error> {
        let old = self
            .outbox
            .insert((id, seq), value)?
            .map(|v| v.value().len());
        let delta = self.delta(id);
        match old {
            Some(old) => delta.rewritten(old, value.len()),
            None => delta.queued(1, value.len()),
        }
        Ok(())
    }

    /// Removes a queue entry; returns whether it was there.
    pub fn remove_queued(&mut self, id: &str, seq: u64) -> Result<bool, redb::Error> {
        let old = self.outbox.remove((id, seq))?.map(|v| v.value().len());
        if let Some(old) = old {
            self.delta(id).queued(-1, old);
        }
        Ok(old.is_some())
    }

    /// Writes a dead letter.
    pub fn put_dead(&mut self, id: &str, seq: u64, value: &[u8]) -> Result<(), redb::Error> {
        let old = self.dead.insert((id, seq), value)?.map(|v| v.value().len());
        let delta = self.delta(id);
        if let Some(old) = old {
            delta.dead(-1, old);
        }
        delta.dead(1, value.len());
        Ok(())
    }

    /// Removes a dead letter; returns whether it was there.
    pub fn remove_dead(&mut self, id: &str, seq: u64) -> Result<bool, redb::Error> {
        let old = self.dead.remove((id, seq))?.map(|v| v.value().len());
        if let Some(old) = old {
            self.delta(id).dead(-1, old);
        }
        Ok(old.is_some())
    }

    /// Why subscription `id` may not take `events` more events of `bytes` in all now (a
    /// quota is reached), counting what this batch already wrote; `None` if it may.
    pub fn quota_refusal(&self, id: &str, events: u64, bytes: u64) -> Option<String> {
        self.quotas.refusal(id, &self.deltas, events, bytes)
    }

    /// A fresh sequence number: strictly increasing across commits and restarts, so queue
    /// order is acceptance order and replayed letters go to the back.
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The sequence [`next_seq`](Self::next_seq) would hand out, without taking it.
    pub fn peek_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether a subscription exists at this point of the transaction (cached per batch:
    /// accepting a batch of events looks each subscription up once).
    pub fn subscription_exists(&mut self, id: &str) -> Result<bool, redb::Error> {
        if let Some(known) = self.known.get(id) {
            return Ok(*known);
        }
        let exists = self.subscriptions.get(id)?.is_some();
        self.known.insert(id.to_owned(), exists);
        Ok(exists)
    }

    /// Records that a job of this batch created or deleted a subscription.
    pub fn set_subscription_exists(&mut self, id: &str, exists: bool) {
        self.known.insert(id.to_owned(), exists);
    }
}

/// Runs `f` on a batch of one write transaction of `db` and commits it (for unit tests of
/// what jobs do).
#[cfg(test)]
pub(crate) fn with_batch<T>(
    db: &Database,
    f: impl FnOnce(&mut Batch<'_>) -> Result<T, redb::Error>,
) -> T {
    let quotas = Quotas::default();
    let txn = db.begin_write().expect("a write transaction");
    let out = {
        let mut batch = Batch::new(&txn, 1, &quotas).expect("tables");
        f(&mut batch).expect("the job")
    };
    txn.commit().expect("commit");
    out
}

/// Called with the commit result once the batch is durable (or failed).
type Completion = Box<dyn FnOnce(Result<(), Error>) + Send>;
/// A unit of work applied inside the shared transaction.
type Job = Box<dyn FnOnce(&mut Batch<'_>) -> Result<Completion, redb::Error> + Send>;

enum Msg {
    Job(Job),
    Shutdown,
}

/// Most answered jobs ([`Committer::execute`]) waiting for the committer at once. Past it,
/// callers wait for room (back-pressure on ingest) instead of growing the queue without
/// bound while the disk is slow. Bookkeeping ([`Committer::submit`]) is not counted: it is
/// bounded by the sends in flight.
pub(crate) const QUEUE_CAPACITY: usize = 4 * MAX_JOBS_PER_COMMIT;

/// First wait before reopening the store after an I/O error; doubled up to [`MAX_REOPEN_WAIT`].
const FIRST_REOPEN_WAIT: Duration = Duration::from_millis(100);
/// Longest wait between attempts to reopen the store.
const MAX_REOPEN_WAIT: Duration = Duration::from_secs(5);

/// A handle to the committer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Msg>,
    room: Arc<Semaphore>,
    db: Arc<SharedDb>,
}

impl Committer {
    /// Starts the committer thread over the database; `next_seq` is the first free sequence.
    pub fn start(
        db: Arc<SharedDb>,
        quotas: Arc<Quotas>,
        next_seq: u64,
    ) -> (Committer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        let shared = db.clone();
        let thread = std::thread::Builder::new()
            .name("delivery-committer".into())
            .spawn(move || run(&shared, &quotas, next_seq, &rx))
            .expect("spawn the committer thread");
        let room = Arc::new(Semaphore::new(QUEUE_CAPACITY));
        (Committer { tx, room, db }, thread)
    }

    /// Runs `job` in the next transaction; the returned future resolves with its value once
    /// that transaction is durable. The job is queued immediately when the queue has room
    /// (dropping the future then does not cancel it, only the answer is lost), else once the
    /// future is polled and room frees up.
    pub fn execute<T, F>(&self, job: F) -> impl Future<Output = Result<T, Error>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, redb::Error> + Send + 'static,
    {
        self.execute_then(job, |_| {})
    }

    /// Like [`execute`](Self::execute), with `on_commit` called on the committer thread right
    /// after a successful commit, even if nobody awaits the answer (used to wake workers).
    pub fn execute_then<T, F, C>(
        &self,
        job: F,
        on_commit: C,
    ) -> impl Future<Output = Result<T, Error>> + use<T, F, C>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, redb::Error> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        // The permit travels with the job and frees its room when the job is answered or
        // dropped (an aborted batch).
        let make = move |permit: OwnedSemaphorePermit| -> Job {
            Box::new(move |batch| {
                let value = job(batch)?;
                Ok(Box::new(move |result: Result<(), Error>| {
                    drop(permit);
                    if result.is_ok() {
                        on_commit(&value);
                    }
                    let _ = reply.send(result.map(|()| value));
                }))
            })
        };
        let (tx, room, db) = (self.tx.clone(), self.room.clone(), self.db.clone());
        let mut pending = match room.clone().try_acquire_owned() {
            Ok(permit) => {
                let sent = tx.send(Msg::Job(make(permit))).is_ok();
                Err(sent)
            }
            Err(_) => Ok(make),
        };
        async move {
            match &mut pending {
                Err(false) => return Err(Error::Closed),
                Err(true) => {}
                Ok(_) => {
                    let Ok(permit) = room.acquire_owned().await else {
                        return Err(Error::Closed);
                    };
                    let Ok(make) = std::mem::replace(&mut pending, Err(true)) else {
                        unreachable!("the job is made once")
                    };
                    if tx.send(Msg::Job(make(permit))).is_err() {
                        return Err(Error::Closed);
                    }
                }
            }
            match answer.await {
                Ok(result) => result,
                // Refused unwritten while the store reopens, or abandoned with its batch.
                Err(_) if db.get().is_err() => Err(Error::Recovering),
                Err(_) => Err(Error::Aborted),
            }
        }
    }

    /// Queues `job` for the next transaction without waiting for it: for bookkeeping whose
    /// loss in a crash only means a redelivery (acknowledgements, reschedules). Failures are
    /// logged by the committer.
    pub fn submit<F>(&self, job: F)
    where
        F: FnOnce(&mut Batch<'_>) -> Result<(), redb::Error> + Send + 'static,
    {
        let job: Job = Box::new(move |batch| {
            job(batch)?;
            Ok(Box::new(|_| {}))
        });
        let _ = self.tx.send(Msg::Job(job));
    }

    /// Asks the thread to finish what is queued and stop.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// The committer's view of the store: open, or out for reopening after an I/O error.
enum StoreState {
    Open,
    /// Taken out of the [`SharedDb`] at `since`; `old` is dropped once no reader has it, then
    /// the file is opened again at `next_try`.
    Reopening {
        old: Option<Arc<Database>>,
        since: Instant,
        next_try: Instant,
        wait: Duration,
    },
}

fn run(db: &SharedDb, quotas: &Quotas, mut next_seq: u64, rx: &mpsc::Receiver<Msg>) {
    let mut state = StoreState::Open;
    let mut stop = false;
    // Size and duration of the previous commit, to decide how long to linger.
    let mut last_jobs = 0usize;
    let mut last_commit = Duration::ZERO;
    while !stop {
        let first = match &state {
            StoreState::Open => rx.recv().map_err(|_| ()),
            StoreState::Reopening { .. } => match rx.recv_timeout(FIRST_REOPEN_WAIT) {
                Ok(msg) => Ok(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => Err(()),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        if let StoreState::Reopening { .. } = state {
            try_reopen(db, quotas, &mut state, &mut next_seq);
        }
        let first = match first {
            Ok(msg) => msg,
            Err(()) if matches!(state, StoreState::Reopening { .. }) => continue,
            Err(()) => break,
        };
        let mut jobs = Vec::new();
        match first {
            Msg::Job(job) => jobs.push(job),
            Msg::Shutdown => break,
        }
        // The callers answered by the previous commit usually come straight back (a trigger
        // accepting its next event): give them a moment, a fraction of a commit, to join this
        // batch instead of paying a whole fsync for a few jobs. A lone caller never waits.
        let linger_until = Instant::now() + (last_commit / LINGER_FRACTION).min(MAX_LINGER);
        let target = last_jobs.min(MAX_JOBS_PER_COMMIT);
        loop {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => {
                    jobs.push(job);
                    if jobs.len() >= MAX_JOBS_PER_COMMIT {
                        break;
                    }
                }
                Ok(Msg::Shutdown) => {
                    stop = true;
                    break;
                }
                Err(_) => {
                    if jobs.len() >= target || Instant::now() >= linger_until {
                        break;
                    }
                    std::thread::sleep(LINGER_STEP);
                }
            }
        }
        last_jobs = jobs.len();
        let started = Instant::now();
        let database = match (&state, db.get()) {
            (StoreState::Open, Ok(database)) => database,
            _ => {
                // Refused at once, unwritten: the callers answer "try again".
                drop(jobs);
                continue;
            }
        };
        let reopen = commit(&database, quotas, &mut next_seq, jobs);
        drop(database);
        last_commit = started.elapsed();
        if reopen {
            tracing::error!(
                "delivery store: I/O error, closing and reopening it; until then writes are refused (503 / nak) and nothing is acknowledged"
            );
            let now = Instant::now();
            state = StoreState::Reopening {
                old: db.take(),
                since: now,
                next_try: now,
                wait: FIRST_REOPEN_WAIT,
            };
            try_reopen(db, quotas, &mut state, &mut next_seq);
        }
    }
    tracing::debug!("delivery committer stopped");
}

/// One step of reopening the store, when it is due: drops the old handle once no reader holds
/// it, then opens the file again (redb repairs it if needed) and puts it back.
fn try_reopen(db: &SharedDb, quotas: &Quotas, state: &mut StoreState, next_seq: &mut u64) {
    let StoreState::Reopening {
        old,
        since,
        next_try,
        wait,
    } = state
    else {
        return;
    };
    if Instant::now() < *next_try {
        return;
    }
    if old.as_ref().is_some_and(|old| Arc::strong_count(old) > 1) {
        // A reader still has it (a read takes milliseconds): try again shortly.
        *next_try = Instant::now() + FIRST_REOPEN_WAIT;
        return;
    }
    *old = None;
    match store::open(db.dir()) {
        Ok((database, stored_seq)) => {
            *next_seq = (*next_seq).max(stored_seq);
            // A commit that failed with an I/O error may still have reached the disk:
            // count again what the store holds.
            if let Err(e) = quotas.reload(&database) {
                tracing::error!(error = %e, "delivery store: cannot recount its usage");
            }
            db.put(database);
            tracing::warn!(
                after = ?since.elapsed(),
                "delivery store reopened after an I/O error: writes are taken again"
            );
            *state = StoreState::Open;
        }
        Err(e) => {
            tracing::error!(error = %e, retry_in = ?*wait, "delivery store: cannot reopen yet");
            *next_try = Instant::now() + *wait;
            *wait = (*wait * 2).min(MAX_REOPEN_WAIT);
        }
    }
}

/// Applies `jobs` in one transaction and answers them. On a store failure the whole batch is
/// rolled back and every job fails: the callers were not told "accepted", so nothing is lost.
/// A job that panics (a bug) rolls its batch back the same way instead of killing the only
/// writer. Returns whether the store failed in a way that needs it reopened.
fn commit(db: &Database, quotas: &Quotas, next_seq: &mut u64, jobs: Vec<Job>) -> bool {
    let count = jobs.len();
    let mut completions: Vec<Completion> = Vec::with_capacity(count);
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        apply(db, quotas, next_seq, jobs, &mut completions)
    }));
    match applied {
        Ok(Ok(())) => {
            completions.into_iter().for_each(|c| c(Ok(())));
            false
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, jobs = count, "delivery store commit failed");
            let reopen = store::needs_reopen(&e);
            let err = Error::from(e);
            completions.into_iter().for_each(|c| c(Err(err.clone())));
            reopen
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(jobs = count, panic = %what,
                "a delivery store job panicked: its batch was rolled back and its callers told to retry");
            completions.into_iter().for_each(|c| c(Err(Error::Aborted)));
            false
        }
    }
}

/// Applies `jobs` in one write transaction and commits it, collecting their completions.
fn apply(
    db: &Database,
    quotas: &Quotas,
    next_seq: &mut u64,
    jobs: Vec<Job>,
    completions: &mut Vec<Completion>,
) -> Result<(), redb::Error> {
    let t0 = std::time::Instant::now();
    let txn = db.begin_write()?;
    let t1 = std::time::Instant::now();
    let deltas = {
        let mut batch = Batch::new(&txn, *next_seq, quotas)?;
        for job in jobs {
            completions.push(job(&mut batch)?);
        }
        if batch.next_seq != *next_seq {
            txn.open_table(META)?.insert(NEXT_SEQ, batch.next_seq)?;
            *next_seq = batch.next_seq;
        }
        std::mem::take(&mut batch.deltas)
    };
    let t2 = std::time::Instant::now();
    txn.commit()?;
    quotas.apply(&deltas);
    metrics::metrics()
        .commit_duration
        .observe(t0.elapsed().as_secs_f64());
    tracing::trace!(jobs = completions.len(), begin = ?(t1 - t0), apply = ?(t2 - t1), commit = ?t2.elapsed(),
        "delivery store commit");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committer() -> (tempfile::TempDir, Committer, JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let (db, next_seq) = store::open(dir.path()).unwrap();
        let shared = Arc::new(SharedDb::new(dir.path().to_owned(), db));
        let (committer, thread) = Committer::start(shared, Arc::default(), next_seq);
        (dir, committer, thread)
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_batch_and_the_writer_goes_on() {
        let (_dir, committer, thread) = committer();
        let panicked = committer.execute(|_| -> Result<(), redb::Error> { panic!("a bug") });
        assert!(matches!(panicked.await, Err(Error::Aborted)));
        // The one writer still writes.
        let seq = committer.execute(|b| Ok(b.next_seq())).await.unwrap();
        assert!(seq >= 1);
        committer.shutdown();
        thread.join().unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_makes_callers_wait_instead_of_growing() {
        let (_dir, committer, thread) = committer();
        // Hold every slot of the queue, as jobs the committer has not answered would.
        let held = committer
            .room
            .clone()
            .acquire_many_owned(QUEUE_CAPACITY as u32)
            .await
            .unwrap();
        let waiting = tokio::spawn({
            let committer = committer.clone();
            async move { committer.execute(|_| Ok(7)).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "queued past the bound");
        drop(held);
        assert_eq!(waiting.await.unwrap().unwrap(), 7);
        committer.shutdown();
        thread.join().unwrap();
    }
}
