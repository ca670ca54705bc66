//! `spindle up`: load the app described by `spindle.toml` and serve it — the HTTP trigger,
//! the broker triggers, the delivery workers and the admin (Subscriptions) API — until
//! Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use runtime::{App, AppOptions};

/// Flags of `spindle up`.
#[derive(Args)]
#[command(
    after_help = "Nothing is built implicitly: run `spindle build` first when a component's \
Wasm file is missing. Stop with Ctrl-C (or SIGTERM): Spindle stops accepting, finishes the \
events in flight, and exits. Events that still await delivery to subscriptions or outputs \
stay in the state directory and go out on the next start.

The admin API (Subscriptions API, dead letters, /openapi.yaml, /metrics, and the probes /healthz \
and /readyz) listens on [application.admin] listen, 127.0.0.1:3001 by default."
)]
pub struct UpArgs {
    /// The app manifest.
    #[arg(short = 'f', long = "file", default_value = "spindle.toml")]
    file: PathBuf,
    /// Address of the HTTP trigger's listener.
    #[arg(long, default_value = "127.0.0.1:3000", env = "SPINDLE_LISTEN")]
    listen: SocketAddr,
    /// Address of the admin API's listener (overrides `[application.admin] listen`).
    #[arg(long, env = "SPINDLE_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Directory for Spindle's state (compiled-component cache, delivery store); relative
    /// paths are resolved against the manifest's directory.
    #[arg(long, default_value = ".spindle", env = "SPINDLE_STATE_DIR")]
    state_dir: PathBuf,
    /// How log lines are written to stderr: `text` (coloured only on a terminal) or `json`
    /// (one object per line). `RUST_LOG` chooses what is logged (default `info`).
    #[arg(long, value_enum, default_value_t = crate::logging::LogFormat::Text, env = "SPINDLE_LOG_FORMAT")]
    log_format: crate::logging::LogFormat,
    /// Join a cluster: keep subscriptions, queued deliveries and dead letters in the NATS
    /// JetStream at this address (e.g. `nats://127.0.0.1:4222`), shared by every node of the
    /// app started with the same address, instead of the state directory. Overrides
    /// `[application.cluster] nats`.
    #[arg(long, env = "SPINDLE_CLUSTER", value_name = "NATS_URL")]
    cluster: Option<String>,
}

/// Warns about tokens written into `spindle.toml` itself: the file is usually committed, so a
/// secret belongs in the environment or a file of its own.
fn warn_inline_secrets(manifest: &manifest::Manifest) {
    let app = &manifest.application;
    for (key, secret) in [
        ("[application.http] auth_token", &app.http.auth_token),
        ("[application.admin] token", &app.admin.token),
    ] {
        if let Some(manifest::Secret::Literal(_)) = secret {
            tracing::warn!(
                "{key} is written in spindle.toml; keep it out of the file with {{ env = \"NAME\" }} or {{ file = \"path\" }}"
            );
        }
    }
}

/// Runs `spindle up`.
pub fn run(args: UpArgs) -> Result<ExitCode> {
    let manifest = match manifest::Manifest::load(&args.file) {
        Ok(manifest) => manifest,
        Err(error) => {
            crate::logging::init(args.log_format);
            eprintln!("{error}");
            return Ok(ExitCode::from(1));
        }
    };
    let otlp = runtime::telemetry::endpoint(manifest.application.otlp.as_ref());
    let telemetry = crate::logging::init_with_traces(
        args.log_format,
        otlp.map(|endpoint| (endpoint, manifest.application.name.as_str())),
    )?;
    let result = serve(args, manifest);
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    result
}

/// `spindle up` once logging (and trace export) is set up.
fn serve(args: UpArgs, mut manifest: manifest::Manifest) -> Result<ExitCode> {
    if let Some(nats) = &args.cluster {
        let replicas = manifest
            .application
            .cluster
            .as_ref()
            .map_or(manifest::DEFAULT_CLUSTER_REPLICAS, |c| c.replicas);
        match manifest::Cluster::new(nats, replicas) {
            Ok(cluster) => manifest.application.cluster = Some(cluster),
            Err(message) => {
                eprintln!("--cluster: {message}");
                return Ok(ExitCode::from(2));
            }
        }
    }
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
    warn_inline_secrets(&manifest);
    let admin_token = match &manifest.application.admin.token {
        Some(secret) => Some(
            secret
                .resolve()
                .map_err(|e| anyhow::anyhow!("[application.admin] token: {e}"))?,
        ),
        None => None,
    };
    let admin_tls = match &manifest.application.admin.tls {
        Some(files) => Some(
            http_server::Tls::load(files.clone())
                .map_err(|e| anyhow::anyhow!("[application.admin] tls: {e}"))?,
        ),
        None => None,
    };
    let admin_scheme = if admin_tls.is_some() { "https" } else { "http" };
    let admin_listen = args
        .admin_listen
        .unwrap_or(manifest.application.admin.listen);
    if admin_token.is_none() && !admin_listen.ip().is_loopback() {
        eprintln!(
            "the admin API would listen on {admin_listen}, which is not loopback, without a token; \
             set [application.admin] token"
        );
        return Ok(ExitCode::from(1));
    }
    runtime.block_on(async move {
        let signal = shutdown_signal();
        // Bound first, so the registry document can name the addresses they really got.
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let admin_listener = tokio::net::TcpListener::bind(admin_listen)
            .await
            .with_context(|| format!("cannot listen on {admin_listen} for the admin API"))?;
        let addresses = registry::Addresses::of_listeners(
            manifest.application.public_url.as_ref(),
            (
                listener.local_addr()?,
                manifest.application.http.tls.is_some(),
            ),
            (admin_listener.local_addr()?, admin_tls.is_some()),
        );
        let app = App::load(
            &manifest,
            &AppOptions {
                state_dir,
                addresses: Some(addresses),
            },
        )
        .await?;
        let address = listener.local_addr()?;
        let scheme = app.scheme();
        println!("Serving {} on {scheme}://{address}", app.name());
        for route in app.routes() {
            println!(
                "  {scheme}://{address}{}  ->  {} ({})",
                route.route,
                route.component.as_deref().unwrap_or("(subscriptions only)"),
                route.executor
            );
        }
        for trigger in app.broker_triggers() {
            println!(
                "  {}  ->  {}",
                trigger.route,
                trigger
                    .component
                    .as_deref()
                    .unwrap_or("(subscriptions only)")
            );
        }
        if app.routes().is_empty() && app.broker_triggers().is_empty() {
            println!("  (no triggers)");
        }
        if let Some(cluster) = app.delivery().cluster() {
            println!(
                "Joined cluster {} (namespace {}, {} replica(s)): subscriptions, deliveries and dead letters are shared through JetStream",
                cluster.nats, cluster.namespace, cluster.replicas
            );
        }
        println!(
            "Admin API (subscriptions, dead letters) on {admin_scheme}://{}",
            admin_listener.local_addr()?
        );

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let on_stop = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let probe = api::ReadinessProbe(Arc::new(app.readiness()));
        let admin = api::AdminApi::new(
            app.delivery().clone(),
            api::AdminConfig {
                token: admin_token.as_deref().map(http_server::BearerToken::new),
                limits: manifest.application.admin.limits,
                tls: admin_tls,
                readiness: Some(probe.clone()),
                registry: Some(app.registry().clone()),
            },
        );
        let admin = tokio::spawn(admin.serve(admin_listener, on_stop(stopped.clone())));
        // What is degraded shows in this process's own log, not only on /readyz.
        let watcher = tokio::spawn(api::report_readiness(app.delivery().clone(), Some(probe)));
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
        app.serve(listener, on_stop(stopped)).await?;
        watcher.abort();
        let _ = admin.await;
        println!("Stopped.");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal sent right after start-up is never missed (and
/// never kills the process the default way instead of stopping it gracefully).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("Shutting down: finishing events in flight…");
    }
}
