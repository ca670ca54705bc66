//! Idempotency: a subscription (or trigger) with a dedup window takes an event whose
//! (`source`, `id`) it already accepted within the window as already handled. The CloudEvents
//! spec makes that pair unique per distinct event, so a producer's retry, a broker's
//! redelivery or a replayed batch is recognised and acknowledged without a second delivery.
//!
//! The pairs live in the store's `dedup` table (key `subscription NUL source NUL id`, value the
//! acceptance time), written in the same transaction as the queue entry they guard, so the
//! window holds across crashes and restarts. [`prune`] forgets what left the window and keeps
//! each subscription within its `dedupMaxEntries` (oldest forgotten first).

use std::time::Duration;

use cloudevent::Event;
use redb::ReadableTable;

use crate::committer::Batch;

/// The table key of `event` for subscription (or trigger) `id`.
pub(crate) fn key(id: &str, event: &Event) -> String {
    format!("{id}\0{}\0{}", event.source(), event.id())
}

/// The key range of one subscription's entries.
fn range(id: &str) -> (String, String) {
    (format!("{id}\0"), format!("{id}\u{1}"))
}

/// Whether a key accepted at `at_ms` is still within `window` at `now_ms`.
fn within(at_ms: u64, window: Duration, now_ms: u64) -> bool {
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    now_ms.saturating_sub(at_ms) < window_ms
}

/// Whether `key` was accepted within `window` of `now_ms`; if not, records it as accepted
/// now. Returns `true` for a duplicate.
pub(crate) fn check_and_record(
    b: &mut Batch<'_>,
    key: &str,
    window: Duration,
    now_ms: u64,
) -> Result<bool, redb::Error> {
    if seen(b, key, window, now_ms)? {
        return Ok(true);
    }
    b.dedup.insert(key, now_ms)?;
    Ok(false)
}

/// Whether `key` was accepted within `window` of `now_ms`, without recording anything (in a
/// batch; outside one, [`seen_in`]).
pub(crate) fn seen(
    b: &mut Batch<'_>,
    key: &str,
    window: Duration,
    now_ms: u64,
) -> Result<bool, redb::Error> {
    Ok(b.dedup
        .get(key)?
        .is_some_and(|at| within(at.value(), window, now_ms)))
}

/// [`seen`] in a read transaction of `db` (no commit needed).
pub(crate) fn seen_in(
    db: &redb::Database,
    key: &str,
    window: Duration,
    now_ms: u64,
) -> Result<bool, crate::error::Error> {
    use redb::ReadableDatabase;

    use crate::error::store;
    let txn = db.begin_read().map_err(store)?;
    let table = txn.open_table(crate::store::DEDUP).map_err(store)?;
    Ok(table
        .get(key)
        .map_err(store)?
        .is_some_and(|at| within(at.value(), window, now_ms)))
}

/// Forgets one subscription's entries older than `window`, then its oldest ones beyond
/// `max_entries`. Returns how many were forgotten.
pub(crate) fn prune(
    b: &mut Batch<'_>,
    id: &str,
    window: Duration,
    max_entries: u32,
    now_ms: u64,
) -> Result<usize, redb::Error> {
    let (from, to) = range(id);
    let mut kept: Vec<(u64, String)> = Vec::new();
    let mut expired = Vec::new();
    for entry in b.dedup.range(from.as_str()..to.as_str())? {
        let (key, at) = entry?;
        let at = at.value();
        if !within(at, window, now_ms) {
            expired.push(key.value().to_owned());
        } else {
            kept.push((at, key.value().to_owned()));
        }
    }
    let over = kept.len().saturating_sub(max_entries as usize);
    if over > 0 {
        kept.sort_unstable();
        expired.extend(kept.into_iter().take(over).map(|(_, key)| key));
    }
    for key in &expired {
        b.dedup.remove(key.as_str())?;
    }
    Ok(expired.len())
}

/// Forgets every entry of a deleted subscription.
pub(crate) fn forget_all(b: &mut Batch<'_>, id: &str) -> Result<(), redb::Error> {
    let (from, to) = range(id);
    b.dedup
        .retain_in(from.as_str()..to.as_str(), |_, _| false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committer::with_batch;

    fn event(id: &str) -> Event {
        Event::builder()
            .id(id)
            .source("/s")
            .ty("t")
            .build()
            .unwrap()
    }

    #[test]
    fn a_key_is_a_duplicate_within_its_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("db")).unwrap();
        let window = Duration::from_secs(10);
        let k = key("sub", &event("1"));
        with_batch(&db, |b| {
            assert!(!check_and_record(b, &k, window, 1_000)?, "first time");
            assert!(check_and_record(b, &k, window, 5_000)?, "within the window");
            assert!(seen(b, &k, window, 10_999)?);
            assert!(!seen(b, &k, window, 11_000)?, "past the window");
            assert!(
                !seen(b, &key("other", &event("1")), window, 5_000)?,
                "per subscription"
            );
            Ok(())
        });
    }

    #[test]
    fn prune_forgets_the_expired_then_the_oldest_beyond_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("db")).unwrap();
        let window = Duration::from_secs(100);
        with_batch(&db, |b| {
            for (i, at) in [(1, 0), (2, 50_000), (3, 60_000), (4, 70_000)] {
                check_and_record(b, &key("a", &event(&i.to_string())), window, at)?;
            }
            check_and_record(b, &key("b", &event("1")), window, 0)?;
            // At 120 s, event 1 (0 s) is past the window; of 2, 3, 4 two may stay: 3 and 4.
            assert_eq!(prune(b, "a", window, 2, 120_000)?, 2);
            assert!(!seen(b, &key("a", &event("2")), window, 120_000)?);
            assert!(seen(b, &key("a", &event("3")), window, 120_000)?);
            assert!(seen(b, &key("a", &event("4")), window, 120_000)?);
            // Another subscription's entries are untouched; forget_all drops one's all.
            assert!(seen(b, &key("b", &event("1")), window, 99_000)?);
            forget_all(b, "a")?;
            assert!(!seen(b, &key("a", &event("4")), window, 120_000)?);
            assert!(seen(b, &key("b", &event("1")), window, 99_000)?);
            Ok(())
        });
    }
}
