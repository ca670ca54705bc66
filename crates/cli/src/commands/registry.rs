//! `spindle registry`: the app's xRegistry document (what it takes in, emits, and where), and
//! the check any registry document is held to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

/// Subcommands of `spindle registry`.
#[derive(Subcommand)]
#[command(after_help = "Examples:
  spindle registry export > registry.json
  spindle registry check registry.json --model document-schema.json
  spindle registry check http://127.0.0.1:3001/registry

A running app serves the same document on its admin listener at /registry, with each
endpoint, message group and schema below it (/registry/schemagroups/<app>/schemas/<type>).")]
pub enum RegistryCommand {
    /// Write the app's xRegistry document (endpoints, message groups, schema groups) as JSON.
    Export {
        /// The app manifest.
        #[arg(short = 'f', long = "file", default_value = "spindle.toml")]
        file: PathBuf,
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// The HTTP trigger's address the document advertises when the manifest sets no
        /// `[application] public_url`.
        #[arg(long, default_value = "127.0.0.1:3000", env = "SPINDLE_LISTEN")]
        listen: SocketAddr,
        /// The admin listener's address the document advertises (default:
        /// `[application.admin] listen`).
        #[arg(long, env = "SPINDLE_ADMIN_LISTEN")]
        admin_listen: Option<SocketAddr>,
    },
    /// Check a registry document (a file, or the URL of a running app's /registry): its
    /// references resolve and, with --model, it validates against the registry model's
    /// JSON Schema (e.g. the CloudEvents registry's document-schema.json).
    Check {
        /// A file, or an http(s) URL.
        document: String,
        /// The registry model's document schema to validate against.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Bearer token, when the document is behind an admin API that requires one.
        #[arg(long, env = "SPINDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

/// Runs `spindle registry`.
pub fn run(command: RegistryCommand) -> Result<ExitCode> {
    match command {
        RegistryCommand::Export {
            file,
            output,
            listen,
            admin_listen,
        } => export(file, output, listen, admin_listen),
        RegistryCommand::Check {
            document,
            model,
            token,
        } => check(&document, model, token.as_deref()),
    }
}

fn export(
    file: PathBuf,
    output: Option<PathBuf>,
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
) -> Result<ExitCode> {
    let manifest = match manifest::Manifest::load(&file) {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(1));
        }
    };
    let app = &manifest.application;
    let addresses = registry::Addresses::of_listeners(
        app.public_url.as_ref(),
        (listen, app.http.tls.is_some()),
        (
            admin_listen.unwrap_or(app.admin.listen),
            app.admin.tls.is_some(),
        ),
    );
    let catalog = runtime_for_io()?.block_on(registry::Catalog::load(
        &manifest,
        &addresses.registry_base(),
    ))?;
    let document = registry::document::build(&manifest, &catalog, &addresses);
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    match output {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn check(document: &str, model: Option<PathBuf>, token: Option<&str>) -> Result<ExitCode> {
    let text = if document.starts_with("http://") || document.starts_with("https://") {
        let (status, body) = runtime_for_io()?.block_on(get(document, token))?;
        anyhow::ensure!(status.is_success(), "{document} answered {status}: {body}");
        body
    } else {
        std::fs::read_to_string(document).with_context(|| format!("cannot read {document}"))?
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{document} is not JSON"))?;
    let model = match model {
        Some(path) => Some(
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON", path.display()))?,
        ),
        None => None,
    };
    let problems = registry::check_document(&value, model.as_ref())?;
    if problems.is_empty() {
        println!("{document}: valid");
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        println!("{document}: {problem}");
    }
    Ok(ExitCode::from(1))
}

/// `GET url` for a registry document (with the bearer token when given): the status and the
/// body.
pub(crate) async fn get(url: &str, token: Option<&str>) -> Result<(reqwest::StatusCode, String)> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut request = client.get(url).header("accept", "application/json");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// A small runtime for the commands that fetch over HTTP.
pub(crate) fn runtime_for_io() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
