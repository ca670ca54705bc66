//! The JSON event format (`application/cloudevents+json`) and the JSON batch format
//! (`application/cloudevents-batch+json`), per cloudevents/formats/json-format.md.
//!
//! Decoding keeps `data` as the exact JSON text it arrived as (no re-serialisation, no number
//! rounding) and, when the input is a [`Bytes`], without copying it. Encoding writes members
//! directly into a buffer.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Deserializer as _;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

use crate::attribute::{AttributeValue, Timestamp};
use crate::data::{Data, DataKind};
use crate::error::{Error, Problem};
use crate::event::{AttributeRef, Event, EventBuilder};
use crate::media::{self, APPLICATION_JSON};

/// Decodes one event in the JSON format.
pub fn decode(input: &[u8]) -> Result<Event, Error> {
    decode_with(input, &|raw: &[u8]| Bytes::copy_from_slice(raw))
}

/// Decodes one event in the JSON format, sharing `data` with the input buffer.
pub fn decode_bytes(input: &Bytes) -> Result<Event, Error> {
    decode_with(input, &|raw: &[u8]| input.slice_ref(raw))
}

/// Decodes a JSON batch: an array of events. Every member is checked and every problem is
/// reported with the member's index.
pub fn decode_batch(input: &[u8]) -> Result<Vec<Event>, Error> {
    decode_batch_with(input, &|raw: &[u8]| Bytes::copy_from_slice(raw))
}

/// Decodes a JSON batch, sharing `data` with the input buffer.
pub fn decode_batch_bytes(input: &Bytes) -> Result<Vec<Event>, Error> {
    decode_batch_with(input, &|raw: &[u8]| input.slice_ref(raw))
}

/// Decodes either a single event (a JSON object) or a batch (a JSON array), by looking at the
/// first non-whitespace byte: what a file given to `spindle event validate` may hold.
pub fn decode_any(input: &[u8]) -> Result<(Vec<Event>, bool), Error> {
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        decode_batch(input).map(|events| (events, true))
    } else {
        decode(input).map(|event| (vec![event], false))
    }
}

type SliceToBytes<'a> = dyn Fn(&[u8]) -> Bytes + 'a;

fn decode_with(input: &[u8], to_bytes: &SliceToBytes<'_>) -> Result<Event, Error> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let members = de
        .deserialize_map(MembersVisitor)
        .map_err(|e| Error::from_json(&e))?;
    de.end().map_err(|e| Error::from_json(&e))?;
    members.into_event(to_bytes)
}

fn decode_batch_with(input: &[u8], to_bytes: &SliceToBytes<'_>) -> Result<Vec<Event>, Error> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let items = de
        .deserialize_seq(BatchVisitor)
        .map_err(|e| Error::from_json(&e))?;
    de.end().map_err(|e| Error::from_json(&e))?;
    let mut events = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, members) in items.into_iter().enumerate() {
        match members.into_event(to_bytes) {
            Ok(event) => events.push(event),
            Err(e) => problems.extend(e.at_index(index).problems()),
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(Error::Invalid(problems))
    }
}

/// The members of one JSON event object, before interpretation.
struct Members<'de> {
    attributes: Vec<(String, Value)>,
    data: Option<&'de RawValue>,
    duplicates: Vec<String>,
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudEvent (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Members {
            attributes: Vec::with_capacity(8),
            data: None,
            duplicates: Vec::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            let seen = key == "data" && members.data.is_some()
                || members.attributes.iter().any(|(k, _)| *k == key);
            if seen {
                members.duplicates.push(key.clone());
            }
            if key == "data" {
                members.data = Some(map.next_value()?);
            } else {
                let value = map.next_value()?;
                members.attributes.push((key, value));
            }
        }
        Ok(members)
    }
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = Vec<Members<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch of CloudEvents (a JSON array of objects)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(MemberSeed)? {
            items.push(item);
        }
        Ok(items)
    }
}

struct MemberSeed;

impl<'de> de::DeserializeSeed<'de> for MemberSeed {
    type Value = Members<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(MembersVisitor)
    }
}

impl Members<'_> {
    fn into_event(self, to_bytes: &SliceToBytes<'_>) -> Result<Event, Error> {
        let mut b = EventBuilder::default();
        for key in &self.duplicates {
            b.problem(Problem::attribute(key, "appears more than once"));
        }
        let mut data_base64 = None;
        for (name, value) in self.attributes {
            if value.is_null() {
                // JSON format 2.2: null means unset.
                continue;
            }
            match name.as_str() {
                "data_base64" => match value {
                    Value::String(s) => match BASE64.decode(s.as_bytes()) {
                        Ok(bytes) => data_base64 = Some(bytes),
                        Err(e) => b.problem(Problem::attribute(
                            "data_base64",
                            format!("is not valid Base64: {e}"),
                        )),
                    },
                    other => b.problem(Problem::attribute(
                        "data_base64",
                        format!("must be a Base64 string, found {}", json_type(&other)),
                    )),
                },
                "specversion" | "id" | "source" | "type" | "datacontenttype" | "dataschema"
                | "subject" | "time" => match value {
                    Value::String(s) => b.attribute_str(&name, &s),
                    other => b.problem(Problem::attribute(
                        &name,
                        format!("must be a string, found {}", json_type(&other)),
                    )),
                },
                _ => match extension_value(&value) {
                    Ok(v) => b.set_extension(name, v),
                    Err(message) => b.problem(Problem::attribute(name, message)),
                },
            }
        }
        match (self.data, data_base64) {
            (Some(_), Some(_)) => b.problem(Problem::attribute(
                "data",
                "`data` and `data_base64` are mutually exclusive",
            )),
            (None, Some(bytes)) => b.set_data(Data::binary(bytes)),
            (Some(raw), None) => data_member(&mut b, raw, to_bytes),
            (None, None) => {}
        }
        b.build_decoded()
    }
}

/// Interprets the `data` member per JSON format 3.1.2.
fn data_member(b: &mut EventBuilder, raw: &RawValue, to_bytes: &SliceToBytes<'_>) {
    let text = raw.get();
    match b.current_datacontenttype() {
        None => {
            b.set_datacontenttype(APPLICATION_JSON.to_owned());
            b.set_data(Data::json_unchecked(to_bytes(text.as_bytes())));
        }
        Some(ct) if media::is_json(ct) => {
            // A JSON string stays a JSON string: never re-parsed as a document.
            b.set_data(Data::json_unchecked(to_bytes(text.as_bytes())));
        }
        Some(ct) => {
            let ct = ct.to_owned();
            match serde_json::from_str::<Value>(text) {
                Ok(Value::String(s)) => b.set_data(Data::text(s)),
                Ok(Value::Null) => {}
                Ok(other) => b.problem(Problem::attribute(
                    "data",
                    format!(
                        "must be a string when datacontenttype `{ct}` is not JSON, found {}; \
                         send binary payloads as data_base64",
                        json_type(&other)
                    ),
                )),
                Err(e) => b.problem(Problem::attribute("data", e.to_string())),
            }
        }
    }
}

/// Maps a JSON member to a typed extension value (JSON format 2.2).
fn extension_value(value: &Value) -> Result<AttributeValue, String> {
    match value {
        Value::Bool(b) => Ok(AttributeValue::Boolean(*b)),
        Value::Number(n) => integer(n).map(AttributeValue::Integer),
        Value::String(s) => AttributeValue::string(s.as_str()).map_err(|e| e.reason),
        other => Err(format!(
            "extension values must be a string, an integer or a boolean, found {}",
            json_type(other)
        )),
    }
}

fn integer(n: &Number) -> Result<i32, String> {
    match n.as_i64() {
        Some(i) => i32::try_from(i).map_err(|_| format!("{n} is outside the 32-bit Integer range")),
        None if n.is_u64() => Err(format!("{n} is outside the 32-bit Integer range")),
        // `-0` is a JSON integer (an optional minus sign, then `0`), and the Integer type's
        // string form allows the minus sign; serde_json reads it as the float -0.0 (as it
        // does `-0.0`, which cannot be told apart), so a negative zero is the Integer 0.
        None if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => Ok(0),
        None => Err(format!("{n} is not an integer")),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Encodes one event in the JSON format.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + event.data().map_or(0, Data::len));
    write_event(&mut out, event);
    out
}

/// Encodes a batch in the JSON batch format.
pub fn encode_batch<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.push(b'[');
    for (i, event) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event(&mut out, event);
    }
    out.push(b']');
    out
}

/// Converts an event into a `serde_json::Value` in the JSON format: for APIs that embed events
/// in larger documents.
pub fn to_value(event: &Event) -> Value {
    // The encoder only writes well-formed JSON.
    serde_json::from_slice(&encode(event)).unwrap_or(Value::Null)
}

fn write_event(out: &mut Vec<u8>, event: &Event) {
    out.push(b'{');
    let mut first = true;
    for (name, value) in event.attributes() {
        member(out, &mut first, name);
        match value {
            AttributeRef::Str(s) => write_str(out, s),
            AttributeRef::Timestamp(t) => write_str(out, &t.to_string()),
            AttributeRef::Value(v) => write_value(out, v),
        }
    }
    if let Some(data) = event.data() {
        write_data(out, &mut first, event.datacontenttype(), data);
    }
    out.push(b'}');
}

fn write_data(out: &mut Vec<u8>, first: &mut bool, ct: Option<&str>, data: &Data) {
    let explicit_json = ct.is_some_and(media::is_json);
    let non_json = ct.is_some() && !explicit_json;
    let parses = || Data::is_json_text(data.as_bytes());
    let raw = match data.kind() {
        DataKind::Json => !non_json,
        DataKind::Binary => explicit_json && parses(),
        // Section 3.1: "If the `datacontenttype` is unspecified, processing SHOULD proceed as
        // if the `datacontenttype` had been specified explicitly as `application/json`", so
        // text without a type is handled as text with a JSON type: a JSON document as is...
        DataKind::Text => !non_json && parses(),
    };
    // ...and any other string translated to a JSON value, a JSON string (3.1.1: "a JSON
    // serializer MUST translate the data value to a JSON value"), never `data_base64`, which
    // is for Binary data only.
    let as_string = data.kind() == DataKind::Text || (non_json && data.kind() == DataKind::Json);
    if raw {
        member(out, first, "data");
        out.extend_from_slice(data.as_bytes());
    } else if let (true, Some(text)) = (as_string, data.as_str()) {
        member(out, first, "data");
        write_str(out, text);
    } else {
        member(out, first, "data_base64");
        out.push(b'"');
        out.extend_from_slice(BASE64.encode(data.as_bytes()).as_bytes());
        out.push(b'"');
    }
}

fn member(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    write_str(out, name);
    out.push(b':');
}

fn write_value(out: &mut Vec<u8>, value: &AttributeValue) {
    match value {
        AttributeValue::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AttributeValue::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        AttributeValue::String(s) | AttributeValue::Uri(s) | AttributeValue::UriRef(s) => {
            write_str(out, s)
        }
        AttributeValue::Binary(bytes) => write_str(out, &BASE64.encode(bytes)),
        AttributeValue::Timestamp(t) => write_str(out, &Timestamp::to_string(t)),
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> Event {
        decode(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn problems(json: &str) -> Vec<String> {
        decode_any(json.as_bytes())
            .unwrap_err()
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const BASE: &str = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;

    /// Bytes declared JSON that look like JSON but are not UTF-8 inside a string are carried
    /// as `data_base64`, so what is written reads back (found by the binding fuzz targets).
    #[test]
    fn binary_data_that_is_not_utf8_json_is_written_as_base64() {
        let event = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .data_with_type("application/json", Data::binary(vec![b'"', 0xff, b'"']))
            .build()
            .unwrap();
        let written = encode(&event);
        let back = decode(&written)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&written)));
        assert_eq!(back.data().unwrap().as_bytes(), &[b'"', 0xff, b'"']);
        assert!(Data::json_text(vec![b'"', 0xff, b'"']).is_err());
    }

    #[test]
    fn decodes_the_spec_examples() {
        let e = ok(&format!(
            r#"{{{BASE},"time":"2018-04-05T17:31:00Z","comexampleextension1":"value","comexampleothervalue":5,"unsetextension":null,"datacontenttype":"application/xml","data":"<much wow=\"xml\"/>"}}"#
        ));
        assert_eq!(e.data().unwrap().as_str(), Some(r#"<much wow="xml"/>"#));
        assert_eq!(
            e.extension("comexampleothervalue"),
            Some(&AttributeValue::Integer(5))
        );
        assert!(e.extension("unsetextension").is_none());
    }

    #[test]
    fn json_data_is_kept_verbatim() {
        let e = ok(&format!(
            r#"{{{BASE},"datacontenttype":"application/json","data":{{"a": 1.50, "b":[1,2]}}}}"#
        ));
        assert_eq!(e.data().unwrap().as_bytes(), br#"{"a": 1.50, "b":[1,2]}"#);
        let again = ok(std::str::from_utf8(&encode(&e)).unwrap());
        assert_eq!(e, again);
    }

    #[test]
    fn json_string_data_is_never_reparsed() {
        let e = ok(&format!(
            r#"{{{BASE},"datacontenttype":"application/json","data":"{{\"a\":1}}"}}"#
        ));
        assert_eq!(e.data().unwrap().as_bytes(), br#""{\"a\":1}""#);
        let e = ok(&format!(r#"{{{BASE},"data":"I'm just a string"}}"#));
        assert_eq!(e.data().unwrap().as_bytes(), br#""I'm just a string""#);
    }

    #[test]
    fn absent_content_type_with_data_implies_json() {
        let e = ok(&format!(r#"{{{BASE},"data":{{"x":true}}}}"#));
        assert_eq!(e.datacontenttype(), Some("application/json"));
        let e = ok(&format!(
            r#"{{{BASE},"datacontenttype":"text/vnd.x+json","data":[1]}}"#
        ));
        assert_eq!(e.data().unwrap().kind(), DataKind::Json);
    }

    #[test]
    fn data_base64_is_binary() {
        let e = ok(&format!(
            r#"{{{BASE},"datacontenttype":"application/octet-stream","data_base64":"AAEC"}}"#
        ));
        assert_eq!(e.data().unwrap().as_bytes(), &[0, 1, 2]);
        assert_eq!(e.data().unwrap().kind(), DataKind::Binary);
        let text = String::from_utf8(encode(&e)).unwrap();
        assert!(text.contains(r#""data_base64":"AAEC""#), "{text}");
    }

    #[test]
    fn data_and_data_base64_are_mutually_exclusive() {
        let p = problems(&format!(r#"{{{BASE},"data":1,"data_base64":"AA=="}}"#));
        assert_eq!(p, ["data: `data` and `data_base64` are mutually exclusive"]);
    }

    #[test]
    fn null_attributes_are_unset() {
        let e = ok(&format!(
            r#"{{{BASE},"subject":null,"time":null,"data_base64":null}}"#
        ));
        assert!(e.subject().is_none() && e.time().is_none() && e.data().is_none());
        let p = problems(r#"{"specversion":"1.0","id":null,"source":"/s","type":"t"}"#);
        assert_eq!(p, ["id: required attribute is missing"]);
    }

    #[test]
    fn reports_every_problem() {
        let p = problems(
            r#"{"specversion":"1.0","id":"","source":"not a uri","type":5,"Bad-Name":1,"time":"noon","big":2147483648,"obj":{}}"#,
        );
        assert_eq!(p.len(), 7, "{p:#?}");
        assert!(p.iter().any(|p| p.starts_with("id: ")));
        assert!(p.iter().any(|p| p.starts_with("source: ")));
        assert!(p.iter().any(|p| p.starts_with("type: must be a string")));
        assert!(p.iter().any(|p| p.contains("Bad-Name")));
        assert!(p.iter().any(|p| p.starts_with("time: ")));
        assert!(p.iter().any(|p| p.contains("32-bit")));
        assert!(p.iter().any(|p| p.starts_with("obj: ")));
    }

    #[test]
    fn rejects_other_specversions_and_missing_ones() {
        assert_eq!(
            problems(r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#),
            ["specversion: unsupported specversion `0.3`: Spindle speaks CloudEvents 1.0"]
        );
        assert_eq!(
            problems(r#"{"id":"1","source":"/s","type":"t"}"#),
            ["specversion: required attribute is missing"]
        );
    }

    #[test]
    fn non_json_content_type_needs_string_data() {
        let p = problems(&format!(
            r#"{{{BASE},"datacontenttype":"text/plain","data":{{}}}}"#
        ));
        assert!(p[0].starts_with("data: must be a string"), "{p:?}");
    }

    #[test]
    fn duplicate_members_are_rejected() {
        let p = problems(&format!(r#"{{{BASE},"id":"2"}}"#));
        assert_eq!(p, ["id: appears more than once"]);
    }

    #[test]
    fn malformed_json_has_a_position() {
        let err = decode(b"{\n  \"id\": }").unwrap_err();
        match err {
            Error::MalformedJson { line, column, .. } => assert_eq!((line, column), (2, 9)),
            other => panic!("{other:?}"),
        }
        assert!(decode(b"[]").is_err());
        assert!(decode(format!("{{{BASE}}} x").as_bytes()).is_err());
    }

    #[test]
    fn batches_report_indexes() {
        let batch =
            format!(r#"[{{{BASE}}},{{"specversion":"1.0","id":"2","source":"/s"}},{{{BASE}}}]"#);
        let p = problems(&batch);
        assert_eq!(p, ["event [1]: type: required attribute is missing"]);
        let ok = decode_batch(format!("[{{{BASE}}},{{{BASE}}}]").as_bytes()).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(decode_batch(b"[]").unwrap().is_empty());
        assert_eq!(encode_batch(&ok[..0]), b"[]");
    }

    #[test]
    fn typed_extensions_survive() {
        let mut e = ok(&format!("{{{BASE}}}"));
        e.set_extension("flag", true).unwrap();
        e.set_extension("count", -3).unwrap();
        e.set_extension("blob", AttributeValue::Binary(vec![255, 0]))
            .unwrap();
        let text = String::from_utf8(encode(&e)).unwrap();
        assert!(text.contains(r#""flag":true"#) && text.contains(r#""count":-3"#));
        assert!(text.contains(r#""blob":"/wA=""#), "{text}");
    }

    /// JSON format 3.1: "If the `datacontenttype` is unspecified, processing SHOULD proceed as
    /// if the `datacontenttype` had been specified explicitly as `application/json`", and
    /// 3.1.1: with a JSON content type "a JSON serializer MUST translate the data value to a
    /// JSON value, and use the member name `data` to store it". Text data without a type is
    /// therefore a JSON value in `data` (a JSON string, or the document it already is), never
    /// `data_base64`.
    #[test]
    fn text_data_without_a_content_type_is_written_as_data() {
        let builder = || Event::builder().id("1").source("/s").ty("t");
        let e = builder().data(Data::text("hello")).build().unwrap();
        let text = String::from_utf8(encode(&e)).unwrap();
        assert!(text.ends_with(r#","data":"hello"}"#), "{text}");
        assert!(!text.contains("data_base64") && !text.contains("datacontenttype"));
        // Read back, it is JSON data (the implied application/json), the string "hello".
        let back = ok(&text);
        assert_eq!(back.datacontenttype(), Some("application/json"));
        assert_eq!(back.data().unwrap().as_bytes(), br#""hello""#);
        let e = builder().data(Data::text(r#"{"a":1}"#)).build().unwrap();
        let text = String::from_utf8(encode(&e)).unwrap();
        assert!(text.ends_with(r#","data":{"a":1}}"#), "{text}");
        // Binary data without a type stays data_base64.
        let e = builder().data(Data::binary(&b"hello"[..])).build().unwrap();
        let text = String::from_utf8(encode(&e)).unwrap();
        assert!(text.ends_with(r#","data_base64":"aGVsbG8="}"#), "{text}");
    }

    /// CloudEvents core, Integer: "String encoding: Integer component of the JSON Number per
    /// RFC 7159, Section 6 optionally prefixed with a minus sign." `-0` is such a number.
    #[test]
    fn an_extension_of_minus_zero_is_the_integer_zero() {
        let e = ok(&format!(r#"{{{BASE},"n":-0}}"#));
        assert_eq!(e.extension("n"), Some(&AttributeValue::Integer(0)));
        assert!(problems(&format!(r#"{{{BASE},"n":0.5}}"#))[0].contains("not an integer"));
    }
}
