//! Query strings and path segments, percent-decoded (no dependency needed for so little).

/// The parameters of a query string, in order.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=two` (`+` is a space; bad escapes are kept as written).
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of a parameter; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decodes a path segment or query component (invalid UTF-8 is replaced).
pub use http_server::uri::decode_component as decode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode("a%20b%2F"), "a b/");
        assert_eq!(decode("%zz%4"), "%zz%4");
        let q = Query::parse(Some("subscription=a%2Fb&limit=5&x="));
        assert_eq!(q.get("subscription"), Some("a/b"));
        assert_eq!(q.get("limit"), Some("5"));
        assert_eq!(q.get("x"), None);
    }
}
