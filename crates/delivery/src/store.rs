//! The embedded database: one redb file in the state directory, its tables, and the byte
//! layout of the records. Writes go through the [`committer`](crate::committer) only; reads
//! (worker refills, listings) open their own snapshot here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Error, store};
use crate::model::{Subscription, SubscriptionId};
use crate::schema::{self, SCHEMA_KEY, SCHEMA_VERSION};

/// The database file name inside the state directory.
pub const DB_FILE: &str = "delivery.redb";

/// Subscriptions by id, as [`schema`] records.
pub(crate) const SUBSCRIPTIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("subscriptions");
/// Pending deliveries by (subscription, sequence): the sequence orders each queue.
pub(crate) const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
/// Dead letters by (subscription, sequence).
pub(crate) const DEAD_LETTERS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("dead_letters");
/// Counters (`next_seq`) and the store schema version.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Deduplication: `subscription` NUL `source` NUL `id` -> when it was accepted (ms since the
/// epoch), see [`crate::dedup`]. Only subscriptions with a dedup window have entries.
pub(crate) const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("dedup");
/// The key of the sequence counter in [`META`].
pub(crate) const NEXT_SEQ: &str = "next_seq";

/// Record layout version, first byte of every outbox and dead-letter value.
const VERSION: u8 = 1;
/// Outbox header: version, attempts (u32), first accepted (u64 ms), next attempt (u64 ms).
const ENTRY_HEADER: usize = 1 + 4 + 8 + 8;
/// Dead-letter header: version, dead-lettered at (u64 ms).
const DEAD_HEADER: usize = 1 + 8;

/// The open database, which the committer may close and open again.
///
/// After one I/O error (a full disk, a failing device) redb refuses every later operation
/// until the file is closed and opened again, and it can only be opened again once every
/// handle to the old one is gone. Readers therefore take the database for one read at a time
/// ([`SharedDb::get`]) and never keep it; while it is out for reopening they get
/// [`Error::Recovering`], which callers turn into "try again" (HTTP `503`, a broker nak).
pub(crate) struct SharedDb {
    dir: PathBuf,
    current: RwLock<Option<Arc<Database>>>,
}

impl SharedDb {
    /// Shares `db`, opened from `dir`.
    pub fn new(dir: PathBuf, db: Database) -> Self {
        SharedDb {
            dir,
            current: RwLock::new(Some(Arc::new(db))),
        }
    }

    /// The database for one read or write; [`Error::Recovering`] while it is being reopened.
    pub fn get(&self) -> Result<Arc<Database>, Error> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(Error::Recovering)
    }

    /// Takes the database out, so that new readers wait (get `Recovering`) and the old
    /// handle can be dropped once the readers that have it are done.
    pub fn take(&self) -> Option<Arc<Database>> {
        self.current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Puts a (re)opened database back.
    pub fn put(&self, db: Database) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(db));
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes free for this process on the state directory's filesystem.
    pub fn free_bytes(&self) -> Result<u64, std::io::Error> {
        let stats = rustix::fs::statvfs(&self.dir)?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

/// Below this much free space on the state directory's filesystem, readiness turns red: the
/// next writes that need the file to grow will fail.
pub(crate) const MIN_FREE_BYTES: u64 = 8 * 1024 * 1024;

/// Whether a store error means the file must be closed and opened again before anything
/// else can succeed (see [`SharedDb`]).
pub(crate) fn needs_reopen(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo)
}

/// Opens (or creates) the database and its tables, returning it with the next free sequence.
/// A store of an older schema is upgraded in place (one transaction); one of a newer schema is
/// refused with [`Error::NewerSchema`] before anything is written.
pub(crate) fn open(dir: &Path) -> Result<(Database, u64), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::StateDir {
        path: dir.to_owned(),
        source: e.into(),
    })?;
    let db = Database::create(dir.join(DB_FILE)).map_err(store)?;
    let txn = db.begin_write().map_err(store)?;
    let next_seq = {
        let mut subscriptions = txn.open_table(SUBSCRIPTIONS).map_err(store)?;
        txn.open_table(OUTBOX).map_err(store)?;
        txn.open_table(DEAD_LETTERS).map_err(store)?;
        txn.open_table(DEDUP).map_err(store)?;
        let mut meta = txn.open_table(META).map_err(store)?;
        let found = meta.get(SCHEMA_KEY).map_err(store)?.map(|v| v.value());
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::NewerSchema {
                    what: format!("{} has schema version {v}", dir.join(DB_FILE).display()),
                    supported: SCHEMA_VERSION,
                });
            }
            Some(SCHEMA_VERSION) => {}
            older => {
                let upgraded = upgrade_subscriptions(&mut subscriptions)?;
                if upgraded > 0 {
                    tracing::info!(
                        from = older.unwrap_or(1),
                        to = SCHEMA_VERSION,
                        subscriptions = upgraded,
                        "upgraded the state store"
                    );
                }
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION).map_err(store)?;
            }
        }
        meta.get(NEXT_SEQ)
            .map_err(store)?
            .map(|v| v.value())
            .unwrap_or(1)
    };
    txn.commit().map_err(store)?;
    Ok((db, next_seq))
}

/// Rewrites every subscription in the current record layout (schema 1 stored the API's
/// JSON); returns how many were rewritten.
fn upgrade_subscriptions(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
) -> Result<usize, Error> {
    let mut rewritten = Vec::new();
    for row in table.iter().map_err(store)? {
        let (k, v) = row.map_err(store)?;
        let sub = schema::decode_subscription(k.value(), v.value())?;
        rewritten.push((k.value().to_owned(), schema::encode_subscription(&sub)));
    }
    for (key, bytes) in &rewritten {
        table
            .insert(key.as_str(), bytes.as_slice())
            .map_err(store)?;
    }
    Ok(rewritten.len())
}

/// The error for an outbox or dead-letter value that is not of record version [`VERSION`].
fn unknown_record(what: &str, v: &[u8]) -> Error {
    match v.first() {
        Some(&version) if version > VERSION => Error::NewerSchema {
            what: format!("{what} has record version {version}"),
            supported: u64::from(VERSION),
        },
        _ => Error::Corrupt(format!("{what} header")),
    }
}

/// Milliseconds since the Unix epoch: wall-clock, because schedules must survive restarts.
pub(crate) fn now_ms() -> u64 {
    to_ms(SystemTime::now())
}

/// A time as milliseconds since the Unix epoch.
pub(crate) fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch as a time.
pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The bookkeeping of one pending delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryMeta {
    /// Attempts made so far.
    pub attempts: u32,
    /// When the event was accepted (ms), for the age limit.
    pub first_ms: u64,
    /// Not before (ms).
    pub next_ms: u64,
}

/// Encodes an outbox value: header then the event in the JSON format.
pub(crate) fn encode_entry(meta: EntryMeta, json: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ENTRY_HEADER + json.len());
    v.push(VERSION);
    v.extend_from_slice(&meta.attempts.to_le_bytes());
    v.extend_from_slice(&meta.first_ms.to_le_bytes());
    v.extend_from_slice(&meta.next_ms.to_le_bytes());
    v.extend_from_slice(json);
    v
}

/// Decodes an outbox value into its header and event JSON.
pub(crate) fn decode_entry(v: &[u8]) -> Result<(EntryMeta, &[u8]), Error> {
    if v.len() < ENTRY_HEADER || v[0] != VERSION {
        return Err(unknown_record("an outbox entry", v));
    }
    let u32_at = |i: usize| u32::from_le_bytes(v[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().unwrap_or_default());
    Ok((
        EntryMeta {
            attempts: u32_at(1),
            first_ms: u64_at(5),
            next_ms: u64_at(13),
        },
        &v[ENTRY_HEADER..],
    ))
}

/// Rewrites the header of an outbox value in place, keeping the event.
pub(crate) fn set_entry_meta(v: &mut [u8], meta: EntryMeta) {
    v[1..5].copy_from_slice(&meta.attempts.to_le_bytes());
    v[5..13].copy_from_slice(&meta.first_ms.to_le_bytes());
    v[13..21].copy_from_slice(&meta.next_ms.to_le_bytes());
}

/// Encodes a dead-letter value: header then the annotated event in the JSON format.
pub(crate) fn encode_dead(dead_ms: u64, json: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(DEAD_HEADER + json.len());
    v.push(VERSION);
    v.extend_from_slice(&dead_ms.to_le_bytes());
    v.extend_from_slice(json);
    v
}

/// Decodes a dead-letter value into its time (ms) and event JSON.
pub(crate) fn decode_dead(v: &[u8]) -> Result<(u64, &[u8]), Error> {
    if v.len() < DEAD_HEADER || v[0] != VERSION {
        return Err(unknown_record("a dead letter", v));
    }
    let ms = u64::from_le_bytes(v[1..9].try_into().unwrap_or_default());
    Ok((ms, &v[DEAD_HEADER..]))
}

/// Loads every stored subscription.
pub(crate) fn load_subscriptions(db: &Database) -> Result<Vec<Subscription>, Error> {
    let txn = db.begin_read().map_err(store)?;
    let table = txn.open_table(SUBSCRIPTIONS).map_err(store)?;
    let mut subs = Vec::new();
    for row in table.iter().map_err(store)? {
        let (k, v) = row.map_err(store)?;
        subs.push(schema::decode_subscription(k.value(), v.value())?);
    }
    Ok(subs)
}

/// One pending delivery as read back from the outbox.
pub(crate) struct StoredEntry {
    /// Its sequence (key within the subscription's queue).
    pub seq: u64,
    /// Bookkeeping.
    pub meta: EntryMeta,
    /// The event, JSON format.
    pub json: Vec<u8>,
}

/// Reads up to `limit` entries of a subscription's queue with sequence `>= from`, in order.
pub(crate) fn read_outbox(
    db: &Database,
    sub: &SubscriptionId,
    from: u64,
    limit: usize,
) -> Result<Vec<StoredEntry>, Error> {
    let txn = db.begin_read().map_err(store)?;
    let table = txn.open_table(OUTBOX).map_err(store)?;
    let mut out = Vec::new();
    let id = sub.as_str();
    for row in table.range((id, from)..=(id, u64::MAX)).map_err(store)? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row.map_err(store)?;
        let (meta, json) = decode_entry(v.value())?;
        out.push(StoredEntry {
            seq: k.value().1,
            meta,
            json: json.to_vec(),
        });
    }
    Ok(out)
}

/// A raw dead-letter row.
pub(crate) struct StoredDead {
    /// The subscription.
    pub sub: String,
    /// Its sequence.
    pub seq: u64,
    /// When it was dead-lettered (ms).
    pub dead_ms: u64,
    /// The annotated event, JSON format.
    pub json: Vec<u8>,
}

/// Reads dead letters, of one subscription or of all, oldest first per subscription.
pub(crate) fn read_dead(
    db: &Database,
    sub: Option<&SubscriptionId>,
    limit: usize,
) -> Result<Vec<StoredDead>, Error> {
    let txn = db.begin_read().map_err(store)?;
    let table = txn.open_table(DEAD_LETTERS).map_err(store)?;
    let rows = match sub {
        Some(sub) => table
            .range((sub.as_str(), 0)..=(sub.as_str(), u64::MAX))
            .map_err(store)?,
        None => table.iter().map_err(store)?,
    };
    let mut out = Vec::new();
    for row in rows {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row.map_err(store)?;
        let (sub, seq) = k.value();
        let (dead_ms, json) = decode_dead(v.value())?;
        out.push(StoredDead {
            sub: sub.to_owned(),
            seq,
            dead_ms,
            json: json.to_vec(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_header_round_trips() {
        let meta = EntryMeta {
            attempts: 7,
            first_ms: 1_700_000_000_000,
            next_ms: 1_700_000_000_500,
        };
        let mut v = encode_entry(meta, b"{}");
        assert_eq!(decode_entry(&v).unwrap(), (meta, &b"{}"[..]));
        let later = EntryMeta {
            attempts: 8,
            ..meta
        };
        set_entry_meta(&mut v, later);
        assert_eq!(decode_entry(&v).unwrap().0, later);
        assert!(decode_entry(&v[..5]).is_err());
        let d = encode_dead(42, b"{}");
        assert_eq!(decode_dead(&d).unwrap(), (42, &b"{}"[..]));
    }
}
