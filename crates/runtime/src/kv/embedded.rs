//! The embedded key-value store: one redb database in the state directory, one table per
//! store label, so values survive restarts with no server to run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use engine::kv::{KeyValueStore, KvError, KvFuture, add_to_counter};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::app::AppError;

/// The database file every embedded store shares, which can be opened again: after one I/O
/// error (a full disk) redb refuses every later operation until the file is reopened, so a
/// failed operation checks the database and, when it is stuck that way, reopens it. The call
/// that met the error fails (the guest sees "unavailable"); the next ones work again once the
/// fault is gone, without a restart.
#[derive(Debug)]
pub struct KvDatabase {
    path: PathBuf,
    current: Mutex<Option<Arc<Database>>>,
}

impl KvDatabase {
    /// The database for one operation (opened again first if a reopen is pending).
    fn get(&self) -> Result<Arc<Database>, KvError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.is_none() {
            *current = Some(Arc::new(Database::create(&self.path).map_err(|e| {
                KvError::Unavailable(format!("the key-value store is reopening: {e}"))
            })?));
            tracing::warn!(path = %self.path.display(), "key-value store reopened after an I/O error");
        }
        Ok(Arc::clone(current.as_ref().expect("set above")))
    }

    /// After a failed operation: if the database refuses writes because of an earlier I/O
    /// error, drops it so the next operation opens the file again. A database some other
    /// operation still uses is left for that one to check.
    fn check(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let stuck = current.as_ref().is_some_and(|db| {
            Arc::strong_count(db) == 1
                && matches!(
                    db.begin_write(),
                    Err(redb::TransactionError::Storage(
                        redb::StorageError::PreviousIo | redb::StorageError::Io(_)
                    ))
                )
        });
        if stuck {
            tracing::error!(path = %self.path.display(),
                "key-value store: an I/O error stopped it; it is opened again on the next call");
            *current = None;
        }
    }
}

/// Opens (creating if needed) the database file.
pub(super) fn open(path: &Path) -> Result<Arc<KvDatabase>, AppError> {
    let db = Database::create(path).map_err(|e| {
        AppError::Config(format!(
            "cannot open the key-value store {}: {e}",
            path.display()
        ))
    })?;
    Ok(Arc::new(KvDatabase {
        path: path.to_owned(),
        current: Mutex::new(Some(Arc::new(db))),
    }))
}

/// One labelled store in the embedded database.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    db: Arc<KvDatabase>,
    table: Arc<str>,
}

impl EmbeddedStore {
    /// The store `label` in `db`.
    pub fn new(db: Arc<KvDatabase>, label: &str) -> Self {
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
        let (shared, table) = (Arc::clone(&self.db), Arc::clone(&self.table));
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let db = shared.get()?;
                let result = f(&db, TableDefinition::new(&table));
                drop(db);
                if matches!(result, Err(KvError::Unavailable(_))) {
                    shared.check();
                }
                result
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_disk_fails_calls_then_the_store_works_again_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let Some(disk) = test_support::SmallDisk::mount(dir.path(), "16m") else {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return;
        };
        let store = EmbeddedStore::new(open(&disk.path().join("kv.redb")).unwrap(), "default");
        store.set("kept", b"before".to_vec()).await.unwrap();
        // Fill the filesystem, then write until the database has to grow and cannot.
        let filler = disk.fill();
        let mut failed = false;
        for i in 0..2000 {
            if store
                .set(&format!("k{i}"), vec![7u8; 64 * 1024])
                .await
                .is_err()
            {
                failed = true;
                break;
            }
        }
        assert!(failed, "a full disk fails a write");
        std::fs::remove_file(filler).unwrap();
        // Space is back: the store works again, with what it held before.
        let mut recovered = false;
        for _ in 0..3 {
            if store.set("after", b"ok".to_vec()).await.is_ok() {
                recovered = true;
                break;
            }
        }
        assert!(
            recovered,
            "the store took no write once the disk had room again"
        );
        assert_eq!(
            store.get("kept").await.unwrap().as_deref(),
            Some(&b"before"[..])
        );
        assert_eq!(
            store.get("after").await.unwrap().as_deref(),
            Some(&b"ok"[..])
        );
    }
}
