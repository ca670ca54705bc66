//! `spindle events tail`: the events passing through a running app, live, from the admin
//! API's `/events/tail` stream (Server-Sent Events): each handled event and each delivery
//! attempt with its outcome and latency. Reading never slows the app: when this client falls
//! behind, the app drops records for it and says how many.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::commands::sub::{ApiArgs, block_on};

/// Subcommands of `spindle events`.
#[derive(Subcommand)]
pub enum EventsCommand {
    /// Stream the events passing through a running app: each one a component handled and
    /// each delivery attempt to a subscription or output, with outcome and latency, until
    /// Ctrl-C (or --count).
    #[command(after_help = "Examples:
  spindle events tail
  spindle events tail --filter \"type LIKE 'com.example.order.%'\"
  spindle events tail --subscription output:orders:shipping
  spindle events tail --json --count 10")]
    Tail(TailArgs),
}

/// `spindle events tail`.
#[derive(Args)]
pub struct TailArgs {
    /// Only events this CESQL expression matches (e.g. "source = '/shop' AND EXISTS subject").
    #[arg(long)]
    pub filter: Option<String>,
    /// Only the delivery attempts of this subscription (or output, `output:<component>:<name>`).
    #[arg(long, conflicts_with = "component")]
    pub subscription: Option<String>,
    /// Only the events this component handled.
    #[arg(long)]
    pub component: Option<String>,
    /// Print each record as one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Runs `spindle events <command>`.
pub fn run(command: EventsCommand) -> Result<ExitCode> {
    match command {
        EventsCommand::Tail(args) => block_on(tail(args)),
    }
}

fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn tail(args: TailArgs) -> Result<ExitCode> {
    let base = args.api.api.trim_end_matches('/');
    if !base.starts_with("http://") && !base.starts_with("https://") {
        bail!(
            "--api `{}` is not an HTTP URL (expected http://host:port)",
            args.api.api
        );
    }
    let mut query = Vec::new();
    for (name, value) in [
        ("filter", &args.filter),
        ("subscription", &args.subscription),
        ("component", &args.component),
    ] {
        if let Some(value) = value {
            query.push(format!("{name}={}", encode(value)));
        }
    }
    let url = format!("{base}/events/tail?{}", query.join("&"));
    // No overall timeout: the stream lasts as long as the user watches.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(args.api.timeout))
        .build()
        .context("cannot build the HTTP client")?;
    let mut request = client.get(&url);
    if let Some(token) = &args.api.token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the admin API at {base}: {e}\n(is `spindle up` running with its admin \
             listener? point --api or SPINDLE_API at it)"
        )
    })?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        bail!(
            "{}",
            crate::commands::sub::describe_failure(
                &reqwest::Method::GET,
                "/events/tail",
                status,
                &json
            )
        );
    }
    eprintln!("Tailing {base} (Ctrl-C to stop)");
    let mut buffer = Vec::new();
    let mut shown = 0u64;
    let stdout = std::io::stdout();
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk.context("the stream broke")?,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(chunk) = chunk else {
            eprintln!("The stream ended (the app stopped).");
            return Ok(ExitCode::SUCCESS);
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let message: Vec<u8> = buffer.drain(..end + 2).collect();
            let message = String::from_utf8_lossy(&message);
            let mut out = stdout.lock();
            match parse(&message) {
                Message::Record(record) => {
                    let line = if args.json {
                        record.to_string()
                    } else {
                        describe(&record)
                    };
                    // A closed pipe (`| head`) ends the tail quietly.
                    if writeln!(out, "{line}").is_err() {
                        return Ok(ExitCode::SUCCESS);
                    }
                    shown += 1;
                    if args.count.is_some_and(|n| shown >= n) {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                Message::Dropped(n) => {
                    eprintln!("({n} records dropped: this tail fell behind the app)");
                }
                Message::Other => {}
            }
        }
    }
}

/// One Server-Sent Events message of the tail.
enum Message {
    Record(Value),
    Dropped(u64),
    Other,
}

fn parse(message: &str) -> Message {
    let mut event = "message";
    let mut data = String::new();
    for line in message.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    let Ok(value) = serde_json::from_str::<Value>(&data) else {
        return Message::Other;
    };
    match event {
        "dropped" => Message::Dropped(value["dropped"].as_u64().unwrap_or(0)),
        "message" => Message::Record(value),
        _ => Message::Other,
    }
}

/// One record as a line: time, stage, where, outcome, latency, then the event.
fn describe(record: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let at = text(&record["at"]);
    let time = at.split('T').nth(1).unwrap_or(&at).trim_end_matches('Z');
    let place = match text(&record["stage"]).as_str() {
        "handled" => text(&record["component"]),
        _ => text(&record["subscription"]),
    };
    let event = &record["event"];
    let mut line = format!(
        "{time}  {:<8}  {place:<24}  {:<9}  {:>9}  {}  id={}  source={}",
        text(&record["stage"]),
        text(&record["outcome"]),
        format!("{:.1} ms", record["latencyMs"].as_f64().unwrap_or(0.0)),
        text(&event["type"]),
        text(&event["id"]),
        text(&event["source"]),
    );
    if let Some(detail) = record["detail"].as_str() {
        line.push_str(&format!("  ({detail})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse() {
        match parse("data: {\"outcome\":\"ok\"}\n\n") {
            Message::Record(v) => assert_eq!(v["outcome"], "ok"),
            _ => panic!("not a record"),
        }
        assert!(matches!(
            parse("event: dropped\ndata: {\"dropped\":7}\n\n"),
            Message::Dropped(7)
        ));
        assert!(matches!(parse(": keep-alive\n\n"), Message::Other));
    }

    #[test]
    fn records_read_as_one_line() {
        let line = describe(&serde_json::json!({
            "at": "2026-12-04T23:50:01.123Z", "stage": "delivery", "subscription": "audit",
            "outcome": "retry", "latencyMs": 2.25, "detail": "HTTP 503",
            "event": {"id": "1", "source": "/s", "type": "t"}
        }));
        assert!(line.starts_with("23:50:01.123  delivery  audit"), "{line}");
        assert!(line.contains("retry") && line.contains("2.2 ms") && line.ends_with("(HTTP 503)"));
    }
}
