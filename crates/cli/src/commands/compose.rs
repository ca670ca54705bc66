//! `spindle compose`: a CloudEvents handler linked to a protocol binder and to stand-ins for
//! Spindle's host imports, written as one standalone `wasi:http` component that runs on any
//! `wasi:http` host (`wasmtime serve`, Spin).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use manifest::StockBinder;

/// Arguments of `spindle compose`.
#[derive(Args)]
#[command(after_help = "Examples:
  spindle compose                          # the manifest's only component, stock http binder
  spindle compose greeter -o greeter-http.wasm
  spindle compose target/wasm32-wasip2/release/echo.wasm --binder binders/custom.wasm
  wasmtime serve -Scli greeter.composed.wasm

The output imports only WASI: `config.get(name)` reads the environment variable `name`
(`wasmtime serve --env name=value`), `log` writes to stderr, and publishing to outputs or
opening key-value stores fails (they are Spindle's). Inside Spindle, use
`executor = \"binder\"` on a [[trigger.http]] route instead: the same composition with the
host's outputs, variables and stores.")]
pub struct ComposeArgs {
    /// The handler: a `.wasm` component file, or a component id of the manifest (default:
    /// the manifest's only component).
    component: Option<String>,
    /// The binder: a stock binder's name (`http`) or a binder component file.
    #[arg(long, default_value = "http")]
    binder: String,
    /// Where to write the composed component (default: `<name>.composed.wasm`).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// The app manifest, to find a component by id.
    #[arg(short = 'f', long = "file", default_value = "spindle.toml")]
    file: PathBuf,
}

/// Runs `spindle compose`.
pub fn run(args: ComposeArgs) -> Result<ExitCode> {
    let (name, source) = handler(args.component.as_deref(), &args.file)?;
    let component =
        std::fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
    let binder = match StockBinder::from_name(&args.binder) {
        Some(stock) => binders::stock(stock)?.to_vec(),
        None => std::fs::read(&args.binder)
            .with_context(|| format!("cannot read the binder {}", args.binder))?,
    };
    let stubs = binders::host_stubs()?;
    let composed = engine::compose::standalone(&binder, &component, stubs)
        .with_context(|| format!("cannot compose {}", source.display()))?;
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{name}.composed.wasm")));
    std::fs::write(&output, &composed)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "Wrote {} ({} bytes): {} behind the {} binder, with host stubs",
        output.display(),
        composed.len(),
        source.display(),
        args.binder
    );
    println!("Serve it with: wasmtime serve -Scli {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// The handler's name and file: a `.wasm` path as given, else a component of the manifest.
fn handler(component: Option<&str>, manifest_file: &Path) -> Result<(String, PathBuf)> {
    if let Some(path) = component.filter(|c| c.ends_with(".wasm") || Path::new(c).is_file()) {
        let path = PathBuf::from(path);
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "component".into());
        return Ok((name, path));
    }
    let manifest = manifest::Manifest::load(manifest_file)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "no component file given, and {} cannot be read",
                manifest_file.display()
            )
        })?;
    let ids: Vec<&str> = manifest.components.keys().map(|c| c.as_str()).collect();
    let id = match component {
        Some(id) => id,
        None if ids.len() == 1 => ids[0],
        None => bail!(
            "the manifest has {} components ({}): name the one to compose",
            ids.len(),
            ids.join(", ")
        ),
    };
    let Some(entry) = manifest.components.get(id) else {
        bail!(
            "`{id}` is neither a .wasm file nor a component of {} (components: {})",
            manifest_file.display(),
            ids.join(", ")
        );
    };
    if !entry.source.is_file() {
        bail!(
            "{} does not exist yet: build the component first (spindle build)",
            entry.source.display()
        );
    }
    Ok((id.to_owned(), entry.source.clone()))
}
