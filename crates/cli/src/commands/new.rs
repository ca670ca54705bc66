//! `spindle new`: start a project from a template in `templates/` (embedded in the binary).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

/// A template: its name, what it is, and its files (path, contents).
struct Template {
    name: &'static str,
    about: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const TEMPLATES: &[Template] = &[Template {
    name: "rust-cloudevents",
    about: "a Rust CloudEvents handler (spindle-sdk, #[cloudevents_component]) behind an HTTP route",
    files: &[
        (
            "Cargo.toml",
            include_str!("../../../../templates/rust-cloudevents/Cargo.toml"),
        ),
        (
            "spindle.toml",
            include_str!("../../../../templates/rust-cloudevents/spindle.toml"),
        ),
        (
            "src/lib.rs",
            include_str!("../../../../templates/rust-cloudevents/src/lib.rs"),
        ),
    ],
}];

/// Flags of `spindle new`.
#[derive(Args)]
#[command(
    after_help = "Templates:\n  rust-cloudevents  a Rust CloudEvents handler behind an HTTP route\n\n\
Example:\n  spindle new rust-cloudevents greeter && cd greeter && spindle build && spindle up"
)]
pub struct NewArgs {
    /// The template to copy (see below).
    template: String,
    /// The project's name (kebab-case: lower-case letters, digits and dashes); also the
    /// directory created, unless --dir is given.
    name: String,
    /// Where to create the project.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Path to the `spindle-sdk` crate the project depends on [default: the SDK of the
    /// Spindle checkout this binary was built from].
    #[arg(long)]
    sdk_path: Option<PathBuf>,
}

/// Runs `spindle new`.
pub fn run(args: NewArgs) -> Result<ExitCode> {
    let Some(template) = TEMPLATES.iter().find(|t| t.name == args.template) else {
        let known: Vec<_> = TEMPLATES
            .iter()
            .map(|t| format!("  {}  {}", t.name, t.about))
            .collect();
        bail!(
            "unknown template `{}`; available:\n{}",
            args.template,
            known.join("\n")
        );
    };
    if let Err(e) = manifest::ComponentId::new(&args.name) {
        bail!("`{}` cannot be a project name: {e}", args.name);
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    let sdk_dependency = sdk_dependency(args.sdk_path.as_deref())?;
    let crate_name = args.name.replace('-', "_");
    for (path, contents) in template.files {
        let text = contents
            .replace("{{name}}", &args.name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{sdk_dependency}}", &sdk_dependency);
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, text)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    println!(
        "Created {} from the {} template.",
        dir.display(),
        template.name
    );
    println!(
        "Next:\n  cd {}\n  spindle build\n  spindle up",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The TOML value locating `spindle-sdk` for the generated `Cargo.toml`.
fn sdk_dependency(explicit: Option<&Path>) -> Result<String> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust/spindle-sdk"),
    };
    let path = path.canonicalize().with_context(|| {
        format!(
            "cannot find the spindle-sdk crate at {} (give its location with --sdk-path)",
            path.display()
        )
    })?;
    // TOML basic strings escape backslashes and quotes.
    let escaped = path
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    Ok(format!("{{ path = \"{escaped}\" }}"))
}
