//! The second executor: `wasi:http/incoming-handler` components, one fresh instance per
//! request, under the same limits as event handlers.
//!
//! This serves ordinary HTTP components (Spin-style) beside CloudEvents handlers, and the
//! composition of a protocol binder with a handler (see [`crate::compose`]), which imports
//! Spindle's `outbound`, `log`, `config` and `key-value` as a handler does: the instance gets
//! the same host state, so what it publishes reaches the request's publisher. Outgoing HTTP
//! from the guest goes only to its `allowed_outbound_hosts`, as for event handlers (see
//! `outgoing`).

use crate::config::Limits;
use crate::engine::Engine;
use crate::error::HandleError;
use crate::handler::ErrorContext;
use crate::host::{ComponentShared, HostState, new_store};
use crate::publisher::Publisher;
use crate::wasi::ResolvedGrants;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// The body type of responses from [`HttpHandler::handle`]; hyper can serve it directly.
pub type HttpBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A loaded proxy-world component. Cheap to clone.
#[derive(Clone)]
pub struct HttpHandler {
    inner: Arc<HttpInner>,
}

struct HttpInner {
    engine: Engine,
    pre: ProxyPre<HostState>,
    shared: Arc<ComponentShared>,
    grants: Arc<ResolvedGrants>,
    limits: Limits,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for HttpHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandler")
            .field("name", &self.inner.shared.name)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl HttpHandler {
    pub(crate) fn new(
        engine: Engine,
        pre: ProxyPre<HostState>,
        shared: Arc<ComponentShared>,
        grants: ResolvedGrants,
        limits: Limits,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_concurrency as usize));
        Self {
            inner: Arc::new(HttpInner {
                engine,
                pre,
                shared,
                grants: Arc::new(grants),
                limits,
                slots,
            }),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// Serves one request in a fresh instance.
    ///
    /// Returns as soon as the guest sets the response; the body keeps streaming from the
    /// instance, which lives (holding its concurrency slot) until it finishes or its deadline
    /// passes. Errors before a response exists come back as [`HandleError`] so the server can
    /// answer 429/500/504 itself; a guest that answers with a wasi-http error code yields
    /// [`HandleError::Handler`]. What the guest publishes (a binder-linked handler can) goes
    /// to `publisher`, for the component's declared outputs only.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
        publisher: Arc<dyn Publisher>,
    ) -> Result<hyper::Response<HttpBody>, HandleError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let inner = &*self.inner;
        let name = inner.shared.name.clone();
        let permit = inner
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| HandleError::Busy {
                component: name.to_string(),
            })?;
        let setup = |e: wasmtime::Error| HandleError::Instantiate {
            component: name.to_string(),
            message: format!("{e:#}"),
        };
        let mut store = new_store(
            &inner.engine,
            &inner.shared,
            &inner.grants,
            &inner.limits,
            publisher,
        )?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(setup)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(setup)?;
        let pre = inner.pre.clone();
        let limits = inner.limits.clone();
        let task_name = name.clone();
        // The instance outlives this call (it streams the body); it keeps the request's span
        // so the guest's logs name the request.
        let span = tracing::Span::current();
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let _permit = permit;
                let run = async {
                    let proxy = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(|e| (true, e))?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, req, out)
                        .await
                        .map_err(|e| (false, e))
                };
                let outcome = tokio::time::timeout(limits.deadline, run).await;
                let ctx = ErrorContext {
                    component: &task_name,
                    limits: &limits,
                    memory_denied: store.data().limiter.denied(),
                };
                let result = match outcome {
                    Err(_) => Err(ctx.timeout()),
                    Ok(Err((true, e))) => Err(ctx.classify_instantiate(e)),
                    Ok(Err((false, e))) => Err(ctx.classify(e)),
                    Ok(Ok(())) => Ok(()),
                };
                if let Err(e) = &result {
                    tracing::warn!(component = &*task_name, error = %e, "http component failed");
                }
                result
            },
            span,
        ));
        match rx.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(HandleError::Handler {
                component: name.to_string(),
                kind: crate::ErrorKind::Permanent,
                message: format!("guest answered with error code {code:?}"),
            }),
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(HandleError::Trap {
                    component: name.to_string(),
                    message: "guest returned without setting a response".into(),
                }),
                Err(join) => Err(HandleError::Trap {
                    component: name.to_string(),
                    message: format!("instance task failed: {join}"),
                }),
            },
        }
    }
}
