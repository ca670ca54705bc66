//! # spindle-registry
//!
//! Discovery and schemas (the seed's third pillar, as CloudEvents now spells it: xRegistry).
//! Components declare the event types they `consume` and `produce` in `spindle.toml`, each
//! with an optional JSON Schema for its data; this crate turns those declarations into
//!
//! - a [`Catalog`]: every schema loaded and compiled once at start-up, and per component the
//!   [`Contract`] the executor checks events against (input refused with the JSON Pointer and
//!   the rule that failed; output validated and stamped with its `dataschema`);
//! - the app's xRegistry document ([`document::build`]): its triggers, outputs and
//!   Subscriptions API as endpoints, the declared types as message definitions, the schemas
//!   with versions; served read-only by the admin API through [`Registry`] and written by
//!   `spindle registry export`;
//! - [`check_document`]: the one check for any registry document, Spindle's or another's.
//!
//! The JSON Schema engine is the `jsonschema` crate (drafts 4 to 2020-12, chosen by each
//! schema's `$schema`; 2020-12 when it names none). Remote `$ref`s are not fetched.

#![warn(missing_docs)]

mod catalog;
mod check;
mod discover;
pub mod document;
mod schema;

pub use catalog::{Catalog, Contract, SchemaVersion};
pub use check::{Problem, check_document, resolve};
pub use discover::{endpoint_uri, subscriber_endpoint};
pub use document::Addresses;
pub use schema::{DataSchema, MAX_VIOLATIONS, SchemaError, Violation, Violations};

use serde_json::Value;

/// What a registry path leads to.
#[derive(Debug, PartialEq)]
pub enum Lookup<'a> {
    /// Registry metadata (the document, a collection, an entity, `$details` of a schema).
    Metadata(&'a Value),
    /// A schema document itself: a schema (its newest version) or one version of it.
    Schema(&'a Value),
    /// A schema kept elsewhere: its URL.
    Elsewhere(&'a str),
}

/// The app's registry document, ready to serve.
#[derive(Debug, Clone)]
pub struct Registry {
    document: Value,
}

impl Registry {
    /// Wraps a built document.
    pub fn new(document: Value) -> Self {
        Registry { document }
    }

    /// The whole document (what `spindle registry export` writes).
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Looks up a path below the registry's root, in the xRegistry API's shape:
    /// `endpoints`, `endpoints/<id>`, `messagegroups/<g>/messages/<m>`,
    /// `schemagroups/<g>/schemas/<s>` (the newest version's schema document),
    /// `.../versions/<v>` (that version's), and `$details` after a schema or a version for
    /// its metadata instead.
    pub fn lookup(&self, path: &str) -> Option<Lookup<'_>> {
        let path = path.trim_matches('/');
        let (path, details) = match path.strip_suffix("$details") {
            Some(p) => (p, true),
            None => (path, false),
        };
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let node = segments.iter().try_fold(&self.document, |node, segment| {
            node.as_object()?.get(*segment)
        })?;
        let version = match segments.as_slice() {
            ["schemagroups", _, "schemas", _] => {
                if details {
                    return Some(Lookup::Metadata(node));
                }
                newest_version(node)?
            }
            ["schemagroups", _, "schemas", _, "versions", _] => node,
            _ if details => return None,
            _ => return Some(Lookup::Metadata(node)),
        };
        if details {
            return Some(Lookup::Metadata(version));
        }
        match (
            version.get("schema"),
            version.get("schemaurl").and_then(Value::as_str),
        ) {
            (Some(schema), _) => Some(Lookup::Schema(schema)),
            (None, Some(url)) => Some(Lookup::Elsewhere(url)),
            (None, None) => None,
        }
    }
}

/// The version with the highest number of a schema entity.
fn newest_version(schema: &Value) -> Option<&Value> {
    schema
        .get("versions")?
        .as_object()?
        .iter()
        .max_by_key(|(id, _)| id.parse::<u64>().unwrap_or(0))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_follow_the_xregistry_paths() {
        let registry = Registry::new(json!({
            "endpoints": { "e": { "usage": ["producer"] } },
            "schemagroups": { "app": { "schemas": { "t": { "versions": {
                "1": { "format": "JSONSchema/draft-07", "schema": { "type": "string" } },
                "2": { "format": "JSONSchema/draft-07", "schema": { "type": "number" } },
                "3": { "format": "JSONSchema/draft-07", "schemaurl": "https://x/s.json" }
            } } } } }
        }));
        assert!(
            matches!(registry.lookup(""), Some(Lookup::Metadata(v)) if v.get("endpoints").is_some())
        );
        assert_eq!(
            registry.lookup("/endpoints/e"),
            Some(Lookup::Metadata(&json!({ "usage": ["producer"] })))
        );
        assert_eq!(registry.lookup("endpoints/nope"), None);
        assert_eq!(
            registry.lookup("schemagroups/app/schemas/t/versions/2"),
            Some(Lookup::Schema(&json!({ "type": "number" })))
        );
        assert_eq!(
            registry.lookup("schemagroups/app/schemas/t"),
            Some(Lookup::Elsewhere("https://x/s.json"))
        );
        assert!(matches!(
            registry.lookup("schemagroups/app/schemas/t/versions/1$details"),
            Some(Lookup::Metadata(v)) if v["format"] == "JSONSchema/draft-07"
        ));
        assert_eq!(registry.lookup("endpoints/e$details"), None);
    }
}
