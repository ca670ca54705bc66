//! The CloudEvents type system: typed attribute values, their canonical string forms, and the
//! rules for attribute names.
//!
//! Every protocol binding and event format speaks in terms of these types, so the canonical
//! string forms defined here are what ends up in HTTP headers, Kafka headers, AMQP
//! application-properties and the like. Keeping them in one place is what keeps the bindings
//! consistent with each other.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, FixedOffset, SecondsFormat};

/// The types of the CloudEvents type system (CloudEvents 1.0.2, "Type System").
///
/// Extensions keep their type through the runtime, so a binding that can carry types (JSON,
/// AMQP) writes them natively while one that cannot (HTTP headers) writes the canonical string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeType {
    /// `true` or `false`.
    Boolean,
    /// A signed 32-bit integer.
    Integer,
    /// A sequence of Unicode characters.
    String,
    /// A sequence of bytes, written as Base64.
    Binary,
    /// An absolute URI (RFC 3986 section 4.3).
    Uri,
    /// A URI-reference (RFC 3986 section 4.1): absolute or relative.
    UriRef,
    /// A date and time, written per RFC 3339.
    Timestamp,
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttributeType::Boolean => "Boolean",
            AttributeType::Integer => "Integer",
            AttributeType::String => "String",
            AttributeType::Binary => "Binary",
            AttributeType::Uri => "URI",
            AttributeType::UriRef => "URI-reference",
            AttributeType::Timestamp => "Timestamp",
        })
    }
}

/// A typed attribute value, as carried by extension attributes.
///
/// Values are validated on construction through [`AttributeValue::parse`] or the typed
/// constructors, so a value held by an [`crate::Event`] is always valid for its type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// A Boolean.
    Boolean(bool),
    /// A 32-bit signed integer.
    Integer(i32),
    /// A string; never contains control characters.
    String(String),
    /// Bytes.
    Binary(Vec<u8>),
    /// An absolute URI.
    Uri(String),
    /// A URI-reference.
    UriRef(String),
    /// A timestamp.
    Timestamp(Timestamp),
}

impl AttributeValue {
    /// The CloudEvents type of this value.
    pub fn attribute_type(&self) -> AttributeType {
        match self {
            AttributeValue::Boolean(_) => AttributeType::Boolean,
            AttributeValue::Integer(_) => AttributeType::Integer,
            AttributeValue::String(_) => AttributeType::String,
            AttributeValue::Binary(_) => AttributeType::Binary,
            AttributeValue::Uri(_) => AttributeType::Uri,
            AttributeValue::UriRef(_) => AttributeType::UriRef,
            AttributeValue::Timestamp(_) => AttributeType::Timestamp,
        }
    }

    /// Parses a canonical string form into a value of the given type.
    ///
    /// This is how a binding that only carries strings (HTTP, Kafka and NATS headers) would
    /// recover a typed value when the receiver knows the type it expects.
    pub fn parse(ty: AttributeType, text: &str) -> Result<Self, ValueError> {
        Ok(match ty {
            AttributeType::Boolean => match text {
                "true" => AttributeValue::Boolean(true),
                "false" => AttributeValue::Boolean(false),
                _ => return Err(ValueError::new(ty, "expected `true` or `false`")),
            },
            AttributeType::Integer => AttributeValue::Integer(parse_integer(text)?),
            AttributeType::String => AttributeValue::String(check_string(text)?.to_owned()),
            AttributeType::Binary => AttributeValue::Binary(
                BASE64
                    .decode(text)
                    .map_err(|e| ValueError::new(ty, format!("invalid Base64: {e}")))?,
            ),
            AttributeType::Uri => AttributeValue::Uri(check_uri(text)?.to_owned()),
            AttributeType::UriRef => AttributeValue::UriRef(check_uri_ref(text)?.to_owned()),
            AttributeType::Timestamp => AttributeValue::Timestamp(text.parse()?),
        })
    }

    /// A string value, checked to hold no control characters.
    pub fn string(text: impl Into<String>) -> Result<Self, ValueError> {
        let text = text.into();
        check_string(&text)?;
        Ok(AttributeValue::String(text))
    }

    /// The canonical string form (CloudEvents 1.0.2 "Type System"): what a header carries.
    pub fn to_canonical_string(&self) -> String {
        self.to_string()
    }

    /// The value as a string slice when it is stored as one (String, URI, URI-reference):
    /// lets hot paths compare without formatting.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::String(s) | AttributeValue::Uri(s) | AttributeValue::UriRef(s) => {
                Some(s)
            }
            _ => None,
        }
    }
}

impl fmt::Display for AttributeValue {
    /// Writes the canonical string form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Boolean(b) => write!(f, "{b}"),
            AttributeValue::Integer(i) => write!(f, "{i}"),
            AttributeValue::String(s) | AttributeValue::Uri(s) | AttributeValue::UriRef(s) => {
                f.write_str(s)
            }
            AttributeValue::Binary(b) => f.write_str(&BASE64.encode(b)),
            AttributeValue::Timestamp(t) => fmt::Display::fmt(t, f),
        }
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        AttributeValue::Boolean(value)
    }
}

impl From<i32> for AttributeValue {
    fn from(value: i32) -> Self {
        AttributeValue::Integer(value)
    }
}

impl From<Timestamp> for AttributeValue {
    fn from(value: Timestamp) -> Self {
        AttributeValue::Timestamp(value)
    }
}

/// A value that does not fit its CloudEvents type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ty}: {reason}")]
pub struct ValueError {
    /// The type the value was checked against.
    pub ty: AttributeType,
    /// Why it does not fit.
    pub reason: String,
}

impl ValueError {
    pub(crate) fn new(ty: AttributeType, reason: impl Into<String>) -> Self {
        ValueError {
            ty,
            reason: reason.into(),
        }
    }
}

/// Parses an Integer's canonical form: optional minus sign, decimal digits, 32-bit range.
///
/// A leading `+` and surrounding whitespace are rejected: the canonical form has neither.
pub fn parse_integer(text: &str) -> Result<i32, ValueError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::new(
            AttributeType::Integer,
            format!("`{text}` is not a decimal integer"),
        ));
    }
    text.parse::<i32>().map_err(|_| {
        ValueError::new(
            AttributeType::Integer,
            format!("`{text}` is outside the 32-bit range"),
        )
    })
}

/// Checks a String value: the type system forbids the control characters U+0000–U+001F and
/// U+007F–U+009F, and (being Unicode) noncharacters such as U+FFFE.
pub fn check_string(text: &str) -> Result<&str, ValueError> {
    // Fast path: printable ASCII, by far the common case.
    if all_bytes_in(text.as_bytes(), 0x20, 0x7E) {
        return Ok(text);
    }
    match text.chars().find(|&c| c.is_control() || is_noncharacter(c)) {
        None => Ok(text),
        Some(c) => Err(ValueError::new(
            AttributeType::String,
            format!("contains the forbidden character U+{:04X}", c as u32),
        )),
    }
}

/// Whether every byte is in `lo..=hi`.
#[inline]
pub(crate) fn all_bytes_in(bytes: &[u8], lo: u8, hi: u8) -> bool {
    all_bytes(bytes, |b| b.wrapping_sub(lo) <= hi - lo)
}

/// Whether `ok` holds for every byte. Written to vectorise: a check of a whole 16-byte block
/// at a time, without a branch inside it (a fold over a slice of unknown length is compiled a
/// byte at a time), the last block overlapping the one before it rather than being handled
/// byte by byte; shorter values are checked as two overlapping 8- or 4-byte blocks.
#[inline(always)]
pub(crate) fn all_bytes(bytes: &[u8], ok: impl Fn(u8) -> bool + Copy) -> bool {
    fn block_ok<const N: usize>(block: &[u8; N], ok: impl Fn(u8) -> bool) -> bool {
        block.iter().fold(true, |all, &b| all & ok(b))
    }
    if let Some(last) = bytes.last_chunk::<16>() {
        let (blocks, _) = bytes.as_chunks::<16>();
        // The early exit keeps the compiler from vectorising across blocks instead of within.
        return blocks.iter().all(|block| block_ok(block, ok)) && block_ok(last, ok);
    }
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return block_ok(first, ok) & block_ok(last, ok);
    }
    if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        return block_ok(first, ok) & block_ok(last, ok);
    }
    bytes.iter().fold(true, |all, &b| all & ok(b))
}

fn is_noncharacter(c: char) -> bool {
    let c = c as u32;
    (0xFDD0..=0xFDEF).contains(&c) || (c & 0xFFFE) == 0xFFFE
}

/// Checks an absolute URI per RFC 3986 section 4.3 (a scheme is required, a fragment is not
/// allowed: `absolute-URI = scheme ":" hier-part [ "?" query ]`). A URI-reference
/// ([`check_uri_ref`]) keeps its fragment.
pub fn check_uri(text: &str) -> Result<&str, ValueError> {
    match fluent_uri::Uri::parse(text) {
        Ok(uri) if uri.fragment().is_some() => Err(ValueError::new(
            AttributeType::Uri,
            format!(
                "`{text}` is not an absolute URI: it has a fragment (`#...`), which RFC 3986 section 4.3 excludes"
            ),
        )),
        Ok(_) => Ok(text),
        Err(e) => Err(ValueError::new(
            AttributeType::Uri,
            format!("`{text}` is not an absolute URI ({e})"),
        )),
    }
}

/// Checks a URI-reference per RFC 3986 section 4.1 (relative references allowed).
pub fn check_uri_ref(text: &str) -> Result<&str, ValueError> {
    // Fast path for the most common shape, an absolute path such as `/shop/orders`: a
    // path-absolute of pchar and `/` (no `//` start, no `%`, `?` or `#`) is always valid.
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && bytes
            .iter()
            .fold(true, |ok, &b| ok & PATH_ABSOLUTE[usize::from(b)])
    {
        return Ok(text);
    }
    match fluent_uri::UriRef::parse(text) {
        Ok(_) => Ok(text),
        Err(e) => Err(ValueError::new(
            AttributeType::UriRef,
            format!("`{text}` is not a URI-reference ({e})"),
        )),
    }
}

/// The bytes of the `check_uri_ref` fast path: `pchar` without `%` (unreserved and sub-delims,
/// `:` and `@`) and `/`, as a lookup table.
static PATH_ABSOLUTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        b += 1;
    }
    table
};

/// Why a name cannot be a CloudEvents attribute name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The empty string.
    #[error("attribute names cannot be empty")]
    Empty,
    /// Something other than `a`–`z` and `0`–`9`.
    #[error("invalid attribute name `{0}`: only lower-case letters a-z and digits 0-9 are allowed")]
    Characters(String),
    /// `data` is reserved for the event payload.
    #[error("`data` is reserved for the event payload and cannot be an attribute name")]
    Reserved,
}

/// Checks an attribute name: `[a-z0-9]+`, and not the reserved `data`.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if !all_bytes(name.as_bytes(), |b| {
        b.is_ascii_lowercase() | b.is_ascii_digit()
    }) {
        Err(NameError::Characters(name.to_owned()))
    } else if name == "data" {
        Err(NameError::Reserved)
    } else {
        Ok(())
    }
}

/// A CloudEvents Timestamp: an instant with the UTC offset it was written with.
///
/// The canonical form is RFC 3339 with `T` and upper-case `Z`, and as many fractional digits
/// (0, 3, 6 or 9) as the value needs, so `2018-04-05T17:31:00Z` stays exactly as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<FixedOffset>);

impl Timestamp {
    /// The current time, in UTC.
    pub fn now() -> Self {
        Timestamp(DateTime::<chrono::Utc>::from(std::time::SystemTime::now()).fixed_offset())
    }

    /// The underlying date-time.
    pub fn as_datetime(&self) -> &DateTime<FixedOffset> {
        &self.0
    }
}

impl From<DateTime<FixedOffset>> for Timestamp {
    fn from(value: DateTime<FixedOffset>) -> Self {
        Timestamp(value)
    }
}

impl From<DateTime<chrono::Utc>> for Timestamp {
    fn from(value: DateTime<chrono::Utc>) -> Self {
        Timestamp(value.fixed_offset())
    }
}

impl FromStr for Timestamp {
    type Err = ValueError;

    /// Parses RFC 3339 `date-time` (a `T` or `t` separator, a mandatory offset).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // chrono also accepts a space as the separator (RFC 3339 only mentions it in a note);
        // the CloudEvents type system says RFC 3339, so hold to its grammar.
        if text.as_bytes().get(10) == Some(&b' ') {
            return Err(ValueError::new(
                AttributeType::Timestamp,
                format!(
                    "`{text}` is not an RFC 3339 date-time: date and time must be separated by `T`"
                ),
            ));
        }
        DateTime::parse_from_rfc3339(text)
            .map(Timestamp)
            .map_err(|e| {
                ValueError::new(
                    AttributeType::Timestamp,
                    format!("`{text}` is not an RFC 3339 date-time ({e})"),
                )
            })
    }
}

impl Timestamp {
    /// The canonical form for years 0–9999, formatted on the stack (hand-rolled: this runs for
    /// every event with a `time` on every hop), for encoders to copy straight into their
    /// output; `None` outside RFC 3339's four-digit years.
    pub(crate) fn canonical_ascii(&self) -> Option<AsciiBuf> {
        use chrono::{Datelike, Timelike};
        let local = self.0.naive_local();
        let year = local.year();
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = AsciiBuf::new();
        out.num(year as u32, 4);
        out.byte(b'-');
        out.num(local.month(), 2);
        out.byte(b'-');
        out.num(local.day(), 2);
        out.byte(b'T');
        out.num(local.hour(), 2);
        out.byte(b':');
        out.num(local.minute(), 2);
        out.byte(b':');
        // A leap second is carried as nanoseconds >= 1e9.
        let nanos = local.nanosecond();
        let (second, nanos) = if nanos >= 1_000_000_000 {
            (local.second() + 1, nanos - 1_000_000_000)
        } else {
            (local.second(), nanos)
        };
        out.num(second, 2);
        if nanos != 0 {
            out.byte(b'.');
            if nanos % 1_000_000 == 0 {
                out.num(nanos / 1_000_000, 3);
            } else if nanos % 1_000 == 0 {
                out.num(nanos / 1_000, 6);
            } else {
                out.num(nanos, 9);
            }
        }
        let offset = self.0.offset().local_minus_utc();
        if offset == 0 {
            out.byte(b'Z');
        } else {
            out.byte(if offset < 0 { b'-' } else { b'+' });
            let minutes = offset.unsigned_abs() / 60;
            out.num(minutes / 60, 2);
            out.byte(b':');
            out.num(minutes % 60, 2);
        }
        Some(out)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.canonical_ascii() {
            Some(ascii) => f.write_str(ascii.as_str()),
            // Outside RFC 3339's four-digit years; chrono knows what to do.
            None => f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

/// A small stack buffer for formatting timestamps without allocating.
pub(crate) struct AsciiBuf {
    buf: [u8; 40],
    len: usize,
}

impl AsciiBuf {
    fn new() -> Self {
        AsciiBuf {
            buf: [0; 40],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn num(&mut self, mut value: u32, digits: usize) {
        for i in (0..digits).rev() {
            self.buf[self.len + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += digits;
    }

    /// The bytes written: ASCII digits and `-:.+TZ`.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_alphanumerics_and_not_data() {
        assert!(check_name("comexampleextension1").is_ok());
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert!(matches!(
            check_name("Bad-Name"),
            Err(NameError::Characters(_))
        ));
        assert!(matches!(check_name("a_b"), Err(NameError::Characters(_))));
        assert!(matches!(check_name("ÿ"), Err(NameError::Characters(_))));
        assert_eq!(check_name("data"), Err(NameError::Reserved));
    }

    #[test]
    fn integers_are_32_bit_decimal() {
        assert_eq!(parse_integer("-2147483648"), Ok(i32::MIN));
        assert_eq!(parse_integer("2147483647"), Ok(i32::MAX));
        assert!(parse_integer("2147483648").is_err());
        assert!(parse_integer("+1").is_err());
        assert!(parse_integer(" 1").is_err());
        assert!(parse_integer("1.0").is_err());
        assert!(parse_integer("-").is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_and_canonical() {
        let t: Timestamp = "2018-04-05T17:31:00Z".parse().unwrap();
        assert_eq!(t.to_string(), "2018-04-05T17:31:00Z");
        let t: Timestamp = "2018-04-05t17:31:00.123456+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2018-04-05T17:31:00.123456+02:00");
        let t: Timestamp = "2018-04-05T17:31:00+00:00".parse().unwrap();
        assert_eq!(t.to_string(), "2018-04-05T17:31:00Z");
        assert!("2018-04-05 17:31:00Z".parse::<Timestamp>().is_err());
        assert!("2018-04-05T17:31:00".parse::<Timestamp>().is_err());
        assert!("2018-13-05T17:31:00Z".parse::<Timestamp>().is_err());
        assert!("yesterday".parse::<Timestamp>().is_err());
        let t: Timestamp = "1985-04-12T23:20:50.52-04:30".parse().unwrap();
        assert_eq!(t.to_string(), "1985-04-12T23:20:50.520-04:30");
        let t: Timestamp = "1990-12-31T23:59:60Z".parse().unwrap();
        assert_eq!(t.to_string(), "1990-12-31T23:59:60Z");
        let t: Timestamp = "2000-01-01T00:00:00.000000001Z".parse().unwrap();
        assert_eq!(t.to_string(), "2000-01-01T00:00:00.000000001Z");
    }

    /// CloudEvents core, type system: "`URI` - Absolute uniform resource identifier. String
    /// encoding: `Absolute URI` as defined in RFC 3986 Section 4.3", where
    /// `absolute-URI = scheme ":" hier-part [ "?" query ]` has no fragment; "`URI-reference`
    /// [...] as defined in RFC 3986 Section 4.1" keeps it.
    #[test]
    fn absolute_uris_have_no_fragment_but_uri_references_may() {
        let err = check_uri("https://example.com/a?b#c").unwrap_err();
        assert!(err.reason.contains("fragment"), "{}", err.reason);
        assert!(check_uri("https://example.com/a#").is_err());
        assert!(check_uri("https://example.com/a?b").is_ok());
        assert!(check_uri_ref("https://example.com/a?b#c").is_ok());
        assert!(check_uri_ref("/a#c").is_ok());
        assert!(check_uri_ref("#c").is_ok());
    }

    #[test]
    fn uris_follow_rfc3986() {
        assert!(check_uri("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66").is_ok());
        assert!(check_uri("/relative").is_err());
        assert!(check_uri("").is_err());
        assert!(check_uri_ref("/mycontext/subcontext").is_ok());
        assert!(check_uri_ref("https://github.com/cloudevents").is_ok());
        assert!(check_uri_ref("not a uri").is_err());
        assert!(check_uri_ref("bad%zz").is_err());
        assert!(check_uri_ref("/a/b%zz").is_err());
        assert!(check_uri_ref("/a b").is_err());
        assert!(check_uri_ref("//host/path").is_ok());
        assert!(check_uri_ref("/a/b:c@d").is_ok());
    }

    #[test]
    fn block_scans_see_every_byte() {
        assert!(all_bytes_in(b"", b'a', b'z'));
        for len in 0..70 {
            for bad in 0..len {
                let mut bytes = vec![b'a'; len];
                assert!(all_bytes_in(&bytes, b'a', b'z'));
                bytes[bad] = b'{';
                assert!(
                    !all_bytes_in(&bytes, b'a', b'z'),
                    "len {len}, bad byte at {bad}"
                );
                assert!(
                    !all_bytes(&bytes, |b| b != b'{'),
                    "len {len}, bad byte at {bad}"
                );
            }
        }
    }

    #[test]
    fn timestamps_outside_four_digit_years_still_format() {
        let t = Timestamp::from(
            DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").unwrap()
                + chrono::Duration::days(1),
        );
        assert!(t.canonical_ascii().is_none());
        assert_eq!(t.to_string(), "+10000-01-01T23:59:59Z");
    }

    #[test]
    fn strings_reject_control_characters() {
        assert!(check_string("Euro € 😀").is_ok());
        assert!(check_string("a\u{0}b").is_err());
        assert!(check_string("a\u{85}b").is_err());
        assert!(check_string("a\u{FFFE}").is_err());
    }

    #[test]
    fn canonical_forms_round_trip() {
        for (ty, text) in [
            (AttributeType::Boolean, "true"),
            (AttributeType::Integer, "-42"),
            (AttributeType::String, "hello world"),
            (AttributeType::Binary, "AQID"),
            (AttributeType::Uri, "https://example.com"),
            (AttributeType::UriRef, "/a/b"),
            (AttributeType::Timestamp, "2020-01-01T00:00:00.500Z"),
        ] {
            let v = AttributeValue::parse(ty, text).unwrap();
            assert_eq!(v.attribute_type(), ty);
            assert_eq!(v.to_canonical_string(), text);
        }
        assert!(AttributeValue::parse(AttributeType::Boolean, "TRUE").is_err());
        assert!(AttributeValue::parse(AttributeType::Binary, "***").is_err());
    }
}
