//! The key-value stores behind the engine's `key-value` import: the embedded one (a file in
//! the state directory) and Redis, opened from `[key_value_store.<label>]`.
//!
//! Each store is opened once per app and shared by every component granted it; a component
//! only sees the labels in its own `key_value_stores` (see [`grants_for`]).

mod embedded;
mod redis;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use engine::kv::{KeyValueGrants, KeyValueStore};
use manifest::{Component, KeyValueStore as StoreConfig, Manifest};

pub use embedded::{EmbeddedStore, KvDatabase};
pub use redis::RedisStore;

use crate::app::AppError;

/// The stores some component is granted, opened: embedded ones share one database file in
/// `state_dir`; a Redis store connects on first use (and reconnects by itself).
pub fn open_stores(
    manifest: &Manifest,
    state_dir: &Path,
) -> Result<BTreeMap<String, Arc<dyn KeyValueStore>>, AppError> {
    let used: std::collections::BTreeSet<&str> = manifest
        .components
        .values()
        .flat_map(|c| c.key_value_stores.iter().map(String::as_str))
        .collect();
    let mut stores: BTreeMap<String, Arc<dyn KeyValueStore>> = BTreeMap::new();
    let mut database = None;
    for (label, config) in &manifest.key_value_stores {
        if !used.contains(label.as_str()) {
            continue;
        }
        let store: Arc<dyn KeyValueStore> =
            match config {
                StoreConfig::Embedded => {
                    let db = match &database {
                        Some(db) => Arc::clone(db),
                        None => {
                            let db = embedded::open(&state_dir.join("key-value.redb"))?;
                            database = Some(Arc::clone(&db));
                            db
                        }
                    };
                    Arc::new(EmbeddedStore::new(db, label))
                }
                StoreConfig::Redis { url } => {
                    let url = url.resolve().map_err(|e| {
                        AppError::Config(format!("[key_value_store.{label}] url: {e}"))
                    })?;
                    Arc::new(RedisStore::new(&url).map_err(|e| {
                        AppError::Config(format!("[key_value_store.{label}] url: {e}"))
                    })?)
                }
            };
        stores.insert(label.clone(), store);
    }
    Ok(stores)
}

/// The stores `component` may open.
pub fn grants_for(
    component: &Component,
    stores: &BTreeMap<String, Arc<dyn KeyValueStore>>,
) -> KeyValueGrants {
    component
        .key_value_stores
        .iter()
        .filter_map(|label| Some((label.clone(), Arc::clone(stores.get(label)?))))
        .collect()
}
