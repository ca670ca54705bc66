//! Diagnostics: every problem names the file, the line and the key.
//!
//! A manifest is edited by hand, so "invalid value" alone is useless; each
//! [`Diagnostic`] says where to look (`spindle.toml:12`), which setting is
//! wrong (`component.orders.outputs.shipping`) and why. Validation collects
//! all problems it can find instead of stopping at the first, so one edit
//! cycle fixes them all.

use std::fmt;
use std::path::PathBuf;

/// What kind of problem a [`Diagnostic`] reports, so callers (and tests) can
/// react to a category without matching message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not valid TOML.
    Syntax,
    /// A key that the manifest format does not define (often a typo).
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value of the wrong TOML type, or outside its allowed set.
    InvalidValue,
    /// `spindle_manifest_version` missing or unsupported.
    Version,
    /// A component id (or other name) that breaks the naming rules.
    InvalidName,
    /// An HTTP route with bad syntax.
    InvalidRoute,
    /// Two HTTP triggers claim the same route.
    DuplicateRoute,
    /// A trigger refers to a component that is not defined.
    UnknownComponent,
    /// A sink URI or broker address that does not parse.
    InvalidUri,
    /// A duration such as `timeout` that does not parse or is out of range.
    InvalidDuration,
    /// A size such as `memory` that does not parse or is out of range.
    InvalidSize,
    /// A component's `source` file does not exist (not built yet?).
    MissingSource,
}

/// One problem found in a manifest, located by file, line and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The manifest file as the user named it, e.g. `spindle.toml`.
    pub file: String,
    /// 1-based line number, when the problem has a location.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `component.orders.outputs.shipping` or
    /// `trigger.http[1].route`; empty for document-level problems.
    pub key: String,
    /// Category of the problem.
    pub kind: ErrorKind,
    /// Human explanation, without the location prefix.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `spindle.toml:12: component.orders.outputs.shipping: <message>`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a manifest could not be loaded or checked.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The manifest was read but has problems; at least one diagnostic.
    #[error("{}", Diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ManifestError {
    /// The diagnostics, or an empty slice for I/O errors.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ManifestError::Invalid(d) => d,
            ManifestError::Io { .. } => &[],
        }
    }
}

/// Displays diagnostics one per line.
struct Diagnostics<'a>(&'a [Diagnostic]);

impl fmt::Display for Diagnostics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
