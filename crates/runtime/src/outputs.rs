//! Output bindings: the named sinks a component's events flow on to.
//!
//! Until the durable delivery engine takes over, an HTTP output sends each event on a
//! background task with bounded in-memory retries (webhook sender rules: POST, binary mode by
//! default, never follow redirects, honour `429`/`503` + `Retry-After`); every failure is
//! logged with the event id and the sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cloudevent::Event;
use cloudevent::http::{self as binding, Mode};
use http::StatusCode;
use manifest::{ContentMode, Output, Sink};

use crate::handler::{Publish, PublishError};

/// How many times an output tries one event before giving up (in-memory delivery).
const MAX_ATTEMPTS: u32 = 5;
/// The longest `Retry-After` the in-memory sender will wait for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The outputs of one component.
#[derive(Clone)]
pub struct Outputs {
    component: Arc<str>,
    sinks: Arc<BTreeMap<String, OutputSink>>,
    client: reqwest::Client,
}

#[derive(Clone)]
struct OutputSink {
    target: Target,
    mode: Mode,
    headers: http::HeaderMap,
}

#[derive(Clone)]
enum Target {
    Http(reqwest::Url),
    /// A sink whose transport is not built into this runtime yet.
    Unsupported(String),
}

impl Outputs {
    /// Builds the outputs declared for a component; `client` is shared by every HTTP output.
    pub fn new(
        component: &str,
        declared: &BTreeMap<String, Output>,
        client: reqwest::Client,
    ) -> Self {
        let sinks = declared
            .iter()
            .map(|(name, output)| {
                let target = match &output.sink {
                    Sink::Http { url } => match reqwest::Url::parse(url.as_str()) {
                        Ok(url) => Target::Http(url),
                        Err(e) => Target::Unsupported(format!("{url}: {e}")),
                    },
                    other => Target::Unsupported(other.to_string()),
                };
                let mut headers = http::HeaderMap::new();
                for (k, v) in &output.headers {
                    if let (Ok(k), Ok(v)) = (
                        http::HeaderName::from_bytes(k.as_bytes()),
                        http::HeaderValue::from_str(v),
                    ) {
                        headers.insert(k, v);
                    }
                }
                let mode = match output.mode {
                    ContentMode::Structured => Mode::Structured,
                    _ => Mode::Binary,
                };
                (
                    name.clone(),
                    OutputSink {
                        target,
                        mode,
                        headers,
                    },
                )
            })
            .collect();
        Outputs {
            component: Arc::from(component),
            sinks: Arc::new(sinks),
            client,
        }
    }

    /// Whether the component declared any output at all.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Names of the declared outputs.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sinks.keys().map(String::as_str)
    }

    /// Sends `event` to every declared output: where results go that the reply did not carry.
    pub fn broadcast(&self, event: &Event) {
        for name in self.sinks.keys() {
            let _ = self.publish(name, event.clone());
        }
    }
}

impl Publish for Outputs {
    fn publish(&self, output: &str, event: Event) -> Result<(), PublishError> {
        let Some(sink) = self.sinks.get(output) else {
            return Err(PublishError::UnknownOutput(output.to_owned()));
        };
        match &sink.target {
            Target::Http(url) => {
                let job = HttpDelivery {
                    client: self.client.clone(),
                    url: url.clone(),
                    mode: sink.mode,
                    headers: sink.headers.clone(),
                    component: self.component.clone(),
                    output: output.to_owned(),
                };
                tokio::spawn(job.run(event));
                Ok(())
            }
            Target::Unsupported(uri) => {
                tracing::error!(
                    component = %self.component, output, sink = %uri, event_id = event.id(),
                    "this sink's transport is not available in this build; event not delivered"
                );
                Err(PublishError::Unavailable {
                    output: output.to_owned(),
                    reason: format!("no transport for {uri}"),
                })
            }
        }
    }
}

struct HttpDelivery {
    client: reqwest::Client,
    url: reqwest::Url,
    mode: Mode,
    headers: http::HeaderMap,
    component: Arc<str>,
    output: String,
}

impl HttpDelivery {
    async fn run(self, event: Event) {
        let encoded = binding::encode(&event, self.mode);
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=MAX_ATTEMPTS {
            let mut headers = encoded.headers.clone();
            headers.extend(self.headers.clone());
            let result = self
                .client
                .post(self.url.clone())
                .headers(headers)
                .body(encoded.body.clone())
                .send()
                .await;
            let wait = match result {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(component = %self.component, output = %self.output, event_id = event.id(), "delivered");
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let retryable = status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error();
                    if !retryable {
                        tracing::error!(
                            component = %self.component, output = %self.output, sink = %self.url,
                            event_id = event.id(), %status,
                            "sink rejected the event permanently; not retrying"
                        );
                        return;
                    }
                    tracing::warn!(
                        component = %self.component, output = %self.output, sink = %self.url,
                        event_id = event.id(), %status, attempt, "sink failed; will retry"
                    );
                    retry_after.unwrap_or(backoff).min(MAX_RETRY_AFTER)
                }
                Err(error) => {
                    tracing::warn!(
                        component = %self.component, output = %self.output, sink = %self.url,
                        event_id = event.id(), %error, attempt, "cannot reach sink; will retry"
                    );
                    backoff
                }
            };
            if attempt == MAX_ATTEMPTS {
                break;
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        tracing::error!(
            component = %self.component, output = %self.output, sink = %self.url,
            event_id = event.id(), attempts = MAX_ATTEMPTS, "giving up on delivery"
        );
    }
}

/// Parses `Retry-After` in its delay-seconds form (the HTTP-date form is treated as absent).
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
