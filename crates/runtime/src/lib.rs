//! # spindle-runtime
//!
//! The trigger-agnostic executor and the trigger loops.
//!
//! - [`handler`]: the [`Handler`] trait every way of running a component implements.
//! - [`dispatch`]: the one `dispatch(component, event)` every trigger calls.
//! - [`outputs`]: output bindings, as queues of the delivery engine.
//! - [`routing`]: where events go on — matched subscriptions and output bindings, through
//!   the durable outbox.
//! - [`brokers`]: the NATS, MQTT, AMQP and Kafka trigger loops.
//! - [`subscriber`]: components as subscribers (`component:<id>` sinks).
//! - [`kv`]: the key-value stores components are granted (embedded, Redis).
//! - [`http`]: the HTTP trigger — CloudEvents webhook receiver (all three content modes, the
//!   abuse-protection handshake, bearer auth) and the raw `wasi:http` path.

pub mod app;
pub mod brokers;
pub mod contract;
mod dedup;
pub mod dispatch;
pub mod handler;
pub mod http;
pub mod kv;
pub mod outputs;
pub mod remote;
pub mod routing;
pub mod subscriber;
pub mod telemetry;
pub mod wasm;

pub use app::{App, AppError, AppOptions, RouteInfo};
pub use dispatch::{ComponentEntry, DispatchError, Dispatcher, ProcessError};
pub use handler::{BoxFuture, Handler, HandlerError, Publish, PublishError};
pub use routing::{Deliveries, Router};
