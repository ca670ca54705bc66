//! Configuration of the engine and of each loaded component, with defaults a user never has to
//! think about.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// Engine-wide settings, fixed when the [`crate::Engine`] is created.
///
/// They size shared resources (the instance pool, the epoch ticker), so they cannot change
/// per component; per-component knobs are in [`ComponentConfig`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled components are cached, keyed by a content hash; `None` compiles every
    /// load. Caching turns a multi-second compile into a ~2 ms load on restart.
    pub cache_dir: Option<PathBuf>,
    /// How many instances may be alive at once across all components (the pooling allocator's
    /// slots). Should be at least the sum of the components' [`Limits::max_concurrency`]; when
    /// the pool is exhausted a call fails with [`crate::HandleError::Busy`].
    pub pool_size: u32,
    /// How many finished instances idle stores may keep between events, in pool slots the
    /// engine adds to [`EngineConfig::pool_size`] for them. A handler serves up to 8 events
    /// in turn from one store, each in a fresh instance, which saves creating and dropping a
    /// store per event (a sixth of a small handler's CPU); a finished instance holds its slot,
    /// and up to 2 MiB of resident memory, until its store drops. `0` gives every event a
    /// store of its own.
    pub recycled_instances: u32,
    /// The largest linear memory any instance may have; a component's
    /// [`Limits::max_memory_bytes`] must not exceed it. Sizes the pool slots.
    pub max_memory_bytes: u64,
    /// How often the background ticker advances the epoch: the granularity of deadlines and
    /// how often a running guest yields to the async executor.
    pub epoch_tick: Duration,
    /// CA certificates (PEM) trusted for guests' outbound HTTPS beside the system's roots
    /// (which `SSL_CERT_FILE` / `SSL_CERT_DIR` override), e.g. a private CA of internal
    /// services.
    pub extra_roots: Vec<u8>,
    /// Where guests' outbound HTTP may connect beyond their own grants: every address a
    /// granted host resolves to is checked against it (e.g. no cloud metadata address, even
    /// under `*://*:*`).
    pub egress: std::sync::Arc<http_server::EgressPolicy>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pool_size: 256,
            recycled_instances: 32,
            max_memory_bytes: 1 << 30,
            epoch_tick: Duration::from_millis(10),
            extra_roots: Vec::new(),
            egress: Default::default(),
        }
    }
}

impl EngineConfig {
    /// Sets [`EngineConfig::cache_dir`]; a builder-style convenience for callers.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// Isolation limits of one component; the defaults suit a typical event handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget for one event, from instantiation to the returned result (default
    /// 5 s). Exceeding it yields [`crate::HandleError::Timeout`].
    pub deadline: Duration,
    /// Cap on the guest's linear memory (default 64 MiB). Exceeding it yields
    /// [`crate::HandleError::OutOfMemory`] when the guest then fails.
    pub max_memory_bytes: u64,
    /// How many events of this component may run at once (default 64); the next one fails
    /// fast with [`crate::HandleError::Busy`] so HTTP can answer 429 instead of queueing.
    pub max_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(5),
            max_memory_bytes: 64 << 20,
            max_concurrency: 64,
        }
    }
}

/// A host directory made visible to the guest, read-only.
///
/// Read-only because a handler instance lives for one event: durable state belongs in events
/// or external services, not in files written from inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
}

/// What a component may reach beyond its event: nothing unless granted here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Preopened directories, read-only.
    pub dirs: Vec<DirGrant>,
    /// Environment variables the guest sees (it sees none of the host's).
    pub env: Vec<(String, String)>,
    /// Where the guest may connect, in Spin's `scheme://host[:port]` format (see
    /// [`crate::OutboundHost`]); without a `tcp`/`udp`/`*` grant, sockets and name lookup are
    /// off. Names are resolved once, at load.
    pub outbound_hosts: Vec<crate::OutboundHost>,
}

/// Everything the manifest says about one component that the engine needs.
///
/// Its `Debug` names the variables but never prints their values (they may be secrets).
#[derive(Clone, Default)]
pub struct ComponentConfig {
    /// Isolation limits.
    pub limits: Limits,
    /// WASI capabilities.
    pub grants: Grants,
    /// Values served by the `config.get` import.
    pub variables: BTreeMap<String, String>,
    /// Output names the guest may `publish` to; any other name gets `unknown-output`.
    pub outputs: BTreeSet<String>,
    /// The key-value stores the guest may open, by label; any other label is `access-denied`.
    pub key_value: crate::kv::KeyValueGrants,
}

impl std::fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("limits", &self.limits)
            .field("grants", &self.grants)
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("outputs", &self.outputs)
            .field("key_value", &self.key_value.keys().collect::<Vec<_>>())
            .finish()
    }
}
