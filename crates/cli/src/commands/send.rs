//! `spindle send`: build a CloudEvent from flags (or read one from a file), send it over HTTP
//! in the chosen content mode, and print the reply.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use cloudevent::http::{self, Mode};
use cloudevent::{AttributeValue, Data, Event, Timestamp, json, media};

use crate::commands::event::{events_json, render};
use crate::input::{DEFAULT_MAX_INPUT, read_capped};

/// Flags of `spindle send`.
#[derive(Args)]
#[command(after_help = "Examples:
  spindle send http://127.0.0.1:3000/orders --type com.example.order.created --data '{\"sku\":\"A1\"}'
  spindle send http://127.0.0.1:3000/orders --event order.json --mode structured
  spindle send http://127.0.0.1:3000/orders --event batch.json --mode batch
  spindle send http://127.0.0.1:3000/orders --event order.json --mode structured --format protobuf")]
pub struct SendArgs {
    /// The HTTP URL to POST the event to.
    url: String,
    /// `id` of the event [default: a fresh UUID].
    #[arg(long)]
    id: Option<String>,
    /// `source` of the event (a URI-reference).
    #[arg(long, default_value = "/spindle/cli")]
    source: String,
    /// `type` of the event (required unless --event is given).
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    ty: Option<String>,
    /// `subject` of the event.
    #[arg(long)]
    subject: Option<String>,
    /// `time` of the event: RFC 3339, or `now`.
    #[arg(long)]
    time: Option<String>,
    /// The payload, inline. Without --content-type it is sent as application/json when it
    /// parses as JSON, else as text/plain.
    #[arg(long, conflicts_with = "data_file")]
    data: Option<String>,
    /// The payload, read from a file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    data_file: Option<String>,
    /// `datacontenttype` of the payload.
    #[arg(long, value_name = "MEDIA_TYPE")]
    content_type: Option<String>,
    /// An extension attribute, `name=value` (repeatable); values are strings.
    #[arg(long = "ext", value_name = "NAME=VALUE")]
    extensions: Vec<String>,
    /// Send the event(s) in a JSON file instead (an event or a batch); `-` reads standard input.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["id", "ty", "subject", "time", "data", "data_file", "content_type", "extensions"])]
    event: Option<String>,
    /// Content mode: binary, structured or batch. A batch file in binary or structured mode
    /// is sent as one request per event.
    #[arg(long, default_value = "binary")]
    mode: Mode,
    /// Event format of structured and batched mode: json, protobuf or avro (Avro has no
    /// batch form: a batch goes as JSON). The reply is decoded in whatever format it comes.
    #[arg(long, default_value = "json")]
    format: cloudevent::Format,
    /// An extra request header, `Name: value` (repeatable), e.g. for `Authorization`.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Seconds to wait for the reply.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Largest file accepted for --event or --data-file, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_INPUT)]
    max_size: u64,
}

/// Runs `spindle send`.
pub fn run(args: SendArgs) -> Result<ExitCode> {
    let events = match &args.event {
        Some(file) => {
            let bytes = read_capped(file, args.max_size)?;
            match json::decode_any(&bytes) {
                Ok((events, _)) => events,
                Err(e) => bail!("{file} does not hold valid CloudEvents:\n{e}"),
            }
        }
        None => vec![event_from_flags(&args)?],
    };
    let extra_headers = parse_headers(&args.headers)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(send_all(&args, events, extra_headers))
}

fn event_from_flags(args: &SendArgs) -> Result<Event> {
    let Some(ty) = &args.ty else {
        bail!("--type is required (or give a whole event with --event FILE)");
    };
    let mut b = Event::builder()
        .id(args
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()))
        .source(args.source.clone())
        .ty(ty.clone());
    if let Some(subject) = &args.subject {
        b = b.subject(subject.clone());
    }
    if let Some(time) = &args.time {
        let time = if time == "now" {
            Timestamp::now()
        } else {
            time.parse().map_err(|e| anyhow::anyhow!("--time: {e}"))?
        };
        b = b.time(time);
    }
    for ext in &args.extensions {
        let Some((name, value)) = ext.split_once('=') else {
            bail!("--ext `{ext}`: expected name=value");
        };
        let value =
            AttributeValue::string(value).map_err(|e| anyhow::anyhow!("--ext {name}: {e}"))?;
        b = b.extension(name, value);
    }
    if let Some((content_type, data)) = payload(args)? {
        if let Some(ct) = content_type {
            b = b.datacontenttype(ct);
        }
        b = b.data(data);
    }
    b.build().map_err(|e| anyhow::anyhow!("{e}"))
}

/// The payload and its media type, from --data / --data-file / --content-type.
fn payload(args: &SendArgs) -> Result<Option<(Option<String>, Data)>> {
    if let Some(text) = &args.data {
        return Ok(Some(match &args.content_type {
            Some(ct) => (Some(ct.clone()), Data::binary(Bytes::from(text.clone()))),
            None => match Data::json_text(Bytes::from(text.clone())) {
                Ok(json) => (Some(media::APPLICATION_JSON.to_owned()), json),
                Err(_) => (
                    Some("text/plain; charset=utf-8".to_owned()),
                    Data::text(text.clone()),
                ),
            },
        }));
    }
    if let Some(file) = &args.data_file {
        let bytes = read_capped(file, args.max_size)?;
        let ct = args
            .content_type
            .clone()
            .or_else(|| guess_content_type(file));
        return Ok(Some((ct, Data::binary(bytes))));
    }
    if args.content_type.is_some() {
        bail!("--content-type needs a payload: give --data or --data-file");
    }
    Ok(None)
}

fn guess_content_type(file: &str) -> Option<String> {
    let ext = std::path::Path::new(file)
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    Some(
        match ext.as_str() {
            "json" => "application/json",
            "txt" => "text/plain; charset=utf-8",
            "xml" => "application/xml",
            "csv" => "text/csv",
            "html" => "text/html",
            _ => "application/octet-stream",
        }
        .to_owned(),
    )
}

fn parse_headers(raw: &[String]) -> Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for h in raw {
        let Some((name, value)) = h.split_once(':') else {
            bail!("--header `{h}`: expected `Name: value`");
        };
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("--header `{h}`: invalid header name"))?;
        let value = reqwest::header::HeaderValue::from_str(value.trim())
            .with_context(|| format!("--header `{h}`: invalid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

async fn send_all(
    args: &SendArgs,
    events: Vec<Event>,
    extra_headers: reqwest::header::HeaderMap,
) -> Result<ExitCode> {
    if !args.url.starts_with("http://") && !args.url.starts_with("https://") {
        bail!("`{}` is not an HTTP URL (expected http://…)", args.url);
    }
    let client = reqwest::Client::builder()
        // A webhook sender never follows redirects: the receiver must be addressed directly.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout))
        .build()
        .context("cannot build the HTTP client")?;
    let requests: Vec<http::Encoded> = match args.mode {
        Mode::Batch => vec![http::encode_batch_as(&events, args.format)],
        mode => events
            .iter()
            .map(|e| http::encode_as(e, mode, args.format))
            .collect(),
    };
    let mut all_ok = true;
    for encoded in requests {
        let mut headers = encoded.headers;
        headers.extend(extra_headers.clone());
        let response = client
            .post(&args.url)
            .headers(headers)
            .body(encoded.body)
            .send()
            .await
            .with_context(|| format!("cannot send to {}", args.url))?;
        all_ok &= print_response(response).await?;
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints the status and whatever came back; returns whether the status was 2xx.
async fn print_response(response: reqwest::Response) -> Result<bool> {
    let status = response.status();
    println!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .context("cannot read the response body")?;
    if body.is_empty() && !headers.contains_key("ce-specversion") {
        return Ok(status.is_success());
    }
    match http::decode(&headers, body.clone()) {
        Ok(message) => println!("{}", render(&events_json(&message.into_events()), false)),
        Err(cloudevent::Error::NotCloudEvent(_) | cloudevent::Error::UnsupportedFormat(_)) => {
            println!("{}", String::from_utf8_lossy(&body));
        }
        Err(e) => println!("the reply is not a valid CloudEvent: {e}"),
    }
    Ok(status.is_success())
}
