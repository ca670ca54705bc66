//! CESQL values and types, and the [`EventAttributes`] trait through which
//! expressions and filters read an event.
//!
//! The crate never depends on a concrete event type: anything that can answer
//! "what is the value of attribute `name`?" can be filtered.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

/// The three primitive CESQL types (spec §3.1).
///
/// Exposed so callers can inspect the static type of an expression
/// ([`crate::Expression::return_type`]) and the types named in cast errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `true` or `false`; zero value `false`.
    Boolean,
    /// A signed 32-bit integer; zero value `0`.
    Integer,
    /// A sequence of Unicode characters; zero value `""`.
    String,
}

impl Type {
    /// The zero value of the type (spec §3.1), returned by operators and
    /// functions that fail.
    pub fn zero(self) -> Value<'static> {
        match self {
            Type::Boolean => Value::Boolean(false),
            Type::Integer => Value::Integer(0),
            Type::String => Value::String(Cow::Borrowed("")),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Boolean => "Boolean",
            Type::Integer => "Integer",
            Type::String => "String",
        })
    }
}

/// A CESQL value: the value of an event attribute, or the result of an
/// expression.
///
/// Strings are a [`Cow`] so that attribute values can be borrowed from the
/// event, and results borrowed from the event or the expression, without
/// allocating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value<'a> {
    /// A string (also URIs, URI references and timestamps, in canonical form).
    String(Cow<'a, str>),
    /// A 32-bit signed integer.
    Integer(i32),
    /// A boolean.
    Boolean(bool),
}

impl<'a> Value<'a> {
    /// The CESQL type of this value.
    pub fn value_type(&self) -> Type {
        match self {
            Value::String(_) => Type::String,
            Value::Integer(_) => Type::Integer,
            Value::Boolean(_) => Type::Boolean,
        }
    }

    /// A copy that owns its string, so it can outlive the event/expression
    /// it was borrowed from.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::Integer(i) => Value::Integer(i),
            Value::Boolean(b) => Value::Boolean(b),
        }
    }

    /// A cheap view of this value that borrows its string (never allocates).
    #[inline]
    pub fn borrowed(&self) -> Value<'_> {
        match self {
            Value::String(s) => Value::String(Cow::Borrowed(s)),
            Value::Integer(i) => Value::Integer(*i),
            Value::Boolean(b) => Value::Boolean(*b),
        }
    }

    /// The boolean, if this is a Boolean (no casting).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an Integer (no casting).
    pub fn as_integer(&self) -> Option<i32> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is a String (no casting).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Calls `f` with the canonical string form of the value (what the
    /// Integer/Boolean → String casts produce), without allocating.
    ///
    /// Why: the `exact`/`prefix`/`suffix` dialects and string comparisons
    /// compare canonical forms on the hot path.
    #[inline]
    pub fn with_canonical_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Value::String(s) => f(s),
            Value::Boolean(true) => f("true"),
            Value::Boolean(false) => f("false"),
            Value::Integer(i) => {
                let mut buf = [0u8; 11];
                f(format_i32(*i, &mut buf))
            }
        }
    }

    /// Converts a JSON value the way CESQL maps CloudEvent attribute values:
    /// strings stay strings, booleans are Booleans, integers that fit 32 bits
    /// are Integers, anything else becomes its JSON text as a String.
    ///
    /// Why: tests and tools build events from JSON (the TCK, `spindle filter
    /// eval`).
    pub fn from_json(value: &serde_json::Value) -> Value<'static> {
        match value {
            serde_json::Value::String(s) => Value::String(Cow::Owned(s.clone())),
            serde_json::Value::Bool(b) => Value::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
                Some(i) => Value::Integer(i),
                None => Value::String(Cow::Owned(n.to_string())),
            },
            other => Value::String(Cow::Owned(other.to_string())),
        }
    }
}

impl Value<'_> {
    /// The value as JSON (string, number or boolean), e.g. for a CLI or API
    /// reporting an evaluation result.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Boolean(b) => serde_json::Value::Bool(*b),
        }
    }
}

/// Formats `i` in base 10 into `buf` and returns the text (no allocation).
pub(crate) fn format_i32(i: i32, buf: &mut [u8; 11]) -> &str {
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[pos..]).unwrap_or("0")
}

impl fmt::Display for Value<'_> {
    /// Writes the canonical string form (a string is written as is).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => f.write_str(s),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl From<bool> for Value<'static> {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<i32> for Value<'static> {
    fn from(i: i32) -> Self {
        Value::Integer(i)
    }
}

impl From<String> for Value<'static> {
    fn from(s: String) -> Self {
        Value::String(Cow::Owned(s))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::String(Cow::Borrowed(s))
    }
}

/// Read access to the context attributes of an event.
///
/// Implement this for an event type to evaluate expressions and filters on
/// it. Context attributes map to CESQL types per the CESQL spec: Boolean and
/// Integer attributes as such, everything else as a String in its canonical
/// form; `specversion`, `id`, `source` and `type` are always present on a
/// valid event. Attribute names are lower case (CloudEvents naming rules); the
/// parser lower-cases identifiers, so implementations need not fold case.
pub trait EventAttributes {
    /// The value of attribute `name`, or `None` if the event does not have it.
    ///
    /// Return borrowed strings where possible: evaluation then compares
    /// attributes without allocating.
    fn attribute(&self, name: &str) -> Option<Value<'_>>;

    /// Whether the event has attribute `name` (used by `EXISTS`).
    ///
    /// Override when producing the value is costly (e.g. formatting a
    /// timestamp).
    fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }
}

impl<T: EventAttributes + ?Sized> EventAttributes for &T {
    fn attribute(&self, name: &str) -> Option<Value<'_>> {
        (**self).attribute(name)
    }
    fn has_attribute(&self, name: &str) -> bool {
        (**self).has_attribute(name)
    }
}

impl<S: BuildHasher> EventAttributes for HashMap<String, Value<'static>, S> {
    fn attribute(&self, name: &str) -> Option<Value<'_>> {
        self.get(name).map(Value::borrowed)
    }
}

impl EventAttributes for BTreeMap<String, Value<'static>> {
    fn attribute(&self, name: &str) -> Option<Value<'_>> {
        self.get(name).map(Value::borrowed)
    }
}

/// An event with no attributes at all.
///
/// Why: constant folding evaluates attribute-free sub-expressions against it,
/// and it is handy in tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAttributes;

impl EventAttributes for NoAttributes {
    fn attribute(&self, _name: &str) -> Option<Value<'_>> {
        None
    }
}

/// A small attribute map: a vector of name/value pairs, searched linearly.
///
/// Why: events have a handful of attributes, for which a linear scan beats
/// hashing; used by tests, the benchmark and tools that build events from
/// JSON. Each name also has a one-word tag (its length and first bytes), so
/// a lookup scans a few machine words and compares whole names only for long
/// names whose tags agree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEvent {
    tags: Vec<u64>,
    attributes: Vec<(String, Value<'static>)>,
}

/// A one-word digest of a name: its first eight bytes, with the length
/// mixed into the top byte. Names of up to seven bytes are identified by it
/// alone. Short names are read with overlapping loads, without a loop.
#[inline]
fn name_tag(name: &str) -> u64 {
    let b = name.as_bytes();
    let n = b.len();
    let head = if let Some(chunk) = b.first_chunk::<8>() {
        u64::from_le_bytes(*chunk)
    } else if n >= 4 {
        let lo = b.first_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c));
        let hi = b.last_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c));
        u64::from(lo) | (u64::from(hi) << (8 * (n - 4)))
    } else if n > 0 {
        u64::from(b[0])
            | (u64::from(b[n / 2]) << (8 * (n / 2)))
            | (u64::from(b[n - 1]) << (8 * (n - 1)))
    } else {
        0
    };
    head ^ ((n as u64) << 56)
}

/// Names this short are identified by their tag alone.
const TAG_ONLY: usize = 7;

impl MapEvent {
    /// An event without attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder form of [`MapEvent::insert`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value<'static>>) -> Self {
        self.insert(name, value);
        self
    }

    /// Sets attribute `name` (replacing a previous value).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value<'static>>) {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Some(i) => self.attributes[i].1 = value,
            None => {
                self.tags.push(name_tag(&name));
                self.attributes.push((name, value));
            }
        }
    }

    /// Removes attribute `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value<'static>> {
        let i = self.position(name)?;
        self.tags.remove(i);
        Some(self.attributes.remove(i).1)
    }

    #[inline]
    fn position(&self, name: &str) -> Option<usize> {
        let tag = name_tag(name);
        self.tags
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == tag)
            .map(|(i, _)| i)
            .find(|&i| {
                let candidate = &self.attributes[i].0;
                candidate.len() == name.len() && (name.len() <= TAG_ONLY || candidate == name)
            })
    }

    /// Builds an event from the members of a JSON object (e.g. a CloudEvent
    /// in JSON format), mapping values with [`Value::from_json`]; `data` and
    /// `data_base64` are skipped because CESQL does not address the data.
    pub fn from_json_object(object: &serde_json::Map<String, serde_json::Value>) -> Self {
        let mut event = MapEvent::new();
        for (name, value) in object {
            if name == "data" || name == "data_base64" {
                continue;
            }
            event.insert(name.clone(), Value::from_json(value));
        }
        event
    }

    /// Iterates over the attributes in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'static>)> {
        self.attributes.iter().map(|(n, v)| (n.as_str(), v))
    }
}

impl EventAttributes for MapEvent {
    #[inline]
    fn attribute(&self, name: &str) -> Option<Value<'_>> {
        self.position(name).map(|i| self.attributes[i].1.borrowed())
    }
}

impl<N: Into<String>, V: Into<Value<'static>>> FromIterator<(N, V)> for MapEvent {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut event = MapEvent::new();
        for (n, v) in iter {
            event.insert(n, v);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_integers_without_allocating() {
        let mut buf = [0u8; 11];
        assert_eq!(format_i32(0, &mut buf), "0");
        assert_eq!(format_i32(-1, &mut buf), "-1");
        assert_eq!(format_i32(1234, &mut buf), "1234");
        assert_eq!(format_i32(i32::MIN, &mut buf), "-2147483648");
        assert_eq!(format_i32(i32::MAX, &mut buf), "2147483647");
    }

    #[test]
    fn canonical_strings() {
        assert_eq!(
            Value::Boolean(true).with_canonical_str(str::to_owned),
            "true"
        );
        assert_eq!(Value::Integer(-7).with_canonical_str(str::to_owned), "-7");
        assert_eq!(Value::from("x").with_canonical_str(str::to_owned), "x");
    }

    #[test]
    fn json_mapping() {
        let j = serde_json::json!({"a": "s", "b": 5, "c": true, "d": 5_000_000_000i64, "data": 1});
        let e = MapEvent::from_json_object(j.as_object().unwrap());
        assert_eq!(e.attribute("a"), Some(Value::from("s")));
        assert_eq!(e.attribute("b"), Some(Value::Integer(5)));
        assert_eq!(e.attribute("c"), Some(Value::Boolean(true)));
        assert_eq!(e.attribute("d"), Some(Value::from("5000000000")));
        assert_eq!(e.attribute("data"), None);
        assert_eq!(Value::Integer(5).to_json(), serde_json::json!(5));
        assert_eq!(Value::from("s").to_json(), serde_json::json!("s"));
        assert_eq!(Value::Boolean(true).to_json(), serde_json::json!(true));
    }

    #[test]
    fn map_event_insert_replaces() {
        let mut e = MapEvent::new().with("a", 1).with("a", 2);
        assert_eq!(e.attribute("a"), Some(Value::Integer(2)));
        assert_eq!(e.remove("a"), Some(Value::Integer(2)));
        assert!(!e.has_attribute("a"));
    }

    #[test]
    fn map_event_tells_names_apart() {
        let e = MapEvent::new()
            .with("datacontenttype", "a".to_string())
            .with("datacontentencoding", "b".to_string())
            .with("datacontenttypf", "c".to_string())
            .with("id", "d".to_string())
            .with("ida", "e".to_string())
            .with("", "f".to_string());
        let get = |n: &str| e.attribute(n).map(|v| v.to_string());
        assert_eq!(get("datacontenttype").as_deref(), Some("a"));
        assert_eq!(get("datacontentencoding").as_deref(), Some("b"));
        assert_eq!(get("datacontenttypf").as_deref(), Some("c"));
        assert_eq!(get("id").as_deref(), Some("d"));
        assert_eq!(get("ida").as_deref(), Some("e"));
        assert_eq!(get("").as_deref(), Some("f"));
        assert_eq!(get("datacontent"), None);
        assert_eq!(get("i"), None);
        assert_eq!(get("datacontenttypg"), None);
        // A 7-byte name and an 8-byte one whose tags collide.
        let e = MapEvent::new().with("abcdefg\u{f}", "long".to_string());
        assert_eq!(name_tag("abcdefg"), name_tag("abcdefg\u{f}"));
        assert_eq!(e.attribute("abcdefg"), None);
        // Tags of short names are their bytes.
        for name in ["a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg"] {
            let mut bytes = [0u8; 8];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            let expected = u64::from_le_bytes(bytes) ^ ((name.len() as u64) << 56);
            assert_eq!(name_tag(name), expected, "{name}");
        }
    }
}
