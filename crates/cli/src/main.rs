//! `spindle`: run WebAssembly components as CloudEvents handlers.
//!
//! The binary is thin on purpose: it parses flags and calls the libraries, so everything it
//! does can also be done (and tested) from Rust.

mod commands;
mod input;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a handler's event is allocated and freed
/// across tasks and threads many times over (codec, instance, delivery), and glibc's malloc
/// was a quarter of the server's CPU per event in profiles of the NATS path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Create a project from a template.
    New(commands::new::NewArgs),
    /// Build every component of spindle.toml (runs each `[component.<id>.build] command`).
    Build(commands::build::BuildArgs),
    /// Run the app described by spindle.toml (its triggers, deliveries and the admin API) until Ctrl-C.
    Up(commands::up::UpArgs),
    /// Work with CloudEvents: validate them.
    #[command(subcommand)]
    Event(commands::event::EventCommand),
    /// Watch the events passing through a running app (`spindle events tail`).
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Evaluate a CESQL expression or a Subscriptions API filter against an event.
    #[command(subcommand)]
    Filter(commands::filter::FilterCommand),
    /// Send a CloudEvent to an HTTP endpoint and print the reply.
    Send(Box<commands::send::SendArgs>),
    /// Manage subscriptions through a running instance's admin API.
    #[command(subcommand)]
    Sub(commands::sub::SubCommand),
    /// List, replay and purge dead letters through a running instance's admin API.
    #[command(subcommand)]
    Dlq(commands::dlq::DlqCommand),
    /// Show what a remote registry offers (endpoints, event types) and how to subscribe to it.
    Discover(commands::discover::DiscoverArgs),
    /// Link a CloudEvents handler to a protocol binder: one wasi:http component that runs on
    /// any wasi:http host (wasmtime serve, Spin).
    Compose(commands::compose::ComposeArgs),
    /// Export the app's xRegistry document (endpoints, message types, schemas), or check one.
    #[command(subcommand)]
    Registry(commands::registry::RegistryCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::New(args) => commands::new::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Up(args) => commands::up::run(args),
        Command::Event(cmd) => commands::event::run(cmd),
        Command::Events(cmd) => commands::events::run(cmd),
        Command::Filter(cmd) => commands::filter::run(cmd),
        Command::Send(args) => commands::send::run(*args),
        Command::Sub(cmd) => commands::sub::run(cmd),
        Command::Dlq(cmd) => commands::dlq::run(cmd),
        Command::Registry(cmd) => commands::registry::run(cmd),
        Command::Discover(args) => commands::discover::run(args),
        Command::Compose(args) => commands::compose::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
