//! Prices an order, answers with `com.example.order.accepted`, and asks for a shipment
//! through the `shipping` output. A malformed order is rejected for good (HTTP 422).

use serde::{Deserialize, Serialize};
use spindle_sdk::{Error, Event, Result, cloudevents_component};

#[derive(Deserialize)]
struct Order {
    id: String,
    items: Vec<Item>,
}

#[derive(Deserialize, Serialize)]
struct Item {
    sku: String,
    quantity: u32,
    unit_price_cents: u64,
}

#[derive(Serialize)]
struct Accepted<'a> {
    order: &'a str,
    total_cents: u64,
    currency: String,
}

#[cloudevents_component]
fn handle(event: Event) -> Result<Option<Event>> {
    if event.ty() != "com.example.order.created" {
        return Ok(None);
    }
    let order: Order = event.json()?;
    if order.items.is_empty() {
        return Err(Error::permanent(format!("order {} has no items", order.id)));
    }
    let total_cents = order
        .items
        .iter()
        .map(|i| u64::from(i.quantity) * i.unit_price_cents)
        .sum();
    let currency = spindle_sdk::config::get("currency").unwrap_or_else(|| "EUR".into());
    spindle_sdk::log::info("order accepted", &[("order", &order.id)]);

    let shipment = Event::new("com.example.shipment.requested", "/orders")
        .with_subject(order.id.clone())
        .with_json(&order.items)?;
    spindle_sdk::publish("shipping", shipment)
        .map_err(|e| Error::transient(format!("cannot request the shipment: {e:?}")))?;

    let accepted = Event::new("com.example.order.accepted", "/orders")
        .with_subject(order.id.clone())
        .with_json(&Accepted { order: &order.id, total_cents, currency })?;
    Ok(Some(accepted))
}
