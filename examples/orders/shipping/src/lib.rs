//! Books a shipment for every `com.example.shipment.requested` event.

use spindle_sdk::{Event, Result, cloudevents_component};

#[cloudevents_component]
fn handle(event: Event) -> Result<()> {
    if event.ty() == "com.example.shipment.requested" {
        let order = event.subject().unwrap_or("?");
        spindle_sdk::log::info("shipment booked", &[("order", order)]);
    }
    Ok(())
}
