//! Loop protection: every event an app emits (a result, a published event) carries how many
//! handlers it has passed through, in the `spindlehops` extension, one more than the event
//! that led to it. Two components subscribed to each other's results, or two apps whose
//! sinks point at each other, would otherwise pass the same event back and forth forever;
//! past [`Delivery::set_max_hops`](crate::Delivery::set_max_hops) (default
//! [`DEFAULT_MAX_HOPS`]) an event is not delivered but dead-lettered under the subscription
//! that would have carried it, with a reason naming the loop.
//!
//! The count travels with the event like any extension, so it survives a hop through a
//! broker or another Spindle app.

use cloudevent::{AttributeValue, Event};

/// The extension attribute holding the hop count.
pub const HOPS_EXTENSION: &str = "spindlehops";

/// How many handlers an event may have passed through by default.
pub const DEFAULT_MAX_HOPS: u32 = 32;

/// The hop count of `event`: its `spindlehops` (an integer, or a string holding one), or 0.
pub fn hops(event: &Event) -> u32 {
    match event.extension(HOPS_EXTENSION) {
        Some(AttributeValue::Integer(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AttributeValue::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// The hop count of what a handler emits while handling `input`: one more.
pub fn next_hop(input: &Event) -> u32 {
    hops(input).saturating_add(1)
}

/// Sets the hop count of `event` (an event emitted at hop `n`, see [`next_hop`]).
pub fn set_hops(event: &mut Event, n: u32) {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    // The name and an integer value are always valid, so this cannot fail.
    let _ = event.set_extension(HOPS_EXTENSION, AttributeValue::Integer(n));
}

/// The dead-letter reason of an event past `max` hops.
pub(crate) fn loop_reason(event: &Event, max: u32) -> String {
    format!(
        "loop protection: the event has passed through {} handlers ({HOPS_EXTENSION}), more than the limit of {max}; look for subscriptions or sinks that feed each other",
        hops(event)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_one_hop_further() {
        let parent = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        assert_eq!(hops(&parent), 0);
        let mut child = parent.clone();
        set_hops(&mut child, next_hop(&parent));
        assert_eq!(hops(&child), 1);
        let mut grandchild = child.clone();
        set_hops(&mut grandchild, next_hop(&child));
        assert_eq!(hops(&grandchild), 2);
        let mut text = parent.clone();
        text.set_extension(HOPS_EXTENSION, AttributeValue::String("7".into()))
            .unwrap();
        assert_eq!(hops(&text), 7);
    }
}
