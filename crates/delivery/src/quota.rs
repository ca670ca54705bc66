//! Quotas: bounds on what the store keeps, per subscription and in all.
//!
//! A sink that is down for days, or one that refuses everything, must not fill the disk. Each
//! subscription may bound its queue (events and bytes) and its dead letters
//! ([`DeliveryPolicy`](crate::DeliveryPolicy)), and the application bounds them all together
//! ([`StoreLimits`], `[application.store]` in the manifest). A subscription's own bounds are
//! a `StoreLimits` too, applied to its queue alone. The policy when a bound is reached is the same everywhere, and never a
//! silent drop:
//!
//! - **A full queue** refuses new events for its subscription: [`Error::Full`] (transient), so
//!   an HTTP producer gets `503` + `Retry-After` and a broker message is nak'd and redelivered.
//!   Other subscriptions are not affected (unless the global bound is the one reached).
//! - **Full dead letters** refuse new events the same way, until letters are replayed, purged
//!   or expire ([`DeliveryPolicy::dead_letter_retention`](crate::DeliveryPolicy)). Events
//!   already queued may still be dead-lettered past the bound: at most the queue's own bound
//!   more, so the disk stays bounded.
//!
//! Usage is counted by the writes themselves: every write to the queue or the dead letters goes
//! through [`Batch`](crate::committer::Batch), which records the change, and the committer
//! applies the changes of a batch only once it is durable. The counts are rebuilt from the
//! tables when the store opens.

use std::collections::HashMap;
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable};

use manifest::StoreLimits;

use crate::error::{Error, store};
use crate::store::{DEAD_LETTERS, OUTBOX};

/// What the store holds for one subscription (or all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Queued deliveries.
    pub queued: u64,
    /// Their stored bytes.
    pub queued_bytes: u64,
    /// Dead letters.
    pub dead: u64,
    /// Their stored bytes.
    pub dead_bytes: u64,
}

/// Changes made by one write batch, applied once it is durable.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Delta {
    queued: i64,
    queued_bytes: i64,
    dead: i64,
    dead_bytes: i64,
}

impl Delta {
    /// A queue entry of `bytes` added (`sign` 1) or removed (-1).
    pub fn queued(&mut self, sign: i64, bytes: usize) {
        self.queued += sign;
        self.queued_bytes += sign * bytes as i64;
    }

    /// A queue entry rewritten in place, from `old` to `new` bytes.
    pub fn rewritten(&mut self, old: usize, new: usize) {
        self.queued_bytes += new as i64 - old as i64;
    }

    /// A dead letter of `bytes` added (`sign` 1) or removed (-1).
    pub fn dead(&mut self, sign: i64, bytes: usize) {
        self.dead += sign;
        self.dead_bytes += sign * bytes as i64;
    }
}

impl Usage {
    fn plus(self, d: &Delta) -> Usage {
        let add = |v: u64, d: i64| v.saturating_add_signed(d);
        Usage {
            queued: add(self.queued, d.queued),
            queued_bytes: add(self.queued_bytes, d.queued_bytes),
            dead: add(self.dead, d.dead),
            dead_bytes: add(self.dead_bytes, d.dead_bytes),
        }
    }
}

/// No bounds of a subscription's own.
const UNBOUNDED: StoreLimits = StoreLimits {
    max_queued_events: None,
    max_queued_bytes: None,
    max_dead_letters: None,
};

#[derive(Default)]
struct State {
    usage: HashMap<String, Usage>,
    total: Usage,
    limits: HashMap<String, StoreLimits>,
    global: StoreLimits,
}

impl State {
    /// Adds a change to a subscription's usage and to the total.
    fn add(&mut self, id: &str, d: &Delta) {
        let usage = self.usage.entry(id.to_owned()).or_default();
        *usage = usage.plus(d);
        if *usage == Usage::default() {
            self.usage.remove(id);
        }
        self.total = self.total.plus(d);
    }
}

/// Usage and limits, shared by the committer (which checks and updates them) and readers.
#[derive(Default)]
pub(crate) struct Quotas {
    state: Mutex<State>,
}

impl Quotas {
    /// Counts what the store holds (a scan of the queue and dead-letter tables).
    pub fn load(db: &Database) -> Result<Quotas, Error> {
        let txn = db.begin_read().map_err(store)?;
        let mut state = State::default();
        for (table, queued) in [(OUTBOX, true), (DEAD_LETTERS, false)] {
            for row in txn
                .open_table(table)
                .map_err(store)?
                .iter()
                .map_err(store)?
            {
                let (k, v) = row.map_err(store)?;
                let mut d = Delta::default();
                if queued {
                    d.queued(1, v.value().len());
                } else {
                    d.dead(1, v.value().len());
                }
                state.add(k.value().0, &d);
            }
        }
        Ok(Quotas {
            state: Mutex::new(state),
        })
    }

    /// Counts again what the store holds (after it was reopened), keeping the limits.
    pub fn reload(&self, db: &Database) -> Result<(), Error> {
        let fresh = Quotas::load(db)?
            .state
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let mut state = self.state();
        state.usage = fresh.usage;
        state.total = fresh.total;
        Ok(())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the bounds over all subscriptions.
    pub fn set_global(&self, limits: StoreLimits) {
        self.state().global = limits;
    }

    /// Sets (or with `None`, forgets) the bounds of one subscription.
    pub fn set_subscription(&self, id: &str, limits: Option<StoreLimits>) {
        let mut state = self.state();
        match limits {
            Some(limits) => state.limits.insert(id.to_owned(), limits),
            None => state.limits.remove(id),
        };
    }

    /// What the store holds for one subscription, or (`None`) for all.
    pub fn usage(&self, id: Option<&str>) -> Usage {
        let state = self.state();
        match id {
            Some(id) => state.usage.get(id).copied().unwrap_or_default(),
            None => state.total,
        }
    }

    /// Applies the changes of a durable batch.
    pub fn apply(&self, deltas: &HashMap<String, Delta>) {
        let mut state = self.state();
        for (id, d) in deltas {
            state.add(id, d);
        }
    }

    /// Why `id` may take no more events now, if it may not: `pending` are the changes of the
    /// batch being written (not yet applied), and `events`/`bytes` what would be added.
    pub fn refusal(
        &self,
        id: &str,
        pending: &HashMap<String, Delta>,
        events: u64,
        bytes: u64,
    ) -> Option<String> {
        let state = self.state();
        let mine = pending.get(id).copied().unwrap_or_default();
        let usage = state.usage.get(id).copied().unwrap_or_default().plus(&mine);
        let all = pending.values().fold(state.total, |t, d| t.plus(d));
        let limits = state.limits.get(id).copied().unwrap_or(UNBOUNDED);
        let over = |what: &str, have: u64, add: u64, max: Option<u64>| {
            max.filter(|&max| have.saturating_add(add) > max)
                .map(|max| format!("{what} is at its bound ({have} of {max})"))
        };
        over("its queue", usage.queued, events, limits.max_queued_events)
            .or_else(|| {
                over(
                    "its queue's bytes",
                    usage.queued_bytes,
                    bytes,
                    limits.max_queued_bytes,
                )
            })
            .or_else(|| over("its dead letters", usage.dead, 1, limits.max_dead_letters))
            .or_else(|| {
                over(
                    "the app's queued events",
                    all.queued,
                    events,
                    state.global.max_queued_events,
                )
            })
            .or_else(|| {
                over(
                    "the app's queued bytes",
                    all.queued_bytes,
                    bytes,
                    state.global.max_queued_bytes,
                )
            })
            .or_else(|| {
                over(
                    "the app's dead letters",
                    all.dead,
                    1,
                    state.global.max_dead_letters,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_each_bound_and_counts_pending_changes() {
        let quotas = Quotas::default();
        quotas.set_global(StoreLimits {
            max_queued_events: Some(10),
            max_queued_bytes: None,
            max_dead_letters: None,
        });
        quotas.set_subscription(
            "s",
            Some(StoreLimits {
                max_queued_events: Some(2),
                max_queued_bytes: Some(100),
                max_dead_letters: Some(1),
            }),
        );
        let mut pending = HashMap::new();
        assert_eq!(quotas.refusal("s", &pending, 2, 100), None);
        assert!(
            quotas
                .refusal("s", &pending, 3, 10)
                .unwrap()
                .contains("its queue is at its bound (0 of 2)")
        );
        assert!(quotas.refusal("s", &pending, 1, 101).is_some());
        pending
            .entry("s".to_owned())
            .or_insert_with(Delta::default)
            .queued(1, 40);
        assert!(quotas.refusal("s", &pending, 2, 10).is_some());
        quotas.apply(&pending);
        assert_eq!(quotas.usage(Some("s")).queued_bytes, 40);
        // A dead letter at the bound refuses new events too.
        let mut dead = HashMap::new();
        dead.entry("s".to_owned())
            .or_insert_with(Delta::default)
            .dead(1, 5);
        quotas.apply(&dead);
        assert!(
            quotas
                .refusal("s", &HashMap::new(), 1, 1)
                .unwrap()
                .contains("dead letters")
        );
        // Other subscriptions only meet the global bound.
        assert_eq!(quotas.refusal("t", &HashMap::new(), 9, 1), None);
        assert!(
            quotas
                .refusal("t", &HashMap::new(), 10, 1)
                .unwrap()
                .contains("the app's queued events")
        );
    }
}
