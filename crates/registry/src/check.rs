//! Checking an xRegistry document: against the registry model's JSON Schema (the CloudEvents
//! registry's `document-schema.json`) when one is given, and for references that lead nowhere
//! (an endpoint's message group, a message's schema) always. The same check runs on the
//! document Spindle serves and on any other registry's, so what Spindle emits is held to the
//! rules the published samples follow.

use serde_json::Value;

/// One problem in a document: where (a JSON Pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON Pointer into the document.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// Checks `document` against `model_schema` (when given) and for dangling references.
/// An empty list means it passed. Fails only when `model_schema` is not a usable JSON Schema.
pub fn check_document(
    document: &Value,
    model_schema: Option<&Value>,
) -> Result<Vec<Problem>, crate::SchemaError> {
    let mut problems = Vec::new();
    if let Some(schema) = model_schema {
        // `format` is an annotation here, not an assertion: the published samples reference
        // `/messagegroups/...` relatively where the model says `uri`, and so does Spindle.
        let validator = jsonschema::options()
            .should_validate_formats(false)
            .build(schema)
            .map_err(|e| crate::SchemaError::Invalid {
                origin: "the registry model schema".to_owned(),
                reason: e.to_string(),
            })?;
        problems.extend(validator.iter_errors(document).take(50).map(|e| Problem {
            pointer: e.instance_path().to_string(),
            message: e.to_string(),
        }));
    }
    if !document.is_object() {
        problems.push(Problem {
            pointer: String::new(),
            message: "a registry document is a JSON object".to_owned(),
        });
        return Ok(problems);
    }
    references(document, &mut problems);
    Ok(problems)
}

/// Every `/messagegroups/...` an endpoint lists and every `/schemagroups/...` a message's
/// `dataschemauri` names must exist in the document (absolute URLs point elsewhere and are
/// not followed).
fn references(document: &Value, problems: &mut Vec<Problem>) {
    let entries = |collection: &str| -> Vec<(String, Value)> {
        document
            .get(collection)
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    for (id, endpoint) in entries("endpoints") {
        let Some(groups) = endpoint.get("messagegroups").and_then(Value::as_array) else {
            continue;
        };
        for (i, group) in groups.iter().enumerate() {
            let Some(reference) = group.as_str() else {
                continue;
            };
            if reference.starts_with('/') && resolve(document, reference).is_none() {
                problems.push(Problem {
                    pointer: format!("/endpoints/{}/messagegroups/{i}", escape(&id)),
                    message: format!("{reference} is not in the document"),
                });
            }
        }
    }
    for (gid, group) in entries("messagegroups") {
        let Some(messages) = group.get("messages").and_then(Value::as_object) else {
            continue;
        };
        for (mid, message) in messages {
            let Some(reference) = message.get("dataschemauri").and_then(Value::as_str) else {
                continue;
            };
            if reference.starts_with("/schemagroups/") && !resolves_schema(document, reference) {
                problems.push(Problem {
                    pointer: format!(
                        "/messagegroups/{}/messages/{}/dataschemauri",
                        escape(&gid),
                        escape(mid)
                    ),
                    message: format!("{reference} is not in the document"),
                });
            }
        }
    }
}

/// Whether a schema reference leads to a schema: the path itself, or the path before a
/// `:<element>` naming a part of the schema (`.../versions/v1.0:Payload`, a Protobuf message;
/// `...:messages/STATEBirth`, a definition inside a JSON Schema), as the samples write them.
fn resolves_schema(document: &Value, reference: &str) -> bool {
    resolve(document, reference).is_some()
        || reference
            .match_indices(':')
            .any(|(at, _)| resolve(document, &reference[..at]).is_some())
}

/// Follows a registry-relative path (`/schemagroups/g/schemas/s/versions/1`) through the
/// document's nested maps.
pub fn resolve<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = document;
    for segment in path.trim_start_matches('/').split('/') {
        if segment.is_empty() {
            continue;
        }
        node = node.as_object()?.get(segment)?;
    }
    Some(node)
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dangling_references_are_reported() {
        let doc = json!({
            "endpoints": { "e": { "messagegroups": ["/messagegroups/missing"] } },
            "messagegroups": { "g": { "messages": { "m": {
                "dataschemauri": "/schemagroups/s/schemas/x/versions/1" } } } },
            "schemagroups": {}
        });
        let problems = check_document(&doc, None).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].pointer, "/endpoints/e/messagegroups/0");
        assert_eq!(
            problems[1].pointer,
            "/messagegroups/g/messages/m/dataschemauri"
        );
    }

    #[test]
    fn a_model_schema_is_applied() {
        let schema = json!({ "properties": { "endpoints": { "type": "object" } } });
        let problems = check_document(&json!({ "endpoints": [] }), Some(&schema)).unwrap();
        assert_eq!(problems[0].pointer, "/endpoints");
    }
}
