//! Header-value encoding shared by the bindings that carry attributes in string headers
//! (HTTP `ce-`, NATS `ce-`): percent-encoding per HTTP binding section 3.1.3.2, and the
//! decoding that undoes it (quoted-string unescaping, then one round of percent-decoding).
//!
//! Strict in what is sent, lenient in what is received: values are always sent fully
//! percent-encoded, but a received `%` that does not start an escape is taken literally and
//! raw UTF-8 bytes are accepted, because producers such as the npm `cloudevents` SDK send
//! values unencoded (`ce-subject: a b%c é`) and such a value is unambiguous.

use std::borrow::Cow;

use bytes::BytesMut;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};

use crate::attribute::all_bytes;

/// Why a header value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderValueError {
    /// A quoted-string without its closing quote, or with text after it.
    #[error("malformed quoted string")]
    BadQuoting,
    /// The decoded bytes are not UTF-8 (for example the overlong `%C0%A0`).
    #[error("percent-decoded bytes are not valid UTF-8 (at byte {0})")]
    InvalidUtf8(usize),
}

/// Whether a character must be percent-encoded: space, `"`, `%`, and anything outside the
/// printable ASCII range U+0021–U+007E.
#[inline]
fn needs_encoding(b: u8) -> bool {
    !(0x21..=0x7E).contains(&b) || b == b'"' || b == b'%'
}

/// Whether any byte must be percent-encoded.
#[inline]
fn any_needs_encoding(value: &str) -> bool {
    !all_bytes(value.as_bytes(), |b| !needs_encoding(b))
}

/// Percent-encodes a canonical attribute string for a header, with upper-case hex.
/// Returns the input unchanged (borrowed) when nothing needs encoding, the common case.
pub fn encode(value: &str) -> Cow<'_, str> {
    if !any_needs_encoding(value) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    escape(value, |ascii| {
        out.extend(ascii.iter().map(|&b| char::from(b)))
    });
    Cow::Owned(out)
}

/// Appends the percent-encoded form of `value` to `out`: what [`encode`] returns, without an
/// intermediate string. The bytes written are always printable ASCII (U+0021–U+007E).
pub(crate) fn encode_into(value: &str, out: &mut BytesMut) {
    if !any_needs_encoding(value) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    out.reserve(value.len() + 16);
    escape(value, |ascii| out.extend_from_slice(ascii));
}

/// What section 3.1.3.2 requires to be percent-encoded, besides every non-ASCII byte (which
/// [`utf8_percent_encode`] always encodes): controls, space, `"`, `%` and DEL.
const MUST_ENCODE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Percent-encodes `value` with upper-case hex, handing the result to `push` piece by piece
/// (only printable ASCII).
fn escape(value: &str, mut push: impl FnMut(&[u8])) {
    for piece in utf8_percent_encode(value, MUST_ENCODE) {
        push(piece.as_bytes());
    }
}

/// [`decode`] for a value already known to be a string (as `HeaderValue::to_str` gives it):
/// a value that is neither quoted nor holds a `%`, the common case, is its own decoding, and
/// is returned borrowed without being validated as UTF-8 again.
pub(crate) fn decode_str(raw: &str) -> Result<Cow<'_, str>, HeaderValueError> {
    let (start, end) = ows_bounds(raw.as_bytes());
    let value = &raw.as_bytes()[start..end];
    if value.first() != Some(&b'"') && all_bytes(value, |b| b != b'%') {
        return Ok(Cow::Borrowed(if start == 0 && end == raw.len() {
            raw
        } else {
            // Only ASCII bytes were trimmed, so the bounds are character boundaries.
            &raw[start..end]
        }));
    }
    decode(raw.as_bytes())
}

/// Decodes a header value into the attribute string: unquotes a quoted-string (RFC 7230
/// section 3.2.6, backslash escapes included), then performs exactly one round of
/// percent-decoding (lower-case hex accepted), and rejects bytes that are not UTF-8.
///
/// Lenient where the value stays unambiguous: a `%` not followed by two hexadecimal digits is
/// kept as a literal `%` (`50%` is `50%`, `a%zz` is `a%zz`), and raw UTF-8 bytes are taken as
/// they are, so unencoded values from producers that skip percent-encoding still decode. A
/// `%` that *is* followed by two hex digits is always an escape (`%41` is `A`).
pub fn decode(raw: &[u8]) -> Result<Cow<'_, str>, HeaderValueError> {
    let raw = trim_ows(raw);
    let unquoted: Cow<'_, [u8]> = if raw.first() == Some(&b'"') {
        Cow::Owned(unquote(raw)?)
    } else {
        Cow::Borrowed(raw)
    };
    let decoded: Cow<'_, [u8]> = match unquoted {
        Cow::Borrowed(b) => percent_decode(b).into(),
        Cow::Owned(b) => Cow::Owned(Cow::from(percent_decode(&b)).into_owned()),
    };
    match decoded {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|e| HeaderValueError::InvalidUtf8(e.valid_up_to())),
        Cow::Owned(b) => String::from_utf8(b)
            .map(Cow::Owned)
            .map_err(|e| HeaderValueError::InvalidUtf8(e.utf8_error().valid_up_to())),
    }
}

fn trim_ows(raw: &[u8]) -> &[u8] {
    let (start, end) = ows_bounds(raw);
    &raw[start..end]
}

/// Where the value starts and ends once optional whitespace (spaces and tabs) is trimmed.
fn ows_bounds(raw: &[u8]) -> (usize, usize) {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = raw.iter().position(|b| !is_ows(b)).unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    (start, end)
}

fn unquote(raw: &[u8]) -> Result<Vec<u8>, HeaderValueError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut chars = raw[1..].iter();
    while let Some(&c) = chars.next() {
        match c {
            b'\\' => out.push(*chars.next().ok_or(HeaderValueError::BadQuoting)?),
            b'"' => {
                return if chars.as_slice().is_empty() {
                    Ok(out)
                } else {
                    Err(HeaderValueError::BadQuoting)
                };
            }
            other => out.push(other),
        }
    }
    Err(HeaderValueError::BadQuoting)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn the_string_fast_path_agrees_with_decode(
            s in "[ \t]{0,2}\"?([a-zA-Z0-9 %\"\\\\\t]|é|€|%2[05]|%[eE]2%82%[aA][cC]|%C0%A0){0,24}\"?[ \t]{0,2}",
        ) {
            prop_assert_eq!(decode_str(&s), decode(s.as_bytes()));
        }

        #[test]
        fn encode_into_writes_what_encode_returns(s in any::<String>()) {
            let mut out = BytesMut::from(&b"x"[..]);
            encode_into(&s, &mut out);
            let expected = encode(&s);
            prop_assert_eq!(&out[1..], expected.as_bytes());
        }
    }

    #[test]
    fn encodes_exactly_the_required_characters() {
        assert_eq!(encode("Euro € 😀"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
        assert_eq!(encode(r#"a"b%c"#), "a%22b%25c");
        assert_eq!(encode("tab\there"), "tab%09here");
        assert_eq!(encode("\u{7f}"), "%7F");
        let printable: String = (0x21u8..=0x7E)
            .filter(|b| *b != b'"' && *b != b'%')
            .map(char::from)
            .collect();
        assert!(matches!(encode(&printable), Cow::Borrowed(_)));
    }

    #[test]
    fn decodes_one_round_with_any_hex_case() {
        assert_eq!(
            decode(b"Euro%20%e2%82%ac%20%F0%9F%98%80").unwrap(),
            "Euro € 😀"
        );
        assert_eq!(decode(b"%2541").unwrap(), "%41");
        assert_eq!(decode(b"%41").unwrap(), "A");
        assert_eq!(decode(b"plain").unwrap(), "plain");
    }

    #[test]
    fn unquotes_before_percent_decoding() {
        assert_eq!(decode(br#""hello world""#).unwrap(), "hello world");
        assert_eq!(decode(br#""say \"hi\"""#).unwrap(), r#"say "hi""#);
        assert_eq!(decode(br#""a%20b""#).unwrap(), "a b");
        assert_eq!(decode(br#"  "x"  "#).unwrap(), "x");
        assert_eq!(
            decode(br#""unterminated"#),
            Err(HeaderValueError::BadQuoting)
        );
        assert_eq!(decode(br#""a"b"#), Err(HeaderValueError::BadQuoting));
    }

    #[test]
    fn rejects_bad_escapes_and_invalid_utf8() {
        assert_eq!(decode(b"%C0%A0"), Err(HeaderValueError::InvalidUtf8(0)));
        assert_eq!(decode(b"ab%FF"), Err(HeaderValueError::InvalidUtf8(2)));
        assert!(decode(&[0xC3, 0x28]).is_err());
    }

    /// HTTP binding 3.1.3.2: "When decoding an HTTP header value into a CloudEvent attribute
    /// value, any HTTP header value MUST first be unescaped with respect to double-quoted
    /// strings [...]. A single round of percent-decoding MUST then be performed [...]". A `%`
    /// that begins no escape cannot be decoded; the value is unambiguous, so it is taken
    /// literally (as npm `cloudevents` 10 sends `ce-subject: a b%c é`), as are raw UTF-8 bytes.
    #[test]
    fn a_percent_without_two_hex_digits_and_raw_utf8_are_taken_literally() {
        assert_eq!(decode(b"%G1").unwrap(), "%G1");
        assert_eq!(decode(b"x%4").unwrap(), "x%4");
        assert_eq!(decode(b"x%").unwrap(), "x%");
        assert_eq!(decode(b"50%").unwrap(), "50%");
        assert_eq!(decode("a b%c é".as_bytes()).unwrap(), "a b%c é");
        assert_eq!(decode_str("a b%c é").unwrap(), "a b%c é");
        assert_eq!(decode(br#""100% sure""#).unwrap(), "100% sure");
        // A real escape next to a literal `%` is still decoded.
        assert_eq!(decode(b"%41%").unwrap(), "A%");
        // Sending stays strictly encoded.
        assert_eq!(encode("a b%c é"), "a%20b%25c%20%C3%A9");
    }
}
