//! One loaded handler component and the per-event execution: a fresh instance under limits.

use crate::bindings::{self, HandlerPre};
use crate::config::Limits;
use crate::engine::Engine;
use crate::error::HandleError;
use crate::host::{ComponentShared, HostState, new_state, store_for};
use crate::publisher::Publisher;
use crate::recycle::{IdleStores, RecycledStore};
use crate::wasi::ResolvedGrants;
use cloudevent::Event;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use wasmtime::{Store, UpdateDeadline};

/// A loaded `spindle:cloudevents/handler` component, ready to handle events concurrently.
///
/// Every event runs in a fresh instance; the stores those instances live in are recycled for
/// a few events (see `recycle`). Cheap to clone; every clone shares the same concurrency cap.
#[derive(Clone)]
pub struct Handler {
    inner: Arc<HandlerInner>,
}

struct HandlerInner {
    engine: Engine,
    pre: HandlerPre<HostState>,
    shared: Arc<ComponentShared>,
    grants: Arc<ResolvedGrants>,
    limits: Limits,
    slots: Semaphore,
    /// Stores of finished events, to run later events in (each in a fresh instance).
    idle: IdleStores,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.inner.shared.name)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// The error the epoch callback raises when an event's deadline has passed.
#[derive(Debug)]
pub(crate) struct DeadlineReached;

impl std::fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

impl Handler {
    pub(crate) fn new(
        engine: Engine,
        pre: HandlerPre<HostState>,
        shared: Arc<ComponentShared>,
        grants: ResolvedGrants,
        limits: Limits,
    ) -> Self {
        let slots = Semaphore::new(limits.max_concurrency as usize);
        Self {
            inner: Arc::new(HandlerInner {
                engine,
                pre,
                shared,
                grants: Arc::new(grants),
                limits,
                slots,
                idle: IdleStores::default(),
            }),
        }
    }

    /// The component's name, as given to [`Engine::load`].
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// How many more events could start right now before [`HandleError::Busy`].
    pub fn available_slots(&self) -> usize {
        self.inner.slots.available_permits()
    }

    /// Handles one event in a fresh instance and returns the events the handler produced.
    ///
    /// Events the guest publishes go to `publisher` as they happen (only for declared
    /// outputs). Fails fast with [`HandleError::Busy`] when the component is at its
    /// concurrency cap. Whatever the guest does, only this call fails: the handler keeps
    /// serving.
    pub async fn handle(
        &self,
        event: Event,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Vec<Event>, HandleError> {
        let inner = &*self.inner;
        let name = &inner.shared.name;
        let _permit = inner.slots.try_acquire().map_err(|_| HandleError::Busy {
            component: name.to_string(),
        })?;
        let state = new_state(
            &inner.engine,
            &inner.shared,
            &inner.grants,
            &inner.limits,
            publisher,
        )?;
        let mut recycled = match inner.idle.take() {
            Some(mut recycled) => {
                recycled.begin_event(state);
                recycled
            }
            None => RecycledStore::new(
                store_for(&inner.engine, state),
                inner.engine.inner.recycle.clone(),
            ),
        };
        let result = self.run_event(&mut recycled.store, &event).await;
        // A store whose event failed in any way other than the handler's own error (a trap,
        // a timeout that dropped the call midway, a limit) is dropped, never reused.
        if matches!(result, Ok(_) | Err(HandleError::Handler { .. })) && recycled.keep() {
            inner.idle.put(recycled);
        }
        result
    }

    /// Instantiates the component in `store` and hands it `event`.
    async fn run_event(
        &self,
        store: &mut Store<HostState>,
        event: &Event,
    ) -> Result<Vec<Event>, HandleError> {
        let inner = &*self.inner;
        let name = &inner.shared.name;
        let run = async {
            let handle = inner
                .pre
                .instantiate_handle(&mut *store)
                .await
                .map_err(Failure::Instantiate)?;
            handle
                .call_async(&mut *store, (&crate::event::to_wit(event),))
                .await
                .map(|(result,)| result)
                .map_err(Failure::Call)
        };
        let outcome = tokio::time::timeout(inner.limits.deadline, run).await;
        let limiter_denied = store.data().limiter.denied();
        let ctx = ErrorContext {
            component: name,
            limits: &inner.limits,
            memory_denied: limiter_denied,
        };
        match outcome {
            Err(_elapsed) => Err(ctx.timeout()),
            Ok(Err(Failure::Instantiate(e))) => Err(ctx.classify_instantiate(e)),
            Ok(Err(Failure::Call(e))) => Err(ctx.classify(e)),
            Ok(Ok(Ok(events))) => {
                let budget = &mut store.data_mut().budget;
                // A refused publish fails the event even if the guest ignored the refusal.
                let over = budget
                    .results(&events)
                    .err()
                    .or_else(|| budget.exceeded().map(str::to_owned));
                match over {
                    Some(message) => Err(HandleError::LimitExceeded {
                        component: name.to_string(),
                        message,
                    }),
                    None => events
                        .into_iter()
                        .map(|e| {
                            crate::event::from_wit(e).map_err(|error| HandleError::Trap {
                                component: name.to_string(),
                                message: format!(
                                    "the component returned an invalid event: {error}"
                                ),
                            })
                        })
                        .collect(),
                }
            }
            Ok(Ok(Err(bindings::wit::HandlerError { kind, message }))) => {
                Err(HandleError::Handler {
                    component: name.to_string(),
                    kind: kind.into(),
                    message,
                })
            }
        }
    }
}

/// Which step of a call failed.
enum Failure {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

/// Makes the epoch ticker stop the guest at `deadline`, yielding to the async executor at
/// every tick until then so a busy guest never starves other tasks (or the timeout).
pub(crate) fn arm_deadline<T>(store: &mut Store<T>, deadline: Instant) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineReached))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Turns wasmtime errors into [`HandleError`]s for one component.
pub(crate) struct ErrorContext<'a> {
    pub(crate) component: &'a str,
    pub(crate) limits: &'a Limits,
    pub(crate) memory_denied: bool,
}

impl ErrorContext<'_> {
    pub(crate) fn timeout(&self) -> HandleError {
        HandleError::Timeout {
            component: self.component.to_owned(),
            deadline: self.limits.deadline,
        }
    }

    /// Classifies an error raised while running the guest.
    pub(crate) fn classify(&self, e: wasmtime::Error) -> HandleError {
        if e.downcast_ref::<DeadlineReached>().is_some()
            || e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
        {
            return self.timeout();
        }
        if self.memory_denied {
            return HandleError::OutOfMemory {
                component: self.component.to_owned(),
                limit_bytes: self.limits.max_memory_bytes,
            };
        }
        HandleError::Trap {
            component: self.component.to_owned(),
            message: format!("{e:?}"),
        }
    }

    /// Classifies an instantiation error: a full pool is [`HandleError::Busy`]; a start
    /// function that traps is classified like a call.
    pub(crate) fn classify_instantiate(&self, e: wasmtime::Error) -> HandleError {
        if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return HandleError::Busy {
                component: self.component.to_owned(),
            };
        }
        if e.downcast_ref::<wasmtime::Trap>().is_some()
            || e.downcast_ref::<DeadlineReached>().is_some()
        {
            return self.classify(e);
        }
        HandleError::Instantiate {
            component: self.component.to_owned(),
            message: format!("{e:#}"),
        }
    }
}
