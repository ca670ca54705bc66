//! `spindle discover URL`: what a remote registry offers (its endpoints and message types)
//! and how to subscribe to it.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::Value;

use crate::commands::sub::table;

/// Flags of `spindle discover`.
#[derive(Args)]
#[command(after_help = "Examples:
  spindle discover http://127.0.0.1:3001            (another Spindle's admin listener)
  spindle discover https://registry.example.com/registry --json

Works with any xRegistry document (the CloudEvents registry model): Spindle's own /registry,
a file exported with `spindle registry export` served anywhere, or another implementation's.")]
pub struct DiscoverArgs {
    /// The registry document's URL, or the base URL of a Spindle admin listener (its
    /// /registry is then read).
    url: String,
    /// Bearer token, when the registry requires one.
    #[arg(long, env = "SPINDLE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the document as JSON instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Runs `spindle discover`.
pub fn run(args: DiscoverArgs) -> Result<ExitCode> {
    let runtime = crate::commands::registry::runtime_for_io()?;
    let (url, document) = runtime.block_on(fetch(&args.url, args.token.as_deref()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", summary(&url, &document));
    Ok(ExitCode::SUCCESS)
}

/// Reads the document at `url`, or at `url/registry` when `url` is not one.
async fn fetch(url: &str, token: Option<&str>) -> Result<(String, Value)> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        bail!("`{url}` is not an http(s) URL");
    }
    let base = url.trim_end_matches('/');
    let mut last_error = None;
    for candidate in [base.to_owned(), format!("{base}/registry")] {
        let (status, body) = crate::commands::registry::get(&candidate, token).await?;
        if !status.is_success() {
            last_error = Some(format!("{candidate} answered {status}"));
            continue;
        }
        match serde_json::from_str::<Value>(&body) {
            Ok(document)
                if ["endpoints", "messagegroups", "schemagroups"]
                    .iter()
                    .any(|k| document.get(k).is_some()) =>
            {
                return Ok((candidate, document));
            }
            _ => last_error = Some(format!("{candidate} is not a registry document")),
        }
    }
    bail!(
        "no registry document at {url}: {}",
        last_error.unwrap_or_default()
    )
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_default()
}

fn summary(url: &str, document: &Value) -> String {
    let mut out = format!("Registry {url}\n\nEndpoints\n");
    let empty = serde_json::Map::new();
    let endpoints = document["endpoints"].as_object().unwrap_or(&empty);
    let rows: Vec<Vec<String>> = endpoints
        .iter()
        .map(|(id, e)| {
            let usage: Vec<String> = e["usage"]
                .as_array()
                .map(|u| u.iter().map(text).collect())
                .unwrap_or_default();
            let uri = registry::endpoint_uri(e).unwrap_or_default();
            let channel = ["subject", "topic", "topicfilter", "node"]
                .iter()
                .find_map(|k| e["protocoloptions"][*k].as_str())
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let groups: Vec<String> = e["messagegroups"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .map(|g| text(g).trim_start_matches("/messagegroups/").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            vec![
                id.clone(),
                usage.join(","),
                text(&e["protocol"]),
                format!("{uri}{channel}"),
                groups.join(", "),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("  (none)\n");
    } else {
        for line in table(
            &["ID", "USAGE", "PROTOCOL", "ADDRESS", "MESSAGE GROUPS"],
            &rows,
        )
        .lines()
        {
            out.push_str(&format!("  {line}\n"));
        }
    }

    out.push_str("\nMessages\n");
    let mut types = Vec::new();
    let groups = document["messagegroups"].as_object().unwrap_or(&empty);
    let mut rows = Vec::new();
    for (gid, group) in groups {
        for (mid, message) in group["messages"].as_object().unwrap_or(&empty) {
            let ty = message["envelopemetadata"]["type"]["value"]
                .as_str()
                .unwrap_or(mid)
                .to_owned();
            rows.push(vec![
                gid.clone(),
                ty.clone(),
                text(&message["datacontenttype"]),
                text(&message["dataschemauri"]),
            ]);
            if !types.contains(&ty) {
                types.push(ty);
            }
        }
    }
    if rows.is_empty() {
        out.push_str("  (none declared)\n");
    } else {
        for line in table(&["GROUP", "TYPE", "CONTENT TYPE", "SCHEMA"], &rows).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }

    out.push_str("\nSubscribe\n");
    match registry::subscriber_endpoint(document) {
        Some(api) => {
            let quoted: Vec<String> = types.iter().map(|t| format!("\"{t}\"")).collect();
            out.push_str(&format!(
                "  In your spindle.toml (kept while your app runs, deleted when it stops):\n\
                 \x20   [[subscribe]]\n\
                 \x20   registry = \"{url}\"\n\
                 \x20   route = \"/events\"          # one of your [[trigger.http]] routes\n\
                 \x20   types = [{}]\n\
                 \x20 Or once, by hand:\n\
                 \x20   spindle sub create --api {} --sink <your URL> {}\n",
                quoted.join(", "),
                api.trim_end_matches("/subscriptions"),
                types
                    .iter()
                    .map(|t| format!("--type {t}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        None => out.push_str("  This registry lists no HTTP subscriber endpoint.\n"),
    }
    out
}
