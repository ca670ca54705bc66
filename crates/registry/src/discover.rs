//! Reading other registries: what Spindle needs from a remote xRegistry document to
//! subscribe there (`[[subscribe]] registry = ...`, `spindle discover`).

use serde_json::Value;

/// The first HTTP endpoint of a registry document whose usage is `subscriber`: its URI (in
/// `protocoloptions.endpoints`, or the older top-level `endpoints` the samples use).
pub fn subscriber_endpoint(document: &Value) -> Option<String> {
    document["endpoints"]
        .as_object()?
        .values()
        .filter(|e| {
            e["usage"]
                .as_array()
                .is_some_and(|u| u.iter().any(|u| u == "subscriber"))
                && e["protocol"]
                    .as_str()
                    .is_none_or(|p| p.eq_ignore_ascii_case("HTTP"))
        })
        .find_map(endpoint_uri)
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// An endpoint's first URI: in `protocoloptions.endpoints`, or the older top-level
/// `endpoints` the published samples use.
pub fn endpoint_uri(endpoint: &Value) -> Option<&str> {
    endpoint["protocoloptions"]["endpoints"]
        .as_array()
        .or_else(|| endpoint["endpoints"].as_array())?
        .iter()
        .find_map(|u| u["uri"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_subscriber_endpoint_is_found_in_either_shape() {
        let modern = json!({ "endpoints": {
            "in": { "usage": ["producer"], "protocol": "HTTP",
                    "protocoloptions": { "endpoints": [{ "uri": "http://a/in" }] } },
            "subs": { "usage": ["subscriber"], "protocol": "HTTP",
                      "protocoloptions": { "endpoints": [{ "uri": "http://a:3001/subscriptions/" }] } }
        }});
        assert_eq!(
            subscriber_endpoint(&modern).as_deref(),
            Some("http://a:3001/subscriptions")
        );
        let sample = json!({ "endpoints": { "s": { "usage": ["subscriber"], "protocol": "HTTP",
            "endpoints": [{ "uri": "https://erp.example.com/subscriptions" }] } } });
        assert_eq!(
            subscriber_endpoint(&sample).as_deref(),
            Some("https://erp.example.com/subscriptions")
        );
        assert_eq!(subscriber_endpoint(&json!({ "endpoints": {} })), None);
    }
}
