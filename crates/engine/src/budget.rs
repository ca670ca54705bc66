//! What one event's guest may hand the host: bounded, so a hostile or buggy handler fails its
//! own event instead of exhausting the host's memory or flooding its logs.
//!
//! - published events and results: at most [`MAX_OUTPUT_EVENTS`] of each and
//!   [`MAX_OUTPUT_BYTES`] of both together; past it the event fails with
//!   [`crate::HandleError::LimitExceeded`] (a publish over the limit is also refused to the
//!   guest at once);
//! - log records: at most [`MAX_LOG_RECORDS`] per event, each cut to [`MAX_LOG_BYTES`]; the
//!   rest are dropped with one warning, and the event goes on.

use crate::bindings::wit::{AttributeValue, Event};

/// The most events one call may publish, and the most results it may return.
pub const MAX_OUTPUT_EVENTS: usize = 1000;
/// The most bytes (attributes and data) one call may publish and return, all together.
pub const MAX_OUTPUT_BYTES: usize = 32 << 20;
/// The most log records one call may write; later ones are dropped.
pub const MAX_LOG_RECORDS: u32 = 100;
/// The longest log record (message and fields) kept; the rest is cut.
pub const MAX_LOG_BYTES: usize = 8 << 10;

/// What one call has produced so far.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    published: usize,
    bytes: usize,
    logs: u32,
    /// Why the call must fail, once it went over a limit.
    exceeded: Option<String>,
}

/// The bytes an event holds: its attributes and its data.
pub(crate) fn event_size(e: &Event) -> usize {
    let optional = [&e.datacontenttype, &e.dataschema, &e.subject, &e.time]
        .iter()
        .map(|v| v.as_ref().map_or(0, String::len))
        .sum::<usize>();
    let extensions = e
        .extensions
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::Boolean(_) | AttributeValue::Integer(_) => 8,
                    AttributeValue::Binary(b) => b.len(),
                    AttributeValue::String(s)
                    | AttributeValue::Uri(s)
                    | AttributeValue::UriRef(s)
                    | AttributeValue::Timestamp(s) => s.len(),
                }
        })
        .sum::<usize>();
    e.id.len()
        + e.source.len()
        + e.specversion.len()
        + e.type_.len()
        + optional
        + extensions
        + e.data.as_ref().map_or(0, Vec::len)
}

impl Budget {
    /// Counts one published event; `Err` (and the call fails) when it goes over a limit.
    pub(crate) fn publish(&mut self, event: &Event) -> Result<(), String> {
        self.published += 1;
        self.bytes = self.bytes.saturating_add(event_size(event));
        if self.published > MAX_OUTPUT_EVENTS {
            return Err(self.exceed(format!("published more than {MAX_OUTPUT_EVENTS} events")));
        }
        if self.bytes > MAX_OUTPUT_BYTES {
            return Err(self.exceed(format!(
                "published and returned more than {MAX_OUTPUT_BYTES} bytes of events"
            )));
        }
        Ok(())
    }

    /// Checks the results a call returned, on top of what it published.
    pub(crate) fn results(&mut self, results: &[Event]) -> Result<(), String> {
        if results.len() > MAX_OUTPUT_EVENTS {
            return Err(self.exceed(format!(
                "returned {} events, more than {MAX_OUTPUT_EVENTS}",
                results.len()
            )));
        }
        let bytes = results.iter().map(event_size).sum::<usize>();
        if self.bytes.saturating_add(bytes) > MAX_OUTPUT_BYTES {
            return Err(self.exceed(format!(
                "published and returned more than {MAX_OUTPUT_BYTES} bytes of events"
            )));
        }
        Ok(())
    }

    /// Whether one more log record may be written: `Some(true)` yes, `Some(false)` no and this
    /// is the first one dropped (warn once), `None` no (already warned).
    pub(crate) fn log(&mut self) -> Option<bool> {
        self.logs = self.logs.saturating_add(1);
        match self.logs {
            n if n <= MAX_LOG_RECORDS => Some(true),
            n if n == MAX_LOG_RECORDS + 1 => Some(false),
            _ => None,
        }
    }

    /// The reason the call failed a limit, if it did.
    pub(crate) fn exceeded(&self) -> Option<&str> {
        self.exceeded.as_deref()
    }

    fn exceed(&mut self, why: String) -> String {
        self.exceeded.get_or_insert(why).clone()
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
pub(crate) fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold() {
        let mut b = Budget::default();
        let e = crate::event::tests::guest_event(Vec::new());
        for _ in 0..MAX_OUTPUT_EVENTS {
            b.publish(&e).unwrap();
        }
        assert!(b.publish(&e).is_err());
        assert!(b.exceeded().unwrap().contains("published more than"));
        let mut b = Budget::default();
        let big = Event {
            data: Some(vec![0; MAX_OUTPUT_BYTES]),
            ..crate::event::tests::guest_event(Vec::new())
        };
        assert!(b.publish(&big).is_err());
        let mut b = Budget::default();
        for _ in 0..MAX_LOG_RECORDS {
            assert_eq!(b.log(), Some(true));
        }
        assert_eq!(b.log(), Some(false));
        assert_eq!(b.log(), None);
        assert_eq!(truncate("héllo", 2), "h… (5 bytes cut)");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
