//! `consumes = [...]` and `produces = [...]` on a component: the event types it declares.

use std::collections::BTreeSet;
use std::path::Path;

use toml::Spanned;

use super::Ctx;
use crate::error::ErrorKind;
use crate::model::{MessageDecl, SchemaRef};
use crate::raw::{RawMessageDecl, StrOr};

/// Checks a `consumes`/`produces` list: each entry names a type once, a schema is a file or an
/// http(s) URL, and a schema goes with JSON data (a JSON Schema cannot validate anything else).
pub(super) fn declarations(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: Vec<Spanned<StrOr<RawMessageDecl>>>,
    base_dir: &Path,
) -> Vec<MessageDecl> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let ekey = format!("{key}[{i}]");
        let span = entry.span();
        let (ty, dataschema, datacontenttype, description) = match entry.into_inner() {
            StrOr::Str(ty) => (Spanned::new(span.clone(), ty), None, None, None),
            StrOr::Table(t) => (t.ty, t.dataschema, t.datacontenttype, t.description),
        };
        if ty.get_ref().trim().is_empty() || ty.get_ref().chars().any(char::is_control) {
            cx.err(
                ty.span(),
                &format!("{ekey}.type"),
                ErrorKind::InvalidValue,
                "must be a non-empty CloudEvents type such as \"com.example.order.created\"",
            );
            continue;
        }
        if !seen.insert(ty.get_ref().clone()) {
            cx.err(
                ty.span(),
                &format!("{ekey}.type"),
                ErrorKind::InvalidValue,
                format!("\"{}\" is declared twice in {key}", ty.get_ref()),
            );
            continue;
        }
        let dataschema = dataschema.and_then(|s| schema_ref(cx, &ekey, s, base_dir));
        let datacontenttype = datacontenttype.and_then(|v| {
            let media = v.get_ref();
            let valid = media
                .split(';')
                .next()
                .and_then(|essence| essence.trim().split_once('/'))
                .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains('/'));
            if !valid {
                cx.err(
                    v.span(),
                    &format!("{ekey}.datacontenttype"),
                    ErrorKind::InvalidValue,
                    format!("\"{media}\" is not a media type (e.g. \"application/json\")"),
                );
                return None;
            }
            if dataschema.is_some() && !cloudevent::media::is_json(media) {
                cx.err(
                    v.span(),
                    &format!("{ekey}.datacontenttype"),
                    ErrorKind::InvalidValue,
                    format!(
                        "a dataschema is a JSON Schema, which validates JSON data; \"{media}\" is not JSON"
                    ),
                );
                return None;
            }
            Some(v.into_inner())
        });
        out.push(MessageDecl {
            ty: ty.into_inner(),
            dataschema,
            datacontenttype,
            description,
        });
    }
    out
}

fn schema_ref(
    cx: &mut Ctx<'_>,
    ekey: &str,
    value: Spanned<String>,
    base_dir: &Path,
) -> Option<SchemaRef> {
    let text = value.get_ref();
    let key = format!("{ekey}.dataschema");
    if text.trim().is_empty() {
        cx.err(
            value.span(),
            &key,
            ErrorKind::InvalidValue,
            "must not be empty (a JSON Schema file of the app, or an http(s) URL)",
        );
        return None;
    }
    if let Some((scheme, _)) = text.split_once("://") {
        return match url::Url::parse(text) {
            Ok(url) if matches!(scheme, "http" | "https") && url.host_str().is_some() => {
                Some(SchemaRef::Url(url))
            }
            _ => {
                cx.err(
                    value.span(),
                    &key,
                    ErrorKind::InvalidUri,
                    format!(
                        "\"{text}\" is neither a file path nor an http(s) URL of a schema registry"
                    ),
                );
                None
            }
        };
    }
    Some(SchemaRef::File(base_dir.join(text)))
}
