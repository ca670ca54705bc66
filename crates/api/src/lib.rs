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
//! let api = api::AdminApi::new(engine, api::AdminConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! api.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod deadletters;
mod discovery;
mod error;
pub mod openapi;
mod problem;
mod query;
mod routes;
mod subscriptions;
mod tail;
mod validate;

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use delivery::Delivery;
use http::Request;
use http_server::{BearerToken, Limits, read_body};
use hyper::body::Body;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use problem::HttpResponse;

/// The largest request body accepted: subscriptions are small documents.
pub const MAX_BODY: usize = 1024 * 1024;

/// Settings of the admin API.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// When set, every route but `/healthz` and `/openapi.*` requires
    /// `Authorization: Bearer <token>`; anything else gets `401` with `WWW-Authenticate`,
    /// before its body is read.
    pub token: Option<BearerToken>,
    /// Timeouts, connection cap and shutdown grace of the listener.
    pub limits: Limits,
    /// Serve HTTPS with this certificate (reloaded when its files change); plain HTTP if not.
    pub tls: Option<http_server::Tls>,
    /// What else `/readyz` checks besides the delivery engine (the embedder's triggers).
    pub readiness: Option<ReadinessProbe>,
    /// The app's xRegistry document, served read-only under `/registry`.
    pub registry: Option<Arc<registry::Registry>>,
}

/// Extra readiness checks: each a name and what is wrong, if anything. Called on every
/// `/readyz`, so it must be cheap (read state, do no I/O).
#[derive(Clone)]
pub struct ReadinessProbe(pub Arc<dyn Fn() -> Vec<ReadinessCheck> + Send + Sync>);

/// One readiness check: its name, and what is wrong if it fails.
pub type ReadinessCheck = (String, Result<(), String>);

/// Every readiness check, as `/readyz` reports them: the delivery engine's (the store takes
/// writes and has room, every delivery worker runs) and the `extra` ones (broker triggers).
pub async fn readiness(delivery: &Delivery, extra: Option<&ReadinessProbe>) -> Vec<ReadinessCheck> {
    let mut checks = delivery.readiness().await;
    if let Some(extra) = extra {
        checks.extend((extra.0)());
    }
    checks
}

/// How often [`report_readiness`] checks.
const READINESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Logs each [readiness](readiness) check when it starts failing, with why, and when it
/// recovers, forever: what is degraded (a full disk, a broker gone) shows in the server's own
/// log, not only to whoever polls `/readyz`. Spawn it beside the server; abort it to stop.
pub async fn report_readiness(delivery: Arc<Delivery>, extra: Option<ReadinessProbe>) {
    let mut failing = std::collections::BTreeMap::<String, String>::new();
    let mut tick = tokio::time::interval(READINESS_EVERY);
    loop {
        tick.tick().await;
        for (check, state) in readiness(&delivery, extra.as_ref()).await {
            match state {
                Err(why) => {
                    if failing.get(&check) != Some(&why) {
                        tracing::warn!(check = %check, "degraded: {why}");
                        failing.insert(check, why);
                    }
                }
                Ok(()) => {
                    if failing.remove(&check).is_some() {
                        tracing::info!(check = %check, "recovered");
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for ReadinessProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadinessProbe")
    }
}

impl Default for AdminConfig {
    /// No token, and limits sized for an administrative listener: a few operators and
    /// scripts, not the public.
    fn default() -> Self {
        AdminConfig {
            token: None,
            limits: Limits {
                max_connections: 64,
                shutdown_grace: std::time::Duration::from_secs(10),
                ..Limits::default()
            },
            tls: None,
            readiness: None,
            registry: None,
        }
    }
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
    /// accepting and lets in-flight requests finish (up to the grace period of
    /// [`AdminConfig::limits`]).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let limits = self.config.limits;
        // On a loopback listener only loopback names may be in `Host`: a web page whose own
        // name resolves to 127.0.0.1 (DNS rebinding) cannot reach the API through it.
        let loopback = listener.local_addr()?.ip().is_loopback();
        let tls = self.config.tls.clone();
        // Live tails end when the API stops, so the graceful shutdown does not wait on them.
        let shutdown = async {
            shutdown.await;
            delivery::tap::global().close_watchers();
        };
        let handler = move |request: Request<hyper::body::Incoming>| {
            let this = self.clone();
            async move {
                match browser_guard(&request, loopback) {
                    Some(refusal) => refusal.into_response(),
                    None => this.handle(request).await,
                }
            }
        };
        match tls {
            Some(tls) => {
                http_server::serve_tls("admin", listener, limits, tls, handler, shutdown).await
            }
            None => http_server::serve("admin", listener, limits, handler, shutdown).await,
        }
    }

    /// Handles one request (whatever the body type, so tests can call it without a socket).
    /// [`AdminApi::serve`] first refuses what only a browser tricked by another site sends
    /// (foreign `Host` on a loopback listener, cross-origin `Origin`).
    /// The token is checked before the body is read.
    pub async fn handle<B>(&self, request: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(token) = &self.config.token
            && !routes::is_public(request.uri().path())
            && !token.authorizes(request.headers(), request.uri(), false)
        {
            return ApiError::Unauthorized.into_response();
        }
        let (parts, body) = match read_body(request, MAX_BODY).await {
            Ok(read) => read,
            Err(problem) => return problem.into_response(),
        };
        let call = routes::Call {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body,
        };
        let result = routes::route(&self.delivery, &self.config, call).await;
        let response = result.unwrap_or_else(ApiError::into_response);
        tracing::debug!(method = %parts.method, path = parts.uri.path(),
            status = response.status().as_u16(), "admin API request");
        response
    }
}

/// What a browser sends when another site makes it call the admin API: a `Host` that is not
/// this loopback listener's (DNS rebinding), or an `Origin` of another site. Either is refused
/// with `403` before anything else happens. Clients that are not browsers send neither.
fn browser_guard<B>(request: &Request<B>, loopback: bool) -> Option<http_server::Problem> {
    let refuse = |detail: String| {
        Some(http_server::Problem::new(http::StatusCode::FORBIDDEN, "Forbidden").detail(detail))
    };
    let headers = request.headers();
    // HTTP/2 carries the host in the `:authority` pseudo-header, which is the URI's.
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    if loopback && !is_loopback_authority(host) {
        return refuse(format!(
            "`Host: {host}` is not this loopback listener's name (use 127.0.0.1, localhost or [::1])"
        ));
    }
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let same = origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
        if !same {
            return refuse(format!(
                "cross-origin requests are refused (`Origin: {origin}`)"
            ));
        }
    }
    None
}

/// `127.0.0.1[:port]`, `localhost[:port]`, `[::1][:port]` (any 127/8 address too).
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(h, _)| h),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
