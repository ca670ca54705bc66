//! The API's own description, served at `/openapi.yaml` and `/openapi.json` so clients and
//! test tools (schemathesis) work from the contract the server actually implements.

use std::sync::OnceLock;

use bytes::Bytes;

/// The OpenAPI document, as written.
pub const YAML: &str = include_str!("../openapi/subscriptions.yaml");

/// The same document as JSON (converted once).
pub fn json() -> Bytes {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    JSON.get_or_init(|| {
        let value: serde_json::Value =
            serde_norway::from_str(YAML).expect("the embedded OpenAPI document is valid YAML");
        Bytes::from(value.to_string())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_converts() {
        let v: serde_json::Value = serde_json::from_slice(&super::json()).unwrap();
        assert!(v["paths"]["/subscriptions"].is_object());
    }
}
