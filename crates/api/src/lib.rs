//! # spindle-api
//!
//! The admin listener of a Spindle instance: the CloudEvents **Subscriptions API**
//! (`/subscriptions`, `/subscriptions/{id}`) over the [`delivery`] engine, plus Spindle's
//! dead-letter administration (`/deadletters`, `/deadletters/replay`), a health check
//! (`/healthz`) and the API's own OpenAPI description (`/openapi.yaml`, `/openapi.json`).
//!
//! It is a separate listener from the event triggers because changing subscriptions is an
//! administrative act: it can be bound to loopback and protected by a bearer token
//! ([`AdminConfig::token`]) independently of public event ingress.
//!
//! Invalid input is refused with `400` and an `application/problem+json` body whose `field`
//! member names the offending input as a JSON pointer (`/filters/0/sql`, with `line` and
//! `column` for CESQL errors).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let engine = Arc::new(delivery::Delivery::open(".spindle", delivery::SinkRegistry::with_defaults()).await?);
//! let api = api::AdminApi::new(engine, api::AdminConfig { token: None });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! api.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod auth;
mod deadletters;
mod error;
pub mod openapi;
mod problem;
mod query;
mod routes;
mod subscriptions;
mod validate;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use problem::HttpResponse;

/// The largest request body accepted: subscriptions are small documents.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long [`AdminApi::serve`] lets in-flight requests finish after shutdown is signalled.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Settings of the admin API.
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    /// When set, every route but `/healthz` and `/openapi.*` requires
    /// `Authorization: Bearer <token>`; anything else gets `401` with `WWW-Authenticate`.
    pub token: Option<String>,
}

/// The admin HTTP API over one delivery engine. Cheap to clone (the engine is shared), so
/// `spindle up` can hand the same engine to the triggers and to this listener.
#[derive(Clone)]
pub struct AdminApi {
    delivery: Arc<delivery::Delivery>,
    config: Arc<AdminConfig>,
}

impl AdminApi {
    /// An API over `delivery`.
    pub fn new(delivery: Arc<delivery::Delivery>, config: AdminConfig) -> Self {
        AdminApi {
            delivery,
            config: Arc::new(config),
        }
    }

    /// Serves HTTP/1.1 connections from `listener` until `shutdown` resolves, then stops
    /// accepting and lets in-flight requests finish (up to [`SHUTDOWN_GRACE`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(conn) => conn,
                        Err(error) => {
                            // Usually EMFILE: back off instead of spinning.
                            tracing::warn!(%error, "admin API: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let this = self.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let this = this.clone();
                        async move { Ok::<_, std::convert::Infallible>(this.handle(req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(error) = conn.await {
                            tracing::debug!(%error, "admin API: connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("admin API: grace period over; dropping remaining connections");
        }
        Ok(())
    }

    /// Handles one request (whatever the body type, so tests can call it without a socket).
    pub async fn handle<B>(&self, request: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return ApiError::TooLarge(MAX_BODY).into_response();
            }
            Err(e) => {
                return ApiError::invalid("/", format!("cannot read the body: {e}"))
                    .into_response();
            }
        };
        let call = routes::Call {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body,
        };
        let result = routes::route(&self.delivery, self.config.token.as_deref(), call).await;
        let response = result.unwrap_or_else(ApiError::into_response);
        tracing::debug!(method = %parts.method, path = parts.uri.path(),
            status = response.status().as_u16(), "admin API request");
        response
    }
}
