//! Percent-encoding of URI path segments and query values, in one place for the listeners
//! that decode them and the CLI that builds them (RFC 3986: everything but the unreserved
//! characters is escaped).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What a path segment or query value escapes: all but RFC 3986's unreserved characters.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` as a path segment or query value (`a b/c` → `a%20b%2Fc`).
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// A decoded path segment or query value. A `%` without two hex digits stays as it is, and
/// bytes that are not UTF-8 become U+FFFD.
pub fn decode_component(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_round_trip() {
        assert_eq!(encode_component("a b/c~d.e_f-g"), "a%20b%2Fc~d.e_f-g");
        assert_eq!(encode_component("é"), "%C3%A9");
        assert_eq!(decode_component("a%20b%2F"), "a b/");
        assert_eq!(decode_component("%zz%4"), "%zz%4");
        for s in ["x y?z&w=1", "über/ünter", "%41"] {
            assert_eq!(decode_component(&encode_component(s)), s);
        }
    }
}
