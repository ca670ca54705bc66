//! Prices an order, answers with `com.example.order.accepted`, and asks for a shipment
//! through the `shipping` output. A malformed order is rejected for good (HTTP 422).
//!
//! It also calls out while it handles the order: the exchange rate of the order's currency
//! comes from the `rates` service over outbound HTTP (`spindle_sdk::http`), and the number of
//! orders accepted so far from a counter in the key-value store (`spindle_sdk::kv`).

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
    /// EUR per unit of `currency`, from the rates service.
    eur_rate: String,
    /// How many orders this app has accepted, this one included.
    accepted_count: i64,
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
    let rates = spindle_sdk::config::get("rates_url")
        .ok_or_else(|| Error::permanent("the rates_url variable is not set"))?;
    let eur_rate = spindle_sdk::http::get(format!("{rates}/{currency}"))
        .and_then(|r| r.error_for_status())
        .map_err(spindle_sdk::http::HttpError::into_error)?
        .text()?;
    let accepted_count = spindle_sdk::kv::Store::open_default()
        .and_then(|store| store.increment("orders-accepted", 1))
        .map_err(spindle_sdk::kv::Error::into_error)?;
    spindle_sdk::log::info(
        "order accepted",
        &[("order", &order.id), ("count", &accepted_count.to_string())],
    );

    let shipment = Event::new("com.example.shipment.requested", "/orders")
        .with_subject(order.id.clone())
        .with_json(&order.items)?;
    spindle_sdk::publish("shipping", shipment)
        .map_err(|e| Error::transient(format!("cannot request the shipment: {e:?}")))?;

    let accepted = Event::new("com.example.order.accepted", "/orders")
        .with_subject(order.id.clone())
        .with_json(&Accepted {
            order: &order.id,
            total_cents,
            currency,
            eur_rate,
            accepted_count,
        })?;
    Ok(Some(accepted))
}
