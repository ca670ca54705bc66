//! The HTTP trigger: one listener serving every `[[trigger.http]]` route.
//!
//! For a `cloudevents` route the host does all the protocol work — content modes, the webhook
//! handshake and auth, status codes, replies in the request's mode — and the component only
//! sees events. A `wasi-http` route passes the raw request to a `wasi:http` component, and a
//! `binder` route to a handler linked to a protocol binder that does that work inside Wasm;
//! what either publishes is stored for its outputs before the response goes back.
//!
//! Every event taken in is matched against the subscriptions, and what its handler produced
//! flows on (see [`crate::dispatch`]); the reply is sent only once all of that is delivered
//! or stored.
//!
//! Replies of a CloudEvents route follow `cloudevent::receiver`'s table (documented for users
//! in the README), which the stock HTTP binder follows too; results that are not in the reply
//! go to the component's outputs.
//!
//! Errors: `400` invalid event (problem details naming the attribute and batch index), `401`
//! missing/wrong token, `405` other methods, `413` body over the cap, `415` unsupported event
//! format, `422` permanent handler error, `429` + `Retry-After` at the concurrency cap, `500`
//! handler crash, timeout or memory exhaustion, `503` + `Retry-After` transient handler error.

pub mod webhook;

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use cloudevent::http::{self as binding, Mode};
use cloudevent::receiver::{self, Refusal};
use futures::StreamExt as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use http_server::{HttpResponse, Limits, Problem, read_body};
use hyper::body::Body;
use tokio::net::TcpListener;

use crate::dispatch::{DispatchError, Dispatcher, Published, queue_published};
use crate::handler::{BoxFuture, HandlerError, Publish};
pub use webhook::WebhookConfig;

/// Seconds a producer is asked to wait when a component is at its concurrency cap.
const BUSY_RETRY_AFTER: u64 = 1;

/// A raw `wasi:http` handler: the request in, the response out.
pub trait RawHttpHandler: Send + Sync + 'static {
    /// Serves one request; what the component publishes meanwhile goes to `outputs`.
    fn serve(
        &self,
        request: Request<Bytes>,
        outputs: Arc<dyn Publish>,
    ) -> BoxFuture<'_, Result<Response<Bytes>, HandlerError>>;
}

/// What a route leads to.
#[derive(Clone)]
pub enum RouteTarget {
    /// Decode CloudEvents, match them against the subscriptions, and dispatch them to this
    /// component if there is one (a route without a component only feeds subscriptions).
    CloudEvents {
        /// Component id.
        component: Option<String>,
        /// The queue keeping the route's dedup window (`dedup_window`), if it has one: an
        /// event already handled within it is answered `202` and not handled again.
        dedup: Option<delivery::SubscriptionId>,
    },
    /// Hand the raw request to a `wasi:http` component (a plain one, or a handler linked to
    /// a protocol binder).
    WasiHttp {
        /// Component id.
        component: String,
        /// The handler.
        handler: Arc<dyn RawHttpHandler>,
        /// The component's declared outputs, which it may publish to.
        outputs: Arc<BTreeSet<String>>,
    },
}

/// One `[[trigger.http]]` entry.
#[derive(Clone)]
pub struct HttpRoute {
    /// Which paths it serves.
    pub route: manifest::Route,
    /// What it leads to.
    pub target: RouteTarget,
}

/// Settings of the HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted (`413` above).
    pub max_body_size: usize,
    /// Webhook handshake and auth settings.
    pub webhook: WebhookConfig,
    /// Timeouts, connection cap and shutdown grace of the listener.
    pub limits: Limits,
    /// Serve HTTPS with this certificate (reloaded when its files change); plain HTTP if not.
    pub tls: Option<http_server::Tls>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_size: 1024 * 1024,
            webhook: WebhookConfig::default(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// The HTTP trigger.
pub struct HttpTrigger {
    routes: Vec<HttpRoute>,
    dispatcher: Dispatcher,
    config: HttpConfig,
    client: reqwest::Client,
    callbacks: Arc<webhook::PendingCallbacks>,
}

impl HttpTrigger {
    /// A trigger over `routes`; exact routes win over wildcards, longer prefixes over shorter.
    pub fn new(
        mut routes: Vec<HttpRoute>,
        dispatcher: Dispatcher,
        config: HttpConfig,
        client: reqwest::Client,
    ) -> Self {
        routes.sort_by_key(|r| match &r.route {
            manifest::Route::Exact(_) => (0, usize::MAX - r.route.path().len()),
            _ => (1, usize::MAX - r.route.path().len()),
        });
        HttpTrigger {
            routes,
            dispatcher,
            config,
            client,
            callbacks: Arc::default(),
        }
    }

    /// Serves connections from `listener` until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish (up to the grace period) and returns. The listener's
    /// timeouts and connection cap are [`HttpConfig::limits`].
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let limits = self.config.limits;
        if let Ok(addr) = listener.local_addr()
            && !addr.ip().is_loopback()
            && self.config.webhook.allowed_origins.is_empty()
        {
            tracing::warn!(
                %addr,
                "the HTTP trigger is reachable from other machines and [application.http] \
                 allowed_origins is not set: the webhook handshake grants every origin that asks"
            );
        }
        let tls = self.config.tls.clone();
        let handler = move |request| {
            let this = self.clone();
            async move { this.handle(request).await }
        };
        match tls {
            Some(tls) => {
                http_server::serve_tls("trigger", listener, limits, tls, handler, shutdown).await
            }
            None => http_server::serve("trigger", listener, limits, handler, shutdown).await,
        }
    }

    /// Whether the listener serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.config.tls.is_some()
    }

    /// Handles one request (whatever the body type, so tests can call it directly).
    pub async fn handle<B>(&self, request: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Webhook spec 3.2: a successful answer to a request that carried the token in its
        // query "SHOULD include the header `Cache-Control: private`", so no cache keeps it.
        let token_in_query = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("access_token=")));
        let mut response = self.route(request).await;
        if token_in_query && response.status().is_success() {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        }
        response
    }

    async fn route<B>(&self, request: Request<B>) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path();
        let Some(route) = self.routes.iter().find(|r| r.route.matches(path)) else {
            return Problem::new(StatusCode::NOT_FOUND, "No such route")
                .detail(format!("no trigger serves `{path}`"))
                .into_response();
        };
        if let Some(denied) = self
            .config
            .webhook
            .authorize(request.uri(), request.headers())
        {
            return denied;
        }
        match &route.target {
            RouteTarget::WasiHttp {
                component,
                handler,
                outputs,
            } => {
                self.wasi_http(component, handler.as_ref(), outputs, request)
                    .await
            }
            RouteTarget::CloudEvents { component, dedup } => match *request.method() {
                Method::POST => {
                    self.cloudevents(component.as_deref(), dedup.as_ref(), request)
                        .await
                }
                Method::OPTIONS => {
                    self.config
                        .webhook
                        .handshake(&request, &self.client, &self.callbacks)
                }
                _ => refusal(Refusal::method())
                    .detail(receiver::METHOD_DETAIL)
                    .header(header::ALLOW, HeaderValue::from_static(receiver::ALLOW))
                    .into_response(),
            },
        }
    }

    async fn cloudevents<B>(
        &self,
        component: Option<&str>,
        dedup: Option<&delivery::SubscriptionId>,
        request: Request<B>,
    ) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = match read_body(request, self.config.max_body_size).await {
            Ok(read) => read,
            Err(problem) => return problem.into_response(),
        };
        let message = match binding::decode(&parts.headers, body) {
            Ok(message) => message,
            Err(error) => return decode_error(error),
        };
        let mode = message.mode();
        // A reply goes in the format the request came in (JSON after a binary-mode request).
        let format = binding::format_of(&parts.headers);
        let batch_ok = mode == Mode::Batch || binding::accepts_batch(&parts.headers);
        let in_batch = mode == Mode::Batch;
        let mut deliveries = self.dispatcher.router().deliveries();
        let mut results = Vec::new();
        let mut failure = None;
        let events = message.into_events();
        // The loop marker is for events that flow on; a caller that did not send one does not
        // get one back in its reply (an echo answers what it was sent).
        let marked = events
            .iter()
            .any(|e| e.extension(delivery::hops::HOPS_EXTENSION).is_some());
        let count = events.len() as u64;
        let delivery = self.dispatcher.router().delivery();
        let mut duplicates = 0;
        // What is left once duplicates within the route's dedup window are taken out.
        let mut todo = Vec::with_capacity(events.len());
        for (index, event) in events.into_iter().enumerate() {
            if let Some(queue) = dedup
                && crate::dedup::is_duplicate(delivery, queue, "http", &event).await
            {
                duplicates += 1;
                continue;
            }
            todo.push((index, event));
        }
        // A batch's events run concurrently, up to the component's concurrency cap, on this
        // request's task: handlers that wait (outbound calls, stores) overlap, and the results
        // and onward deliveries are taken in input order all the same. Not a task per event:
        // spread over the cores, memory-heavy guests contend on page faults (a 100-event batch
        // of a guest writing 2 MiB took 247 ms instead of 74 ms on this 2-core machine). A
        // single event (or a route without a component) runs alone.
        let width = match component {
            Some(component) if in_batch => self.dispatcher.batch_width(component),
            _ => 1,
        };
        let dispatcher = &self.dispatcher;
        let mut outcomes = futures::stream::iter(todo)
            .map(|(index, event)| async move {
                let id = event.id().to_owned();
                let remembered = dedup.map(|_| event.clone());
                let mut own = dispatcher.router().deliveries();
                let outcome = dispatcher.ingress(component, event, &mut own).await;
                (index, id, remembered, outcome, own)
            })
            .buffered(width);
        // Handled events to remember in the route's dedup window once they are committed.
        let mut handled = Vec::new();
        while let Some((index, id, remembered, outcome, own)) = outcomes.next().await {
            match outcome {
                Ok(mut out) => {
                    results.append(&mut out);
                    deliveries.append(own);
                    handled.extend(remembered);
                }
                Err(error) => {
                    if failure.is_none() {
                        let location = if in_batch {
                            format!("event [{index}] (id `{id}`)")
                        } else {
                            format!("event `{id}`")
                        };
                        failure = Some(handler_error(&location, error));
                    }
                    // One at a time, nothing after a failure is started; side by side, what
                    // already ran is kept (its deliveries are committed below).
                    if width == 1 {
                        break;
                    }
                }
            }
        }
        drop(outcomes);
        // Results that will not be in the reply flow on to the outputs. After a failure in a
        // batch, the results of the events already handled are not lost either.
        let reply = if failure.is_none() {
            receiver::split_results(&mut results, in_batch, batch_ok)
        } else {
            Vec::new()
        };
        if let Some(component) = component {
            self.dispatcher.forward(component, results, &mut deliveries);
        }
        let queued = match deliveries.commit().await {
            Ok(queued) => queued,
            Err(error) => {
                tracing::error!(%error, "cannot store onward deliveries; asking the producer to retry");
                received().retry.inc_by(count);
                return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Cannot store the event")
                    .detail(format!("the event was not accepted: {error}"))
                    .retry_after(receiver::TRANSIENT_RETRY_AFTER)
                    .into_response();
            }
        };
        if let Some(queue) = dedup {
            for event in &handled {
                crate::dedup::remember(delivery, queue, "http", event).await;
            }
        }
        if let Some(failure) = failure {
            let counter = if failure.status().is_server_error()
                || failure.status() == StatusCode::TOO_MANY_REQUESTS
            {
                &received().retry
            } else {
                &received().rejected
            };
            counter.inc_by(count);
            return failure;
        }
        received().accepted.inc_by(count - duplicates);
        received().duplicate.inc_by(duplicates);
        let mut reply = reply;
        if !marked {
            for event in &mut reply {
                event.remove_extension(delivery::hops::HOPS_EXTENSION);
            }
        }
        // A duplicate was accepted earlier: `202`, as for an event stored for delivery.
        let reply = receiver::reply(mode, format, &reply, queued + duplicates as usize > 0);
        let mut response = Response::new(Full::new(reply.body));
        *response.status_mut() = reply.status;
        *response.headers_mut() = reply.headers;
        response
    }

    async fn wasi_http<B>(
        &self,
        component: &str,
        handler: &dyn RawHttpHandler,
        outputs: &Arc<BTreeSet<String>>,
        request: Request<B>,
    ) -> HttpResponse
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = match read_body(request, self.config.max_body_size).await {
            Ok(read) => read,
            Err(problem) => return problem.into_response(),
        };
        let published = Arc::new(Published::new(outputs.clone()));
        let response = match handler
            .serve(Request::from_parts(parts, body), published.clone())
            .await
        {
            Ok(response) => response.map(Full::new),
            Err(error) => {
                tracing::warn!(component, %error, "wasi:http handler failed");
                return handler_error("request", DispatchError::Handler(error));
            }
        };
        // What the component published is stored before its answer goes back, as for an
        // event handler: once the client has a response, nothing it led to can be lost. An
        // answer that is not a success means the handling failed (a binder answers a
        // handler's error with 4xx/5xx), and what a failed handler published is discarded
        // with it, as on a cloudevents route: the client's retry would publish it again.
        let published = published.take();
        if published.is_empty() {
            return response;
        }
        if !response.status().is_success() {
            tracing::debug!(component, status = %response.status(), discarded = published.len(),
                "the request failed; discarding what it published");
            return response;
        }
        let mut deliveries = self.dispatcher.router().deliveries();
        queue_published(component, published, &mut deliveries);
        match deliveries.commit().await {
            Ok(_) => response,
            Err(error) => {
                tracing::error!(component, %error, "cannot store what the component published; asking the client to retry");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Cannot store the published events",
                )
                .detail(format!(
                    "the request was handled but what it published was not stored: {error}"
                ))
                .retry_after(receiver::TRANSIENT_RETRY_AFTER)
                .into_response()
            }
        }
    }
}

/// The HTTP trigger's `spindle_events_received_total{trigger="http"}` counters.
fn received() -> &'static metrics::TriggerMetrics {
    static HTTP: std::sync::OnceLock<metrics::TriggerMetrics> = std::sync::OnceLock::new();
    HTTP.get_or_init(|| metrics::metrics().trigger("http"))
}

fn decode_error(error: cloudevent::Error) -> HttpResponse {
    let problems = receiver::problems_json(&error);
    let problem = refusal(Refusal::decoding(&error));
    let problem = if problems.is_empty() {
        problem
    } else {
        problem.member("problems", problems)
    };
    problem.detail(error.to_string()).into_response()
}

/// The problem document of a refusal from the receiver's table.
fn refusal(refusal: Refusal) -> Problem {
    let problem = Problem::new(refusal.status, refusal.title);
    match refusal.retry_after {
        Some(seconds) => problem.retry_after(seconds),
        None => problem,
    }
}

/// Each schema violation as a member of the `errors` list: where in the data (a JSON
/// Pointer), which rule, and what is wrong.
fn violations_json(violations: &registry::Violations) -> Vec<serde_json::Value> {
    violations
        .errors
        .iter()
        .map(|v| {
            serde_json::json!({
                "pointer": v.pointer,
                "rule": v.rule,
                "schemaPath": v.schema_path,
                "message": v.message,
            })
        })
        .collect()
}

fn handler_error(location: &str, error: DispatchError) -> HttpResponse {
    let DispatchError::Handler(error) = error else {
        return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Misconfigured route")
            .detail(error.to_string())
            .into_response();
    };
    let detail = format!("{location}: {error}");
    let problem = match error {
        HandlerError::InvalidEvent(violations) => Problem::new(
            StatusCode::BAD_REQUEST,
            "Event data does not match its schema",
        )
        .member("errors", violations_json(&violations))
        .member("dataschema", violations.schema.as_str()),
        HandlerError::InvalidResult(violations) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Handler produced data that does not match its schema",
        )
        .member("errors", violations_json(&violations))
        .member("dataschema", violations.schema.as_str()),
        HandlerError::Transient(_) => refusal(Refusal::handler(true)),
        HandlerError::Busy => {
            Problem::new(StatusCode::TOO_MANY_REQUESTS, "Too many concurrent events")
                .retry_after(BUSY_RETRY_AFTER)
        }
        HandlerError::Permanent(_) => refusal(Refusal::handler(false)),
        HandlerError::Trap(_) | HandlerError::Timeout(_) | HandlerError::OutOfMemory(_) => {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Handler failed")
        }
        HandlerError::Internal(_) => {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
        }
    };
    problem.detail(detail).into_response()
}
