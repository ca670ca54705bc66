//! `spindle new`: start a project from a template in `templates/` (embedded in the binary).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

/// A template: its name, what it is, its files (path, contents), where its SDK lives in a
/// Spindle checkout, and whether the project gets the WIT contract (for toolchains that
/// generate their bindings at build time).
struct Template {
    name: &'static str,
    about: &'static str,
    files: &'static [(&'static str, &'static str)],
    sdk: &'static str,
    wit: bool,
}

/// The `spindle:cloudevents` handler world's files, for templates whose toolchain reads WIT.
const WIT: &[(&str, &str)] = &[
    ("wit/types.wit", include_str!("../../../../wit/types.wit")),
    ("wit/world.wit", include_str!("../../../../wit/world.wit")),
    (
        "wit/outbound.wit",
        include_str!("../../../../wit/outbound.wit"),
    ),
    ("wit/log.wit", include_str!("../../../../wit/log.wit")),
    ("wit/config.wit", include_str!("../../../../wit/config.wit")),
    (
        "wit/key-value.wit",
        include_str!("../../../../wit/key-value.wit"),
    ),
];

const TEMPLATES: &[Template] = &[
    Template {
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
        sdk: "sdk/rust/spindle-sdk",
        wit: false,
    },
    Template {
        name: "python-cloudevents",
        about: "a Python CloudEvents handler (spindle_sdk, componentize-py) behind an HTTP route",
        files: &[
            (
                "app.py",
                include_str!("../../../../templates/python-cloudevents/app.py"),
            ),
            (
                "spindle.toml",
                include_str!("../../../../templates/python-cloudevents/spindle.toml"),
            ),
            (
                "README.md",
                include_str!("../../../../templates/python-cloudevents/README.md"),
            ),
        ],
        sdk: "sdk/python",
        wit: true,
    },
    Template {
        name: "js-cloudevents",
        about: "a JavaScript CloudEvents handler (spindle-sdk, componentize-js) behind an HTTP route",
        files: &[
            (
                "app.js",
                include_str!("../../../../templates/js-cloudevents/app.js"),
            ),
            (
                "package.json",
                include_str!("../../../../templates/js-cloudevents/package.json"),
            ),
            (
                ".npmrc",
                include_str!("../../../../templates/js-cloudevents/.npmrc"),
            ),
            (
                "spindle.toml",
                include_str!("../../../../templates/js-cloudevents/spindle.toml"),
            ),
            (
                "README.md",
                include_str!("../../../../templates/js-cloudevents/README.md"),
            ),
        ],
        sdk: "sdk/js",
        wit: true,
    },
    Template {
        name: "c-cloudevents",
        about: "a C CloudEvents handler (spindle.h, wit-bindgen c, clang) behind an HTTP route",
        files: &[
            (
                "handler.c",
                include_str!("../../../../templates/c-cloudevents/handler.c"),
            ),
            (
                "Makefile",
                include_str!("../../../../templates/c-cloudevents/Makefile"),
            ),
            (
                "spindle.toml",
                include_str!("../../../../templates/c-cloudevents/spindle.toml"),
            ),
            (
                "README.md",
                include_str!("../../../../templates/c-cloudevents/README.md"),
            ),
        ],
        sdk: "sdk/c",
        wit: true,
    },
];

/// Flags of `spindle new`.
#[derive(Args)]
#[command(
    after_help = "Templates:\n  rust-cloudevents    a Rust CloudEvents handler behind an HTTP route\n  \
python-cloudevents  a Python CloudEvents handler (needs componentize-py: pip install \
componentize-py==0.25.1)\n  js-cloudevents      a JavaScript CloudEvents handler (needs Node.js and npm; \
componentize-js comes from npm)\n  c-cloudevents       a C CloudEvents handler (needs clang, wit-bindgen and \
wasm-component-ld: scripts/language-toolchains.sh c)\n\n\
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
    /// Path to the template language's SDK (the `spindle-sdk` crate, the `sdk/python` or
    /// `sdk/js` package, the `sdk/c` directory) [default: the SDK of the Spindle checkout this binary was built from].
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
    let sdk_path = sdk_path(template, args.sdk_path.as_deref())?;
    let sdk_dependency = toml_path_table(&sdk_path);
    let sdk_path = sdk_path.display().to_string();
    let crate_name = args.name.replace('-', "_");
    let wit = if template.wit { WIT } else { &[] };
    for (path, contents) in template.files.iter().chain(wit) {
        let text = contents
            .replace("{{name}}", &args.name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{sdk_dependency}}", &sdk_dependency)
            .replace("{{sdk_path}}", &sdk_path);
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

/// Where the template's SDK is: as given, else in the checkout this binary was built from.
fn sdk_path(template: &Template, explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(template.sdk),
    };
    path.canonicalize().with_context(|| {
        format!(
            "cannot find the {} SDK at {} (give its location with --sdk-path)",
            template.name,
            path.display()
        )
    })
}

/// The TOML inline table locating a path dependency (for the generated `Cargo.toml`).
fn toml_path_table(path: &Path) -> String {
    // TOML basic strings escape backslashes and quotes.
    let escaped = path
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!("{{ path = \"{escaped}\" }}")
}
