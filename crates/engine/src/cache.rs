//! Compile-once: components cached on disk keyed by a content hash.
//!
//! The key covers the component bytes and wasmtime's compatibility fingerprint (version,
//! target, compiler settings), so a new wasmtime or a different engine configuration misses
//! instead of loading incompatible code.

use crate::error::LoadError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;

/// Bumped when the layout of the cache changes.
const CACHE_VERSION: &[u8] = b"spindle-engine-cache-v1";

/// Feeds `Hash` output into SHA-256, giving a stable fingerprint (std's hashers are not
/// guaranteed stable across builds).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only used through write")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The cache key of `bytes` for `engine`, in hex.
pub(crate) fn cache_key(engine: &wasmtime::Engine, bytes: &[u8]) -> String {
    let mut h = ShaHasher(Sha256::new());
    h.write(CACHE_VERSION);
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.update(bytes);
    h.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads the compiled form of `bytes` from `dir`, or compiles and stores it.
///
/// A cached file that fails to deserialize (corrupt, truncated) is recompiled and replaced.
pub(crate) fn load_or_compile(
    engine: &wasmtime::Engine,
    dir: Option<&Path>,
    name: &str,
    bytes: &[u8],
) -> Result<Component, LoadError> {
    let Some(dir) = dir else {
        return compile(engine, name, bytes);
    };
    let path = dir.join(format!("{}.cwasm", cache_key(engine, bytes)));
    let started = std::time::Instant::now();
    if path.is_file() {
        // SAFETY: files in the cache directory are written only by `store` below, from
        // `Component::serialize` of this same wasmtime, under a name that includes the
        // engine's compatibility hash; wasmtime additionally checks the header. The cache
        // directory must not be writable by untrusted parties (documented on
        // `EngineConfig::cache_dir`).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => {
                tracing::info!(
                    component = name,
                    ms = started.elapsed().as_millis() as u64,
                    "loaded from the compiled cache"
                );
                return Ok(c);
            }
            Err(e) => {
                tracing::warn!(component = name, path = %path.display(), error = %e, "ignoring unusable cached component");
            }
        }
    }
    let component = compile(engine, name, bytes)?;
    store(&component, dir, &path)?;
    Ok(component)
}

/// Compiles `bytes`, saying so: a big component (CPython in Wasm is 18 MB) takes seconds,
/// once, and the log tells why the start was slow.
fn compile(engine: &wasmtime::Engine, name: &str, bytes: &[u8]) -> Result<Component, LoadError> {
    tracing::info!(
        component = name,
        bytes = bytes.len(),
        "compiling (once: the result is cached)"
    );
    let started = std::time::Instant::now();
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Compile {
        component: name.to_owned(),
        message: format!("{e:#}"),
    })?;
    tracing::info!(
        component = name,
        ms = started.elapsed().as_millis() as u64,
        "compiled"
    );
    Ok(component)
}

/// Writes atomically (temp file + rename) so a concurrent reader never sees a partial file,
/// and never in place: loaded entries are memory-mapped, and truncating one would crash
/// (SIGBUS) every engine that has it loaded. The temporary name is unique to this write
/// (process id and a counter): engines of one process filling a cold cache at once must not
/// write into, or rename away, each other's temporary file.
fn store(component: &Component, dir: &Path, path: &Path) -> Result<(), LoadError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| LoadError::Cache { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let serialized = component.serialize().map_err(|e| LoadError::Cache {
        path: path.display().to_string(),
        source: std::io::Error::other(format!("{e:#}")),
    })?;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let write = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{write}", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, serialized) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    Ok(())
}
