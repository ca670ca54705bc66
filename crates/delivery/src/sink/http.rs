//! The HTTP webhook sink (cloudevents/http-webhook.md): POST in binary (default) or
//! structured mode, redirects never followed, status codes mapped to retry decisions, and the
//! optional OPTIONS abuse-protection handshake.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_server::EgressPolicy;

use cloudevent::Event;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{SendFuture, SendOutcome, Sink, SinkError, SinkFactory};
use crate::model::Subscription;

/// Request header of the abuse-protection handshake and of every delivery after it.
const REQUEST_ORIGIN: &str = "webhook-request-origin";
/// Response header granting the handshake.
const ALLOWED_ORIGIN: &str = "webhook-allowed-origin";
/// Subscription `config` key overriding the factory's handshake origin for one subscription.
pub const CONFIG_WEBHOOK_ORIGIN: &str = "webhookorigin";
/// The query parameter of the webhook's URI Query Parameter authorization method (3.2).
const ACCESS_TOKEN: &str = "access_token";
/// How much of an error response body is read to report its size in the failure reason.
const REASON_BODY_SCAN: usize = 64 << 10;

/// Builds [`HttpSink`]s sharing one connection pool.
#[derive(Clone)]
pub struct HttpSinkFactory {
    client: reqwest::Client,
    origin: Option<String>,
    timeout: Duration,
    extra_roots: Arc<[u8]>,
    egress: Arc<EgressPolicy>,
    /// Clients with their own TLS settings, for the sinks that have them.
    per_sink: Arc<std::collections::HashMap<crate::model::SubscriptionId, reqwest::Client>>,
}

impl Default for HttpSinkFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpSinkFactory {
    /// A factory with a 30 s request timeout and no handshake.
    pub fn new() -> Self {
        Self::with_timeout(super::DEFAULT_HTTP_TIMEOUT)
    }

    /// A factory whose requests time out after `timeout` (a timeout is a retry), trusting the
    /// system's root certificates for `https://` sinks.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::with_tls(timeout, &[]).expect("TLS settings without extra roots always build")
    }

    /// A factory that also trusts the CA certificates in `extra_roots` (PEM), e.g. a private
    /// CA that signed an internal webhook receiver's certificate.
    pub fn with_tls(timeout: Duration, extra_roots: &[u8]) -> Result<Self, String> {
        Self::with_settings(timeout, extra_roots, Arc::new(EgressPolicy::default()))
    }

    /// A factory under `egress` instead of the default egress policy: sinks it refuses are
    /// invalid at creation (a `400` from the API) and, for names resolving to refused
    /// addresses, fail at connect time. `timeout` and `extra_roots` as for
    /// [`HttpSinkFactory::with_tls`].
    pub fn with_settings(
        timeout: Duration,
        extra_roots: &[u8],
        egress: Arc<EgressPolicy>,
    ) -> Result<Self, String> {
        Ok(HttpSinkFactory {
            client: client(timeout, extra_roots, &egress)?,
            origin: None,
            timeout,
            extra_roots: extra_roots.into(),
            egress,
            per_sink: Default::default(),
        })
    }

    /// Gives the sink of subscription `id` its own TLS settings: `ca_pem` (PEM certificates)
    /// trusted beside the factory's roots, and `identity` presented when the sink asks for a
    /// client certificate (mutual TLS). For the operator's outputs; fails when the PEM does
    /// not parse.
    pub fn with_sink_tls(
        mut self,
        id: crate::model::SubscriptionId,
        ca_pem: &[u8],
        identity: Option<&http_server::trust::ClientIdentity>,
    ) -> Result<Self, String> {
        let mut roots = self.extra_roots.to_vec();
        roots.push(b'\n');
        roots.extend_from_slice(ca_pem);
        let tls =
            http_server::trust::client_config_with_identity(&roots, &[b"http/1.1"], identity)?;
        let client = builder(self.timeout, &self.egress)
            .use_preconfigured_tls(tls)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Arc::make_mut(&mut self.per_sink).insert(id, client);
        Ok(self)
    }

    /// Performs the webhook abuse-protection handshake, announcing this DNS name as
    /// `WebHook-Request-Origin`, before the first delivery of every sink.
    pub fn with_webhook_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }
}

/// The sinks' HTTP client: no redirects, bounded waits, the trusted roots, and the egress
/// policy checked on every resolved address.
fn client(
    timeout: Duration,
    extra_roots: &[u8],
    egress: &Arc<EgressPolicy>,
) -> Result<reqwest::Client, String> {
    let tls = http_server::trust::client_config(extra_roots, &[b"http/1.1"])?;
    builder(timeout, egress)
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// What every sink client shares, TLS aside.
fn builder(timeout: Duration, egress: &Arc<EgressPolicy>) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // The webhook spec forbids following redirects: a 3xx is the sink's answer.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .dns_resolver(super::egress::GuardedResolver::new(Arc::clone(egress)))
}

/// The OpenAPI `HTTPSettings`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpSettings {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    method: Option<String>,
}

/// The OpenAPI sink credentials, as far as an HTTP sink uses them.
#[derive(Deserialize)]
struct RawCredential {
    credentialtype: String,
    identifier: Option<String>,
    secret: Option<String>,
    accesstoken: Option<String>,
    accesstokentype: Option<String>,
}

fn invalid(sub: &Subscription, reason: impl Into<String>) -> SinkError {
    SinkError::Invalid {
        sink: sub.sink.clone(),
        reason: reason.into(),
    }
}

impl SinkFactory for HttpSinkFactory {
    fn create(&self, sub: &Subscription) -> Result<Arc<dyn Sink>, SinkError> {
        let url = reqwest::Url::parse(&sub.sink).map_err(|e| invalid(sub, e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid(
                sub,
                "an HTTP sink needs an http:// or https:// URL",
            ));
        }
        if let Some(host) = url.host_str()
            && let Err(denied) = self.egress.check_host(host)
        {
            return Err(invalid(sub, denied.to_string()));
        }
        let settings: HttpSettings = match &sub.protocolsettings {
            None => HttpSettings::default(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| invalid(sub, format!("protocolsettings: {e}")))?,
        };
        let method = match settings.method.as_deref() {
            None => Method::POST,
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| invalid(sub, format!("bad method `{m}`")))?,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(sub, format!("bad header name `{name}`")))?;
            if let Some(why) = reserved_header(&name) {
                return Err(invalid(
                    sub,
                    format!("protocolsettings.headers: `{name}` cannot be set: {why}"),
                ));
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| invalid(sub, format!("bad value for header `{name}`")))?;
            headers.insert(name, value);
        }
        // Webhook 3.2: "Clients using the URI Query Parameter method SHOULD also send a
        // Cache-Control header containing the \"no-store\" option."
        if url.query_pairs().any(|(name, _)| name == ACCESS_TOKEN)
            && !headers.contains_key(http::header::CACHE_CONTROL)
        {
            headers.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
        }
        if let Some(cred) = &sub.sinkcredential {
            let cred: RawCredential = serde_json::from_value(cred.clone())
                .map_err(|e| invalid(sub, format!("sinkcredential: {e}")))?;
            let auth = match cred.credentialtype.as_str() {
                "PLAIN" => {
                    let user = cred.identifier.unwrap_or_default();
                    let pass = cred.secret.unwrap_or_default();
                    format!("Basic {}", basic(&format!("{user}:{pass}")))
                }
                "ACCESSTOKEN" | "REFRESHTOKEN" => {
                    let token = cred
                        .accesstoken
                        .ok_or_else(|| invalid(sub, "sinkcredential: missing accesstoken"))?;
                    let ty = cred.accesstokentype.unwrap_or_else(|| "Bearer".into());
                    let ty = if ty.eq_ignore_ascii_case("bearer") {
                        "Bearer".into()
                    } else {
                        ty
                    };
                    format!("{ty} {token}")
                }
                other => return Err(invalid(sub, format!("unknown credentialtype `{other}`"))),
            };
            let mut value = HeaderValue::from_str(&auth)
                .map_err(|_| invalid(sub, "sinkcredential: not a valid header value"))?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let origin = sub
            .config
            .as_ref()
            .and_then(|c| c.get(CONFIG_WEBHOOK_ORIGIN).cloned())
            .or_else(|| self.origin.clone());
        if let Some(origin) = &origin {
            let value = HeaderValue::from_str(origin)
                .map_err(|_| invalid(sub, "webhook origin is not a valid header value"))?;
            headers.insert(HeaderName::from_static(REQUEST_ORIGIN), value);
        }
        let mut describe = url.clone();
        let _ = describe.set_password(None);
        describe.set_query(None);
        let policy = sub.delivery_policy().map_err(|e| invalid(sub, e))?;
        Ok(Arc::new(HttpSink {
            client: self.per_sink.get(&sub.id).unwrap_or(&self.client).clone(),
            url,
            describe: describe.to_string(),
            method,
            headers,
            mode: policy.mode.into(),
            format: policy.format,
            handshake: origin.map(|o| Handshake {
                origin: o,
                granted: Mutex::new(false),
            }),
        }))
    }
}

/// Base64 (standard alphabet, padded) for Basic credentials, without another dependency.
fn basic(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Handshake {
    origin: String,
    /// Held during the handshake so concurrent first sends make only one OPTIONS request.
    granted: Mutex<bool>,
}

/// Delivers to one webhook URL.
pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    describe: String,
    method: Method,
    headers: HeaderMap,
    mode: cloudevent::http::Mode,
    format: cloudevent::Format,
    handshake: Option<Handshake>,
}

impl HttpSink {
    async fn deliver(&self, event: &Event) -> SendOutcome {
        if let Some(handshake) = &self.handshake
            && let Err(outcome) = self.ensure_handshake(handshake).await
        {
            return outcome;
        }
        let encoded = cloudevent::http::encode_as(event, self.mode, self.format);
        let mut headers = encoded.headers;
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(headers)
            .body(encoded.body);
        match request.send().await {
            Err(e) => transport_failure(&e),
            Ok(response) => {
                let status = response.status();
                let outcome = classify(status, response.headers(), SystemTime::now());
                match outcome {
                    // Drain the (usually empty) body so the connection goes back to the pool.
                    SendOutcome::Delivered => {
                        let _ = response.bytes().await;
                        SendOutcome::Delivered
                    }
                    SendOutcome::Retry { after, status, .. } => SendOutcome::Retry {
                        after,
                        status,
                        reason: failure_reason(response).await,
                    },
                    SendOutcome::Permanent { status, .. } => SendOutcome::Permanent {
                        reason: failure_reason(response).await,
                        status,
                    },
                    SendOutcome::Gone { status, .. } => SendOutcome::Gone {
                        reason: failure_reason(response).await,
                        status,
                    },
                }
            }
        }
    }

    /// OPTIONS with `WebHook-Request-Origin`; granted when `WebHook-Allowed-Origin` is our
    /// origin or `*`. Not granted is a retry: the target may grant it later (by callback).
    async fn ensure_handshake(&self, handshake: &Handshake) -> Result<(), SendOutcome> {
        let mut granted = handshake.granted.lock().await;
        if *granted {
            return Ok(());
        }
        let response = self
            .client
            .request(Method::OPTIONS, self.url.clone())
            .header(REQUEST_ORIGIN, &handshake.origin)
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status().as_u16();
        let allowed = response
            .headers()
            .get(ALLOWED_ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if allowed == Some("*") || allowed == Some(handshake.origin.as_str()) {
            *granted = true;
            tracing::debug!(sink = %self.describe, "webhook handshake granted");
            Ok(())
        } else {
            Err(SendOutcome::Retry {
                after: None,
                status: Some(status),
                reason: format!(
                    "webhook abuse-protection handshake not granted for origin `{}`",
                    handshake.origin
                ),
            })
        }
    }
}

impl Sink for HttpSink {
    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a> {
        Box::pin(self.deliver(event))
    }

    fn describe(&self) -> &str {
        &self.describe
    }

    fn takes_direct_sends(&self) -> bool {
        true
    }
}

/// Why a custom header may not be set on a delivery, if it may not: the event's own headers
/// (`ce-*`, `Content-Type`) belong to the CloudEvents binding, the framing and routing ones
/// (`Content-Length`, `Host`, hop-by-hop headers) to the HTTP client. Letting a subscription
/// set them would let it forge the event or smuggle requests.
fn reserved_header(name: &HeaderName) -> Option<&'static str> {
    let name = name.as_str();
    if name.starts_with("ce-") || name == "content-type" {
        return Some("the CloudEvents binding sets it from the event");
    }
    match name {
        "content-length" | "host" | "transfer-encoding" | "connection" | "keep-alive"
        | "proxy-connection" | "te" | "trailer" | "upgrade" => {
            Some("the HTTP client sets it for each request")
        }
        REQUEST_ORIGIN => Some("the webhook handshake sets it"),
        _ => None,
    }
}

/// A request that got no response: connection refused or reset, timeout. Worth a retry,
/// except a request we could not even build, and a sink whose TLS certificate does not verify
/// (unknown issuer, expired, wrong name): retrying cannot fix that, so it is dead-lettered now.
fn transport_failure(e: &reqwest::Error) -> SendOutcome {
    if let Some(problem) = http_server::trust::certificate_problem(e) {
        return SendOutcome::Permanent {
            reason: format!("{problem} (the sink's certificate does not verify)"),
            status: None,
        };
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    if e.is_builder() {
        SendOutcome::Permanent {
            reason,
            status: None,
        }
    } else {
        SendOutcome::Retry {
            after: None,
            status: None,
            reason,
        }
    }
}

/// The status line and the start of the body, for logs and dead letters.
async fn failure_reason(mut response: reqwest::Response) -> String {
    let status = response.status();
    // The reason ends up in `GET /deadletters`, readable by whoever can read the API: it
    // names the status and the body's size, never the body, so a subscription cannot be
    // used to read what an internal endpoint answers.
    let mut size = 0usize;
    let mut complete = true;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len();
                if size > REASON_BODY_SCAN {
                    complete = false;
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    match (size, complete) {
        (0, true) => format!("HTTP {status}"),
        (n, true) => format!("HTTP {status} ({n}-byte body)"),
        (n, false) => format!("HTTP {status} (body of at least {n} bytes)"),
    }
}

/// Maps a response status to an outcome (reasons are filled in by the caller): 2xx delivered;
/// 408, 429 and 5xx retried, honouring `Retry-After` on 429 and 503; 410 gone (the
/// subscription is disabled); everything else (other 4xx, redirects we must not follow)
/// permanent.
pub fn classify(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> SendOutcome {
    let code = status.as_u16();
    if status.is_success() {
        return SendOutcome::Delivered;
    }
    if status == StatusCode::GONE {
        return SendOutcome::Gone {
            reason: format!("HTTP {status}"),
            status: Some(code),
        };
    }
    let retry = matches!(code, 408 | 429) || status.is_server_error();
    if retry {
        let after = if matches!(code, 429 | 503) {
            headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now))
        } else {
            None
        };
        SendOutcome::Retry {
            after,
            status: Some(code),
            reason: format!("HTTP {status}"),
        }
    } else {
        SendOutcome::Permanent {
            reason: format!("HTTP {status}"),
            status: Some(code),
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (a date in the past means "now").
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_outcomes() {
        let now = SystemTime::now();
        let none = HeaderMap::new();
        assert_eq!(classify(StatusCode::OK, &none, now), SendOutcome::Delivered);
        assert_eq!(
            classify(StatusCode::NO_CONTENT, &none, now),
            SendOutcome::Delivered
        );
        for code in [408u16, 429, 500, 502, 503, 504] {
            let s = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(classify(s, &none, now), SendOutcome::Retry { status: Some(c), .. } if c == code),
                "{code}"
            );
        }
        assert!(matches!(
            classify(StatusCode::GONE, &none, now),
            SendOutcome::Gone {
                status: Some(410),
                ..
            }
        ));
        for code in [301u16, 302, 400, 401, 403, 404, 415] {
            let s = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(classify(s, &none, now), SendOutcome::Permanent { status: Some(c), .. } if c == code),
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &headers, now),
            SendOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        // Only 429 and 503 carry a meaningful Retry-After.
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, &headers, now),
            SendOutcome::Retry { after: None, .. }
        ));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(basic("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic("a:b"), "YTpi");
        assert_eq!(basic("ab:"), "YWI6");
    }
}
