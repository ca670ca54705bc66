//! Returns the event it receives: the smallest useful handler (tests and the benchmark).

use spindle_sdk::{Event, Result, cloudevents_component};

#[cloudevents_component]
fn handle(event: Event) -> Result<Event> {
    Ok(event)
}
