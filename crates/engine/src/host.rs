//! Per-instance host state and the host side of the `outbound`, `log` and `config` imports.

use crate::bindings::spindle::cloudevents::{config, log, outbound, types};
use crate::budget::{self, Budget, MAX_LOG_BYTES, MAX_LOG_RECORDS};
use crate::config::Limits;
use crate::engine::Engine;
use crate::error::HandleError;
use crate::handler::arm_deadline;
use crate::limiter::MemoryLimiter;
use crate::outgoing::OutgoingHttp;
use crate::publisher::{PublishError, Publisher};
use crate::wasi::{LazyWasi, ResolvedGrants};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What every instance of one component shares: fixed at load.
pub(crate) struct ComponentShared {
    /// The component's name, tagging its logs and errors.
    pub(crate) name: Arc<str>,
    /// Declared outputs.
    pub(crate) outputs: BTreeSet<String>,
    /// `config.get` values.
    pub(crate) variables: BTreeMap<String, String>,
    /// The key-value stores it may open.
    pub(crate) key_value: crate::kv::KeyValueGrants,
}

impl std::fmt::Debug for ComponentShared {
    /// Names the variables, never their values (they may be secrets).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentShared")
            .field("name", &self.name)
            .field("outputs", &self.outputs)
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The store data of one handler instance: lives exactly as long as one event (a recycled
/// store gets a new one per event).
pub(crate) struct HostState {
    pub(crate) wasi: LazyWasi,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) shared: Arc<ComponentShared>,
    pub(crate) publisher: Arc<dyn Publisher>,
    /// When the event's deadline passes; bounds how long `publish` may wait.
    pub(crate) deadline: Instant,
    /// What the guest has published and logged during this event, against its limits.
    pub(crate) budget: Budget,
    /// `wasi:http` state for outgoing requests.
    pub(crate) http: WasiHttpCtx,
    /// Which outgoing requests are allowed, and until when.
    pub(crate) outgoing: OutgoingHttp,
}

/// A new store for a component's instances: the first event's (or the request's) host state
/// under the component's limits, with its memory cap and its deadline armed. Both executors
/// start a call here, or in a handler's recycled store (see `recycle`).
pub(crate) fn new_store(
    engine: &Engine,
    shared: &Arc<ComponentShared>,
    grants: &Arc<ResolvedGrants>,
    limits: &Limits,
    publisher: Arc<dyn Publisher>,
) -> Result<Store<HostState>, HandleError> {
    let state = new_state(engine, shared, grants, limits, publisher)?;
    Ok(store_for(engine, state))
}

/// A new store holding `state`, with its memory cap and its deadline armed.
pub(crate) fn store_for(engine: &Engine, state: HostState) -> Store<HostState> {
    let deadline = state.deadline;
    let mut store = Store::new(&engine.inner.wasmtime, state);
    store.limiter(|s| &mut s.limiter);
    arm_deadline(&mut store, deadline);
    store
}

/// The host state of one event (or request): what it may publish, log, open and call, and
/// its deadline. Every event gets its own, even in a recycled store.
pub(crate) fn new_state(
    engine: &Engine,
    shared: &Arc<ComponentShared>,
    grants: &Arc<ResolvedGrants>,
    limits: &Limits,
    publisher: Arc<dyn Publisher>,
) -> Result<HostState, HandleError> {
    let name = &shared.name;
    let deadline = Instant::now() + limits.deadline;
    let wasi = LazyWasi::new(grants, name).map_err(|e| HandleError::Instantiate {
        component: name.to_string(),
        message: format!("cannot set up WASI: {e:#}"),
    })?;
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter::new(limits.max_memory_bytes),
        shared: shared.clone(),
        publisher,
        deadline,
        budget: Budget::default(),
        http: WasiHttpCtx::new(),
        outgoing: OutgoingHttp::new(
            name.clone(),
            grants.outbound_hosts.clone(),
            engine.inner.outgoing.clone(),
            deadline,
        ),
    };
    Ok(state)
}

impl HostState {
    /// Drops what the event opened: its resources (key-value stores, outgoing requests, WASI
    /// streams, whose buffered output is logged now) and its WASI context. Called when an
    /// event ends in a store that will serve another, so none of it outlives the event.
    pub(crate) fn end_event(&mut self) {
        self.table = ResourceTable::new();
        self.wasi.clear();
        self.http = WasiHttpCtx::new();
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.outgoing,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get(),
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl outbound::Host for HostState {
    async fn publish(
        &mut self,
        output: String,
        event: types::Event,
    ) -> Result<(), outbound::PublishError> {
        if !self.shared.outputs.contains(&output) {
            return Err(outbound::PublishError::UnknownOutput(output));
        }
        if let Err(why) = self.budget.publish(&event) {
            return Err(outbound::PublishError::Failed(format!(
                "{why}: this event fails"
            )));
        }
        let event = crate::event::from_wit(event)
            .map_err(|error| outbound::PublishError::InvalidEvent(error.to_string()))?;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let publish = self.publisher.publish(&output, event);
        match tokio::time::timeout(remaining, publish).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(PublishError::UnknownOutput(o))) => {
                Err(outbound::PublishError::UnknownOutput(o))
            }
            Ok(Err(PublishError::InvalidEvent(m))) => Err(outbound::PublishError::InvalidEvent(m)),
            Ok(Err(PublishError::Failed(m))) => Err(outbound::PublishError::Failed(m)),
            Err(_) => Err(outbound::PublishError::Failed(
                "publish did not complete before the event's deadline".into(),
            )),
        }
    }
}

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        let component = &*self.shared.name;
        match self.budget.log() {
            Some(true) => {}
            Some(false) => {
                tracing::warn!(
                    target: "spindle::guest",
                    component,
                    "the guest wrote more than {MAX_LOG_RECORDS} log records for one event; the rest of this event's are dropped"
                );
                return;
            }
            None => return,
        }
        let message = budget::truncate(&message, MAX_LOG_BYTES);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .scan(MAX_LOG_BYTES, |room, (k, v)| {
                let k = budget::truncate(&k, 64).into_owned();
                let kept = if k.len() + v.len() <= *room {
                    (k, v)
                } else {
                    let v = budget::truncate(&v, (*room).min(256)).into_owned();
                    (k, v)
                };
                *room = room.saturating_sub(kept.0.len() + kept.1.len());
                Some(kept)
            })
            .take(64)
            .collect();
        let fields = FieldList(&fields);
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "spindle::guest", component, %fields, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "spindle::guest", component, %fields, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "spindle::guest", component, %fields, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "spindle::guest", component, %fields, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "spindle::guest", component, %fields, "{message}")
            }
        }
    }
}

impl config::Host for HostState {
    async fn get(&mut self, name: String) -> Option<String> {
        self.shared.variables.get(&name).cloned()
    }
}

/// Guest key/values rendered as `k=v k2=v2`: `tracing` field names are static, guest keys
/// are not.
struct FieldList<'a>(&'a [(String, String)]);

impl std::fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        Ok(())
    }
}
