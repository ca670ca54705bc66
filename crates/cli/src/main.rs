//! `spindle`: run WebAssembly components as CloudEvents handlers.
//!
//! The binary is thin on purpose: it parses flags and calls the libraries, so everything it
//! does can also be done (and tested) from Rust.

mod commands;
mod input;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Spindle runs WebAssembly components as handlers for CloudEvents.
///
/// A component exports one function, `handle(event) -> result<list<event>, error>`, and never
/// learns which transport brought its event. Start with `spindle event validate` and
/// `spindle send`.
#[derive(Parser)]
#[command(name = "spindle", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with CloudEvents: validate them.
    #[command(subcommand)]
    Event(commands::event::EventCommand),
    /// Send a CloudEvent to an HTTP endpoint and print the reply.
    Send(Box<commands::send::SendArgs>),
    /// Manage subscriptions through a running instance's admin API.
    #[command(subcommand)]
    Sub(commands::sub::SubCommand),
    /// List, replay and purge dead letters through a running instance's admin API.
    #[command(subcommand)]
    Dlq(commands::dlq::DlqCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Event(cmd) => commands::event::run(cmd),
        Command::Send(args) => commands::send::run(*args),
        Command::Sub(cmd) => commands::sub::run(cmd),
        Command::Dlq(cmd) => commands::dlq::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
