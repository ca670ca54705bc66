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

use redb::{Database, ReadableTable, Table};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::store::{DEAD_LETTERS, DEDUP, META, NEXT_SEQ, OUTBOX, SUBSCRIPTIONS};

/// Most jobs folded into one transaction, so one commit's latency stays bounded.
const MAX_JOBS_PER_COMMIT: usize = 4096;
/// Lingering for late joiners lasts at most this fraction of the previous commit...
const LINGER_FRACTION: u32 = 4;
/// ...and never more than this.
const MAX_LINGER: Duration = Duration::from_millis(2);
/// Polling step while lingering.
const LINGER_STEP: Duration = Duration::from_micros(50);

/// What a job is given: the open tables of the current write transaction.
pub(crate) struct Batch<'t> {
    /// Subscriptions by id.
    pub subscriptions: Table<'t, &'static str, &'static [u8]>,
    /// Pending deliveries.
    pub outbox: Table<'t, (&'static str, u64), &'static [u8]>,
    /// Dead letters.
    pub dead: Table<'t, (&'static str, u64), &'static [u8]>,
    /// Deduplication keys (see [`crate::dedup`]).
    pub dedup: Table<'t, &'static str, u64>,
    next_seq: u64,
    known: HashMap<String, bool>,
}

impl Batch<'_> {
    /// A fresh sequence number: strictly increasing across commits and restarts, so queue
    /// order is acceptance order and replayed letters go to the back.
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
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
    let txn = db.begin_write().expect("a write transaction");
    let out = {
        let mut batch = Batch {
            subscriptions: txn.open_table(SUBSCRIPTIONS).expect("table"),
            outbox: txn.open_table(OUTBOX).expect("table"),
            dead: txn.open_table(DEAD_LETTERS).expect("table"),
            dedup: txn.open_table(DEDUP).expect("table"),
            next_seq: 1,
            known: HashMap::new(),
        };
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

/// A handle to the committer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Committer {
    /// Starts the committer thread over the database; `next_seq` is the first free sequence.
    pub fn start(db: Arc<Database>, next_seq: u64) -> (Committer, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("delivery-committer".into())
            .spawn(move || run(db, next_seq, rx))
            .expect("spawn the committer thread");
        (Committer { tx }, thread)
    }

    /// Runs `job` in the next transaction; the returned future resolves with its value once
    /// that transaction is durable. The job is queued immediately: dropping the future does
    /// not cancel it, only the answer is lost.
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
        let job: Job = Box::new(move |batch| {
            let value = job(batch)?;
            Ok(Box::new(move |result: Result<(), Error>| {
                if result.is_ok() {
                    on_commit(&value);
                }
                let _ = reply.send(result.map(|()| value));
            }))
        });
        let sent = self.tx.send(Msg::Job(job)).is_ok();
        async move {
            if !sent {
                return Err(Error::Closed);
            }
            match answer.await {
                Ok(result) => result,
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

fn run(db: Arc<Database>, mut next_seq: u64, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut stop = false;
    // Size and duration of the previous commit, to decide how long to linger.
    let mut last_jobs = 0usize;
    let mut last_commit = Duration::ZERO;
    while !stop {
        let Some(first) = rx.blocking_recv() else {
            break;
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
        commit(&db, &mut next_seq, jobs);
        last_commit = started.elapsed();
    }
    tracing::debug!("delivery committer stopped");
}

/// Applies `jobs` in one transaction and answers them. On a store failure the whole batch is
/// rolled back and every job fails: the callers were not told "accepted", so nothing is lost.
fn commit(db: &Database, next_seq: &mut u64, jobs: Vec<Job>) {
    let count = jobs.len();
    let mut completions: Vec<Completion> = Vec::with_capacity(count);
    let result = (|| -> Result<(), redb::Error> {
        let t0 = std::time::Instant::now();
        let txn = db.begin_write()?;
        let t1 = std::time::Instant::now();
        {
            let mut batch = Batch {
                subscriptions: txn.open_table(SUBSCRIPTIONS)?,
                outbox: txn.open_table(OUTBOX)?,
                dead: txn.open_table(DEAD_LETTERS)?,
                dedup: txn.open_table(DEDUP)?,
                next_seq: *next_seq,
                known: HashMap::new(),
            };
            for job in jobs {
                completions.push(job(&mut batch)?);
            }
            if batch.next_seq != *next_seq {
                txn.open_table(META)?.insert(NEXT_SEQ, batch.next_seq)?;
                *next_seq = batch.next_seq;
            }
        }
        let t2 = std::time::Instant::now();
        txn.commit()?;
        metrics::metrics()
            .commit_duration
            .observe(t0.elapsed().as_secs_f64());
        tracing::trace!(jobs = count, begin = ?(t1 - t0), apply = ?(t2 - t1), commit = ?t2.elapsed(),
            "delivery store commit");
        Ok(())
    })();
    match result {
        Ok(()) => completions.into_iter().for_each(|c| c(Ok(()))),
        Err(e) => {
            tracing::error!(error = %e, jobs = count, "delivery store commit failed");
            let e = Error::from(e);
            completions.into_iter().for_each(|c| c(Err(e.clone())));
        }
    }
}
