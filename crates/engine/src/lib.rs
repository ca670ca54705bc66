//! The wasmtime host that runs Spindle's CloudEvents handler components.
//!
//! A component implements the `spindle:cloudevents/handler` world (see `wit/` at the
//! repository root), and the engine speaks the core event (`cloudevent::Event`), converting it
//! to and from the WIT record at the call (and checking what comes back): it exports `handle(event) -> result<list<event>, handler-error>` and never
//! learns which transport brought the event. This crate knows nothing of transports either: the
//! runtime decodes an event, calls [`Handler::handle`], and routes what comes back.
//!
//! Isolation is the point of the design:
//! - **a fresh instance per event** (pooling allocator, copy-on-write memory images, a
//!   pre-linked [`wasmtime::component::InstancePre`] and stores that serve a few events in
//!   turn keep this cheap), so no state leaks between events;
//! - a **deadline** (epoch interruption), a **linear-memory cap** and a **concurrency cap**
//!   per component, so a guest that loops, balloons or floods hurts only its own event;
//! - **WASI without filesystem, network or environment** unless [`Grants`] open them.
//!
//! Compiled components are cached on disk keyed by a content hash, so a restart does not
//! recompile (see [`EngineConfig::cache_dir`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use engine::{ComponentConfig, ComponentSource, Engine, EngineConfig, Event, CollectingPublisher};
//! use std::sync::Arc;
//!
//! let engine = Engine::new(EngineConfig::default().with_cache_dir(".spindle/cache"))?;
//! let handler = engine.load("echo", ComponentSource::Path("echo.wasm".into()), ComponentConfig::default())?;
//! let publisher = Arc::new(CollectingPublisher::default());
//! let event = Event::builder().id("1").source("/demo").ty("demo.ping").build()?;
//! let replies = handler.handle(event, publisher.clone()).await?;
//! # Ok(()) }
//! ```
//!
//! The second executor, [`HttpHandler`], serves `wasi:http/incoming-handler` components with the
//! same limits: plain ones, and a handler linked guest-side to a protocol binder
//! ([`Engine::load_binder`], [`compose`]).

mod bindings;
pub mod budget;
mod cache;
pub mod compose;
mod config;
mod engine;
mod error;
mod event;
mod handler;
mod host;
mod http;
pub mod kv;
mod limiter;
mod outbound;
mod outgoing;
mod publisher;
mod recycle;
mod stdio;
mod ticker;
mod wasi;

pub use cloudevent::{AttributeValue, Event};
pub use config::{ComponentConfig, DirGrant, EngineConfig, Grants, Limits};
pub use engine::{ComponentSource, Engine};
pub use error::{ErrorKind, HandleError, LoadError};
pub use handler::Handler;
pub use http::{HttpBody, HttpHandler};
pub use outbound::{OutboundHost, default_port};
pub use outgoing::MAX_RESPONSE_BODY;
pub use publisher::{CollectingPublisher, PublishError, PublishFuture, Publisher};
