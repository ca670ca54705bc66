//! The CloudEvents webhook spec (cloudevents/http-webhook.md), receiver side, done by the host
//! so user code never sees it: the OPTIONS abuse-protection handshake and bearer-token
//! authorization.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::Full;

use cloudevent::receiver::webhook::{
    ALLOWED_ORIGIN, ALLOWED_RATE, REQUEST_CALLBACK, REQUEST_ORIGIN, REQUEST_RATE, granted_rate,
};
use http_server::{BearerToken, HttpResponse, Problem};

/// Webhook settings of the HTTP listener (from `[application.http]`).
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    /// Origins allowed to deliver (`*.example.com` patterns); empty allows any origin.
    pub allowed_origins: Vec<String>,
    /// Requests per minute granted; `None` grants `*` (no limit).
    pub allowed_rate: Option<u32>,
    /// When set, deliveries must present this bearer token.
    pub auth_token: Option<BearerToken>,
    /// Where a handshake callback may go (`[application.egress]`); the client that sends it
    /// checks the same policy on every address the callback's host resolves to.
    pub egress: Arc<http_server::EgressPolicy>,
}

impl WebhookConfig {
    fn origin_allowed(&self, origin: &str) -> bool {
        cloudevent::receiver::webhook::origin_allowed(&self.allowed_origins, origin)
    }

    /// Answers an OPTIONS request: the validation handshake (section 4). Grants are given in
    /// the response headers, or — when the sender offers a callback — by a GET to the callback
    /// URL on a background task, with the headers withheld as the spec requires.
    ///
    /// A callback is only ever sent to the requesting origin's own host (or an allowed origin),
    /// at most one at a time per origin and [`MAX_PENDING_CALLBACKS`] in all: an anonymous
    /// `OPTIONS` cannot make the host send requests to arbitrary places.
    pub fn handshake<B>(
        &self,
        request: &Request<B>,
        client: &reqwest::Client,
        callbacks: &Arc<PendingCallbacks>,
    ) -> HttpResponse {
        let headers = request.headers();
        let mut response = HttpResponse::new(Full::new(Bytes::new()));
        response.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static(cloudevent::receiver::ALLOW),
        );
        let Some(origin) = headers.get(REQUEST_ORIGIN).and_then(|v| v.to_str().ok()) else {
            // A plain OPTIONS: say what the resource allows.
            return response;
        };
        if !self.origin_allowed(origin) {
            tracing::warn!(origin, "webhook handshake refused: origin not allowed");
            return Problem::new(StatusCode::FORBIDDEN, "Origin not allowed")
                .detail(format!(
                    "`{origin}` is not among this endpoint's allowed origins"
                ))
                .into_response();
        }
        let granted_rate = granted_rate(
            self.allowed_rate,
            headers.get(REQUEST_RATE).and_then(|v| v.to_str().ok()),
        );
        if let Some(callback) = headers.get(REQUEST_CALLBACK).and_then(|v| v.to_str().ok()) {
            let url = match callback.parse::<reqwest::Url>() {
                Ok(url) => url,
                Err(e) => {
                    return Problem::new(StatusCode::BAD_REQUEST, "Invalid callback")
                        .detail(format!("WebHook-Request-Callback is not a URL: {e}"))
                        .into_response();
                }
            };
            let host = url.host_str().unwrap_or("");
            let on_origin = host.eq_ignore_ascii_case(origin)
                || (!self.allowed_origins.is_empty() && self.origin_allowed(host));
            if !matches!(url.scheme(), "http" | "https") || !on_origin {
                tracing::warn!(origin, %url, "webhook handshake refused: callback not on the origin's host");
                return Problem::new(StatusCode::BAD_REQUEST, "Invalid callback")
                    .detail(format!(
                        "WebHook-Request-Callback must be an http(s) URL on the requesting origin's host `{origin}`"
                    ))
                    .into_response();
            }
            if let Err(denied) = self.egress.check_host(host) {
                tracing::warn!(origin, %url, %denied, "webhook handshake refused: callback denied by the egress policy");
                return Problem::new(StatusCode::BAD_REQUEST, "Invalid callback")
                    .detail(denied.to_string())
                    .into_response();
            }
            let Some(pending) = PendingCallbacks::claim(callbacks, origin) else {
                return Problem::new(StatusCode::TOO_MANY_REQUESTS, "Validation in progress")
                    .detail(format!(
                        "a validation for `{origin}` (or too many in all) is already in progress"
                    ))
                    .retry_after(CALLBACK_RETRY_AFTER)
                    .into_response();
            };
            tracing::info!(origin, %url, "webhook handshake: confirming by callback");
            let client = client.clone();
            let rate = granted_rate.clone();
            tokio::spawn(async move {
                confirm_callback(client, url, rate).await;
                drop(pending);
            });
            return response;
        }
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(origin) {
            h.insert(ALLOWED_ORIGIN, v);
        }
        if let Ok(v) = HeaderValue::from_str(&granted_rate) {
            h.insert(ALLOWED_RATE, v);
        }
        response
    }

    /// Checks the delivery's token (section 3): `Authorization: Bearer` or the `access_token`
    /// query parameter, on every request of every route, the `OPTIONS` handshake and
    /// `wasi-http` routes included. `None` means authorized.
    pub fn authorize(&self, uri: &Uri, headers: &HeaderMap) -> Option<HttpResponse> {
        let expected = self.auth_token.as_ref()?;
        if expected.authorizes(headers, uri, true) {
            return None;
        }
        Some(
            BearerToken::challenge()
                .detail("this endpoint requires `Authorization: Bearer <token>` or an `access_token` query parameter")
                .into_response(),
        )
    }
}

/// How many callback validations may run at once, all origins together.
pub const MAX_PENDING_CALLBACKS: usize = 16;
/// Seconds a sender is asked to wait when its validation cannot start now.
const CALLBACK_RETRY_AFTER: u64 = 10;

/// The origins whose callback validation is running, so each origin has at most one and all
/// of them at most [`MAX_PENDING_CALLBACKS`].
#[derive(Debug, Default)]
pub struct PendingCallbacks {
    origins: Mutex<HashSet<String>>,
}

/// One running validation; its origin is free again when this is dropped.
pub struct PendingCallback {
    gate: Arc<PendingCallbacks>,
    origin: String,
}

impl PendingCallbacks {
    /// Takes the slot of `origin`, unless it has one already or all are taken.
    fn claim(gate: &Arc<Self>, origin: &str) -> Option<PendingCallback> {
        let origin = origin.to_ascii_lowercase();
        let mut origins = gate.origins.lock().unwrap_or_else(|e| e.into_inner());
        if origins.len() >= MAX_PENDING_CALLBACKS || !origins.insert(origin.clone()) {
            return None;
        }
        Some(PendingCallback {
            gate: gate.clone(),
            origin,
        })
    }
}

impl Drop for PendingCallback {
    fn drop(&mut self) {
        self.gate
            .origins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.origin);
    }
}

async fn confirm_callback(client: reqwest::Client, url: reqwest::Url, rate: String) {
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=5 {
        match client
            .get(url.clone())
            .header(ALLOWED_RATE, &rate)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%url, "webhook handshake confirmed by callback");
                return;
            }
            Ok(r) => {
                tracing::warn!(%url, status = %r.status(), attempt, "webhook callback refused")
            }
            Err(e) => tracing::warn!(%url, error = %e, attempt, "webhook callback failed"),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    tracing::error!(%url, "giving up on the webhook handshake callback");
}
