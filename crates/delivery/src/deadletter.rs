//! Dead letters: events that could not be delivered, kept with why.
//!
//! The reason, attempt count and last status travel as extension attributes of the stored
//! event (`deadletterreason`, `deadletterattempts`, `deadletterstatus`), so a dead letter is
//! a self-describing CloudEvent that `spindle dlq` can print or forward as is. Replaying
//! strips them again.

use std::time::SystemTime;

use cloudevent::{AttributeValue, Event};

use redb::ReadableTable;

use crate::committer::Batch;
use crate::error::Error;
use crate::model::SubscriptionId;
use crate::store::{EntryMeta, StoredDead, decode_dead, encode_entry, from_ms, now_ms};

/// Extension: why the event was given up.
pub const REASON: &str = "deadletterreason";
/// Extension: how many attempts were made.
pub const ATTEMPTS: &str = "deadletterattempts";
/// Extension: the last protocol status (absent when the sink never answered).
pub const STATUS: &str = "deadletterstatus";

/// One dead-lettered event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The subscription it was for.
    pub subscription: SubscriptionId,
    /// Its position, which with the subscription identifies it for replay and purge.
    pub seq: u64,
    /// The event, annotated with the `deadletter*` extensions.
    pub event: Event,
    /// Why it was given up.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// Last protocol status, if any.
    pub status: Option<u16>,
    /// When it was given up.
    pub dead_at: SystemTime,
}

/// Which dead letters a replay or purge applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterSelector {
    /// Every dead letter.
    All,
    /// Every dead letter of one subscription.
    Subscription(SubscriptionId),
    /// One dead letter.
    One(SubscriptionId, u64),
}

/// Gives up on `event` for `subscription`: logs why, and returns the dead letter as stored
/// (the event annotated with the reason, attempts and last status). Shared by the worker and
/// the outbox's direct path, so a dead letter looks the same whichever attempt ended it.
pub(crate) fn abandon(
    subscription: &SubscriptionId,
    sink: &str,
    event: &Event,
    reason: &str,
    attempts: u32,
    status: Option<u16>,
) -> Vec<u8> {
    tracing::error!(
        subscription = %subscription, event = event.id(), sink, attempts, status = ?status,
        "delivery abandoned, dead-lettered: {reason}"
    );
    metrics::metrics()
        .dead_letters
        .get_or_create(&metrics::SubscriptionLabels {
            subscription: subscription.as_str().to_owned(),
        })
        .inc();
    let mut event = event.clone();
    annotate(&mut event, reason, attempts, status);
    crate::store::encode_dead(now_ms(), &cloudevent::json::encode(&event))
}

/// Adds the `deadletter*` extensions to an event. Control characters in the reason (from
/// error messages) are replaced, as CloudEvents strings may not contain them.
pub(crate) fn annotate(event: &mut Event, reason: &str, attempts: u32, status: Option<u16>) {
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
    // Names are valid and values well typed, so these cannot fail.
    let _ = event.set_extension(REASON, AttributeValue::String(reason));
    let _ = event.set_extension(ATTEMPTS, AttributeValue::Integer(attempts));
    match status {
        Some(s) => {
            let _ = event.set_extension(STATUS, AttributeValue::Integer(i32::from(s)));
        }
        None => {
            event.remove_extension(STATUS);
        }
    }
}

/// Removes the `deadletter*` extensions, giving back the event as it was accepted.
pub(crate) fn strip(event: &mut Event) {
    event.remove_extension(REASON);
    event.remove_extension(ATTEMPTS);
    event.remove_extension(STATUS);
}

impl DeadLetter {
    /// Rebuilds a dead letter from its stored row.
    pub(crate) fn from_stored(row: StoredDead) -> Result<Self, Error> {
        let event = cloudevent::json::decode(&row.json)
            .map_err(|e| Error::Corrupt(format!("dead letter {}/{}: {e}", row.sub, row.seq)))?;
        let reason = match event.extension(REASON) {
            Some(AttributeValue::String(s)) => s.clone(),
            _ => String::new(),
        };
        let int = |name| match event.extension(name) {
            Some(AttributeValue::Integer(i)) => Some(*i),
            _ => None,
        };
        let attempts = int(ATTEMPTS)
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(0);
        let status = int(STATUS).and_then(|i| u16::try_from(i).ok());
        Ok(DeadLetter {
            subscription: SubscriptionId::new(row.sub),
            seq: row.seq,
            reason,
            attempts,
            status,
            dead_at: from_ms(row.dead_ms),
            event,
        })
    }
}

/// Most dead letters one replay or purge step touches: each step is one job of a group
/// commit, so a big dead-letter queue is worked through in steps that interleave with ingest
/// instead of one transaction that stalls it.
pub(crate) const CHUNK: usize = 512;

/// Where a chunked replay or purge has got to: the last (subscription, sequence) it looked
/// at, so the next step starts after it (rows it skipped are not looked at again), and the
/// first sequence it must not touch: letters dead-lettered after the first step began (a
/// replayed event failing again) are left for the next replay, which would otherwise chase
/// its own tail.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cursor {
    after: Option<(String, u64)>,
    below: Option<u64>,
}

/// What one step did: how many rows it changed, where the next one starts (`None` once there
/// is nothing more to look at) and, for replays, the subscriptions to wake.
pub(crate) struct Step {
    /// Rows replayed or purged.
    pub count: usize,
    /// Where the next step starts; `None` when done.
    pub next: Option<Cursor>,
    /// Subscriptions that got entries back.
    pub touched: Vec<String>,
}

/// A dead-letter row: subscription, sequence, stored value.
type Row = (String, u64, Vec<u8>);

/// Up to [`CHUNK`] selected dead-letter rows after the cursor, as (subscription, sequence,
/// value), and the cursor of the next step, if there may be more.
fn selected(
    b: &Batch<'_>,
    selector: &DeadLetterSelector,
    cursor: &Cursor,
) -> Result<(Vec<Row>, Option<Cursor>), redb::Error> {
    let below = cursor.below.unwrap_or_else(|| b.peek_seq());
    let mut out = Vec::new();
    let mut scanned = 0usize;
    let mut last = None;
    let mut take = |k: (&str, u64), v: &[u8]| {
        scanned += 1;
        last = Some((k.0.to_owned(), k.1));
        if k.1 < below {
            out.push((k.0.to_owned(), k.1, v.to_vec()));
        }
    };
    let after = cursor.after.as_ref();
    match selector {
        DeadLetterSelector::All => {
            let rows = match after {
                Some((sub, seq)) => b.dead().range((sub.as_str(), seq.saturating_add(1))..)?,
                None => b.dead().iter()?,
            };
            for row in rows.take(CHUNK) {
                let (k, v) = row?;
                take(k.value(), v.value());
            }
        }
        DeadLetterSelector::Subscription(id) => {
            let id = id.as_str();
            let from = after.map_or(0, |(_, seq)| seq.saturating_add(1));
            for row in b.dead().range((id, from)..=(id, u64::MAX))?.take(CHUNK) {
                let (k, v) = row?;
                take(k.value(), v.value());
            }
        }
        DeadLetterSelector::One(id, seq) => {
            if let Some(v) = b.dead().get((id.as_str(), *seq))? {
                take((id.as_str(), *seq), v.value());
            }
            return Ok((out, None));
        }
    }
    let next = (scanned >= CHUNK).then_some(Cursor {
        after: last,
        below: Some(below),
    });
    Ok((out, next))
}

/// One step of moving the selected dead letters back to the outbox, at the back of their
/// queues, with the attempt count and age reset (see [`CHUNK`]).
pub(crate) fn replay(
    b: &mut Batch<'_>,
    selector: &DeadLetterSelector,
    cursor: &Cursor,
) -> Result<Step, redb::Error> {
    let now = now_ms();
    let meta = EntryMeta {
        attempts: 0,
        first_ms: now,
        next_ms: now,
    };
    let (rows, next) = selected(b, selector, cursor)?;
    let mut count = 0;
    let mut touched: Vec<String> = Vec::new();
    for (sub, seq, value) in rows {
        if !b.subscription_exists(&sub)? {
            continue;
        }
        let event = decode_dead(&value)
            .ok()
            .and_then(|(_, json)| cloudevent::json::decode(json).ok());
        let Some(mut event) = event else {
            tracing::error!(subscription = %sub, seq, "undecodable dead letter not replayed");
            continue;
        };
        strip(&mut event);
        let entry = encode_entry(meta, &cloudevent::json::encode(&event));
        let new_seq = b.next_seq();
        b.put_queued(sub.as_str(), new_seq, entry.as_slice())?;
        b.remove_dead(sub.as_str(), seq)?;
        tracing::info!(subscription = %sub, event = event.id(), "dead letter replayed");
        count += 1;
        if !touched.contains(&sub) {
            touched.push(sub);
        }
    }
    Ok(Step {
        count,
        next,
        touched,
    })
}

/// One step of deleting the selected dead letters (see [`CHUNK`]).
pub(crate) fn purge(
    b: &mut Batch<'_>,
    selector: &DeadLetterSelector,
    cursor: &Cursor,
) -> Result<Step, redb::Error> {
    let (rows, next) = selected(b, selector, cursor)?;
    for (sub, seq, _) in &rows {
        b.remove_dead(sub.as_str(), *seq)?;
    }
    Ok(Step {
        count: rows.len(),
        next,
        touched: Vec::new(),
    })
}

/// One step of deleting the dead letters of `sub` dead-lettered before `cutoff_ms` (their
/// retention ran out): looks at up to [`CHUNK`] letters after `after` and returns how many it
/// deleted and where the next step starts (`None` when done). Letters are keyed by the
/// sequence they were queued with, not by when they died, so every letter is looked at.
pub(crate) fn expire(
    b: &mut Batch<'_>,
    sub: &str,
    cutoff_ms: u64,
    after: Option<u64>,
) -> Result<(usize, Option<u64>), redb::Error> {
    let from = after.map_or(0, |seq| seq.saturating_add(1));
    let mut expired = Vec::new();
    let mut scanned = 0;
    let mut last = None;
    for row in b.dead().range((sub, from)..=(sub, u64::MAX))?.take(CHUNK) {
        let (k, v) = row?;
        let seq = k.value().1;
        scanned += 1;
        last = Some(seq);
        if decode_dead(v.value()).is_ok_and(|(dead_ms, _)| dead_ms < cutoff_ms) {
            expired.push(seq);
        }
    }
    for seq in &expired {
        b.remove_dead(sub, *seq)?;
    }
    Ok((expired.len(), last.filter(|_| scanned >= CHUNK)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_round_trip_through_json() {
        let mut event = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        let original = event.clone();
        annotate(&mut event, "HTTP 400 Bad Request:\nno", 3, Some(400));
        let json = cloudevent::json::encode(&event);
        let letter = DeadLetter::from_stored(StoredDead {
            sub: "s".into(),
            seq: 9,
            dead_ms: 5,
            json,
        })
        .unwrap();
        assert_eq!(letter.reason, "HTTP 400 Bad Request: no");
        assert_eq!(letter.attempts, 3);
        assert_eq!(letter.status, Some(400));
        let mut event = letter.event;
        strip(&mut event);
        assert_eq!(event, original);
    }
}
