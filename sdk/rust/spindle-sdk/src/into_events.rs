//! What a handler may return.

use crate::event::Event;

/// Converts a handler's success value into the list of events it produces, so a handler can
/// return whichever shape reads best: nothing, one event, maybe one, or many.
pub trait IntoEvents {
    /// The produced events, in order.
    fn into_events(self) -> Vec<Event>;
}

impl IntoEvents for () {
    fn into_events(self) -> Vec<Event> {
        Vec::new()
    }
}

impl IntoEvents for Event {
    fn into_events(self) -> Vec<Event> {
        vec![self]
    }
}

impl IntoEvents for Option<Event> {
    fn into_events(self) -> Vec<Event> {
        self.into_iter().collect()
    }
}

impl IntoEvents for Vec<Event> {
    fn into_events(self) -> Vec<Event> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = || Event::new("t", "/s");
        assert!(().into_events().is_empty());
        assert_eq!(e().into_events().len(), 1);
        assert!(None::<Event>.into_events().is_empty());
        assert_eq!(vec![e(), e(), e()].into_events().len(), 3);
    }
}
