//! `spindle filter eval`: try a CESQL expression or a Subscriptions API filter on an event,
//! the quickest way to debug a subscription that does not match.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use cloudevent::json;

use crate::input::{DEFAULT_MAX_INPUT, read_capped};

/// Subcommands of `spindle filter`.
#[derive(Subcommand)]
pub enum FilterCommand {
    /// Evaluate against an event. Prints `true` or `false` (or, for a CESQL expression that is
    /// not a predicate, its value) and any evaluation errors on standard error; exits 0.
    /// A filter or expression that does not parse is reported with its position; exits 2.
    Eval(EvalArgs),
}

/// Flags of `spindle filter eval`.
#[derive(Args)]
#[command(after_help = "Examples:
  spindle filter eval --sql \"type = 'com.example.order.created' AND source LIKE '/shop/%'\" --event order.json
  spindle filter eval --filter '{\"prefix\": {\"type\": \"com.example.\"}}' --event order.json
  spindle filter eval --filter '[{\"exact\": {\"subject\": \"a\"}}, {\"sql\": \"priority > 3\"}]' --event order.json")]
pub struct EvalArgs {
    /// A CESQL 1.0 expression.
    #[arg(long, conflicts_with = "filter", required_unless_present = "filter")]
    sql: Option<String>,
    /// A Subscriptions API filter in JSON: one filter object, or an array of them (all must
    /// match). Dialects: exact, prefix, suffix, all, any, not, sql.
    #[arg(long)]
    filter: Option<String>,
    /// The event, in the JSON format (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    event: String,
}

/// Runs `spindle filter …`.
pub fn run(cmd: FilterCommand) -> Result<ExitCode> {
    match cmd {
        FilterCommand::Eval(args) => eval(args),
    }
}

fn eval(args: EvalArgs) -> Result<ExitCode> {
    let bytes = read_capped(&args.event, DEFAULT_MAX_INPUT)?;
    let event = match json::decode(&bytes) {
        Ok(event) => event,
        Err(e) => bail!("{} is not a valid CloudEvent:\n{e}", args.event),
    };
    if let Some(sql) = &args.sql {
        let expression = match cesql::Expression::parse(sql) {
            Ok(expression) => expression,
            Err(e) => {
                eprintln!("error: invalid CESQL expression: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let evaluation = expression.evaluate(&event);
        println!("{}", evaluation.value);
        for error in &evaluation.errors {
            eprintln!("evaluation error: {error}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let text = args.filter.unwrap_or_default();
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("error: --filter is not JSON: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let filter = match &value {
        serde_json::Value::Array(list) => cesql::Filter::from_json_list(list),
        single => cesql::Filter::from_json(single),
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("error: invalid filter: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let (matched, errors) = filter.matches_with_errors(&event);
    println!("{matched}");
    for error in &errors {
        eprintln!("evaluation error: {error}");
    }
    Ok(ExitCode::SUCCESS)
}
