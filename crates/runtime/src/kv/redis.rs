//! A key-value store on a Redis server (`[key_value_store.<label>] type = "redis"`).
//!
//! The connection is made at the first operation, not at startup, so `spindle up` starts
//! while Redis is down (operations fail with `store-unavailable`, a transient error, until it
//! is back); the connection manager then reconnects by itself.

use engine::kv::{KeyValueStore, KvError, KvFuture};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

/// A Redis-backed store.
pub struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisStore {
    /// Without the URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the server at `url` (`redis://[user:password@]host[:port][/db]`); fails only
    /// when the URL does not parse.
    pub fn new(url: &str) -> Result<Self, String> {
        if !url.starts_with("redis://") {
            return Err("expected a redis:// URL".into());
        }
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        Ok(RedisStore {
            client,
            connection: OnceCell::new(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, KvError> {
        self.connection
            .get_or_try_init(|| ConnectionManager::new(self.client.clone()))
            .await
            .cloned()
            .map_err(unavailable)
    }
}

fn unavailable(e: redis::RedisError) -> KvError {
    KvError::Unavailable(format!("redis: {e}"))
}

impl KeyValueStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { self.connection().await?.get(key).await.map_err(unavailable) })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        Box::pin(async move {
            self.connection()
                .await?
                .set(key, value)
                .await
                .map_err(unavailable)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move { self.connection().await?.del(key).await.map_err(unavailable) })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        Box::pin(async move {
            self.connection()
                .await?
                .exists(key)
                .await
                .map_err(unavailable)
        })
    }

    fn keys(&self) -> KvFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut connection = self.connection().await?;
            let mut iter: redis::AsyncIter<'_, String> =
                connection.scan().await.map_err(unavailable)?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key.map_err(unavailable)?);
            }
            Ok(keys)
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64> {
        Box::pin(async move {
            self.connection()
                .await?
                .incr(key, delta)
                .await
                .map_err(|e| match e.kind() {
                    redis::ErrorKind::Server(_) | redis::ErrorKind::UnexpectedReturnType => {
                        KvError::Invalid(format!("redis: {e}"))
                    }
                    _ => unavailable(e),
                })
        })
    }
}
