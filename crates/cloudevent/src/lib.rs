//! # spindle-cloudevent
//!
//! The CloudEvents 1.0 event model and its wire forms, as pure functions: no sockets, no
//! async, no global state. Everything in Spindle passes through [`Event`], so this crate is
//! strict (every event it hands out is valid) and fast (payloads are shared, not copied).
//!
//! - [`Event`], [`EventBuilder`], [`AttributeValue`]: the model and the CloudEvents type system.
//! - [`json`], [`protobuf`], [`avro`]: the event formats ([`Format`] picks one by name or media
//!   type); JSON and Protobuf have batch formats too.
//! - [`http`]: the HTTP binding, binary, structured and batched modes.
//! - [`nats`], [`mqtt`], [`amqp`], [`kafka`]: the broker bindings, binary and structured modes.
//! - [`header`]: the percent-encoding of header values shared by header-based bindings.
//!
//! ```
//! use cloudevent::{Data, Event, http};
//!
//! let event = Event::builder()
//!     .id("42")
//!     .source("/shop")
//!     .ty("com.example.order.created")
//!     .data_with_type("application/json", Data::json(&serde_json::json!({"sku": "A1"})))
//!     .build()?;
//! let message = http::encode_binary(&event);
//! assert_eq!(message.headers["ce-type"], "com.example.order.created");
//! let back = http::decode(&message.headers, message.body)?.into_events().remove(0);
//! assert_eq!(back, event);
//! # Ok::<(), cloudevent::Error>(())
//! ```

pub mod amqp;
pub mod attribute;
pub mod avro;
mod content_mode;
mod data;
mod error;
mod event;
pub mod format;
pub mod header;
pub mod http;
pub mod json;
pub mod kafka;
pub mod media;
pub mod mqtt;
pub mod nats;
pub mod protobuf;
pub mod receiver;
mod wit;

pub use attribute::{AttributeType, AttributeValue, Timestamp, ValueError};
pub use content_mode::ContentMode;
pub use data::{Data, DataKind};
pub use error::{Error, Problem};
pub use event::{
    AttributeRef, CORE_ATTRIBUTES, Event, EventBuilder, SPEC_VERSION, core_attribute_type,
};
pub use format::Format;
