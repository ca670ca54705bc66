//! Write Spindle CloudEvents handler components in Rust.
//!
//! A handler is one function from an [`Event`] to the events it produces. Mark it with
//! [`cloudevents_component`] and build with `cargo build --release --target wasm32-wasip2`;
//! the result is a WebAssembly component that `spindle up` runs, one fresh instance per event,
//! whatever transport (HTTP, NATS, MQTT, AMQP, Kafka) brought the event.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use spindle_sdk::{cloudevents_component, Event, Result};
//!
//! #[derive(Deserialize)]
//! struct Order { id: String, total_cents: u64 }
//!
//! #[derive(Serialize)]
//! struct Invoice { order: String, amount: String }
//!
//! #[cloudevents_component]
//! fn handle(event: Event) -> Result<Option<Event>> {
//!     if event.ty() != "com.example.order.created" {
//!         return Ok(None); // not for us: produce nothing
//!     }
//!     let order: Order = event.json()?; // bad JSON becomes a permanent error
//!     spindle_sdk::log::info("invoicing", &[("order", &order.id)]);
//!     let invoice = Invoice {
//!         order: order.id,
//!         amount: format!("{}.{:02}", order.total_cents / 100, order.total_cents % 100),
//!     };
//!     let reply = Event::new("com.example.invoice.created", "/invoicing").with_json(&invoice)?;
//!     Ok(Some(reply))
//! }
//! ```
//!
//! The return type may be `Result<()>`, `Result<Event>`, `Result<Option<Event>>` or
//! `Result<Vec<Event>>` (anything implementing [`IntoEvents`]). Errors say whether the runtime
//! should retry: [`Error::transient`] (retry later) or [`Error::permanent`] (dead-letter);
//! `?` on any `std::error::Error` gives a permanent error.
//!
//! Besides returning events, a handler can [`publish`] to outputs declared in `spindle.toml`,
//! read [`config`] variables, call granted hosts over [`http`], keep state in granted [`kv`]
//! stores and write structured [`log`] records.
//!
//! The crate also compiles for the host (imports then panic if called), so the pure parts,
//! like [`Event`], can be unit-tested with a plain `cargo test`.

// Lets the generated bindings name this crate by its public path, as user crates do.
extern crate self as spindle_sdk;

mod error;
mod event;
mod extension;
mod id;
mod into_events;
mod outbound;
mod timestamp;

pub mod config;
pub mod http;
pub mod kv;
pub mod log;

pub use error::{Error, ErrorKind, Result};
pub use event::{Event, EventBuilder};
pub use extension::ExtensionValue;
pub use into_events::IntoEvents;
pub use outbound::{PublishError, publish};
pub use spindle_sdk_macros::cloudevents_component;
pub use timestamp::{Timestamp, TimestampError};

/// Bindings generated from the `spindle:cloudevents` WIT package. Not a stable API: use the
/// types above.
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "handler",
        path: "../../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_handler",
        default_bindings_module: "::spindle_sdk::__bindings",
        runtime_path: "::spindle_sdk::__private::wit_bindgen::rt",
    });
}

/// Support for the code `#[cloudevents_component]` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::__bindings::spindle::cloudevents::types as wit;

    /// Runs a user handler on a WIT event and converts its outcome back to WIT.
    pub fn run<T, E, F>(
        event: wit::Event,
        f: F,
    ) -> core::result::Result<Vec<wit::Event>, wit::HandlerError>
    where
        T: crate::IntoEvents,
        E: Into<crate::Error>,
        F: FnOnce(crate::Event) -> core::result::Result<T, E>,
    {
        match f(crate::Event::from_wit(event)) {
            Ok(out) => Ok(out
                .into_events()
                .into_iter()
                .map(crate::Event::into_wit)
                .collect()),
            Err(e) => Err(e.into().into_wit()),
        }
    }
}
