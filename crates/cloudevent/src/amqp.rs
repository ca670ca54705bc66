//! The AMQP 1.0 protocol binding (cloudevents/bindings/amqp-protocol-binding.md, 1.0.3):
//! binary mode in the `content-type` property and typed application-properties, structured
//! mode in the JSON format.
//!
//! Pure functions over [`AmqpMessage`] and [`AmqpValue`], a client-neutral picture of the bare
//! message, so the transport maps them to and from its client crate (fe2o3-amqp) and every
//! rule, type mapping included, is tested here.

use bytes::Bytes;
use chrono::{DateTime, Timelike};

use crate::attribute::{AttributeValue, Timestamp, check_name};
use crate::data::Data;
use crate::error::{Error, Problem};
use crate::event::{AttributeRef, CORE_ATTRIBUTES, Event, EventBuilder};
use crate::nats::{decode_structured, is_structured, reconcile_datacontenttype};

pub use crate::nats::Mode;

/// An AMQP 1.0 primitive value, as application-properties hold them (AMQP types section
/// 1.6; `decimal*` are left out: no CloudEvents type maps to them and clients rarely expose
/// them). Kept typed because the binding carries CloudEvents types natively (section 3.1.3.2).
#[derive(Debug, Clone, PartialEq)]
pub enum AmqpValue {
    /// `null`.
    Null,
    /// `boolean`: a CloudEvents Boolean.
    Boolean(bool),
    /// `ubyte`.
    Ubyte(u8),
    /// `ushort`.
    Ushort(u16),
    /// `uint`.
    Uint(u32),
    /// `ulong`.
    Ulong(u64),
    /// `byte`.
    Byte(i8),
    /// `short`.
    Short(i16),
    /// `int`.
    Int(i32),
    /// `long`: a CloudEvents Integer on the way out.
    Long(i64),
    /// `float`.
    Float(f32),
    /// `double`.
    Double(f64),
    /// `char`.
    Char(char),
    /// `timestamp`: milliseconds since the Unix epoch, UTC; a CloudEvents Timestamp when it
    /// fits.
    Timestamp(i64),
    /// `uuid`, as 16 bytes.
    Uuid([u8; 16]),
    /// `binary`: a CloudEvents Binary.
    Binary(Vec<u8>),
    /// `string`: a CloudEvents String, URI or URI-reference, or any canonical string.
    String(String),
    /// `symbol`.
    Symbol(String),
}

impl AmqpValue {
    /// The AMQP type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            AmqpValue::Null => "null",
            AmqpValue::Boolean(_) => "boolean",
            AmqpValue::Ubyte(_) => "ubyte",
            AmqpValue::Ushort(_) => "ushort",
            AmqpValue::Uint(_) => "uint",
            AmqpValue::Ulong(_) => "ulong",
            AmqpValue::Byte(_) => "byte",
            AmqpValue::Short(_) => "short",
            AmqpValue::Int(_) => "int",
            AmqpValue::Long(_) => "long",
            AmqpValue::Float(_) => "float",
            AmqpValue::Double(_) => "double",
            AmqpValue::Char(_) => "char",
            AmqpValue::Timestamp(_) => "timestamp",
            AmqpValue::Uuid(_) => "uuid",
            AmqpValue::Binary(_) => "binary",
            AmqpValue::String(_) => "string",
            AmqpValue::Symbol(_) => "symbol",
        }
    }

    /// An integer value of any AMQP integer type, widened.
    fn integer(&self) -> Option<i128> {
        Some(match *self {
            AmqpValue::Ubyte(v) => v.into(),
            AmqpValue::Ushort(v) => v.into(),
            AmqpValue::Uint(v) => v.into(),
            AmqpValue::Ulong(v) => v.into(),
            AmqpValue::Byte(v) => v.into(),
            AmqpValue::Short(v) => v.into(),
            AmqpValue::Int(v) => v.into(),
            AmqpValue::Long(v) => v.into(),
            _ => return None,
        })
    }
}

/// An AMQP 1.0 bare message as this binding sees it (addresses and the other properties are
/// routing, kept by the transport).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmqpMessage {
    /// The `content-type` message property (an AMQP symbol).
    pub content_type: Option<String>,
    /// The application-properties, in order.
    pub application_properties: Vec<(String, AmqpValue)>,
    /// The application data as a single `data` section; `None` when the message has no
    /// `data` section (an event without data).
    pub body: Option<Bytes>,
}

impl AmqpMessage {
    /// The first application property of that name (AMQP map keys are case-sensitive).
    pub fn property(&self, name: &str) -> Option<&AmqpValue> {
        self.application_properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// The prefix this binding writes: `cloudEvents_`, preferred by section 3.1.3.1 because JMS
/// selectors cannot name properties with `:`.
pub const PREFIX: &str = "cloudEvents_";

/// The older prefix, still accepted on decode (section 3.1.3.1).
pub const COLON_PREFIX: &str = "cloudEvents:";

/// Decodes the event of an AMQP message (section 3).
///
/// - A `content-type` starting with `application/cloudevents` (any case) selects structured
///   mode; only the JSON format is read, from the `data` section.
/// - Otherwise a `cloudEvents_specversion` (or `cloudEvents:specversion`) application property
///   selects binary mode: every property with either prefix is an attribute (one message must
///   not mix the two), values are read from their native AMQP type or their canonical string
///   (section 3.1.3.2, both MUST be accepted; any AMQP integer type within the Integer range
///   is accepted too), `content-type` is `datacontenttype`, and the `data` section is `data`.
/// - Anything else is [`Error::NotCloudEvent`].
pub fn decode(message: &AmqpMessage) -> Result<Event, Error> {
    let content_type = message.content_type.as_deref();
    if let Some(ct) = content_type
        && is_structured(ct)
    {
        return decode_structured("AMQP", ct, message.body.as_ref());
    }
    let specversion = [PREFIX, COLON_PREFIX]
        .iter()
        .any(|p| message.property(&format!("{p}specversion")).is_some());
    if !specversion {
        return Err(Error::NotCloudEvent(match content_type {
            Some(ct) => format!(
                "content-type `{ct}` is not a CloudEvents format and there is no cloudEvents_specversion application property (binary mode)"
            ),
            None => "no cloudEvents_specversion application property (binary mode) and no CloudEvents content-type (structured mode)".to_owned(),
        }));
    }
    let mut b = EventBuilder::default();
    let mut seen: Vec<&str> = Vec::with_capacity(message.application_properties.len());
    let mut prefixes = (false, false);
    let mut datacontenttype: Option<String> = None;
    for (name, value) in &message.application_properties {
        let attribute = if let Some(a) = name.strip_prefix(PREFIX) {
            prefixes.0 = true;
            a
        } else if let Some(a) = name.strip_prefix(COLON_PREFIX) {
            prefixes.1 = true;
            a
        } else {
            continue;
        };
        if seen.contains(&attribute) {
            b.problem(Problem::attribute(
                attribute,
                format!("the application property {name} appears more than once"),
            ));
            continue;
        }
        seen.push(attribute);
        if let Err(e) = check_name(attribute) {
            b.problem(Problem::attribute(
                attribute,
                format!("application property {name}: {e}"),
            ));
            continue;
        }
        if attribute == "datacontenttype" {
            match string_of(value) {
                Some(s) => datacontenttype = Some(s.to_owned()),
                None => b.problem(expected_string(attribute, name, value)),
            }
        } else {
            set_attribute(&mut b, attribute, name, value);
        }
    }
    if prefixes == (true, true) {
        b.problem(Problem::event(
            "the application properties mix the `cloudEvents_` and `cloudEvents:` prefixes; a message must use one separator for all attributes",
        ));
    }
    reconcile_datacontenttype(
        &mut b,
        ("content-type property", content_type),
        (
            "cloudEvents_datacontenttype application property",
            datacontenttype.as_deref(),
        ),
    );
    if let Some(body) = &message.body {
        b.set_data(Data::binary(body.clone()));
    }
    b.build_decoded()
}

fn string_of(value: &AmqpValue) -> Option<&str> {
    match value {
        AmqpValue::String(s) | AmqpValue::Symbol(s) => Some(s),
        _ => None,
    }
}

fn expected_string(attribute: &str, name: &str, value: &AmqpValue) -> Problem {
    Problem::attribute(
        attribute,
        format!(
            "application property {name}: expected an AMQP string, found {}",
            value.type_name()
        ),
    )
}

fn set_attribute(b: &mut EventBuilder, attribute: &str, name: &str, value: &AmqpValue) {
    let core = CORE_ATTRIBUTES.contains(&attribute);
    match value {
        AmqpValue::String(s) | AmqpValue::Symbol(s) => b.attribute_str(attribute, s),
        AmqpValue::Timestamp(_) if core && attribute != "time" => {
            b.problem(expected_string(attribute, name, value))
        }
        // Section 3.1.3.2 lets a receiver "further relax the requirements for incoming
        // messages (for example accepting numeric types other than AMQP long)": a
        // `time` sent as an AMQP long (the PyPI `cloudevents` binding does this) holds the
        // same milliseconds since the epoch an AMQP timestamp does.
        AmqpValue::Timestamp(ms) | AmqpValue::Long(ms) if attribute == "time" => {
            match DateTime::from_timestamp_millis(*ms) {
                Some(t) => *b = std::mem::take(b).time(Timestamp::from(t)),
                None => b.problem(Problem::attribute(
                    attribute,
                    format!("application property {name}: timestamp {ms} ms is out of range"),
                )),
            }
        }
        AmqpValue::Timestamp(ms) => match DateTime::from_timestamp_millis(*ms) {
            Some(t) => b.set_extension(
                attribute.to_owned(),
                AttributeValue::Timestamp(Timestamp::from(t)),
            ),
            None => b.problem(Problem::attribute(
                attribute,
                format!("application property {name}: timestamp {ms} ms is out of range"),
            )),
        },
        _ if core => b.problem(if attribute == "time" {
            Problem::attribute(
                attribute,
                format!(
                    "application property {name}: expected an AMQP timestamp, long (ms since the epoch) or string, found {}",
                    value.type_name()
                ),
            )
        } else {
            expected_string(attribute, name, value)
        }),
        AmqpValue::Boolean(v) => b.set_extension(attribute.to_owned(), AttributeValue::Boolean(*v)),
        AmqpValue::Binary(v) => {
            b.set_extension(attribute.to_owned(), AttributeValue::Binary(v.clone()))
        }
        AmqpValue::Char(c) => b.set_extension(attribute.to_owned(), AttributeValue::String(c.to_string())),
        AmqpValue::Uuid(u) => b.set_extension(attribute.to_owned(), AttributeValue::String(uuid_string(u))),
        other => match other.integer() {
            Some(i) => match i32::try_from(i) {
                Ok(i) => b.set_extension(attribute.to_owned(), AttributeValue::Integer(i)),
                Err(_) => b.problem(Problem::attribute(
                    attribute,
                    format!(
                        "application property {name}: {} {i} is outside the CloudEvents Integer range (32-bit)",
                        other.type_name()
                    ),
                )),
            },
            None => b.problem(Problem::attribute(
                attribute,
                format!(
                    "application property {name}: an AMQP {} has no CloudEvents type",
                    other.type_name()
                ),
            )),
        },
    }
}

fn uuid_string(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

/// Encodes an event as an AMQP message in the given mode.
///
/// Binary mode: `datacontenttype` is the `content-type` property; every other attribute is
/// a `cloudEvents_<name>` application property of the AMQP type section 3.1.3.2 maps its
/// CloudEvents type to (Boolean → boolean, Integer → long, Binary → binary, String, URI and
/// URI-reference → string, Timestamp → timestamp); `data` is a single `data` section (none
/// without data). An AMQP timestamp holds whole milliseconds in UTC, so a Timestamp it cannot
/// hold exactly (finer precision, or another UTC offset, which the canonical form keeps) is
/// sent as its canonical string, the other form the binding allows.
/// Structured mode: `content-type: application/cloudevents+json; charset=utf-8` and the JSON
/// format in the `data` section.
pub fn encode(event: &Event, mode: Mode) -> AmqpMessage {
    encode_as(event, mode, crate::Format::Json)
}

/// [`encode`], with structured mode in `format` (`content-type` names it).
pub fn encode_as(event: &Event, mode: Mode, format: crate::Format) -> AmqpMessage {
    match mode {
        Mode::Structured => AmqpMessage {
            content_type: Some(format.media_type().to_owned()),
            application_properties: Vec::new(),
            body: Some(format.encode(event)),
        },
        Mode::Binary => AmqpMessage {
            content_type: event.datacontenttype().map(str::to_owned),
            application_properties: event
                .attributes()
                .filter(|(name, _)| *name != "datacontenttype")
                .map(|(name, value)| (format!("{PREFIX}{name}"), amqp_value(value)))
                .collect(),
            body: event.data().map(Data::to_bytes),
        },
    }
}

fn amqp_value(value: AttributeRef<'_>) -> AmqpValue {
    match value {
        AttributeRef::Str(s) => AmqpValue::String(s.to_owned()),
        AttributeRef::Timestamp(t) => timestamp_value(t),
        AttributeRef::Value(v) => match v {
            AttributeValue::Boolean(b) => AmqpValue::Boolean(*b),
            AttributeValue::Integer(i) => AmqpValue::Long(i64::from(*i)),
            AttributeValue::Binary(b) => AmqpValue::Binary(b.clone()),
            AttributeValue::String(s) | AttributeValue::Uri(s) | AttributeValue::UriRef(s) => {
                AmqpValue::String(s.clone())
            }
            AttributeValue::Timestamp(t) => timestamp_value(t),
        },
    }
}

fn timestamp_value(t: &Timestamp) -> AmqpValue {
    let dt = t.as_datetime();
    let nanos = dt.nanosecond();
    // Nanoseconds of 1e9 and more mark a leap second, which milliseconds since the epoch
    // cannot express.
    if dt.offset().local_minus_utc() == 0
        && nanos.is_multiple_of(1_000_000)
        && nanos < 1_000_000_000
    {
        AmqpValue::Timestamp(dt.timestamp_millis())
    } else {
        AmqpValue::String(t.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AmqpValue {
        AmqpValue::String(v.to_owned())
    }

    fn message(
        content_type: Option<&str>,
        properties: &[(&str, AmqpValue)],
        body: Option<&'static [u8]>,
    ) -> AmqpMessage {
        AmqpMessage {
            content_type: content_type.map(str::to_owned),
            application_properties: properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            body: body.map(Bytes::from_static),
        }
    }

    fn required() -> Vec<(&'static str, AmqpValue)> {
        vec![
            ("cloudEvents_specversion", s("1.0")),
            ("cloudEvents_id", s("1")),
            ("cloudEvents_source", s("/s")),
            ("cloudEvents_type", s("t")),
        ]
    }

    fn binary(extra: &[(&str, AmqpValue)]) -> Result<Event, Error> {
        let mut properties = required();
        properties.extend_from_slice(extra);
        decode(&message(None, &properties, None))
    }

    const JSON_EVENT: &[u8] = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

    #[test]
    fn spec_binary_example_decodes_with_the_colon_prefix() {
        // Section 3.1.4.
        let e = decode(&message(
            Some("application/json; charset=utf-8"),
            &[
                ("cloudEvents:specversion", s("1.0")),
                ("cloudEvents:type", s("com.example.someevent")),
                ("cloudEvents:time", s("2018-04-05T03:56:24Z")),
                ("cloudEvents:id", s("1234-1234-1234")),
                ("cloudEvents:source", s("/mycontext/subcontext")),
            ],
            Some(b"{}"),
        ))
        .unwrap();
        assert_eq!(e.ty(), "com.example.someevent");
        assert_eq!(e.time().unwrap().to_string(), "2018-04-05T03:56:24Z");
        assert_eq!(e.id(), "1234-1234-1234");
        assert_eq!(e.datacontenttype(), Some("application/json; charset=utf-8"));
        assert_eq!(e.data().unwrap().as_bytes(), b"{}");
    }

    #[test]
    fn spec_structured_example_decodes() {
        // Section 3.2.4.
        let e = decode(&message(
            Some("application/cloudevents+json; charset=utf-8"),
            &[],
            Some(JSON_EVENT),
        ))
        .unwrap();
        assert_eq!(e.id(), "1");
        let bodiless = message(Some("application/cloudevents+json"), &[], None);
        let err = decode(&bodiless).unwrap_err().to_string();
        assert!(err.contains("no payload"), "{err}");
        let avro = message(Some("application/cloudevents+cbor"), &[], Some(b""));
        assert!(matches!(decode(&avro), Err(Error::UnsupportedFormat(_))));
    }

    #[test]
    fn native_types_decode_to_cloudevents_types() {
        let e = binary(&[
            ("cloudEvents_flag", AmqpValue::Boolean(true)),
            ("cloudEvents_count", AmqpValue::Long(-5)),
            ("cloudEvents_small", AmqpValue::Ubyte(7)),
            ("cloudEvents_blob", AmqpValue::Binary(vec![1, 2])),
            ("cloudEvents_at", AmqpValue::Timestamp(1_522_900_584_000)),
            ("cloudEvents_sym", AmqpValue::Symbol("x".into())),
            ("cloudEvents_text", s("true")),
            ("cloudEvents_time", AmqpValue::Timestamp(1_522_900_584_123)),
        ])
        .unwrap();
        let ext = |n: &str| e.extension(n).cloned();
        assert_eq!(ext("flag"), Some(AttributeValue::Boolean(true)));
        assert_eq!(ext("count"), Some(AttributeValue::Integer(-5)));
        assert_eq!(ext("small"), Some(AttributeValue::Integer(7)));
        assert_eq!(ext("blob"), Some(AttributeValue::Binary(vec![1, 2])));
        assert_eq!(
            ext("at").unwrap().to_canonical_string(),
            "2018-04-05T03:56:24Z"
        );
        assert_eq!(ext("sym"), Some(AttributeValue::String("x".into())));
        // A string stays a string: the binding cannot tell a canonical form from text.
        assert_eq!(ext("text"), Some(AttributeValue::String("true".into())));
        assert_eq!(e.time().unwrap().to_string(), "2018-04-05T03:56:24.123Z");
    }

    /// AMQP binding 3.1.3.2: an implementation "MUST be able to interpret both forms on an incoming
    /// AMQP message" and "MAY further relax the requirements for incoming messages (for
    /// example accepting numeric types other than AMQP long)". The PyPI `cloudevents` AMQP
    /// binding sends `time` as an AMQP long of milliseconds since the epoch.
    #[test]
    fn time_as_an_amqp_long_is_milliseconds_since_the_epoch() {
        let e = binary(&[("cloudEvents_time", AmqpValue::Long(1_522_900_584_123))]).unwrap();
        assert_eq!(e.time().unwrap().to_string(), "2018-04-05T03:56:24.123Z");
        let err = binary(&[("cloudEvents_time", AmqpValue::Long(i64::MAX))]).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        // Other integers stay Integers; other core attributes still want strings.
        let err = binary(&[("cloudEvents_subject", AmqpValue::Long(1))]).unwrap_err();
        assert!(err.to_string().contains("expected an AMQP string"), "{err}");
    }

    #[test]
    fn values_without_a_cloudevents_type_are_problems() {
        for (value, needle) in [
            (AmqpValue::Long(i64::from(i32::MAX) + 1), "Integer range"),
            (AmqpValue::Double(1.5), "double"),
            (AmqpValue::Null, "null"),
        ] {
            let err = binary(&[("cloudEvents_x", value)]).unwrap_err();
            let p = &err.problems()[0];
            assert_eq!(p.attribute.as_deref(), Some("x"));
            assert!(p.message.contains(needle), "{p}");
        }
        let err = binary(&[("cloudEvents_subject", AmqpValue::Int(3))]).unwrap_err();
        assert!(err.to_string().contains("expected an AMQP string"), "{err}");
        let err = binary(&[("cloudEvents_time", AmqpValue::Boolean(true))]).unwrap_err();
        assert!(
            err.to_string().contains("expected an AMQP timestamp"),
            "{err}"
        );
        let err = binary(&[("cloudEvents_subject", AmqpValue::Timestamp(0))]).unwrap_err();
        assert!(err.to_string().contains("expected an AMQP string"), "{err}");
    }

    #[test]
    fn prefixes_and_names_are_checked() {
        let err = binary(&[("cloudEvents:x", s("1"))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("mix"), "{err}");
        let err = binary(&[("cloudEvents_Bad", s("1"))]).unwrap_err();
        assert_eq!(err.problems()[0].attribute.as_deref(), Some("Bad"));
        let err = binary(&[("cloudEvents_id", s("2"))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than once"), "{err}");
        // Other properties are the application's, and ignored.
        let e = binary(&[
            ("x-opt-anything", AmqpValue::Null),
            ("cloudevents_id", s("2")),
        ])
        .unwrap();
        assert_eq!(e.id(), "1");
    }

    #[test]
    fn messages_without_cloudevents_metadata_are_not_cloudevents() {
        for m in [
            message(None, &[], Some(JSON_EVENT)),
            message(
                Some("text/plain"),
                &[("cloudEvents_id", s("1"))],
                Some(b"x"),
            ),
        ] {
            assert!(matches!(decode(&m), Err(Error::NotCloudEvent(_))), "{m:?}");
        }
    }

    #[test]
    fn datacontenttype_is_the_content_type_property() {
        let mut properties = required();
        properties.push(("cloudEvents_datacontenttype", s("text/plain")));
        let e = decode(&message(Some("text/plain"), &properties, Some(b"x"))).unwrap();
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        let err = decode(&message(Some("text/xml"), &properties, Some(b"x")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("disagree"), "{err}");
    }

    #[test]
    fn body_is_data_and_its_absence_no_data() {
        assert!(binary(&[]).unwrap().data().is_none());
        let mut properties = required();
        properties.push(("cloudEvents_subject", s("x")));
        let e = decode(&message(None, &properties, Some(b""))).unwrap();
        assert_eq!(e.data().map(Data::len), Some(0));
    }

    #[test]
    fn binary_encoding_uses_native_types() {
        let t: Timestamp = "2018-04-05T03:56:24.123Z".parse().unwrap();
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .time(t)
            .extension("flag", true)
            .extension("n", 7)
            .extension("blob", AttributeValue::Binary(vec![9]))
            .extension("site", AttributeValue::Uri("https://x/".into()))
            .data_with_type("text/plain", Data::text("hi"))
            .build()
            .unwrap();
        let m = encode(&e, Mode::Binary);
        assert_eq!(m.content_type.as_deref(), Some("text/plain"));
        assert_eq!(m.property("cloudEvents_specversion"), Some(&s("1.0")));
        assert_eq!(
            m.property("cloudEvents_time"),
            Some(&AmqpValue::Timestamp(1_522_900_584_123))
        );
        assert_eq!(
            m.property("cloudEvents_flag"),
            Some(&AmqpValue::Boolean(true))
        );
        assert_eq!(m.property("cloudEvents_n"), Some(&AmqpValue::Long(7)));
        assert_eq!(
            m.property("cloudEvents_blob"),
            Some(&AmqpValue::Binary(vec![9]))
        );
        assert_eq!(m.property("cloudEvents_site"), Some(&s("https://x/")));
        assert!(m.property("cloudEvents_datacontenttype").is_none());
        assert_eq!(m.body.as_deref(), Some(&b"hi"[..]));
        let back = decode(&m).unwrap();
        assert_eq!(back.extension("n"), e.extension("n"));
        assert_eq!(back.time(), e.time());
    }

    #[test]
    fn timestamps_amqp_cannot_hold_go_as_strings() {
        for text in [
            "2018-04-05T03:56:24.123456Z",
            "2018-04-05T05:56:24+02:00",
            "2016-12-31T23:59:60Z",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(
                timestamp_value(&t),
                s(&t.to_string()),
                "{text} should be a string"
            );
        }
        let t: Timestamp = "1969-12-31T23:59:59.999Z".parse().unwrap();
        assert_eq!(timestamp_value(&t), AmqpValue::Timestamp(-1));
    }

    #[test]
    fn structured_encoding_round_trips() {
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .extension("n", 7)
            .build()
            .unwrap();
        let m = encode(&e, Mode::Structured);
        assert_eq!(
            m.content_type.as_deref(),
            Some(crate::Format::Json.media_type())
        );
        assert!(m.application_properties.is_empty());
        assert_eq!(decode(&m).unwrap(), e);
    }

    #[test]
    fn uuids_read_as_strings() {
        let e = binary(&[("cloudEvents_u", AmqpValue::Uuid([0xAB; 16]))]).unwrap();
        assert_eq!(
            e.extension("u").unwrap().to_canonical_string(),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}
