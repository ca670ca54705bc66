//! # spindle-http-server
//!
//! The one HTTP server stack behind both of Spindle's listeners: the event trigger (public
//! webhook ingress) and the admin API. Everything a listener facing the internet needs, written
//! once so the two cannot drift apart:
//!
//! - [`serve`]: the accept loop with a connection cap ([`Limits::max_connections`]; further
//!   connections wait in the kernel's backlog until one closes), a header-read timeout, an idle
//!   keep-alive timeout, a request id (`x-request-id`, taken from the client when sane) and a
//!   tracing span per request, and graceful shutdown;
//! - [`read_body`]: the request body under a size cap (`413`) and the body-read timeout
//!   (`408`, connection closed);
//! - [`Problem`]: RFC 9457 problem details, the one error shape of every Spindle endpoint;
//! - [`BearerToken`]: `Authorization: Bearer` (and, where a listener allows it, the webhook
//!   spec's `access_token` query parameter, percent-decoded), compared in constant time.
//!
//! hyper's own header timeout is not used: it also cuts idle keep-alive connections at the same
//! deadline, while a production listener wants a short header deadline and a longer idle one.
//! [`serve`] watches each connection itself (see `watchdog`).

#![deny(missing_docs)]

mod auth;
mod body;
pub mod egress;
mod limits;
mod problem;
mod serve;
mod stream;
pub mod tls;
pub mod trust;
pub mod uri;
mod watchdog;

pub use auth::BearerToken;
pub use body::{BodyDeadline, read_body};
pub use egress::{EgressDenied, EgressPolicy, EgressRule};
pub use limits::Limits;
pub use problem::{HttpResponse, Problem};
pub use serve::{RequestId, serve, serve_tls};
pub use stream::Streaming;
pub use tls::{Tls, TlsError, TlsFiles};
