//! The host side of the `key-value` import: the stores a component was granted, behind a trait
//! the embedder implements (the runtime's embedded store, Redis, or anything else).
//!
//! The engine owns the rules every backend shares, so no backend can forget one: a store
//! opens only when it is in the component's grants, keys and values are size-checked here,
//! and every call is bounded by the event's deadline.

use crate::bindings::spindle::cloudevents::key_value as wit;
use crate::host::HostState;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Resource;

/// The largest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// A boxed future returned by [`KeyValueStore`] methods.
pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send + 'a>>;

/// Why a store operation failed, as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The stored value does not suit the operation (e.g. `increment` on text).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The backend failed or cannot be reached; a retry may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// A key-value backend. Keys and values reaching it are already within
/// [`MAX_KEY_BYTES`] / [`MAX_VALUE_BYTES`].
pub trait KeyValueStore: Send + Sync + std::fmt::Debug {
    /// The value of `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Sets `key`.
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()>;
    /// Removes `key`.
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
    /// Whether `key` has a value.
    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool>;
    /// Every key.
    fn keys(&self) -> KvFuture<'_, Vec<String>>;
    /// Adds `delta` to the decimal integer at `key` (absent is 0) atomically; the new value.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64>;
}

/// The stores a component may open, by label.
pub type KeyValueGrants = BTreeMap<String, Arc<dyn KeyValueStore>>;

/// An opened store, as the guest holds it.
pub struct OpenStore {
    label: String,
    store: Arc<dyn KeyValueStore>,
}

impl HostState {
    fn open_store(&self, handle: &Resource<OpenStore>) -> Result<&OpenStore, wit::Error> {
        self.table
            .get(handle)
            .map_err(|e| wit::Error::StoreUnavailable(format!("bad store handle: {e}")))
    }

    /// Runs one backend call before the event's deadline.
    async fn bounded<T>(
        deadline: Instant,
        label: &str,
        call: impl Future<Output = Result<T, KvError>>,
    ) -> Result<T, wit::Error> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(KvError::Invalid(m))) => Err(wit::Error::Invalid(m)),
            Ok(Err(KvError::Unavailable(m))) => {
                Err(wit::Error::StoreUnavailable(format!("store {label}: {m}")))
            }
            Err(_) => Err(wit::Error::StoreUnavailable(format!(
                "store {label} did not answer before the event's deadline"
            ))),
        }
    }
}

fn check_key(key: &str) -> Result<(), wit::Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(wit::Error::Invalid(format!(
            "key of {} bytes exceeds {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

impl wit::Host for HostState {}

impl wit::HostStore for HostState {
    async fn open(&mut self, label: String) -> Result<Resource<OpenStore>, wit::Error> {
        let Some(store) = self.shared.key_value.get(&label).cloned() else {
            tracing::warn!(
                component = %self.shared.name,
                store = %label,
                "key-value store not granted to the component (add it to key_value_stores)"
            );
            return Err(wit::Error::AccessDenied);
        };
        self.table
            .push(OpenStore { label, store })
            .map_err(|e| wit::Error::StoreUnavailable(format!("too many open stores: {e}")))
    }

    async fn get(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wit::Error> {
        check_key(&key)?;
        let s = self.open_store(&this)?;
        Self::bounded(self.deadline, &s.label, s.store.get(&key)).await
    }

    async fn set(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wit::Error> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(wit::Error::Invalid(format!(
                "value of {} bytes exceeds {MAX_VALUE_BYTES}",
                value.len()
            )));
        }
        let s = self.open_store(&this)?;
        Self::bounded(self.deadline, &s.label, s.store.set(&key, value)).await
    }

    async fn delete(&mut self, this: Resource<OpenStore>, key: String) -> Result<(), wit::Error> {
        check_key(&key)?;
        let s = self.open_store(&this)?;
        Self::bounded(self.deadline, &s.label, s.store.delete(&key)).await
    }

    async fn exists(&mut self, this: Resource<OpenStore>, key: String) -> Result<bool, wit::Error> {
        check_key(&key)?;
        let s = self.open_store(&this)?;
        Self::bounded(self.deadline, &s.label, s.store.exists(&key)).await
    }

    async fn get_keys(&mut self, this: Resource<OpenStore>) -> Result<Vec<String>, wit::Error> {
        let s = self.open_store(&this)?;
        Self::bounded(self.deadline, &s.label, s.store.keys()).await
    }

    async fn increment(
        &mut self,
        this: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> Result<i64, wit::Error> {
        check_key(&key)?;
        let s = self.open_store(&this)?;
        Self::bounded(self.deadline, &s.label, s.store.increment(&key, delta)).await
    }

    async fn drop(&mut self, this: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// A store in memory, for tests and embedders that need no durability.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyValueStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        let v = self.map().get(key).cloned();
        Box::pin(std::future::ready(Ok(v)))
    }
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        self.map().insert(key.to_owned(), value);
        Box::pin(std::future::ready(Ok(())))
    }
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        self.map().remove(key);
        Box::pin(std::future::ready(Ok(())))
    }
    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        let v = self.map().contains_key(key);
        Box::pin(std::future::ready(Ok(v)))
    }
    fn keys(&self) -> KvFuture<'_, Vec<String>> {
        let v = self.map().keys().cloned().collect();
        Box::pin(std::future::ready(Ok(v)))
    }
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64> {
        let mut map = self.map();
        let result = add_to_counter(map.get(key).map(Vec::as_slice), delta).inspect(|n| {
            map.insert(key.to_owned(), n.to_string().into_bytes());
        });
        Box::pin(std::future::ready(result))
    }
}

/// The counter after adding `delta` to `current` (a decimal integer, or absent for 0): the one
/// rule of `increment` for every backend that implements it itself.
pub fn add_to_counter(current: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let now = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| KvError::Invalid("the stored value is not a decimal integer".into()))?,
    };
    now.checked_add(delta)
        .ok_or_else(|| KvError::Invalid("the counter would overflow".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_decimal_and_checked() {
        assert_eq!(add_to_counter(None, 5), Ok(5));
        assert_eq!(add_to_counter(Some(b"41"), 1), Ok(42));
        assert!(add_to_counter(Some(b"x"), 1).is_err());
        assert!(add_to_counter(Some(b"9223372036854775807"), 1).is_err());
    }
}
