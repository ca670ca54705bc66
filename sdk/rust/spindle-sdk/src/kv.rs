//! Durable key-value stores granted in `spindle.toml` (`key_value_stores = ["default"]`).
//!
//! A handler instance lives for one event; what it must remember between events goes here.
//! `default` is the runtime's embedded store (in the state directory, surviving restarts);
//! other labels are defined in the manifest (`[key_value_store.cache] type = "redis"`).
//!
//! ```no_run
//! use spindle_sdk::{cloudevents_component, kv, Event, Result};
//!
//! #[cloudevents_component]
//! fn handle(event: Event) -> Result<Event> {
//!     let store = kv::Store::open_default().map_err(kv::Error::into_error)?;
//!     let seen = store.increment("orders-seen", 1).map_err(kv::Error::into_error)?;
//!     Ok(event.with_extension("seen", seen.to_string()))
//! }
//! ```

use crate::__bindings::spindle::cloudevents::key_value as wit;
use crate::error::ErrorKind;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The store is not granted to this component (`key_value_stores` in `spindle.toml`).
    #[error("key-value store access denied (not in key_value_stores)")]
    AccessDenied,
    /// The key or value is too large, or the stored value does not suit the operation.
    #[error("key-value: {0}")]
    Invalid(String),
    /// The store failed or could not be reached; retrying the event later may help.
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// Whether retrying the event could help: only [`Error::Unavailable`] is transient.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unavailable(_) => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }

    /// The handler error of this failure, keeping [`Error::kind`] (plain `?` would make every
    /// error permanent).
    pub fn into_error(self) -> crate::Error {
        match self.kind() {
            ErrorKind::Transient => crate::Error::transient(self.to_string()),
            ErrorKind::Permanent => crate::Error::permanent(self.to_string()),
        }
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::AccessDenied => Error::AccessDenied,
            wit::Error::Invalid(m) => Error::Invalid(m),
            wit::Error::StoreUnavailable(m) => Error::Unavailable(m),
        }
    }
}

/// An open store.
pub struct Store(wit::Store);

impl Store {
    /// Opens the store `label`.
    pub fn open(label: &str) -> Result<Self, Error> {
        Ok(Store(wit::Store::open(label)?))
    }

    /// Opens the `default` store.
    pub fn open_default() -> Result<Self, Error> {
        Self::open("default")
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.get(key)?)
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.0.set(key, value.as_ref())?)
    }

    /// Removes `key`.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        Ok(self.0.delete(key)?)
    }

    /// Whether `key` has a value.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.0.exists(key)?)
    }

    /// Every key in the store.
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.0.get_keys()?)
    }

    /// Adds `delta` to the decimal integer at `key` (absent counts as 0), atomically, and
    /// returns the new value.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        Ok(self.0.increment(key, delta)?)
    }
}
