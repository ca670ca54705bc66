//! `spindle up`: load the app described by `spindle.toml` and serve it until Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use runtime::{App, AppOptions};

/// Flags of `spindle up`.
#[derive(Args)]
#[command(
    after_help = "Nothing is built implicitly: run `spindle build` first when a component's \
Wasm file is missing. Stop with Ctrl-C (or SIGTERM): Spindle stops accepting, finishes the \
events in flight, and exits."
)]
pub struct UpArgs {
    /// The app manifest.
    #[arg(short = 'f', long = "file", default_value = "spindle.toml")]
    file: PathBuf,
    /// Address of the HTTP trigger's listener.
    #[arg(long, default_value = "127.0.0.1:3000", env = "SPINDLE_LISTEN")]
    listen: SocketAddr,
    /// Directory for Spindle's state (compiled-component cache, delivery store); relative
    /// paths are resolved against the manifest's directory.
    #[arg(long, default_value = ".spindle", env = "SPINDLE_STATE_DIR")]
    state_dir: PathBuf,
}

/// Runs `spindle up`.
pub fn run(args: UpArgs) -> Result<ExitCode> {
    crate::logging::init();
    let manifest = match manifest::Manifest::load(&args.file) {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Err(error) = manifest.check_sources() {
        eprintln!("{error}");
        return Ok(ExitCode::from(1));
    }
    let state_dir = manifest.base_dir.join(&args.state_dir);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create the state directory {}", state_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let app = App::load(&manifest, &AppOptions { state_dir })?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        println!("Serving {} on http://{address}", app.name());
        for route in app.routes() {
            println!(
                "  http://{address}{}  ->  {} ({})",
                route.route, route.component, route.executor
            );
        }
        if app.routes().is_empty() {
            println!("  (no [[trigger.http]] routes)");
        }
        app.serve(listener, shutdown_signal()).await?;
        println!("Stopped.");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    eprintln!("Shutting down: finishing events in flight…");
}
