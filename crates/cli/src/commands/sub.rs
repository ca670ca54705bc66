//! `spindle sub`: manage subscriptions through a running instance's admin API (the
//! CloudEvents Subscriptions API), so the CLI and any other client see the same contract.
//!
//! Also home of [`AdminClient`], the small admin-API client `spindle dlq` shares.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

/// Where the admin API is and how to authenticate: shared by `spindle sub` and `spindle dlq`.
#[derive(Args, Clone)]
pub struct ApiArgs {
    /// Base URL of the admin API.
    #[arg(long, env = "SPINDLE_API", default_value = "http://127.0.0.1:3001")]
    pub api: String,
    /// Bearer token for the admin API.
    #[arg(long, env = "SPINDLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// Subcommands of `spindle sub`.
#[derive(Subcommand)]
#[command(after_help = "Examples:
  spindle sub create --sink http://127.0.0.1:9000/hook --type com.example.order.created
  spindle sub create --sink http://127.0.0.1:9000/hook --sql \"subject LIKE 'A%'\"
  spindle sub create --sink http://127.0.0.1:9000/hook --filter '{\"prefix\":{\"source\":\"/shop\"}}'
  spindle sub list
  spindle sub get 0b6f…
  spindle sub delete 0b6f…")]
pub enum SubCommand {
    /// Create a subscription (or, with --id, replace an existing one); prints it as JSON.
    Create(Box<CreateArgs>),
    /// List subscriptions as a table (or JSON with --json).
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print one subscription as JSON.
    Get {
        /// The subscription id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a subscription (its pending deliveries are dropped; dead letters are kept).
    Delete {
        /// The subscription id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Flags of `spindle sub create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Where events are delivered: http://host:port/path, nats://host:port/subject,
    /// mqtt://host:port/topic, amqp://host:port/queue/NAME, kafka://host:port/topic, or
    /// component:<id> (a component of the app, in process).
    #[arg(long)]
    sink: String,
    /// Delivery protocol: HTTP, NATS, MQTT5, MQTT3, AMQP or KAFKA; by default the one the
    /// sink's scheme names (MQTT5 for mqtt://, HTTP for component:).
    #[arg(long)]
    protocol: Option<String>,
    /// A filter in the Subscriptions API JSON form, e.g. '{"exact":{"type":"t"}}'
    /// (repeatable; all must match).
    #[arg(long = "filter", value_name = "JSON")]
    filters: Vec<String>,
    /// A CESQL filter expression (shorthand for --filter '{"sql": EXPR}').
    #[arg(long, value_name = "EXPR")]
    sql: Option<String>,
    /// An event type to deliver (repeatable).
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    types: Vec<String>,
    /// The event source to deliver.
    #[arg(long)]
    source: Option<String>,
    /// An implementation-specific setting, `key=value` (repeatable), e.g.
    /// `delivery.maxAttempts=5`.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Replace the existing subscription with this id (PUT) instead of creating a new one.
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `spindle sub …`.
pub fn run(cmd: SubCommand) -> Result<ExitCode> {
    block_on(async move {
        match cmd {
            SubCommand::Create(args) => create(*args).await,
            SubCommand::List { json, api } => list(&AdminClient::new(&api)?, json).await,
            SubCommand::Get { id, api } => {
                let sub = AdminClient::new(&api)?
                    .call(Method::GET, &item_path(&id), None)
                    .await?;
                println!("{}", pretty(&sub));
                Ok(ExitCode::SUCCESS)
            }
            SubCommand::Delete { id, api } => {
                AdminClient::new(&api)?
                    .call(Method::DELETE, &item_path(&id), None)
                    .await?;
                println!("deleted subscription {id}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// Runs a future on a current-thread runtime: one request at a time needs no more.
pub(crate) fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// The protocol a sink URI's scheme implies; HTTP when it names none (the API then says
/// what is wrong with the sink).
fn protocol_of(sink: &str) -> &'static str {
    let scheme = sink.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("nats") => "NATS",
        Some("mqtt") => "MQTT5",
        Some("amqp") => "AMQP",
        Some("kafka") => "KAFKA",
        _ => "HTTP",
    }
}

/// The JSON body of `sub create` from its flags.
fn request_body(args: &CreateArgs) -> Result<Value> {
    let mut body = Map::new();
    body.insert("sink".into(), json!(args.sink));
    let protocol = match &args.protocol {
        Some(protocol) => protocol.to_ascii_uppercase(),
        None => protocol_of(&args.sink).to_owned(),
    };
    body.insert("protocol".into(), json!(protocol));
    if let Some(source) = &args.source {
        body.insert("source".into(), json!(source));
    }
    if !args.types.is_empty() {
        body.insert("types".into(), json!(args.types));
    }
    let mut filters = Vec::new();
    for (i, text) in args.filters.iter().enumerate() {
        let filter: Value = serde_json::from_str(text)
            .with_context(|| format!("--filter #{} is not valid JSON: {text}", i + 1))?;
        if !filter.is_object() {
            bail!(
                "--filter #{} must be a JSON object, e.g. '{{\"exact\":{{\"type\":\"t\"}}}}'",
                i + 1
            );
        }
        filters.push(filter);
    }
    if let Some(sql) = &args.sql {
        filters.push(json!({ "sql": sql }));
    }
    if !filters.is_empty() {
        body.insert("filters".into(), Value::Array(filters));
    }
    if !args.config.is_empty() {
        let mut config = Map::new();
        for entry in &args.config {
            let Some((k, v)) = entry.split_once('=') else {
                bail!("--config `{entry}`: expected key=value");
            };
            config.insert(k.trim().to_owned(), json!(v));
        }
        body.insert("config".into(), Value::Object(config));
    }
    if let Some(id) = &args.id {
        body.insert("id".into(), json!(id));
    }
    Ok(Value::Object(body))
}

async fn create(args: CreateArgs) -> Result<ExitCode> {
    let client = AdminClient::new(&args.api)?;
    let body = request_body(&args)?;
    let sub = match &args.id {
        Some(id) => client.call(Method::PUT, &item_path(id), Some(body)).await?,
        None => {
            client
                .call(Method::POST, "/subscriptions", Some(body))
                .await?
        }
    };
    println!("{}", pretty(&sub));
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &AdminClient, as_json: bool) -> Result<ExitCode> {
    let subs = client.call(Method::GET, "/subscriptions", None).await?;
    if as_json {
        println!("{}", pretty(&subs));
        return Ok(ExitCode::SUCCESS);
    }
    let subs = subs.as_array().cloned().unwrap_or_default();
    if subs.is_empty() {
        println!("no subscriptions");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = subs
        .iter()
        .map(|s| {
            vec![
                text(&s["id"]),
                text(&s["protocol"]),
                text(&s["sink"]),
                filter_summary(s),
            ]
        })
        .collect();
    print!("{}", table(&["ID", "PROTOCOL", "SINK", "FILTERS"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// One line saying which events a subscription takes: `source`, `types` and `filters`.
fn filter_summary(sub: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(source) = sub["source"].as_str() {
        parts.push(format!("source={source}"));
    }
    if let Some(types) = sub["types"].as_array() {
        let types: Vec<String> = types.iter().map(text).collect();
        parts.push(format!("types={}", types.join(",")));
    }
    if let Some(filters) = sub["filters"].as_array() {
        parts.extend(filters.iter().map(Value::to_string));
    }
    if parts.is_empty() {
        "(all events)".into()
    } else {
        truncate(&parts.join(" "), 80)
    }
}

/// The API path of one subscription.
fn item_path(id: &str) -> String {
    format!("/subscriptions/{}", http_server::uri::encode_component(id))
}

/// A JSON value as table text (strings without quotes).
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Shortens to `max` characters with an ellipsis.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Indented JSON.
pub(crate) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A client of the admin API: JSON in, JSON out, problem details turned into readable errors.
pub(crate) struct AdminClient {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl AdminClient {
    /// A client for `--api` / `--token`.
    pub(crate) fn new(args: &ApiArgs) -> Result<Self> {
        let base = args.api.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!(
                "--api `{}` is not an HTTP URL (expected http://host:port)",
                args.api
            );
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(args.timeout))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(AdminClient {
            base,
            token: args.token.clone(),
            client,
        })
    }

    /// Sends a request and returns the JSON reply (`null` for an empty one); any non-2xx
    /// reply is an error carrying the API's problem details.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the admin API at {}: {e}\n(is `spindle up` running with its admin \
                 listener? point --api or SPINDLE_API at it)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("cannot read the admin API's reply")?;
        let json: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        if status.is_success() {
            return Ok(json);
        }
        bail!("{}", describe_failure(&method, path, status, &json))
    }
}

/// A readable error from a failed call: the status, then the problem's detail and field.
pub(crate) fn describe_failure(
    method: &Method,
    path: &str,
    status: StatusCode,
    body: &Value,
) -> String {
    let mut message = format!(
        "{method} {path}: {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    match body {
        Value::Object(problem) => {
            if let Some(detail) = problem.get("detail").and_then(Value::as_str) {
                message.push_str(&format!("\n  {detail}"));
            }
            if let Some(field) = problem.get("field").and_then(Value::as_str) {
                message.push_str(&format!("\n  field: {field}"));
            }
            if let (Some(line), Some(column)) = (problem.get("line"), problem.get("column")) {
                message.push_str(&format!(" (CESQL line {line}, column {column})"));
            }
        }
        Value::String(s) if !s.is_empty() => message.push_str(&format!("\n  {}", truncate(s, 500))),
        _ => {}
    }
    if status == StatusCode::UNAUTHORIZED {
        message.push_str("\n  (give the admin token with --token or SPINDLE_TOKEN)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "SINK"],
            &[
                vec!["a".into(), "http://x".into()],
                vec!["long-id".into(), "-".into()],
            ],
        );
        assert_eq!(t, "ID       SINK\na        http://x\nlong-id  -\n");
    }

    #[test]
    fn ids_are_escaped() {
        assert_eq!(item_path("a b/c"), "/subscriptions/a%20b%2Fc");
    }

    #[test]
    fn summaries() {
        let s = json!({"types": ["a", "b"], "filters": [{"sql": "x = 1"}]});
        assert_eq!(filter_summary(&s), r#"types=a,b {"sql":"x = 1"}"#);
        assert_eq!(filter_summary(&json!({})), "(all events)");
    }
}
