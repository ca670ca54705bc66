//! One declared data schema: loaded once at start-up, compiled, and checked against event data.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use cloudevent::{DataKind, Event};
use manifest::SchemaRef;
use serde_json::Value;

/// How long fetching a schema from a registry URL may take at start-up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest schema document read from a file or a URL.
const MAX_SCHEMA_BYTES: usize = 4 << 20;

/// Why a declared schema cannot be used. Start-up stops on it: an app whose contract cannot be
/// checked would silently accept what it declared it refuses.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file cannot be read.
    #[error("cannot read the schema {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The registry URL did not serve the schema.
    #[error("cannot fetch the schema {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The document is not JSON.
    #[error("the schema {origin} is not JSON: {reason}")]
    NotJson {
        /// Where it came from.
        origin: String,
        /// The parser's message.
        reason: String,
    },
    /// The document is JSON but not a valid JSON Schema.
    #[error("the schema {origin} is not a valid JSON Schema: {reason}")]
    Invalid {
        /// Where it came from.
        origin: String,
        /// The compiler's message, naming the offending keyword.
        reason: String,
    },
}

/// One way an event's data breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer to the offending value in the data (`""` for the data as a whole).
    pub pointer: String,
    /// The schema keyword that failed (`minimum`, `required`, `type`, ...).
    pub rule: String,
    /// JSON Pointer to that keyword in the schema.
    pub schema_path: String,
    /// What is wrong, in words.
    pub message: String,
}

/// Every way an event's data breaks the schema declared for its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations {
    /// The event's type.
    pub event_type: String,
    /// The schema's URI (its `dataschema`).
    pub schema: String,
    /// What failed, at most [`MAX_VIOLATIONS`] of them.
    pub errors: Vec<Violation>,
}

/// How many violations one check reports: enough to fix a payload, bounded for the reply.
pub const MAX_VIOLATIONS: usize = 20;

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "data of {} does not match its schema {}",
            self.event_type, self.schema
        )?;
        for (i, e) in self.errors.iter().enumerate() {
            let pointer = if e.pointer.is_empty() {
                "(the data)"
            } else {
                &e.pointer
            };
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}at {pointer}: {} ({})", e.message, e.rule)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// A compiled JSON Schema with the document it came from.
pub struct DataSchema {
    origin: String,
    document: Value,
    format: &'static str,
    validator: jsonschema::Validator,
}

impl fmt::Debug for DataSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataSchema")
            .field("origin", &self.origin)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl DataSchema {
    /// Compiles `document` (from `origin`, a path or URL used in messages). The draft is the
    /// one its `$schema` names; 2020-12 when it names none.
    pub fn compile(origin: impl Into<String>, document: Value) -> Result<DataSchema, SchemaError> {
        let origin = origin.into();
        let validator =
            jsonschema::options()
                .build(&document)
                .map_err(|e| SchemaError::Invalid {
                    origin: origin.clone(),
                    reason: e.to_string(),
                })?;
        Ok(DataSchema {
            format: format_of(&document),
            origin,
            document,
            validator,
        })
    }

    /// Reads and compiles the schema a manifest declaration points at: a file, or a URL
    /// fetched now. A registry's metadata view (`{ "format", "schema": {...} }`) is
    /// unwrapped to the schema it carries.
    pub async fn load(reference: &SchemaRef) -> Result<DataSchema, SchemaError> {
        match reference {
            SchemaRef::File(path) => {
                let text = read_file(path)?;
                let document = parse(&path.display().to_string(), &text)?;
                DataSchema::compile(path.display().to_string(), document)
            }
            SchemaRef::Url(url) => {
                let document = fetch(url).await?;
                DataSchema::compile(url.to_string(), document)
            }
        }
    }

    /// The document as loaded.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The xRegistry `format` of the schema, e.g. `JSONSchema/draft-2020-12`.
    pub fn format(&self) -> &'static str {
        self.format
    }

    /// The schema's own `$id`, when it is an absolute URI: what `dataschema` should say.
    pub fn id(&self) -> Option<&str> {
        self.document
            .get("$id")
            .and_then(Value::as_str)
            .filter(|id| url::Url::parse(id).is_ok())
    }

    /// Checks `event`'s data. Data that is not JSON (or no data at all, checked as `null`)
    /// fails a schema that wants JSON values.
    pub fn check(&self, event: &Event, schema_uri: &str) -> Result<(), Violations> {
        let violations = |errors| Violations {
            event_type: event.ty().to_owned(),
            schema: schema_uri.to_owned(),
            errors,
        };
        let value = match json_of(event) {
            Ok(value) => value,
            Err(message) => {
                return Err(violations(vec![Violation {
                    pointer: String::new(),
                    rule: "type".to_owned(),
                    schema_path: String::new(),
                    message,
                }]));
            }
        };
        if self.validator.is_valid(&value) {
            return Ok(());
        }
        let errors = self
            .validator
            .iter_errors(&value)
            .take(MAX_VIOLATIONS)
            .map(|e| Violation {
                pointer: e.instance_path().to_string(),
                rule: e.kind().keyword().to_owned(),
                schema_path: e.schema_path().to_string(),
                message: e.to_string(),
            })
            .collect();
        Err(violations(errors))
    }
}

/// The event's data as a JSON value: `null` without data; parsed when it is JSON by kind or by
/// its `datacontenttype`; an error naming what it is otherwise.
fn json_of(event: &Event) -> Result<Value, String> {
    let Some(data) = event.data() else {
        return Ok(Value::Null);
    };
    let declared_json = event
        .datacontenttype()
        .is_none_or(cloudevent::media::is_json);
    if data.kind() != DataKind::Json && !declared_json {
        return Err(format!(
            "the data is {} (datacontenttype {}), not JSON",
            match data.kind() {
                DataKind::Text => "text",
                _ => "binary",
            },
            event.datacontenttype().unwrap_or("unset")
        ));
    }
    serde_json::from_slice(data.as_bytes()).map_err(|e| format!("the data is not valid JSON: {e}"))
}

/// The xRegistry format string for the draft the schema's `$schema` names.
fn format_of(document: &Value) -> &'static str {
    let declared = document
        .get("$schema")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if declared.contains("draft-04") {
        "JSONSchema/draft-04"
    } else if declared.contains("draft-06") {
        "JSONSchema/draft-06"
    } else if declared.contains("draft-07") {
        "JSONSchema/draft-07"
    } else if declared.contains("2019-09") {
        "JSONSchema/draft-2019-09"
    } else {
        "JSONSchema/draft-2020-12"
    }
}

fn read_file(path: &Path) -> Result<String, SchemaError> {
    let read_error = |source| SchemaError::Read {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if meta.len() > MAX_SCHEMA_BYTES as u64 {
        return Err(read_error(std::io::Error::other(format!(
            "larger than {MAX_SCHEMA_BYTES} bytes"
        ))));
    }
    std::fs::read_to_string(path).map_err(read_error)
}

fn parse(origin: &str, text: &str) -> Result<Value, SchemaError> {
    serde_json::from_str(text).map_err(|e| SchemaError::NotJson {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })
}

async fn fetch(url: &url::Url) -> Result<Value, SchemaError> {
    let failed = |reason: String| SchemaError::Fetch {
        url: url.to_string(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let response = client
        .get(url.clone())
        .header("accept", "application/schema+json, application/json")
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
    if body.len() > MAX_SCHEMA_BYTES {
        return Err(failed(format!("larger than {MAX_SCHEMA_BYTES} bytes")));
    }
    let text = String::from_utf8_lossy(&body);
    let document = parse(url.as_str(), &text)?;
    Ok(unwrap_registry_view(document))
}

/// A schema registry's metadata view of a version carries the schema inline (`schema`, as an
/// object or as JSON text); a plain schema document is returned as it is.
fn unwrap_registry_view(document: Value) -> Value {
    let is_view = document.get("format").is_some_and(Value::is_string);
    match document.get("schema") {
        Some(Value::Object(_)) if is_view => document["schema"].clone(),
        Some(Value::String(text)) if is_view => serde_json::from_str(text).unwrap_or(document),
        _ => document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevent::Data;
    use serde_json::json;

    fn event(data: Option<Data>) -> Event {
        let mut b = Event::builder()
            .id("1")
            .source("/t")
            .ty("com.example.order");
        if let Some(d) = data {
            b = b.data_with_type("application/json", d);
        }
        b.build().unwrap()
    }

    fn order_schema() -> DataSchema {
        DataSchema::compile(
            "order.json",
            json!({
                "type": "object",
                "required": ["amount"],
                "properties": { "amount": { "type": "number", "minimum": 0 } }
            }),
        )
        .unwrap()
    }

    #[test]
    fn valid_data_passes_and_invalid_data_names_the_pointer_and_rule() {
        let schema = order_schema();
        let ok = event(Some(Data::json(&json!({"amount": 3}))));
        assert_eq!(schema.check(&ok, "urn:s"), Ok(()));
        let bad = event(Some(Data::json(&json!({"amount": -1}))));
        let v = schema.check(&bad, "urn:s").unwrap_err();
        assert_eq!(v.errors.len(), 1);
        assert_eq!(v.errors[0].pointer, "/amount");
        assert_eq!(v.errors[0].rule, "minimum");
        assert_eq!(v.errors[0].schema_path, "/properties/amount/minimum");
        assert!(v.to_string().contains("/amount"), "{v}");
    }

    #[test]
    fn missing_data_is_checked_as_null() {
        let v = order_schema().check(&event(None), "urn:s").unwrap_err();
        assert_eq!(v.errors[0].rule, "type");
    }

    #[test]
    fn non_json_data_fails_with_what_it_is() {
        let e = Event::builder()
            .id("1")
            .source("/t")
            .ty("t")
            .data_with_type("application/octet-stream", Data::binary(vec![1, 2, 3]))
            .build()
            .unwrap();
        let v = order_schema().check(&e, "urn:s").unwrap_err();
        assert!(v.errors[0].message.contains("not JSON"), "{v}");
    }

    #[test]
    fn an_invalid_schema_is_refused_with_the_reason() {
        let err = DataSchema::compile("bad.json", json!({"type": 12})).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");
    }

    #[test]
    fn the_draft_comes_from_dollar_schema() {
        let s = DataSchema::compile(
            "s",
            json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
        )
        .unwrap();
        assert_eq!(s.format(), "JSONSchema/draft-07");
        assert_eq!(order_schema().format(), "JSONSchema/draft-2020-12");
    }

    #[test]
    fn a_registry_view_is_unwrapped() {
        let view = json!({"format": "JSONSchema/draft-07", "schema": {"type": "string"}});
        assert_eq!(unwrap_registry_view(view), json!({"type": "string"}));
        let plain = json!({"type": "object", "properties": {"schema": {}}});
        assert_eq!(unwrap_registry_view(plain.clone()), plain);
    }
}
