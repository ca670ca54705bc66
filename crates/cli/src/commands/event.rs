//! `spindle event validate`: check CloudEvents in the JSON format.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use cloudevent::{Event, json};

use crate::input::{DEFAULT_MAX_INPUT, read_capped};

/// Subcommands of `spindle event`.
#[derive(Subcommand)]
pub enum EventCommand {
    /// Check a structured-mode JSON event or a JSON batch.
    ///
    /// Prints the normalized event(s) as JSON and exits 0 when valid; prints every problem
    /// (batch index, attribute, reason) and exits 1 when not.
    Validate(ValidateArgs),
}

/// Flags of `spindle event validate`.
#[derive(Args)]
pub struct ValidateArgs {
    /// File holding a JSON event (an object) or a batch (an array); `-` or nothing reads
    /// standard input.
    #[arg(default_value = "-")]
    file: String,
    /// Largest input accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_INPUT)]
    max_size: u64,
    /// Print compact JSON instead of indented.
    #[arg(long)]
    compact: bool,
}

/// Runs `spindle event …`.
pub fn run(cmd: EventCommand) -> Result<ExitCode> {
    match cmd {
        EventCommand::Validate(args) => validate(args),
    }
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    let input = read_capped(&args.file, args.max_size)?;
    match json::decode_any(&input) {
        Ok((events, is_batch)) => {
            let value = if is_batch {
                serde_json::Value::Array(events.iter().map(json::to_value).collect())
            } else {
                json::to_value(&events[0])
            };
            println!("{}", render(&value, args.compact));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let problems = error.problems();
            let noun = if problems.len() == 1 {
                "problem"
            } else {
                "problems"
            };
            println!("invalid: {} {noun}", problems.len());
            for problem in problems {
                println!("  - {problem}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// JSON text for people (indented) or for pipes (`--compact`).
pub fn render(value: &serde_json::Value, compact: bool) -> String {
    if compact {
        value.to_string()
    } else {
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    }
}

/// The JSON form of events, one object or an array.
pub fn events_json(events: &[Event]) -> serde_json::Value {
    match events {
        [one] => json::to_value(one),
        many => serde_json::Value::Array(many.iter().map(json::to_value).collect()),
    }
}
