//! Stores that serve several events in turn, each event in a fresh instance of its own.
//!
//! Creating a wasmtime `Store`, registering the component's modules in it and dropping it
//! again was about a sixth of an echo event's CPU. A store can hold many instances, so a
//! handler keeps the stores of finished events and instantiates the next event's component
//! afresh in one of them: the event still gets new linear memory, globals, tables and host
//! state (the old instance stays in the store, unreachable, and is never entered again).
//!
//! The price is that a finished instance keeps its pool slot, and its dirty pages stay
//! resident, until its store drops. So a store is retired (dropped, which resets its
//! instances' memories) after [`EVENTS_PER_STORE`] events, after any failed event, and after
//! an event whose instance had more than [`MAX_KEPT_MEMORY`] of linear memory (at most that
//! much stays resident per finished instance); and the engine lends finished instances only
//! within a budget of pool slots it reserves for them on top of the components' concurrency
//! ([`crate::EngineConfig::recycled_instances`]), so no live event is ever refused a slot
//! because finished ones hold it.

use crate::handler::arm_deadline;
use crate::host::HostState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use wasmtime::Store;

/// How many events one store serves before it is dropped. Dropping resets the memories of all
/// its instances at once, so this bounds both the slots and the resident memory a store holds
/// and the extra latency of the event that retires it.
pub(crate) const EVENTS_PER_STORE: u32 = 8;

/// The most linear memory a finished instance may have had for its store to be kept: what
/// a small handler uses (a Rust guest starts at about 1.1 MiB, its 1 MiB stack included).
/// With the engine's budget this bounds the memory idle stores keep resident.
pub(crate) const MAX_KEPT_MEMORY: usize = 2 << 20;

/// The engine-wide allowance of finished instances that idle stores may keep.
#[derive(Debug)]
pub(crate) struct RecycleBudget {
    limit: u32,
    held: AtomicU32,
}

impl RecycleBudget {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            held: AtomicU32::new(0),
        }
    }

    /// Takes one instance's worth of the allowance; `false` when it is spent.
    fn take(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limit).then_some(held + 1)
            })
            .is_ok()
    }

    fn give_back(&self, n: u32) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// A store and the finished instances it holds against the budget.
pub(crate) struct RecycledStore {
    pub(crate) store: Store<HostState>,
    finished: u32,
    budget: Arc<RecycleBudget>,
}

impl RecycledStore {
    pub(crate) fn new(store: Store<HostState>, budget: Arc<RecycleBudget>) -> Self {
        Self {
            store,
            finished: 0,
            budget,
        }
    }

    /// Makes `state` (the next event's host state) the store's, with its deadline armed.
    pub(crate) fn begin_event(&mut self, state: HostState) {
        let deadline = state.deadline;
        *self.store.data_mut() = state;
        arm_deadline(&mut self.store, deadline);
    }

    /// After an event that succeeded: whether this store may serve another one. It may if it
    /// has served fewer than [`EVENTS_PER_STORE`], its last instance's memory stayed within
    /// [`MAX_KEPT_MEMORY`] and the budget has room for the finished instance. A kept store
    /// drops what the event opened at once ([`HostState::end_event`]).
    pub(crate) fn keep(&mut self) -> bool {
        if self.finished + 1 >= EVENTS_PER_STORE
            || self.store.data().limiter.largest_memory() > MAX_KEPT_MEMORY
            || !self.budget.take()
        {
            return false;
        }
        self.finished += 1;
        self.store.data_mut().end_event();
        true
    }
}

impl Drop for RecycledStore {
    fn drop(&mut self) {
        self.budget.give_back(self.finished);
    }
}

/// A handler's idle stores, most recently used first out.
#[derive(Default)]
pub(crate) struct IdleStores {
    stores: std::sync::Mutex<Vec<RecycledStore>>,
}

/// How many idle stores one handler keeps; more concurrent events make new stores.
const MAX_IDLE_PER_HANDLER: usize = 8;

impl IdleStores {
    pub(crate) fn take(&self) -> Option<RecycledStore> {
        self.stores.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps `store` for a later event, or drops it (outside the lock) when enough are idle.
    pub(crate) fn put(&self, store: RecycledStore) {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if stores.len() < MAX_IDLE_PER_HANDLER {
            stores.push(store);
            return;
        }
        drop(stores);
        drop(store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_lends_up_to_its_limit_and_takes_back() {
        let budget = RecycleBudget::new(2);
        assert!(budget.take());
        assert!(budget.take());
        assert!(!budget.take());
        budget.give_back(2);
        assert!(budget.take());
    }
}
