//! Semantic validation: turns the raw serde layer into the typed model,
//! collecting every problem as a located [`Diagnostic`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::error::{Diagnostic, ErrorKind, ManifestError};
use crate::locate::{key_path_at, line_of, quote_key};
use crate::model::*;
use crate::names;
use crate::raw::*;
use crate::units::{ByteSize, parse_size};

mod application;
mod component;
mod key_value;
mod messages;
mod subscribe;
mod triggers;

use application::{application, placeholder_application};
use component::component;
use triggers::triggers;

/// Collects diagnostics while walking the raw manifest.
struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, kind: ErrorKind, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line: Some(line_of(self.text, span.start)),
            key: key.to_owned(),
            kind,
            message: message.into(),
        });
    }

    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }
}

/// Parses and validates manifest text. `file` is only used in messages.
pub(crate) fn parse(text: &str, base_dir: &Path, file: &str) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(ManifestError::Invalid(vec![serde_diagnostic(
                text, file, &e,
            )]));
        }
    };
    let mut cx = Ctx {
        text,
        file,
        diags: Vec::new(),
    };
    let manifest = build(&mut cx, raw, base_dir);
    if cx.diags.is_empty() {
        Ok(manifest)
    } else {
        let mut diags = cx.diags;
        diags.sort_by_key(|d| d.line);
        Err(ManifestError::Invalid(diags))
    }
}

/// Converts a TOML/serde error into a diagnostic naming the key and line.
fn serde_diagnostic(text: &str, file: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let key = key_path_at(text, &span);
    let syntax = key.is_none();
    let key = key.unwrap_or_default();
    let raw_message = e.message().trim().to_owned();
    let (kind, mut message) = if syntax {
        (ErrorKind::Syntax, format!("invalid TOML: {raw_message}"))
    } else if raw_message.starts_with("unknown field") {
        (
            ErrorKind::UnknownKey,
            raw_message.replacen("unknown field", "unknown key", 1),
        )
    } else if let Some(rest) = raw_message.strip_prefix("missing field") {
        (ErrorKind::MissingKey, format!("missing required key{rest}"))
    } else {
        (ErrorKind::InvalidValue, raw_message)
    };
    if key == "spin_manifest_version" {
        message.push_str(
            " (this looks like a Spin manifest: Spindle manifests start with `spindle_manifest_version = 1`)",
        );
    }
    Diagnostic {
        file: file.to_owned(),
        line: e.span().map(|s| line_of(text, s.start)),
        key,
        kind,
        message,
    }
}

fn build(cx: &mut Ctx<'_>, raw: RawManifest, base_dir: &Path) -> Manifest {
    match &raw.spindle_manifest_version {
        None => cx.err(
            0..0,
            "spindle_manifest_version",
            ErrorKind::Version,
            format!("missing; add `spindle_manifest_version = {MANIFEST_VERSION}` at the top of the file"),
        ),
        Some(v) if *v.get_ref() != MANIFEST_VERSION => cx.err(
            v.span(),
            "spindle_manifest_version",
            ErrorKind::Version,
            format!(
                "unsupported manifest version {} (this Spindle understands version {MANIFEST_VERSION})",
                v.get_ref()
            ),
        ),
        Some(_) => {}
    }

    let application = match raw.application {
        Some(app) => application(cx, app.into_inner(), base_dir),
        None => {
            cx.err(
                0..0,
                "application",
                ErrorKind::MissingKey,
                "missing [application] table (with at least `name = \"...\"`)",
            );
            placeholder_application()
        }
    };

    let defined: BTreeSet<String> = raw.component.keys().map(|k| k.get_ref().clone()).collect();
    let triggers = triggers(cx, raw.trigger, &defined, &application.name, base_dir);

    let key_value_stores = key_value::stores(cx, raw.key_value_store, base_dir);

    let mut components = BTreeMap::new();
    let mut source_lines = BTreeMap::new();
    for (name, comp) in raw.component {
        let key = format!("component.{}", quote_key(name.get_ref()));
        if let Err(msg) = names::check_component_id(name.get_ref()) {
            cx.err(name.span(), &key, ErrorKind::InvalidName, msg);
        }
        let id = ComponentId(name.into_inner());
        source_lines.insert(id.clone(), cx.line(&comp.get_ref().source.span()));
        let mut raw_component = comp.into_inner();
        let stores = std::mem::take(&mut raw_component.key_value_stores);
        let mut c = component(cx, &key, id.clone(), raw_component, base_dir);
        c.key_value_stores = key_value::grants(cx, &key, stores, &key_value_stores);
        components.insert(id, c);
    }

    let subscribe = subscribe::subscriptions(cx, raw.subscribe, &triggers, base_dir);

    Manifest {
        manifest_version: raw
            .spindle_manifest_version
            .map(|v| v.into_inner())
            .unwrap_or(MANIFEST_VERSION),
        base_dir: base_dir.to_path_buf(),
        application,
        triggers,
        components,
        key_value_stores,
        subscribe,
        origin: Origin {
            file: cx.file.to_owned(),
            source_lines,
        },
    }
}

/// A count bound (`max_queued_events`, `max_dead_letters`): 1 to 2^53, or none.
fn count_bound(cx: &mut Ctx<'_>, key: &str, v: Option<&Spanned<i64>>) -> Option<u64> {
    let v = v?;
    match u64::try_from(*v.get_ref()) {
        Ok(n) if (1..=1 << 53).contains(&n) => Some(n),
        _ => {
            cx.err(
                v.span(),
                key,
                ErrorKind::InvalidValue,
                "must be a whole number of at least 1",
            );
            None
        }
    }
}

/// The queue bounds of `[application.store]` or an output's table, under `prefix`.
fn queue_limits(cx: &mut Ctx<'_>, prefix: &str, raw: &RawQueueLimits) -> StoreLimits {
    let key = |name: &str| format!("{prefix}.{name}");
    let bytes = raw.max_queued_bytes.as_ref().and_then(|v| {
        let key = key("max_queued_bytes");
        match size(cx, &key, v) {
            Some(ByteSize(0)) => {
                cx.err(
                    v.span(),
                    &key,
                    ErrorKind::InvalidSize,
                    "must be at least 1 byte",
                );
                None
            }
            other => other.map(|s| s.0),
        }
    });
    StoreLimits {
        max_queued_events: count_bound(
            cx,
            &key("max_queued_events"),
            raw.max_queued_events.as_ref(),
        ),
        max_queued_bytes: bytes,
        max_dead_letters: count_bound(cx, &key("max_dead_letters"), raw.max_dead_letters.as_ref()),
    }
}

fn size(cx: &mut Ctx<'_>, key: &str, v: &Spanned<StrOrInt>) -> Option<ByteSize> {
    let result = match v.get_ref() {
        StrOrInt::Str(s) => parse_size(s).map_err(|e| e.to_string()),
        StrOrInt::Int(n) => u64::try_from(*n)
            .map(ByteSize)
            .map_err(|_| format!("invalid size {n}: must not be negative")),
    };
    match result {
        Ok(s) => Some(s),
        Err(msg) => {
            cx.err(v.span(), key, ErrorKind::InvalidSize, msg);
            None
        }
    }
}

/// `tls = { ca, cert, key }` of a client connection (an HTTPS sink, a broker): `cert` and
/// `key` together, paths resolved against the manifest's directory. An empty table is an
/// error unless `empty_ok` (where the table itself is what switches TLS on).
fn client_tls(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: Spanned<RawClientTls>,
    base_dir: &Path,
    empty_ok: bool,
) -> Option<ClientTls> {
    let span = raw.span();
    let raw = raw.into_inner();
    let identity = match (raw.cert, raw.key) {
        (Some(cert), Some(k)) => Some(TlsFiles {
            cert: base_dir.join(cert.get_ref()),
            key: base_dir.join(k.get_ref()),
        }),
        (None, None) => None,
        _ => {
            cx.err(
                span,
                key,
                ErrorKind::InvalidValue,
                "a client certificate needs both `cert` and `key`",
            );
            return None;
        }
    };
    let ca = raw.ca.map(|ca| base_dir.join(ca.get_ref()));
    if ca.is_none() && identity.is_none() && !empty_ok {
        cx.err(
            span,
            key,
            ErrorKind::InvalidValue,
            "expected `ca` and/or `cert` + `key`",
        );
        return None;
    }
    Some(ClientTls { ca, identity })
}
