//! The Avro event format (`application/cloudevents+avro`), per
//! cloudevents/formats/avro-format.md: the Avro binary encoding of the fixed record its
//! `cloudevents.avsc` declares. The format has no batch form.
//!
//! The record is one shape, fixed by the specification, so it is written and read here
//! directly (a general Avro library would add a schema parser and a value model to serve
//! this one record):
//!
//! ```text
//! record CloudEvent {
//!   attribute: map<union { null, boolean, int, string, bytes }>,
//!   data: union { bytes, null, boolean, map<union { null, boolean, CloudEventData, double,
//!                 string }>, array<CloudEventData>, double, string },
//! }
//! record CloudEventData { value: map<union { null, boolean, map<CloudEventData>,
//!                                             array<CloudEventData>, double, string }> }
//! ```
//!
//! Every attribute, required ones included, is in `attribute`: Boolean as `boolean`, Integer
//! as `int`, Binary as `bytes`, everything else as its canonical `string` (section 2.1).
//!
//! Data (section 3): bytes as `bytes`; text as `string`; JSON as the JSON-value branches when
//! the value has a shape they can hold (they cannot hold every JSON value: an array inside an
//! object, or a scalar inside an array, has no branch), otherwise as `bytes` holding the JSON
//! text, which its `datacontenttype` identifies. Reading, `bytes` under a JSON
//! `datacontenttype` must be valid JSON, and a `string` is a JSON string unless a non-JSON
//! `datacontenttype` makes it text. Numbers travel as `double`: integral values within ±2^53
//! read back as integers; a JSON number a double cannot hold exactly goes as `bytes`.
//!
//! Reading is strict: every length and count is checked against the bytes that remain before
//! anything is allocated, nesting is bounded, and trailing bytes are an error.

use serde_json::{Map, Number, Value};

use crate::attribute::AttributeValue;
use crate::data::{Data, DataKind};
use crate::error::{Error, Problem};
use crate::event::{AttributeRef, Event, EventBuilder};

/// How deeply JSON data may nest in the Avro representation.
const MAX_DEPTH: usize = 64;

/// The largest integer a double holds exactly, so JSON integers up to it travel as doubles.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Encodes one event.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + event.data().map_or(0, Data::len));
    let attributes: Vec<(&str, AttributeRef<'_>)> = event.attributes().collect();
    write_long(&mut out, attributes.len() as i64);
    for (name, value) in &attributes {
        write_str(&mut out, name);
        match value {
            AttributeRef::Value(AttributeValue::Boolean(b)) => {
                write_long(&mut out, 1);
                out.push(u8::from(*b));
            }
            AttributeRef::Value(AttributeValue::Integer(i)) => {
                write_long(&mut out, 2);
                write_long(&mut out, i64::from(*i));
            }
            AttributeRef::Value(AttributeValue::Binary(bytes)) => {
                write_long(&mut out, 4);
                write_bytes(&mut out, bytes);
            }
            AttributeRef::Str(s) => {
                write_long(&mut out, 3);
                write_str(&mut out, s);
            }
            other => {
                write_long(&mut out, 3);
                write_str(&mut out, &other.to_canonical_string());
            }
        }
    }
    if !attributes.is_empty() {
        write_long(&mut out, 0);
    }
    match event.data() {
        None => write_long(&mut out, 1),
        Some(data) => write_data(&mut out, data),
    }
    out
}

fn write_data(out: &mut Vec<u8>, data: &Data) {
    match data.kind() {
        DataKind::Binary => {
            write_long(out, 0);
            write_bytes(out, data.as_bytes());
        }
        DataKind::Text => {
            write_long(out, 6);
            write_bytes(out, data.as_bytes());
        }
        DataKind::Json => match serde_json::from_slice::<Value>(data.as_bytes()) {
            Ok(value) if fits_top(&value) => write_top(out, &value),
            // Valid by construction; a shape the union cannot hold goes as its text.
            _ => {
                write_long(out, 0);
                write_bytes(out, data.as_bytes());
            }
        },
    }
}

/// Whether a JSON number survives the trip through a double.
fn exact_number(n: &Number) -> bool {
    if let Some(i) = n.as_i64() {
        (i as f64).abs() <= MAX_EXACT
    } else if let Some(u) = n.as_u64() {
        (u as f64) <= MAX_EXACT
    } else {
        n.as_f64().is_some_and(f64::is_finite)
    }
}

fn fits_top(value: &Value) -> bool {
    match value {
        Value::Number(n) => exact_number(n),
        Value::Object(members) => members.values().all(|v| fits_member(v, 1)),
        Value::Array(items) => items.iter().all(|v| fits_record(v, 1)),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

/// A value of the top-level map: `null`, `boolean`, `CloudEventData` (an object), `double`,
/// `string`.
fn fits_member(value: &Value, depth: usize) -> bool {
    match value {
        Value::Number(n) => exact_number(n),
        Value::Object(_) => fits_record(value, depth + 1),
        Value::Array(_) => false,
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

/// A `CloudEventData`: an object whose members fit its `value` map.
fn fits_record(value: &Value, depth: usize) -> bool {
    depth <= MAX_DEPTH
        && match value {
            Value::Object(members) => members.values().all(|v| fits_inner(v, depth)),
            _ => false,
        }
}

/// A value of `CloudEventData.value`: `null`, `boolean`, `map<CloudEventData>` (an object of
/// objects), `array<CloudEventData>` (an array of objects), `double`, `string`.
fn fits_inner(value: &Value, depth: usize) -> bool {
    match value {
        Value::Number(n) => exact_number(n),
        Value::Object(members) => members.values().all(|v| fits_record(v, depth + 1)),
        Value::Array(items) => items.iter().all(|v| fits_record(v, depth + 1)),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

fn write_top(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => write_long(out, 1),
        Value::Bool(b) => {
            write_long(out, 2);
            out.push(u8::from(*b));
        }
        Value::Object(members) => {
            write_long(out, 3);
            write_map(out, members, |out, v| match v {
                Value::Null => write_long(out, 0),
                Value::Bool(b) => {
                    write_long(out, 1);
                    out.push(u8::from(*b));
                }
                Value::Object(_) => {
                    write_long(out, 2);
                    write_record(out, v);
                }
                Value::Number(n) => {
                    write_long(out, 3);
                    write_double(out, n);
                }
                Value::String(s) => {
                    write_long(out, 4);
                    write_str(out, s);
                }
                Value::Array(_) => unreachable!("checked by fits_member"),
            });
        }
        Value::Array(items) => {
            write_long(out, 4);
            write_array(out, items);
        }
        Value::Number(n) => {
            write_long(out, 5);
            write_double(out, n);
        }
        Value::String(s) => {
            write_long(out, 6);
            write_str(out, s);
        }
    }
}

fn write_record(out: &mut Vec<u8>, value: &Value) {
    let Value::Object(members) = value else {
        unreachable!("checked by fits_record")
    };
    write_map(out, members, |out, v| match v {
        Value::Null => write_long(out, 0),
        Value::Bool(b) => {
            write_long(out, 1);
            out.push(u8::from(*b));
        }
        Value::Object(inner) => {
            write_long(out, 2);
            write_map(out, inner, write_record);
        }
        Value::Array(items) => {
            write_long(out, 3);
            write_array(out, items);
        }
        Value::Number(n) => {
            write_long(out, 4);
            write_double(out, n);
        }
        Value::String(s) => {
            write_long(out, 5);
            write_str(out, s);
        }
    });
}

fn write_array(out: &mut Vec<u8>, items: &[Value]) {
    write_long(out, items.len() as i64);
    if !items.is_empty() {
        for item in items {
            write_record(out, item);
        }
        write_long(out, 0);
    }
}

fn write_map(
    out: &mut Vec<u8>,
    members: &Map<String, Value>,
    mut value: impl FnMut(&mut Vec<u8>, &Value),
) {
    write_long(out, members.len() as i64);
    if !members.is_empty() {
        for (k, v) in members {
            write_str(out, k);
            value(out, v);
        }
        write_long(out, 0);
    }
}

fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_bytes(out, s.as_bytes());
}

fn write_double(out: &mut Vec<u8>, n: &Number) {
    out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
}

/// Decodes one event.
pub fn decode(input: &[u8]) -> Result<Event, Error> {
    let mut r = Reader { input, at: 0 };
    let event = r.event()?;
    if r.at != input.len() {
        return Err(r.malformed(format!(
            "{} bytes after the end of the event",
            input.len() - r.at
        )));
    }
    event
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

/// A decoded `data` union: what [`Reader::event`] turns into [`Data`].
enum RawData {
    Bytes(Vec<u8>),
    Text(String),
    Json(Value),
}

impl Reader<'_> {
    fn malformed(&self, message: impl Into<String>) -> Error {
        Error::Malformed {
            format: "avro",
            index: None,
            message: format!("at byte {}: {}", self.at, message.into()),
        }
    }

    /// The event: the outer `Result` is for bytes that are not the record, the inner one for
    /// a record that is not a valid CloudEvent.
    fn event(&mut self) -> Result<Result<Event, Error>, Error> {
        let mut b = EventBuilder::default();
        let mut seen = std::collections::BTreeSet::new();
        self.blocks(|r| {
            let name = r.string()?;
            if !seen.insert(name.clone()) {
                b.problem(Problem::attribute(&name, "the attribute appears twice"));
            }
            match r.long()? {
                0 => b.problem(Problem::attribute(&name, "null is not a value")),
                1 => {
                    let v = r.boolean()?;
                    typed(&mut b, &name, AttributeValue::Boolean(v));
                }
                2 => {
                    let v = r.long()?;
                    match i32::try_from(v) {
                        Ok(v) => typed(&mut b, &name, AttributeValue::Integer(v)),
                        Err(_) => {
                            return Err(r.malformed(format!("int {v} out of range")));
                        }
                    }
                }
                3 => {
                    let v = r.string()?;
                    if name == "specversion" {
                        b.specversion(&v);
                    } else {
                        b.attribute_str(&name, &v);
                    }
                }
                4 => {
                    let v = r.bytes()?.to_vec();
                    typed(&mut b, &name, AttributeValue::Binary(v));
                }
                other => return Err(r.malformed(format!("attribute branch {other}"))),
            }
            Ok(())
        })?;
        let raw = match self.long()? {
            0 => Some(RawData::Bytes(self.bytes()?.to_vec())),
            1 => None,
            2 => Some(RawData::Json(Value::Bool(self.boolean()?))),
            3 => Some(RawData::Json(Value::Object(self.map(0, Self::member)?))),
            4 => Some(RawData::Json(Value::Array(self.array(0)?))),
            5 => Some(RawData::Json(self.double()?)),
            6 => Some(RawData::Text(self.string()?)),
            other => return Err(self.malformed(format!("data branch {other}"))),
        };
        let json_type = b.current_datacontenttype().map(crate::media::is_json);
        match raw {
            None => {}
            Some(RawData::Bytes(bytes)) if json_type == Some(true) => {
                match Data::json_text(bytes) {
                    Ok(data) => b.set_data(data),
                    Err(e) => b.problem(Problem::attribute(
                        "data",
                        format!("not the JSON its datacontenttype declares: {e}"),
                    )),
                }
            }
            Some(RawData::Bytes(bytes)) => b.set_data(Data::binary(bytes)),
            Some(RawData::Text(text)) if json_type == Some(false) => b.set_data(Data::text(text)),
            Some(RawData::Text(text)) => b.set_data(Data::json(&Value::String(text))),
            Some(RawData::Json(value)) => b.set_data(Data::json(&value)),
        }
        Ok(b.build_decoded())
    }

    /// A value of the top-level data map.
    fn member(&mut self, depth: usize) -> Result<Value, Error> {
        Ok(match self.long()? {
            0 => Value::Null,
            1 => Value::Bool(self.boolean()?),
            2 => self.record(depth + 1)?,
            3 => self.double()?,
            4 => Value::String(self.string()?),
            other => return Err(self.malformed(format!("data map branch {other}"))),
        })
    }

    /// A `CloudEventData` record, as the object it stands for.
    fn record(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.malformed(format!("data nested deeper than {MAX_DEPTH}")));
        }
        let members = self.map(depth, |r, depth| {
            Ok(match r.long()? {
                0 => Value::Null,
                1 => Value::Bool(r.boolean()?),
                2 => Value::Object(r.map(depth, |r, d| r.record(d + 1))?),
                3 => Value::Array(r.array(depth)?),
                4 => r.double()?,
                5 => Value::String(r.string()?),
                other => return Err(r.malformed(format!("data value branch {other}"))),
            })
        })?;
        Ok(Value::Object(members))
    }

    fn array(&mut self, depth: usize) -> Result<Vec<Value>, Error> {
        let mut items = Vec::new();
        self.blocks(|r| {
            items.push(r.record(depth + 1)?);
            Ok(())
        })?;
        Ok(items)
    }

    fn map(
        &mut self,
        depth: usize,
        mut value: impl FnMut(&mut Self, usize) -> Result<Value, Error>,
    ) -> Result<Map<String, Value>, Error> {
        let mut members = Map::new();
        self.blocks(|r| {
            let key = r.string()?;
            let v = value(r, depth)?;
            members.insert(key, v);
            Ok(())
        })?;
        Ok(members)
    }

    /// Reads the blocks of a map or an array, calling `item` once per item.
    fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        loop {
            let mut count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                count = count
                    .checked_neg()
                    .ok_or_else(|| self.malformed("block count"))?;
                // The block's size in bytes follows a negative count.
                let _ = self.long()?;
            }
            // Every item takes at least one byte: a count beyond what remains is a lie.
            if count as u64 > (self.input.len() - self.at) as u64 {
                return Err(self.malformed(format!("a block of {count} items in fewer bytes")));
            }
            for _ in 0..count {
                item(self)?;
            }
        }
    }

    fn long(&mut self) -> Result<i64, Error> {
        let mut z: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.input.get(self.at) else {
                return Err(self.malformed("the input ends inside a number"));
            };
            self.at += 1;
            if shift == 63 && byte > 1 {
                return Err(self.malformed("a number longer than 64 bits"));
            }
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(self.malformed("a number longer than 64 bits"))
    }

    fn boolean(&mut self) -> Result<bool, Error> {
        match self.input.get(self.at) {
            Some(0) => {
                self.at += 1;
                Ok(false)
            }
            Some(1) => {
                self.at += 1;
                Ok(true)
            }
            Some(other) => Err(self.malformed(format!("boolean byte {other}"))),
            None => Err(self.malformed("the input ends inside a boolean")),
        }
    }

    fn double(&mut self) -> Result<Value, Error> {
        let Some(raw) = self.input.get(self.at..self.at + 8) else {
            return Err(self.malformed("the input ends inside a double"));
        };
        self.at += 8;
        let x = f64::from_le_bytes(raw.try_into().expect("eight bytes"));
        if x.is_finite() && x.fract() == 0.0 && x.abs() <= MAX_EXACT {
            return Ok(Value::Number(Number::from(x as i64)));
        }
        Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| self.malformed(format!("{x} is not a JSON number")))
    }

    fn bytes(&mut self) -> Result<&[u8], Error> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| self.malformed("negative length"))?;
        if len > self.input.len() - self.at {
            return Err(self.malformed(format!("a length of {len} beyond the input")));
        }
        let start = self.at;
        self.at += len;
        Ok(&self.input[start..self.at])
    }

    fn string(&mut self) -> Result<String, Error> {
        let bytes = self.bytes()?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.malformed("a string that is not UTF-8")),
        }
    }
}

/// Sets a typed attribute: a core attribute must be a string, so a typed value there is a
/// problem; an extension keeps its type.
fn typed(b: &mut EventBuilder, name: &str, value: AttributeValue) {
    if crate::event::core_attribute_type(name).is_some() {
        b.problem(Problem::attribute(name, "must be a string"));
    } else {
        b.set_extension(name.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: Option<Data>, content_type: &str) -> Event {
        let mut b = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .subject("sub")
            .time("2024-05-06T07:08:09Z".parse().unwrap())
            .extension("flag", true)
            .extension("count", 7)
            .extension("blob", AttributeValue::Binary(vec![0, 1, 255]));
        if let Some(d) = data {
            b = b.data_with_type(content_type, d);
        }
        b.build().unwrap()
    }

    #[test]
    fn attributes_and_every_kind_of_data_round_trip() {
        for e in [
            event(None, ""),
            event(
                Some(Data::binary(vec![0u8, 200, 3])),
                "application/octet-stream",
            ),
            event(Some(Data::text("hé")), "text/plain"),
            event(
                Some(Data::json(
                    &json!({"a": 1, "b": {"c": [{"d": 2.5}]}, "e": null}),
                )),
                "application/json",
            ),
            event(Some(Data::json(&json!([{"x": true}]))), "application/json"),
            event(
                Some(Data::json(&json!("just a string"))),
                "application/json",
            ),
            event(Some(Data::json(&json!(42))), "application/json"),
            // Shapes the JSON branches cannot hold travel as the JSON text.
            event(
                Some(Data::json(&json!({"list": [1, 2]}))),
                "application/json",
            ),
            event(
                Some(Data::json(&json!(12345678901234567890u64))),
                "application/json",
            ),
        ] {
            let back = decode(&encode(&e)).unwrap_or_else(|err| panic!("{e:?}: {err}"));
            assert_eq!(back, e);
        }
    }

    #[test]
    fn json_fitting_the_union_uses_its_branches() {
        let e = event(Some(Data::json(&json!({"a": 1}))), "application/json");
        let bytes = encode(&e);
        // ... data branch 3 (map), one member "a", branch 3 (double) 1.0, end of map.
        let tail = [6, 2, 2, b'a', 6, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0];
        assert!(bytes.ends_with(&tail), "{bytes:?}");
    }

    #[test]
    fn it_is_strict() {
        let good = encode(&event(None, ""));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(Error::Malformed { .. })));
        assert!(matches!(
            decode(&good[..good.len() - 3]),
            Err(Error::Malformed { .. })
        ));
        // A huge count in a tiny input is refused before allocating.
        assert!(matches!(
            decode(&[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            Err(Error::Malformed { .. })
        ));
        // A record missing its id is an invalid CloudEvent, as in JSON.
        let mut out = Vec::new();
        write_long(&mut out, 1);
        write_str(&mut out, "specversion");
        write_long(&mut out, 3);
        write_str(&mut out, "1.0");
        write_long(&mut out, 0);
        write_long(&mut out, 1);
        assert!(matches!(decode(&out), Err(Error::Invalid(_))));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut value = json!({});
        for _ in 0..100 {
            value = json!({ "n": { "m": value } });
        }
        let e = event(Some(Data::json(&value)), "application/json");
        // Too deep for the branches: it goes as text and still round-trips.
        assert_eq!(decode(&encode(&e)).unwrap(), e);
    }
}
