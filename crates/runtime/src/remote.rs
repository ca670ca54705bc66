//! `[[subscribe]]`: Spindle as a subscriber. For each entry, a task finds the remote
//! Subscriptions API (directly, or through the `subscriber` endpoint of a remote xRegistry
//! document), makes sure a subscription with this app's route as its sink exists there
//! (adopting one an earlier run left, creating one otherwise), checks it every `refresh` and
//! re-creates it when it is gone, and deletes it when the app stops.
//!
//! A remote that is down or refuses is logged and retried at the next check: the app serves
//! meanwhile, since its own triggers do not depend on it.

use std::time::Duration;

use manifest::{RemoteSubscription, SubscriptionsApi};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long one call to the remote API may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[[subscribe]]` entries of an app, resolved (secrets read) and ready to start.
pub struct RemoteSubscriptions {
    keepers: Vec<Keeper>,
}

/// The running `[[subscribe]]` tasks.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// One `[[subscribe]]` entry, resolved for this run.
struct Keeper {
    config: RemoteSubscription,
    /// The sink URL: this app's route.
    sink: String,
    /// The remote API's bearer token.
    token: Option<String>,
    /// This app's own ingress token, given to the remote as the sink credential.
    sink_token: Option<String>,
    client: reqwest::Client,
}

impl RemoteSubscriptions {
    /// Resolves every entry. `http_base` is where this app's HTTP trigger is reached. Fails
    /// only on what retrying cannot fix: a secret that cannot be read.
    pub fn prepare(
        manifest: &manifest::Manifest,
        http_base: &url::Url,
        client: reqwest::Client,
    ) -> Result<RemoteSubscriptions, crate::app::AppError> {
        let sink_token = match &manifest.application.http.auth_token {
            Some(secret) => Some(secret.resolve().map_err(|e| {
                crate::app::AppError::Config(format!("[application.http] auth_token: {e}"))
            })?),
            None => None,
        };
        let mut keepers = Vec::new();
        for (i, config) in manifest.subscribe.iter().enumerate() {
            let token = match &config.token {
                Some(secret) => Some(secret.resolve().map_err(|e| {
                    crate::app::AppError::Config(format!("[[subscribe]] #{} token: {e}", i + 1))
                })?),
                None => None,
            };
            keepers.push(Keeper {
                sink: format!(
                    "{}{}",
                    http_base.as_str().trim_end_matches('/'),
                    config.route
                ),
                config: config.clone(),
                token,
                sink_token: sink_token.clone(),
                client: client.clone(),
            });
        }
        Ok(RemoteSubscriptions { keepers })
    }

    /// Starts a task per entry; call once the app's HTTP listener takes connections.
    pub fn start(self) -> Running {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for keeper in self.keepers {
            tasks.spawn(keeper.run(stopped.clone()));
        }
        Running { stop, tasks }
    }
}

impl Running {
    /// Stops every task; each deletes its subscription first (bounded by the call timeout).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Keeper {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        // The subscription's own URL at the remote API, once it exists.
        let mut current: Option<String> = None;
        loop {
            // A remote that hangs does not hold up the app's shutdown.
            let ensured = tokio::select! {
                ensured = self.ensure(&mut current) => ensured,
                _ = stopped.wait_for(|stop| *stop) => break,
            };
            match ensured {
                Ok(Some(created)) => {
                    tracing::info!(subscription = %created, sink = %self.sink, "subscribed")
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    sink = %self.sink,
                    "cannot keep the [[subscribe]] subscription (retrying in {:?}): {error}",
                    self.config.refresh
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.refresh) => {}
                _ = stopped.wait_for(|stop| *stop) => break,
            }
        }
        if let Some(url) = current {
            match self.call(reqwest::Method::DELETE, &url, None).await {
                Ok((status, _)) if status.is_success() || status == 404 => {
                    tracing::info!(subscription = %url, "unsubscribed")
                }
                Ok((status, body)) => {
                    tracing::warn!(subscription = %url, %status, body, "cannot unsubscribe")
                }
                Err(error) => tracing::warn!(subscription = %url, "cannot unsubscribe: {error}"),
            }
        }
    }

    /// Makes sure the subscription exists; returns its URL when this call created or adopted it.
    async fn ensure(&self, current: &mut Option<String>) -> Result<Option<String>, String> {
        if let Some(url) = current.as_ref() {
            let (status, body) = self.call(reqwest::Method::GET, url, None).await?;
            if status.is_success() {
                return Ok(None);
            }
            if status != 404 {
                return Err(format!("GET {url} answered {status}: {body}"));
            }
            tracing::warn!(subscription = %url, "the subscription is gone; re-creating it");
            *current = None;
        }
        let collection = self.collection().await?;
        // One an earlier run left (a crash skips the delete) is adopted, not duplicated: the
        // same sink asking for the same events.
        let wanted = self.request();
        let same = |s: &Value| {
            ["sink", "types", "source", "filters"]
                .iter()
                .all(|k| s[*k] == wanted[*k])
        };
        let (status, body) = self.call(reqwest::Method::GET, &collection, None).await?;
        if status.is_success()
            && let Ok(Value::Array(subscriptions)) = serde_json::from_str::<Value>(&body)
            && let Some(id) = subscriptions
                .iter()
                .find(|s| same(s))
                .and_then(|s| s["id"].as_str())
        {
            let url = item_url(&collection, id);
            *current = Some(url.clone());
            return Ok(Some(url));
        }
        let (status, body) = self
            .call(reqwest::Method::POST, &collection, Some(wanted))
            .await?;
        if status != 201 && !status.is_success() {
            return Err(format!("POST {collection} answered {status}: {body}"));
        }
        let created: Value =
            serde_json::from_str(&body).map_err(|e| format!("POST {collection}: {e}"))?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| format!("POST {collection} returned no subscription id: {body}"))?;
        let url = item_url(&collection, id);
        *current = Some(url.clone());
        Ok(Some(url))
    }

    /// The subscription this entry asks for, in the Subscriptions API's terms.
    fn request(&self) -> Value {
        let mut body = json!({ "sink": self.sink, "protocol": "HTTP" });
        if !self.config.types.is_empty() {
            body["types"] = json!(self.config.types);
        }
        if let Some(source) = &self.config.source {
            body["source"] = json!(source);
        }
        if let Some(sql) = &self.config.filter {
            body["filters"] = json!([{ "sql": sql }]);
        }
        if let Some(token) = &self.sink_token {
            body["sinkcredential"] =
                json!({ "credentialtype": "ACCESSTOKEN", "accesstoken": token });
        }
        body
    }

    /// The API's subscriptions collection: written in the manifest, or found in the remote
    /// registry as its `subscriber` endpoint.
    async fn collection(&self) -> Result<String, String> {
        let registry = match &self.config.at {
            SubscriptionsApi::Api(url) => return Ok(url.as_str().trim_end_matches('/').to_owned()),
            SubscriptionsApi::Registry(url) => url,
        };
        let (status, body) = self
            .call(reqwest::Method::GET, registry.as_str(), None)
            .await?;
        if !status.is_success() {
            return Err(format!("GET {registry} answered {status}: {body}"));
        }
        let document: Value =
            serde_json::from_str(&body).map_err(|e| format!("{registry} is not JSON: {e}"))?;
        registry::subscriber_endpoint(&document)
            .ok_or_else(|| format!("{registry} lists no HTTP subscriber endpoint"))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<(reqwest::StatusCode, String), String> {
        let mut request = self
            .client
            .request(method, url)
            .timeout(CALL_TIMEOUT)
            .header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        Ok((status, text))
    }
}

fn item_url(collection: &str, id: &str) -> String {
    format!("{collection}/{}", http_server::uri::encode_component(id))
}
