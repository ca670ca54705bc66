//! The embedded key-value store: one redb database in the state directory, one table per
//! store label, so values survive restarts with no server to run.

use std::path::Path;
use std::sync::Arc;

use engine::kv::{KeyValueStore, KvError, KvFuture, add_to_counter};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::app::AppError;

/// Opens (creating if needed) the database file.
pub(super) fn open(path: &Path) -> Result<Arc<Database>, AppError> {
    Database::create(path).map(Arc::new).map_err(|e| {
        AppError::Config(format!(
            "cannot open the key-value store {}: {e}",
            path.display()
        ))
    })
}

/// One labelled store in the embedded database.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    table: Arc<str>,
}

impl EmbeddedStore {
    /// The store `label` in `db`.
    pub fn new(db: Arc<Database>, label: &str) -> Self {
        EmbeddedStore {
            db,
            table: format!("kv:{label}").into(),
        }
    }

    /// Runs `f` on a blocking thread: redb's calls block on the disk.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(
            &Database,
            TableDefinition<'_, &'static str, &'static [u8]>,
        ) -> Result<T, KvError>
        + Send
        + 'static,
    ) -> KvFuture<'static, T> {
        let (db, table) = (Arc::clone(&self.db), Arc::clone(&self.table));
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&db, TableDefinition::new(&table)))
                .await
                .map_err(|e| KvError::Unavailable(format!("embedded store task: {e}")))?
        })
    }
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

/// Reads with a missing table counting as empty.
fn read<T>(
    db: &Database,
    def: TableDefinition<'_, &'static str, &'static [u8]>,
    empty: T,
    f: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T, redb::StorageError>,
) -> Result<T, KvError> {
    let tx = db.begin_read().map_err(unavailable)?;
    match tx.open_table(def) {
        Ok(table) => f(&table).map_err(unavailable),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(empty),
        Err(e) => Err(unavailable(e)),
    }
}

/// Writes in one committed transaction.
fn write<T>(
    db: &Database,
    def: TableDefinition<'_, &'static str, &'static [u8]>,
    f: impl FnOnce(&mut redb::Table<'_, &'static str, &'static [u8]>) -> Result<T, KvError>,
) -> Result<T, KvError> {
    let tx = db.begin_write().map_err(unavailable)?;
    let out = {
        let mut table = tx.open_table(def).map_err(unavailable)?;
        f(&mut table)?
    };
    tx.commit().map_err(unavailable)?;
    Ok(out)
}

impl KeyValueStore for EmbeddedStore {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        let key = key.to_owned();
        self.run(move |db, def| {
            read(db, def, None, |t| {
                Ok(t.get(key.as_str())?.map(|v| v.value().to_vec()))
            })
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        let key = key.to_owned();
        self.run(move |db, def| {
            write(db, def, |t| {
                t.insert(key.as_str(), value.as_slice())
                    .map_err(unavailable)?;
                Ok(())
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        let key = key.to_owned();
        self.run(move |db, def| {
            write(db, def, |t| {
                t.remove(key.as_str()).map_err(unavailable)?;
                Ok(())
            })
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        let key = key.to_owned();
        self.run(move |db, def| read(db, def, false, |t| Ok(t.get(key.as_str())?.is_some())))
    }

    fn keys(&self) -> KvFuture<'_, Vec<String>> {
        self.run(|db, def| {
            read(db, def, Vec::new(), |t| {
                t.iter()?
                    .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
                    .collect()
            })
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> KvFuture<'a, i64> {
        let key = key.to_owned();
        self.run(move |db, def| {
            write(db, def, |t| {
                let current = t
                    .get(key.as_str())
                    .map_err(unavailable)?
                    .map(|v| v.value().to_vec());
                let next = add_to_counter(current.as_deref(), delta)?;
                t.insert(key.as_str(), next.to_string().as_bytes())
                    .map_err(unavailable)?;
                Ok(next)
            })
        })
    }
}
