//! `spindle dlq`: list, replay and purge dead letters (events a subscription's sink would not
//! take) through the admin API's `/deadletters` endpoints.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::commands::sub::{AdminClient, ApiArgs, block_on, pretty, table, text, truncate};

/// Subcommands of `spindle dlq`.
#[derive(Subcommand)]
#[command(after_help = "Examples:
  spindle dlq list
  spindle dlq list --subscription 0b6f… --json
  spindle dlq replay --subscription 0b6f…
  spindle dlq purge --all")]
pub enum DlqCommand {
    /// List dead letters as a table (or JSON with --json, events included).
    List {
        /// Only this subscription's letters.
        #[arg(long)]
        subscription: Option<String>,
        /// At most this many letters.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Move dead letters back to their subscription's queue (all, one subscription's, or one
    /// with --seq).
    Replay {
        /// Only this subscription's letters.
        #[arg(long)]
        subscription: Option<String>,
        /// Only the letter with this sequence number (needs --subscription).
        #[arg(long, requires = "subscription")]
        seq: Option<u64>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete dead letters for good: one subscription's, one (--seq), or all (--all).
    Purge {
        /// Only this subscription's letters.
        #[arg(long, required_unless_present = "all")]
        subscription: Option<String>,
        /// Only the letter with this sequence number (needs --subscription).
        #[arg(long, requires = "subscription")]
        seq: Option<u64>,
        /// Purge every dead letter of every subscription.
        #[arg(long, conflicts_with_all = ["subscription", "seq"])]
        all: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Runs `spindle dlq …`.
pub fn run(cmd: DlqCommand) -> Result<ExitCode> {
    block_on(async move {
        match cmd {
            DlqCommand::List {
                subscription,
                limit,
                json,
                api,
            } => list(&AdminClient::new(&api)?, subscription, limit, json).await,
            DlqCommand::Replay {
                subscription,
                seq,
                api,
            } => {
                let body = json!({ "subscription": subscription, "seq": seq });
                let reply = AdminClient::new(&api)?
                    .call(Method::POST, "/deadletters/replay", Some(body))
                    .await?;
                println!("replayed {} dead letter(s)", text(&reply["replayed"]));
                Ok(ExitCode::SUCCESS)
            }
            DlqCommand::Purge {
                subscription,
                seq,
                all,
                api,
            } => {
                if !all && subscription.is_none() {
                    bail!("give --subscription ID, or --all to purge every dead letter");
                }
                let mut path = String::from("/deadletters");
                if let Some(s) = &subscription {
                    path.push_str(&format!(
                        "?subscription={}",
                        http_server::uri::encode_component(s)
                    ));
                    if let Some(seq) = seq {
                        path.push_str(&format!("&seq={seq}"));
                    }
                }
                let reply = AdminClient::new(&api)?
                    .call(Method::DELETE, &path, None)
                    .await?;
                println!("purged {} dead letter(s)", text(&reply["purged"]));
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn list(
    client: &AdminClient,
    subscription: Option<String>,
    limit: usize,
    as_json: bool,
) -> Result<ExitCode> {
    let mut path = format!("/deadletters?limit={limit}");
    if let Some(s) = &subscription {
        path.push_str(&format!(
            "&subscription={}",
            http_server::uri::encode_component(s)
        ));
    }
    let letters = client.call(Method::GET, &path, None).await?;
    if as_json {
        println!("{}", pretty(&letters));
        return Ok(ExitCode::SUCCESS);
    }
    let letters = letters.as_array().cloned().unwrap_or_default();
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = letters.iter().map(row).collect();
    print!(
        "{}",
        table(
            &[
                "SUBSCRIPTION",
                "SEQ",
                "EVENT",
                "TYPE",
                "ATTEMPTS",
                "STATUS",
                "DEAD AT",
                "REASON"
            ],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

fn row(letter: &Value) -> Vec<String> {
    vec![
        text(&letter["subscription"]),
        text(&letter["seq"]),
        text(&letter["event"]["id"]),
        text(&letter["event"]["type"]),
        text(&letter["attempts"]),
        text(&letter["status"]),
        text(&letter["deadAt"]),
        truncate(&text(&letter["reason"]), 60),
    ]
}
