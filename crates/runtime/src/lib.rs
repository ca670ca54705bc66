//! # spindle-runtime
//!
//! The trigger-agnostic executor and the trigger loops.
//!
//! - [`handler`]: the [`Handler`] trait every way of running a component implements.
//! - [`dispatch`]: the one `dispatch(component, event)` every trigger calls.
//! - [`outputs`]: output bindings, where published and forwarded events go.
//! - [`http`]: the HTTP trigger — CloudEvents webhook receiver (all three content modes, the
//!   abuse-protection handshake, bearer auth) and the raw `wasi:http` path.

pub mod app;
pub mod dispatch;
pub mod handler;
pub mod http;
pub mod outputs;
pub mod wasm;

pub use app::{App, AppError, AppOptions, RouteInfo};
pub use dispatch::{ComponentEntry, DispatchError, Dispatcher};
pub use handler::{BoxFuture, Handler, HandlerError, Publish, PublishError};
pub use outputs::Outputs;
