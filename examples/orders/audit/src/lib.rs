//! Keeps an audit trail: logs every event it is given. It has no route of its own; it gets
//! events through a subscription whose sink is `component:audit` (see the demo script).

use spindle_sdk::{Event, Result, cloudevents_component};

#[cloudevents_component]
fn handle(event: Event) -> Result<()> {
    spindle_sdk::log::info(
        "audit",
        &[
            ("type", event.ty()),
            ("id", event.id()),
            ("subject", event.subject().unwrap_or("-")),
        ],
    );
    Ok(())
}
