//! `spindle build`: run each component's build command from `spindle.toml`, with the
//! `wasm32-wasip2` guest toolchain made ready first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

/// Flags of `spindle build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The app manifest.
    #[arg(short = 'f', long = "file", default_value = "spindle.toml")]
    file: PathBuf,
    /// Build only these components (default: all with a `[component.<id>.build]` section).
    components: Vec<String>,
}

/// The toolchain script, embedded so an installed `spindle` works anywhere.
const TOOLCHAIN_SCRIPT: &str = include_str!("../../../../scripts/guest-toolchain.sh");

/// Runs `spindle build`.
pub fn run(args: BuildArgs) -> Result<ExitCode> {
    let manifest = match manifest::Manifest::load(&args.file) {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(1));
        }
    };
    for wanted in &args.components {
        if manifest.component(wanted).is_none() {
            bail!("no component `{wanted}` in {}", args.file.display());
        }
    }
    let selected: Vec<_> = manifest
        .components
        .iter()
        .filter(|(id, _)| {
            args.components.is_empty() || args.components.iter().any(|c| c == id.as_str())
        })
        .collect();
    let mut toolchain_env: Option<Vec<(String, String)>> = None;
    let mut built = 0;
    for (id, component) in selected {
        let Some(build) = &component.build else {
            println!(
                "{id}: no build command; using {}",
                component.source.display()
            );
            continue;
        };
        let needs_rust = build.commands.iter().any(|c| c.contains("cargo"));
        if needs_rust && toolchain_env.is_none() {
            println!("Preparing the wasm32-wasip2 toolchain…");
            toolchain_env = Some(guest_toolchain_env()?);
        }
        for command in &build.commands {
            println!("{id}: {command}  (in {})", build.workdir.display());
            let started = Instant::now();
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(command).current_dir(&build.workdir);
            if needs_rust && let Some(env) = &toolchain_env {
                cmd.envs(env.iter().map(|(k, v)| (k, v)));
            }
            let status = cmd
                .status()
                .with_context(|| format!("{id}: cannot run `{command}`"))?;
            if !status.success() {
                eprintln!(
                    "{id}: build failed ({status}) after {:.1?}",
                    started.elapsed()
                );
                return Ok(ExitCode::from(1));
            }
            println!("{id}: done in {:.1?}", started.elapsed());
        }
        if !component.source.exists() {
            eprintln!(
                "{id}: the build succeeded but {} does not exist: check `source` in {}",
                component.source.display(),
                args.file.display()
            );
            return Ok(ExitCode::from(1));
        }
        built += 1;
    }
    println!("Built {built} component(s).");
    Ok(ExitCode::SUCCESS)
}

/// The environment a plain `cargo build --target wasm32-wasip2` needs, from the toolchain
/// script (rustup target, or Debian's rustc-web with std built from source).
fn guest_toolchain_env() -> Result<Vec<(String, String)>> {
    // Inside a Spindle checkout use its script (and its `.toolchain/`); elsewhere the embedded
    // copy, keeping its files in the user's cache directory.
    let checkout_script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/guest-toolchain.sh");
    let mut cmd = Command::new("bash");
    if checkout_script.exists() {
        cmd.arg(&checkout_script).arg("env");
    } else {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("spindle/toolchain");
        cmd.arg("-c")
            .arg(TOOLCHAIN_SCRIPT)
            .arg("guest-toolchain.sh")
            .arg("env")
            .env("SPINDLE_TOOLCHAIN_DIR", cache);
    }
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run the guest toolchain script (is bash installed?)")?;
    if !output.status.success() {
        bail!("could not prepare the wasm32-wasip2 toolchain (see the messages above)");
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}
