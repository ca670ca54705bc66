//! The shared wasmtime engine: configuration, epoch ticker, compilation cache and loading.

use crate::bindings;
use crate::cache;
use crate::compose;
use crate::config::{ComponentConfig, EngineConfig, Limits};
use crate::error::LoadError;
use crate::handler::Handler;
use crate::host::{ComponentShared, HostState};
use crate::http::HttpHandler;
use crate::outgoing::OutgoingShared;
use crate::recycle::RecycleBudget;
use crate::ticker::Ticker;
use crate::wasi::ResolvedGrants;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Where a component's bytes come from.
#[derive(Debug, Clone)]
pub enum ComponentSource {
    /// A `.wasm` component file, as `spindle build` produces.
    Path(PathBuf),
    /// Component bytes already in memory (tests, embedded components).
    Bytes(Vec<u8>),
}

/// One wasmtime engine shared by all components of an application.
///
/// Cheap to clone. Sharing one engine shares the instance pool, the compiled-code cache and
/// the epoch ticker that enforces deadlines.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) wasmtime: wasmtime::Engine,
    pub(crate) config: EngineConfig,
    /// TLS trust of guests' outbound HTTPS, shared by every instance.
    pub(crate) outgoing: Arc<OutgoingShared>,
    /// The pool slots finished instances may keep in idle stores (see `recycle`).
    pub(crate) recycle: Arc<RecycleBudget>,
    _ticker: Ticker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Creates the engine: pooling allocator with copy-on-write memory images, async support,
    /// epoch interruption and its ticker thread.
    pub fn new(config: EngineConfig) -> Result<Self, LoadError> {
        if config.pool_size == 0 {
            return Err(LoadError::Config("pool_size must be at least 1".into()));
        }
        if config.epoch_tick.is_zero() {
            return Err(LoadError::Config("epoch_tick must be positive".into()));
        }
        let max_memory = usize::try_from(config.max_memory_bytes)
            .map_err(|_| LoadError::Config("max_memory_bytes too large".into()))?;
        let slots = config.pool_size.saturating_add(config.recycled_instances);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(4))
            // A store keeps its last fiber stack, and each idle store holds at least one
            // finished instance of the budget: so slots bound the stacks too.
            .total_stacks(slots)
            .max_memory_size(max_memory);
        keep_dirty_pages_resident(&mut pool);
        let mut wt = Config::new();
        wt.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            .epoch_interruption(true)
            .parallel_compilation(true);
        let wasmtime = wasmtime::Engine::new(&wt)
            .map_err(|e| LoadError::Config(format!("wasmtime: {e:#}")))?;
        let ticker = Ticker::start(wasmtime.clone(), config.epoch_tick)
            .map_err(|e| LoadError::Config(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            inner: Arc::new(EngineInner {
                wasmtime,
                outgoing: Arc::new(OutgoingShared::new(
                    config.extra_roots.clone(),
                    config.egress.clone(),
                )),
                recycle: Arc::new(RecycleBudget::new(config.recycled_instances)),
                config,
                _ticker: ticker,
            }),
        })
    }

    /// Loads a `spindle:cloudevents/handler` component: compiles it (or loads it from the
    /// cache), links the host imports and pre-instantiates it, so each event only pays for a
    /// fresh instance.
    pub fn load(
        &self,
        name: &str,
        source: ComponentSource,
        config: ComponentConfig,
    ) -> Result<Handler, LoadError> {
        let (grants, component) = self.prepare(name, source, &config)?;
        let link = |e: wasmtime::Error| LoadError::Link {
            component: name.to_owned(),
            message: format!("{e:#}"),
        };
        let mut linker = Linker::<HostState>::new(&self.inner.wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
        bindings::Handler::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(link)?;
        let pre = linker.instantiate_pre(&component).map_err(link)?;
        let pre = bindings::HandlerPre::new(pre).map_err(link)?;
        let shared = Arc::new(ComponentShared {
            name: name.into(),
            outputs: config.outputs,
            variables: config.variables,
            key_value: config.key_value,
        });
        Ok(Handler::new(
            self.clone(),
            pre,
            shared,
            grants,
            config.limits,
        ))
    }

    /// Loads a plain `wasi:http/incoming-handler` (proxy world) component, served one fresh
    /// instance per request by [`HttpHandler::handle`] with the same limits and grants.
    /// `variables` and `outputs` of `config` do not apply to this world.
    pub fn load_http(
        &self,
        name: &str,
        source: ComponentSource,
        config: ComponentConfig,
    ) -> Result<HttpHandler, LoadError> {
        let (grants, component) = self.prepare(name, source, &config)?;
        self.link_http(name, &component, grants, config)
    }

    /// Loads a handler component behind a protocol binder: links `binder`'s `handle` import
    /// to the component's export ([`compose::link`]), then serves the composition like a
    /// `wasi:http` component, with the component's outputs, variables and key-value stores.
    /// The composition is compiled once and cached like any component (keyed by its bytes,
    /// so a changed binder or component is recompiled).
    pub fn load_binder(
        &self,
        name: &str,
        binder: ComponentSource,
        source: ComponentSource,
        config: ComponentConfig,
    ) -> Result<HttpHandler, LoadError> {
        let binder_bytes = read(name, binder)?;
        let component_bytes = read(name, source)?;
        let composed = compose::link(&binder_bytes, &component_bytes).map_err(|e| {
            LoadError::ComponentConfig {
                component: name.to_owned(),
                message: e.to_string(),
            }
        })?;
        let (grants, component) = self.prepare(name, ComponentSource::Bytes(composed), &config)?;
        self.link_http(name, &component, grants, config)
    }

    /// Pre-instantiates a component exporting `wasi:http/incoming-handler`, with all of WASI
    /// p2 and Spindle's host imports available to it.
    fn link_http(
        &self,
        name: &str,
        component: &Component,
        grants: ResolvedGrants,
        config: ComponentConfig,
    ) -> Result<HttpHandler, LoadError> {
        let link = |e: wasmtime::Error| LoadError::Link {
            component: name.to_owned(),
            message: format!("{e:#}"),
        };
        let mut linker = Linker::<HostState>::new(&self.inner.wasmtime);
        // All of WASI p2, not just the proxy world's subset: Rust's std on wasip2 imports
        // filesystem and environment interfaces too (they stay empty without grants).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
        // Spindle's own imports, for a binder-linked handler (a plain component has none).
        bindings::Handler::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(link)?;
        let pre = linker.instantiate_pre(component).map_err(link)?;
        let pre = wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre).map_err(link)?;
        let shared = Arc::new(ComponentShared {
            name: name.into(),
            outputs: config.outputs,
            variables: config.variables,
            key_value: config.key_value,
        });
        Ok(HttpHandler::new(
            self.clone(),
            pre,
            shared,
            grants,
            config.limits,
        ))
    }

    /// What both kinds of component need before linking: limits checked, grants resolved,
    /// the component compiled (or loaded from the cache).
    fn prepare(
        &self,
        name: &str,
        source: ComponentSource,
        config: &ComponentConfig,
    ) -> Result<(ResolvedGrants, Component), LoadError> {
        self.check_limits(name, &config.limits)?;
        let grants = ResolvedGrants::resolve(&config.grants).map_err(|message| {
            LoadError::ComponentConfig {
                component: name.to_owned(),
                message,
            }
        })?;
        let component = self.compile(name, source)?;
        Ok((grants, component))
    }

    fn check_limits(&self, name: &str, limits: &Limits) -> Result<(), LoadError> {
        let bad = |message: String| LoadError::ComponentConfig {
            component: name.to_owned(),
            message,
        };
        if limits.max_memory_bytes > self.inner.config.max_memory_bytes {
            return Err(bad(format!(
                "memory cap {} exceeds the engine's maximum {}",
                limits.max_memory_bytes, self.inner.config.max_memory_bytes
            )));
        }
        if limits.max_concurrency == 0 {
            return Err(bad("max_concurrency must be at least 1".into()));
        }
        if limits.deadline.is_zero() {
            return Err(bad("deadline must be positive".into()));
        }
        Ok(())
    }

    fn compile(&self, name: &str, source: ComponentSource) -> Result<Component, LoadError> {
        let bytes = read(name, source)?;
        cache::load_or_compile(
            &self.inner.wasmtime,
            self.inner.config.cache_dir.as_deref(),
            name,
            &bytes,
        )
    }
}

/// The bytes of a component.
fn read(name: &str, source: ComponentSource) -> Result<Vec<u8>, LoadError> {
    match source {
        ComponentSource::Bytes(b) => Ok(b),
        ComponentSource::Path(p) => std::fs::read(&p).map_err(|source| LoadError::Read {
            component: name.to_owned(),
            path: p.display().to_string(),
            source,
        }),
    }
}

/// Per linear memory slot, at most this many bytes of the pages a guest wrote are reset in
/// place (copied back from the image or zeroed) when its instance is dropped, instead of being
/// handed back to the kernel; see [`keep_dirty_pages_resident`].
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The same for table slots.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Resets the pages an instance dirtied in place instead of `madvise`-ing them away, where
/// Linux's `PAGEMAP_SCAN` can find exactly those pages (Linux 6.7+).
///
/// With a fresh instance per event this is most of the per-event cost otherwise: every drop
/// decommitted the slot's memory and tables (an `madvise` with a TLB shootdown each) and the
/// next instance page-faulted the same pages back in. An echo guest dirties a few pages; up
/// to the thresholds above they are now restored with a `memcpy`/`memset` and stay mapped,
/// while anything beyond is still decommitted as before. The reset is exact either way (a
/// new instance sees the pristine image), so isolation between events is unchanged; the price
/// is that an idle warm slot keeps up to those bytes resident.
///
/// Without `PAGEMAP_SCAN`, wasmtime would instead reset the *lowest* `keep_resident` bytes
/// whether touched or not (and a Rust guest's stack sits at the top of its first megabyte),
/// which costs more than it saves, so the defaults (decommit everything) stay.
fn keep_dirty_pages_resident(pool: &mut PoolingAllocationConfig) {
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }
}
