//! `[key_value_store.<label>]` and each component's `key_value_stores` grant.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::Ctx;
use crate::error::ErrorKind;
use crate::locate::quote_key;
use crate::model::*;
use crate::raw::*;

/// The stores the manifest defines, plus `default` (embedded) unless it redefines it.
pub(super) fn stores(
    cx: &mut Ctx<'_>,
    raw: BTreeMap<Str, Spanned<RawKeyValueStore>>,
    base_dir: &Path,
) -> BTreeMap<String, KeyValueStore> {
    let mut stores =
        BTreeMap::from([(DEFAULT_KEY_VALUE_STORE.to_owned(), KeyValueStore::Embedded)]);
    for (label, store) in raw {
        let key = format!("key_value_store.{}", quote_key(label.get_ref()));
        if let Err(msg) = check_label(label.get_ref()) {
            cx.err(label.span(), &key, ErrorKind::InvalidName, msg);
        }
        let span = store.span();
        let store = store.into_inner();
        let parsed = match (store.ty.get_ref().as_str(), store.url) {
            ("embedded", None) => Some(KeyValueStore::Embedded),
            ("embedded", Some(url)) => {
                cx.err(
                    url.span(),
                    &format!("{key}.url"),
                    ErrorKind::InvalidValue,
                    "an embedded store has no url",
                );
                None
            }
            ("redis", Some(url)) => {
                let ukey = format!("{key}.url");
                let url_span = url.span();
                let url = super::application::secret(cx, &ukey, url, base_dir, false);
                if let Secret::Literal(text) = &url
                    && !text.starts_with("redis://")
                {
                    cx.err(
                        url_span,
                        &ukey,
                        ErrorKind::InvalidValue,
                        "expected a redis:// URL, e.g. \"redis://127.0.0.1:6379\" (TLS to Redis, rediss://, is not supported yet)",
                    );
                }
                Some(KeyValueStore::Redis { url })
            }
            ("redis", None) => {
                cx.err(
                    span,
                    &format!("{key}.url"),
                    ErrorKind::MissingKey,
                    "a redis store needs `url = \"redis://host:port\"`",
                );
                None
            }
            (other, _) => {
                cx.err(
                    store.ty.span(),
                    &format!("{key}.type"),
                    ErrorKind::InvalidValue,
                    format!("unknown store type \"{other}\" (expected \"embedded\" or \"redis\")"),
                );
                None
            }
        };
        if let Some(parsed) = parsed {
            stores.insert(label.into_inner(), parsed);
        }
    }
    stores
}

/// A component's `key_value_stores`: each label must name a store.
pub(super) fn grants(
    cx: &mut Ctx<'_>,
    key: &str,
    labels: Vec<Str>,
    stores: &BTreeMap<String, KeyValueStore>,
) -> Vec<String> {
    let mut granted = Vec::new();
    for (i, label) in labels.into_iter().enumerate() {
        if !stores.contains_key(label.get_ref()) {
            let known: Vec<&str> = stores.keys().map(String::as_str).collect();
            cx.err(
                label.span(),
                &format!("{key}.key_value_stores[{i}]"),
                ErrorKind::InvalidValue,
                format!(
                    "no key-value store \"{}\" (defined: {}; add a [key_value_store.{}] table)",
                    label.get_ref(),
                    known.join(", "),
                    label.get_ref()
                ),
            );
        } else if !granted.contains(label.get_ref()) {
            granted.push(label.into_inner());
        }
    }
    granted
}

/// Store labels: lowercase letters, digits, `-` and `_`, starting with a letter.
fn check_label(label: &str) -> Result<(), String> {
    let ok = label.starts_with(|c: char| c.is_ascii_lowercase())
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid store label \"{label}\": use lowercase letters, digits, `-` and `_`, starting with a letter"
        ))
    }
}
