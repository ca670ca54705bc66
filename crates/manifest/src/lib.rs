//! `spindle.toml`: the application manifest, parsed and validated.
//!
//! A Spindle application is a set of WebAssembly components, each handling
//! CloudEvents that arrive over some transport (HTTP, NATS, MQTT, AMQP,
//! Kafka) and emitting events to named outputs. The manifest says which
//! triggers feed which component, what each component may access, and where
//! its outputs go. It is deliberately shaped like Spin's `spin.toml`
//! (version 2): `[application]`, `[[trigger.<type>]]` and
//! `[component.<id>]` mean what they mean in Spin.
//!
//! Loading a manifest ([`Manifest::load`] / [`Manifest::from_str`]) checks
//! everything that can be checked without the built components, and reports
//! *all* problems, each with file, line and key:
//!
//! ```text
//! spindle.toml:12: component.orders.outputs.shipping: invalid sink URI "htp:/x": unsupported scheme "htp" (expected http, https, nats, nats+tls, tls, mqtt, mqtts, amqp, amqps, kafka, kafka+tls)
//! ```
//!
//! Whether the component `.wasm` files exist is a separate question,
//! answered by [`Manifest::check_sources`], so `spindle build` can load a
//! manifest whose components are not built yet.
//!
//! # A complete, annotated `spindle.toml`
//!
//! Every key is shown; all but a handful are optional. The minimum is
//! `spindle_manifest_version`, `[application] name`, and one component with
//! a `source`.
//!
#![doc = concat!("```toml\n", include_str!("../spindle.example.toml"), "```")]
//!
//! # Rules checked when loading
//!
//! - TOML syntax; no unknown keys anywhere (typos are errors, not ignored);
//!   value types.
//! - `spindle_manifest_version` present and equal to 1.
//! - `[application]` present with a non-empty `name`.
//! - Component ids are kebab-case (`orders`, `order-api`).
//! - Every trigger's `component` names a defined component.
//! - HTTP routes: start with `/`, no empty segments, `...` only as the last
//!   segment, no `?`/`#`/whitespace; no two triggers share a route
//!   (`/a` and `/a/` are the same route).
//! - Broker addresses use their transport's scheme and have a host; NATS
//!   subjects, MQTT topic filters and Kafka topics are well-formed.
//! - MQTT `qos` is 0–2, `protocol` is `"3.1.1"` or `"5"`, and a persistent
//!   session has a `client_id`.
//! - Output sink URIs parse for their scheme (see [`sink`]); MQTT 3.1.1
//!   outputs use structured mode; `headers` only on HTTP sinks.
//! - Durations and sizes parse (see [`units`]); `timeout > 0`; `memory`
//!   between 64KiB and 4GiB; `max_concurrency >= 1`;
//!   `max_body_size >= 64KiB`.
//! - Variable, output and environment names; outbound hosts in Spin's
//!   format; webhook origins; `files` paths.
//! - A non-loopback admin `listen` address requires a `token`.

#![deny(missing_docs)]

mod error;
mod locate;
mod model;
mod names;
mod raw;
pub mod route;
pub mod sink;
pub mod units;
mod validate;

use std::path::Path;

pub use error::{Diagnostic, ErrorKind, ManifestError};
pub use model::*;
pub use route::{Route, RouteError};
pub use sink::{Endpoint, Sink, SinkError};
pub use units::{ByteSize, UnitError};

/// The file name `spindle` looks for when no manifest path is given.
pub const DEFAULT_MANIFEST_FILE: &str = "spindle.toml";

impl Manifest {
    /// Parses and validates manifest text.
    ///
    /// `base_dir` is the directory relative paths (component sources, build
    /// workdirs, files) are resolved against: normally the directory the
    /// manifest lives in. Diagnostics name the file `spindle.toml`; use
    /// [`Manifest::from_str_named`] to name it differently.
    ///
    /// ```
    /// use manifest::{Manifest, Route};
    ///
    /// let text = r#"
    /// spindle_manifest_version = 1
    /// [application]
    /// name = "hello"
    /// [[trigger.http]]
    /// route = "/hello/..."
    /// component = "hello"
    /// [component.hello]
    /// source = "hello.wasm"
    /// "#;
    /// let m = Manifest::from_str(text, "/apps/hello").unwrap();
    /// assert_eq!(m.triggers.http[0].route, Route::Wildcard("/hello".into()));
    /// assert_eq!(m.components["hello"].source, std::path::Path::new("/apps/hello/hello.wasm"));
    ///
    /// let err = Manifest::from_str(&text.replace("component = \"hello\"", "component = \"helo\""), ".")
    ///     .unwrap_err();
    /// assert!(err.to_string().starts_with("spindle.toml:7: trigger.http[0].component: no component named \"helo\""));
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, base_dir: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        Self::from_str_named(text, base_dir, DEFAULT_MANIFEST_FILE)
    }

    /// Like [`Manifest::from_str`], with `file_name` used in diagnostics
    /// (`<file_name>:<line>: ...`).
    pub fn from_str_named(
        text: &str,
        base_dir: impl AsRef<Path>,
        file_name: &str,
    ) -> Result<Manifest, ManifestError> {
        validate::parse(text, base_dir.as_ref(), file_name)
    }

    /// Reads, parses and validates the manifest at `path`, resolving
    /// relative paths against its directory. Diagnostics name the file as
    /// `path` was given.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        Self::from_str_named(&text, base_dir, &path.display().to_string())
    }

    /// Checks that every component's `source` file exists and is a file.
    ///
    /// Separate from loading because a fresh checkout has a valid manifest
    /// but no built components; `spindle up` calls this and can then tell
    /// the user to run `spindle build`.
    pub fn check_sources(&self) -> Result<(), ManifestError> {
        let mut diags = Vec::new();
        for (id, component) in &self.components {
            if component.source.is_file() {
                continue;
            }
            let hint = if component.build.is_some() {
                "; run `spindle build`"
            } else {
                "; check `source` (this component has no [build] section)"
            };
            let what = if component.source.exists() {
                "is not a file"
            } else {
                "does not exist"
            };
            diags.push(Diagnostic {
                file: self.origin.file.clone(),
                line: self.origin.source_lines.get(id).copied(),
                key: format!("component.{id}.source"),
                kind: ErrorKind::MissingSource,
                message: format!("{} {what}{hint}", component.source.display()),
            });
        }
        if diags.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid(diags))
        }
    }

    /// The manifest file name used in diagnostics.
    pub fn file_name(&self) -> &str {
        &self.origin.file
    }

    /// Looks up a component by id.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}
